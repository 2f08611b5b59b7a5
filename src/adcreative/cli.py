"""``adcreative``: the command line, one sub-app per pipeline stage.

Data flow, in the order the commands are usually run::

    products add ─► generate (--until-available) ─► inspect run ─► represent ─► select / serve ─► explain
                     dataset synth ─► inspect train                tune rfft | compositor

Every stage module keeps heavy imports (torch, diffusers, faiss, ray) inside its commands,
so ``adcreative --help`` stays instant. ``main(argv)`` runs in-process for tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer

from adcreative.cli_common import err_console
from adcreative.console import cli as console_cli
from adcreative.core.errors import InputError
from adcreative.explain import cli as explain_cli
from adcreative.generate import cli as generate_cli
from adcreative.inspect import cli as inspect_cli
from adcreative.represent import cli as represent_cli
from adcreative.select import cli as select_cli
from adcreative.tune import cli as tune_cli

app = typer.Typer(
    name="adcreative",
    help="Generate ad creatives a human auditor would accept, and show each shopper the best one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Path | None = typer.Option(None, "--home", envvar="ADCREATIVE_HOME",
                                     help="Store folder (database + images). Default: ./.adcreative"),
) -> None:
    ctx.obj = {"home": home}


app.add_typer(generate_cli.products_app, name="products")
app.add_typer(generate_cli.creatives_app, name="creatives")
app.add_typer(generate_cli.dataset_app, name="dataset")
app.command("generate")(generate_cli.generate)
# Stage sub-apps: each import is light (heavy imports live inside the commands).
# -- inspect, tune, represent, select, explain register here --
app.add_typer(inspect_cli.app, name="inspect")
app.add_typer(tune_cli.app, name="tune")
app.add_typer(explain_cli.app, name="explain")
app.add_typer(represent_cli.app, name="represent")
app.add_typer(select_cli.app, name="select")
app.command("serve")(select_cli.serve)
app.command("console")(console_cli.console)


@app.command("demo")
def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path("demo-report"), "--out", help="Folder for the HTML report"),
    fast: bool = typer.Option(False, "--fast", help="Smaller run (for tests)"),
) -> None:
    """Run the main job on embedded defaults: sample catalogue → creatives → report."""
    from adcreative.demo import run_demo

    report = run_demo(ctx, out=out, fast=fast)
    typer.echo(f"report: {report}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of exiting, so tests can call it in-process."""
    command = typer.main.get_command(app)
    try:
        command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="adcreative",
                     standalone_mode=False)
    except InputError as e:
        err_console.print(f"[bold red]error:[/] {e}")
        return 2
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        e.show()
        return int(e.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    return 0
