"""The represent CLI in-process on a real store: features cached per creative; train → index → search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adcreative.cli import main
from adcreative.core.store import Store
from adcreative.core.types import Label
from adcreative.generate.provenance import build_generator, generate_and_store
from adcreative.represent.features import FEATURES_NAME, FEATURES_VERSION


def _store(tmp_path: Path, sample_products: list, n: int = 2) -> Store:
    store = Store(home=tmp_path / "home")
    prods = sample_products[:2]
    store.add_products(prods)
    gen = build_generator("compositor", scale=0.5)
    for p in prods:
        generate_and_store(store, gen, p, n=n, aspects=["1:1", "9:16"], seed=0)
    return store


def test_features_command_caches_per_creative(tmp_path: Path, sample_products: list,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path, sample_products, n=1)
    h = ["--home", str(tmp_path / "home")]
    out = tmp_path / "features.json"
    assert main([*h, "represent", "features", "--no-ocr", "--out", str(out)]) == 0
    ids = [c.id for c in store.creatives()]
    cached = store.get_features(FEATURES_NAME, ids, version=FEATURES_VERSION)
    assert set(cached) == set(ids)
    for c in store.creatives():
        f = cached[c.id]
        assert f["mask_source"] == "given" and 0.02 < f["product_area"] < 0.9
        assert f["bg_colors"] and f["sharpness"] > 0
    assert out.exists()
    assert main([*h, "represent", "features", "--product", "nope"]) == 2
    assert "no creatives" in capsys.readouterr().err


@pytest.mark.slow
def test_train_index_search(tmp_path: Path, sample_products: list, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path, sample_products, n=3)
    cs = store.creatives()
    for c in cs[:4]:
        store.add_label(Label(c.id, "available", "tester"))
    for c in cs[4:8]:
        store.add_label(Label(c.id, "space_mismatch", "tester"))
    h = ["--home", str(tmp_path / "home")]
    model, index = tmp_path / "enc", tmp_path / "ix"
    assert main([*h, "represent", "train", "--out", str(model), "--steps", "15", "--views", "2", "--threads", "1",
                 "--dim", "32"]) == 0
    assert (model / "config.json").exists() and (model / "model.safetensors").exists()
    assert main([*h, "represent", "embed", "--model", str(model)]) == 0
    assert main([*h, "represent", "index", "--model", str(model), "--out", str(index)]) == 0
    assert {p.name for p in index.iterdir()} == {"index.faiss", "ids.json", "meta.json"}
    capsys.readouterr()
    assert main([*h, "represent", "search", "--index", str(index), "--model", str(model), "--creative", cs[0].id,
                 "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "knn_p_available=" in out and cs[0].id not in out.split("knn:")[0]
    assert main([*h, "represent", "search", "--index", str(index), "--model", str(model)]) == 2


@pytest.mark.slow
def test_train_is_reproducible_with_its_seed(tmp_path: Path, sample_products: list) -> None:
    """One seed, one encoder: the heads' initial weights are seeded too (the simulation store's ENCODER is
    rebuilt by scripts/sim_store.sh), and another seed gives another encoder."""
    from safetensors.numpy import load_file

    _store(tmp_path, sample_products, n=1)
    h = ["--home", str(tmp_path / "home")]

    def train(out: str, seed: int) -> dict[str, np.ndarray]:
        assert main([*h, "represent", "train", "--out", str(tmp_path / out), "--steps", "2", "--views", "2",
                     "--dim", "32", "--no-text", "--seed", str(seed)]) == 0
        return load_file(tmp_path / out / "model.safetensors")

    a, b, c = train("a", 0), train("b", 0), train("c", 1)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
