"""Schema revisions, oldest first (``0001_baseline`` is the schema every store had before migrations)."""
