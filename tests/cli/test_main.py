"""The root command: `--help` is instant and lists every stage."""

from __future__ import annotations

import time

import pytest

from adcreative.cli import main


def test_help_is_instant_and_lists_stages(capsys: pytest.CaptureFixture[str]) -> None:
    t = time.perf_counter()
    assert main(["--help"]) == 0
    assert time.perf_counter() - t < 2.0
    out = capsys.readouterr().out
    for cmd in ("demo", "generate", "products", "creatives", "dataset"):
        assert cmd in out
