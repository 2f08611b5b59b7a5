"""`adcreative demo --fast` writes its report."""

from __future__ import annotations

from pathlib import Path

import pytest

from adcreative.cli import main


@pytest.mark.slow
def test_demo_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fast"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'index.html'}" in printed.replace("\n", "")
    page = (out / "index.html").read_text()
    assert "Recurrent generation" in page and page.count('class="tile"') >= 3 * 2
    assert "Which creative for whom, and why" in page and "user 1 sees" in page and "P(" in page
