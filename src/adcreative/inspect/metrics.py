"""RFNet's metrics: per-class precision/recall/F1, macro-F1, accuracy and AP with *available* as the positive
class, on cached encodings. Shared by training (validation every epoch) and evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from adcreative.core.types import CLASSES
from adcreative.inspect.data import EncodedSet


@torch.no_grad()
def predict_encoded(model: Any, enc: EncodedSet, batch_size: int = 128) -> np.ndarray:
    """Class probabilities (N, 6) for cached encodings."""
    model.eval()
    out = []
    for i in range(0, len(enc), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(enc)))
        out.append(torch.softmax(model.logits(enc.batch(idx)), -1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


def average_precision(y_pos: np.ndarray, score: np.ndarray) -> float:
    """AP (area under the step PR curve), NaN when there is no positive."""
    from sklearn.metrics import average_precision_score

    if y_pos.sum() == 0:
        return float("nan")
    return float(average_precision_score(y_pos, score))


def compute_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro-F1, accuracy, AP(available), confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = len(CLASSES)
    pred = probs.argmax(1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    present = s > 0  # macro over the classes present in the ground truth
    return {
        "n": len(y),
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "macro_f1": float(f[present].mean()) if present.any() else float("nan"),
        "ap_available": average_precision((y == 0).astype(int), probs[:, 0]),
        "per_class": {CLASSES[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                   "support": int(s[i])} for i in range(k)},
        "confusion": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
    }


def format_metrics(m: dict[str, Any]) -> str:
    lines = [f"{'class':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for c, v in m["per_class"].items():
        lines.append(f"{c:<22}{v['precision']:>10.3f}{v['recall']:>10.3f}{v['f1']:>10.3f}{v['support']:>9d}")
    lines.append(f"macro-F1 {m['macro_f1']:.4f}   AP(available) {m['ap_available']:.4f}   "
                 f"accuracy {m['accuracy']:.4f}   n={m['n']}")
    return "\n".join(lines)
