"""Evaluation: per-class precision/recall/F1, AP with *available* as the positive class, macro-F1,
PR curves and the confusion matrix as PNG, and the baselines/ablation table (the paper's Tables 1–2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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


def plot_pr_curves(y: np.ndarray, probs: np.ndarray, path: Path, title: str = "RFNet") -> Path:
    """One-vs-rest PR curves; *available* (what decides shipping without a human) drawn bold."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    from adcreative.report.plots import save_figure

    fig, ax = plt.subplots(figsize=(6, 5))
    for i, c in enumerate(CLASSES):
        pos = (y == i).astype(int)
        if pos.sum() == 0:
            continue
        prec, rec, _ = precision_recall_curve(pos, probs[:, i])
        ap = average_precision(pos, probs[:, i])
        ax.plot(rec, prec, lw=2.5 if i == 0 else 1.2, label=f"{c} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title}: precision–recall (one vs rest)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=110)
    return path


def plot_confusion(confusion: list[list[int]], path: Path, title: str = "RFNet") -> Path:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adcreative.report.plots import save_figure

    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    short = [c.replace("_", "\n") for c in CLASSES]
    ax.set_xticks(range(len(CLASSES)), short, fontsize=7)
    ax.set_yticks(range(len(CLASSES)), short, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"{title}: confusion matrix")
    save_figure(fig, path, dpi=110)
    return path


def evaluate_model(model: Any, enc: EncodedSet, out: Path | None = None, title: str = "RFNet") -> dict[str, Any]:
    """Metrics on labelled encodings; with ``out``, also ``pr_curves.png``, ``confusion.png``, ``metrics.json``."""
    import json

    from adcreative.core.imageio import atomic_write_text

    keep = (enc.labels >= 0).nonzero().flatten().numpy()
    enc = enc.subset(keep)
    y = enc.labels.numpy()
    probs = predict_encoded(model, enc)
    m = compute_metrics(y, probs)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        m["pr_curves"] = str(plot_pr_curves(y, probs, out / "pr_curves.png", title))
        m["confusion_png"] = str(plot_confusion(m["confusion"], out / "confusion.png", title))
        atomic_write_text(out / "metrics.json", json.dumps(m, indent=2))
    return m


# -- baselines / ablations -------------------------------------------------------------------------------
ABLATIONS: dict[str, dict[str, bool]] = {
    "RFNet (full)": {},
    "image-only": {"use_product": False, "use_mask": False, "use_structure": False, "use_text": False},
    "RFNet − product": {"use_product": False},
    "RFNet − mask": {"use_mask": False},
    "RFNet − structure": {"use_structure": False},
    "RFNet − text": {"use_text": False},
}


@dataclass
class TableRow:
    name: str
    ap_available: float
    macro_f1: float
    accuracy: float
    per_class_f1: dict[str, float]
    seconds: float


def baselines_table(train: EncodedSet, val: EncodedSet, test: EncodedSet, base_config: dict[str, Any],
                    train_cfg: Any, variants: dict[str, dict[str, bool]] | None = None,
                    progress: bool = True, save_dir: Path | None = None) -> list[TableRow]:
    """Train every variant on the same split and cached encodings; evaluate each on the same test set
    (with ``save_dir``, each trained variant is saved to ``save_dir/<slug>`` with its eval PNGs)."""
    import time

    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import train_model

    rows = []
    for name, flags in (variants or ABLATIONS).items():
        t0 = time.perf_counter()
        model = RFNet(**{**base_config, **flags})
        train_model(model, train, val, train_cfg, desc=name, progress=progress)
        sub = save_dir / slug(name) if save_dir is not None else None
        m = evaluate_model(model, test, out=(sub / "eval") if sub is not None else None, title=name)
        if sub is not None:
            model.save_pretrained(sub, extra={"variant": name, "test": {k: m[k] for k in ("macro_f1", "ap_available",
                                                                                            "accuracy", "n")}})
        rows.append(TableRow(name, m["ap_available"], m["macro_f1"], m["accuracy"],
                             {c: v["f1"] for c, v in m["per_class"].items()}, time.perf_counter() - t0))
    return rows


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower().replace("−", "no")).strip("-").replace("--", "-")


def format_table(rows: list[TableRow]) -> str:
    abbrev = {"available": "avail", "unsuitable": "unsuit", "space_mismatch": "space", "size_mismatch": "size",
              "indistinctiveness": "indist", "shape_hallucination": "halluc"}
    head = f"{'model':<20}{'AP(avail)':>10}{'macro-F1':>10}{'acc':>7}" + "".join(f"{abbrev[c]:>8}" for c in CLASSES)
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name:<20}{r.ap_available:>10.4f}{r.macro_f1:>10.4f}{r.accuracy:>7.3f}"
                     + "".join(f"{r.per_class_f1[c]:>8.3f}" for c in CLASSES))
    return "\n".join(lines)
