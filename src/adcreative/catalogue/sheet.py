"""Merchandising sheets: the rows of a .csv, .xlsx or .json file, each with the number a person would look for
(spreadsheet row numbers count the header as row 1; JSON entries count from 1), and typed field parsing that
says what is wrong with a cell instead of raising a traceback.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adcreative.core import limits
from adcreative.core.errors import InputError

SHEET_EXTS = (".csv", ".xlsx", ".json")
# A column's accepted names (lower case); the first is the name used everywhere else.
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "sku", "product_id"),
    "title": ("title", "name", "product_name"),
    "image": ("image", "file", "filename", "photo", "image_file"),
    "mask": ("mask", "mask_file"),
    "category": ("category",),
    "copy": ("copy",),
    "price": ("price",),
    "logo": ("logo",),
    "badge": ("badge",),
    "headline": ("headline",),
    "currency": ("currency",),
    "brand": ("brand",),
}
ATTR_COLUMNS = ("badge", "headline", "currency", "brand")
MAX_PRICE = 1e9


@dataclass
class SheetRow:
    label: str  # "row 3" or "entry 2": where a person finds it
    fields: dict[str, Any]  # canonical column name → raw cell value (None when empty)


def read_sheet(path: Path) -> tuple[list[SheetRow], list[str]]:
    """The sheet's rows and the names of the columns it ignores. A file that cannot be read at all (missing,
    malformed, wrong shape) is an ``InputError``; problems inside a row are left to the field parsers."""
    if not path.exists():
        raise InputError("metadata file does not exist", source=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.reader(f)
                table = [(n, cells) for n, cells in enumerate(reader, 1)]
            return _from_table(table, path)
        if suffix == ".xlsx":
            return _from_table(_xlsx_table(path), path)
        if suffix == ".json":
            return _from_json(json.loads(path.read_text(encoding="utf-8")), path)
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"malformed metadata ({e})", source=path) from None
    raise InputError(f"metadata must be {', '.join(SHEET_EXTS)}", source=path)


def _xlsx_table(path: Path) -> list[tuple[int, list[Any]]]:
    try:
        import openpyxl
    except ImportError:
        raise InputError("reading .xlsx needs openpyxl (pip install 'adcreative[catalogue]')", source=path) from None
    from zipfile import BadZipFile

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as e:
        raise InputError(f"not a readable .xlsx workbook ({e})", source=path) from None
    try:
        ws = wb.worksheets[0]
        return [(n, list(cells)) for n, cells in enumerate(ws.iter_rows(values_only=True), 1)]
    finally:
        wb.close()


def _canonical(name: Any) -> str | None:
    key = str(name or "").strip().lower().replace(" ", "_")
    return next((c for c, names in COLUMNS.items() if key in names), None)


def _from_table(table: list[tuple[int, list[Any]]], path: Path) -> tuple[list[SheetRow], list[str]]:
    table = [(n, cells) for n, cells in table if any(_blank(c) is not None for c in cells)]
    if not table:
        raise InputError("the sheet is empty", source=path)
    header_n, header = table[0]
    names = [_canonical(h) for h in header]
    if "id" not in names and "image" not in names:
        raise InputError(f"row {header_n} (the header) names no 'id' or 'image' column; columns: "
                         f"{', '.join(str(h) for h in header if h is not None)}", source=path)
    dup = {c for c in names if c is not None and names.count(c) > 1}
    if dup:
        raise InputError(f"the header names the column(s) {', '.join(sorted(dup))} twice", source=path)
    ignored = [str(h) for h, c in zip(header, names, strict=True) if c is None and h not in (None, "")]
    rows = []
    for n, cells in table[1:]:
        fields = {c: _blank(cells[i]) if i < len(cells) else None for i, c in enumerate(names) if c is not None}
        rows.append(SheetRow(f"row {n}", fields))
    return rows, ignored


def _from_json(data: Any, path: Path) -> tuple[list[SheetRow], list[str]]:
    if isinstance(data, dict):
        entries = []
        for key, v in data.items():
            if not isinstance(v, dict):
                raise InputError(f"entry {key!r} is {type(v).__name__}, not an object of fields", source=path)
            entries.append((f"entry {key!r}", {"id": key, **v}))
    elif isinstance(data, list):
        entries = [(f"entry {n}", v) for n, v in enumerate(data, 1)]
    else:
        raise InputError(f"JSON metadata must be a list of objects or an object of objects, not "
                         f"{type(data).__name__}", source=path)
    rows, ignored = [], set()
    for label, v in entries:
        if not isinstance(v, dict):
            raise InputError(f"{label} is {type(v).__name__}, not an object of fields", source=path)
        fields: dict[str, Any] = {}
        for k, value in v.items():
            c = _canonical(k)
            if c is None:
                ignored.add(str(k))
            else:
                fields[c] = _blank(value)
        rows.append(SheetRow(label, fields))
    return rows, sorted(ignored)


def _blank(v: Any) -> Any:
    return None if v is None or (isinstance(v, str) and not v.strip()) else v


# -- typed fields: each returns the value or raises ValueError with what is wrong ------------------------------
def text(v: Any, what: str, *, max_len: int | None = None) -> str | None:
    """A text cell: strings, and numbers a spreadsheet made of text (an id 1001 typed into Excel)."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ValueError(f"{what} must be text, not {type(v).__name__} {v!r}")
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError(f"{what} {v!r} is a fractional number, not text")
        v = int(v)
    s = str(v).strip()
    return limits.check_text(what, s, max_len, empty=True) or None  # the store's own rule: length, NUL, surrogates


def price(v: Any) -> float | None:
    """A price: a finite number from 0 to 1e9 ('12.50', 12.5); NaN, infinities and negatives are refused."""
    if v is None:
        return None
    if isinstance(v, bool | dict | list | _dt.date):
        raise ValueError(f"price {v!r} is not a number")
    try:
        f = float(str(v).strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        raise ValueError(f"price {v!r} is not a number") from None
    if not math.isfinite(f):
        raise ValueError(f"price {v!r} is not a finite number")
    if f < 0:
        raise ValueError(f"price {v!r} is negative")
    if f > MAX_PRICE:
        raise ValueError(f"price {v!r} is over {MAX_PRICE:.0e}")
    return f
