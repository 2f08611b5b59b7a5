"""Training RFNet on cached encodings: class-weighted cross-entropy, AdamW with a cosine schedule, modality
dropout, an optional domain-adversarial head (renderer family and/or product), validation every epoch, early
stopping on validation macro-F1 + AP(available) (ties → lower loss), seeded; then calibration on validation
(temperature, out-of-distribution model, decision thresholds)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adcreative.core.errors import InputError
from adcreative.core.types import CLASSES, TARGET_REJECT
from adcreative.inspect.data import EncodedSet
from adcreative.inspect.decision import DECISION_GROUPS, GROUP_RULES, MIN_GROUP, choose_decision, real_mask

if TYPE_CHECKING:
    from adcreative.core.store import Store


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    patience: int = 5  # epochs without a better validation score before stopping
    label_smoothing: float = 0.05
    class_weighting: bool = True  # inverse-frequency weights, so rare defects count
    flip: bool = True  # mirror the spatial modalities (a mirrored ad is judged the same)
    seed: int = 0
    max_batches_per_epoch: int | None = None
    # each input of ``drop_modalities`` (names of model.DROPPABLE) is removed from a training sample with this
    # probability, independently: the verdict cannot rest on any single input
    modality_dropout: float = 0.0
    drop_modalities: tuple[str, ...] = ("image", "view", "mid", "structure", "affinity", "product", "text", "cues")
    # MixStyle (Zhou et al., ICLR 2021) on the cached trunk maps of the image and the product view: with this
    # probability a training sample's channel means and spreads are mixed with those of a sample drawn by another
    # renderer family in the batch (weight ~ Beta(style_mix_alpha, style_mix_alpha)), so a renderer's look (its
    # palette, contrast, texture statistics) stops being evidence; the content of the maps (where things are)
    # is unchanged. 0 draws nothing, so the random streams stay as they were.
    style_mix: float = 0.0
    style_mix_alpha: float = 0.1
    # the three-way decision fitted on validation after training
    target_accept: float = 0.99
    target_reject: float = TARGET_REJECT
    ood_quantile: float = 0.99
    # family (default): the thresholds meet their targets on every renderer family of validation with at least
    # decision_min_group rows too, the strictest family setting each; pooled: on all validation rows together
    decision_groups: str = DECISION_GROUPS
    decision_min_group: int = MIN_GROUP
    # fit a per-class logit bias for images of real products on validation's real-product rows
    # (calibrate.fit_real_bias), when it has enough of them. Off by default: on E5g alone it raised real products'
    # macro-F1 by 0.05 and lowered their ECE, but its accepted images were less precise (0.967 against 0.990 on
    # (a)+(b) of v49+v50); the shipped four-member default carries one (docs/inspect.md, rounds 23 and 24)
    real_bias: bool = False
    # domain-adversarial training (DANN, Ganin & Lempitsky 2015): a head on the pooled features predicts the
    # training image's renderer family and/or product through a gradient reversal layer, so the features are
    # pushed to carry neither; the reversal's weight ramps up as adversary_weight · (2 / (1 + e^(-10p)) - 1)
    # over training progress p. The head exists only during training (nothing of it is saved).
    adversary: str = "none"  # none | renderer | product | both
    adversary_weight: float = 0.1
    # reverse: DANN's reversed cross-entropy (the features may also *flip* the target to fool the head, which keeps
    # it readable); confusion: the features are pushed to make the head's prediction uniform (Tzeng et al. 2015)
    # while the head itself learns on detached features
    adversary_mode: str = "reverse"
    adversary_hidden: int = 128


ADVERSARIES = ("none", "renderer", "product", "both")
ADVERSARY_MODES = ("reverse", "confusion")


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    cue_expert: dict[str, Any] | None = None  # fit_cue_expert's summary, for a model with a cue expert


STYLE_KEYS = ("image", "image_mid", "local", "local_mid")  # the trunk maps whose statistics carry a renderer's look


def style_partners(families: Sequence[str], gen: torch.Generator) -> Tensor:
    """For each row of a batch, the index of another row drawn by a different renderer family (uniformly among
    them); a row whose family is the batch's only one gets a random other row."""
    n = len(families)
    codes = {f: i for i, f in enumerate(sorted(set(families)))}
    fam = torch.tensor([codes[f] for f in families])
    u = torch.rand(n, generator=gen)
    out = torch.empty(n, dtype=torch.long)
    for i in range(n):
        pool = torch.nonzero(fam != fam[i]).flatten()
        if len(pool) == 0:
            pool = torch.tensor([j for j in range(n) if j != i] or [i])
        out[i] = pool[min(int(u[i] * len(pool)), len(pool) - 1)]
    return out


def mix_styles(batch: dict[str, Tensor], partner: Tensor, lam: Tensor, apply: Tensor, eps: float = 1e-5) -> None:
    """MixStyle in place on :data:`STYLE_KEYS`: for rows in ``apply``, each map's per-channel mean and standard
    deviation become ``lam`` · its own + (1 − ``lam``) · ``partner``'s. Every map of a row takes the same partner
    and weight, so the image and its product view keep one look."""
    if not bool(apply.any()):
        return
    rows = torch.nonzero(apply).flatten()
    w = lam[rows].view(-1, 1, 1, 1)
    for k in STYLE_KEYS:
        if k not in batch:
            continue
        x = batch[k]
        mu = x.mean((2, 3), keepdim=True)
        sig = (x.var((2, 3), keepdim=True) + eps).sqrt()
        mu_mix = w * mu[rows] + (1 - w) * mu[partner[rows]]
        sig_mix = w * sig[rows] + (1 - w) * sig[partner[rows]]
        x[rows] = (x[rows] - mu[rows]) / sig[rows] * sig_mix + mu_mix


def class_weights(counts: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 over the classes present (absent classes: 0)."""
    c = counts.astype(np.float64)
    w = np.where(c > 0, 1.0 / np.maximum(c, 1), 0.0)
    w = w / w[c > 0].mean()
    return torch.tensor(w, dtype=torch.float32)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: float) -> Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.weight * grad, None


def grad_reverse(x: Tensor, weight: float) -> Tensor:
    """Identity forward; the gradient flowing back is multiplied by ``-weight``."""
    return _GradReverse.apply(x, weight)  # type: ignore[no-any-return]


def adversary_ramp(progress: float) -> float:
    """DANN's schedule 2 / (1 + e^(-10p)) - 1: 0 at the start of training, ~1 from p ≈ 0.5."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class DomainAdversary(nn.Module):
    """Per target (``renderer``, ``product``) a small MLP from the pooled features to that target's classes, read
    through a gradient reversal layer. Training only."""

    def __init__(self, dim: int, n_classes: dict[str, int], hidden: int = 128) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n))
                                    for k, n in n_classes.items()})

    def forward(self, features: Tensor, weight: float) -> dict[str, Tensor]:
        r = grad_reverse(features, weight)
        return {k: h(r) for k, h in self.heads.items()}

    def confusion(self, features: Tensor) -> dict[str, Tensor]:
        """Per target, the cross-entropy of the heads' prediction against the uniform distribution, with the
        heads' weights held fixed (its gradient reaches only the features)."""
        from torch.func import functional_call

        out = {}
        for k, h in self.heads.items():
            z = functional_call(h, {n: p.detach() for n, p in h.named_parameters()}, (features,))
            out[k] = -F.log_softmax(z, -1).mean(-1).mean()
        return out


def adversary_targets(enc: EncodedSet, adversary: str) -> dict[str, Tensor]:
    """Integer targets per row of ``enc`` for each adversary target: renderer family and/or product id."""
    if adversary not in ADVERSARIES:
        raise InputError(f"unknown adversary {adversary!r}; choose from {', '.join(ADVERSARIES)}")
    names = {"none": (), "renderer": ("renderer",), "product": ("product",), "both": ("renderer", "product")}
    out = {}
    for name in names[adversary]:
        values = enc.renderers if name == "renderer" else enc.product_ids
        kinds = sorted(set(values))
        if len(kinds) < 2:
            raise InputError(f"adversary {name!r} needs at least two {name}s in training, got {kinds}")
        index = {v: i for i, v in enumerate(kinds)}
        out[name] = torch.tensor([index[v] for v in values], dtype=torch.long)
    return out


def train_model(model: Any, train: EncodedSet, val: EncodedSet | None, cfg: TrainConfig | None = None, *,
                desc: str = "train", progress: bool = True) -> TrainResult:
    """Train ``model``'s trainable parts in place; keeps the weights of the best validation epoch."""
    from tqdm.auto import tqdm

    from adcreative.inspect.metrics import compute_metrics, predict_encoded

    cfg = cfg or TrainConfig()
    if getattr(model, "members", 1) > 1:  # training would move member 0 alone and leave the average stale
        raise InputError("an ensemble is not trained as one: train its members, then build it with "
                         "'adcreative inspect ensemble'")
    train = model.head_maps(_labelled(train))
    if val is not None:
        val = model.head_maps(_labelled(val))
    if len(train) == 0:
        raise InputError("no labelled training samples")
    if getattr(model, "use_cues", False) and not model.cues_fitted:  # a fine-tuned model keeps its statistics
        model.fit_cues(train.cues)
    cue_fit = None
    if getattr(model, "cue_expert", 0.0) > 0:
        # fitted (and frozen) first, so the validation score that stops training is the mixture's
        cue_fit = fit_cue_expert(model, train, val, cfg)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    style_rng = np.random.default_rng(cfg.seed)  # MixStyle's weights (its own stream: the others stay as they were)
    params = model.trainable_parameters()
    targets = adversary_targets(train, cfg.adversary)
    if cfg.adversary_mode not in ADVERSARY_MODES:
        raise InputError(f"unknown adversary mode {cfg.adversary_mode!r}; choose from {', '.join(ADVERSARY_MODES)}")
    adversary = None
    groups: list[dict[str, Any]] = [{"params": params}]
    if targets:
        adversary = DomainAdversary(int(model.config["dim"]), {k: int(t.max()) + 1 for k, t in targets.items()},
                                    cfg.adversary_hidden)
        groups.append({"params": list(adversary.parameters())})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_batches = math.ceil(len(train) / cfg.batch_size)
    if cfg.max_batches_per_epoch:
        n_batches = min(n_batches, cfg.max_batches_per_epoch)
    total = max(1, cfg.epochs * n_batches)
    warm = min(50, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / (warm + 1) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    weights = class_weights(train.class_counts()) if cfg.class_weighting else None
    res = TrainResult(config=asdict(cfg), cue_expert=cue_fit)
    best_score = (-1.0, -1.0)
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        losses = []
        adv_losses: dict[str, list[float]] = {k: [] for k in targets}
        adv_hits: dict[str, list[float]] = {k: [] for k in targets}
        for b in range(n_batches):
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            flip = (torch.rand(len(idx), generator=gen) < 0.5) if cfg.flip else None
            batch = train.batch(idx, flip=flip)
            drop = None
            if cfg.modality_dropout > 0:
                # (no draw for the cue token of a model without one: its random stream stays what it was)
                drop = {m: torch.rand(len(idx), generator=gen) < cfg.modality_dropout for m in cfg.drop_modalities
                        if m != "cues" or getattr(model, "use_cues", False)}
            if cfg.style_mix > 0:
                partner = style_partners([train.renderers[int(i)] for i in idx], gen)
                weight = torch.from_numpy(style_rng.beta(cfg.style_mix_alpha, cfg.style_mix_alpha, len(idx))).float()
                mix_styles(batch, partner, weight, torch.rand(len(idx), generator=gen) < cfg.style_mix)
            feats = model.forward_features(batch, drop=drop)
            logits = model.forward_head(feats)
            loss = F.cross_entropy(logits, train.labels[idx], weight=weights, label_smoothing=cfg.label_smoothing)
            total_loss = loss
            if adversary is not None:
                lam = cfg.adversary_weight * adversary_ramp((epoch * n_batches + b) / total)
                reverse = cfg.adversary_mode == "reverse"
                for k, z in adversary(feats if reverse else feats.detach(), lam if reverse else 0.0).items():
                    adv = F.cross_entropy(z, targets[k][idx])
                    total_loss = total_loss + adv
                    adv_losses[k].append(float(adv.detach()))
                    adv_hits[k].append(float((z.argmax(-1) == targets[k][idx]).float().mean()))
                if not reverse:
                    total_loss = total_loss + lam * sum(adversary.confusion(feats).values())
            opt.zero_grad(set_to_none=True)
            total_loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            if adversary is not None:
                torch.nn.utils.clip_grad_norm_(adversary.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        for k in targets:  # how well the adversary still reads the target from the features (chance = 1/classes)
            row[f"adv_{k}_loss"] = float(np.mean(adv_losses[k]))
            row[f"adv_{k}_acc"] = float(np.mean(adv_hits[k]))
        if val is not None and len(val):
            probs = predict_encoded(model, val)
            m = compute_metrics(val.labels.numpy(), probs)
            row.update(val_loss=float(F.nll_loss(torch.log(torch.from_numpy(probs) + 1e-9), val.labels)),
                       val_macro_f1=m["macro_f1"], val_ap=m["ap_available"], val_acc=m["accuracy"])
            ap = 0.0 if math.isnan(m["ap_available"]) else m["ap_available"]
            # AP(available) decides what ships without a human; macro-F1 what a reviewer is told
            score = (round(m["macro_f1"] + ap, 4), -row["val_loss"])
        else:
            score = (-row["train_loss"], 0.0)
        res.history.append(row)
        if score > best_score:
            best_score, res.best_epoch, res.best, stale = score, epoch, dict(row), 0
            best_state = {k: v.detach().clone() for k, v in model.state_arrays().items()}
        else:
            stale += 1
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
        if stale >= cfg.patience:
            break
    bar.close()
    if best_state is not None:
        model.load_state_arrays(best_state)
    model.eval()
    res.seconds = time.perf_counter() - t0
    return res


def fit_cue_expert(model: Any, train: EncodedSet, val: EncodedSet | None, cfg: TrainConfig, *,
                   max_epochs: int = 150, patience: int = 20, batch_size: int = 128, lr: float = 3e-3) -> dict[str, Any]:
    """Fit ``model.cue_head`` (the cue expert) on the training rows' measured cues alone: class-weighted
    cross-entropy, AdamW, seeded, keeping the epoch of lowest validation NLL (the last one without validation),
    then frozen.
    The cues are a few numbers per image, so this takes seconds where the fused model takes minutes. Returns
    the epochs run, the best epoch and its validation NLL. A boosted-tree expert (``cue_expert_kind`` "trees") is
    fitted by :func:`inspect.cue_trees.fit_cue_trees` instead: the rounds kept are those of lowest validation NLL."""
    if getattr(model, "cue_expert_kind", "mlp") == "trees":
        from adcreative.inspect.cue_trees import fit_cue_trees

        with torch.no_grad():
            x = model._standard_cues(train.cues).numpy()
            xv, yv = None, None
            if val is not None and len(val):
                xv, yv = model._standard_cues(val.cues).numpy(), val.labels.numpy()
        w = class_weights(train.class_counts()).numpy() if cfg.class_weighting else None
        return fit_cue_trees(model.cue_head, x, train.labels.numpy(), w, xv, yv, seed=cfg.seed)
    # its own random streams (init, order, dropout): the caller's, and so the fused model's draws, are unchanged
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed + 7919)
        gen = torch.Generator().manual_seed(cfg.seed + 7919)
        head = model.cue_head
        for p in head.parameters():
            p.requires_grad_(True)
        for m in head.modules():  # a fresh start for every fit, also of a fine-tuned model
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        x, y = train.cues.float(), train.labels
        weights = class_weights(train.class_counts()) if cfg.class_weighting else None
        opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3)
        best, best_epoch, best_state, stale, epoch = math.inf, -1, None, 0, -1
        for epoch in range(max_epochs):
            head.train()
            perm = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch_size):
                idx = perm[i:i + batch_size]
                loss = F.cross_entropy(model.cue_logits(x[idx]), y[idx], weight=weights,
                                       label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            head.eval()
            if val is None or len(val) == 0:
                continue
            with torch.no_grad():
                nll = float(F.cross_entropy(model.cue_logits(val.cues.float()), val.labels))
            if nll < best - 1e-4:
                best, best_epoch, stale = nll, epoch, 0
                best_state = {k: v.clone() for k, v in head.state_dict().items()}
            else:
                stale += 1
                if stale >= patience:
                    break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    for p in head.parameters():  # frozen: the fused model's training leaves it as fitted
        p.requires_grad_(False)
    return {"epochs": epoch + 1, "best_epoch": best_epoch, "val_nll": None if math.isinf(best) else best}


def calibrate_model(model: Any, train: EncodedSet, val: EncodedSet, cfg: TrainConfig | None = None,
                    *, max_fit: int = 20000) -> dict[str, Any]:
    """Fit, on validation, the temperature (NLL), then (``cfg.real_bias``) the real-product bias on the rows of
    real products, and the decision thresholds for ``cfg``'s target precisions on the probabilities both give
    (with ``cfg.decision_groups`` "family" met on each renderer family of validation too, not only pooled); fit the
    out-of-distribution model on (up to ``max_fit``, seeded) training rows and set its threshold at
    ``cfg.ood_quantile`` of the validation scores (each of its two distances scaled by its validation median).
    Stored in ``model``, in place of any renderer's own calibration (``inspect calibrate-renderer``: fitted on
    top of the old calibration, so it no longer holds); returns the fitted values and the validation NLL/ECE
    before and after."""
    from adcreative.inspect.calibrate import (
        calibration_metrics,
        fit_real_bias,
        fit_temperature,
        nll,
        softmax,
        with_real_bias,
    )
    from adcreative.inspect.metrics import encoded_outputs

    cfg = cfg or TrainConfig()
    if cfg.decision_groups not in GROUP_RULES:
        raise InputError(f"unknown decision groups {cfg.decision_groups!r}; choose from {', '.join(GROUP_RULES)}")
    train, val = _labelled(train), _labelled(val)
    if len(val) == 0:
        raise InputError("calibration needs labelled validation samples")
    model.set_calibration(1.0, None)
    model.set_real_bias(None)
    for name in list(model.renderer_calibration or {}):  # each was fitted on top of the old calibration
        model.set_renderer_calibration(name, None)
    mapped_val = model.head_maps(val)
    pick = np.arange(len(train))
    if len(train) > max_fit:
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(train), max_fit, replace=False))
        if mapped_val is not val:  # maps passed through the head conv: map only the rows the OOD model reads
            train, pick = train.subset(pick), np.arange(max_fit)
    # else the rows are read in place: a subset would copy them first (4 GB of maps at 20,000 rows)
    _, feats = encoded_outputs(model, model.head_maps(train), rows=pick)
    val = mapped_val
    logits, val_feats = encoded_outputs(model, val, calibrated=False)
    model.fit_ood(torch.from_numpy(feats), train.labels[torch.from_numpy(pick)], torch.from_numpy(val_feats),
                  groups=[train.renderers[i] for i in pick], tail=cfg.ood_quantile)
    ood = model.ood_score(torch.from_numpy(val_feats)).numpy()
    y = val.labels.numpy()
    t = fit_temperature(logits, y)
    real = real_mask(val.sources)
    bias = fit_real_bias(logits[real] / t, y[real]) if cfg.real_bias else None
    p_avail = softmax(with_real_bias(logits / t, real, bias))[:, 0]
    decision = choose_decision(p_avail, y == 0, ood=ood, target_accept=cfg.target_accept,
                               target_reject=cfg.target_reject, ood_quantile=cfg.ood_quantile,
                               class_prior=(np.bincount(y, minlength=logits.shape[1]) / len(y)).tolist(),
                               groups=val.renderers if cfg.decision_groups != "pooled" else None,
                               family_accept=cfg.decision_groups == "family",
                               family_floor=cfg.decision_groups == "floor",
                               min_group=cfg.decision_min_group, labels=y,
                               real=list(real))
    model.set_calibration(t, decision)
    model.set_real_bias(bias)
    fitted: dict[str, Any] = {"real_bias": bias}
    if cfg.real_bias:  # (only then: the printout's "too few" is about the rows it was asked to fit on)
        fitted["real_rows"] = int(real.sum())
    if bias is not None:  # what the bias did on the rows it was fitted on
        fitted["real_nll_before"] = nll(logits[real], y[real], t)
        fitted["real_nll"] = nll(logits[real] / t + np.asarray(bias), y[real])
    return {**calibration_metrics(logits, y, t), **fitted, "decision": decision.to_dict()}


def _labelled(enc: EncodedSet) -> EncodedSet:
    """The rows with a label (a subset is a copy: the set itself when every row has one)."""
    keep = (enc.labels >= 0).nonzero().flatten().numpy()
    return enc if len(keep) == len(enc) else enc.subset(keep)


def split_sets(enc: EncodedSet, *, consume: bool = False
               ) -> tuple[EncodedSet, EncodedSet | None, EncodedSet | None]:
    """train / val / test subsets by the split field (val or test may be absent). With ``consume`` the tensors
    move out of ``enc`` into the splits (it is left empty), so a large set and its splits are never held at once."""
    if "train" not in enc.splits:
        raise InputError("the data has no 'train' split")
    if consume:
        parts = enc.partition()
        return parts["train"], parts.get("val"), parts.get("test")
    va, te = enc.split("val"), enc.split("test")
    return enc.split("train"), (va if len(va) else None), (te if len(te) else None)


def describe_counts(enc: EncodedSet) -> str:
    c = enc.class_counts()
    return ", ".join(f"{CLASSES[i]}={int(c[i])}" for i in range(len(CLASSES)))


def train_inspector(net: Any, data: str | Path | Sequence[str | Path] | None, out: str | Path, cfg: TrainConfig, *,
                    store: Store | None = None, cache: bool = True, log: Callable[[str], None] = print,
                    extra: dict[str, Any] | None = None, splits: str = "same") -> dict[str, Any]:
    """Encode the data (one or more dataset folders, their shared products split by ``splits``, and/or the store's
    human labels), train ``net`` on its train split
    with early stopping on val, evaluate on test when there is one, save to ``out`` (with ``extra`` among the
    saved extras, e.g. what it was fine-tuned from); returns the saved extras."""
    from adcreative.inspect.data import encoding_config, load_training_data
    from adcreative.inspect.evaluate import evaluate_model
    from adcreative.inspect.metrics import format_metrics

    torch.manual_seed(cfg.seed)
    out = Path(out)
    enc = load_training_data(data, store, encoding_config(net.config), use_store_labels=store is not None,
                             cache=cache, splits=splits)
    tr, va, te = split_sets(enc, consume=True)  # frees the whole set as it is cut
    log(f"train {len(tr)} [{describe_counts(tr)}]")
    log(f"val   {len(va) if va else 0}   test {len(te) if te else 0}   "
        f"products train/val/test: {len(set(tr.product_ids))}/{len(set(va.product_ids)) if va else 0}/"
        f"{len(set(te.product_ids)) if te else 0}")
    name = type(net).__name__
    res = train_model(net, tr, va, cfg, desc=f"train {name}")
    log(f"best epoch {res.best_epoch} of {len(res.history)} ({res.seconds:.0f}s): "
        + ", ".join(f"{k}={v:.4f}" for k, v in res.best.items() if k != "epoch"))
    extra = {**(extra or {}), "train": res.config, "history": res.history, "best_epoch": res.best_epoch,
             "data": _data_record(data), "store_labels": store is not None}
    if res.cue_expert is not None:
        ce = res.cue_expert  # the network's epochs, or the boosted trees' rounds
        kept = (f"{ce['kept']} of {ce['rounds']} boosting rounds" if "rounds" in ce
                else f"best epoch {ce['best_epoch']} of {ce['epochs']}")
        log(f"cue expert: {kept}, val NLL {ce['val_nll']}")
        extra["cue_expert"] = res.cue_expert
    if va is not None and len(va):
        cal = calibrate_model(net, tr, va, cfg)
        d = cal["decision"]
        log(f"calibrated on val: T={cal['temperature']:.3f}, NLL {cal['nll_before']:.4f} → {cal['nll']:.4f}, "
            f"ECE {cal['ece_before']:.4f} → {cal['ece']:.4f}; accept P(avail) ≥ {d['accept']:.4f}, reject ≤ "
            f"{d['reject']:.4f}, OOD > {d['ood']:.2f} → human")
        extra["calibration"] = {k: v for k, v in cal.items() if k != "decision"}
    if te is not None:
        m = evaluate_model(net, te, out=out / "eval", title=name)
        log("test split:\n" + format_metrics(m))
        extra["test"] = {k: m[k] for k in ("macro_f1", "ap_available", "accuracy", "n")}
    net.save_pretrained(out, extra=extra)
    return extra


def _data_record(data: str | Path | Sequence[str | Path] | None) -> str | list[str] | None:
    """What the saved extras say the model trained on: the folder, or the folders in order."""
    if data is None or isinstance(data, (str, Path)):
        return str(data) if data else None
    folders = [str(d) for d in data]
    return folders[0] if len(folders) == 1 else (folders or None)
