"""The three-way decision: thresholds meet their precision targets on a seeded score set; OOD goes to humans."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adcreative.inspect.decision import (
    NEVER,
    Decision,
    Judgements,
    accept_threshold,
    choose_decision,
    decision_metrics,
)


def scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """P(available) of a decent auditor: available images score high, defective ones low, with overlap."""
    rng = np.random.default_rng(seed)
    avail = rng.random(n) < 1 / 6
    logit = np.where(avail, rng.normal(2.5, 1.5, n), rng.normal(-2.5, 1.5, n))
    return 1 / (1 + np.exp(-logit)), avail


def test_thresholds_meet_their_precision_targets() -> None:
    p, avail = scores(6000, seed=0)
    d = choose_decision(p, avail, target_accept=0.99, target_reject=0.98)
    b = d.bands(p)
    m = decision_metrics(b, avail)
    assert m["precision_accept"] >= 0.99 and m["precision_reject"] >= 0.98
    assert 0 < m["human_rate"] < 0.2 and m["counts"]["accept"] > 0 and m["counts"]["reject"] > 0
    # every stricter threshold meets the target too (the running minimum), not only the chosen one
    acc = p >= d.accept
    for t in np.quantile(p[acc], [0.0, 0.25, 0.5, 0.75]):
        assert avail[p >= t].mean() >= 0.99
    # the loosest such threshold: one step looser breaks the target
    looser = p[p < d.accept].max()
    assert avail[p >= looser].mean() < 0.99
    # on fresh images from the same auditor the targets hold up to sampling noise
    p2, avail2 = scores(60000, seed=1)
    m2 = decision_metrics(d.bands(p2), avail2)
    assert m2["precision_accept"] >= 0.985 and m2["precision_reject"] >= 0.975


def test_an_unreachable_target_accepts_nothing() -> None:
    p = np.array([0.9, 0.8, 0.7])
    assert accept_threshold(p, np.array([False, True, True]), 0.99) == NEVER
    d = choose_decision(p, np.array([False, True, True]), target_accept=0.99, target_reject=0.99)
    assert d.bands(p) == ["human", "human", "human"]


def test_out_of_distribution_goes_to_a_human_whatever_its_score() -> None:
    p, avail = scores(2000, seed=2)
    ood = np.random.default_rng(3).gamma(4.0, 1.0, 2000)
    d = choose_decision(p, avail, ood=ood, ood_quantile=0.99)
    assert d.ood == pytest.approx(np.quantile(ood, 0.99))
    assert d.bands(np.array([0.0001, 0.9999]), np.array([d.ood * 3, d.ood * 3])) == ["human", "human"]
    assert d.bands(np.array([0.0001, 0.9999]), np.array([0.0, 0.0])) == ["reject", "accept"]
    # saved in the model's config: a JSON round trip
    assert Decision.from_dict(d.to_dict()) == d
    with pytest.raises(ValueError, match="unknown decision fields"):
        Decision.from_dict({**d.to_dict(), "bogus": 1})


def test_judgements_without_a_decision_are_two_way() -> None:
    j = Judgements.of(np.array([[0.7, 0.3], [0.2, 0.8]]), np.zeros(2), None)
    assert j.bands == ["accept", "reject"] and j.counts() == {"accept": 1, "human": 0, "reject": 1}


def shifted(n: int, share: float, seed: int, prior: float = 1 / 6) -> tuple[np.ndarray, np.ndarray]:
    """The same auditor on a batch where ``share`` of the images are available, its P(available) still
    calibrated to ``prior`` (what label shift does to a model calibrated on validation)."""
    rng = np.random.default_rng(seed)
    avail = rng.random(n) < share
    logit = np.where(avail, rng.normal(2.5, 1.5, n), rng.normal(-2.5, 1.5, n))
    # the exact posterior at ``prior`` for two equal-variance normals: log-odds 2·2.5/1.5² · s + log(prior odds)
    s = logit
    z = (2 * 2.5 / 1.5 ** 2) * s + np.log(prior / (1 - prior))
    return 1 / (1 + np.exp(-z)), avail


def test_label_shift_estimate_and_accept_threshold_hold_precision() -> None:
    """Validation at 1/6 available; batches at 5 %, 50 % and 90 %: the EM estimate is within 0.03 of the truth,
    the re-chosen accept threshold keeps accepted precision ≥ 0.99 where the validation threshold loses it (5 %)
    and accepts far more where most images are good (90 %); the reject threshold never moves."""
    from adcreative.inspect.decision import adapted_decision, estimate_prior

    p, avail = shifted(20000, 1 / 6, seed=0)
    d = choose_decision(p, avail, target_accept=0.99, target_reject=0.98)
    assert d.adaptable and d.prior == pytest.approx(avail.mean())
    assert abs(d.for_prior(d.prior).accept - d.accept) <= 0.01  # histogram edges against exact values
    back = Decision.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back == d
    assert "val_available" not in repr(d) and len(repr(d)) < 400  # the histograms are saved, not logged
    gains = {}
    for share, seed in ((0.05, 1), (0.5, 2), (0.9, 3)):
        q, y = shifted(8000, share, seed)
        est = estimate_prior(q, d.prior)
        assert abs(est - share) < 0.03, (share, est)
        a, est2 = adapted_decision(d, q)
        assert est2 == est and a.reject == d.reject and a.ood == d.ood
        acc = q >= a.accept
        assert y[acc].mean() >= 0.99, (share, y[acc].mean())
        gains[share] = acc.sum() / max((q >= d.accept).sum(), 1)
    assert gains[0.9] > 1.2 and gains[0.05] < 1.0
    q, y = shifted(8000, 0.05, 1)
    assert y[q >= d.accept].mean() < 0.99  # what the validation threshold does at 5 %: why the shift matters


def test_a_small_batch_stays_near_the_validation_prior() -> None:
    from adcreative.inspect.decision import estimate_prior

    assert abs(estimate_prior(np.array([0.9, 0.95, 0.8]), 0.2) - 0.2) < 0.3
    assert estimate_prior(np.array([0.9, 0.95, 0.8]), 0.2, pseudo=0.0) > 0.9
    with pytest.raises(ValueError):
        Decision(accept=0.9, reject=0.1).for_prior(0.5)  # no histograms: a model calibrated before them
