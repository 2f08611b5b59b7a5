"""The three-way decision on a judged image: **accept** (ship without a human), **human** (a reviewer decides),
**reject** (regenerate), from the calibrated P(available) and an out-of-distribution score.

Thresholds are chosen on validation for target precisions: of the images auto-accepted, at least
``target_accept`` (default 0.99) must truly be available; of those auto-rejected, at least ``target_reject`` must
truly be defective. Each threshold is the loosest one at which the precision holds *at every stricter threshold
too* (the running minimum of the precision curve), so one lucky stretch of the curve does not set it. An image
whose out-of-distribution score is above ``ood`` (a quantile of the validation images' scores) goes to a human
whatever its P(available): the model has not seen its like, so neither verdict is trusted.
NumPy only; saved in the model's config (``RFNet(decision=...)``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from adcreative.core.types import BANDS

NEVER = 2.0  # a P(available) threshold no probability reaches: the band is empty


@dataclass(frozen=True)
class Decision:
    """Thresholds of the three-way decision (P(available) ≥ ``accept`` → accept, ≤ ``reject`` → reject, OOD score
    > ``ood`` → human first)."""

    accept: float
    reject: float
    ood: float | None = None
    target_accept: float = 0.99
    target_reject: float = 0.95
    ood_quantile: float = 0.99

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown decision fields: {sorted(unknown)}")
        return cls(**d)

    def bands(self, p_available: np.ndarray, ood: np.ndarray | None = None) -> list[str]:
        """The band of each image."""
        p = np.asarray(p_available, np.float64)
        out = np.where(p >= self.accept, "accept", np.where(p <= self.reject, "reject", "human")).astype(object)
        if self.ood is not None and ood is not None:
            out[np.asarray(ood, np.float64) > self.ood] = "human"
        return [str(b) for b in out]


def decision_of(config: dict[str, Any]) -> Decision | None:
    """The decision saved in a model's config, if it has one."""
    d = config.get("decision")
    return Decision.from_dict(d) if d else None


@dataclass
class Judgements:
    """What an inspector says about a batch of images: calibrated class probabilities (N, 6), out-of-distribution
    scores (N,) and each image's band (``accept``/``human``/``reject``; two-way at P(available) 0.5 for a model
    without a fitted decision)."""

    probs: np.ndarray
    ood: np.ndarray
    bands: list[str]

    @classmethod
    def of(cls, probs: np.ndarray, ood: np.ndarray, decision: Decision | None) -> Judgements:
        rule = decision or Decision(accept=0.5, reject=float(np.nextafter(0.5, -1.0)))
        return cls(probs, ood, rule.bands(probs[:, 0], ood))

    @classmethod
    def empty(cls, n_classes: int) -> Judgements:
        return cls(np.zeros((0, n_classes), np.float32), np.zeros(0, np.float32), [])

    def counts(self) -> dict[str, int]:
        c = Counter(self.bands)
        return {k: int(c.get(k, 0)) for k in BANDS}


def accept_threshold(p: np.ndarray, positive: np.ndarray, target: float) -> float:
    """The lowest t such that precision(positive | p ≥ t') ≥ target for every observed t' ≥ t; NEVER if none."""
    p = np.asarray(p, np.float64)
    pos = np.asarray(positive, bool)
    values = np.unique(p)[::-1]  # candidate thresholds, strictest first
    if len(values) == 0:
        return NEVER
    order = np.argsort(-p, kind="stable")
    cum_pos = np.cumsum(pos[order])
    # accepted at threshold v: every p ≥ v (ties included)
    n_at = np.searchsorted(-p[order], -values, side="right")
    prec = cum_pos[n_at - 1] / n_at
    ok = np.minimum.accumulate(prec) >= target
    if not ok[0]:
        return NEVER
    return float(values[np.flatnonzero(ok)[-1]])


def reject_threshold(p: np.ndarray, negative: np.ndarray, target: float) -> float:
    """The highest t such that precision(negative | p ≤ t') ≥ target for every observed t' ≤ t; −1 if none."""
    t = accept_threshold(-np.asarray(p, np.float64), negative, target)
    return -1.0 if t == NEVER else -t


def choose_decision(p_available: np.ndarray, is_available: np.ndarray, *, ood: np.ndarray | None = None,
                    target_accept: float = 0.99, target_reject: float = 0.95,
                    ood_quantile: float = 0.99) -> Decision:
    """Thresholds from validation scores: P(available), whether each image truly is available, and (optionally)
    OOD scores of these in-distribution images, whose ``ood_quantile`` becomes the OOD threshold."""
    for name, v in (("target_accept", target_accept), ("target_reject", target_reject),
                    ("ood_quantile", ood_quantile)):
        if not 0.0 < v <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {v}")
    pos = np.asarray(is_available, bool)
    acc = accept_threshold(p_available, pos, target_accept)
    rej = reject_threshold(p_available, ~pos, target_reject)
    if rej >= acc:  # never both: a score meeting both targets cannot exist, so only ties land here
        rej = float(np.nextafter(acc, -np.inf))
    thr = None if ood is None or len(ood) == 0 else float(np.quantile(np.asarray(ood, np.float64), ood_quantile))
    return Decision(accept=acc, reject=rej, ood=thr, target_accept=target_accept, target_reject=target_reject,
                    ood_quantile=ood_quantile)


def decision_metrics(bands: Sequence[str], is_available: np.ndarray) -> dict[str, Any]:
    """What the decision did on labelled images: counts per band, share sent to humans, precision of the
    automatic bands (NaN when a band is empty) and the share of available images auto-accepted."""
    b = np.asarray(list(bands))
    pos = np.asarray(is_available, bool)
    n = len(b)
    acc, rej, hum = b == "accept", b == "reject", b == "human"
    counts = Counter(str(x) for x in b)
    return {"n": n, "counts": {k: int(counts.get(k, 0)) for k in BANDS},
            "human_rate": float(hum.mean()) if n else float("nan"),
            "precision_accept": float(pos[acc].mean()) if acc.any() else float("nan"),
            "precision_reject": float((~pos[rej]).mean()) if rej.any() else float("nan"),
            "available_auto_accepted": float(acc[pos].mean()) if pos.any() else float("nan"),
            "defective_auto_rejected": float(rej[~pos].mean()) if (~pos).any() else float("nan")}
