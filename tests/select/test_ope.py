"""Offline evaluation: ranking metrics and unbiasedness of the off-policy estimators."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.select.ope import auc, gauc, nsctr, off_policy, on_policy_ctr


def test_auc_matches_sklearn_and_handles_ties() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = np.round(y * 0.5 + rng.random(500), 1)  # many ties
    assert auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(auc(np.zeros(5), np.arange(5)))


def test_gauc_weights_groups_by_impressions_and_skips_one_class_groups() -> None:
    y = np.array([1, 0, 0, 1, 0, 1, 1])
    s = np.array([0.9, 0.1, 0.2, 0.3, 0.8, 0.5, 0.4])
    g = np.array([0, 0, 0, 1, 1, 2, 2])  # group 2 has only clicks → skipped
    # group 0: AUC 1 (3 rows); group 1: AUC 0 (2 rows)
    assert gauc(y, s, g) == pytest.approx((1.0 * 3 + 0.0 * 2) / 5)


def test_nsctr_rescales_matched_clicks_per_ad() -> None:
    top = np.array([0, 1, 1, 2, 0, 0])
    shown = np.array([0, 1, 0, 2, 1, 0])
    click = np.array([1, 0, 1, 1, 0, 0])
    ad = np.array([0, 0, 0, 1, 1, 1])
    # ad 0: matched rows 0,1 → 1 click, rescaled ×3/2; ad 1: matched rows 3,5 → 1 click, ×3/2
    assert nsctr(top, shown, click, ad) == pytest.approx((1 * 3 / 2 + 1 * 3 / 2) / 6)


def _simulate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Contextual logging policy μ (softmax of a context-dependent preference) over 5 actions, Bernoulli
    rewards; the target policy π is a different context-dependent stochastic policy."""
    x = rng.standard_normal(n)
    base = np.array([0.02, 0.05, 0.08, 0.03, 0.06])
    slope = np.array([0.02, -0.02, 0.01, 0.03, -0.01])
    p_click = np.clip(base[None, :] + slope[None, :] * x[:, None], 0.001, 0.999)
    logits_mu = np.outer(x, [1.0, -0.5, 0.2, 0.0, 0.3])
    mu = np.exp(logits_mu) / np.exp(logits_mu).sum(1, keepdims=True)
    logits_pi = np.outer(x, [-1.0, 0.5, 1.5, 0.8, -0.3]) + np.array([0, 0, 2.0, 0, 0])
    pi = np.exp(logits_pi) / np.exp(logits_pi).sum(1, keepdims=True)
    a = (rng.random(n)[:, None] > np.cumsum(mu, 1)).sum(1)
    r = (rng.random(n) < p_click[np.arange(n), a]).astype(float)
    true_value = float((pi * p_click).sum(1).mean())
    return r, pi[np.arange(n), a], mu[np.arange(n), a], pi, p_click, a, true_value


def test_ips_snips_dr_unbiased_on_a_simulated_logging_policy() -> None:
    rng = np.random.default_rng(0)
    reps, n = 300, 2000
    est: dict[str, list[float]] = {"IPS": [], "SNIPS": [], "DR": []}
    truths, logged = [], []
    covered = 0
    for rep in range(reps):
        r, pi_a, mu_a, pi, p_click, a, truth = _simulate(n, rng)
        # DR with a deliberately wrong reward model: still unbiased because μ is known
        q = np.full_like(p_click, 0.05)
        out = off_policy(r, pi_a, mu_a, q[np.arange(n), a], (pi * q).sum(1), n_boot=200 if rep < 60 else 2, seed=rep)
        for k in est:
            est[k].append(out[k].value)
        truths.append(truth)
        logged.append(float(r.mean()))
        if rep < 60:
            covered += out["SNIPS"].lo <= truth <= out["SNIPS"].hi
    truth = float(np.mean(truths))
    for k, v in est.items():
        mean, se = float(np.mean(v)), float(np.std(v) / np.sqrt(reps))
        assert abs(mean - truth) < 3.5 * se + 2e-4, (k, mean, truth, se)
    # the naive logged CTR is biased for π: the estimators are needed
    assert abs(float(np.mean(logged)) - truth) > 0.005
    # bootstrap 95% intervals cover the truth about 95% of the time (60 runs: ≥ 50 is p > 0.99)
    assert covered >= 50


def test_on_policy_ctr_interval() -> None:
    c = np.r_[np.ones(50), np.zeros(950)]
    e = on_policy_ctr(c, n_boot=500)
    assert e.value == pytest.approx(0.05)
    assert e.lo < 0.05 < e.hi and e.hi - e.lo < 0.04


def test_interval_never_degenerate_with_zero_clicks() -> None:
    """No click on the rows the target policy matches (the OBD 'women' case): the point estimates are 0 but the
    interval is the exact binomial one at the effective sample size, never [0, 0]; ESS is reported."""
    rng = np.random.default_rng(3)
    n, k = 10000, 50
    shown = rng.integers(0, k, n)
    top = rng.integers(0, k, n)
    match = top == shown
    click = ((rng.random(n) < 0.02) & ~match).astype(float)    # clicks only where the policy does not match
    est = off_policy(click, match.astype(float), np.full(n, 1 / k), np.zeros(n), np.zeros(n), n_boot=200)
    m = int(match.sum())
    for name in ("IPS", "SNIPS", "DR"):
        e = est[name]
        assert e.value == 0 and e.lo <= 0
        assert e.ess == pytest.approx(m)                         # equal weights on the matched rows: ESS = their count
        assert e.hi > 0.5 / m                                    # not collapsed
    # SNIPS: the exact Clopper-Pearson upper bound for 0 successes in m trials, 1 - 0.025^(1/m)
    assert est["SNIPS"].hi == pytest.approx(1 - 0.025 ** (1 / m), rel=1e-6)
    # logged traffic without a click: exact interval [0, 1 - 0.025^(1/n)]
    e = on_policy_ctr(np.zeros(500), n_boot=200)
    assert e.value == 0 and e.lo == 0 and e.hi == pytest.approx(1 - 0.025 ** (1 / 500), rel=1e-6)
