"""A trained tiny RFNet, calibrated on validation: the temperature lowers its held-out NLL, the decision and the
OOD model are saved with it (torch and ONNX agree). (That the shipped default sends a photo with no product to a
human is tested in test_base.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.inspect.helpers import SHARED, TINY, sample_items


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
    loaded = load_inspector(d)
    assert loaded.temperature == model.temperature and loaded.decision == model.decision
    assert torch.equal(loaded.ood_prec, model.ood_prec) and bool(loaded.ood_prec.abs().sum() > 0)
    z, _ = encoded_outputs(loaded, te)
    np.testing.assert_allclose(z, raw / model.temperature, rtol=1e-4, atol=1e-4)
    if not SHARED.is_dir():  # the drawn stand-ins: 24 test images of two shapes are too few to tell (T ≈ 1.03)
        pytest.skip(f"held-out NLL needs the real JD cutouts ({SHARED} is absent)")
    assert nll(raw, y, model.temperature) < nll(raw, y)


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


def test_real_bias_moves_only_real_products_images_in_torch_onnx_and_encodings(  # type: ignore[no-untyped-def]
        calibrated, dataset: Path, tmp_path: Path) -> None:
    import dataclasses
    import json

    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.metrics import encoded_outputs

    model, _, d, te = calibrated
    net = load_inspector(d)
    bias = [0.5, -1.0, 0.1, 0.2, 0.1, 0.1]
    items = sample_items(dataset, 4)
    real = [dataclasses.replace(it, product_source="real") for it in items]
    drawn = [dataclasses.replace(it, product_source="procedural") for it in items]
    before_real, before_drawn = net.judge(real).probs, net.judge(drawn).probs
    net.set_real_bias(bias)
    net.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["real_bias"] == bias
    loaded = load_inspector(tmp_path)
    assert loaded.real_bias == bias
    np.testing.assert_allclose(loaded.judge(drawn).probs, before_drawn, atol=1e-6)  # drawn SKUs: untouched
    want = before_real * np.exp(bias)
    want /= want.sum(1, keepdims=True)
    got = loaded.judge(real)
    np.testing.assert_allclose(got.probs, want, atol=1e-5)
    export_onnx(loaded, tmp_path)
    onnx = OnnxInspector(tmp_path).judge(real)
    np.testing.assert_allclose(onnx.probs, got.probs, atol=1e-4)
    assert onnx.bands == got.bands
    # cached encodings: the bias on the rows whose product is real (an unknown source counts as real), calibrated only
    z0, _ = encoded_outputs(model, te)
    z1, _ = encoded_outputs(loaded, te)
    z_raw, _ = encoded_outputs(loaded, te, calibrated=False)
    is_real = np.array([s not in ("sample", "procedural", "fitted") for s in te.sources])
    np.testing.assert_allclose(z1[~is_real], z0[~is_real], atol=1e-5)
    np.testing.assert_allclose(z1[is_real], z0[is_real] + np.array(bias), atol=1e-5)
    np.testing.assert_allclose(z_raw, z0 * model.temperature, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="real_bias"):
        net.set_real_bias([1.0, float("nan"), 0, 0, 0, 0])


def test_a_renderers_own_calibration_moves_only_its_images_in_torch_onnx_encodings_and_eval(  # type: ignore[no-untyped-def]
        calibrated, dataset: Path, tmp_path: Path) -> None:
    """``inspect calibrate-renderer``'s calibration: images of that renderer are judged at softmax(log p / T' + b),
    everywhere the model judges (torch, ONNX, cached encodings, eval's metrics); other renderers' are untouched,
    and a full recalibration drops it (it was fitted on top of the old calibration)."""
    import dataclasses
    import json

    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.calibrate import softmax
    from adcreative.inspect.evaluate import evaluate_model
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.metrics import encoded_outputs
    from adcreative.inspect.train import TrainConfig, calibrate_model

    model, _, d, te = calibrated
    net = load_inspector(d)
    items = sample_items(dataset, 4)
    new = [dataclasses.replace(it, renderer="lowkey") for it in items]
    known = [dataclasses.replace(it, renderer="compositor") for it in items]
    before_new, before_known = net.judge(new).probs, net.judge(known).probs
    bias = [0.4, -0.2, -0.2, 0.0, 0.0, 0.0]
    net.set_renderer_calibration("lowkey", 2.5, bias)
    net.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["renderer_calibration"] == \
        {"lowkey": {"temperature": 2.5, "bias": bias}}
    loaded = load_inspector(tmp_path)
    np.testing.assert_allclose(loaded.judge(known).probs, before_known, atol=1e-6)
    got = loaded.judge(new)
    np.testing.assert_allclose(got.probs, softmax(np.log(before_new) / 2.5 + np.array(bias)), atol=1e-5)
    export_onnx(loaded, tmp_path)
    onnx = OnnxInspector(tmp_path).judge(new)
    np.testing.assert_allclose(onnx.probs, got.probs, atol=1e-4)
    assert onnx.bands == got.bands
    # cached encodings and eval: that renderer's rows only
    mixed = te.subset(list(range(len(te))))
    mixed.renderers = ["lowkey" if i % 2 else "compositor" for i in range(len(mixed))]
    z0, _ = encoded_outputs(model, mixed)
    z1, _ = encoded_outputs(loaded, mixed)
    odd = np.arange(len(mixed)) % 2 == 1
    np.testing.assert_allclose(z1[~odd], z0[~odd], atol=1e-5)
    np.testing.assert_allclose(z1[odd], z0[odd] / 2.5 + np.array(bias), atol=1e-5)
    m = evaluate_model(loaded, mixed)
    assert m["calibration"]["renderer_calibration"] is True
    y = mixed.labels.numpy()
    from adcreative.inspect.calibrate import nll

    assert m["calibration"]["nll"] == pytest.approx(nll(z1, y), rel=1e-5)
    assert evaluate_model(model, mixed)["calibration"]["nll"] == pytest.approx(nll(z0, y), rel=1e-5)
    net.set_renderer_calibration("lowkey", None)
    assert net.renderer_calibration is None and net.config["renderer_calibration"] is None
    net.set_renderer_calibration("lowkey", 2.5)
    calibrate_model(net, te, te, TrainConfig(seed=0))
    assert net.renderer_calibration is None and net.config["renderer_calibration"] is None


def test_eval_measures_the_model_as_it_judges_with_its_real_bias(  # type: ignore[no-untyped-def]
        calibrated) -> None:
    """``inspect eval`` (and leave-one-renderer-out, and training's test figures) measure the probabilities
    ``judge`` gives: with the model's real-product bias on real products' rows. Until round 28 they left the
    bias out, so the shipped default's figures on a user's real products described a model nobody runs."""
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.calibrate import nll, softmax
    from adcreative.inspect.evaluate import evaluate_model
    from adcreative.inspect.metrics import average_precision, compute_metrics, encoded_outputs

    _, _, d, te = calibrated
    real = te.subset(list(range(len(te))))
    real.sources = ["real"] * len(real)  # every row a real product's, so the bias applies to all of them
    net = load_inspector(d)
    plain = evaluate_model(net, real)
    net.set_real_bias([3.0, -1.0, -0.5, -0.5, -0.5, -0.5])  # strong enough to move verdicts and bands
    m = evaluate_model(net, real)
    z, ood = encoded_outputs(net, real, ood=True)  # calibrated: T and the bias, as judge gives them
    p, y = softmax(z), real.labels.numpy()
    assert m["ap_available"] == pytest.approx(average_precision(y == 0, p[:, 0]))
    assert m["macro_f1"] == pytest.approx(compute_metrics(y, p)["macro_f1"])
    assert m["calibration"]["nll"] == pytest.approx(nll(z, y), rel=1e-6)
    assert m["calibration"]["nll_before"] == plain["calibration"]["nll_before"]  # the raw model is the same
    assert net.decision is not None
    bands = net.decision.bands(p[:, 0], ood, real.placement.numpy(), real.renderers, real.sources)
    assert m["decision"]["counts"] == {k: bands.count(k) for k in ("accept", "human", "reject")}
    assert m["decision"]["counts"] != plain["decision"]["counts"]  # the bias moved images between bands
    # a drawn product's rows are judged without it
    drawn = te.subset(list(range(len(te))))
    drawn.sources = ["procedural"] * len(drawn)
    assert evaluate_model(net, drawn)["decision"] == evaluate_model(load_inspector(d), drawn)["decision"]


def test_calibration_fits_the_real_bias_on_real_validation_rows(encoded) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.calibrate import MIN_REAL_ROWS, softmax
    from adcreative.inspect.metrics import encoded_outputs
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, calibrate_model

    torch.manual_seed(0)
    model = RFNet(**TINY)
    # every row made a real product's, repeated until validation has enough of them (the tiny set has 2 per class)
    va = encoded.subset(np.tile(np.arange(len(encoded)), -(-MIN_REAL_ROWS // len(encoded)) + 1))
    va.sources = ["real"] * len(va)
    assert calibrate_model(model, encoded, va, TrainConfig(seed=0))["real_bias"] is None  # off by default
    cal = calibrate_model(model, encoded, va, TrainConfig(seed=0, real_bias=True))
    assert cal["real_rows"] == len(va) and cal["real_bias"] == model.real_bias is not None
    assert model.config["real_bias"] == model.real_bias
    assert cal["real_nll"] <= cal["real_nll_before"]
    # the fitted rows' mean probability of each class is its share (the bias's maximum-likelihood condition)
    z, _ = encoded_outputs(model, va)
    y = va.labels.numpy()
    np.testing.assert_allclose(softmax(z).mean(0), np.bincount(y, minlength=6) / len(y), atol=2e-3)
    # drawn products only: no bias, and a recalibration drops the one fitted before
    va.sources = ["procedural"] * len(va)
    cal = calibrate_model(model, encoded, va, TrainConfig(seed=0, real_bias=True))
    assert cal["real_rows"] == 0 and cal["real_bias"] is None and model.real_bias is None


def _restyled(item, seed: int):  # type: ignore[no-untyped-def]
    """``item`` with the scene around the product repainted in another style (fine coloured stripes and noise,
    as a renderer this model never saw might draw it); the product's pixels and mask are kept."""
    import dataclasses

    from PIL import Image

    rng = np.random.default_rng(seed)
    img = np.asarray(item.image.convert("RGB")).astype(np.float32)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    stripes = (np.sin((xx + 0.6 * yy) / 1.7)[..., None] * rng.uniform(60, 110, 3) + 128
               + rng.normal(0, 25, (h, w, 3)))
    m = (np.asarray(item.mask.convert("L")) > 127)[..., None] if item.mask is not None else np.zeros((h, w, 1), bool)
    out = np.where(m, img, stripes).clip(0, 255).astype(np.uint8)
    return dataclasses.replace(item, image=Image.fromarray(out))


def test_scene_style_sends_a_new_renderer_to_a_human(encoded, dataset: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """ood_style='scene': a third OOD distance, of the trunk's channel statistics around the product to the
    nearest training family. The same products redrawn in a style no training image has go to a human (the
    classifier's features alone need not notice); the familiar style mostly does not; the fit is saved."""
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, calibrate_model, split_sets

    tr, va, _ = split_sets(encoded)
    # two "families" in training: the style model keeps one mean per family
    tr.renderers = ["a" if i % 2 else "b" for i in range(len(tr))]
    torch.manual_seed(0)
    model = RFNet(**TINY, ood_style="scene")
    calibrate_model(model, tr, va, TrainConfig(seed=0))
    assert model.style_mean.shape[0] == 2 and model.decision is not None and model.decision.ood is not None
    # the style distance is put on the other parts' tail: at the decision's quantile on validation they agree, so
    # one threshold flags an image in either one's tail
    from adcreative.inspect.metrics import encoded_outputs

    pv = model.ood_parts(torch.from_numpy(encoded_outputs(model, va)[1]))
    assert float(torch.quantile(pv[:, 2], 0.99)) == pytest.approx(float(torch.quantile(pv[:, :2].max(1).values,
                                                                                         0.99)), rel=1e-3)
    items = sample_items(dataset, 84)
    items = [it for it in items if it.product_id in {"6", "8"}] or items[-12:]  # test products, unseen
    known = model.judge(items)
    new = model.judge([_restyled(it, i) for i, it in enumerate(items)])
    # an untrained model sends most images to a human on P(available) alone: the OOD threshold is what is tested
    thr = model.decision.ood
    assert bool((new.ood > thr).all()) and new.bands == ["human"] * len(items)
    assert float(np.mean(known.ood > thr)) < 0.5
    with torch.no_grad():
        _, f_new = model.outputs(model.encode(model.prepare([_restyled(it, i) for i, it in enumerate(items[:4])])))
        _, f_known = model.outputs(model.encode(model.prepare(items[:4])))
        parts_new, parts_known = model.ood_parts(f_new), model.ood_parts(f_known)
    assert parts_new.shape == (4, 3)
    assert float(parts_new[:, 2].min()) > 3 * float(parts_known[:, 2].max())
    model.save_pretrained(tmp_path)
    loaded = load_inspector(tmp_path)
    assert loaded.ood_style == "scene" and torch.equal(loaded.style_mean, model.style_mean)
    np.testing.assert_allclose(loaded.judge(items).ood, known.ood, rtol=1e-4)
    from adcreative.inspect.export import OnnxInspector, export_onnx

    export_onnx(model, tmp_path)  # the exported graph computes the third distance too
    np.testing.assert_allclose(OnnxInspector(tmp_path).judge(items[:6]).ood, known.ood[:6], rtol=1e-3, atol=1e-2)


def test_ood_style_is_checked() -> None:
    from adcreative.inspect.model import RFNet

    with pytest.raises(ValueError, match="ood_style"):
        RFNet(**TINY, ood_style="texture")


def test_calibration_can_choose_thresholds_per_renderer_family(encoded) -> None:  # type: ignore[no-untyped-def]
    """TrainConfig(decision_groups="family") hands validation's renderer families to choose_decision: the saved
    decision is the family rule's on the calibrated P(available); an unknown rule is refused."""
    from adcreative.core.errors import InputError
    from adcreative.inspect.decision import choose_decision
    from adcreative.inspect.metrics import encoded_outputs
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, calibrate_model, split_sets

    tr, va, _ = split_sets(encoded)
    va.renderers = ["a" if i % 2 else "b" for i in range(len(va))]
    torch.manual_seed(0)
    model = RFNet(**TINY)
    cfg = TrainConfig(seed=0, target_reject=0.9, decision_groups="family", decision_min_group=2)
    calibrate_model(model, tr, va, cfg)
    d = model.decision
    assert d is not None and d.groups == "family"
    z, _ = encoded_outputs(model, va)
    p = torch.softmax(torch.from_numpy(z), -1).numpy()[:, 0]
    y = va.labels.numpy()
    again = choose_decision(p, y == 0, target_accept=0.99, target_reject=0.9, groups=va.renderers, min_group=2,
                            min_class=5)
    assert (d.accept, d.reject) == pytest.approx((again.accept, again.reject), abs=1e-5)  # float32 softmax
    pooled = choose_decision(p, y == 0, target_accept=0.99, target_reject=0.9)
    assert d.accept >= pooled.accept - 1e-5 and d.reject < pooled.reject - 1e-3  # a family is stricter here
    # the rule "floor": the same pooled accept and worst-family reject as reject-family, families raised to it
    calibrate_model(model, tr, va, TrainConfig(seed=0, target_reject=0.9, decision_groups="floor",
                                               decision_min_group=2))
    d = model.decision
    again = choose_decision(p, y == 0, target_accept=0.99, target_reject=0.9, groups=va.renderers, min_group=2,
                            family_accept=False, family_floor=True)
    assert d is not None and d.groups == again.groups == "floor" and d.families is not None
    assert (d.accept, d.reject) == pytest.approx((again.accept, again.reject), abs=1e-5)
    assert all(d.for_family(f).accept >= d.accept for f in d.families)
    with pytest.raises(InputError, match="decision groups"):
        calibrate_model(model, tr, va, TrainConfig(decision_groups="renderer"))


def test_the_ood_fit_reads_its_training_rows_in_place(calibrated, encoded) -> None:  # type: ignore[no-untyped-def]
    """calibrate_model reads the (at most max_fit) training rows of the OOD fit in place, not from a copied subset
    (4 GB of maps at 20,000 rows): the outputs and the fitted model equal those of the subset itself."""
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.metrics import encoded_outputs
    from adcreative.inspect.train import TrainConfig, calibrate_model, split_sets

    model, _, d, te = calibrated
    pick = np.array([5, 1, 3, 8, 2])  # any rows, in any order
    for cal in (False, True):
        z, f = encoded_outputs(model, te, rows=pick, calibrated=cal, batch_size=2)
        z_sub, f_sub = encoded_outputs(model, te.subset(pick), calibrated=cal, batch_size=2)
        assert np.array_equal(z, z_sub) and np.array_equal(f, f_sub)
    tr, va, _ = split_sets(encoded)
    cfg, k = TrainConfig(seed=3), len(tr) // 2
    in_place, copied = load_inspector(d), load_inspector(d)
    calibrate_model(in_place, tr, va, cfg, max_fit=k)
    rows = np.sort(np.random.default_rng(3).choice(len(tr), k, replace=False))  # the rows calibrate_model draws
    calibrate_model(copied, tr.subset(rows), va, cfg, max_fit=len(tr))
    assert torch.equal(in_place.ood_prec, copied.ood_prec) and torch.equal(in_place.ood_mean, copied.ood_mean)
    assert in_place.decision == copied.decision and in_place.temperature == copied.temperature
