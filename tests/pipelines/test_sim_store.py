"""scripts/sim_store.sh, the recipe of the simulation store (SIMHOME + ENCODER of docs/select.md), run end to
end at a tiny size: 14 products, 2 compositor creatives each, a 2-step encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adcreative.catalogue.sample import sample_catalogue
from adcreative.core.store import Store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "sim_store.sh"
JD_IDS = [str(r["id"]) for r in json.loads((ROOT / "tests" / "data" / "jd_products.json").read_text())]


def _cutouts(folder: Path) -> Path:
    """Stand-ins for the 7 JD cutouts (the script's sheet names them by id): the sample products' renders."""
    folder.mkdir()
    for pid, p in zip(JD_IDS, sample_catalogue(), strict=True):
        p.image.save(folder / f"{pid}.png")
    return folder


def _run(home: Path, enc: Path, cutouts: Path, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != "ADCREATIVE_DATABASE_URL"}
    e.update(PYTHON=sys.executable, SIM_PRODUCTS=str(cutouts), **env)
    return subprocess.run(["bash", str(SCRIPT), str(home), str(enc)], env=e, capture_output=True, text=True,
                          timeout=800)


def test_refuses_a_store_that_is_not_fresh_and_missing_cutouts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "store.db").write_text("")
    r = _run(home, tmp_path / "enc", tmp_path)
    assert r.returncode == 2 and "not empty" in r.stderr
    r = _run(tmp_path / "fresh", tmp_path / "enc", tmp_path / "nowhere")
    assert r.returncode == 2 and "no product cutouts" in r.stderr
    assert not (tmp_path / "fresh").exists()


@pytest.mark.slow
@pytest.mark.sqlite_only  # the script always builds SQLite in SIMHOME: a PostgreSQL rerun would test nothing new
def test_builds_an_audited_store_and_an_encoder_the_simulator_reads(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home, enc = tmp_path / "home", tmp_path / "enc"
    r = _run(home, enc, _cutouts(tmp_path / "cutouts"), SIM_N="1", SIM_ASPECTS="1:1,9:16", SIM_STEPS="2",
             SIM_VIEWS="2")
    assert r.returncode == 0, r.stderr[-3000:]
    # the script always builds the SQLite store in SIMHOME; read that one, even where the environment points
    # stores at a server database
    monkeypatch.delenv("ADCREATIVE_DATABASE_URL", raising=False)
    store = Store(home=home)
    assert len(store.product_ids()) == 14
    cs = store.creatives()
    assert len(cs) == 28 and {c.aspect for c in cs} == {"1:1", "9:16"}
    assert all(c.generator.startswith("compositor") for c in cs)
    assert set(store.latest_verdicts([c.id for c in cs])) == {c.id for c in cs}  # every creative audited
    avail = store.available_creatives()
    assert 2 <= len(avail) < len(cs)
    assert (enc / "config.json").is_file() and json.loads((enc / "history.json").read_text())["loss"]
    assert f"{len(avail)} of {len(cs)} creatives are available" in r.stdout
