"""Parallel ranking of ads and creatives (after JD, AAAI 2024): a <user, ad> CTR model and a list-wise
creative model, trained jointly and served separately.

The click logit of an impression is ``ad_logit(user, ad, context) + creative_logit(user, shown creative)``.
Training minimises

* a point-wise click loss: BCE of that combined logit against the click, and
* a list-wise loss: softmax cross-entropy of the shown creative among the impression's candidates,
  counted on clicked impressions (the creative that won the click should win the softmax), optionally
  inverse-propensity weighted when the logging policy was not uniform.

The creative logits are identifiable only up to a per-request constant under the softmax; the BCE term
pins that constant, so ``sigmoid(ad + creative)`` is a calibrated click probability.

Serving never needs torch: :mod:`adcreative.select.scoring` runs the same forward passes in NumPy from
the saved ``model.safetensors``. This module imports torch; import it only where training happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.select.data import AD_BUCKETS, CreativeTable, ImpressionLog
from adcreative.select.scoring import creative_id_buckets


# ----------------------------------------------------------------------------------- losses ----------
def listwise_loss(logits: torch.Tensor, mask: torch.Tensor, shown: torch.Tensor, click: torch.Tensor,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax cross-entropy of the shown creative among the candidates, on clicked impressions.

    ``logits``/``mask``: ``[B, K]``; ``shown``: ``[B]`` column index; ``click``: ``[B]`` 0/1; ``weight``: optional
    per-impression weights (e.g. 1/propensity). Returns the weighted mean over clicked impressions (0 if none).
    """
    logp = torch.log_softmax(logits.masked_fill(~mask, -1e9), dim=1)
    nll = -logp.gather(1, shown[:, None]).squeeze(1)
    w = click if weight is None else click * weight
    return (w * nll).sum() / w.sum().clamp_min(1e-12) if float(w.sum()) > 0 else logits.sum() * 0.0


def pointwise_loss(click_logit: torch.Tensor, click: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(click_logit, click)


# ----------------------------------------------------------------------------------- models ----------
class UserTower(nn.Module):
    """Hashed categorical fields (one embedding table, field-offset buckets) + numeric fields → ReLU layer."""

    def __init__(self, n_fields: int, n_num: int, n_buckets: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.n_fields, self.n_buckets = n_fields, n_buckets
        self.emb = nn.Embedding(max(1, n_fields * n_buckets), dim)
        nn.init.normal_(self.emb.weight, std=0.05)
        self.fc = nn.Linear(dim * n_fields + n_num, hidden)
        self.register_buffer("offsets", torch.arange(n_fields, dtype=torch.long) * n_buckets, persistent=False)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        offsets: torch.Tensor = self.offsets  # type: ignore[assignment]
        parts = [self.emb(cat + offsets).flatten(1)] if self.n_fields else []
        return torch.relu(self.fc(torch.cat([*parts, num], dim=1)))


class AdCTRModel(ConfigMixin, nn.Module):
    """<user, ad, context> → click logit: the ad-level half of the joint model, served on its own."""

    registry_family = "selection model"
    registry_name = "ad_ctr"

    @register_to_config
    def __init__(self, user_cat_fields: list[str], user_num_fields: list[str] | None = None,
                 n_buckets: int = 64, n_ad_buckets: int = 64, n_contexts: int = 4, dim: int = 8,
                 hidden: int = 32) -> None:
        super().__init__()
        self.user = UserTower(len(user_cat_fields), len(user_num_fields or []), n_buckets, dim, hidden)
        self.ad_emb = nn.Embedding(n_ad_buckets, dim)
        self.ctx_emb = nn.Embedding(n_contexts, dim)
        nn.init.normal_(self.ad_emb.weight, std=0.05)
        nn.init.normal_(self.ctx_emb.weight, std=0.05)
        self.fc = nn.Linear(hidden + 2 * dim, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward_features(self, user_cat: torch.Tensor, user_num: torch.Tensor, ad: torch.Tensor,
                         context: torch.Tensor) -> torch.Tensor:
        u = self.user(user_cat, user_num)
        return torch.relu(self.fc(torch.cat([u, self.ad_emb(ad), self.ctx_emb(context)], dim=1)))

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h).squeeze(-1)  # type: ignore[no-any-return]

    def forward(self, user_cat: torch.Tensor, user_num: torch.Tensor, ad: torch.Tensor,
                context: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(user_cat, user_num, ad, context))


class CreativeListwiseModel(ConfigMixin, nn.Module):
    """User × each candidate creative → per-candidate logit, all candidates of a request at once.

    Creative tower: features (+ hashed id embedding) → ``v``; user tower → ``u``; head on
    ``[u ⊙ v, v, pair]`` → logit. Padding slots (mask False) get -1e9.
    """

    registry_family = "selection model"
    registry_name = "creative_listwise"

    @register_to_config
    def __init__(self, user_cat_fields: list[str], creative_dim: int, user_num_fields: list[str] | None = None,
                 pair_dim: int = 0, n_buckets: int = 64, n_creative_buckets: int = 0, dim: int = 8,
                 hidden: int = 32) -> None:
        super().__init__()
        self.user = UserTower(len(user_cat_fields), len(user_num_fields or []), n_buckets, dim, hidden)
        self.cr = nn.Linear(creative_dim, hidden)
        self.cr_id = nn.Embedding(n_creative_buckets, hidden) if n_creative_buckets else None
        if self.cr_id is not None:
            nn.init.normal_(self.cr_id.weight, std=0.05)
        self.fc = nn.Linear(2 * hidden + pair_dim, hidden)
        self.out = nn.Linear(hidden, 1)

    def creative_vectors(self, feats: torch.Tensor, id_buckets: torch.Tensor | None) -> torch.Tensor:
        v = self.cr(feats)
        if self.cr_id is not None and id_buckets is not None:
            v = v + self.cr_id(id_buckets)
        return torch.relu(v)

    def forward_features(self, user_cat: torch.Tensor, user_num: torch.Tensor, cand_feats: torch.Tensor,
                         cand_ids: torch.Tensor | None, pair: torch.Tensor) -> torch.Tensor:
        u = self.user(user_cat, user_num)[:, None, :]                      # [B, 1, H]
        v = self.creative_vectors(cand_feats, cand_ids)                     # [B, K, H]
        return torch.relu(self.fc(torch.cat([u * v, v, pair], dim=-1)))   # [B, K, H]

    def forward_head(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        s = self.out(h).squeeze(-1)
        return s if mask is None else s.masked_fill(~mask, -1e9)

    def forward(self, user_cat: torch.Tensor, user_num: torch.Tensor, cand_feats: torch.Tensor,
                cand_ids: torch.Tensor | None, pair: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(user_cat, user_num, cand_feats, cand_ids, pair), mask)


# --------------------------------------------------------------------------------- training ----------
@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-3
    listwise_weight: float = 1.0
    ipw: bool = False          # weight the list-wise term by 1/propensity (non-uniform logging policies)
    seed: int = 0
    dim: int = 8
    hidden: int = 32
    n_contexts: int = 4
    n_ad_buckets: int = AD_BUCKETS
    n_creative_buckets: int = 64


@dataclass
class TrainResult:
    ad_model: Any
    creative_model: Any
    history: list[dict[str, float]] = field(default_factory=list)


def _batch_tensors(log: ImpressionLog, creatives: CreativeTable, id_buckets: np.ndarray) -> dict[str, Any]:
    cand = log.candidates
    safe = np.where(cand >= 0, cand, 0)
    return {
        "user_cat": torch.from_numpy(log.user_cat), "user_num": torch.from_numpy(log.user_num.astype(np.float32)),
        "ad": torch.from_numpy(log.ad), "context": torch.from_numpy(log.context),
        "cand_feats": torch.from_numpy(creatives.features[safe]), "cand_ids": torch.from_numpy(id_buckets[safe]),
        "pair": torch.from_numpy(log.pair.astype(np.float32)), "mask": torch.from_numpy(cand >= 0),
        "shown": torch.from_numpy(log.shown), "click": torch.from_numpy(log.click.astype(np.float32)),
        "w": torch.from_numpy(1.0 / np.clip(log.propensity, 1e-3, 1.0)).float(),
    }


def joint_loss(ad_model: Any, cr_model: Any, b: dict[str, Any], cfg: TrainConfig) -> tuple[Any, dict[str, float]]:
    ad_logit = ad_model(b["user_cat"], b["user_num"], b["ad"], b["context"])
    cr_logits = cr_model(b["user_cat"], b["user_num"], b["cand_feats"], b["cand_ids"], b["pair"], b["mask"])
    shown_logit = cr_logits.gather(1, b["shown"][:, None]).squeeze(1)
    pw = pointwise_loss(ad_logit + shown_logit, b["click"])
    lw = listwise_loss(cr_logits, b["mask"], b["shown"], b["click"], b["w"] if cfg.ipw else None)
    loss = pw + cfg.listwise_weight * lw
    return loss, {"loss": float(loss.detach()), "pointwise": float(pw.detach()), "listwise": float(torch.as_tensor(lw).detach())}


def train_joint(log: ImpressionLog, creatives: CreativeTable, user_cat_fields: list[str], *,
                user_num_fields: list[str] | None = None, n_buckets: int = 64, cfg: TrainConfig | None = None,
                init: TrainResult | None = None, progress: bool = False) -> TrainResult:
    """Train the ad CTR model and the list-wise creative model jointly on ``log``.

    ``init`` warm-starts from earlier models (periodic retraining in the online loop).
    """
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    if init is not None:
        ad_model, cr_model = init.ad_model, init.creative_model
    else:
        from adcreative.select import SELECT_MODELS

        ad_model = SELECT_MODELS.create("ad_ctr", user_cat_fields=list(user_cat_fields),
                                        user_num_fields=list(user_num_fields or []), n_buckets=n_buckets,
                                        n_ad_buckets=cfg.n_ad_buckets, n_contexts=cfg.n_contexts, dim=cfg.dim,
                                        hidden=cfg.hidden)
        cr_model = SELECT_MODELS.create("creative_listwise", user_cat_fields=list(user_cat_fields),
                                        creative_dim=creatives.features.shape[1],
                                        user_num_fields=list(user_num_fields or []), pair_dim=log.pair.shape[2],
                                        n_buckets=n_buckets, n_creative_buckets=cfg.n_creative_buckets,
                                        dim=cfg.dim, hidden=cfg.hidden)
        # start the click logit near the base rate so the BCE does not spend epochs finding it
        base = float(np.clip(log.click.mean(), 1e-4, 0.5))
        with torch.no_grad():
            ad_model.out.bias.fill_(math.log(base / (1 - base)))
    ad_model.train()
    cr_model.train()
    ids = creative_id_buckets(creatives.ids, cr_model.config["n_creative_buckets"])
    data = _batch_tensors(log, creatives, ids)
    params = list(ad_model.parameters()) + list(cr_model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(log)
    history: list[dict[str, float]] = []
    epochs: Any = range(cfg.epochs)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="train joint", leave=False)
    for ep in epochs:
        perm = torch.randperm(n, generator=gen)
        tot: dict[str, float] = {}
        nb = 0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            b = {k: v[idx] for k, v in data.items()}
            loss, parts = joint_loss(ad_model, cr_model, b, cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for k, v in parts.items():
                tot[k] = tot.get(k, 0.0) + v
            nb += 1
        history.append({"epoch": float(ep), **{k: v / max(nb, 1) for k, v in tot.items()}})
    ad_model.eval()
    cr_model.eval()
    return TrainResult(ad_model, cr_model, history)


def predict_logits(res: TrainResult, log: ImpressionLog, creatives: CreativeTable) -> tuple[np.ndarray, np.ndarray]:
    """(ad logits ``[N]``, creative logits ``[N, K]``) with torch (training-side evaluation)."""
    ids = creative_id_buckets(creatives.ids, res.creative_model.config["n_creative_buckets"])
    b = _batch_tensors(log, creatives, ids)
    with torch.no_grad():
        a = res.ad_model(b["user_cat"], b["user_num"], b["ad"], b["context"]).numpy()
        c = res.creative_model(b["user_cat"], b["user_num"], b["cand_feats"], b["cand_ids"], b["pair"], b["mask"]).numpy()
    return a, c


