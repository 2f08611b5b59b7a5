"""Temperature scaling lowers the NLL on held-out data; ECE and the reliability diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from adcreative.inspect.calibrate import (
    available_calibration_error,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    nll,
    plot_reliability,
    softmax,
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
