"""Cold start: how well the click model predicts on creatives it has never seen, with and without represent's
features, in the simulated market.

Per seed: a hidden market over all creatives (:class:`~adcreative.select.simulator.SyntheticMarket`, its
clicks driven by the creatives' hidden attributes); a share of the creatives is held out — whole products
by default, so the held-out creatives are new in every sense; a uniformly random policy logs ``n_train``
impressions over the other creatives and ``n_test`` over the held-out ones. The joint ad + list-wise model
is trained on the training log once per *creative description* and scored on the held-out log:

* ``ids only``: no content features — a one-hot of the training creatives (a held-out creative is all
  zeros), what a ranker without represent knows of a new creative;
* represent's explicit features, its embeddings, and both.

Reported: click AUC on the held-out impressions (users and slots vary too, so the ids-only model is above
0.5 — the creative features' contribution is the difference) and the AUC of the creatives' predicted mean
CTR against their true mean CTR in the market (how well new creatives are *ranked*).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.select.ope import auc
from adcreative.select.simulator import MarketConfig, SyntheticMarket, sim_user_fields, uniform_log

IDS_ONLY = "ids only (no creative features)"


@dataclass
class ColdStartReport:
    seeds: list[int]
    n_train: int
    n_test: int
    n_creatives: int
    held_out: list[int]                                  # held-out creatives per seed
    click_auc: dict[str, list[float]]                    # description → per-seed click AUC on held-out creatives
    rank_auc: dict[str, list[float]]                     # description → per-seed AUC of predicted vs true CTR order
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        def cell(v: list[float]) -> str:
            return f"{np.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]"

        lines = [f"Cold start in the simulated market: {self.n_creatives} creatives, held out per seed "
                 f"{min(self.held_out)}–{max(self.held_out)} (whole products); {self.n_train} logged training "
                 f"impressions on the others, {self.n_test} on the held-out ones; seeds {self.seeds}; median "
                 "[min, max] over seeds.", "",
                 "| creative description | click AUC, held-out creatives | creative-ranking AUC |", "|---|---|---|"]
        for k in self.click_auc:
            lines.append(f"| {k} | {cell(self.click_auc[k])} | {cell(self.rank_auc[k])} |")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def _pair_auc(pred: np.ndarray, true: np.ndarray) -> float:
    """P(the model orders two creatives like their true CTRs), over all pairs with distinct true CTRs."""
    i, j = np.triu_indices(len(true), 1)
    d = np.sign(true[i] - true[j])
    keep = d != 0
    agree = (np.sign(pred[i] - pred[j]) == d)[keep]
    ties = (pred[i] == pred[j])[keep]
    return float((agree + 0.5 * ties).mean()) if keep.any() else float("nan")


def cold_start_auc(descriptions: Mapping[str, np.ndarray], attributes: np.ndarray, *, groups: Sequence[str] | None = None,
                   seeds: Sequence[int] = (0, 1, 2, 3, 4), n_train: int = 20000, n_test: int = 20000,
                   holdout: float = 0.3, epochs: int = 4, market: MarketConfig | None = None,
                   progress: bool = False) -> ColdStartReport:
    """Run the protocol above. ``descriptions``: name → ``[C, D]`` creative features (the ids-only baseline is
    added); ``groups``: product id per creative (held out by product when given)."""
    import torch

    from adcreative.select.data import CreativeTable
    from adcreative.select.models import TrainConfig, predict_logits, train_joint
    from adcreative.select.scoring import sigmoid

    attrs = np.asarray(attributes, np.float64)
    c = len(attrs)
    if any(len(v) != c for v in descriptions.values()):
        raise InputError("every creative description needs one row per creative")
    torch.set_num_threads(1)
    cfg = market or MarketConfig()
    names = [IDS_ONLY, *descriptions]
    rep = ColdStartReport(list(seeds), n_train, n_test, c, [], {k: [] for k in names}, {k: [] for k in names})
    it: Any = seeds
    if progress:
        from tqdm import tqdm

        it = tqdm(seeds, desc="cold start seeds")
    for seed in it:
        rng = np.random.default_rng(seed)
        if groups is not None:
            prods = sorted(set(groups))
            out = set(rng.choice(prods, max(1, round(holdout * len(prods))), replace=False).tolist())
            test = np.array([j for j in range(c) if groups[j] in out])
        else:
            test = rng.choice(c, max(1, round(holdout * c)), replace=False)
        train = np.setdiff1d(np.arange(c), test)
        rep.held_out.append(len(test))
        mk = SyntheticMarket(attrs, seed=seed, n_users=max(1, int((n_train + n_test) * cfg.users_per_impression)),
                             config=cfg)
        tr_log, te_log = uniform_log(mk, n_train, seed + 100, train), uniform_log(mk, n_test, seed + 200, test)
        true_ctr = mk.expected_ctr()[test]
        onehot = np.zeros((c, len(train)), np.float32)
        onehot[train, np.arange(len(train))] = 1.0
        cat, num = sim_user_fields(mk.k)
        for name in names:
            f = onehot if name == IDS_ONLY else np.asarray(descriptions[name], np.float64)
            z = (f - f[train].mean(0)) / (f[train].std(0) + 1e-6) if name != IDS_ONLY else f
            tr_table = CreativeTable([f"c{j}" for j in train], z[train])
            te_table = CreativeTable([f"c{j}" for j in test], z[test])
            res = train_joint(tr_log, tr_table, cat, user_num_fields=num, n_buckets=cfg.n_segments,
                              cfg=TrainConfig(epochs=epochs, seed=seed, n_creative_buckets=0, batch_size=512,
                                              n_contexts=mk.n_positions))
            a, s = predict_logits(res, te_log, te_table)
            p = sigmoid(a + s[np.arange(len(te_log)), te_log.shown])
            rep.click_auc[name].append(auc(te_log.click, p))
            # a creative's predicted mean CTR over the held-out log's users and slots, for a user who has not
            # seen it (no exposure history: the true CTRs it is compared with have none either)
            a0, s0 = predict_logits(res, replace(te_log, pair=np.zeros_like(te_log.pair)), te_table)
            rep.rank_auc[name].append(_pair_auc(sigmoid(a0[:, None] + s0).mean(0), true_ctr))
    return rep
