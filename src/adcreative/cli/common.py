"""What every stage's CLI shares: the store from ``--home``, console output, error handling."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from adcreative.config import Settings
    from adcreative.core.store import Store

# seeds go into numpy (non-negative only) and into the store's creative seed column: core.limits.INT_MAX, written
# out here because importing core.limits (pydantic) would slow `adcreative --help`; a test checks they agree
SEED_MAX = 2**31 - 1
THREADS_MAX = 256  # torch/OpenBLAS threads: far more than any host here; 100,000 crashed the process

# markup off: what is printed holds ids, titles and paths from users ("q[/x]" was a MarkupError traceback); the few
# styled lines pass markup=True and escape what they interpolate
# soft_wrap: a long line stays one line when piped into a log (rich would break it at 80 columns)
console = Console(stderr=False, highlight=False, markup=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def check_bind(host: str, port: int) -> None:
    """Refuse, in one line and before the banner, an address this machine cannot listen on: a host name that does
    not resolve, an address it does not have, a port another process holds (uvicorn would log an error and exit 1
    or 3 after printing where it serves)."""
    import socket

    from adcreative.core.errors import InputError

    try:
        info = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise InputError(f"cannot serve on {host}:{port}: {e.strerror}") from None
    with socket.socket(info[0], socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a TIME_WAIT port is free
        try:
            sock.bind(info[4])
        except OSError as e:
            raise InputError(f"cannot serve on {host}:{port}: {e.strerror}") from None


def record(*fields: object) -> None:
    """One row of a listing (``products list``, ``creatives list``…): tab-separated on one line, whatever the
    terminal width, so ``cut -f1`` works (rich wraps at 80 columns when piped and expands tabs to spaces). A tab or
    newline inside a field becomes a space, so a title cannot add columns or rows."""
    import sys

    sys.stdout.write("\t".join(" ".join(str(f).split()) if f is not None else "" for f in fields) + "\n")


def store_from(ctx: typer.Context, *, must_exist: bool = False) -> Store:
    """The store for this invocation, opened once and kept on the root context. ``must_exist``: a command that
    only reads, or needs what was added before, refuses a home with no store instead of creating an empty one
    there (a mistyped ``--home`` would otherwise leave a new database behind and report "no such product")."""
    if must_exist:
        from adcreative.core.database import store_exists

        settings = settings_from(ctx)
        if not store_exists(settings):
            from adcreative.core.errors import InputError

            raise InputError(f"no store at {Path(settings.home)}: nothing has been added there yet (add products "
                             "with 'adcreative products add' or 'products sample', or check --home / "
                             "ADCREATIVE_HOME)")
    root = ctx.find_root()
    obj: dict[str, Any] = root.obj if isinstance(root.obj, dict) else {}
    root.obj = obj
    if "store" not in obj:
        from adcreative.core.store import Store

        obj["store"] = Store(settings_from(ctx))
    return obj["store"]  # type: ignore[no-any-return]


def settings_from(ctx: typer.Context) -> Settings:
    """The settings for this invocation: ``--home`` (or ``ADCREATIVE_HOME``) and the environment."""
    from adcreative.config import get_settings

    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    return get_settings(obj.get("home"))


def home_from(ctx: typer.Context) -> Path:
    return Path(settings_from(ctx).home)


def parse_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_seeds(value: str, option: str = "--seeds") -> list[int]:
    """A comma-separated list of seeds, each in [0, SEED_MAX], or an InputError naming the option."""
    from adcreative.core.errors import InputError

    try:
        seeds = [int(v) for v in parse_list(value)]
    except ValueError:
        raise InputError(f"{option} must be comma-separated integers, got {value!r}") from None
    if not seeds:
        raise InputError(f"{option} is empty")
    bad = [s for s in seeds if not 0 <= s <= SEED_MAX]
    if bad:
        raise InputError(f"{option}: seeds are integers in [0, {SEED_MAX}], got {bad[0]}")
    return seeds


def parse_json_object(text: str, option: str) -> dict[str, Any]:
    """The value of a JSON-object option, or an InputError naming the option."""
    import json

    from adcreative.core.errors import InputError

    try:
        v = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{option} is not valid JSON ({e.msg})") from None
    if not isinstance(v, dict):
        raise InputError(f"{option} must be a JSON object")
    return v
