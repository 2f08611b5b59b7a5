"""The inspect CLI in-process: training from the store's human labels, clear errors on bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adcreative.cli import main
from adcreative.core.types import CLASSES, Label


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator, generate_and_store

    h = tmp_path_factory.mktemp("home")
    store = Store(home=h)
    products = sample_catalogue()[:3]
    store.add_products(products)
    gen = build_generator("compositor", scale=0.25)
    for p in products:
        generate_and_store(store, gen, p, n=2, aspects=["1:1"], seed=3)
    return h


def test_train_from_store_labels(home: Path, tmp_path: Path) -> None:
    from adcreative.core.store import Store
    from adcreative.inspect.data import latest_labels

    store = Store(home=home)
    creatives = store.creatives()
    assert len(creatives) >= 6
    for i, c in enumerate(creatives):
        store.add_label(Label(c.id, CLASSES[i % 3], reviewer="qa"))
    store.add_label(Label(creatives[0].id, "size_mismatch", reviewer="lead"))  # a later label wins
    assert latest_labels(store)[creatives[0].id] == "size_mismatch"
    out = tmp_path / "from-labels"
    code = main(["--home", str(home), "inspect", "train", "--store-labels", "--out", str(out), "--epochs", "2",
                 "--image-size", "64", "--aux-size", "32", "--dim", "32", "--layers", "1", "--threads", "1"])
    assert code == 0 and (out / "model.safetensors").exists()
    # nothing to train on: a clear error
    assert main(["--home", str(tmp_path / "empty"), "inspect", "train", "--store-labels", "--out",
                 str(tmp_path / "x")]) == 2


def test_cli_bad_inputs(tmp_path: Path) -> None:
    assert main(["inspect", "eval", "--data", str(tmp_path / "nope")]) == 2
    (tmp_path / "ds").mkdir()
    assert main(["inspect", "train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "m")]) == 2
    assert main(["inspect", "run", "--model", str(tmp_path)]) in (0, 2)  # empty store: nothing to score
    assert main(["inspect", "info", "--model", str(tmp_path)]) == 2
    assert not (tmp_path / "m").exists()
