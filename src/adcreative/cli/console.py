"""``adcreative console``: serve the review UI."""

from __future__ import annotations

import typer

from adcreative.cli.common import store_from


def console(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
    api_key: str | None = typer.Option(None, "--api-key", envvar="ADCREATIVE_CONSOLE_KEY",
                                       help="Require this X-API-Key on label writes"),
) -> None:
    """Serve the human-review console: confirm or correct the inspector's verdicts."""
    import uvicorn

    from adcreative.console.app import create_app

    uvicorn.run(create_app(store_from(ctx), api_key=api_key), host=host, port=port, log_level="info")
