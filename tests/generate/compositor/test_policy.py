"""Compositor policy: the score function is the gradient of the policy's log-probability."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.generate.compositor.policy import CompositorPolicy


def test_policy_score_is_gradient_of_log_prob() -> None:
    pol = CompositorPolicy()
    ch = pol.sample(np.random.default_rng(0), "beauty")
    g = pol.score(ch)
    eps = 1e-5
    for key in ("logits.bg_kind", "mu.scale", "log_sigma.tone"):
        arrays = pol.state_arrays()
        idx = tuple(np.argwhere(np.abs(g[key]) > 0)[0])
        bumped = {k: v.copy() for k, v in arrays.items()}
        bumped[key][idx] += eps
        q = pol.copy()
        q.load_state_arrays(bumped)
        num = (q.log_prob(ch) - pol.log_prob(ch)) / eps
        assert num == pytest.approx(g[key][idx], rel=1e-3, abs=1e-4)
    assert pol.kl_to(pol) == pytest.approx(0.0, abs=1e-9)
