"""Saving matplotlib figures: PNG bytes written atomically, the figure closed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from adcreative.core.imageio import atomic_write


def plain(text: str) -> str:
    """``text`` drawn as it is: a "$" in a name that came from data (a renderer family, a defect kind) would start
    matplotlib's mathtext, and a balanced pair that is not valid TeX raises when the figure is saved."""
    return text.replace("$", r"\$")


def save_figure(fig: Any, path: str | Path, *, dpi: int | None = None) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG (atomically) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **({"dpi": dpi} if dpi else {}))
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return Path(path)
