"""Metrics computed by hand agree with ours."""

from __future__ import annotations

import numpy as np
import pytest


def test_metrics_are_correct() -> None:
    from adcreative.inspect.metrics import compute_metrics

    y = np.array([0, 0, 1, 2, 3, 4, 5, 5])
    probs = np.eye(6)[[0, 1, 1, 2, 3, 4, 5, 0]] * 0.9 + 0.1 / 6
    m = compute_metrics(y, probs)
    assert m["per_class"]["available"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["available"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["space_mismatch"]["f1"] == pytest.approx(1.0)
    assert m["confusion"][0][1] == 1 and m["confusion"][5][0] == 1
    perfect = compute_metrics(y, np.eye(6)[y])
    assert perfect["macro_f1"] == 1.0 and perfect["ap_available"] == 1.0
