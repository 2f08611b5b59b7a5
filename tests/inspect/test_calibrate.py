"""Temperature scaling lowers the NLL on held-out data; ECE and the reliability diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adcreative.inspect.calibrate import (
    available_calibration_error,
    calibration_metrics,
    expected_calibration_error,
    fit_real_bias,
    fit_temperature,
    nll,
    plot_reliability,
    softmax,
    with_real_bias,
)


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a 6-class model that is right ~70% of the time but says so with ~99% confidence."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n)
    z = rng.normal(0, 1, (n, 6))
    z[np.arange(n), y] += 1.5
    return z * 4.0, y


def test_temperature_fitted_on_validation_lowers_nll_and_ece_on_held_out_data() -> None:
    z_val, y_val = overconfident(2000, seed=1)
    z_test, y_test = overconfident(2000, seed=2)  # held out: never seen by the fit
    t = fit_temperature(z_val, y_val)
    assert 2.0 < t < 8.0  # the logits were inflated 4×
    assert nll(z_test, y_test, t) < nll(z_test, y_test) - 0.5
    assert expected_calibration_error(softmax(z_test, t), y_test) < 0.05
    assert expected_calibration_error(softmax(z_test), y_test) > 0.15
    # the arg-max, hence accuracy and macro-F1, does not move
    np.testing.assert_array_equal(softmax(z_test, t).argmax(1), softmax(z_test).argmax(1))
    m = calibration_metrics(z_test, y_test, t)
    assert m["nll"] < m["nll_before"] and m["ece"] < m["ece_before"]
    assert m["ece_available"] < m["ece_available_before"]


def shifted(n: int, seed: int, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated logits of a 6-class model whose class-1 logit is ``shift`` too high on every row (the
    *unsuitable* sink on real products), with true classes drawn from the unshifted model."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.2, (n, 6))
    p = softmax(z)
    y = np.array([rng.choice(6, p=row) for row in p])
    z[:, 1] += shift
    return z, y


def test_real_bias_removes_a_class_shift_on_held_out_rows() -> None:
    z_val, y_val = shifted(3000, seed=1)
    z_test, y_test = shifted(3000, seed=2)  # held out: never seen by the fit
    b = fit_real_bias(z_val, y_val)
    assert b is not None and abs(sum(b)) < 1e-9  # centred
    # the shift is found: class 1 pulled down by about 1.5 against the others
    assert float(b[1] - np.mean(np.delete(b, 1))) == pytest.approx(-1.5, abs=0.2)
    # maximum likelihood: on the fitting rows the mean probability of each class is its share
    np.testing.assert_allclose(softmax(z_val + b).mean(0), np.bincount(y_val, minlength=6) / len(y_val), atol=1e-3)
    assert nll(z_test + np.array(b), y_test) < nll(z_test, y_test) - 0.05
    share = float((y_test == 1).mean())
    assert abs(float(softmax(z_test + np.array(b))[:, 1].mean()) - share) < 0.02 < float(softmax(z_test)[:, 1].mean()) - share


def test_real_bias_needs_enough_rows_of_every_class_and_touches_only_real_rows() -> None:
    z, y = shifted(3000, seed=3)
    assert fit_real_bias(z[:150], y[:150]) is None  # under MIN_REAL_ROWS
    keep = y != 4
    assert fit_real_bias(z[keep], y[keep]) is None  # a class without rows would take an unbounded bias
    real = np.arange(10) % 2 == 0
    out = with_real_bias(z[:10], real, [1.0, 0, 0, 0, 0, -1.0])
    np.testing.assert_array_equal(out[~real], z[:10][~real])
    np.testing.assert_allclose(out[real] - z[:10][real], np.tile([1.0, 0, 0, 0, 0, -1.0], (5, 1)))
    assert with_real_bias(z, real[:1].repeat(len(z)), None) is z


def test_a_calibrated_model_keeps_its_temperature() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 4000)
    p = np.full((4000, 6), 0.04)
    p[np.arange(4000), y] = 0.8  # right 80% of the time at confidence 0.8
    wrong = rng.random(4000) < 0.2
    p[wrong] = np.roll(p[wrong], 1, axis=1)
    t = fit_temperature(np.log(p), y)
    assert abs(t - 1.0) < 0.1
    assert expected_calibration_error(p, y) < 0.03
    assert available_calibration_error(p, y) < 0.05


def test_reliability_diagram(tmp_path: Path) -> None:
    z, y = overconfident(300, seed=3)
    path = plot_reliability(y, softmax(z, 4.0), tmp_path / "rel.png", before=softmax(z))
    assert Image.open(path).size[0] > 500


def test_a_renderers_own_temperature_lowers_nll_and_ece_on_its_images_out_of_fold() -> None:
    """A model over-confident on one renderer's images (the training renderers' T does not carry to it): the
    renderer's own T', fitted on a hundred of its reviewed images, lowers NLL and ECE on images of products it was
    not fitted on (cross-validated by product), and on a fresh draw of that renderer's images."""
    from adcreative.inspect.calibrate import MIN_RENDERER_ROWS, fit_renderer_calibration

    z, y = overconfident(100, seed=3)
    products = [f"p{i % 12}" for i in range(100)]
    fit = fit_renderer_calibration(z, y, products)
    assert fit["by_product"] and fit["folds"] == 5 and fit["n"] == 100 and fit["bias"] is None
    assert 2.0 < fit["temperature"] < 8.0 and all(2.0 < t < 8.0 for t in fit["fold_temperatures"])
    assert fit["nll"] < fit["nll_before"] - 0.3 and fit["ece"] < fit["ece_before"] - 0.1
    assert fit["ece_available"] < fit["ece_available_before"]
    np.testing.assert_array_equal(fit["oof"].argmax(1), fit["before"].argmax(1))  # verdicts keep their class
    assert fit["macro_f1"] == fit["macro_f1_before"]
    z_new, y_new = overconfident(2000, seed=4)
    assert nll(z_new, y_new, fit["temperature"]) < nll(z_new, y_new) - 0.3
    # a product's images are never split across folds: the out-of-fold T' of a fold never saw its products
    assert fit_renderer_calibration(z, y, ["one"] * 100)["by_product"] is False  # then by image
    with pytest.raises(ValueError, match=f"at least {MIN_RENDERER_ROWS}"):
        fit_renderer_calibration(z[:MIN_RENDERER_ROWS - 1], y[:MIN_RENDERER_ROWS - 1], products[:MIN_RENDERER_ROWS - 1])


def test_a_renderers_own_bias_recovers_verdicts_a_class_shift_took() -> None:
    """A renderer whose images the model files under one wrong class (every image pushed towards class 1, as
    `lowkey`'s towards space mismatch): a per-class bias fitted with T' on its reviewed images moves the verdicts
    back, raising macro-F1 out of fold and on fresh images; the temperature alone cannot."""
    from sklearn.metrics import f1_score

    from adcreative.inspect.calibrate import fit_renderer_calibration, fit_temperature_and_bias

    def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
        return float(f1_score(y, pred, labels=np.unique(y), average="macro", zero_division=0))

    z, y = shifted(150, seed=11)  # class 1 shifted up
    products = [f"p{i % 15}" for i in range(150)]
    alone = fit_renderer_calibration(z, y, products)
    both = fit_renderer_calibration(z, y, products, bias=True)
    assert both["bias"] is not None and abs(sum(both["bias"])) < 1e-9
    assert both["bias"][1] < min(both["bias"][k] for k in (0, 2, 3, 4, 5))  # the shifted class pulled down
    assert both["macro_f1"] > alone["macro_f1"] + 0.03 and both["nll"] < alone["nll"]
    z_new, y_new = shifted(3000, seed=12)
    t, b = both["temperature"], np.asarray(both["bias"])
    assert macro_f1(y_new, softmax(z_new / t + b).argmax(1)) > macro_f1(y_new, z_new.argmax(1)) + 0.03
    assert nll(z_new / t + b, y_new) < nll(z_new, y_new, alone["temperature"])
    # the L2 penalty keeps a bias bounded when a class has no reviewed image at all
    keep = y != 4
    _, b4 = fit_temperature_and_bias(z[keep], y[keep])
    assert np.isfinite(b4).all() and max(abs(v) for v in b4) < 10


def test_renderer_calibrations_touch_only_their_renderers_rows() -> None:
    from adcreative.inspect.calibrate import (
        checked_renderer_calibration,
        with_renderer_calibration,
        with_renderer_calibration_probs,
    )

    z, _ = overconfident(6, seed=5)
    renderers = ["lowkey", "compositor", "", "lowkey", "photoset", "compositor"]
    bias = [0.5, -0.5, 0.0, 0.0, 0.0, 0.0]
    cal = checked_renderer_calibration({"lowkey": {"temperature": 2.0, "bias": bias},
                                        "photoset": {"temperature": 0.5}})
    assert cal == {"lowkey": {"temperature": 2.0, "bias": bias}, "photoset": {"temperature": 0.5, "bias": None}}
    out = with_renderer_calibration(z, renderers, cal)
    np.testing.assert_allclose(out[[1, 2, 5]], z[[1, 2, 5]])
    np.testing.assert_allclose(out[[0, 3]], z[[0, 3]] / 2.0 + np.array(bias))
    np.testing.assert_allclose(out[4], z[4] / 0.5)
    # on probabilities: the same as on the logits they came from
    np.testing.assert_allclose(with_renderer_calibration_probs(softmax(z), renderers, cal), softmax(out), atol=1e-9)
    assert with_renderer_calibration(z, None, cal) is z and with_renderer_calibration(z, renderers, None) is z
    with pytest.raises(ValueError, match="one renderer per row"):
        with_renderer_calibration(z, renderers[:3], cal)
    for bad in ({"lowkey": {"temperature": 0.0}}, {"lowkey": {"temperature": float("nan")}}, {"": {"temperature": 1.5}},
                {"lowkey": {"temperature": True}}, {"lowkey": 1.5}, {"lowkey": {"temperature": 1.0, "bias": [1.0]}},
                {"lowkey": {"temperature": 1.0, "bias": [float("inf")] * 6}}, {"lowkey": {"t": 1.0}}, ["lowkey"]):
        with pytest.raises(ValueError, match="renderer"):
            checked_renderer_calibration(bad)  # type: ignore[arg-type]


def test_the_ece_a_calibrated_model_would_show_tells_sampling_from_miscalibration() -> None:
    """On a few hundred images even a perfectly calibrated model shows an ECE well above 0: the floor is measured
    by drawing each image's label from its own probabilities. A calibrated model's measured ECE lies within that
    range; an over-confident one's lies above it; the floor falls as the images grow in number."""
    from adcreative.inspect.calibrate import ece_if_calibrated

    rng = np.random.default_rng(7)
    p = softmax(rng.normal(0, 1.5, (228, 6)))
    y = (rng.random(228)[:, None] > np.cumsum(p, 1)).sum(1)  # labels drawn from p: calibrated by construction
    measured = expected_calibration_error(p, y)
    floor = ece_if_calibrated(p, measured)
    assert floor["n"] == 228 and 0.03 < floor["q05"] <= floor["median"] <= floor["q95"] < 0.15
    assert floor["share_at_or_above"] > 0.05 and measured > 0.03  # a calibrated model's ECE is not near 0 here
    assert ece_if_calibrated(p, measured) == floor  # seeded
    z, y_over = overconfident(228, seed=8)
    p_over = softmax(z)
    over = ece_if_calibrated(p_over, expected_calibration_error(p_over, y_over))
    assert over["share_at_or_above"] == 0.0 and expected_calibration_error(p_over, y_over) > over["q95"]
    big = softmax(rng.normal(0, 1.5, (5000, 6)))
    assert ece_if_calibrated(big)["median"] < floor["median"] / 3  # about 1/sqrt(n)
    assert np.isnan(ece_if_calibrated(np.zeros((0, 6)))["median"])


def test_the_ece_over_resampled_products_is_wider_when_miscalibration_sits_in_some_products() -> None:
    """Half the products over-confident, half calibrated: which products a test set holds moves its ECE, and the
    by-product interval says so; the same images with the products mixed give a narrower one."""
    from adcreative.inspect.calibrate import ece_by_product

    rng = np.random.default_rng(9)
    probs, ys = [], []
    for k in range(20):
        p = softmax(rng.normal(0, 1.5, (40, 6)))
        y = np.array([rng.choice(6, p=row) for row in p])  # labels drawn from p: calibrated
        if k % 2:
            p = softmax(np.log(p) * 3.0)  # the same verdicts, far too sure
        probs.append(p)
        ys.append(y)
    p, y = np.concatenate(probs), np.concatenate(ys)
    clustered = [f"p{i // 40}" for i in range(len(y))]
    mixed = [f"p{i % 20}" for i in range(len(y))]
    a, b = ece_by_product(p, y, clustered), ece_by_product(p, y, mixed)
    assert a is not None and b is not None and a["products"] == b["products"] == 20
    assert a["q05"] <= a["median"] <= a["q95"]
    assert a["q95"] - a["q05"] > 1.4 * (b["q95"] - b["q05"])  # 1.5-2.3 times over seeds 9-13
    assert ece_by_product(p, y, clustered) == a  # seeded
    assert ece_by_product(p, y, ["one"] * len(y)) is None and ece_by_product(p, y, []) is None
    with pytest.raises(ValueError, match="one product per row"):
        ece_by_product(p, y, clustered[:10])
