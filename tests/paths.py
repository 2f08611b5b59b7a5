"""Where tests find the repository and the real data beside it (``../shared/data``, never committed)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
