"""Held-out evaluation of the preference model (``adcreative explain eval``) and the demo's two users.

* **Creatives** (:func:`creative_set`): compositor creatives of the given products with represent's explicit
  features (OCR included; cached, since OCR costs 1–2 s a creative).
* **Simulator** (:func:`run_sim_seed`): per seed, ``select.simulator``'s hidden click model over the creatives'
  features (:class:`HiddenTruth` wraps either market shape), a product split (train / validation / test), a
  uniformly logged campaign on the training products, pairs from it (matched clicks or clusters), the
  preference model, the selection stage's joint model trained on the same log, the stacked variant, the best
  single feature and a coin flip; measured on fresh users × every within-product pair of the test products
  against the hidden model: accuracy with a two-way bootstrap interval, faithfulness of the explanations
  (:func:`faithfulness`) and user sensitivity (:func:`sensitivity`).
* **Tuning** (:func:`tune`): on the tuning seeds only, by the validation products' logged click pairs.
* **OBD** (:func:`evaluate_obd`): real logged clicks, items × user profiles cross-fitted so that no test item
  or user profile was seen in training.
* **Report** (:func:`run_eval`): ``report.md``, ``results.json``, ``accuracy.png``.
* **Demo** (:func:`demo_choices`): the creative picked per product for two users of opposite hidden taste.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.imageio import atomic_write_text
from adcreative.explain.pairwise import SELECTION_LOGIT as SEL_KEY

ASPECT_CYCLE = ("1:1", "4:5", "16:9", "9:16")


@dataclass
class EvalCreative:
    id: str
    product_id: str
    features: dict[str, Any]


def creative_set(products: Sequence[Any], per_product: int = 8, *, seed: int = 0, cache: str | Path | None = None,
                 progress: bool = False) -> list[EvalCreative]:
    """Compositor creatives of ``products`` (the CLI passes the 7 sample products + 41 procedural ones) with
    represent's explicit features, cached under ``cache`` by product ids, count and seed."""
    key = hashlib.sha1(json.dumps([[p.id for p in products], per_product, seed, "v1"]).encode()).hexdigest()[:10]
    path = Path(cache) / f"explain-eval-creatives-{key}.json" if cache is not None else None
    if path is not None and path.exists():
        return [EvalCreative(**r) for r in json.loads(path.read_text())]
    from adcreative.represent.evaluate import creative_set as compositor_set
    from adcreative.represent.features import CreativeInput, FeatureExtractor

    items = compositor_set(products, per_product, seed=seed, aspects=ASPECT_CYCLE, scale=1.0)
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="eval creatives: features", unit="img")
    feats = FeatureExtractor()([CreativeInput(it.image, it.mask, it.layout) for it in items],
                               progress=bar.update if bar is not None else None)
    if bar is not None:
        bar.close()
    out: list[EvalCreative] = []
    count: dict[str, int] = {}
    for it, f in zip(items, feats, strict=True):
        i = count[it.product_id] = count.get(it.product_id, -1) + 1
        out.append(EvalCreative(f"{it.product_id}#{i}", it.product_id, f))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps([r.__dict__ for r in out]))
    return out


# ------------------------------------------------------------------------------- simulator ----------
USER_CAT = ["segment"]


def user_dicts(x: np.ndarray, segment: np.ndarray) -> list[dict[str, Any]]:
    """The simulator's observed user context as the dicts the service logs (``context["user"]``)."""
    return [{"segment": int(s), **{f"x{j}": float(v) for j, v in enumerate(row)}} for row, s in zip(x, segment, strict=True)]


@dataclass
class Users:
    """Simulated users as the evaluation sees them: ``key`` identifies them to the hidden model (latent
    tastes, or indices into a finite population), ``x``/``segment`` are what a model may observe."""

    key: np.ndarray
    x: np.ndarray
    segment: np.ndarray

    def take(self, idx: np.ndarray) -> Users:
        return Users(self.key[idx], self.x[idx], self.segment[idx])


class HiddenTruth:
    """The simulator's hidden click model through its public interface, for either market shape in
    ``select.simulator``: users drawn afresh with latent tastes (``users(n, rng)``, ``logits(latent)``), or
    a finite returning population (``n_users``, ``x``, ``segment``, ``click_prob(u, slot)``), whose users
    are split in half so test users are never training users. Preferences are compared in the top slot
    with no exposure history (position and fatigue do not reorder two creatives for one user there)."""

    def __init__(self, market: Any, seed: int) -> None:
        self.market = market
        self.population = not hasattr(market, "users")
        if self.population:
            perm = np.random.default_rng(seed + 17).permutation(market.n_users)
            self.parts = {"train": perm[: len(perm) // 2], "test": perm[len(perm) // 2:]}

    def draw(self, n: int, rng: np.random.Generator, part: str = "train") -> Users:
        if not self.population:
            u = self.market.users(n, rng)
            return Users(u.latent, u.x, u.segment)
        idx = self.parts[part][rng.integers(0, len(self.parts[part]), n)]
        return Users(idx, self.market.x[idx], self.market.segment[idx])

    def logits(self, users: Users) -> np.ndarray:
        """``[N, C]`` hidden log-odds of a click (top slot, fresh)."""
        if not self.population:
            return self.market.logits(users.key)  # type: ignore[no-any-return]
        e0 = float(self.market.examination[0])
        p = np.stack([self.market.click_prob(int(u), 0) for u in users.key]) / e0
        return np.log(p / np.clip(1.0 - p, 1e-12, None))  # type: ignore[no-any-return]

    def taste(self, users: Users) -> np.ndarray:
        """The hidden taste vector that decides between creatives (segment + individual where both exist)."""
        if not self.population:
            return users.key
        m = self.market
        return m.segment_taste[m.segment[users.key]] + m.taste[users.key]  # type: ignore[no-any-return]

    def opposite(self, users: Users, rng: np.random.Generator, pool: int = 20000) -> Users:
        """For each user, the user (of a fresh pool, or of the test half of the population) whose hidden
        taste is closest to the opposite of theirs."""
        cand = self.draw(pool, rng, "test") if not self.population else Users(
            self.parts["test"], self.market.x[self.parts["test"]], self.market.segment[self.parts["test"]])
        t, tc = self.taste(users), self.taste(cand)
        d = ((tc[None, :, :] + t[:, None, :]) ** 2).sum(-1)
        return cand.take(d.argmin(1))


@dataclass
class SimWorld:
    """One seed's market over the creative set, and its split by product (an ad = a product)."""

    creatives: list[EvalCreative]
    market: Any                    # select.simulator.SyntheticMarket (hidden click model)
    product_of: np.ndarray         # [C] product index of each creative
    products: list[str]
    split: dict[str, np.ndarray]   # "train" / "val" / "test" → product indices
    seed: int
    truth: HiddenTruth

    def rows(self, part: str) -> np.ndarray:
        """Creative rows of the products in ``part``."""
        return np.flatnonzero(np.isin(self.product_of, self.split[part]))


def make_world(creatives: list[EvalCreative], seed: int, *, fractions: tuple[float, float] = (0.6, 0.2),
               market_kwargs: dict[str, Any] | None = None) -> SimWorld:
    """A hidden click model over represent's explicit features of every creative, and a product split."""
    from adcreative.represent.features import to_vector
    from adcreative.select.simulator import SyntheticMarket

    products = sorted({c.product_id for c in creatives})
    pid = {p: i for i, p in enumerate(products)}
    product_of = np.array([pid[c.product_id] for c in creatives])
    feats = np.stack([to_vector(c.features) for c in creatives]).astype(np.float64)
    market = SyntheticMarket(feats, seed=seed, **(market_kwargs or {}))
    perm = np.random.default_rng(seed + 101).permutation(len(products))
    n_tr, n_va = round(fractions[0] * len(products)), round(fractions[1] * len(products))
    split = {"train": np.sort(perm[:n_tr]), "val": np.sort(perm[n_tr:n_tr + n_va]), "test": np.sort(perm[n_tr + n_va:])}
    return SimWorld(creatives, market, product_of, products, split, seed, HiddenTruth(market, seed))


@dataclass
class SimLog:
    """Logged impressions: uniform random product of a part, uniform random creative of that product."""

    x: np.ndarray          # [N, k] observed user features
    segment: np.ndarray    # [N]
    product: np.ndarray    # [N] product index
    shown: np.ndarray      # [N] creative row
    click: np.ndarray      # [N] 0/1


def simulate_log(world: SimWorld, part: str, n: int, rng: np.random.Generator, chunk: int = 4096) -> SimLog:
    users = world.truth.draw(n, rng, "train")
    prods = world.split[part]
    product = prods[rng.integers(0, len(prods), n)]
    by_product = {int(p): np.flatnonzero(world.product_of == p) for p in prods}
    shown = np.array([by_product[int(p)][rng.integers(0, len(by_product[int(p)]))] for p in product])
    u = rng.random(n)
    click = np.zeros(n, np.float32)
    for s in range(0, n, chunk):  # the hidden model's [n, C] matrix is only ever held a chunk at a time
        z = world.truth.logits(users.take(np.arange(s, min(s + chunk, n))))
        click[s:s + chunk] = u[s:s + chunk] < 1.0 / (1.0 + np.exp(-z[np.arange(len(z)), shown[s:s + chunk]]))
    return SimLog(users.x, users.segment, product, shown, click)


def user_groups(x: np.ndarray, segment: np.ndarray, n_groups: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """"Similar users": k-means clusters of the observed user features (group id per row, centroids)."""
    from adcreative.represent.features import kmeans

    centres, labels = kmeans(np.asarray(x, np.float64), n_groups, iters=30, seed=seed)
    return labels, centres


def logged_pairs(world: SimWorld, log: SimLog, *, mode: str = "matched", per_click: int = 4, n_groups: int = 32,
                 min_impressions: int = 20, min_clicks: int = 1, seed: int = 0) -> list[Any]:
    """CreativePairs from a simulated log, same ad (product) and similar users: ``matched`` (each click
    against the nearest users' non-clicked impressions of other creatives, :func:`~adcreative.explain.pairs.
    click_pairs`) or ``clusters`` (k-means user clusters under the minimum-evidence rule,
    :func:`~adcreative.explain.pairs.aggregate_pairs`)."""
    from adcreative.explain.pairs import aggregate_pairs, click_pairs

    ids = [world.creatives[i].id for i in log.shown]
    if mode == "matched":
        return click_pairs(log.product.tolist(), log.x, ids, log.click.tolist(), per_click=per_click,
                           users=user_dicts(log.x, log.segment), seed=seed)
    if mode != "clusters":
        raise ValueError(f"unknown pair mode {mode!r}")
    labels, centres = user_groups(log.x, log.segment, n_groups, seed)
    users = {}
    for g in range(len(centres)):
        seg = log.segment[labels == g]
        mode_seg = int(np.bincount(seg).argmax()) if len(seg) else 0
        users[g] = user_dicts(centres[g:g + 1], np.array([mode_seg]))[0]
    return aggregate_pairs(log.product.tolist(), labels.tolist(), ids, log.click.tolist(),
                           min_impressions=min_impressions, min_clicks=min_clicks, users=users,
                           describe="user cluster")


# ------------------------------------------------------------------------------ the models ----------
def pair_set(pairs: Sequence[Any], feats: Mapping[str, Mapping[str, Any]]) -> Any:
    """A :class:`PairSet` from CreativePairs whose images are ids in ``feats``."""
    from adcreative.explain.preference import PairSet

    users: list[Mapping[str, Any] | None] = [q.user if isinstance(q.user, dict) else None for q in pairs]
    return PairSet(users, [feats[q.image_a] for q in pairs],
                   [feats[q.image_b] for q in pairs], np.array([q.target for q in pairs]), np.ones(len(pairs)))


@dataclass
class Standardiser:
    """z-scores of the explicit matrix, fitted on training creatives (the selection model's creative input)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        sd = x.std(0)
        return cls(x.mean(0), np.where(sd > 1e-9, sd, 1.0))

    def __call__(self, feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
        from adcreative.explain.preference import explicit_matrix

        return ((explicit_matrix(feats) - self.mean) / self.std).astype(np.float32)  # type: ignore[no-any-return]


@dataclass
class SelectionModel:
    """The selection stage's joint model trained on the same log, and how its creative input is built."""

    trained: Any                 # select.models.TrainResult
    transform: Standardiser

    def table_scorer(self, feats: Sequence[Mapping[str, Any]]) -> Any:
        """The served NumPy scorer (``select.scoring.CreativeScorer``) over creatives given as feature dicts."""
        from adcreative.select.data import CreativeTable
        from adcreative.select.scoring import CreativeScorer

        table = CreativeTable([str(i) for i in range(len(feats))], self.transform(feats))
        return CreativeScorer.from_model(self.trained.creative_model, table)

    def scores(self, feats: Sequence[Mapping[str, Any]], segment: np.ndarray, x: np.ndarray,
               rows: np.ndarray | None = None) -> np.ndarray:
        """Creative logits ``[U, K]`` of each user for creatives given as feature dicts (all of them, or
        ``rows [U, K]`` per user)."""
        cand = np.tile(np.arange(len(feats)), (len(x), 1)) if rows is None else rows
        return self.table_scorer(feats).score_batch(  # type: ignore[no-any-return]
            segment[:, None].astype(np.int64), x.astype(np.float32), cand, np.zeros((*cand.shape, 0), np.float32))

    def scorer(self, segment: int, x: np.ndarray) -> Any:
        """Feature dicts → the selection model's creative logits for one user (for the explainer)."""
        return lambda feats: self.scores(feats, np.array([segment]), np.asarray(x)[None, :])[0]




def with_logits(feats: Sequence[Mapping[str, Any]], logits: Sequence[float] | np.ndarray) -> list[Mapping[str, Any]]:
    """Feature dicts carrying the serving model's logit for one user (the stacked model's extra aspect)."""
    return [{**f, SEL_KEY: float(v)} for f, v in zip(feats, logits, strict=True)]


@dataclass
class Stacked:
    """The preference model stacked on the selection model: the serving model's logit for (user, creative)
    is one more input beside the explicit features. With ``anchor`` (the default) it enters unshrunk with
    its weight starting at 1, so the model learns corrections to the serving model."""

    model: Any
    selection: SelectionModel

    def utilities(self, feats: Sequence[Mapping[str, Any]], segment: np.ndarray, x: np.ndarray) -> np.ndarray:
        sel = self.selection.scores(feats, segment, x)                                     # [U, C]
        phi = self.model.creative_matrix([{**f, SEL_KEY: 0.0} for f in feats])            # [C, D]
        wu = self.model.user_weights(user_dicts(x, segment))                               # [U, D]
        z_sel = (sel - self.model.c_mean[-1]) / self.model.c_std[-1]
        return (phi[:, :-1] @ wu[:, :-1].T).T + z_sel * wu[:, -1:]  # type: ignore[no-any-return]

    def with_logits(self, segment: int, x: np.ndarray, feats: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The creatives as the stacked model sees them for this user: features + the serving model's logit."""
        return with_logits(feats, self.selection.scorer(segment, x)(feats))

    def scorer(self, segment: int, x: np.ndarray) -> Any:
        """Feature dicts → utility. A dict that carries ``selection_logit`` is scored as it is (the logit is
        its own aspect: swapping another aspect leaves it alone, so the utility is additive over aspects and
        every reason's swap is exact); one without gets the serving model's logit of its features."""
        sel = self.selection.scorer(segment, x)
        inner = self.model.scorer(user_dicts(np.asarray(x)[None, :], np.array([segment]))[0])

        def score(feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
            missing = [i for i, f in enumerate(feats) if f.get(SEL_KEY) is None]
            filled = [dict(f) for f in feats]
            if missing:
                for i, v in zip(missing, sel([feats[i] for i in missing]), strict=True):
                    filled[i][SEL_KEY] = float(v)
            return inner(filled)  # type: ignore[no-any-return]

        return score


def logit_pair_set(pairs: Sequence[Any], feats: Mapping[str, Mapping[str, Any]], selection: SelectionModel,
                   k: int) -> Any:
    """A :class:`PairSet` whose creatives carry the serving model's logit for each pair's user."""
    from adcreative.explain.preference import PairSet

    ids = sorted({i for q in pairs for i in (q.image_a, q.image_b)})
    pos = {c: j for j, c in enumerate(ids)}
    seg = np.array([int(q.user["segment"]) for q in pairs])
    x = np.array([[q.user[f"x{j}"] for j in range(k)] for q in pairs], np.float64)
    rows = np.array([[pos[q.image_a], pos[q.image_b]] for q in pairs])
    s = selection.scores([feats[c] for c in ids], seg, x, rows=rows)                     # [P, 2]
    users: list[Mapping[str, Any] | None] = [q.user for q in pairs]
    return PairSet(users, with_logits([feats[q.image_a] for q in pairs], s[:, 0]),
                   with_logits([feats[q.image_b] for q in pairs], s[:, 1]), np.array([q.target for q in pairs]),
                   np.ones(len(pairs)))


def fit_stacked(pairs: Sequence[Any], feats: Mapping[str, Mapping[str, Any]], selection: SelectionModel, k: int,
                cfg: Any, seed: int) -> Stacked:
    from adcreative.explain import create_preference_model
    from adcreative.explain.preference import PreferenceTrainConfig, train_preference
    from adcreative.represent.features import NUMERIC_FEATURES

    model = create_preference_model("bradley_terry", creative_features=[*NUMERIC_FEATURES, SEL_KEY],
                                    user_cat_fields=USER_CAT, user_num_fields=[f"x{j}" for j in range(k)],
                                    n_buckets=16, rank=cfg.rank, anchor=SEL_KEY if cfg.stack_anchor else None)
    train_preference(model, logit_pair_set(pairs, feats, selection, k),
                     PreferenceTrainConfig(l2=cfg.stack_l2, l2_user=cfg.l2_user, steps=cfg.steps, seed=seed))
    return Stacked(model, selection)


def train_selection(world: SimWorld, log: SimLog, *, epochs: int = 4, seed: int = 0) -> SelectionModel:
    """``select.models.train_joint`` on the simulated log (candidates: the shown creative's product's creatives)."""
    import torch

    from adcreative.explain.preference import explicit_matrix
    from adcreative.select.data import AD_BUCKETS, CreativeTable, ImpressionLog, hash_bucket
    from adcreative.select.models import TrainConfig, train_joint

    torch.set_num_threads(1)
    feats = [c.features for c in world.creatives]
    tf = Standardiser.fit(explicit_matrix([feats[i] for i in world.rows("train")]))
    table = CreativeTable([c.id for c in world.creatives], tf(feats))
    k = int(np.bincount(world.product_of).max())
    cands = np.full((len(world.products), k), -1, np.int64)
    for p in range(len(world.products)):
        rows = np.flatnonzero(world.product_of == p)
        cands[p, : len(rows)] = rows
    cand = cands[log.product]
    shown_col = np.argmax(cand == log.shown[:, None], axis=1)
    n = len(log.click)
    il = ImpressionLog(user_cat=log.segment[:, None].astype(np.int64), user_num=log.x.astype(np.float32),
                       ad=np.array([hash_bucket("ad", int(p), AD_BUCKETS) for p in log.product], np.int64),
                       context=np.zeros(n, np.int64), candidates=cand, pair=np.zeros((n, k, 0), np.float32),
                       shown=shown_col, click=log.click.astype(np.float32),
                       propensity=1.0 / (cand >= 0).sum(1).astype(np.float32), group=np.arange(n, dtype=np.int64),
                       ad_id=log.product.astype(np.int64))
    cfg = TrainConfig(epochs=epochs, seed=seed, n_creative_buckets=0, batch_size=512)
    res = train_joint(il, table, USER_CAT, user_num_fields=[f"x{j}" for j in range(log.x.shape[1])], n_buckets=4,
                      cfg=cfg)
    return SelectionModel(res, tf)


# ----------------------------------------------------------------------------- measurements ----------
def product_pairs(world: SimWorld, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every within-product pair of ``rows`` as (i, j) positions into ``rows`` and the pair's product."""
    pi, pj, pp = [], [], []
    prod = world.product_of[rows]
    for p in np.unique(prod):
        idx = np.flatnonzero(prod == p)
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                pi.append(idx[a])
                pj.append(idx[b])
                pp.append(p)
    return np.array(pi), np.array(pj), np.array(pp)


@dataclass
class Accuracy:
    """Pairwise accuracy with its 95 % bootstrap interval and what it was counted over."""

    value: float
    lo: float
    hi: float
    n_pairs: int
    n_users: int = 0       # simulator: users × products resampled
    n_products: int = 0
    n_clicks: int = 0      # logged pairs: held-out clicks resampled

    def fmt(self) -> str:
        return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


def pairwise_accuracy(pred: np.ndarray, truth: np.ndarray, pi: np.ndarray, pj: np.ndarray, pp: np.ndarray, *,
                      min_gap: float = 0.0, n_boot: int = 1000, seed: int = 0) -> Accuracy:
    """Share of (user, pair) cases where ``pred``'s order agrees with ``truth``'s (ties count ½).

    ``pred``/``truth``: ``[U, R]`` scores of every user for every test creative; cases whose truth gap is
    ``<= min_gap`` (logit units) are left out. The interval resamples users and products independently
    (pairs share creatives and users, so they are not independent draws).
    """
    d = pred[:, pi] - pred[:, pj]
    t = truth[:, pi] - truth[:, pj]
    correct = (np.sign(d) == np.sign(t)).astype(np.float64) + 0.5 * (d == 0)
    keep = np.abs(t) > min_gap
    prods = np.unique(pp)
    num = np.stack([(correct * keep)[:, pp == p].sum(1) for p in prods], 1)  # [U, P]
    den = np.stack([keep[:, pp == p].sum(1) for p in prods], 1).astype(np.float64)
    value = float(num.sum() / max(den.sum(), 1.0))
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        wu = np.bincount(rng.integers(0, num.shape[0], num.shape[0]), minlength=num.shape[0])
        wp = np.bincount(rng.integers(0, num.shape[1], num.shape[1]), minlength=num.shape[1])
        boots[b] = (wu @ num @ wp) / max(float(wu @ den @ wp), 1.0)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Accuracy(value, float(lo), float(hi), int(keep.sum()), num.shape[0], num.shape[1])


STACKED = "preference model on the serving model's logit (stacked)"


@dataclass
class SimConfig:
    """One simulator run. The pair and model defaults are the choice tuned on seeds 0–1 (docs/explain.md)."""

    n_log: int = 200_000        # logged impressions over the training products
    pairs: str = "matched"      # how pairs come from the log: "clusters" (minimum evidence) or "matched" clicks
    per_click: int = 4          # matched: non-clicked neighbours per click
    n_groups: int = 32          # clusters: "similar users" k-means groups
    min_impressions: int = 20   # clusters: the minimum-evidence rule, impressions per side in a cluster
    rank: int = 4
    l2: float = 1e-3
    l2_user: float = 1e-3
    steps: int = 400
    selection_epochs: int = 4
    n_test_users: int = 300
    n_explain: int = 600        # (user, pair) cases explained for the faithfulness rate
    # stacked (chosen by :func:`tune_stacked` on seeds 0–1, with pairs = matched × 4 above):
    stack_anchor: bool = True   # the serving model's logit unshrunk, its weight starting at 1 (False: shrunk as the rest)
    stack_l2: float = 1e-2      # shrinkage of the other weights


def fit_preference(pairs: Sequence[Any], feats: Mapping[str, Mapping[str, Any]], k: int, cfg: SimConfig,
                   seed: int) -> Any:
    from adcreative.explain import create_preference_model
    from adcreative.explain.preference import PreferenceTrainConfig, train_preference

    model = create_preference_model("bradley_terry", user_cat_fields=USER_CAT,
                                    user_num_fields=[f"x{j}" for j in range(k)], n_buckets=16, rank=cfg.rank)
    train_preference(model, pair_set(pairs, feats),
                     PreferenceTrainConfig(l2=cfg.l2, l2_user=cfg.l2_user, steps=cfg.steps, seed=seed))
    return model


def validation_loss(model: Any, pairs: Sequence[Any], feats: Mapping[str, Mapping[str, Any]], ps: Any = None) -> float:
    """Mean cross-entropy of the model's P(a ≻ b) against the logged pairs' soft targets (observable on
    validation products; no hidden truth used for tuning). ``ps``: the pairs already as a PairSet."""
    ps = ps if ps is not None else pair_set(pairs, feats)
    z = model.pair_logits(model.user_matrix(ps.users), model.creative_matrix(ps.a), model.creative_matrix(ps.b))
    p = np.clip(1.0 / (1.0 + np.exp(-z)), 1e-6, 1 - 1e-6)
    return float(-np.mean(ps.target * np.log(p) + (1 - ps.target) * np.log(1 - p)))


def best_single_feature(pairs: Sequence[Any], feats: Mapping[str, Mapping[str, Any]],
                        names: Sequence[str] | None = None) -> tuple[str, float, float]:
    """The one feature (and sign) whose order best agrees with the training pairs' winners:
    (name, sign, training accuracy) — the baseline a reviewer's rule of thumb would be."""
    from adcreative.represent.features import NUMERIC_FEATURES

    names = list(names or NUMERIC_FEATURES)
    y = np.array([1.0 if q.winner == "a" else -1.0 for q in pairs])
    d = np.array([[float(feats[q.image_a].get(k, 0) or 0) - float(feats[q.image_b].get(k, 0) or 0) for k in names]
                  for q in pairs])
    s = np.sign(d) * y[:, None]                      # +1 agrees, −1 disagrees, 0 tie
    acc = ((s > 0).sum(0) + 0.5 * (s == 0).sum(0)) / len(pairs)
    j = int(np.argmax(np.abs(acc - 0.5)))
    return names[j], (1.0 if acc[j] >= 0.5 else -1.0), float(max(acc[j], 1 - acc[j]))


def faithfulness(explainer: Any, cases: Sequence[tuple[Any, Mapping[str, Any], Mapping[str, Any]]]) -> dict[str, float]:
    """Explain each (user, A, B) case and count how many stated reasons pass their counterfactual check.

    ``explainer(user, a, b) -> Explanation``. Also counts citations of aspects that do not differ (must be 0).
    """
    from adcreative.explain.pairwise import ASPECT_BY_NAME

    n_main = n_main_ok = n_all = n_all_ok = n_bad_cite = n_expl = n_reasons = n_tie = 0
    for user, a, b in cases:
        ex = explainer(user, a, b)
        if ex.no_preference:
            n_tie += 1
            continue
        n_expl += 1
        n_reasons += len(ex.reasons)
        for r in [*ex.reasons, *ex.counter]:
            if not ASPECT_BY_NAME[r.aspect].differs(a, b):
                n_bad_cite += 1
            ok = bool(r.check and r.check.passed)
            n_all += 1
            n_all_ok += ok
            if r in ex.reasons:
                n_main += 1
                n_main_ok += ok
    return {"explanations": n_expl, "no_preference": n_tie, "reasons": n_main,
            "mean_reasons": n_reasons / max(n_expl, 1), "faithful_reasons": n_main_ok / max(n_main, 1),
            "faithful_all": n_all_ok / max(n_all, 1), "cited_not_differing": n_bad_cite}


def sensitivity(pred: np.ndarray, pred_opp: np.ndarray, truth: np.ndarray, truth_opp: np.ndarray, pi: np.ndarray,
                pj: np.ndarray, min_gap: float = 0.2) -> dict[str, float]:
    """Does the same pair get different winners for users with opposite tastes, when the truth says so?

    Cases are (user, opposite user, pair) with both truth gaps > ``min_gap``. Returns the truth's flip
    rate, the share of truth flips the model reproduces with both winners right (sensitivity), and the
    share of truth non-flips where the model flips anyway (false flips)."""
    t1, t2 = truth[:, pi] - truth[:, pj], truth_opp[:, pi] - truth_opp[:, pj]
    m1, m2 = pred[:, pi] - pred[:, pj], pred_opp[:, pi] - pred_opp[:, pj]
    keep = (np.abs(t1) > min_gap) & (np.abs(t2) > min_gap)
    tflip = (np.sign(t1) != np.sign(t2)) & keep
    tsame = (np.sign(t1) == np.sign(t2)) & keep
    both_right = (np.sign(m1) == np.sign(t1)) & (np.sign(m2) == np.sign(t2))
    mflip = np.sign(m1) != np.sign(m2)
    return {"cases": int(keep.sum()), "truth_flip_rate": float(tflip.sum() / max(keep.sum(), 1)),
            "flips_reproduced": float((tflip & both_right).sum() / max(tflip.sum(), 1)),
            "flips_detected": float((tflip & mflip).sum() / max(tflip.sum(), 1)),
            "false_flips": float((tsame & mflip).sum() / max(tsame.sum(), 1)), "truth_flips": int(tflip.sum())}


def run_sim_seed(creatives: list[EvalCreative], seed: int, cfg: SimConfig | None = None, *,
                 tuning: bool = False) -> dict[str, Any]:
    """One seed: market + product split, log, pairs, the two models, and every measurement on the test
    products with fresh users. ``tuning``: stop after the validation loss (observable quantities only)."""
    from adcreative.explain.pairwise import explain_pair

    cfg = cfg or SimConfig()
    world = make_world(creatives, seed)
    rng = np.random.default_rng(seed * 1000 + 7)
    log = simulate_log(world, "train", cfg.n_log, rng)
    k = log.x.shape[1]
    feats = {c.id: c.features for c in creatives}
    pairs = logged_pairs(world, log, mode=cfg.pairs, per_click=cfg.per_click, n_groups=cfg.n_groups,
                         min_impressions=cfg.min_impressions, seed=seed)
    model = fit_preference(pairs, feats, k, cfg, seed)
    out: dict[str, Any] = {"seed": seed, "train_pairs": len(pairs), "train_clicks": int(log.click.sum()),
                           "train_impressions": len(log.click)}
    vlog = simulate_log(world, "val", cfg.n_log * len(world.split["val"]) // max(len(world.split["train"]), 1), rng)
    # validation: matched click pairs on the validation products, whatever the training pairs were
    vpairs = logged_pairs(world, vlog, mode="matched", per_click=1, seed=seed)
    out["val_pairs"] = len(vpairs)
    out["val_loss"] = validation_loss(model, vpairs, feats) if vpairs else float("nan")
    if tuning:
        return out
    sel = train_selection(world, log, epochs=cfg.selection_epochs, seed=seed)
    stacked = fit_stacked(pairs, feats, sel, k, cfg, seed)
    rows = world.rows("test")
    tf = [creatives[i].features for i in rows]
    trng = np.random.default_rng(seed * 1000 + 11)
    users = world.truth.draw(cfg.n_test_users, trng, "test")
    udicts = user_dicts(users.x, users.segment)
    truth = world.truth.logits(users)[:, rows]
    pref = (model.creative_matrix(tf) @ model.user_weights(udicts).T).T
    sel_s = sel.scores(tf, users.segment, users.x)
    stack_s = stacked.utilities(tf, users.segment, users.x)
    fname, fsign, facc = best_single_feature(pairs, feats)
    single = np.tile(fsign * np.array([float(f.get(fname, 0) or 0) for f in tf]), (len(users.x), 1))
    coin = trng.random(truth.shape)
    pi, pj, pp = product_pairs(world, rows)
    scores = {"preference model (Bradley–Terry)": pref, "selection model scores": sel_s,
              STACKED: stack_s,
              f"best single feature ({'+' if fsign > 0 else '−'}{fname})": single, "coin flip": coin}
    out["accuracy"] = {name: pairwise_accuracy(s, truth, pi, pj, pp, seed=seed) for name, s in scores.items()}
    out["accuracy_clear"] = {name: pairwise_accuracy(s, truth, pi, pj, pp, min_gap=0.2, seed=seed)
                             for name, s in scores.items()}
    # faithfulness of the explanations, on held-out (user, pair) cases
    pick = trng.choice(len(users.x) * len(pi), size=min(cfg.n_explain, len(users.x) * len(pi)), replace=False)
    cases_u, cases_p = pick // len(pi), pick % len(pi)
    cases = [(int(u), tf[pi[q]], tf[pj[q]]) for u, q in zip(cases_u, cases_p, strict=True)]
    out["faithfulness"] = {
        "preference model": faithfulness(
            lambda u, a, b: explain_pair(a, b, scorer=model.scorer(udicts[u])), cases),
        "selection model": faithfulness(
            lambda u, a, b: explain_pair(a, b, scorer=sel.scorer(int(users.segment[u]), users.x[u])), cases),
        STACKED: faithfulness(
            lambda u, a, b: explain_pair(a, b, scorer=stacked.scorer(int(users.segment[u]), users.x[u])),
            [(u, sa, sb) for u, a, b in cases
             for sa, sb in [stacked.with_logits(int(users.segment[u]), users.x[u], [a, b])]]),
    }
    # user sensitivity against the hidden truth
    opp = world.truth.opposite(users, trng)
    x2, seg2 = opp.x, opp.segment
    truth2 = world.truth.logits(opp)[:, rows]
    pref2 = (model.creative_matrix(tf) @ model.user_weights(user_dicts(x2, seg2)).T).T
    sel2 = sel.scores(tf, seg2, x2)
    out["sensitivity"] = {"preference model": sensitivity(pref, pref2, truth, truth2, pi, pj),
                          "selection model": sensitivity(sel_s, sel2, truth, truth2, pi, pj),
                          STACKED: sensitivity(
                              stack_s, stacked.utilities(tf, seg2, x2), truth, truth2, pi, pj)}
    out["best_feature"] = {"name": fname, "sign": fsign, "train_accuracy": facc}
    out["n_test_products"] = len(world.split["test"])
    out["n_test_creatives"] = len(rows)
    return out


# ------------------------------------------------------------------------------------- OBD ----------
def _click_bootstrap(correct: np.ndarray, cluster: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Accuracy:
    ids, inv = np.unique(cluster, return_inverse=True)
    num = np.bincount(inv, weights=correct, minlength=len(ids))
    den = np.bincount(inv, minlength=len(ids)).astype(np.float64)
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        w = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))
        boots[b] = (w @ num) / max(float(w @ den), 1.0)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Accuracy(float(correct.mean()), float(lo), float(hi), len(correct), n_clicks=len(ids))


def evaluate_obd(folder: str | Path, *, folds: int = 5, seed: int = 0, per_click: int = 4, rank: int = 4,
                 steps: int = 400, selection_epochs: int = 4, progress: bool = False) -> dict[str, Any]:
    """Held-out pairwise accuracy on the Open Bandit Dataset (random + BTS logs of one campaign).

    Items are the creatives (their item_context features), the four user features the user context.
    Items and user profiles (the 4-tuple) are each cut into ``folds`` folds; for every (item fold, user
    fold) the models train on rows whose item *and* user are outside them, and are tested on matched
    click pairs among the fold's items and users — so no test user or creative was seen in training.
    """
    import torch

    from adcreative.explain import create_preference_model
    from adcreative.explain.pairs import click_pairs
    from adcreative.explain.preference import PairSet, PreferenceTrainConfig, train_preference
    from adcreative.select.data import OBD_USER_FIELDS, CreativeTable, ImpressionLog, load_obd
    from adcreative.select.models import TrainConfig, train_joint
    from adcreative.select.scoring import CreativeScorer

    torch.set_num_threads(1)
    parts = [load_obd(folder, p) for p in ("random", "bts") if (Path(folder) / p).is_dir()]
    log = ImpressionLog.concat([d.log for d in parts])
    table = parts[0].creatives
    names = list(table.feature_names or [])
    feats = {cid: dict(zip(names, (float(v) for v in row), strict=True)) for cid, row in zip(table.ids, table.features, strict=True)}
    n, n_items = len(log), len(table)
    users = [{f: int(v) for f, v in zip(OBD_USER_FIELDS, row, strict=True)} for row in log.user_cat]
    profile = np.unique(log.user_cat, axis=0, return_inverse=True)[1].ravel()
    rng = np.random.default_rng(seed)
    item_fold = rng.permutation(n_items) % folds
    prof_fold = rng.permutation(profile.max() + 1) % folds
    onehot = np.concatenate([np.eye(int(log.user_cat[:, j].max()) + 1)[log.user_cat[:, j]] for j in range(log.user_cat.shape[1])], 1)
    ids = np.array(table.ids, dtype=object)
    shown_ids = ids[log.shown]
    res: dict[str, list[np.ndarray]] = {}
    clusters: list[np.ndarray] = []
    it: Any = [(fi, fu) for fi in range(folds) for fu in range(folds)]
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="OBD folds", leave=False)
    n_train_pairs = []
    for fi, fu in it:
        test_items, test_users = item_fold == fi, prof_fold[profile] == fu
        tr = ~test_items[log.shown] & ~test_users
        te = test_items[log.shown] & test_users
        tr_idx, te_idx = np.flatnonzero(tr), np.flatnonzero(te)
        tpairs = click_pairs(["ad"] * len(tr_idx), onehot[tr_idx], shown_ids[tr_idx].tolist(), log.click[tr_idx].tolist(),
                             per_click=per_click, users=[users[i] for i in tr_idx], seed=seed)
        epairs = click_pairs(["ad"] * len(te_idx), onehot[te_idx], shown_ids[te_idx].tolist(), log.click[te_idx].tolist(),
                             per_click=per_click, users=[users[i] for i in te_idx], seed=seed)
        if not tpairs or not epairs:
            continue
        n_train_pairs.append(len(tpairs))
        model = create_preference_model("bradley_terry", creative_features=names, log_features=[],
                                        user_cat_fields=list(OBD_USER_FIELDS), n_buckets=64, rank=rank)
        tusers: list[Mapping[str, Any] | None] = [q.user if isinstance(q.user, dict) else None for q in tpairs]
        train_preference(model, PairSet(tusers, [feats[q.image_a] for q in tpairs],
                                        [feats[q.image_b] for q in tpairs], np.ones(len(tpairs)), np.ones(len(tpairs))),
                         PreferenceTrainConfig(steps=steps, seed=seed))
        ea = [feats[q.image_a] for q in epairs]
        eb = [feats[q.image_b] for q in epairs]
        eu: list[Mapping[str, Any] | None] = [q.user if isinstance(q.user, dict) else None for q in epairs]
        z = model.pair_logits(model.user_matrix(eu), model.creative_matrix(ea), model.creative_matrix(eb))
        # the selection model on the same training rows; its candidates are the training items only
        train_items = np.flatnonzero(~test_items)
        sub = log.subset(tr_idx)
        cand = np.tile(train_items, (len(tr_idx), 1))
        col = np.argmax(cand == sub.shown[:, None], axis=1)
        sl = ImpressionLog(user_cat=sub.user_cat, user_num=sub.user_num, ad=sub.ad, context=sub.context, candidates=cand,
                           pair=sub.pair[:, train_items], shown=col, click=sub.click,
                           propensity=np.full(len(tr_idx), 1.0 / len(train_items), np.float32), group=sub.group,
                           ad_id=sub.ad_id)
        trained = train_joint(sl, table, list(OBD_USER_FIELDS), n_buckets=parts[0].n_buckets,
                              cfg=TrainConfig(epochs=selection_epochs, seed=seed, n_creative_buckets=0, batch_size=512))
        sc = CreativeScorer.from_model(trained.creative_model, CreativeTable(table.ids, table.features))
        row = {c: i for i, c in enumerate(table.ids)}
        sel = []
        for q in epairs:
            i = te_idx[(q.evidence or {})["clicked_row"]]
            rows = np.array([row[q.image_a], row[q.image_b]])
            s = sc.score(log.user_cat[i], rows, None, log.pair[i, rows])
            sel.append(s[0] - s[1])
        fname, fsign, _ = best_single_feature(tpairs, feats, names)
        single = np.array([fsign * (feats[q.image_a][fname] - feats[q.image_b][fname]) for q in epairs])
        coin = rng.random(len(epairs)) - 0.5
        for name, d in (("preference model (Bradley–Terry)", z), ("selection model scores", np.array(sel)),
                        ("best single feature", single), ("coin flip", coin)):
            res.setdefault(name, []).append((np.sign(d) > 0) + 0.5 * (d == 0))
        clusters.append(np.array([f"{fi}-{fu}-{(q.evidence or {})['clicked_row']}" for q in epairs]))
    cl = np.concatenate(clusters)
    out = {name: _click_bootstrap(np.concatenate(v).astype(np.float64), cl, seed=seed) for name, v in res.items()}
    return {"accuracy": out, "rows": n, "clicks": int(log.click.sum()), "items": n_items, "folds": folds,
            "seed": seed, "per_click": per_click, "rank": rank, "steps": steps, "median_train_pairs": float(np.median(n_train_pairs)) if n_train_pairs else 0.0}


# ---------------------------------------------------------------------------------- report ----------
TUNING_SEEDS = (0, 1)
# the search space (kept small: every point costs a simulated log and a fit on each tuning seed)
GRID: tuple[dict[str, Any], ...] = (
    *({"pairs": "matched", "per_click": 4, "rank": r, "l2_user": lu} for r in (0, 4, 8) for lu in (1e-4, 1e-3, 1e-2)),
    {"pairs": "matched", "per_click": 1, "rank": 4, "l2_user": 1e-3},
    {"pairs": "clusters", "n_groups": 32, "min_impressions": 20, "rank": 4, "l2_user": 1e-3},
    {"pairs": "clusters", "n_groups": 16, "min_impressions": 10, "rank": 4, "l2_user": 1e-3},
)


def tune(creatives: list[EvalCreative], base: SimConfig, seeds: Sequence[int] = TUNING_SEEDS,
         grid: Sequence[dict[str, Any]] = GRID, progress: bool = False) -> tuple[SimConfig, list[dict[str, Any]]]:
    """Pick the preference model's settings by the validation loss (validation products' logged click
    pairs, averaged over the tuning seeds); nothing from the test products or the hidden truth."""
    from dataclasses import replace

    rows = []
    it: Any = grid
    if progress:
        from tqdm import tqdm

        it = tqdm(grid, desc="tuning", leave=False)
    for g in it:
        cfg = replace(base, **g)
        losses = [run_sim_seed(creatives, s, cfg, tuning=True)["val_loss"] for s in seeds]
        rows.append({**g, "val_loss": float(np.mean(losses)), "per_seed": losses})
    best = min(rows, key=lambda r: r["val_loss"])
    return replace(base, **{k: v for k, v in best.items() if k not in ("val_loss", "per_seed")}), rows


# the stacked model's search space: as before (no anchor), the anchor with three shrinkages, and more pairs
STACK_GRID: tuple[dict[str, Any], ...] = (
    {"stack_anchor": False, "stack_l2": 1e-3},
    *({"stack_anchor": True, "stack_l2": l2} for l2 in (1e-3, 1e-2, 1e-1)),
    {"stack_anchor": True, "stack_l2": 1e-2, "pairs": "matched", "per_click": 4},
    {"stack_anchor": True, "stack_l2": 1e-2, "pairs": "clusters", "n_groups": 16, "min_impressions": 10},
)


def tune_stacked(creatives: list[EvalCreative], base: SimConfig, seeds: Sequence[int] = TUNING_SEEDS,
                 grid: Sequence[dict[str, Any]] = STACK_GRID, progress: bool = False) -> tuple[SimConfig, list[dict[str, Any]]]:
    """Pick the stacked model's settings by the validation loss on the validation products' logged click
    pairs (their creatives carrying the serving model's logit), averaged over the tuning seeds. The log,
    the pairs of each pair rule and the selection model are built once per seed and shared by the grid."""
    from dataclasses import replace

    losses: dict[int, list[float]] = {i: [] for i in range(len(grid))}
    it: Any = seeds
    if progress:
        from tqdm import tqdm

        it = tqdm(seeds, desc="tuning the stacked model", leave=False)
    for seed in it:
        world = make_world(creatives, seed)
        rng = np.random.default_rng(seed * 1000 + 7)
        log = simulate_log(world, "train", base.n_log, rng)
        k = log.x.shape[1]
        feats = {c.id: c.features for c in creatives}
        vlog = simulate_log(world, "val", base.n_log * len(world.split["val"]) // max(len(world.split["train"]), 1), rng)
        vpairs = logged_pairs(world, vlog, mode="matched", per_click=1, seed=seed)
        sel = train_selection(world, log, epochs=base.selection_epochs, seed=seed)
        vps = logit_pair_set(vpairs, feats, sel, k)
        cache: dict[tuple[Any, ...], list[Any]] = {}
        for i, g in enumerate(grid):
            cfg = replace(base, **g)
            key = (cfg.pairs, cfg.per_click, cfg.n_groups, cfg.min_impressions)
            if key not in cache:
                cache[key] = logged_pairs(world, log, mode=cfg.pairs, per_click=cfg.per_click, n_groups=cfg.n_groups,
                                          min_impressions=cfg.min_impressions, seed=seed)
            stacked = fit_stacked(cache[key], feats, sel, k, cfg, seed)
            losses[i].append(validation_loss(stacked.model, vpairs, feats, ps=vps))
    rows = [{**g, "val_loss": float(np.mean(losses[i])), "per_seed": losses[i]} for i, g in enumerate(grid)]
    best = min(rows, key=lambda r: r["val_loss"])
    return replace(base, **{k: v for k, v in best.items() if k not in ("val_loss", "per_seed")}), rows


def _median_range(vals: Sequence[float]) -> str:
    return f"{np.median(vals):.3f} ({min(vals):.3f}–{max(vals):.3f})"


def sim_markdown(results: list[dict[str, Any]], cfg: SimConfig, tuning_rows: list[dict[str, Any]],
                 creatives: list[EvalCreative], stack_rows: Sequence[dict[str, Any]] = ()) -> str:
    """The simulator tables: accuracy (all and clear pairs), faithfulness, user sensitivity, tuning."""
    seeds = [r["seed"] for r in results]
    r0 = results[0]
    n_prod = len({c.product_id for c in creatives})
    lines = [
        "## Simulator (hidden click model over represent's explicit features)",
        "",
        f"{len(creatives)} compositor creatives of {n_prod} products (7 sample + procedural), explicit features with OCR. "
        f"Per seed: a new hidden click model, a new product split (60 % train / 20 % validation / 20 % test: "
        f"{r0['n_test_products']} test products, {r0['n_test_creatives']} test creatives), {cfg.n_log:,} logged "
        f"impressions on the training products (uniform logging), fresh test users ({cfg.n_test_users}). "
        f"Test cases = every within-product pair of test creatives × every test user, judged against the hidden "
        f"model's click probabilities. Interval: 95 % two-way bootstrap (users × products). "
        f"Reporting seeds {seeds}; tuning seeds {list(TUNING_SEEDS)} (never reported).",
        "",
        f"Settings (validation loss on the validation products' logged click pairs): pairs = {cfg.pairs}"
        + (f", {cfg.per_click} matched non-clicks per click" if cfg.pairs == "matched" else
           f", {cfg.n_groups} user clusters, ≥ {cfg.min_impressions} impressions a side")
        + f", rank {cfg.rank}, l2_user {cfg.l2_user:g}; stacked: serving-model logit "
        + ("anchored (unshrunk, weight from 1)" if cfg.stack_anchor else "shrunk like the rest")
        + f", l2 {cfg.stack_l2:g} on the other weights.",
        "",
    ]
    for key, title in (("accuracy", "all test cases"), ("accuracy_clear", "clear cases (hidden logit gap > 0.2)")):
        names = list(r0[key])
        lines += [f"### Pairwise accuracy on held-out users and creatives — {title}", "",
                  "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | median (range) |",
                  "|---|" + "---|" * len(seeds) + "---|"]
        for i, name in enumerate(names):
            cells = [list(r[key].values())[i] for r in results]
            label = name if not name.startswith("best single") else "best single feature (" + ", ".join(
                sorted({list(r[key])[i].split("(")[1].rstrip(")") for r in results})) + ")"
            lines.append(f"| {label} | " + " | ".join(c.fmt() for c in cells) + f" | {_median_range([c.value for c in cells])} |")
        lines.append(f"\nN per seed: {r0[key][names[0]].n_pairs:,} (user, pair) cases over "
                     f"{r0[key][names[0]].n_users} users × {r0[key][names[0]].n_products} products.\n")
    lines += ["### Faithfulness of the reasons (counterfactual swap, held-out cases)", "",
              "| explained through | reasons checked (median per seed) | passed: main reasons, median (range) | "
              "passed: all stated, median (range) | mean reasons | cited a non-differing aspect |",
              "|---|---|---|---|---|---|"]
    for name in r0["faithfulness"]:
        fs = [r["faithfulness"][name] for r in results]
        lines.append(f"| {name} | {int(np.median([f['reasons'] for f in fs]))} | "
                     f"{_median_range([f['faithful_reasons'] for f in fs])} | {_median_range([f['faithful_all'] for f in fs])} | "
                     f"{np.median([f['mean_reasons'] for f in fs]):.2f} | {sum(f['cited_not_differing'] for f in fs)} |")
    lines += ["", "### User sensitivity against the hidden truth (users with opposite tastes, same pair)", "",
              "Each test user is paired with the user of a fresh population whose hidden taste is closest to the "
              "opposite; cases where both hidden gaps exceed 0.2.", "",
              "| model | cases (median) | truth flips the winner | flips reproduced (both winners right) | "
              "flips detected | false flips (truth keeps the winner) |", "|---|---|---|---|---|---|"]
    for name in r0["sensitivity"]:
        ss = [r["sensitivity"][name] for r in results]
        lines.append(f"| {name} | {int(np.median([s['cases'] for s in ss])):,} | "
                     f"{_median_range([s['truth_flip_rate'] for s in ss])} | {_median_range([s['flips_reproduced'] for s in ss])} | "
                     f"{_median_range([s['flips_detected'] for s in ss])} | {_median_range([s['false_flips'] for s in ss])} |")
    stack_lines: list[str] = []
    if stack_rows:
        stack_lines += ["", f"### Tuning the stacked model (seeds {list(TUNING_SEEDS)}, validation products only)", "",
                  "| serving logit | l2 on the rest | pairs | validation loss |", "|---|---|---|---|"]
        for t in sorted(stack_rows, key=lambda t: t["val_loss"]):
            how = t.get("pairs", "as tuned above")
            how += f" × {t['per_click']}" if how == "matched" else (
                f" {t['n_groups']} × ≥{t['min_impressions']}" if how == "clusters" else "")
            stack_lines.append(f"| {'anchored' if t['stack_anchor'] else 'shrunk'} | {t['stack_l2']:g} | {how} | "
                               f"{t['val_loss']:.4f} |")
    if not tuning_rows:
        lines += ["", f"Settings: `SimConfig`'s defaults, chosen by an earlier tuning run on seeds {list(TUNING_SEEDS)} "
                  "(`adcreative explain eval` without `--no-tune` repeats it)."]
        return "\n".join(lines + stack_lines)
    lines += ["", f"### Tuning (seeds {list(TUNING_SEEDS)}, validation products only)", "",
              "| pairs | per click / clusters | rank | l2_user | validation loss |", "|---|---|---|---|---|"]
    for t in sorted(tuning_rows, key=lambda t: t["val_loss"]):
        how = str(t.get("per_click", "")) if t["pairs"] == "matched" else f"{t['n_groups']} × ≥{t['min_impressions']}"
        lines.append(f"| {t['pairs']} | {how} | {t['rank']} | {t['l2_user']:g} | {t['val_loss']:.4f} |")
    return "\n".join(lines + stack_lines)


def obd_markdown(results: list[dict[str, Any]]) -> str:
    seeds = [r["seed"] for r in results]
    r0 = results[0]
    lines = ["## Open Bandit Dataset (real logged clicks; item features, user features)", "",
             f"{r0['rows']:,} rows ({r0['clicks']} clicks) of the random and BTS logs, {r0['items']} items. "
             f"{r0['folds']}×{r0['folds']} folds over items × user profiles: every model trains on rows whose item "
             "and user profile are outside the test fold and is tested on matched click pairs inside it (clicked "
             "item vs a non-clicked item of the fold shown to the nearest user). Interval: 95 % bootstrap over "
             f"clicks. Seeds (fold assignment and training) {seeds}. Nothing was tuned on OBD: training pairs are "
             f"matched click pairs ({r0['per_click']} per click; a user profile's impressions are too few for the "
             f"minimum-evidence rule), rank {r0['rank']}, {r0['steps']} steps. Median training pairs per fold: "
             f"{r0['median_train_pairs']:.0f}.", "",
             "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | median (range) |",
             "|---|" + "---|" * len(seeds) + "---|"]
    for name in r0["accuracy"]:
        cells = [r["accuracy"][name] for r in results]
        lines.append(f"| {name} | " + " | ".join(c.fmt() for c in cells) + f" | {_median_range([c.value for c in cells])} |")
    a = r0["accuracy"][next(iter(r0["accuracy"]))]
    lines.append(f"\nN per seed: {a.n_pairs} test pairs from {a.n_clicks} held-out clicks.")
    return "\n".join(lines)


def plot_accuracy(results: list[dict[str, Any]], obd_results: list[dict[str, Any]], path: str | Path) -> Path:
    """Held-out pairwise accuracy per model and seed with 95 % intervals (simulator, and OBD when run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adcreative.report.plots import save_figure

    panels = [("simulator, held-out users × creatives", results)] + ([("OBD, held-out users × items", obd_results)]
                                                                      if obd_results else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 3.8), dpi=110, squeeze=False)
    for ax, (title, rs) in zip(axes[0], panels, strict=True):
        names = list(rs[0]["accuracy"])
        for j, r in enumerate(rs):
            accs = list(r["accuracy"].values())
            ys = np.arange(len(names)) + (j - (len(rs) - 1) / 2) * 0.12
            ax.errorbar([a.value for a in accs], ys, xerr=[[a.value - a.lo for a in accs], [a.hi - a.value for a in accs]],
                        fmt="o", ms=3, capsize=2, label=f"seed {r['seed']}")
        ax.set_yticks(np.arange(len(names)), [n if len(n) < 34 else n[:32] + "…" for n in names], fontsize=7)
        ax.axvline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("pairwise accuracy (95 % interval)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, axis="x")
        ax.invert_yaxis()
    axes[0][0].legend(fontsize=6, loc="lower right")
    return save_figure(fig, path)


def run_eval(out: str | Path, products: Sequence[Any], *, seeds: Sequence[int] = (2, 3, 4, 5, 6),
             obd: str | Path | None = None, quick: bool = False, tune_first: bool = True,
             cache: str | Path | None = None, progress: bool = False) -> Path:
    """Tune on the tuning seeds (or, ``tune_first=False``, take :class:`SimConfig`'s defaults: the earlier
    tuning's choice), report on ``seeds``; write ``report.md``, ``results.json`` and ``accuracy.png``;
    returns the report. ``products``: the catalogue the creatives are made for."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(s in TUNING_SEEDS for s in seeds):
        from adcreative.core.errors import InputError

        raise InputError(f"reporting seeds must not include the tuning seeds {list(TUNING_SEEDS)}")
    creatives = creative_set(products, cache=cache, progress=progress)
    if quick:  # the same cached creatives, fewer products
        keep = sorted({c.product_id for c in creatives})[:24]
        creatives = [c for c in creatives if c.product_id in keep]
    base = SimConfig(n_log=40_000, n_test_users=80, n_explain=150, steps=150, selection_epochs=2) if quick else SimConfig()
    grid = GRID[:3] if quick else GRID
    cfg, tuning_rows = tune(creatives, base, grid=grid, progress=progress) if tune_first else (base, [])
    stack_rows: list[dict[str, Any]] = []
    if tune_first:
        cfg, stack_rows = tune_stacked(creatives, cfg, grid=STACK_GRID[:2] if quick else STACK_GRID, progress=progress)
    results = []
    it: Any = seeds
    if progress:
        from tqdm import tqdm

        it = tqdm(seeds, desc="reporting seeds", leave=False)
    for s in it:
        results.append(run_sim_seed(creatives, s, cfg))
    md = ["# Explain: held-out evaluation", "", "![pairwise accuracy](accuracy.png)", "",
          sim_markdown(results, cfg, tuning_rows, creatives, stack_rows)]
    obd_results: list[dict[str, Any]] = []
    if obd is not None:
        for s in (list(seeds)[:2] if quick else seeds):
            # 4 matched non-clicks per click: OBD has ~115 clicks in all, one pair per click is too few
            obd_results.append(evaluate_obd(obd, seed=s, folds=3 if quick else 5, rank=cfg.rank, per_click=4,
                                            steps=cfg.steps, progress=progress))
        md += ["", obd_markdown(obd_results)]
    plot_accuracy(results, obd_results, out / "accuracy.png")
    report = out / "report.md"
    atomic_write_text(report, "\n".join(md) + "\n")

    def plain(v: Any) -> Any:
        if isinstance(v, Accuracy):
            return v.__dict__
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    atomic_write_text(out / "results.json", json.dumps(
        {"config": cfg.__dict__, "tuning": tuning_rows, "tuning_stacked": stack_rows, "simulator": plain(results), "obd": plain(obd_results)},
        indent=1, default=float))
    return report


# -------------------------------------------------------------------------------- the demo ----------
@dataclass
class UserChoice:
    creative: str          # the model's pick for this user
    other: str             # what it is compared with (the other user's pick, or the runner-up)
    explanation: Any       # pairwise.Explanation of creative vs other for this user
    truth: str             # the hidden click model's pick for this user


@dataclass
class DemoChoices:
    users: list[dict[str, Any]]                     # the two users' observed context
    tastes: list[str]                               # their strongest leanings, in words
    choices: dict[str, list[UserChoice]]            # product id → one choice per user
    n_impressions: int
    n_pairs: int
    stacked: bool = False                           # the preference model stacked on the serving model's logit
    agree: int = 0                                  # choices the hidden click model agrees with


def _leanings(model: Any, user: Mapping[str, Any], k: int = 3) -> str:
    """The user's strongest departures from the average shopper, in the aspects' words."""
    from adcreative.explain.pairwise import aspect_of

    d = model.user_weights([user])[0] - model.w_population
    out = []
    for j in np.argsort(-np.abs(d)):
        asp = aspect_of(model.names[j])
        if asp is None or asp.keys[0] != model.names[j] or model.names[j] == model.anchor or abs(d[j]) < 1e-6:
            continue
        out.append(asp.likes[0] if d[j] > 0 else asp.likes[1])
        if len(out) == k:
            break
    return "leans to " + ", ".join(out) + " (more than the average shopper)" if out else "no strong leaning"


def demo_choices(features: Mapping[str, Mapping[str, Any]], product_of: Mapping[str, str], *, n_log: int = 60_000,
                 seed: int = 0, cfg: SimConfig | None = None, stacked: bool = True) -> DemoChoices:
    """For ``adcreative demo``: a hidden click model over the given creatives, a simulated log, the
    preference model trained on its pairs (``stacked``: on the serving model's logit too, the selection
    model trained on the same log), and per product the creative it picks for two users of contrasting
    (opposite) hidden tastes, each with its explanation and the hidden model's own pick."""
    cfg = cfg or SimConfig()
    creatives = [EvalCreative(c, product_of[c], dict(f)) for c, f in features.items()]
    world = make_world(creatives, seed, fractions=(1.0, 0.0))
    rng = np.random.default_rng(seed + 5)
    log = simulate_log(world, "train", n_log, rng)
    pairs = logged_pairs(world, log, mode=cfg.pairs, per_click=cfg.per_click, n_groups=cfg.n_groups,
                         min_impressions=cfg.min_impressions, seed=seed)
    fdict = {c.id: c.features for c in creatives}
    stack = (fit_stacked(pairs, fdict, train_selection(world, log, epochs=cfg.selection_epochs, seed=seed),
                         log.x.shape[1], cfg, seed) if stacked else None)
    model = stack.model if stack is not None else fit_preference(pairs, fdict, log.x.shape[1], cfg, seed)
    # two users of opposite hidden taste whose hidden favourites differ on the most products
    pool = world.truth.draw(400, rng, "test")
    opp = world.truth.opposite(pool, rng)
    t1, t2 = world.truth.logits(pool), world.truth.logits(opp)
    prods = [np.flatnonzero(world.product_of == p) for p in range(len(world.products))]
    differ = np.array([sum(t1[i, r].argmax() != t2[i, r].argmax() for r in prods if len(r) > 1) for i in range(len(t1))])
    i = int(np.argmax(differ))
    users = [user_dicts(pool.x[i:i + 1], pool.segment[i:i + 1])[0], user_dicts(opp.x[i:i + 1], opp.segment[i:i + 1])[0]]
    truths = [t1[i], t2[i]]
    choices: dict[str, list[UserChoice]] = {}
    for p, rows in zip(world.products, prods, strict=True):
        if len(rows) < 2:
            continue
        plain = [creatives[r].features for r in rows]
        # stacked: each user sees the creatives with the serving model's logit for them (one more aspect)
        fss = [stack.with_logits(int(u["segment"]), np.array([u[f"x{j}"] for j in range(log.x.shape[1])]), plain)
               if stack is not None else plain for u in users]
        utils = [model.utility(u, fs) for u, fs in zip(users, fss, strict=True)]
        picks = [int(np.argmax(u)) for u in utils]
        out = []
        for k, u in enumerate(users):
            fs = fss[k]
            other = picks[1 - k] if picks[1 - k] != picks[k] else int(np.argsort(-utils[k])[1])
            ex = model.explain(u, fs[picks[k]], fs[other], id_a=creatives[rows[picks[k]]].id,
                               id_b=creatives[rows[other]].id, user_id=f"{k + 1}")
            out.append(UserChoice(creatives[rows[picks[k]]].id, creatives[rows[other]].id, ex,
                                  creatives[rows[int(np.argmax(truths[k][rows]))]].id))
        choices[p] = out
    agree = sum(ch.truth == ch.creative for cs in choices.values() for ch in cs)
    return DemoChoices(users, [_leanings(model, u) for u in users], choices, n_log, len(pairs), stack is not None, agree)
