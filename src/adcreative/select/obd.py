"""Off-policy evaluation of the learned creative policy on the real Open Bandit Dataset sample.

Protocol (see docs/select.md):

* the ``random`` campaign log (uniform logging, known propensities 1/34) is split into ``folds`` folds;
  for each fold the joint model (ad CTR + list-wise creative model) is trained on the other folds and
  scores the held-out rows (cross-fitting), so every row is evaluated by a model that never saw it;
* target policies: *ours (greedy)* shows the creative with the highest list-wise logit, *ours (ε=…)*
  mixes that with uniform exploration; Vowpal Wabbit ``--cb_explore_adf`` trained on the same folds is
  the peer;
* IPS / SNIPS / DR (DR's q̂ is the joint model's click probability) with bootstrap 95% intervals, beside
  the logged random policy's and the BTS policy's on-policy CTR (bootstrap intervals), in one table;
* ranking metrics of the cross-fitted click model: AUC, GAUC (per pseudo-user), NSCTR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.select.data import OBD_USER_FIELDS, CreativeTable, ImpressionLog, load_obd
from adcreative.select.ope import Estimate, auc, gauc, nsctr, off_policy, on_policy_ctr


@dataclass
class OBDReport:
    rows: list[dict[str, Any]]
    metrics: dict[str, float]
    n_random: int
    n_bts: int
    clicks_random: int
    clicks_bts: int
    folds: int
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [f"OBD men campaign: random log {self.n_random} rows / {self.clicks_random} clicks, "
                 f"BTS log {self.n_bts} rows / {self.clicks_bts} clicks; {self.folds}-fold cross-fitting.",
                 "", "| policy | estimator | CTR | 95% CI | ratio to random |", "|---|---|---|---|---|"]
        base = next(r["value"] for r in self.rows if r["policy"] == "random (logged)")
        for r in self.rows:
            lines.append(f"| {r['policy']} | {r['estimator']} | {r['value']:.5f} | [{r['lo']:.5f}, {r['hi']:.5f}] "
                         f"| {r['value'] / base:.2f} |")
        lines += ["", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in self.metrics.items()]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def _row(policy: str, est: Estimate) -> dict[str, Any]:
    return {"policy": policy, "estimator": est.name, "value": est.value, "lo": est.lo, "hi": est.hi, "n": est.n}


def _vw_lines(log: ImpressionLog, creatives: CreativeTable, raw_user: list[list[str]], i: int,
              label: tuple[int, float, float] | None) -> list[str]:
    u = " ".join(f"{f}={v}" for f, v in zip(OBD_USER_FIELDS, raw_user[i], strict=True))
    lines = [f"shared |u {u} pos={int(log.context[i])}"]
    for a in range(len(creatives)):
        feats = " ".join(f"f{j}:{v:.4g}" for j, v in enumerate(creatives.features[a]) if v != 0)
        lab = f"0:{label[1]}:{label[2]} " if label is not None and label[0] == a else ""
        lines.append(f"{lab}|i id{a} {feats} aff:{float(log.pair[i, a, 0]):.4g}")
    return lines


def vw_policy(train: ImpressionLog, test: ImpressionLog, creatives: CreativeTable, raw_train: list[list[str]],
              raw_test: list[list[str]], *, epsilon: float = 0.05, passes: int = 1, seed: int = 0) -> np.ndarray:
    """Train VW ``--cb_explore_adf`` on logged bandit feedback (cost = -click) and return its pmf ``[N_test, K]``."""
    import vowpalwabbit

    vw = vowpalwabbit.Workspace(f"--cb_explore_adf --epsilon {epsilon} -q ui --quiet --random_seed {seed}")
    try:
        for _ in range(passes):
            for i in range(len(train)):
                lab = (int(train.shown[i]), -float(train.click[i]), float(train.propensity[i]))
                vw.learn(_vw_lines(train, creatives, raw_train, i, lab))
        pmf = np.zeros((len(test), len(creatives)))
        for i in range(len(test)):
            pmf[i] = vw.predict(_vw_lines(test, creatives, raw_test, i, None))
    finally:
        vw.finish()
    return pmf


def _raw_users(folder: Path, policy: str) -> list[list[str]]:
    import csv

    path = next(p for p in sorted((folder / policy).glob("*.csv")) if p.name != "item_context.csv")
    with path.open(newline="") as f:
        return [[r[k] for k in OBD_USER_FIELDS] for r in csv.DictReader(f)]


def evaluate_obd(folder: str | Path, *, folds: int = 5, seed: int = 0, epsilon: float = 0.05, epochs: int = 4,
                 n_boot: int = 1000, with_vw: bool = True, save_to: str | Path | None = None,
                 progress: bool = False) -> OBDReport:
    """Run the protocol above; optionally save a servable bundle trained on all random rows."""
    import torch

    from adcreative.select.models import TrainConfig, predict_logits, train_joint
    from adcreative.select.scoring import sigmoid

    torch.set_num_threads(1)
    folder = Path(folder)
    rnd = load_obd(folder, "random")
    bts = load_obd(folder, "bts")
    log, cr = rnd.log, rnd.creatives
    n, k = len(log), len(cr)
    cfg = TrainConfig(epochs=epochs, seed=seed)
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(n) % folds
    ad_logit = np.zeros(n)
    cr_logit = np.zeros((n, k))
    vw_pmf = np.zeros((n, k))
    notes: list[str] = []
    raw = _raw_users(folder, "random") if with_vw else []
    vw_ok = with_vw
    for f in range(folds):
        tr, te = np.where(fold_of != f)[0], np.where(fold_of == f)[0]
        res = train_joint(log.subset(tr), cr, OBD_USER_FIELDS, n_buckets=rnd.n_buckets,
                          cfg=TrainConfig(**{**cfg.__dict__, "seed": seed + f}), progress=progress)
        a, c = predict_logits(res, log.subset(te), cr)
        ad_logit[te], cr_logit[te] = a, c
        if vw_ok:
            try:
                vw_pmf[te] = vw_policy(log.subset(tr), log.subset(te), cr, [raw[i] for i in tr], [raw[i] for i in te],
                                       epsilon=epsilon, seed=seed + f)
            except ImportError:
                vw_ok = False
                notes.append("vowpalwabbit is not installed (pip install 'adcreative[peers]'): VW row skipped")
    q = sigmoid(ad_logit[:, None] + cr_logit)                      # q̂(x, a) for every creative
    rows_i = np.arange(n)
    r, mu, shown = log.click.astype(np.float64), log.propensity.astype(np.float64), log.shown
    q_logged = q[rows_i, shown]
    top = np.argmax(cr_logit, axis=1)
    greedy = np.zeros((n, k))
    greedy[rows_i, top] = 1.0
    policies: dict[str, np.ndarray] = {
        "ours, greedy": greedy,
        f"ours, ε={epsilon:g}": (1 - epsilon) * greedy + epsilon / k,
    }
    if vw_ok:
        policies[f"VW cb_explore_adf ε={epsilon:g}"] = vw_pmf
    out_rows = [_row("random (logged)", on_policy_ctr(log.click, name="on-policy", n_boot=n_boot, seed=seed)),
                _row("BTS (logged)", on_policy_ctr(bts.log.click, name="on-policy", n_boot=n_boot, seed=seed))]
    uniform = np.full((n, k), 1.0 / k)
    est = off_policy(r, uniform[rows_i, shown], mu, q_logged, (uniform * q).sum(1), n_boot=n_boot, seed=seed)
    out_rows.append(_row("uniform (OPE sanity check)", est["SNIPS"]))
    for name, pi in policies.items():
        est = off_policy(r, pi[rows_i, shown], mu, q_logged, (pi * q).sum(1), n_boot=n_boot, seed=seed)
        out_rows += [_row(name, est[e]) for e in ("IPS", "SNIPS", "DR")]
    metrics = {
        "AUC (click model, cross-fitted)": auc(r, q_logged),
        "GAUC (per pseudo-user)": gauc(r, q_logged, log.group),
        "NSCTR ours (top-1 replay)": nsctr(top, shown, r, log.ad_id),
        "matched impressions ours": float((top == shown).sum()),
    }
    if vw_ok:
        vtop = np.argmax(vw_pmf, axis=1)
        metrics["NSCTR VW (top-1 replay)"] = nsctr(vtop, shown, r, log.ad_id)
    metrics["NSCTR uniform (= logged CTR)"] = float(r.mean())
    notes.append("OPE targets the top-1 creative per impression (all 3 positions); random logging makes "
                 "the importance weight 34 on matched rows, so IPS/SNIPS intervals are wide at ~46 clicks.")
    if save_to is not None:
        from adcreative.select.bandit import BetaVisualTS
        from adcreative.select.bundle import save_bundle

        res = train_joint(log, cr, OBD_USER_FIELDS, n_buckets=rnd.n_buckets, cfg=cfg, progress=progress)
        bandit = BetaVisualTS(n_features=cr.features.shape[1], base_ctr=float(max(r.mean(), 1e-3)),
                              exploration_share=epsilon, seed=seed)
        bandit.add_arms(cr.ids, cr.features)
        for j in range(k):
            sel = shown == j
            bandit.impressions[j], bandit.clicks[j] = float(sel.sum()), float(r[sel].sum())
        bandit.fit_prior()
        save_bundle(save_to, res.ad_model, res.creative_model, cr, ad_id="men", bandit=bandit,
                    meta={"source": "obd/men random", "rows": n})
    return OBDReport(rows=out_rows, metrics=metrics, n_random=n, n_bts=len(bts.log),
                     clicks_random=int(r.sum()), clicks_bts=int(bts.log.click.sum()), folds=folds, notes=notes)
