"""Bandits with visual priors: prior transfer to new creatives, exploration share, state round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.select.bandit import BetaVisualTS, HybridLinearTS


def _beta_with_history(seed: int = 0) -> BetaVisualTS:
    """8 creatives whose CTR rises with visual feature 0 (e.g. brightness)."""
    rng = np.random.default_rng(seed)
    b = BetaVisualTS(n_features=3, prior_strength=50.0, base_ctr=0.05, exploration_share=0.2, seed=seed)
    feats = rng.standard_normal((8, 3))
    b.add_arms([f"c{j}" for j in range(8)], feats)
    ctr = 1 / (1 + np.exp(-(-3.0 + 1.0 * feats[:, 0])))
    b.impressions[:] = 4000
    b.clicks[:] = rng.binomial(4000, ctr)
    b.fit_prior()
    return b


def test_visual_prior_transfers_to_new_creatives() -> None:
    b = _beta_with_history()
    b.add_arms(["bright", "dark"], np.array([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0]]))
    m = b.posterior_mean(["bright", "dark"])
    assert m[0] > 2 * m[1]                       # looks like past winners → optimistic prior
    assert m[0] == pytest.approx(1 / (1 + np.exp(1.0)), rel=0.35)  # ≈ sigmoid(-3 + 2)
    # own evidence overrides the prior once it outweighs the prior strength
    b.update("bright", 50.0, impressions=5000)
    assert b.posterior_mean(["bright"])[0] < 0.02


def test_exploration_share_and_propensity() -> None:
    ids = [f"c{j}" for j in range(8)]
    for share, lo, hi in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.3, 0.2, 0.4)):
        b = _beta_with_history()
        b.config["exploration_share"] = share
        scores = np.arange(8, dtype=float)             # the model's greedy pick is c7
        flags, props = [], []
        for _ in range(300):
            d = b.rank(ids, scores=scores)
            order, explored, p = d.order, d.explored, d.propensity
            flags.append(explored)
            props.append(p)
            if not explored:
                assert order[0] == 7
            assert 0.0 < p <= 1.0 or (explored and p >= 0.0)
        assert lo <= np.mean(flags) <= hi
    # exploit-only traffic logs propensity 1 for the greedy choice
    b = _beta_with_history()
    b.config["exploration_share"] = 0.0
    assert b.rank(ids, scores=np.arange(8.0)).propensity == 1.0
    with pytest.raises(InputError):
        BetaVisualTS(n_features=2, exploration_share=1.5)


def test_beta_state_round_trip(tmp_path: Path) -> None:
    b = _beta_with_history()
    b.add_arms(["new"], np.ones((1, 3)))
    b.save_pretrained(tmp_path / "bandit")
    b2 = BetaVisualTS.from_pretrained(tmp_path / "bandit")
    assert b2.ids == b.ids
    ids = [*b.ids]
    np.testing.assert_allclose(b2.posterior_mean(ids), b.posterior_mean(ids))
    assert (tmp_path / "bandit" / "model.safetensors").exists()


def test_hybrid_thompson_learns_contextual_preferences(tmp_path: Path) -> None:
    """Two user types prefer different creatives; the policy's choices beat uniform clearly."""
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((6, 5))
    w = rng.standard_normal((2, 5))
    ids = [f"c{j}" for j in range(6)]
    b = HybridLinearTS(n_features=5, n_context=2, n_components=4, seed=0)
    b.add_arms(ids, feats)
    clicks, n = 0.0, 2000
    for _ in range(n):
        x = rng.standard_normal(2)
        p = 1 / (1 + np.exp(-(-2.0 + 1.5 * (x @ w) @ feats.T / np.sqrt(5))))
        a = int(b.rank(ids, x).order[0])
        c = float(rng.random() < p[a])
        clicks += c
        b.update(ids[a], c, x)
    # expected CTR of uniform / oracle on the same user distribution
    xs = rng.standard_normal((4000, 2))
    ps = 1 / (1 + np.exp(-(-2.0 + 1.5 * (xs @ w) @ feats.T / np.sqrt(5))))
    assert clicks / n > 1.5 * ps.mean()
    assert clicks / n > 0.75 * ps.max(1).mean()
    # the block-wise posterior code agrees with the dense design
    x = np.array([0.3, -1.0])
    np.testing.assert_allclose(b.features(x) @ b.theta, b.scores(x, sample=False), atol=1e-10)
    # state round trip keeps the posterior
    b.save_pretrained(tmp_path / "h")
    b2 = HybridLinearTS.from_pretrained(tmp_path / "h")
    x = np.array([0.3, -1.0])
    np.testing.assert_allclose(b2.scores(x, sample=False), b.scores(x, sample=False))
    # a new creative gets the feature-regression prior (shared part), no own evidence
    b2.add_arms(["new"], feats[:1] + 0.01)
    s = b2.scores(x, sample=False)
    assert len(s) == 7 and abs(s[6] - (b2.features(x, np.array([6]))[0, : b2.shared_dim] @ b2.theta[: b2.shared_dim])) < 1e-9


def test_hybrid_uses_pair_features_and_its_propensity_is_a_probability() -> None:
    """A pair feature (the user's exposures to each creative) that lowers clicks is learned as a negative weight."""
    rng = np.random.default_rng(1)
    ids = [f"c{j}" for j in range(4)]
    b = HybridLinearTS(n_features=2, n_context=1, n_pair=1, seed=1, exploration_share=0.5)
    b.add_arms(ids, rng.standard_normal((4, 2)))
    for _ in range(1500):
        seen = rng.integers(0, 4, 4).astype(float)[:, None]
        d = b.rank(ids, np.zeros(1), pair=seen)
        a = int(d.order[0])
        b.update(ids[a], float(rng.random() < 0.3 * np.exp(-seen[a, 0])), np.zeros(1), pair=seen[a])
    b.refit()
    assert b.theta[b.shared_dim - 1] < -0.5          # the pair column's weight
    props = [b.rank(ids, np.zeros(1), pair=np.zeros((4, 1))).propensity for _ in range(20)]
    assert all(0.0 < p <= 1.0 for p in props)


def test_propensity_quadrature_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(20, 60, 12)
    b = rng.uniform(300, 900, 12)
    draws = rng.beta(a, b, size=(200000, 12))
    mc = np.bincount(draws.argmax(1), minlength=12) / len(draws)
    for top in range(12):
        assert BetaVisualTS.p_top(a, b, top) == pytest.approx(mc[top], abs=0.01)
    assert sum(BetaVisualTS.p_top(a, b, t) for t in range(12)) == pytest.approx(1.0, abs=0.01)


def test_registry_factories() -> None:
    from adcreative.select import POLICIES, create_policy

    assert {"beta_visual", "hybrid_linear", "hybrid_online", "uniform"} <= set(POLICIES.names())
    b = create_policy("beta_visual", n_features=3)
    assert isinstance(b, BetaVisualTS) and b.config["n_features"] == 3
    with pytest.raises(InputError, match="unknown policy"):
        create_policy("nope")


def _online_contextual_task(**cfg: Any) -> tuple[Any, list[str]]:
    """``hybrid_online`` (+ ``cfg``) plays 2,000 rounds of a contextual task (two user dimensions, six creatives whose
    click rates depend on user × creative features); its clicks must beat uniform clearly and come near the oracle."""
    from adcreative.select import POLICIES

    rng = np.random.default_rng(0)
    feats = rng.standard_normal((6, 5))
    w = rng.standard_normal((2, 5))
    ids = [f"c{j}" for j in range(6)]
    b = POLICIES.create("hybrid_online", n_features=5, n_context=2, n_components=4, refit_every=800,
                        empirical_prior=True, sample_scale=0.5, seed=0, **cfg)
    b.add_arms(ids, feats)

    def ctr(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(-2.0 + 1.5 * (x @ w) @ feats.T / np.sqrt(5))))  # type: ignore[no-any-return]

    clicks, n = 0.0, 2000
    for _ in range(n):
        x = rng.standard_normal(2)
        a = int(b.rank(ids, x).order[0])
        c = float(rng.random() < ctr(x)[a])
        clicks += c
        b.update(ids[a], c, x)
    ps = ctr(rng.standard_normal((4000, 2)))
    assert clicks / n > 1.5 * ps.mean()
    assert clicks / n > 0.75 * ps.max(1).mean()
    return b, ids


def test_online_hybrid_learns_from_every_impression_and_round_trips(tmp_path: Path) -> None:
    """``hybrid_online``: the contextual task above beats uniform clearly; between refits each update moves the
    posterior (Σ stays the inverse of the precision); the empirical-Bayes prior is learned; save →
    ``POLICIES.load`` keeps the posterior and the prior, and the next update agrees."""
    from adcreative.select import POLICIES
    from adcreative.select.bandit import OnlineHybridTS

    b, ids = _online_contextual_task(chol_every=20)
    assert isinstance(b, OnlineHybridTS)
    assert b.last_refit < b.n_events                 # the last events were learned online, between refits
    # the empirical-Bayes prior of a creative's block has moved off the isotropic start and stays a covariance
    psi = b.arm_prior_cov
    assert not np.allclose(psi, np.eye(b.arm_dim) * b.config["arm_prior_var"])
    np.testing.assert_allclose(psi, psi.T)
    assert np.linalg.eigvalsh(psi).min() > 0
    np.testing.assert_allclose(b.covariance() @ b.prec, np.eye(len(b.theta)), atol=1e-6)
    before = b.theta.copy()
    x = np.array([0.3, -1.0])
    b.update("c2", 1.0, x)
    blk = b.shared_dim + 2 * b.arm_dim               # c2's own block moves now, not at the next refit
    assert np.abs(b.theta - before)[blk: blk + b.arm_dim].max() > 1e-4
    # round trip: same posterior, and the same next online step
    b.save_pretrained(tmp_path / "o")
    b2 = POLICIES.load(tmp_path / "o")
    assert isinstance(b2, OnlineHybridTS) and b2.config["chol_every"] == 20 and b2.ids == ids
    np.testing.assert_allclose(b2.scores(x, sample=False), b.scores(x, sample=False))
    np.testing.assert_allclose(b2.arm_prior_cov, psi)
    b.update("c4", 0.0, x)
    b2.update("c4", 0.0, x)
    np.testing.assert_allclose(b2.theta, b.theta, atol=1e-9)
    with pytest.raises(InputError):
        OnlineHybridTS(n_features=2, chol_every=0)


def test_online_hybrid_optimistic_draws_low_rank_prior_and_em_iterations() -> None:
    """``optimistic``: an explored score is never below the creative's posterior mean (plain Thompson draws
    are, half the time); ``prior_rank``: the learned prior of a creative's block has ``rank`` directions above
    the shrinkage floor, the rest exactly at it; ``em_iters`` > 1 moves the prior further per refit."""
    from adcreative.select import POLICIES

    rng = np.random.default_rng(1)
    feats = rng.standard_normal((8, 4))
    ids = [f"c{j}" for j in range(8)]
    events = [(rng.standard_normal(3), int(rng.integers(0, 8))) for _ in range(600)]
    tastes = rng.standard_normal((8, 3)) * 1.5

    def fitted(**cfg: Any) -> Any:
        b = POLICIES.create("hybrid_online", n_features=4, n_context=3, n_components=2, refit_every=10**6,
                            empirical_prior=True, prior_shrink=0.1, seed=0, **cfg)
        b.add_arms(ids, feats)
        r = np.random.default_rng(2)
        for x, a in events:
            b.update(ids[a], float(r.random() < 1 / (1 + np.exp(1.0 - x @ tastes[a]))), x)
        b.refit()
        return b

    x = np.array([0.5, -0.2, 1.0])
    plain, opt = fitted(), fitted(optimistic=True)
    mean = opt.scores(x, sample=False)
    np.testing.assert_allclose(mean, plain.scores(x, sample=False))
    draws_opt = np.array([opt.scores(x, sample=True) for _ in range(50)])
    draws_plain = np.array([plain.scores(x, sample=True) for _ in range(50)])
    assert (draws_opt >= mean - 1e-12).all() and (draws_opt > mean + 1e-6).any()
    assert (draws_plain < mean - 1e-6).mean() > 0.3
    low = fitted(prior_rank=1)
    ev = np.linalg.eigvalsh(low.arm_prior_cov)       # arm block (1, x): 4 values; rank 1 + floor
    floor = ev[:-1]
    np.testing.assert_allclose(floor, floor[0], rtol=1e-9)
    assert ev[-1] > 2 * floor[0]
    assert np.ptp(np.linalg.eigvalsh(plain.arm_prior_cov)[:-1]) > 1e-4   # full rank: no common floor
    em3 = fitted(em_iters=3)
    assert not np.allclose(em3.arm_prior_cov, plain.arm_prior_cov, rtol=1e-3)
    with pytest.raises(InputError, match="em_iters"):
        POLICIES.create("hybrid_online", n_features=2, em_iters=0)
    with pytest.raises(InputError, match="prior_rank"):
        POLICIES.create("hybrid_online", n_features=2, prior_rank=0)


def test_feature_conditioned_block_prior_recovers_a_linear_map_and_starts_new_creatives_there(tmp_path: Path) -> None:
    """``block_mean="features"``: with the creatives' blocks known precisely and linear in their features, the EM
    step recovers the map; a creative added later (no impressions) starts at ``[1, f] R``; the map is saved."""
    from adcreative.select import POLICIES
    from adcreative.select.bandit import OnlineHybridTS

    rng = np.random.default_rng(3)
    c, dim = 60, 3
    feats = rng.standard_normal((c, dim))
    b = POLICIES.create("hybrid_online", n_features=dim, n_context=2, n_components=2, empirical_prior=True,
                        block_mean="features", block_mean_ridge=1e-3, seed=0)
    assert isinstance(b, OnlineHybridTS)
    b.add_arms([f"c{j}" for j in range(c)], feats)
    true_map = rng.standard_normal((1 + dim, b.arm_dim))
    phi = np.hstack([np.ones((c, 1)), (feats - feats.mean(0)) / feats.std(0)])
    b.theta[b.shared_dim:] = (phi @ true_map + 0.01 * rng.standard_normal((c, b.arm_dim))).ravel()
    b.prec = np.eye(len(b.theta)) * 1e6                # blocks known to ±0.001
    b._cov = None
    b._update_arm_prior()
    np.testing.assert_allclose(b.block_map, true_map, atol=0.02)
    # the residual spread (0.01) is what the prior covariance now describes, not the map's spread (~1)
    assert np.trace(b.arm_prior_cov) / b.arm_dim < 0.01
    # "constant": only the blocks' mean (the context's main effects)
    b.config["block_mean"] = "constant"
    b._update_arm_prior()
    np.testing.assert_allclose(b.block_map[0], phi.mean(0) @ true_map, atol=0.02)
    assert not b.block_map[1:].any()
    # a creative added after events starts from the map its features give
    b.config["block_mean"] = "features"
    x = np.array([0.2, -0.4])
    for j in range(30):
        b.update(f"c{j % c}", float(j % 3 == 0), x)
    b.add_arms(["new"], np.array([[1.5, -0.5, 0.0]]))
    row = b.rows(["new"])[0]
    new_phi = b._design()[row]
    own = b.theta[b.shared_dim + row * b.arm_dim: b.shared_dim + (row + 1) * b.arm_dim]
    np.testing.assert_allclose(own, new_phi @ b.block_map, atol=1e-6)
    assert np.abs(own).max() > 0.1
    b.save_pretrained(tmp_path / "m")
    b2 = POLICIES.load(tmp_path / "m")
    np.testing.assert_allclose(b2.block_map, b.block_map)
    np.testing.assert_allclose(b2.scores(x, sample=False), b.scores(x, sample=False))
    for bad in ({"block_mean": "linear"}, {"block_mean_ridge": 0.0}, {"block_kernel": 1.0}, {"kernel_scale": 0.0}):
        with pytest.raises(InputError):
            POLICIES.create("hybrid_online", n_features=2, **bad)


def test_block_kernel_links_look_alike_creatives_and_the_policy_still_learns() -> None:
    """``block_kernel``: the prior covariance of two creatives' blocks is ``K[c, c'] Ψ`` with K larger for
    look-alikes, so one creative's click moves its look-alike's block more than a distant creative's; with the
    feature-conditioned mean too, the policy still learns the contextual task of the tests above."""
    from adcreative.select import POLICIES

    feats = np.array([[0.0, 0.0], [0.05, 0.0], [3.0, 3.0], [-3.0, 2.0]])
    ids = ["a", "a_twin", "far", "other"]
    b = POLICIES.create("hybrid_online", n_features=2, n_context=1, n_components=1, empirical_prior=True,
                        block_kernel=0.8, seed=0)
    b.add_arms(ids, feats)
    k = b._kernel()
    np.testing.assert_allclose(np.diag(k), 1.0)
    assert k[0, 1] > 0.75 and k[0, 2] < 0.3 * k[0, 1]
    d, a = b.shared_dim, b.arm_dim
    cov = np.linalg.inv(b.prec)[d:, d:]
    np.testing.assert_allclose(cov, np.kron(k, b.arm_prior_cov), atol=1e-9)
    before = b.theta.copy()
    b._online_step(np.array([1.0]), np.zeros(0), 0, 1.0)
    moved = np.abs(b.theta - before)[d:].reshape(4, a).max(1)
    assert moved[1] > 0.7 * moved[0] and moved[1] > 2.5 * moved[2]

    b, _ = _online_contextual_task(block_mean="features", block_kernel=0.5)
    np.testing.assert_allclose(b.covariance() @ b.prec, np.eye(len(b.theta)), atol=1e-6)


def test_online_hybrid_learning_phase_scale_and_refit_cadence() -> None:
    """``early_events``: in the first events the Thompson draws use ``early_sample_scale`` (0 here: a draw is the
    posterior mean) and refits come at least every ``early_refit_every`` events; after it, the draws spread by
    ``sample_scale`` and the geometric schedule takes over again; the policy still learns the contextual task."""
    from adcreative.select import POLICIES

    rng = np.random.default_rng(3)
    feats = rng.standard_normal((5, 3))
    ids = [f"c{j}" for j in range(5)]
    events = [(rng.standard_normal(2), int(rng.integers(0, 5)), float(rng.random() < 0.3)) for _ in range(700)]

    def play(**cfg: Any) -> tuple[Any, list[int], list[bool]]:
        b = POLICIES.create("hybrid_online", n_features=3, n_context=2, n_components=2, refit_every=10**6,
                            empirical_prior=True, sample_scale=0.7, seed=0, **cfg)
        b.add_arms(ids, feats)
        refits, mean_draws = [], []
        for x, a, y in events:
            mean_draws.append(bool(np.allclose(b.scores(x, sample=True), b.scores(x, sample=False))))
            last = b.last_refit
            b.update(ids[a], y, x)
            if b.last_refit != last:
                refits.append(b.last_refit)
        return b, refits, mean_draws

    _, plain, plain_draws = play()
    _, early, early_draws = play(early_events=400, early_sample_scale=0.0, early_refit_every=50)
    assert not any(plain_draws)                                  # plain: every draw spreads around the mean
    assert all(early_draws[:400]) and not any(early_draws[400:])  # scale 0 in the learning phase only
    assert plain == [25, 50, 75, 100, 125, 156, 195, 243, 303, 378, 472, 590]   # geometric: gap last // 4
    # gaps capped at 50 until event 400, then geometric again from the last refit (393 + 393 // 4)
    assert early == [25, 50, 75, 100, 125, 156, 195, 243, 293, 343, 393, 491, 613]
    _online_contextual_task(early_events=1000, early_sample_scale=0.25, early_refit_every=100)
    for bad in ({"early_events": -1}, {"early_sample_scale": -0.1}, {"early_refit_every": 0}):
        with pytest.raises(InputError, match=next(iter(bad))):
            POLICIES.create("hybrid_online", n_features=2, **bad)


def test_ard_kernel_space_measures_look_alikes_on_the_relevant_components(tmp_path: Path) -> None:
    """``kernel_space="ard"``: the look-alike kernel's distance is on the PCA scores weighted by the learned
    relevances, so a component shrunk away stops making creatives differ; the policy still learns the task and the
    option survives save/reload; it needs ``shared_ard`` and a known value."""
    from adcreative.select import POLICIES

    def kernel(f: np.ndarray) -> np.ndarray:  # γ = 0.5, kernel_scale 1: squared distances over their median
        d2 = ((f[:, None] - f[None, :]) ** 2).sum(-1)
        return 0.5 * np.eye(len(f)) + 0.5 * np.exp(-d2 / np.median(d2[np.triu_indices(len(f), 1)]))

    b, _ = _online_contextual_task(shared_ard=True, block_kernel=0.5, block_mean="constant", kernel_space="ard")
    g = b._component_columns()[:, 0]
    b.shared_var[g] = [1.0, 1e-6, 1e-6, 1e-6]          # only the first component predicts clicks
    np.testing.assert_allclose(b._kernel(), kernel(b.Z[:, :1] * 2.0), rtol=1e-4, atol=1e-6)
    b.shared_var[g] = 1.0                                # all equally relevant: the kernel of the plain scores
    np.testing.assert_allclose(b._kernel(), kernel(b.Z))
    feats, _ = _online_contextual_task(shared_ard=True, block_kernel=0.5, block_mean="constant")
    assert not np.allclose(feats._kernel(), b._kernel())  # the default still reads all standardised features
    b.save_pretrained(tmp_path / "ardk")
    assert POLICIES.load(tmp_path / "ardk").config["kernel_space"] == "ard"
    with pytest.raises(InputError, match="shared_ard"):
        POLICIES.create("hybrid_online", n_features=2, block_kernel=0.5, kernel_space="ard")
    with pytest.raises(InputError, match="kernel_space"):
        POLICIES.create("hybrid_online", n_features=2, shared_ard=True, kernel_space="pca")


def test_shared_ard_shrinks_irrelevant_components_and_ppca_floor_keeps_the_rest_learnable(tmp_path: Path) -> None:
    """``shared_ard``: the prior variance of each PCA component's shared weights is learned (EM); on a task where
    clicks depend on the creatives' features through one direction, the components move off the common start,
    apart (relevance differs), and the policy still learns the contextual task. ``prior_floor="ppca"``: with
    ``prior_rank`` the discarded directions of the block prior keep their mean variance (probabilistic PCA),
    far above the shrinkage-only floor. Both are off by default: the prior is unchanged without them."""
    from adcreative.select import POLICIES

    b, _ = _online_contextual_task(shared_ard=True, em_iters=2)
    v = b.shared_var[b._component_columns()]
    assert np.allclose(v, v[:, :1])                            # one variance per component
    assert not np.allclose(v[:, 0], b.config["prior_var"])     # learned, not the start
    assert v[:, 0].max() > 3 * v[:, 0].min() > 0               # relevance differs between components
    lam = b._prior_prec(0)
    np.testing.assert_allclose(lam[b._component_columns()], 1.0 / v)
    b.save_pretrained(tmp_path / "ard")                         # the learned variances travel with the policy
    b2 = POLICIES.load(tmp_path / "ard")
    np.testing.assert_allclose(b2.shared_var, b.shared_var)
    x = np.array([0.3, -1.0])
    b.refit()
    b2.refit()
    np.testing.assert_allclose(b2.scores(x, sample=False), b.scores(x, sample=False), atol=1e-9)
    plain, _ = _online_contextual_task()
    np.testing.assert_allclose(plain.shared_var, plain.config["prior_var"])   # off: prior_var everywhere

    ppca, _ = _online_contextual_task(arm_context=2, prior_rank=1, prior_floor="ppca")
    floor, _ = _online_contextual_task(arm_context=2, prior_rank=1)
    assert np.linalg.eigvalsh(ppca.arm_prior_cov)[0] > 10 * np.linalg.eigvalsh(floor.arm_prior_cov)[0]
    with pytest.raises(InputError, match="prior_floor"):
        POLICIES.create("hybrid_online", n_features=2, prior_floor="pca")


def test_novelty_scales_add_each_creatives_own_impression_count(tmp_path: Path) -> None:
    """``novelty_scales``: the shared part gets exp(−I_c/τ) per scale after the caller's pair features, I_c the
    policy's own count of the creative's impressions (the value it had when shown goes with each event); the
    counts are saved; the contextual task is still learned; a scale must be positive."""
    from adcreative.select import POLICIES
    from adcreative.select.bandit import OnlineHybridTS

    b, _ = _online_contextual_task(novelty_scales=[50.0, 500.0])
    assert isinstance(b, OnlineHybridTS) and b.n_pair == 2 and b.n_pair_given == 0
    assert b.impressions.sum() == 2000 and b.impressions.min() >= 0
    d = b.features(np.array([0.3, -1.0]))
    j = b.shared_dim - 2  # the pair columns close the shared part
    np.testing.assert_allclose(d[:, j], np.exp(-b.impressions / 50.0))
    np.testing.assert_allclose(d[:, j + 1], np.exp(-b.impressions / 500.0))
    c2 = int(b.rows(["c2"])[0])
    before = b.impressions[c2]
    b.update("c2", 1.0, np.array([0.3, -1.0]))
    assert b.impressions[c2] == before + 1
    last = b.hist_q[-1] if not b._buf else b._buf[-1][1]  # the event's pair features, as shown
    np.testing.assert_allclose(last, np.exp(-before / np.array([50.0, 500.0])), rtol=1e-6)
    b.save_pretrained(tmp_path / "nov")
    b2 = POLICIES.load(tmp_path / "nov")
    np.testing.assert_allclose(b2.impressions, b.impressions)
    x = np.array([0.3, -1.0])
    np.testing.assert_allclose(b2.scores(x, sample=False), b.scores(x, sample=False))
    with pytest.raises(InputError, match="novelty_scales"):
        OnlineHybridTS(n_features=2, novelty_scales=[0.0])
