"""What every stage's CLI shares: the store from ``--home``, console output, error handling."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from adcreative.config import Settings
    from adcreative.core.store import Store

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def store_from(ctx: typer.Context) -> Store:
    """The store for this invocation, opened once and kept on the root context."""
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
