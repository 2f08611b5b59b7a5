"""Small catalogue folders the catalogue, CLI and pipeline tests share."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def mug_with_mask(folder: Path, sheet: str = "id,title\nblue-mug,Blue Enamel Mug\n") -> Path:
    """``blue-mug.jpg`` (a flat blue photo) + ``blue-mug_mask.png`` (product box (20, 10, 76, 90)) + products.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (96, 96), (30, 90, 200)).save(folder / "blue-mug.jpg")
    m = Image.new("L", (96, 96), 0)
    m.paste(255, (20, 10, 76, 90))
    m.save(folder / "blue-mug_mask.png")
    (folder / "products.csv").write_text(sheet)
    return folder
