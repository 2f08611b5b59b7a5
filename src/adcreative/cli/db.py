"""``adcreative db upgrade|current``: the store's schema revision (Alembic migrations shipped in the package).

Opening a store whose schema is older or newer than the code fails with one line naming the command to run;
``db upgrade`` is that command. Nothing heavy is imported here."""

from __future__ import annotations

import typer

from adcreative.cli.common import console, settings_from

app = typer.Typer(help="The store's schema: upgrade it to this version's, show its revision.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Upgrade the store to this version's schema (a store from before migrations too); every row is kept."""
    from adcreative.core.database import store_exists
    from adcreative.core.errors import InputError
    from adcreative.core.migrations import upgrade as run

    settings = settings_from(ctx)
    if not store_exists(settings):  # a mistyped --home: nothing to upgrade, and no empty store left behind
        raise InputError(f"no store at {settings.home}: nothing to upgrade (check --home / ADCREATIVE_HOME)")
    before, after = run(settings)
    if before.up_to_date:
        console.print(f"{after.where}: already at revision {after.current}")
    else:
        was = "legacy (no revision)" if before.legacy else "new" if before.fresh else before.current
        console.print(f"{after.where}: upgraded {was} → {after.current}")


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Print where the store is, its schema revision and this version's."""
    from adcreative.core.migrations import current as run
    from adcreative.core.migrations import known

    st = run(settings_from(ctx))
    state = ("up to date" if st.up_to_date else "empty (created at first use)" if st.fresh
             else "needs `adcreative db upgrade`" if st.legacy or known(st.current or "")
             else "newer than this adcreative")
    console.print(f"{st.where}\nrevision {st.current or 'none'} (this code: {st.head}) — {state}")
