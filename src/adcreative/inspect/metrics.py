"""RFNet's metrics: per-class precision/recall/F1, macro-F1, accuracy and AP with *available* as the positive
class, on cached encodings. Shared by training (validation every epoch) and evaluation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from adcreative.core.types import CLASSES
from adcreative.inspect.calibrate import with_real_bias, with_renderer_calibration
from adcreative.inspect.data import EncodedSet
from adcreative.inspect.decision import BOUND_CONFIDENCE, real_mask


@torch.no_grad()
def predict_encoded(model: Any, enc: EncodedSet, batch_size: int = 128) -> np.ndarray:
    """Calibrated class probabilities (N, 6) for cached encodings."""
    logits, _ = encoded_outputs(model, enc, batch_size=batch_size)
    return torch.softmax(torch.from_numpy(logits), -1).numpy()


@torch.no_grad()
def encoded_outputs(model: Any, enc: EncodedSet, *, calibrated: bool = True, ood: bool = False,
                    batch_size: int = 128, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, 6) and, per row, the fused features (N, dim) — or with ``ood`` the out-of-distribution
    scores (N,) — for cached encodings, in eval mode. ``calibrated`` logits carry the model's real-product bias
    on the rows of real products (``enc.sources``) and each renderer's own calibration on its rows
    (``enc.renderers``), as :meth:`RFNet.judge` gives them. ``rows``: only these rows,
    in this order, read in place (``enc.subset(rows)`` gives the same outputs but copies them first)."""
    model.eval()
    pick = torch.arange(len(enc)) if rows is None else torch.as_tensor(np.asarray(rows, dtype=np.int64))
    zs, fs = [], []
    for i in range(0, len(pick), batch_size):
        idx = pick[i:i + batch_size]
        z, f = model.outputs(enc.batch(idx), calibrated=calibrated)
        zs.append(z.numpy())
        fs.append(model.ood_score(f).numpy() if ood else f.numpy())
    if not zs:
        return np.zeros((0, len(CLASSES)), np.float32), np.zeros((0,), np.float32)
    z = np.concatenate(zs)
    bias = getattr(model, "real_bias", None)
    if calibrated and bias is not None:
        sources = enc.sources if rows is None else [enc.sources[int(i)] for i in pick]
        z = with_real_bias(z, real_mask(sources), bias)
    own = getattr(model, "renderer_calibration", None)
    if calibrated and own:
        renderers = enc.renderers if rows is None else [enc.renderers[int(i)] for i in pick]
        z = with_renderer_calibration(z, renderers, own)
    return z, np.concatenate(fs)


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


def format_ece_floor(ece: float, floor: dict[str, float]) -> str:
    """One line: a measured ECE beside the ECE a perfectly calibrated model would show on as many images
    (``calibrate.ece_if_calibrated``)."""
    line = (f"a perfectly calibrated model would show ECE {floor['median']:.3f} [{floor['q05']:.3f}–"
            f"{floor['q95']:.3f}] on these {floor['n']} images")
    share = floor.get("share_at_or_above")
    if share is None:
        return line
    verdict = ("more miscalibration than sampling explains" if share < 0.05 else "within what sampling explains")
    return f"{line}; {share:.0%} of its draws reach {ece:.3f}: {verdict}"


def format_metrics(m: dict[str, Any]) -> str:
    lines = [f"{'class':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for c, v in m["per_class"].items():
        lines.append(f"{c:<22}{v['precision']:>10.3f}{v['recall']:>10.3f}{v['f1']:>10.3f}{v['support']:>9d}")
    lines.append(f"macro-F1 {m['macro_f1']:.4f}   AP(available) {m['ap_available']:.4f}   "
                 f"accuracy {m['accuracy']:.4f}   n={m['n']}")
    if "recall_available_at_ship" in m:
        lines.append(f"available recall at P(available) ≥ 0.5: {m['recall_available_at_ship']:.4f}")
    cal = m.get("calibration")
    if cal:
        lines.append(f"calibration: T={cal['temperature']:.3f}  NLL {cal['nll_before']:.4f} → {cal['nll']:.4f}  "
                     f"ECE {cal['ece_before']:.4f} → {cal['ece']:.4f}  ECE(available) "
                     f"{cal['ece_available_before']:.4f} → {cal['ece_available']:.4f}")
        if cal.get("ece_if_calibrated"):
            lines.append(f"  {format_ece_floor(cal['ece'], cal['ece_if_calibrated'])}")
        if cal.get("ece_by_product"):
            b = cal["ece_by_product"]
            lines.append(f"  over resampled products ({b['products']} here, each with its images): ECE "
                         f"{b['median']:.3f} [{b['q05']:.3f}–{b['q95']:.3f}]")
    d = m.get("decision")
    if d:
        c = d["counts"]
        lines.append(f"decision: accept {c['accept']}  human {c['human']}  reject {c['reject']}  "
                     f"(human {d['human_rate']:.1%}; precision accepted {d['precision_accept']:.4f}"
                     f"{_bound(d, 'precision_accept_low')}, rejected {d['precision_reject']:.4f}"
                     f"{_bound(d, 'precision_reject_low')}; available auto-accepted "
                     f"{d['available_auto_accepted']:.1%})")
    pl = m.get("placement")
    if pl and pl["searched"]:
        lines.append(f"placement: {pl['with_mask']} images came with a mask; for {pl['searched']} the product was "
                     f"looked for in the image and not found in {pl['not_found']} (those go to a human)")
    return "\n".join(lines)


def _bound(d: dict[str, Any], key: str) -> str:
    """What the images show of an observed precision, e.g. " (≥ 0.934 at 95 %)" (none in reports saved before)."""
    v = d.get(key)
    return "" if v is None or math.isnan(v) else f" (≥ {v:.3f} at {BOUND_CONFIDENCE:.0%})"


def format_parts(parts: dict[str, dict[str, dict[str, float]]]) -> str:
    """``inspect eval``'s table of a mixture's parts (:func:`.evaluate.part_metrics`): AP and macro-F1 of the
    model and of each part alone, per group of rows."""
    names = list(next(iter(parts.values())))
    lines = [f"{'rows':<16}{'n':>6}  " + "".join(f"{n + ' AP / F1':>26}" for n in names)]
    for group, by in parts.items():
        n = next(iter(by.values()))["n"]
        lines.append(f"{group:<16}{n:>6}  " + "".join(
            f"{by[k]['ap_available']:>17.3f} / {by[k]['macro_f1']:.3f}" for k in names))
    return "\n".join(lines)


MIN_KIND = 5  # defective images a drawn kind needs before its miss rate is reported


def kind_misses(y: np.ndarray, p_available: np.ndarray, kinds: list[str], families: list[str],
                min_n: int = MIN_KIND) -> list[dict[str, Any]]:
    """Which ways of drawing a defect the auditor misses. For each (renderer family, class, drawn kind) with at
    least ``min_n`` defective images: the share of them scored above the median P(available) of that family's
    available images (an auditor that ranks well keeps this near 0), and their mean P(available). Rows with an
    empty kind are skipped; the worst kinds come first. AP says *how much* ranking is lost, this says *where*."""
    y, p = np.asarray(y), np.asarray(p_available, np.float64)
    fam, kind = np.asarray(families, dtype=object), np.asarray(kinds, dtype=object)
    rows = []
    for f in sorted(set(fam.tolist())):
        in_f = fam == f
        avail = p[in_f & (y == 0)]
        if len(avail) == 0:
            continue
        median = float(np.median(avail))
        for c in range(1, len(CLASSES)):
            for k in sorted({str(v) for v in kind[in_f & (y == c)] if v}):
                m = in_f & (y == c) & (kind == k)
                if m.sum() < min_n:
                    continue
                rows.append({"family": f, "label": CLASSES[c], "kind": k, "n": int(m.sum()),
                             "above_available_median": float((p[m] > median).mean()),
                             "mean_p_available": float(p[m].mean())})
    rows.sort(key=lambda r: (-r["above_available_median"], -r["mean_p_available"]))
    return rows


def format_kind_misses(rows: list[dict[str, Any]], top: int = 12) -> str:
    """The worst ``top`` drawn kinds as a table (``above``: share ranked above the family's available median)."""
    lines = [f"{'family':<12}{'class':<20}{'kind':<24}{'n':>5}{'above':>8}{'P(avail)':>9}"]
    for r in rows[:top]:
        lines.append(f"{r['family'][:11]:<12}{r['label'][:19]:<20}{r['kind'][:23]:<24}{r['n']:>5}"
                     f"{r['above_available_median']:>8.1%}{r['mean_p_available']:>9.3f}")
    return "\n".join(lines)
