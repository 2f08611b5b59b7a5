"""A trained tiny RFNet, calibrated on validation: the temperature lowers its held-out NLL, the decision and the
OOD model are saved with it (torch and ONNX agree), and a photo with no product goes to a human."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.inspect.helpers import TINY, sample_items


@pytest.fixture(scope="module")
def calibrated(encoded, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, calibrate_model, split_sets, train_model

    torch.set_num_threads(1)
    tr, va, te = split_sets(encoded)
    torch.manual_seed(0)
    model = RFNet(**TINY)
    cfg = TrainConfig(epochs=12, batch_size=16, lr=3e-3, patience=100, seed=0, modality_dropout=0.2)
    train_model(model, tr, va, cfg, progress=False)
    cal = calibrate_model(model, tr, va, cfg)
    d = tmp_path_factory.mktemp("calibrated") / "m"
    model.save_pretrained(d)
    return model, cal, d, te


def test_calibration_lowers_held_out_nll_and_is_saved(calibrated) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.calibrate import nll
    from adcreative.inspect.metrics import encoded_outputs

    model, cal, d, te = calibrated
    assert cal["nll"] <= cal["nll_before"] and model.temperature == pytest.approx(cal["temperature"])
    # the test products were seen neither in training nor in calibration
    raw, _ = encoded_outputs(model, te, calibrated=False)
    y = te.labels.numpy()
    assert nll(raw, y, model.temperature) < nll(raw, y)
    loaded = load_inspector(d)
    assert loaded.temperature == model.temperature and loaded.decision == model.decision
    assert torch.equal(loaded.ood_prec, model.ood_prec) and bool(loaded.ood_prec.abs().sum() > 0)
    z, _ = encoded_outputs(loaded, te)
    np.testing.assert_allclose(z, raw / model.temperature, rtol=1e-4, atol=1e-4)


def test_photo_without_product_goes_to_a_human(calibrated, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    from skimage import data as skdata

    from adcreative.inspect.preprocess import InspectItem

    model, _, _, _ = calibrated
    assert model.decision is not None and model.decision.ood is not None
    product = sample_items(dataset, 1)[0]
    photos = [InspectItem(image=Image_from(skdata.astronaut()), title=product.title, product=product.product),
              InspectItem(image=Image_from(skdata.coffee()), title=product.title, product=product.product)]
    j = model.judge(photos)
    assert j.bands == ["human", "human"], (j.ood, model.decision)
    assert (j.ood > model.decision.ood).all()
    # the dataset's own images are mostly not out of distribution
    own = model.judge(sample_items(dataset, 12))
    assert (own.ood <= model.decision.ood).mean() >= 0.75


def test_onnx_export_judges_like_torch(calibrated, dataset: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.export import OnnxInspector, export_onnx

    model, _, _, _ = calibrated
    model.save_pretrained(tmp_path)
    export_onnx(model, tmp_path)
    items = sample_items(dataset, 4)
    a, b = model.judge(items), OnnxInspector(tmp_path).judge(items)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
    np.testing.assert_allclose(a.ood, b.ood, rtol=1e-3, atol=1e-2)
    assert a.bands == b.bands


def Image_from(arr: np.ndarray):  # type: ignore[no-untyped-def]
    from PIL import Image

    return Image.fromarray(arr).convert("RGB")
