"""``Selector.rank``'s serving path (cached posterior moments and propensity factors, policy rows resolved
once, folded user towers) decides exactly as the straightforward computation, kept here as the reference,
and as ``Selector(reference=True)`` (each model's own API): the same orders, exploration flags and scores,
propensities within 1e-9, over hundreds of seeded requests with events (and new arms) arriving between them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.special import ndtr

from adcreative.select.bandit import BetaVisualTS
from adcreative.select.bundle import Bundle
from adcreative.select.data import hash_bucket, hash_user
from adcreative.select.selector import RankRequest, Selector
from adcreative.select.simulator import build_bundle

GH_X, GH_W = np.polynomial.hermite_e.hermegauss(16)
GH_W = GH_W / GH_W.sum()


def ref_p_top(a: np.ndarray, b: np.ndarray, top: int) -> float:
    if len(a) == 1:
        return 1.0
    s = a + b
    mean, sd = a / s, np.sqrt(a * b / (s * s * (s + 1))) + 1e-12
    x = mean[top] + sd[top] * GH_X
    rival = mean + 9.0 * sd > x[0]
    rival[top] = False
    if not rival.any():
        return 1.0
    return float(min(max(float(GH_W @ np.prod(ndtr((x[:, None] - mean[rival]) / sd[rival]), axis=1)), 0.0), 1.0))


def ref_policy_rank(pol: BetaVisualTS, ids: list[str], scores: np.ndarray | None, explore: bool | None
                    ) -> tuple[np.ndarray, bool, float]:
    """``BetaVisualTS.rank`` before the fast path: posterior from the counts on every request."""
    eps = float(pol.config["exploration_share"])
    explored = bool(pol.rng.random() < eps) if explore is None else explore
    a, b = pol.posterior(pol.rows(ids))
    greedy = np.asarray(scores, np.float64) if scores is not None else a / (a + b)
    if explored:
        # each arm's own draw: the moment-matched normal, or the exact Beta for an arm with under 10
        # pseudo-counts on a side (normals for all first, then Betas for the young arms)
        s = a + b
        draw = a / s + np.sqrt(a * b / (s * s * (s + 1))) * pol.rng.standard_normal(len(a))
        young = np.minimum(a, b) < 10.0
        if young.any():
            draw[young] = pol.rng.beta(a[young], b[young])
        order = np.argsort(-draw)
    else:
        order = np.argsort(-greedy)
    top = int(order[0])
    g = top if not explored else int(np.argmax(greedy))
    return order, explored, (1 - eps) * float(top == g) + (eps * ref_p_top(a, b, top) if eps > 0 else 0.0)


def ref_scores(b: Bundle, req: RankRequest) -> tuple[np.ndarray, float]:
    """The list-wise scores (zero pair features where none are given) and the ad logit, written out."""
    sc, w = b.creative_scorer, b.creative_scorer.w
    rows = b.creatives.index_of(req.candidates)
    ucat = hash_user(req.user, sc.user_cat_fields, sc.n_buckets)
    unum = np.array([float(req.user.get(f, 0.0)) for f in sc.user_num_fields], np.float32)

    def tower(w: dict[str, np.ndarray], nb: int) -> np.ndarray:
        emb = w["user.emb.weight"][ucat + np.arange(len(ucat)) * nb].reshape(1, -1)
        x = np.concatenate([emb, unum[None, : w["user.fc.weight"].shape[1] - emb.shape[1]]], axis=1)
        return np.maximum(x @ w["user.fc.weight"].T + w["user.fc.bias"], 0.0)[0]  # type: ignore[no-any-return]

    pair = np.zeros((len(rows), sc.pair_dim), np.float32)
    for i, c in enumerate(req.candidates):
        if req.pair and c in req.pair:
            pair[i] = req.pair[c]
    z = sc.v[rows] @ (tower(w, sc.n_buckets)[:, None] * sc.W_uv) + sc.vb[rows] + pair @ sc.W_pair
    ad = b.ad_scorer
    h = np.maximum(tower(ad.w, ad.n_buckets) @ ad.user_w + ad.ad_part[hash_bucket("ad", b.ad_id, ad.n_ad_buckets)
                                                                     % ad.n_ad_buckets]
                   + ad.ctx_part[min(req.position, ad.n_contexts - 1)], 0.0)
    return np.maximum(z, 0.0) @ sc.out_w + sc.out_b, float(h @ ad.w["out.weight"][0] + ad.w["out.bias"][0])


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    feats = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    return build_bundle(tmp_path_factory.mktemp("b") / "bundle", feats, n_logged=1500, epochs=1,
                        exploration_share=0.3)


@pytest.mark.parametrize("policy_knows", ["all", "half"])
def test_selector_rank_matches_the_straightforward_path(bundle_dir: Path, policy_knows: str) -> None:
    """``half``: the policy starts with half the creatives; the rest join it (feature prior) when requested."""
    fast_b, ref = Bundle.load(bundle_dir), Bundle.load(bundle_dir)
    if policy_knows == "half":
        n = len(ref.creatives) // 2
        for bb in (fast_b, ref):
            bb.policy = BetaVisualTS(n_features=ref.creatives.features.shape[1], exploration_share=0.3, seed=4)
            bb.policy.add_arms(ref.creatives.ids[:n], ref.creatives.features[:n])
    fast = Selector(fast_b)
    assert ref.policy is not None and isinstance(ref.policy, BetaVisualTS)
    sc = ref.creative_scorer
    rng = np.random.default_rng(7)
    ids = ref.creatives.ids
    n_explored = 0
    for i in range(400):
        k = int(rng.integers(1, len(ids) + 1))
        cands = [str(c) for c in rng.choice(ids, k, replace=False)]
        user: dict[str, Any] = {f: int(rng.integers(5)) for f in sc.user_cat_fields}
        user.update({f: float(rng.normal()) for f in sc.user_num_fields})
        pair = {c: [float(rng.normal())] * sc.pair_dim for c in cands[:3]} if sc.pair_dim and i % 3 == 0 else None
        req = RankRequest(user_id=f"u{i}", ad_id=ref.ad_id, candidates=cands, user=user, pair=pair,
                          position=int(rng.integers(3)), explore=(None, True, False)[i % 3 if i % 5 else 0])
        got = fast.rank(req)
        scores, ad_logit = ref_scores(ref, req)
        if not set(cands) <= set(ref.policy.ids):  # what the selector did before: add unseen arms on demand
            ref.policy.add_arms(cands, ref.creatives.features[ref.creatives.index_of(cands)])
        order, explored, prop = ref_policy_rank(ref.policy, cands, scores if ref.serves_model else None, req.explore)
        assert got.ranked == [cands[j] for j in order]
        assert got.explored == explored
        assert got.propensity == pytest.approx(prop, rel=1e-9, abs=1e-300)
        np.testing.assert_allclose(got.scores, scores[order], rtol=1e-5, atol=1e-6)
        assert got.ad_pctr == pytest.approx(1 / (1 + np.exp(-ad_logit)), rel=1e-5)
        n_explored += explored
        # events between requests: the cached moments must follow the counts
        shown = got.ranked[0]
        fast.observe("impression", shown)
        ref.policy.update(shown, 0.0)
        if rng.random() < 0.2:
            fast.observe("click", shown)
            ref.policy.update(shown, 1.0, impressions=0.0)
    assert 100 < n_explored < 300


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_beta_visual_rank_matches_reference_with_updates_and_new_arms(share: float, cached: bool) -> None:
    """Both draw paths (exact Beta for thin posteriors, moment-matched normal once counts are large; mixed
    within one request while some arms are young),
    greedy by scores and by posterior mean, arms added mid-stream, ids or resolved rows; with and without
    the propensity factor cache (``cache_p_top``)."""
    rng = np.random.default_rng(3)
    feats = rng.standard_normal((35, 4))
    ids = [f"c{j}" for j in range(35)]
    pols = [BetaVisualTS(n_features=4, exploration_share=share, seed=11) for _ in range(2)]
    for p in pols:
        p.add_arms(ids[:20], feats[:20])
    fast, ref = pols
    if cached:
        fast.cache_p_top()
    n_mixed = 0
    for i in range(300):
        if i == 100:
            for p in pols:
                p.add_arms(ids[:30], feats[:30])
        if i == 250:  # young arms join old ones: one request mixes Beta and normal draws
            for p in pols:
                p.add_arms(ids, feats)
        if i == 200:  # heavy history: every posterior ≥ 10 pseudo-counts a side → the normal draw path
            extra = rng.binomial(5000, 0.05, len(fast.clicks))
            for p in pols:
                p.impressions[:] += 5000
                p.clicks[:] += extra
                p.fit_prior()
        known = fast.ids
        cands = [str(c) for c in rng.choice(known, int(rng.integers(1, len(known) + 1)), replace=False)]
        scores = rng.normal(size=len(cands)) if i % 2 else None
        explore = (None, True, False)[i % 3]
        d = fast.rank(cands, scores=scores, explore=explore, rows=fast.rows(cands) if i % 4 else None)
        order, explored, prop = ref_policy_rank(ref, cands, scores, explore)
        low = np.minimum(*ref.posterior(ref.rows(cands)))
        n_mixed += bool(explored and low.min() < 10.0 <= low.max())
        assert d.order.tolist() == order.tolist() and d.explored == explored
        assert d.propensity == pytest.approx(prop, rel=1e-9, abs=1e-300)
        r = float(rng.random() < 0.1)
        for p in pols:
            p.update(cands[int(order[0])], r)
    np.testing.assert_array_equal(fast.clicks, ref.clicks)
    assert share == 0.0 or n_mixed > 0
    assert bool(fast._factors) == (cached and share > 0)


def _requests(b: Bundle, n: int, seed: int) -> list[RankRequest]:
    sc, ids = b.creative_scorer, b.creatives.ids
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cands = [str(c) for c in rng.choice(ids, int(rng.integers(1, len(ids) + 1)), replace=False)]
        user: dict[str, Any] = {f: int(rng.integers(5)) for f in sc.user_cat_fields}
        user.update({f: float(rng.normal()) for f in sc.user_num_fields[: int(rng.integers(len(sc.user_num_fields) + 1))]})
        pair = {c: [float(rng.normal())] * sc.pair_dim for c in cands[:3]} if sc.pair_dim and i % 3 == 0 else None
        out.append(RankRequest(user_id=f"u{i}", ad_id=b.ad_id, candidates=cands, user=user, pair=pair,
                               position=int(rng.integers(6)), request_id=f"r{i}",
                               explore=(None, True, False)[i % 3 if i % 5 else 0]))
    return out


@pytest.mark.parametrize("cache_bytes", [8 << 20, 3000])
def test_serving_path_equals_the_composed_reference(bundle_dir: Path, cache_bytes: int) -> None:
    """``Selector.rank`` (folded ad model, cached propensity factors) against ``Selector(reference=True)`` (each
    model's own API) on seeded requests: identical orders, exploration flags, ids and scores (bitwise),
    propensities within 1e-9, the ad pCTR to float32 rounding. The policy starts with half the
    creatives (the rest join mid-stream, young), a third of the arms carry heavy history (old: the normal
    draw), so explored requests mix exact Beta and normal draws; events arrive between requests, and a 3,000-byte
    factor cache (fewer rows than tops) exercises eviction."""
    fast_b, ref_b = Bundle.load(bundle_dir), Bundle.load(bundle_dir)
    n, d = len(ref_b.creatives), ref_b.creatives.features.shape[1]
    for bb in (fast_b, ref_b):
        bb.policy = pol = BetaVisualTS(n_features=d, exploration_share=0.3, seed=4)
        pol.add_arms(ref_b.creatives.ids[: n // 2], ref_b.creatives.features[: n // 2])
        pol.impressions[: n // 3] += 4000
        pol.clicks[: n // 3] += np.arange(n // 3) * 20 + 40
        pol.fit_prior()
    fast, ref = Selector(fast_b), Selector(ref_b, reference=True)
    fpol, rpol = fast_b.policy, ref_b.policy
    assert isinstance(fpol, BetaVisualTS) and isinstance(rpol, BetaVisualTS)
    fpol.cache_p_top(cache_bytes)
    n_mixed = n_explored = 0
    for req in _requests(ref_b, 400, 11):
        got, want = fast.rank(req), ref.rank(req)
        assert (got.ranked, got.explored, got.request_id) == (want.ranked, want.explored, want.request_id)
        assert got.propensity == pytest.approx(want.propensity, rel=1e-9, abs=1e-300)
        assert got.scores == want.scores          # the list-wise arithmetic is the reference's: bitwise
        assert got.ad_pctr == pytest.approx(want.ad_pctr, rel=1e-5)
        low = np.minimum(*rpol.posterior(rpol.rows(req.candidates)))
        n_mixed += bool(got.explored and low.min() < 10.0 <= low.max())
        n_explored += got.explored
        for kind in ("impression",) + (("click",) if len(got.ranked) % 4 == 0 else ()):
            fast.observe(kind, got.ranked[0])
            ref.observe(kind, got.ranked[0])
    np.testing.assert_array_equal(fpol.impressions, rpol.impressions)
    assert n_mixed > 10 and 100 < n_explored < 300
    assert fpol._factors and not rpol._factors   # the serving path used the cache; the reference did not
    if cache_bytes < 8 << 20:
        assert len(fpol._factors) * len(fpol.ids) * 136 <= cache_bytes + len(fpol.ids) * 136


def test_serving_path_refuses_bad_requests_as_the_reference_does(bundle_dir: Path) -> None:
    fast, ref = Selector(Bundle.load(bundle_dir)), Selector(Bundle.load(bundle_dir), reference=True)
    ids = fast.bundle.creatives.ids
    bad = [RankRequest("u", "other", ids[:3]), RankRequest("u", "sim", []),
           RankRequest("u", "sim", [f"x{i}" for i in range(1001)]),
           RankRequest("u", "sim", [ids[0], "nope", ids[0]]), RankRequest("u", "sim", [ids[0], "nope"]),
           RankRequest("u", "sim", ids[:3], position=-1), RankRequest("u", "sim", ids[:2], user={"x0": "inf"}),
           RankRequest("u", "sim", ids[:2], pair={ids[0]: [1.0, 2.0]})]
    for req in bad:
        errors = []
        for sel in (fast, ref):
            with pytest.raises((LookupError, ValueError)) as e:
                sel.rank(req)
            errors.append((type(e.value), str(e.value)))
        assert errors[0] == errors[1]


def test_request_ids_are_uuid4_hex() -> None:
    import uuid

    from adcreative.select.selector import new_request_id

    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for r in list(ids)[:50]:
        u = uuid.UUID(hex=r)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and u.hex == r


@pytest.mark.parametrize(("damage", "needle"), [
    ("manifest_json", "damaged selection bundle (JSONDecodeError"),
    ("current", "damaged selection bundle (FileNotFoundError"),
    ("features", "damaged selection bundle (SafetensorError"),
    ("creatives_json", "damaged selection bundle (KeyError"),
])
def test_a_damaged_bundle_is_named_not_a_traceback(bundle_dir: Path, tmp_path: Path, damage: str, needle: str) -> None:
    # a half-copied or hand-edited bundle was a JSONDecodeError / KeyError / SafetensorError traceback in
    # `select rank` and `serve`
    import json
    import shutil

    from adcreative.core.errors import InputError

    d = shutil.copytree(bundle_dir, tmp_path / "bundle")
    manifest = json.loads((d / "MANIFEST.json").read_text())
    vdir = d / manifest["current"]
    if damage == "manifest_json":
        (d / "MANIFEST.json").write_text("{not json")
    elif damage == "current":
        (d / "MANIFEST.json").write_text(json.dumps({**manifest, "current": "versions/gone"}))
    elif damage == "features":
        (vdir / "creatives.safetensors").write_bytes(b"garbage")
    else:
        (vdir / "creatives.json").write_text(json.dumps({"feature_names": []}))
    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        Bundle.load(d)
