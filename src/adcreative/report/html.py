"""A small report builder: sections of tables, galleries and images, rendered with one Jinja2 template."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from PIL import Image

from adcreative.core.imageio import atomic_write, atomic_write_text, check_folder_path


@dataclass
class Tile:
    src: str  # relative path of the thumbnail
    full: str  # relative path of the full image
    caption: str
    badge: str = ""  # short verdict shown on the tile
    tone: str = "neutral"  # ok | bad | neutral
    details: dict[str, Any] = field(default_factory=dict)  # provenance, shown on click

    @property
    def details_json(self) -> str:
        return json.dumps(self.details, indent=2, default=str, sort_keys=True)


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    galleries: list[tuple[str, list[Tile]]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (caption, relative path)
    raw_html: str = ""


class Report:
    def __init__(self, out: str | Path, title: str) -> None:
        self.out = Path(out)
        self.title = title
        self.sections: list[Section] = []
        check_folder_path(self.out, what=f"the report into {self.out}")
        (self.out / "images").mkdir(parents=True, exist_ok=True)

    def section(self, title: str, intro: str = "") -> Section:
        s = Section(title, intro)
        self.sections.append(s)
        return s

    def add_image(self, name: str, im: Image.Image, *, thumb: int = 256, png: bytes | None = None) -> tuple[str, str]:
        """Save the full PNG and a JPEG thumbnail; returns their paths relative to the report. ``png``: the image's
        PNG bytes when they exist already (a stored creative), written as they are instead of encoded again."""
        from adcreative.core.imageio import png_bytes

        full = f"images/{name}.png"
        atomic_write(self.out / full, png if png is not None else png_bytes(im))
        if im.mode in ("RGBA", "LA", "P"):  # cutouts: show transparency on the page's light grey, not black
            bg = Image.new("RGBA", im.size, (236, 239, 243, 255))
            bg.alpha_composite(im.convert("RGBA"))
            t = bg.convert("RGB")
        else:
            t = im.convert("RGB")
        t.thumbnail((thumb, thumb))
        import io

        buf = io.BytesIO()
        t.save(buf, format="JPEG", quality=88)
        small = f"images/{name}.thumb.jpg"
        atomic_write(self.out / small, buf.getvalue())
        return small, full

    def write(self) -> Path:
        # every value is text (product titles and copy come from users' sheets): select_autoescape() would leave a
        # ``.html.j2`` template unescaped, so autoescape is on outright; ``|safe`` only where a filter escaped it
        env = Environment(loader=PackageLoader("adcreative.report", "templates"), autoescape=True)
        env.filters["cell"] = _cell
        page = env.get_template("report.html.j2").render(title=self.title, sections=self.sections)
        p = self.out / "index.html"
        atomic_write_text(p, page)
        return p


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return html.escape(str(v))
