"""Off-policy evaluation of learned creative policies on any Open Bandit Dataset campaign, with honest model
selection and a deployment gate.

Protocol (docs/select.md), per seed (the seed draws the folds and the models' initialisation):

* the campaign's ``random`` log (uniform logging, known propensities) is split into ``folds`` outer folds;
  every row is scored by models trained on the other folds only (cross-fitting);
* inside each outer training split, every hyperparameter is chosen by ``inner_folds``-fold cross-validation
  on the click log loss of the logged item — never on the outer fold (nested CV). Candidates:

  - ``learned``: the joint ad CTR + list-wise creative model (``models.train_joint``), grid :data:`JOINT_GRID`;
  - ``logistic``: an L2-regularised logistic regression on one-hot user fields, item id and item features,
    position, affinity and user × item-feature crosses, ``C`` from :data:`LOGISTIC_GRID`;
  - ``item CTR``: the per-item empirical CTR with a Beta prior centred on the training CTR, prior strength
    from :data:`BETA_GRID` (context-free: it shows every user the same item);

* each model's greedy policy (its top item for every impression) is evaluated by IPS, SNIPS and DR (DR's
  reward model is the logistic regression's, the same for every policy) with intervals that stay right
  with few clicks (``ope``) and their effective sample sizes, beside the logged random and BTS policies'
  on-policy CTR (exact binomial intervals);
* the click models' AUC and GAUC (per pseudo-user) on the cross-fitted predictions, within each outer fold
  and averaged (:func:`_per_fold`: a pooled AUC mixes models whose base rates anti-correlate with the fold).

The report gives the median and range over seeds. The **deployment gate** exports the learned model for
serving only if the lower end of its SNIPS interval exceeds the CTR of every logged policy (random and BTS)
on every seed; otherwise the bundle serves the conservative policy — Bernoulli Thompson sampling per item
(``beta_visual`` with exploration share 1), the policy that logged the ``bts`` data — and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.select.data import OBD_USER_FIELDS, OBDData, load_obd
from adcreative.select.ope import Estimate, auc, binomial_interval, gauc, off_policy, on_policy_ctr

JOINT_GRID: list[dict[str, Any]] = [
    {"epochs": 4, "weight_decay": 1e-3, "n_creative_buckets": 64, "batch_size": 512},
    {"epochs": 4, "weight_decay": 1e-2, "n_creative_buckets": 0, "batch_size": 512},
    {"epochs": 2, "weight_decay": 1e-1, "n_creative_buckets": 0, "batch_size": 512},
]
LOGISTIC_GRID = [0.003, 0.03, 0.3, 3.0]
BETA_GRID = [10.0, 100.0, 1000.0, 10000.0]
LEARNED, LOGISTIC, ITEM_CTR = "learned (joint list-wise model)", "logistic regression", "item CTR, Beta prior"


# ------------------------------------------------------------------------------------ click models ----
def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


class ItemCTR:
    """Per-item posterior mean CTR: (clicks + s·m) / (impressions + s), m the training CTR."""

    def __init__(self, strength: float) -> None:
        self.strength = strength

    def fit(self, d: OBDData, idx: np.ndarray, seed: int) -> ItemCTR:
        lg = d.log
        k = d.n_items
        imp = np.bincount(lg.shown[idx], minlength=k).astype(np.float64)
        clk = np.bincount(lg.shown[idx], weights=lg.click[idx], minlength=k)
        m = max(float(lg.click[idx].mean()), 1e-4)
        self.q = (clk + self.strength * m) / (imp + self.strength)
        return self

    def predict(self, d: OBDData, idx: np.ndarray) -> np.ndarray:
        return np.tile(self.q, (len(idx), 1))


class Logistic:
    """L2 logistic regression on a sparse one-hot design per (impression, item)."""

    def __init__(self, c: float) -> None:
        self.c = c

    def _design(self, d: OBDData, rows: np.ndarray, items: np.ndarray) -> Any:
        """Columns: user field values | item id | position | log1p affinity | item_feature_0 | user value ×
        item one-hot feature crosses (the contextual part). Built with NumPy: a fixed number of entries per row
        (an unseen user value contributes zeros)."""
        from scipy.sparse import csr_matrix

        feats = d.creatives.features
        nf = feats.shape[1]
        u = self._users(d)[rows]                                            # [R, 4] vocabulary index or -1
        cats = np.stack([np.nonzero(feats[a, 1:] > 0)[0] + 1 for a in range(d.n_items)])[items]  # [R, 3]
        ok = (u >= 0).astype(np.float64)
        us = np.maximum(u, 0)
        cross = (self._cross0 + us[:, :, None] * nf + cats[:, None, :]).reshape(len(rows), -1)
        cols = np.hstack([us, (self._item0 + items)[:, None], (self._pos0 + d.log.context[rows])[:, None], cross,
                          np.full((len(rows), 1), self._aff), np.full((len(rows), 1), self._f0)])
        data = np.hstack([ok, np.ones((len(rows), 2)), np.repeat(ok, cats.shape[1], axis=1),
                          d.log.pair[rows, items, :1].astype(np.float64), feats[items, :1].astype(np.float64)])
        indptr = np.arange(len(rows) + 1) * cols.shape[1]
        return csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(len(rows), self._width))

    def _users(self, d: OBDData) -> np.ndarray:
        return np.array([[self._vocab.get((f, v), -1) for f, v in zip(OBD_USER_FIELDS, r, strict=True)]
                         for r in d.raw_user], np.int64)

    def fit(self, d: OBDData, idx: np.ndarray, seed: int) -> Logistic:
        from sklearn.linear_model import LogisticRegression

        self._vocab = {k: i for i, k in enumerate(sorted({(f, v) for r in idx.tolist()
                                                          for f, v in zip(OBD_USER_FIELDS, d.raw_user[r], strict=True)}))}
        nu, k, nf = len(self._vocab), d.n_items, d.creatives.features.shape[1]
        self._item0, self._pos0 = nu, nu + k
        self._aff, self._f0 = nu + k + 3, nu + k + 4
        self._cross0 = nu + k + 5
        self._width = self._cross0 + nu * nf
        X = self._design(d, idx, d.log.shown[idx])
        self.model = LogisticRegression(C=self.c, max_iter=2000, random_state=seed).fit(X, d.log.click[idx])
        return self

    def predict(self, d: OBDData, idx: np.ndarray) -> np.ndarray:
        k = d.n_items
        X = self._design(d, np.repeat(idx, k), np.tile(np.arange(k), len(idx)))
        return self.model.predict_proba(X)[:, 1].reshape(len(idx), k)  # type: ignore[no-any-return]


class Joint:
    """The joint ad CTR + list-wise creative model: q(x, a) = σ(ad logit + creative logit)."""

    def __init__(self, **cfg: Any) -> None:
        self.cfg = cfg

    def fit(self, d: OBDData, idx: np.ndarray, seed: int) -> Joint:
        from adcreative.select.models import TrainConfig, train_joint

        self.res = train_joint(d.log.subset(idx), d.creatives, OBD_USER_FIELDS, n_buckets=d.n_buckets,
                               cfg=TrainConfig(seed=seed, **self.cfg))
        return self

    def predict(self, d: OBDData, idx: np.ndarray) -> np.ndarray:
        from adcreative.select.models import predict_logits
        from adcreative.select.scoring import sigmoid

        a, c = predict_logits(self.res, d.log.subset(idx), d.creatives)
        return sigmoid(a[:, None] + c)


FAMILIES: dict[str, tuple[type, list[Any]]] = {
    LEARNED: (Joint, JOINT_GRID), LOGISTIC: (Logistic, LOGISTIC_GRID), ITEM_CTR: (ItemCTR, BETA_GRID)}


def _build(family: str, params: Any) -> Any:
    cls, _ = FAMILIES[family]
    return cls(**params) if isinstance(params, dict) else cls(params)


def choose_by_cv(d: OBDData, family: str, idx: np.ndarray, *, inner_folds: int, seed: int) -> tuple[Any, list[float]]:
    """The grid point of ``family`` with the lowest mean log loss over ``inner_folds`` folds of ``idx`` (the
    logged item's click), and every grid point's loss. Only rows in ``idx`` are ever touched."""
    _, grid = FAMILIES[family]
    fold = np.random.default_rng(seed + 7919).permutation(len(idx)) % inner_folds
    losses = []
    for params in grid:
        ll = []
        for f in range(inner_folds):
            tr, va = idx[fold != f], idx[fold == f]
            q = _build(family, params).fit(d, tr, seed).predict(d, va)
            ll.append(_log_loss(d.log.click[va], q[np.arange(len(va)), d.log.shown[va]]))
        losses.append(float(np.mean(ll)))
    return grid[int(np.argmin(losses))], losses


# ------------------------------------------------------------------------------------------ report ----
@dataclass
class SeedResult:
    seed: int
    rows: dict[tuple[str, str], Estimate]      # (policy, estimator) → estimate
    metrics: dict[str, dict[str, float]]       # model → AUC, GAUC, matched rows, clicks on matched rows
    chosen: dict[str, list[Any]]               # model → the hyperparameters chosen in each outer fold


@dataclass
class GateDecision:
    export: bool
    reason: str


def deployment_gate(lower_bounds: Sequence[float], logging_ctr: dict[str, float]) -> GateDecision:
    """Export the learned model only if its CTR's lower 95% bound beats every logged policy's CTR on every
    seed (a one-sided test at 2.5% per seed)."""
    best = max(logging_ctr, key=lambda k: logging_ctr[k])
    bar = logging_ctr[best]
    lbs = list(lower_bounds)
    rng = f"{min(lbs):.4f}" if len(lbs) == 1 else f"{min(lbs):.4f}–{max(lbs):.4f}"
    test = (f"lower 95% bound of the learned greedy policy's SNIPS CTR > {best} CTR {bar:.4f} "
            f"on every seed (lower bounds {rng})")
    if lbs and min(lbs) > bar:
        return GateDecision(True, f"EXPORT the learned model: {test} holds")
    return GateDecision(False, f"SERVE THE CONSERVATIVE POLICY (Bernoulli Thompson sampling per item, as logged "
                               f"BTS): {test} fails")


@dataclass
class OBDReport:
    campaign: str
    n_items: int
    n_random: int
    n_bts: int
    clicks_random: int
    clicks_bts: int
    folds: int
    inner_folds: int
    seeds: list[int]
    per_seed: list[SeedResult]
    logged: dict[str, Estimate]
    decision: GateDecision
    notes: list[str] = field(default_factory=list)

    def _agg(self, key: tuple[str, str]) -> tuple[np.ndarray, list[Estimate]]:
        ests = [s.rows[key] for s in self.per_seed]
        return np.array([e.value for e in ests]), ests

    def to_markdown(self) -> str:
        def rng(v: np.ndarray, d: int = 5) -> str:
            return f"{np.median(v):.{d}f} [{v.min():.{d}f}, {v.max():.{d}f}]" if len(v) > 1 else f"{v[0]:.{d}f}"

        bts = self.logged["BTS (logged)"].value
        lines = [f"OBD campaign `{self.campaign}` ({self.n_items} items): random log {self.n_random} rows / "
                 f"{self.clicks_random} clicks, BTS log {self.n_bts} rows / {self.clicks_bts} clicks; "
                 f"{self.folds}-fold cross-fitting, hyperparameters by {self.inner_folds}-fold CV inside each "
                 f"training split; seeds {self.seeds}: median [min, max] over seeds; the 95% interval and "
                 "ESS are the median seed's.", "",
                 "| policy | estimator | CTR | 95% interval | ESS | ratio to BTS |", "|---|---|---|---|---|---|"]
        for name, e in self.logged.items():
            lines.append(f"| {name} | on-policy | {e.value:.5f} | [{e.lo:.5f}, {e.hi:.5f}] | {e.ess:.0f} | "
                         f"{e.value / bts:.2f} |")
        keys = list(self.per_seed[0].rows)
        for key in keys:
            v, ests = self._agg(key)
            mid = ests[int(np.argsort(v)[len(v) // 2])]
            lines.append(f"| {key[0]} | {key[1]} | {rng(v)} | [{mid.lo:.5f}, {mid.hi:.5f}] | {mid.ess:.0f} | "
                         f"{np.median(v) / bts:.2f} |")
        lines += ["", "| click model | AUC | GAUC | matched rows (greedy = logged) | clicks on them |",
                  "|---|---|---|---|---|"]
        for m in self.per_seed[0].metrics:
            col = {k: np.array([s.metrics[m][k] for s in self.per_seed]) for k in self.per_seed[0].metrics[m]}
            lines.append(f"| {m} | {rng(col['AUC'], 3)} | {rng(col['GAUC'], 3)} | {rng(col['matched'], 0)} | "
                         f"{rng(col['matched clicks'], 0)} |")
        lines += ["", "Hyperparameters chosen by inner CV (per outer fold, seed by seed):"]
        for m in self.per_seed[0].chosen:
            lines.append(f"- {m}: " + "; ".join(f"seed {s.seed}: {s.chosen[m]}" for s in self.per_seed))
        lines += ["", f"**Deployment decision**: {self.decision.reason}."]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------- protocol ----
def _one_seed(rnd: OBDData, seed: int, folds: int, inner_folds: int, n_boot: int, progress: bool) -> SeedResult:
    log = rnd.log
    n, k = len(log), rnd.n_items
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    q = {m: np.zeros((n, k)) for m in FAMILIES}
    chosen: dict[str, list[Any]] = {m: [] for m in FAMILIES}
    it: Any = range(folds)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"{rnd.campaign} seed {seed}: outer folds", leave=False)
    for f in it:
        tr, te = np.where(fold_of != f)[0], np.where(fold_of == f)[0]
        for m in FAMILIES:
            params, _ = choose_by_cv(rnd, m, tr, inner_folds=inner_folds, seed=seed + 101 * f)
            chosen[m].append(params)
            q[m][te] = _build(m, params).fit(rnd, tr, seed + f).predict(rnd, te)
    rows_i = np.arange(n)
    r, mu, shown = log.click.astype(np.float64), log.propensity.astype(np.float64), log.shown
    q_dr = q[LOGISTIC]                                             # one reward model for every policy's DR
    out: dict[tuple[str, str], Estimate] = {}
    uniform = np.full((n, k), 1.0 / k)
    out[("uniform (OPE sanity check)", "SNIPS")] = off_policy(
        r, uniform[rows_i, shown], mu, q_dr[rows_i, shown], (uniform * q_dr).sum(1), n_boot=n_boot, seed=seed)["SNIPS"]
    metrics: dict[str, dict[str, float]] = {}
    for m in FAMILIES:
        top = np.argmax(q[m], axis=1)
        pi = np.zeros((n, k))
        pi[rows_i, top] = 1.0
        est = off_policy(r, pi[rows_i, shown], mu, q_dr[rows_i, shown], (pi * q_dr).sum(1), n_boot=n_boot, seed=seed)
        out.update({(m, e): est[e] for e in ("IPS", "SNIPS", "DR")})
        ql = q[m][rows_i, shown]
        matched = top == shown
        metrics[m] = {"AUC": _per_fold(auc, fold_of, r, ql), "GAUC": _per_fold(gauc, fold_of, r, ql, log.group),
                      "matched": float(matched.sum()), "matched clicks": float(r[matched].sum())}
    return SeedResult(seed, out, metrics, {m: [_fmt(p) for p in v] for m, v in chosen.items()})


def _per_fold(metric: Any, fold_of: np.ndarray, y: np.ndarray, s: np.ndarray, *rest: np.ndarray) -> float:
    """The mean over outer folds of a ranking metric computed within each fold. Pooling cross-fitted scores
    across folds compares different models: with ~10 clicks per fold, a fold's base rate alone (its training
    split's CTR is high exactly when the fold itself has few clicks) drags a pooled AUC below 0.5 (Airola et
    al. 2011); within a fold every score comes from one model."""
    vals = [metric(y[m], s[m], *(x[m] for x in rest)) for f in np.unique(fold_of) for m in [fold_of == f]]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _fmt(p: Any) -> Any:
    if isinstance(p, dict):
        return "/".join(f"{k[:2]}={v:g}" if isinstance(v, float) else f"{k[:2]}={v}" for k, v in p.items())
    return p


def evaluate_obd(folder: str | Path, *, seeds: Sequence[int] = (0, 1, 2, 3, 4), folds: int = 5, inner_folds: int = 3,
                 n_boot: int = 1000, save_to: str | Path | None = None, progress: bool = False) -> OBDReport:
    """Run the protocol above on ``folder/{random,bts}/``; optionally save a servable bundle (see
    :func:`export_bundle`) that follows the deployment gate."""
    import torch

    torch.set_num_threads(1)
    rnd, bts = load_obd(folder, "random"), load_obd(folder, "bts")
    if bts.campaign != rnd.campaign or bts.n_items != rnd.n_items:
        from adcreative.core.errors import InputError

        raise InputError(f"random/ holds campaign {rnd.campaign!r} ({rnd.n_items} items) but bts/ holds "
                         f"{bts.campaign!r} ({bts.n_items} items)", source=folder)
    check_enough_clicks(rnd, folds, inner_folds, Path(folder) / "random")
    per_seed = [_one_seed(rnd, s, folds, inner_folds, n_boot, progress) for s in seeds]
    logged = {"random (logged)": on_policy_ctr(rnd.log.click, n_boot=n_boot),
              "BTS (logged)": on_policy_ctr(bts.log.click, n_boot=n_boot)}
    decision = deployment_gate([s.rows[(LEARNED, "SNIPS")].lo for s in per_seed],
                               {k: e.value for k, e in logged.items()})
    k = rnd.n_items
    notes = [f"uniform logging: an importance weight of {k} on the rows where the logged item is the policy's "
             f"top item (1/{k} of them for a policy that ignores the log); the exact interval for 0 clicks in "
             f"{len(rnd.log) // k} such rows is [0, {binomial_interval(0.0, len(rnd.log) // k)[1]:.4f}]",
             "DR's reward model is the logistic regression (cross-fitted), the same for every policy"]
    rep = OBDReport(rnd.campaign, k, len(rnd.log), len(bts.log), int(rnd.log.click.sum()), int(bts.log.click.sum()),
                    folds, inner_folds, list(seeds), per_seed, logged, decision, notes)
    if save_to is not None:
        export_bundle(rnd, bts, save_to, decision, seed=seeds[0], inner_folds=inner_folds)
        rep.notes.append(f"bundle saved to {save_to}: serves the "
                         f"{'learned model' if decision.export else 'conservative policy'} for ad {rnd.campaign!r}")
    return rep


def check_enough_clicks(rnd: OBDData, folds: int, inner_folds: int, source: Path) -> None:
    """Refuse a random log too small for nested cross-fitting: every inner training split (about
    (1 − 1/folds)(1 − 1/inner_folds) of the rows) must hold clicks and non-clicks for a click model to be fitted,
    so both must number at least ``folds × inner_folds`` (below that a split without clicks is likely)."""
    from adcreative.core.errors import InputError

    need = folds * inner_folds
    clicks = int(rnd.log.click.sum())
    if clicks < need or len(rnd.log) - clicks < need:
        raise InputError(f"the random log has {clicks} clicks in {len(rnd.log)} rows: nested cross-validation "
                         f"({folds} × {inner_folds} folds) needs at least {need} clicks and {need} rows without one",
                         source=source)


def export_bundle(rnd: OBDData, bts: OBDData, directory: str | Path, decision: GateDecision, *, seed: int = 0,
                  inner_folds: int = 3, epsilon: float = 0.05) -> Path:
    """Train the joint model on every random row (hyperparameters by CV on them) and save a bundle for ad
    ``rnd.campaign`` with a ``beta_visual`` policy on both logs' per-item counts. If the gate refused the
    learned model, the policy serves every request (exploration share 1: Bernoulli Thompson sampling)."""
    from adcreative.select import POLICIES
    from adcreative.select.bundle import save_bundle

    idx = np.arange(len(rnd.log))
    params, losses = choose_by_cv(rnd, LEARNED, idx, inner_folds=inner_folds, seed=seed)
    joint = Joint(**params).fit(rnd, idx, seed)
    cr = rnd.creatives
    clicks = np.concatenate([rnd.log.click, bts.log.click]).astype(np.float64)
    policy = POLICIES.create("beta_visual", n_features=cr.features.shape[1], base_ctr=float(max(clicks.mean(), 1e-3)),
                             exploration_share=epsilon if decision.export else 1.0, seed=seed)
    policy.add_arms(cr.ids, cr.features)
    shown = np.concatenate([rnd.log.shown, bts.log.shown])
    np.add.at(policy.impressions, shown, 1.0)
    np.add.at(policy.clicks, shown, clicks)
    policy.fit_prior()
    return save_bundle(directory, joint.res.ad_model, joint.res.creative_model, cr, ad_id=rnd.campaign, policy=policy,
                       serves="model" if decision.export else "policy",
                       decision={"export": decision.export, "reason": decision.reason},
                       meta={"source": f"obd/{rnd.campaign} random + bts", "rows": len(rnd.log) + len(bts.log),
                             "hyperparameters": params, "cv_log_loss": losses})
