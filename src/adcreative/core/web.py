"""What the HTTP apps (the selection service, the review console) accept, checked at the schema so a bad
request is a 422 naming the field before anything is written, never a 500 after.

* :data:`Clean` — with ``Field(max_length=N)`` (a column's length): no NUL character and no lone surrogate
  (PostgreSQL refuses both; a lone surrogate cannot even be encoded as UTF-8).
* :data:`Number`, :data:`Integer` — finite and at most :data:`MAX_ABS_NUMBER` in magnitude: JSON's ``NaN``,
  ``Infinity``, ``1e39`` (over float32) and 40-digit integers are refused instead of overflowing a model.
* :data:`JsonObject` — a small JSON object (event context) held to the same rules at every depth.
* :class:`BodyLimit` — an ASGI middleware answering 413 to a body over a size limit, declared or streamed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool

from adcreative.core.errors import InputError

# User features and context numbers beyond this are errors, not signals: float32 holds 3.4e38, but a model
# multiplying such a value overflows long before that.
MAX_ABS_NUMBER = 1e12


def clean_text(value: str) -> str:
    """``value`` unchanged, or ValueError: a NUL character or a lone surrogate (neither can be stored)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate (not valid Unicode text)") from None
    return value


def not_blank(value: str) -> str:
    """``value`` unchanged, or ValueError when it is only whitespace (the store refuses such ids)."""
    if not value.strip():
        raise ValueError("is blank")
    return value


# ``Annotated[str, Field(max_length=N), Clean]``: a request string of at most N characters, storable anywhere
Clean = AfterValidator(clean_text)
# ... and for ids, which must also say something: ``Annotated[str, Field(...), Clean, NotBlank]``
NotBlank = AfterValidator(not_blank)
Number = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS_NUMBER, le=MAX_ABS_NUMBER)]
Integer = Annotated[int, Field(ge=-int(MAX_ABS_NUMBER), le=int(MAX_ABS_NUMBER))]
# a user field's value: hashed categoricals are strings, numeric fields numbers
Scalar = StrictBool | Integer | Number | Annotated[str, Field(max_length=256), Clean] | None


def check_number(value: Any, where: str = "value") -> float:
    """``value`` as a float when finite and within :data:`MAX_ABS_NUMBER`; an :class:`InputError` (a ValueError,
    so also a schema error inside a validator) naming ``where`` otherwise. For numbers that arrive as strings,
    like ``"inf"``, which only the model knows are numeric."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where} must be numeric, got {str(value)[:40]!r}") from None
    if not math.isfinite(x) or abs(x) > MAX_ABS_NUMBER:
        raise InputError(f"{where} must be a finite number of magnitude at most {MAX_ABS_NUMBER:g}, "
                         f"got {str(value)[:40]!r}")
    return x


def _check_json(value: Any, path: str, depth: int, max_depth: int) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        check_number(value, path)
    elif isinstance(value, str):
        if len(value) > 1024:
            raise ValueError(f"{path}: text longer than 1024 characters")
        try:
            clean_text(value)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    elif isinstance(value, dict | list):
        if depth >= max_depth:
            raise ValueError(f"{path}: nested deeper than {max_depth} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            if isinstance(k, str):
                try:
                    clean_text(k)
                except ValueError as e:
                    raise ValueError(f"{path}: key {e}") from None
            _check_json(v, f"{path}.{k}" if isinstance(value, dict) else f"{path}[{k}]", depth + 1, max_depth)
    else:
        raise ValueError(f"{path}: {type(value).__name__} is not JSON")


def check_json_object(value: dict[str, Any], max_bytes: int = 4096, max_depth: int = 4) -> dict[str, Any]:
    """``value`` unchanged when it is a small JSON object (at most ``max_bytes`` serialised, ``max_depth``
    levels) with finite bounded numbers and clean text at every level; ValueError naming the path otherwise."""
    _check_json(value, "", 0, max_depth)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise ValueError(f"{size} bytes as JSON, over the limit of {max_bytes}")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_object)]


# ---------------------------------------------------------------------------------- body size ---------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before the app sees it whole.

    A declared ``Content-Length`` over the limit is refused before reading; a streamed (chunked) body is
    counted as it arrives, and whatever the app would have answered is replaced by the 413."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        too_large = started = False

        async def counted() -> Message:
            nonlocal seen, too_large
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return msg

        async def guarded(msg: Message) -> None:
            nonlocal started
            if too_large:
                return  # the app's answer to a body it could not read whole: replaced by the 413
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            pass
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": "request body too large",
                           "problems": [f"the body is over the limit of {self.max_bytes} bytes"]}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
