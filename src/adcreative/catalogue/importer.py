"""Catalogue import: a folder of product images with an optional merchandising sheet (.csv, .xlsx or .json).

An image is an RGBA cutout, a photo with a mask beside it (``<name>_mask.png``, or the sheet's ``mask``
column), or a photo on a plain backdrop, which is matted (``catalogue.matting``). When the sheet has an
``image`` column it drives the import (one product per row, the file it names); without one, every image in the
folder is a product whose id is its file name, and the sheet's rows give its fields.

Every row is checked before anything is written, and every problem is reported with its row number: by default
one bad row stops the whole import; ``skip_bad`` imports the good rows and lists the rest. Every path in the
sheet (image, mask, logo) must lie inside the imported folder.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adcreative.catalogue import sheet as sh
from adcreative.core import limits
from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write_text, load_cutout, open_image
from adcreative.core.types import Product

if TYPE_CHECKING:
    from adcreative.catalogue.matting import Matte
    from adcreative.core.store import Store

IMAGE_EXTS = {".png", ".webp", ".jpg", ".jpeg"}
MASK_SUFFIX = "_mask"
DEFAULT_SHEETS = ("products.json", "products.csv", "products.xlsx")
STORE = "the store"


@dataclass
class RowProblem:
    """One row that cannot be imported, and why."""

    row: str  # "row 3", "entry 2", or "file mug.jpg" when there is no sheet
    id: str | None
    file: str | None
    problem: str

    def __str__(self) -> str:
        where = ", ".join(x for x in (f"id {self.id!r}" if self.id else "", self.file or "") if x)
        return f"{self.row}{f' ({where})' if where else ''}: {self.problem}"


@dataclass
class Planned:
    """A row that can be imported: its product, how its cutout was made, and the photo it came from."""

    row: str
    product: Product
    source: str  # "cutout" (RGBA file), "mask" (photo + mask), "matte" (photo, matted here)
    photo: Image.Image | None = None  # the original photo (mask and matte sources)
    matte: Matte | None = None


@dataclass
class ImportPlan:
    folder: Path
    sheet: Path | None
    planned: list[Planned] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    needs_look: list[Planned] = field(default_factory=list)  # matted, but under the quality threshold
    notes: list[str] = field(default_factory=list)

    @property
    def products(self) -> list[Product]:
        return [p.product for p in self.planned]


class ImportRefused(InputError):
    """Some rows cannot be imported and the import is all or nothing: every problem, one per line."""

    def __init__(self, plan: ImportPlan) -> None:
        self.plan = plan
        n, good = len(plan.problems), len(plan.planned)
        lines = [f"{n} row{'s' if n != 1 else ''} cannot be imported, so nothing was imported:"]
        lines += [f"  {p}" for p in plan.problems]
        fix = f"fix {'them' if n != 1 else 'it'}"
        lines.append(f"{fix}, or pass --skip-bad to import the {good} good row{'s' if good != 1 else ''} and write "
                     "a report of the rest" if good else fix)
        super().__init__("\n".join(lines), source=plan.sheet or plan.folder)


# -- paths ------------------------------------------------------------------------------------------------------
def inside(folder: Path, value: str, what: str) -> Path:
    """``value`` (relative to ``folder``) as a path inside it; absolute paths and ones that lead out are refused,
    symbolic links included."""
    if os.path.isabs(value) or value.startswith(("~", "\\")):
        raise ValueError(f"{what} {value!r} is an absolute path; give it relative to the imported folder")
    root = folder.resolve()
    p = (root / value).resolve()
    if not p.is_relative_to(root):
        raise ValueError(f"{what} {value!r} is outside the imported folder")
    return p


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTS


def _mask_beside(image: Path) -> Path | None:
    return next((m for m in sorted(image.parent.glob(f"{image.stem}{MASK_SUFFIX}.*")) if _is_image(m)), None)


def title_from_filename(stem: str) -> str:
    """'blue_enamel-mug' → 'Blue enamel mug'."""
    words = " ".join(stem.replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:]


# -- one row ------------------------------------------------------------------------------------------------------
@dataclass
class _Options:
    titles_from_filenames: bool
    accept_low_quality: bool
    quality_threshold: float


def _product_image(path: Path, mask: Path | None, opts: _Options) -> tuple[Image.Image, str, Image.Image | None,
                                                                          Matte | None]:
    """The cutout for one image file: (RGBA, source, original photo or None, matte or None)."""
    if mask is not None:
        cut = load_cutout(path, mask)
        return cut, "mask", cut.convert("RGB"), None
    im = open_image(path)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha and np.asarray(im.convert("RGBA").getchannel("A")).min() < 250:
        return load_cutout(path), "cutout", None, None
    from adcreative.catalogue.matting import matte

    photo = im.convert("RGB")
    m = matte(photo)
    if m.scores.get("cover", 0.0) < 0.001:
        raise ValueError("matting found no product: the photo is all backdrop")
    return m.cutout(), "matte", photo, m


class _LowQuality(ValueError):
    """A matte under the quality threshold: the row is not imported, but its preview is still worth writing."""

    def __init__(self, planned: Planned, problem: str) -> None:
        super().__init__(problem)
        self.planned = planned


def _plan_row(folder: Path, row: str, fields: dict[str, Any], image: Path | None, opts: _Options,
              taken: dict[str, str]) -> Planned:
    """Check and build one product; raises ValueError/InputError naming the problem."""
    pid = sh.text(fields.get("id"), "product id", max_len=limits.PRODUCT_ID_MAX)
    if image is None:
        name = sh.text(fields.get("image"), "image")
        if name is None:
            raise ValueError("names no image file (fill the image column)")
        image = inside(folder, name, "image")
        if not image.exists():
            raise ValueError(f"image file {name!r} does not exist in the folder")
    pid = pid or image.stem
    if pid in taken:
        if taken[pid] == STORE:
            raise ValueError(f"product id {pid!r} is already in the store")
        raise ValueError(f"duplicate product id {pid!r} (also {taken[pid]})")
    taken[pid] = row
    title = sh.text(fields.get("title"), "title")
    if title is None:
        if not opts.titles_from_filenames:
            raise ValueError("empty title (give one in the sheet, or pass --titles-from-filenames)")
        title = title_from_filename(image.stem)
    price = sh.price(fields.get("price"))
    category = sh.text(fields.get("category"), "category", max_len=limits.CATEGORY_MAX) or "default"
    copy = sh.text(fields.get("copy"), "copy")
    logo = None
    if (logo_name := sh.text(fields.get("logo"), "logo")) is not None:
        logo = open_image(inside(folder, logo_name, "logo")).convert("RGBA")
    mask_name = sh.text(fields.get("mask"), "mask")
    mask = inside(folder, mask_name, "mask") if mask_name is not None else _mask_beside(image)
    attrs: dict[str, Any] = {}
    for k in sh.ATTR_COLUMNS:
        if (v := sh.text(fields.get(k), k)) is not None:
            attrs[k] = v
    cut, source, photo, m = _product_image(image, mask, opts)
    if m is not None:
        attrs["matte"] = m.info()
    elif source == "mask":
        attrs["matte"] = {"method": "mask"}
    product = Product(id=pid, title=title, category=category, image=cut, copy=copy, price=price, logo=logo,
                      attrs=attrs)
    planned = Planned(row=row, product=product, source=source, photo=photo, matte=m)
    if m is not None and m.quality < opts.quality_threshold and not opts.accept_low_quality:
        parts = ", ".join(f"{k} {m.scores[k]:.2f}" for k in ("backdrop", "edge_support", "crisp", "size"))
        raise _LowQuality(planned, f"the automatic matte needs a look: quality {m.quality:.2f} is under "
                                   f"{opts.quality_threshold:.2f} ({parts}); preview it with --previews, give a "
                                   f"mask ({image.stem}{MASK_SUFFIX}.png), or pass --accept-low-quality")
    return planned


# -- the whole folder -------------------------------------------------------------------------------------------
def plan_import(folder: str | Path, meta: str | Path | None = None, *, titles_from_filenames: bool = False,
                accept_low_quality: bool = False, quality_threshold: float | None = None,
                existing: Iterable[str] = (), progress: bool = False) -> ImportPlan:
    """Check every row (and matte every photo) without writing anything: what would be imported, what would
    not and why. ``existing`` are ids already in the store; ``progress`` shows a bar on a terminal."""
    d = Path(folder)
    if not d.is_dir():
        raise InputError("catalogue folder does not exist", source=d)
    if meta is None:
        meta = next((d / n for n in DEFAULT_SHEETS if (d / n).exists()), None)
    sheet = Path(meta) if meta is not None else None
    if quality_threshold is None:
        from adcreative.catalogue.matting import QUALITY_THRESHOLD

        quality_threshold = QUALITY_THRESHOLD
    opts = _Options(titles_from_filenames, accept_low_quality, quality_threshold)
    plan = ImportPlan(folder=d, sheet=sheet)
    rows, ignored = sh.read_sheet(sheet) if sheet is not None else ([], [])
    if ignored:
        plan.notes.append(f"columns ignored: {', '.join(ignored)}")
    # (row label, fields, image path or None when the row names it)
    work: list[tuple[str, dict[str, Any], Path | None]] = []
    if any("image" in r.fields for r in rows):  # the sheet names the files
        work = [(r.label, r.fields, None) for r in rows]
    else:
        files = sorted(p for p in d.iterdir() if _is_image(p) and not p.stem.endswith(MASK_SUFFIX)
                       and p.stem != "logo" and not p.stem.endswith("_logo"))
        others = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_EXTS
                        and p.suffix.lower() not in {*sh.SHEET_EXTS, ".md", ".txt"})
        for p in others:
            plan.problems.append(RowProblem(f"file {p.name}", None, p.name,
                                            f"not an image file (expected {', '.join(sorted(IMAGE_EXTS))})"))
        by_id: dict[str, sh.SheetRow] = {}
        for r in rows:
            try:
                rid = sh.text(r.fields.get("id"), "product id", max_len=limits.PRODUCT_ID_MAX)
            except ValueError as e:
                plan.problems.append(RowProblem(r.label, None, None, str(e)))
                continue
            if rid is None:
                plan.problems.append(RowProblem(r.label, None, None, "no id"))
            elif rid in by_id:
                plan.problems.append(RowProblem(r.label, rid, None,
                                                f"duplicate product id {rid!r} (also {by_id[rid].label})"))
            else:
                by_id[rid] = r
        stems = {p.stem for p in files}
        for rid, r in by_id.items():
            if rid not in stems:
                plan.problems.append(RowProblem(r.label, rid, None, f"no image file named {rid}.* in the folder"))
        for p in files:
            found = by_id.get(p.stem)
            work.append((found.label if found else f"file {p.name}", dict(found.fields) if found else {}, p))
        if not files and not plan.problems:
            raise InputError("no product images in the folder", source=d)
    taken = dict.fromkeys(existing, STORE)
    from tqdm.auto import tqdm

    for label, fields, image in tqdm(work, desc="checking rows", unit="row", disable=None if progress else True):
        try:
            plan.planned.append(_plan_row(d, label, fields, image, opts, taken))
        except (ValueError, InputError) as e:  # InputError is a ValueError; both name the problem
            if isinstance(e, _LowQuality):
                plan.needs_look.append(e.planned)
            file = image.name if image else _name(fields.get("image"))
            problem = str(e)
            if isinstance(e, InputError):  # name the file it is about when that is not the row's image itself
                source = Path(e.source).name if e.source else None
                other = source is not None and source != (Path(file).name if file else None)
                problem = f"{source}: {e.problem}" if other and str(source) not in e.problem else e.problem
            pid = fields.get("id")
            plan.problems.append(RowProblem(label, str(pid) if isinstance(pid, str | int) else None, file, problem))
    if not plan.planned and not plan.problems:
        raise InputError("the sheet lists no products", source=sheet or d)
    return plan


def _name(v: Any) -> str | None:
    return v if isinstance(v, str) else None


# -- writing ---------------------------------------------------------------------------------------------------------
def write_report(path: str | Path, problems: list[RowProblem]) -> Path:
    """The rows that were not imported, as CSV (row, id, file, problem): a sheet a merchandiser can work through."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["row", "id", "file", "problem"])
    for p in problems:
        w.writerow([p.row, p.id or "", p.file or "", p.problem])
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def commit_plan(store: Store, plan: ImportPlan, *, skip_bad: bool = False) -> list[Product]:
    """Write the planned products in one transaction. With problems, refuse (all or nothing) unless ``skip_bad``.
    A matted or masked product keeps its original photo as a blob, its sha in ``attrs['photo_sha']``."""
    if plan.problems and not skip_bad:
        raise ImportRefused(plan)
    for p in plan.planned:
        if p.photo is not None:
            p.product.attrs["photo_sha"] = store.blobs.put_image(p.photo)
    store.add_products(plan.products)
    return plan.products


def import_folder(store: Store, folder: str | Path, meta: str | Path | None = None, **kw: Any) -> list[Product]:
    """Read a catalogue folder and add its products to the store in one transaction (all or nothing)."""
    skip_bad = kw.pop("skip_bad", False)
    plan = plan_import(folder, meta, existing=store.product_ids(), **kw)
    return commit_plan(store, plan, skip_bad=skip_bad)


def read_catalogue_folder(folder: str | Path, meta: str | Path | None = None, **kw: Any) -> list[Product]:
    """The products of a catalogue folder, every row checked; any problem raises (``ImportRefused``)."""
    plan = plan_import(folder, meta, **kw)
    if plan.problems:
        raise ImportRefused(plan)
    return plan.products
