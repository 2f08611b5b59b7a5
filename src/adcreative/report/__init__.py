"""HTML reports: galleries with provenance, tables and plots, written atomically."""
