"""``adcreative console``: serve the review UI."""

from __future__ import annotations

import typer

from adcreative.cli.common import check_bind, store_from
from adcreative.core.errors import InputError


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (so only this machine can connect)."""
    import ipaddress
    import socket

    h = host.strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(h, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def console(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --api-key"),
    port: int = typer.Option(8765, "--port", min=1, max=65535),
    api_key: str | None = typer.Option(None, "--api-key", envvar="ADCREATIVE_CONSOLE_KEY",
                                       help="Reviewers sign in with this key to record labels (API clients send "
                                       "it as X-API-Key)"),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help="Host name browsers use to reach the "
                                           "console (repeatable); default: the bound address, or any on 0.0.0.0"),
) -> None:
    """Serve the human-review console: confirm or correct the inspector's verdicts."""
    key = (api_key or "").strip() or None  # an empty key is no key
    loopback = is_loopback(host)
    if not loopback and key is None:
        raise InputError(f"refusing to serve the console on {host} without a key: anyone who can reach it could "
                         "write labels. Pass --api-key (or ADCREATIVE_CONSOLE_KEY), or bind --host 127.0.0.1")
    from adcreative.console.app import LOOPBACK_HOSTS

    if allowed_host:
        hosts: tuple[str, ...] | None = tuple(allowed_host)
    elif loopback:
        hosts = LOOPBACK_HOSTS
    elif host.strip("[]") in ("0.0.0.0", "::"):
        hosts = None  # reachable under names we cannot know; the key guards writes
    else:
        hosts = (host,)
    import uvicorn

    from adcreative.console.app import create_app

    check_bind(host, port)

    uvicorn.run(create_app(store_from(ctx), api_key=key, allowed_hosts=hosts), host=host, port=port,
                log_level="info")
