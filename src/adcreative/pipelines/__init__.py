"""Orchestration across stages, above them all: recurrent generation (generate → inspect → store), batch
scoring of stored creatives, generation over executors, and the demo's steps. Stages never import this."""
