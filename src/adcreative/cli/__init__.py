"""``adcreative``: the command line, one sub-app per pipeline stage (one module each in this package).

Data flow, in the order the commands are usually run::

    products add ─► generate (--until-available) ─► inspect run ─► represent ─► select / serve ─► explain
                     dataset synth ─► inspect train                tune rfft | compositor

Every stage module keeps heavy imports (torch, diffusers, faiss, ray) inside its commands,
so ``adcreative --help`` stays instant. ``main(argv)`` runs in-process for tests.
"""

from __future__ import annotations

import errno
import math
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from adcreative.cli import catalogue as catalogue_cli
from adcreative.cli import console as console_cli
from adcreative.cli import dataset as dataset_cli
from adcreative.cli import db as db_cli
from adcreative.cli import explain as explain_cli
from adcreative.cli import generate as generate_cli
from adcreative.cli import inspect as inspect_cli
from adcreative.cli import represent as represent_cli
from adcreative.cli import select as select_cli
from adcreative.cli import tune as tune_cli
from adcreative.cli.common import err_console
from adcreative.core.errors import InputError

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
    home: Path | None = typer.Option(None, "--home", envvar="ADCREATIVE_HOME", file_okay=False,
                                     help="Store folder (database + images). Default: ./.adcreative"),
) -> None:
    ctx.obj = {"home": home}


app.add_typer(catalogue_cli.app, name="products")
app.add_typer(generate_cli.creatives_app, name="creatives")
app.add_typer(dataset_cli.app, name="dataset")
app.add_typer(db_cli.app, name="db")
app.command("generate")(generate_cli.generate)
# Stage sub-apps: each import is light (heavy imports live inside the commands).
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
    out: Path = typer.Option(Path("demo-report"), "--out", file_okay=False, help="Folder for the HTML report"),
    fast: bool = typer.Option(False, "--fast", help="Smaller run (for tests)"),
) -> None:
    """Run the main job on embedded defaults: sample catalogue → creatives → report."""
    from adcreative.cli.common import console
    from adcreative.pipelines.demo import run_demo

    obj = ctx.find_root().obj
    report = run_demo(out=out, home=obj.get("home") if isinstance(obj, dict) else None, fast=fast, log=console.print)
    typer.echo(f"report: {report}")


def _click_exception_class() -> type[Exception]:
    """The ClickException class the installed typer raises. typer >= 0.2x vendors click (``typer._click``), so
    ``click.ClickException`` never matches; take the class from typer's public ``BadParameter`` instead, which
    covers a typer on plain click as well."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


_ClickException = _click_exception_class()


def usage_line(e: Exception) -> str:
    """A typer/click usage error as one line: what is wrong, and where the help for it is."""
    msg = " ".join(e.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(e, "ctx", None)
    if ctx is not None and getattr(e, "exit_code", 1) == 2:
        msg += f" (see '{ctx.command_path} --help')"
    return msg


# What the machine refuses, not what the code got wrong: a folder without write permission, a full or read-only disk.
ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG,
                      errno.ENOTDIR}


def _error(text: str) -> None:
    # markup for the label only: the message is escaped, so a path or value with [brackets] stays text
    err_console.print(f"[bold red]error:[/] {escape(text)}", markup=True)


def _params(cmd: Any) -> Iterator[Any]:
    """Every parameter of ``cmd`` and of the commands under it."""
    yield from cmd.params
    for sub in (getattr(cmd, "commands", None) or {}).values():
        yield from _params(sub)


def _value_type(param: Any) -> Any:
    """The type of one value of ``param``: ``Path | None`` and ``list[Path]`` are ``Path``."""
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        ann = next((a for a in typing.get_args(ann) if a is not type(None)), None)
    if typing.get_origin(ann) is list:
        ann = typing.get_args(ann)[0]
    return ann


def _file_above(value: Any) -> Path | None:
    """The nearest existing ancestor of a path value when that is a file (``report.md/x``), else None."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        return None
    from adcreative.core.durable import file_in_the_way  # only when a path is parsed: --help stays light

    return file_in_the_way(Path(value).parent)


def _check_values(command: Any) -> None:
    """Values no command can use are usage errors, checked as they are parsed:
    - an empty path: click would read ``--out ""`` as the current folder (``Path("")`` is ``.``), so a script
      whose variable came out empty would write its report, or read its data, where it ran;
    - a float that is not finite: click parses ``nan`` and ``inf``, which pass every range check unnoticed
      (``nan < 0`` is false) and surface later as a traceback or a model of NaNs;
    - a path under a file (``--out report.md/x``): nothing can be read or written there. Whether a path must be a
      folder or a file is declared on the option (``file_okay`` / ``dir_okay``)."""
    for param in _params(command):
        kind = _value_type(param)
        path, number = kind is Path, kind is float
        if not (path or number):
            continue
        process = param.process_value

        def checked(ctx: Any, value: Any, _param: Any = param, _process: Any = process, _path: bool = path) -> Any:
            values = value if isinstance(value, (list, tuple)) else [value]
            if _path and any(isinstance(v, str) and not v.strip() for v in values):
                raise typer.BadParameter("an empty path", ctx=ctx, param=_param)
            for v in values if _path else ():
                under = _file_above(v)
                if under is not None:  # neither read nor written there: mkdir would fail naming something else
                    raise typer.BadParameter(f"'{v}' lies under '{under}', which is a file", ctx=ctx, param=_param)
            out = _process(ctx, value)
            if not _path and isinstance(out, float) and not math.isfinite(out):
                raise typer.BadParameter(f"{value!s} is not a finite number", ctx=ctx, param=_param)
            return out

        param.process_value = checked


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of exiting, so tests can call it in-process.

    Usage errors and :class:`InputError` print one line on stderr and return 2; never a traceback."""
    command = typer.main.get_command(app)
    _check_values(command)
    try:
        command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="adcreative",
                     standalone_mode=False)
    except InputError as e:
        _error(str(e))
        return 2
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS or e.filename is None:
            raise  # anything else is a bug, and its traceback is what would find it
        _error(f"cannot write or read {e.filename}: {e.strerror}")
        return 1
    except _ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
            e.show()  # type: ignore[attr-defined]
        else:
            _error(usage_line(e))
        return int(getattr(e, "exit_code", 2))
    return 0
