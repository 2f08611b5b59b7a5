"""The root command: `--help` is instant and lists every stage."""

from __future__ import annotations

import time

import pytest

from adcreative.cli import main
from tests.paths import REPO


def test_help_is_instant_and_lists_stages(capsys: pytest.CaptureFixture[str]) -> None:
    t = time.perf_counter()
    assert main(["--help"]) == 0
    assert time.perf_counter() - t < 2.0
    out = capsys.readouterr().out
    for cmd in ("demo", "generate", "products", "creatives", "dataset"):
        assert cmd in out


def test_every_command_a_message_names_exists() -> None:
    # an error told users to run `adcreative select train-obd`, a command that never existed
    import re

    import typer

    from adcreative.cli import app

    tree = {name: set(getattr(c, "commands", None) or {}) for name, c in typer.main.get_command(app).commands.items()}
    quoted = re.compile(r"[`']adcreative (?:--home \S+ )?([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
    named = [(f.name, m.group(1), m.group(2)) for f in sorted((REPO / "src" / "adcreative").rglob("*.py"))
             for m in quoted.finditer(f.read_text())]
    assert len(named) > 30
    bad = [n for n in named if n[1] not in tree or (n[2] is not None and tree[n[1]] and n[2] not in tree[n[1]])]
    assert not bad, bad
