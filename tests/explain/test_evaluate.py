"""The evaluation machinery on tiny seeded inputs: accuracy and its interval, user sensitivity, one
simulator seed end to end, and the demo's two contrasting users."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.explain.evaluate import (
    STACKED,
    EvalCreative,
    SimConfig,
    demo_choices,
    pairwise_accuracy,
    run_sim_seed,
    sensitivity,
)
from adcreative.represent.features import NUMERIC_FEATURES


def _creatives(n_products: int, per: int, seed: int = 0) -> list[EvalCreative]:
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_products):
        base = rng.normal(size=len(NUMERIC_FEATURES))
        for i in range(per):
            v = base + rng.normal(size=len(NUMERIC_FEATURES))
            f = {k: float(x) for k, x in zip(NUMERIC_FEATURES, v, strict=True)}
            f["sharpness"], f["contrast_de"] = 300 + 100 * abs(f["sharpness"]), 30 + 15 * f["contrast_de"]
            out.append(EvalCreative(f"p{p}#{i}", f"p{p}", f))
    return out


def test_pairwise_accuracy_counts_orders_and_ties() -> None:
    truth = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])      # two users, three creatives of one product
    pi, pj, pp = np.array([0, 0, 1]), np.array([1, 2, 2]), np.zeros(3, int)
    assert pairwise_accuracy(truth, truth, pi, pj, pp).value == 1.0
    assert pairwise_accuracy(-truth, truth, pi, pj, pp).value == 0.0
    acc = pairwise_accuracy(np.zeros_like(truth), truth, pi, pj, pp)
    assert acc.value == 0.5 and acc.n_pairs == 6 and acc.lo <= 0.5 <= acc.hi
    assert pairwise_accuracy(truth, truth, pi, pj, pp, min_gap=1.5).n_pairs == 2


def test_sensitivity_against_the_truth() -> None:
    truth = np.array([[0.0, 1.0]])
    pi, pj = np.array([0]), np.array([1])
    s = sensitivity(truth, -truth, truth, -truth, pi, pj, min_gap=0.5)
    assert s["truth_flip_rate"] == 1.0 and s["flips_reproduced"] == 1.0
    s = sensitivity(truth, truth, truth, -truth, pi, pj, min_gap=0.5)
    assert s["flips_reproduced"] == 0.0 and s["flips_detected"] == 0.0
    s = sensitivity(truth, -truth, truth, truth, pi, pj, min_gap=0.5)
    assert s["false_flips"] == 1.0


@pytest.mark.slow
def test_one_simulator_seed_end_to_end() -> None:
    # 30 products (6 held out) and 80k impressions: on the merged select simulator's market (attribute-pair
    # interactions, segments) 15 products / 40k left every model near a coin flip (0.529, 0.535 vs 0.507)
    cs = _creatives(30, 6)
    r = run_sim_seed(cs, 1, SimConfig(n_log=80_000, n_test_users=60, n_explain=60, steps=150, selection_epochs=1))
    acc = r["accuracy"]
    assert acc["preference model (Bradley–Terry)"].value > acc["coin flip"].value + 0.05
    assert r["faithfulness"]["preference model"]["faithful_reasons"] >= 0.95
    assert r["faithfulness"]["preference model"]["cited_not_differing"] == 0
    assert r["sensitivity"]["preference model"]["truth_flips"] > 0
    # stacked on the serving model's logit (an aspect of its own): still additive, so every swap is exact
    assert r["faithfulness"][STACKED]["faithful_reasons"] >= 0.95
    assert r["faithfulness"][STACKED]["cited_not_differing"] == 0
    assert acc[STACKED].value > acc["coin flip"].value + 0.05


def test_demo_choices_for_two_contrasting_users() -> None:
    cs = _creatives(3, 3, seed=1)
    dc = demo_choices({c.id: c.features for c in cs}, {c.id: c.product_id for c in cs}, n_log=20_000, seed=0,
                      cfg=SimConfig(steps=100))
    assert len(dc.users) == 2 and dc.users[0] != dc.users[1] and dc.n_pairs > 0
    assert set(dc.choices) == {"p0", "p1", "p2"}
    for pid, (c1, c2) in dc.choices.items():
        for ch in (c1, c2):
            assert ch.creative.startswith(pid) and ch.other.startswith(pid) and ch.creative != ch.other
            assert ch.explanation.no_preference or ch.explanation.winner == ch.creative
            assert ch.truth.startswith(pid)


@pytest.mark.slow
def test_creative_set_is_cached_by_products(tmp_path, sample_products) -> None:  # type: ignore[no-untyped-def]
    from adcreative.explain.evaluate import creative_set

    cs = creative_set(sample_products[:1], 2, cache=tmp_path)
    assert [c.id for c in cs] == [f"{sample_products[0].id}#0", f"{sample_products[0].id}#1"]
    assert all(c.features["mask_source"] == "given" and c.features["text"] for c in cs)
    assert len(list(tmp_path.glob("explain-eval-creatives-*.json"))) == 1
    assert [c.features for c in creative_set(sample_products[:1], 2, cache=tmp_path)] == [c.features for c in cs]
