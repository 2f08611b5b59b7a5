"""Saving matplotlib figures: PNG bytes written atomically, the figure closed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from adcreative.core.imageio import atomic_write


def save_figure(fig: Any, path: str | Path, *, dpi: int | None = None) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **({"dpi": dpi} if dpi else {}))
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return Path(path)
