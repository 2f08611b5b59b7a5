"""`dataset synth` in-process: the written dataset reads back, is the same for any workers, mixes families."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from adcreative.catalogue.sample import save_catalogue
from adcreative.cli import main
from adcreative.core.types import Product
from adcreative.inspect.datasets.formats import read_dataset


@pytest.fixture()
def catalogue(tmp_path: Path, sample_products: list[Product]) -> Path:
    return save_catalogue(sample_products[:3], tmp_path / "cat")


def test_dataset_synth_and_read(tmp_path: Path, catalogue: Path) -> None:
    out = tmp_path / "ds"
    assert main(["dataset", "synth", "--products", str(catalogue), "--out", str(out), "--per-class", "1",
                 "--scale", "0.3", "--colourways", "1"]) == 0
    samples = read_dataset(out)
    assert len(samples) == 3 * 2 * 6
    by_product: dict[str, set[str]] = {}
    for s in samples:
        by_product.setdefault(s.product_id, set()).add(s.split)
        assert s.image.exists() and s.mask is not None and s.mask.exists() and s.product is not None
        assert Image.open(s.mask).size == Image.open(s.image).size
    assert all(len(v) == 1 for v in by_product.values())  # no product in two splits
    assert {next(iter(v)) for v in by_product.values()} == {"train", "val", "test"}
    assert main(["dataset", "info", str(out)]) == 0


def test_dataset_synth_same_for_any_workers_and_per_product(tmp_path: Path, catalogue: Path) -> None:

    def rows(d: Path) -> dict[str, dict]:
        out = {}
        for line in (d / "manifest.jsonl").read_text().splitlines():
            r = json.loads(line)
            r["split"] = None  # splits depend on the product set; the images must not
            out[r["id"]] = r
        return out

    one, two = tmp_path / "w1", tmp_path / "w2"
    base = ["dataset", "synth", "--products", str(catalogue), "--per-class", "1", "--scale", "0.25"]
    assert main([*base, "--out", str(one)]) == 0
    assert main([*base, "--out", str(two), "--workers", "2"]) == 0
    r1, r2 = rows(one), rows(two)
    assert r1 == r2 and len(r1) == 3 * 6
    for sid, r in r1.items():
        assert (one / r["image"]).read_bytes() == (two / r["image"]).read_bytes(), sid
    # a product's images are drawn from its own seed: rendering it alone gives the same files
    solo = tmp_path / "solo"
    only = sorted({r["product_id"] for r in r1.values()})[0]
    shutil.copytree(catalogue, tmp_path / "cat1")
    for f in (tmp_path / "cat1").iterdir():
        if f.suffix == ".png" and f.stem != only:
            f.unlink()
    meta = tmp_path / "cat1" / "products.json"
    if meta.exists():  # the sheet must name only the images that are there (the import is all or nothing)
        entries = json.loads(meta.read_text())
        kept = ({k: v for k, v in entries.items() if k == only} if isinstance(entries, dict)
                else [e for e in entries if e.get("id") == only])
        meta.write_text(json.dumps(kept))
    assert main(["dataset", "synth", "--products", str(tmp_path / "cat1"), "--per-class", "1", "--scale", "0.25",
                 "--out", str(solo)]) == 0
    rs = rows(solo)
    assert rs and set(rs) <= set(r1)
    for sid, r in rs.items():
        assert (solo / r["image"]).read_bytes() == (one / r["image"]).read_bytes(), sid
    assert main([*base, "--out", str(tmp_path / "bad"), "--workers", "0"]) == 2


def test_dataset_synth_product_families(tmp_path: Path) -> None:
    """procedural:N and fitted:N mix in one dataset; a bad count is refused before anything is written."""
    out = tmp_path / "mix"
    assert main(["dataset", "synth", "--products", "procedural:2", "--products", "fitted:2", "--per-class", "1",
                 "--scale", "0.25", "--out", str(out)]) == 0
    pids = {s.product_id for s in read_dataset(out)}
    assert pids == {"proc-00000", "proc-00001", "fit-00000", "fit-00001"}
    assert {s.product_source for s in read_dataset(out)} == {"procedural", "fitted"}
    some = tmp_path / "some"  # colourways for one source only
    assert main(["dataset", "synth", "--products", "procedural:1", "--products", "fitted:1", "--per-class", "1",
                 "--scale", "0.25", "--colourways", "1", "--colourways-of", "fitted", "--out", str(some)]) == 0
    ids = {s.id.split("-compositor-")[0] for s in read_dataset(some)}
    assert ids == {"proc-00000", "fit-00000", "fit-00000_c1"}
    assert main(["dataset", "synth", "--products", "fitted:0", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_dataset_synth_mixes_renderer_families(tmp_path: Path, catalogue: Path) -> None:
    """--renderers writes one dataset whose manifest names each sample's family, with measured labels and the
    degradations recorded; products keep one split across families; an unknown family is a usage error."""
    out = tmp_path / "fam"
    assert main(["dataset", "synth", "--products", str(catalogue), "--per-class", "1", "--scale", "0.3",
                 "--renderers", "compositor,photoset,softfocus", "--out", str(out)]) == 0
    samples = read_dataset(out)
    assert 3 * 3 * 6 - 3 <= len(samples) <= 3 * 3 * 6  # a sample still ambiguous after every redraw is dropped
    assert {s.renderer for s in samples} == {"compositor", "photoset", "softfocus"}
    for s in samples:
        assert s.params["requested"] in ("available", "unsuitable", "space_mismatch", "size_mismatch",
                                         "indistinctiveness", "shape_hallucination")
        assert s.label == s.params["requested"] or not s.params["agrees"]  # relabelled only when measured so
        if s.label == "available":
            assert s.params["defects"] == [] and s.params["doubtful"] == []  # plainly acceptable
        assert "measured" in s.params and "degrade" in s.params and s.product_source == "real"
        assert s.generator.split("@")[0] == s.renderer
    splits: dict[str, set[str]] = {}
    for s in samples:
        splits.setdefault(s.product_id, set()).add(s.split)
    assert all(len(v) == 1 for v in splits.values())
    assert "Labeller agreement" in (out / "README.md").read_text() and "dropped" in (out / "README.md").read_text()
    assert main(["dataset", "synth", "--products", str(catalogue), "--renderers", "compositor,nope",
                 "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
