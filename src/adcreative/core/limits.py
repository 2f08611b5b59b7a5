"""What the store accepts: the length of every bounded column and the checks every written value passes.

The store's columns are declared with these constants, so a request schema (the selection service, the
console) that uses them refuses exactly what the database would, before anything is written. PostgreSQL
enforces ``VARCHAR(n)`` (SQLite does not), and refuses NUL characters and lone surrogates in text; the
checks here give both databases the same rules and a clear :class:`InputError` naming the field instead.

Lengths count characters (code points), as PostgreSQL's ``VARCHAR(n)`` does.
"""

from __future__ import annotations

import json
import math
from typing import Any

from adcreative.core.errors import InputError
from adcreative.core.web import clean_text

INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # an Integer column on PostgreSQL
SHA_LEN = 64  # sha256 hex of a blob
PRODUCT_ID_MAX = 128
CATEGORY_MAX = 64
CREATIVE_ID_MAX = 64
GENERATOR_MAX = 64
GENERATOR_VERSION_MAX = 32
ASPECT_MAX = 8
LABEL_MAX = 32  # an RF1M class name
BAND_MAX = 16  # a decision band: accept, human, reject
RUN_ID_MAX = 64
ATTEMPT_KEY_MAX = RUN_ID_MAX + PRODUCT_ID_MAX + 24  # "{run_id}/{product_id}/{seed}"
MODEL_ID_MAX = 128
REVIEWER_MAX = 128
EVENT_KIND_MAX = 16
REQUEST_ID_MAX = 64
USER_ID_MAX = 128
AD_ID_MAX = 128
FEATURE_NAME_MAX = 64
FEATURE_VERSION_MAX = 32


def check_text(field: str, value: str, max_len: int | None = None, *, empty: bool = False) -> str:
    """``value`` unchanged, or an InputError naming ``field``: not a string, empty (unless ``empty``), longer
    than ``max_len`` characters, a NUL character, or a lone surrogate (not encodable as UTF-8)."""
    if not isinstance(value, str):
        raise InputError(f"{field} must be text, got {type(value).__name__}")
    if not empty and not value.strip():
        raise InputError(f"{field} is empty")
    if max_len is not None and len(value) > max_len:
        raise InputError(f"{field} is {len(value)} characters long, over the limit of {max_len}")
    try:
        return clean_text(value)
    except ValueError as e:
        raise InputError(f"{field} {e}") from None


def check_number(field: str, value: float | None) -> float | None:
    """``value`` as a float (None stays None), or an InputError naming ``field`` when it is not finite."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{field} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise InputError(f"{field} must be a finite number, got {value!r}")
    return x


def check_json(field: str, value: Any) -> Any:
    """``value`` unchanged when it is plain JSON with finite numbers and clean text (keys included);
    otherwise an InputError naming ``field`` (SQLite would turn NaN into NULL; PostgreSQL refuses it)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise InputError(f"{field} holds a number that is not finite (NaN or infinity)") from None
    except TypeError as e:
        raise InputError(f"{field} is not plain JSON ({e})") from None
    _check_strings(field, value)
    return value


def _check_strings(field: str, value: Any) -> None:
    if isinstance(value, str):
        check_text(field, value, empty=True)
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                check_text(f"{field} key", k, empty=True)
            _check_strings(f"{field}.{k}", v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_strings(field, v)
