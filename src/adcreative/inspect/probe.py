"""The linear-probe baseline: multinomial logistic regression on the frozen ImageNet EfficientNet-Lite0 features of
the generated image (the trunk's 1280-channel head maps, average-pooled), with the regularisation strength chosen
on validation by the same criterion as RFNet's early stopping (macro-F1 + AP(available)).

It sees only the image, through the same frozen trunk RFNet builds on (``core.backbones``): what RFNet adds over it
is the trainable fusion of the product view, the mask, structure and colour-affinity maps, the cutout and the title.
Features come from the cached encodings, so the probe costs no extra encoding pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from adcreative.core.backbones import HEAD_CHANNELS, frozen_efficientnet_lite0, head_forward
from adcreative.inspect.data import EncodedSet
from adcreative.inspect.metrics import compute_metrics

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


@torch.no_grad()
def pooled_features(enc: EncodedSet, *, backbone_weights: str | None = None, chunk: int = 256) -> np.ndarray:
    """(N, 1280) float32: the image's head-conv maps (computed here when the set holds the 320-channel trunk
    maps) averaged over the grid, as in the network's own classifier."""
    out = np.empty((len(enc), HEAD_CHANNELS), np.float32)
    bb = None
    for i in range(0, len(enc), chunk):
        x = enc.image[i:i + chunk].float()
        if x.shape[1] != HEAD_CHANNELS:
            bb = bb or frozen_efficientnet_lite0(backbone_weights)
            x = head_forward(bb, x)
        out[i:i + chunk] = x.mean((2, 3)).numpy()
    return out


@dataclass
class LinearProbe:
    """Standardised features → multinomial logistic regression (class-balanced, L2 with strength 1/C)."""

    C: float = 0.1
    seed: int = 0
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))
    model: Any = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearProbe:
        from sklearn.linear_model import LogisticRegression

        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        self.model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000, random_state=self.seed)
        self.model.fit((x - self.mean) / self.std, y)
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, 6) logits over every class (a class absent in training gets −inf-like logits)."""
        z = self.model.decision_function((x - self.mean) / self.std)
        out = np.full((len(x), 6), -1e4, np.float64)
        out[:, self.model.classes_] = z
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)  # type: ignore[no-any-return]


def train_probe(train: EncodedSet, val: EncodedSet, *, seed: int = 0, grid: tuple[float, ...] = C_GRID,
                features: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[LinearProbe, dict[str, Any]]:
    """The probe with the C of ``grid`` that scores best on validation; ``features`` may pass precomputed
    (train, val) features. Returns it and the validation score of every C."""
    xt, xv = features if features is not None else (pooled_features(train), pooled_features(val))
    yt, yv = train.labels.numpy(), val.labels.numpy()
    best: tuple[float, LinearProbe | None] = (-math.inf, None)
    scores = {}
    for c in grid:
        probe = LinearProbe(C=c, seed=seed).fit(xt, yt)
        m = compute_metrics(yv, probe.predict_proba(xv))
        ap = 0.0 if math.isnan(m["ap_available"]) else m["ap_available"]
        scores[c] = m["macro_f1"] + ap
        if scores[c] > best[0]:
            best = (scores[c], probe)
    assert best[1] is not None
    return best[1], {"C": best[1].C, "val_scores": scores}
