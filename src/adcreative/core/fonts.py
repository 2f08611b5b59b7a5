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
