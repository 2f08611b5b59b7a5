"""A trained tiny RFNet, calibrated on validation: the temperature lowers its held-out NLL, the decision and the
OOD model are saved with it (torch and ONNX agree). (That the shipped default sends a photo with no product to a
human is tested in test_base.py.)"""

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
    # three products train, two validate (so the temperature is fitted on more than one product), two test
    part = {"0": "train", "1": "train", "2": "train", "4": "val", "5": "val", "6": "test", "8": "test"}
    rows = {k: [i for i, p in enumerate(encoded.product_ids) if part.get(p) == k] for k in ("train", "val", "test")}
    if not all(rows.values()):
        tr, va, te = split_sets(encoded)  # the drawn stand-in cutouts (no shared data): the helper's split
    else:
        tr, va, te = (encoded.subset(rows[k]) for k in ("train", "val", "test"))
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


def test_ood_model_scores_training_data_low_and_unlike_data_high(calibrated) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.metrics import encoded_outputs

    model, _, _, te = calibrated
    _, feats = encoded_outputs(model, te)
    f = torch.from_numpy(feats)
    parts = model.ood_parts(f)
    assert parts.shape == (len(te), 2) and bool((parts >= 0).all())
    # features pushed away from the data (a fused embedding nothing like training's, a product that does not match
    # its cutout) score higher than the data itself
    far = f.clone()
    far[:, :-2] += 10 * f[:, :-2].std(0)
    mismatch = f.clone()
    mismatch[:, -2:] = 0.0  # cosine 0 to the cutout, no affinity to its colours inside the mask
    assert bool((model.ood_score(far) > model.ood_score(f)).all())
    assert float(model.ood_parts(mismatch)[:, 1].median()) > float(parts[:, 1].median())


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
