"""Fonts for copy set on creatives and sample packaging: DejaVu, Noto CJK for CJK text when installed."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from PIL import ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
CJK_FONTS = (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
             Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"))
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")

FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.lru_cache(maxsize=256)
def font(size: int, bold: bool = False, cjk: bool = False) -> FontT:
    """DejaVu (Noto CJK for CJK copy when installed); Pillow's bundled font when neither exists."""
    if cjk:
        for p in CJK_FONTS[::-1] if bold else CJK_FONTS:
            if p.exists():
                return ImageFont.truetype(str(p), size)
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for d in FONT_DIRS:
        if (d / name).exists():
            return ImageFont.truetype(str(d / name), size)
    return ImageFont.load_default(size)


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


# Named typefaces for renderers that set copy in more than one face; each falls back to DejaVu Sans.
TYPEFACES: dict[str, tuple[str, bool]] = {
    "sans": ("LiberationSans-Regular.ttf", False), "sans-bold": ("LiberationSans-Bold.ttf", True),
    "narrow-bold": ("LiberationSansNarrow-Bold.ttf", True), "serif": ("LiberationSerif-Regular.ttf", False),
    "serif-bold": ("LiberationSerif-Bold.ttf", True), "serif-italic": ("LiberationSerif-Italic.ttf", False),
    "dejavu-serif-bold": ("DejaVuSerif-Bold.ttf", True), "condensed-bold": ("DejaVuSansCondensed-Bold.ttf", True),
}
FACE_DIRS = (Path("/usr/share/fonts/truetype/liberation"), Path("/usr/share/fonts/truetype/liberation2"),
             *FONT_DIRS)


@functools.lru_cache(maxsize=256)
def typeface(name: str, size: int) -> FontT:
    """A named typeface (``TYPEFACES``) at ``size`` px; DejaVu Sans (bold as named) where it is not installed."""
    file, bold = TYPEFACES.get(name, ("DejaVuSans.ttf", False))
    for d in FACE_DIRS:
        if (d / file).exists():
            return ImageFont.truetype(str(d / file), size)
    return font(size, bold)
