"""`select rank` and `select simulate` in-process, with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

pytest.importorskip("torch")


from adcreative.cli import main
from adcreative.select.simulator import build_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    feats = np.random.default_rng(0).standard_normal((12, 16)).astype(np.float32)
    return build_bundle(tmp_path_factory.mktemp("b") / "bundle", feats, n_logged=1500, epochs=1)


def test_cli_rank_and_errors(bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", "rank", "--model", str(bundle_dir), "--ad", "sim", "--candidates", "sim_0,sim_3,sim_5",
                 "--user", '{"segment": 2, "x0": 1.0}']) == 0
    out = capsys.readouterr().out
    assert "sim_3" in out and "ranked" in out
    assert main(["select", "rank", "--model", str(tmp_path / "none"), "--ad", "sim", "--candidates", "a"]) == 2
    assert main(["select", "rank", "--model", str(bundle_dir), "--ad", "sim", "--candidates", "zzz"]) == 2
    assert main(["select", "rank", "--model", str(bundle_dir), "--ad", "sim", "--candidates", "sim_1",
                 "--user", "[1]"]) == 2
    assert main(["serve", "--model", str(tmp_path / "none"), "--port", "1"]) == 2
    assert "MANIFEST.json" in capsys.readouterr().err


def test_cli_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    for j, col in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        im = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
        im.paste((*col, 255), (10, 10, 70, 70))
        im.save(tmp_path / f"p{j}.png")
    png = tmp_path / "curves.png"
    assert main(["select", "simulate", "--products", str(tmp_path), "--creatives", "6", "--n", "600",
                 "--policies", "oracle,ours,uniform", "--png", str(png)]) == 0
    assert png.exists() and "N = 600" in capsys.readouterr().out
    assert main(["select", "simulate", "--n", "10"]) == 2
    # a broken cutout in the folder is named in one line (it was opened unchecked: a PIL traceback)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "p0.png").write_bytes((tmp_path / "p0.png").read_bytes())
    (bad / "p9.png").write_bytes((tmp_path / "p0.png").read_bytes()[:60])
    capsys.readouterr()
    assert main(["select", "simulate", "--products", str(bad), "--creatives", "3", "--n", "100"]) == 2
    err = capsys.readouterr().err
    assert "p9.png" in err and "Traceback" not in err
