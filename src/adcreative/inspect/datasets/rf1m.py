"""RF1M's ``label.txt`` layout (Du et al., ECCV 2024): ``image_path label [product_path] [title]`` per line,
labels as indices into CLASSES or class names. Products are split by hashing their id (``split_for``)."""

from __future__ import annotations

import re
from pathlib import Path

from adcreative.core.errors import InputError
from adcreative.core.types import CLASSES
from adcreative.inspect.datasets.formats import Sample, split_for

_NAMES = {c.replace("_", ""): c for c in CLASSES}


def _parse_label(tok: str) -> str:
    if tok.isdigit() and int(tok) < len(CLASSES):
        return CLASSES[int(tok)]
    key = re.sub(r"[^a-z]", "", tok.lower())
    if key in _NAMES:
        return _NAMES[key]
    raise ValueError(f"unknown label {tok!r}")


def read_rf1m(d: Path) -> list[Sample]:
    out = []
    lf = d / "label.txt"
    for n, line in enumerate(lf.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in re.split(r"[,\t ]+", line, maxsplit=3) if p]
        if len(parts) < 2:
            raise InputError(f"line {n}: expected 'image_path label [product_path] [title]'", source=lf)
        try:
            label = _parse_label(parts[1])
        except ValueError as e:
            raise InputError(f"line {n}: {e}", source=lf) from None
        product = d / parts[2] if len(parts) > 2 and Path(parts[2]).suffix else None
        title = parts[3] if len(parts) > 3 else (parts[2] if len(parts) > 2 and product is None else "")
        pid = str(Path(parts[2]).with_suffix("")) if product is not None else str(Path(parts[0]).parent)
        out.append(Sample(id=f"rf1m-{n}", image=d / parts[0], mask=None, product=product, product_id=pid,
                          title=title, category="", label=label, split=split_for(pid)))
    return out
