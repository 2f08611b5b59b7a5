"""Batch scoring of stored creatives (``inspect run``) with the torch model and its ONNX export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adcreative.cli import main

TINY = {"image_size": 64, "aux_size": 32, "dim": 32, "heads": 2, "layers": 1, "product_grid": 2,
        "max_text_tokens": 8, "dropout": 0.0}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny-rfnet")
    RFNet(**TINY).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store

    h = tmp_path_factory.mktemp("home")
    Store(home=h).add_products(sample_catalogue()[:3])
    return h


def test_inspect_run_writes_verdicts_torch_and_onnx(home: Path, tiny_model: Path, tmp_path: Path) -> None:
    from adcreative.core.store import Store

    store = Store(home=home)
    pid = store.product_ids()[2]
    assert main(["--home", str(home), "generate", "--product", pid, "--n", "3", "--aspect", "1:1,16:9"]) == 0
    todo = [c for c in store.creatives(product_id=pid) if store.latest_verdict(c.id) is None]
    assert len(todo) == 6
    assert main(["--home", str(home), "inspect", "run", "--model", str(tiny_model), "--product", pid,
                 "--batch-size", "4"]) == 0
    torch_v = {c.id: store.latest_verdict(c.id) for c in todo}
    assert all(v is not None and v.model_id.startswith("rfnet:") for v in torch_v.values())
    # an uncalibrated model has no human band: two-way at P(available) 0.5, stored with each verdict
    assert all(v is not None and v.band == ("accept" if v.p_available >= 0.5 else "reject") for v in torch_v.values())
    onnx_dir = tmp_path / "onnx"
    assert main(["inspect", "export", "--model", str(tiny_model), "--out", str(onnx_dir)]) == 0
    assert main(["--home", str(home), "inspect", "run", "--model", str(onnx_dir), "--onnx", "--product", pid,
                 "--rescore"]) == 0
    for c in todo:
        v = store.latest_verdict(c.id)
        assert v is not None and v.model_id.endswith("/onnx")
        old = torch_v[c.id]
        assert old is not None and abs(v.p_available - old.p_available) < 1e-4 and v.band == old.band
