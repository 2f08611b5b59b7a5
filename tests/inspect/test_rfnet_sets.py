"""scripts/rfnet_sets.sh, the recipe of the sets the shipped RFNet trained on (docs/inspect.md, rounds 20-22), run
end to end at a tiny size: the sample products stand in for the real cutouts, one SKU of each kind, one family."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from adcreative.catalogue.sample import sample_catalogue
from adcreative.inspect.datasets.formats import CLASSES, read_dataset

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rfnet_sets.sh"
JD_IDS = [str(r["id"]) for r in json.loads((ROOT / "tests" / "data" / "jd_products.json").read_text())]
EXTRA_IDS = ["p013", "p017", "p023", "p026", "p047", "p045", "p048"]  # the five forced into test + the two flagged
FORCED_TEST = {"1", "5", "p013", "p017", "p023", "p026", "p047"}


def _data(folder: Path) -> Path:
    """A stand-in for ../shared/data: JD ids in products/, products-extra ids (with their sheet) in products-extra/."""
    products = sample_catalogue()
    (folder / "products").mkdir(parents=True)
    for pid, p in zip(JD_IDS, products, strict=True):
        p.image.save(folder / "products" / f"{pid}.png")
    extra = folder / "products-extra"
    extra.mkdir()
    rows = ["id,file,title,category,kind,width,height,repo,path,license"]
    for pid, p in zip(EXTRA_IDS, products, strict=True):
        p.image.save(extra / f"{pid}.png")
        rows.append(f"{pid},{pid}.png,{p.title},{p.category},rgba,{p.image.width},{p.image.height},test,{pid}.png,MIT")
    (extra / "products.csv").write_text("\n".join(rows) + "\n")
    return folder


def _run(out: Path, data: Path, *sets: str, copies: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "SETS_DATA": str(data), "SETS_SKUS": "1",
           "SETS_RENDERERS": "compositor", "SETS_STUDIO_COPIES": copies}
    return subprocess.run(["bash", str(SCRIPT), str(out), *sets], env=env, capture_output=True, text=True,
                          timeout=600)


def test_refuses_an_unknown_set_and_missing_products_before_writing(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    r = _run(tmp_path / "out", data, "v11,v99")
    assert r.returncode == 2 and "unknown set 'v99' (v11, v12, v13, v16, v17, v41, v42, v43, v44)" in r.stderr
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "usage: scripts/rfnet_sets.sh OUT [v11,v12,v13,v16,v17,v41,v42,v43,v44]" in r.stderr
    r = _run(tmp_path / "out", tmp_path / "nowhere", "v11")
    assert r.returncode == 2 and "products is missing" in r.stderr
    (data / "products-extra" / "products.csv").unlink()
    r = _run(tmp_path / "out", data, "v11")
    assert r.returncode == 2 and "products.csv is missing" in r.stderr
    r = _run(tmp_path / "out", data, "v11", copies="two")
    assert r.returncode == 2 and "SETS_STUDIO_COPIES must be a whole number, not 'two'" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_renders_a_set_without_the_flagged_photos_and_with_the_forced_test_products(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = _run(out, _data(tmp_path / "data"), "v12", copies="1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "v12: --seed 14, procedural:1 + fitted:1, studio copies 1" in r.stdout
    extra = out / "products-extra-17"
    assert sorted(p.stem for p in extra.glob("*.png")) == sorted(EXTRA_IDS[:5])
    assert "p045" not in (extra / "products.csv").read_text()
    samples = read_dataset(out / "v12")
    splits: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        splits[s.product_id].add(s.split)
    assert not {"p045", "p048"} & set(splits)
    assert all(splits[pid] == {"test"} for pid in FORCED_TEST)
    assert {s.label for s in samples} == set(CLASSES)
    assert {s.renderer for s in samples} == {"compositor"}
    assert {s.product_source for s in samples} >= {"sample", "procedural", "fitted"}
    # SETS_STUDIO_COPIES=1: one matted studio copy of each real cutout the importer could matte back out, in its
    # source product's split (a white product on the white sweep may be left out: catalogue/studio.py)
    # the cutout each image was made of ('<id>_s1' for a copy) -> its splits
    made_of: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        made_of[s.id.split("-compositor-")[0]].add(s.split)
    copies = {m.removesuffix("_s1") for m in made_of if m.endswith("_s1")}
    assert len(copies) >= 5 and copies <= set(JD_IDS) | set(EXTRA_IDS[:5])
    assert all(made_of[f"{pid}_s1"] == splits[pid] for pid in copies)
