"""Calibration of RFNet's probabilities: temperature scaling fitted on validation (Guo et al., ICML 2017),
negative log-likelihood, expected calibration error and the reliability diagram.

A temperature T divides the logits before the softmax: T > 1 softens an over-confident model, T < 1 sharpens an
under-confident one. It never changes the arg-max, so accuracy and macro-F1 stay as they were, while AP(available)
may move slightly (the order of P(available) across images can change when other classes' logits differ).
NumPy/SciPy only; the model applies the fitted T itself (``RFNet.temperature``).

**Real-product bias.** Images of real products (``decision.is_drawn`` false: every product a user imports) are
judged by a model that trained on a handful of real products among hundreds of drawn SKUs, and it calls an unseen
real product's images *unsuitable* far more often than they are: on validation rows of real products it never
trained on, mean P(unsuitable) 0.31 against a true share of 0.17 (docs/inspect.md, twenty-third round). A per-class
logit bias ``b`` (vector scaling's bias terms for one group, Guo et al. 2017), fitted by maximum likelihood on the
validation rows of real products after the temperature, is added to their calibrated logits
(:func:`with_real_bias`); drawn products' images are untouched. ``b`` is centred (a constant shift changes nothing).
It is opt-in (``TrainConfig.real_bias``, ``--real-bias``). Alone on E5g it raised real products' macro-F1 and
lowered their ECE on fresh renders but let more of their defective images be auto-accepted; the shipped defaults
since the twenty-fourth round (E4r, then E6 from the thirty-first; four members each) carry one.

**A renderer's own temperature.** A temperature fitted on the training renderers' validation images does not carry
to a renderer the model never saw: the shipped E6 wants a further T' of 1.45 on the `lowkey` family it never trained
on, where it is over-confident (ECE 0.161), and 0.59–1.07 on the five it knows (docs/inspect.md, fortieth round).
Once reviewers have labelled some of a new renderer's images (``dataset export-labels``), ``inspect
calibrate-renderer`` fits that renderer's T' on them (:func:`fit_renderer_calibration`: :func:`fit_temperature`,
whose prior on log T keeps a few dozen images from moving it far) and saves it in the model
(``RFNet(renderer_calibration=...)``). Images of that renderer are then judged at softmax(log p / T'), p what the
model gives without it (temperature and real-product bias included): :func:`with_renderer_calibration`, applied
last (after the real-product bias) wherever the model judges. T' changes no verdict's class, only how sure the
model says it is — and so which band an image falls in. From 100 reviewed images it brought the shipped model's
ECE on `lowkey` from 0.168 and 0.155 to 0.074 on two report seeds (forty-first round). With ``--bias`` a per-class
bias b is fitted with T' (softmax(log p / T' + b), :func:`fit_temperature_and_bias`): it can change verdicts, for a
renderer whose good images the model files under one wrong class (docs/protocols/round43.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.types import CLASSES

T_BOUNDS = (0.05, 20.0)
N_BINS = 15
# what validation needs before a real-product bias is fitted: rows of real products, and of each class among them
# (a class without rows would take an unbounded negative bias)
MIN_REAL_ROWS = 200
MIN_REAL_CLASS = 10


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)  # type: ignore[no-any-return]


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under softmax(logits / T)."""
    z = np.asarray(logits, np.float64) / temperature
    m = z.max(1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(1))
    return float(np.mean(lse - z[np.arange(len(y)), y]))


PRIOR_SIGMA = 0.5  # the prior on log T: T within e^±1 of 1 at two standard deviations


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, prior_sigma: float = PRIOR_SIGMA) -> float:
    """The T in ``T_BOUNDS`` of highest posterior: the NLL of ``y`` plus a normal prior on log T centred at 0
    (searched on log T, which both are smooth in). With thousands of validation images the prior is negligible;
    with a few dozen that the model happens to classify perfectly it keeps T from collapsing towards 0 (a model
    sharpened to certainty by a lucky validation set is over-confident on everything else)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, np.int64)
    if len(y) == 0:
        raise ValueError("no labelled samples to fit a temperature on")
    lo, hi = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    weight = 1.0 / (2 * prior_sigma ** 2 * len(y))  # the prior's share of the *mean* NLL

    def objective(t: float) -> float:
        return nll(logits, y, float(np.exp(t))) + weight * t * t

    res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def fit_real_bias(logits: np.ndarray, y: np.ndarray) -> list[float] | None:
    """The centred per-class bias ``b`` of highest likelihood of ``y`` under softmax(logits + b) — ``logits``
    already divided by the temperature, the rows those of real products — or None when there are fewer than
    ``MIN_REAL_ROWS`` rows or a class has fewer than ``MIN_REAL_CLASS`` (the NLL is convex in b)."""
    from scipy.optimize import minimize

    z = np.asarray(logits, np.float64)
    y = np.asarray(y, np.int64)
    if len(y) < MIN_REAL_ROWS or np.bincount(y, minlength=z.shape[1]).min() < MIN_REAL_CLASS:
        return None
    onehot = np.eye(z.shape[1])[y]

    def objective(b: np.ndarray) -> tuple[float, np.ndarray]:
        p = softmax(z + b)
        return nll(z + b, y), (p - onehot).mean(0)

    res = minimize(objective, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B")
    b = res.x - res.x.mean()
    return [float(v) for v in b]


def with_real_bias(logits: np.ndarray, real: np.ndarray | Sequence[bool], bias: list[float] | None) -> np.ndarray:
    """Calibrated logits (or log-probabilities) with the real-product bias added to the rows of real products."""
    if bias is None:
        return logits
    out = np.array(logits, copy=True)
    out[np.asarray(real, bool)] += np.asarray(bias, out.dtype)
    return out


def with_real_bias_probs(probs: np.ndarray, real: np.ndarray, bias: list[float] | None) -> np.ndarray:
    """Calibrated probabilities with the real-product bias applied to the rows of real products (log p is the
    logits up to a per-row constant, which the softmax ignores)."""
    if bias is None:
        return probs
    return softmax(with_real_bias(np.log(np.maximum(probs, 1e-30)), real, bias)).astype(probs.dtype)


def checked_renderer_calibration(cal: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """Renderer calibrations as a model keeps them: ``{renderer: {"temperature": T', "bias": [6 numbers] or
    None}}``, non-empty renderer names, a positive finite temperature, a finite centred-or-not bias per class."""
    if cal is None:
        return None
    if not isinstance(cal, dict):
        raise ValueError(f"renderer_calibration must map renderer names to calibrations, got {cal!r}")
    out = {}
    for name, c in cal.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"renderer_calibration: a renderer name must be a non-empty string, got {name!r}")
        if not isinstance(c, dict) or set(c) - {"temperature", "bias"}:
            raise ValueError(f"renderer_calibration[{name!r}] must be {{'temperature': T, 'bias': [...] or None}}, "
                             f"got {c!r}")
        t = c.get("temperature", 1.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t) or not t > 0:
            raise ValueError(f"renderer_calibration[{name!r}] temperature must be a positive finite number, got {t!r}")
        b = c.get("bias")
        if b is not None:
            if (not isinstance(b, (list, tuple)) or len(b) != len(CLASSES)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in b)):
                raise ValueError(f"renderer_calibration[{name!r}] bias must be {len(CLASSES)} finite numbers, got {b!r}")
            b = [float(v) for v in b]
        out[name] = {"temperature": float(t), "bias": b}
    return out


def with_renderer_calibration(logits: np.ndarray, renderers: Sequence[str] | None,
                              cal: dict[str, dict[str, Any]] | None) -> np.ndarray:
    """Calibrated logits (or log-probabilities) with the rows of each renderer that has a calibration of its own
    divided by its temperature and moved by its bias (module doc); other rows, and all rows without ``renderers``,
    are untouched."""
    if not cal or renderers is None:
        return logits
    if len(renderers) != len(logits):
        raise ValueError(f"one renderer per row: {len(renderers)} renderers for {len(logits)} rows")
    names = {r for r in renderers if r in cal}
    if not names:
        return logits
    out = np.array(logits, np.float64, copy=True)
    for name in names:
        rows = np.array([r == name for r in renderers], bool)
        out[rows] /= cal[name]["temperature"]
        if cal[name].get("bias") is not None:
            out[rows] += np.asarray(cal[name]["bias"], np.float64)
    return out.astype(np.asarray(logits).dtype)


def with_renderer_calibration_probs(probs: np.ndarray, renderers: Sequence[str] | None,
                                    cal: dict[str, dict[str, Any]] | None) -> np.ndarray:
    """Calibrated probabilities with each renderer's own calibration applied to its rows (log p is the logits up to
    a per-row constant, which dividing, adding a bias and the softmax all leave a per-row constant)."""
    if not cal or renderers is None or not any(r in cal for r in renderers):
        return probs
    z = with_renderer_calibration(np.log(np.maximum(np.asarray(probs, np.float64), 1e-30)), renderers, cal)
    return softmax(z).astype(probs.dtype)


RENDERER_BIAS_L2 = 0.1  # weight of |b|²/2 beside the mean NLL (docs/protocols/round43.md: chosen on s306 only)


def fit_temperature_and_bias(logits: np.ndarray, y: np.ndarray, *, l2: float = RENDERER_BIAS_L2,
                             prior_sigma: float = PRIOR_SIGMA) -> tuple[float, list[float]]:
    """T and a centred per-class bias b of highest posterior under softmax(logits / T + b): the mean NLL, the
    prior on log T of :func:`fit_temperature` and an L2 penalty on b (vector scaling with one temperature, Guo et
    al. 2017; the penalty keeps a class with few reviewed images from taking an unbounded bias). Convex in b for
    a fixed T; searched jointly by L-BFGS from T = 1, b = 0."""
    from scipy.optimize import minimize

    z = np.asarray(logits, np.float64)
    y = np.asarray(y, np.int64)
    if len(y) == 0:
        raise ValueError("no labelled samples to fit a temperature on")
    onehot = np.eye(z.shape[1])[y]
    weight = 1.0 / (prior_sigma ** 2 * len(y))  # d/d(log T) of the prior's share of the mean NLL, per log T

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        lt, b = float(np.clip(w[0], np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1]))), w[1:]
        q = z / np.exp(lt) + b
        g = softmax(q) - onehot
        value = nll(q, y) + 0.5 * weight * lt * lt + 0.5 * l2 * float(b @ b)
        grad_lt = -float((g * (z / np.exp(lt))).sum(1).mean()) + weight * lt
        return value, np.concatenate([[grad_lt], g.mean(0) + l2 * b])

    res = minimize(objective, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B",
                   bounds=[(np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1]))] + [(None, None)] * z.shape[1])
    b = res.x[1:] - res.x[1:].mean()
    return float(np.exp(res.x[0])), [float(v) for v in b]


MIN_RENDERER_ROWS = 30  # reviewed images of a renderer below which its own temperature is refused
RENDERER_FOLDS = 5


def fit_renderer_calibration(logits: np.ndarray, y: np.ndarray, groups: Sequence[str], *, bias: bool = False,
                             folds: int = RENDERER_FOLDS) -> dict[str, Any]:
    """A renderer's own calibration on its reviewed images (``logits``: as the model judges them without it): its
    temperature T' (:func:`fit_temperature`), or with ``bias`` T' and a per-class bias
    (:func:`fit_temperature_and_bias`), and what it does on images it was not fitted on: ``folds``-fold
    cross-validation with the images of a product (``groups``) kept in one fold (by image when there are fewer
    products than folds), each fold's images judged by the calibration fitted on the others. Returns
    ``temperature`` and ``bias`` (None without), ``oof`` (the out-of-fold probabilities), ``before`` (the
    probabilities without it), the NLL, both ECEs and macro-F1 before → after on those out-of-fold predictions, and
    the ECE a calibrated model would show on as many images (:func:`ece_if_calibrated`)."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(y, np.int64)
    n = len(y)
    if n < MIN_RENDERER_ROWS:
        raise ValueError(f"{n} reviewed images: a renderer's own calibration needs at least {MIN_RENDERER_ROWS}")
    names, g = np.unique(np.asarray(list(groups), dtype=object).astype(str), return_inverse=True)
    by_product = len(names) >= folds
    order = np.random.default_rng(0).permutation(len(names) if by_product else n)
    fold_of_unit = np.empty(len(order), np.int64)
    fold_of_unit[order] = np.arange(len(order)) % folds
    fold = fold_of_unit[g] if by_product else fold_of_unit

    def fit(rows: np.ndarray) -> tuple[float, list[float] | None]:
        return fit_temperature_and_bias(z[rows], y[rows]) if bias else (fit_temperature(z[rows], y[rows]), None)

    def apply(rows: np.ndarray, t: float, b: list[float] | None) -> np.ndarray:
        return softmax(z[rows] / t + (np.asarray(b) if b is not None else 0.0))

    oof = np.zeros_like(z)
    temps = []
    for k in range(folds):
        test = fold == k
        t, b = fit(~test)
        temps.append(t)
        oof[test] = apply(test, t, b)
    before = softmax(z)
    t_all, b_all = fit(np.ones(n, bool))
    ece_oof = expected_calibration_error(oof, y)
    return {"temperature": t_all, "bias": b_all, "n": n, "folds": folds, "by_product": bool(by_product),
            "fold_temperatures": temps, "oof": oof, "before": before,
            "nll_before": nll(z, y), "nll": float(np.mean(-np.log(np.maximum(oof[np.arange(n), y], 1e-300)))),
            "ece_before": expected_calibration_error(before, y), "ece": ece_oof,
            "ece_available_before": available_calibration_error(before, y),
            "ece_available": available_calibration_error(oof, y),
            "macro_f1_before": _macro_f1(y, before), "macro_f1": _macro_f1(y, oof),
            "ece_if_calibrated": ece_if_calibrated(oof, ece_oof)}


def _macro_f1(y: np.ndarray, probs: np.ndarray) -> float:
    """Macro-F1 of the arg-max over the classes present in ``y``, as ``metrics.compute_metrics`` counts it."""
    from sklearn.metrics import f1_score

    return float(f1_score(y, probs.argmax(1), labels=np.unique(y), average="macro", zero_division=0))


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Each confidence's equal-width bin on [0, 1] (1.0 falls in the last)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)  # type: ignore[no-any-return]


def _binned_ece(idx: np.ndarray, conf: np.ndarray, right: np.ndarray, n_bins: int) -> float:
    """The ECE of rows already binned (``idx``, :func:`_bin_index`): Σ_bins |Σ right − Σ confidence| / N, which is
    Σ_bins n·|accuracy − mean confidence| / N."""
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    right_sum = np.bincount(idx, weights=right, minlength=n_bins)
    return float(np.abs(right_sum - conf_sum).sum() / max(1, len(idx)))


def _bins(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> list[tuple[float, float, float, int]]:
    """(lower edge, mean confidence, accuracy, count) per equal-width confidence bin that holds samples."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = _bin_index(conf, n_bins)
    out = []
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            out.append((float(edges[b]), float(conf[sel].mean()), float(correct[sel].mean()), int(sel.sum())))
    return out


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label ECE: Σ_bins |accuracy − mean confidence| weighted by the bin's share of samples."""
    if len(y) == 0:
        return float("nan")
    conf = probs.max(1)
    correct = (probs.argmax(1) == y).astype(np.float64)
    return float(sum(n * abs(acc - c) for _, c, acc, n in _bins(conf, correct, n_bins)) / len(y))


def available_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of P(available) as a binary forecast: the probability the three-way decision thresholds."""
    if len(y) == 0:
        return float("nan")
    p = probs[:, 0]
    pos = (y == 0).astype(np.float64)
    return float(sum(n * abs(acc - c) for _, c, acc, n in _bins(p, pos, n_bins)) / len(y))


CONSISTENCY_DRAWS = 200  # label draws behind the ECE a calibrated model would show (ece_if_calibrated)


def ece_if_calibrated(probs: np.ndarray, measured: float | None = None, *, draws: int = CONSISTENCY_DRAWS,
                      n_bins: int = N_BINS, seed: int = 0) -> dict[str, float]:
    """The top-label ECE that a perfectly calibrated model with these probabilities would show on this many images:
    each image's label is drawn from its own predicted distribution, ``draws`` times (consistency resampling,
    Bröcker & Smith 2007). An ECE measured on a few hundred images is never 0 even for a calibrated model, and
    the binned estimate is biased upwards; this is its floor at this sample size and these confidences. Returns
    the median and the 5 % / 95 % quantiles over draws and, with ``measured``, the share of draws at or above it
    (small: more miscalibration than sampling explains)."""
    p = np.asarray(probs, np.float64)
    if len(p) == 0:
        return {"median": float("nan"), "q05": float("nan"), "q95": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    cum = np.cumsum(p, 1)
    cum[:, -1] = 1.0  # rounding must not leave a draw past the last class
    # the confidences, and so the bins, are the same in every draw: only which images are right changes
    conf, pred = p.max(1), p.argmax(1)
    idx = _bin_index(conf, n_bins)
    out = np.empty(draws)
    for i in range(draws):
        right = ((rng.random(len(p))[:, None] > cum).sum(1) == pred).astype(np.float64)
        out[i] = _binned_ece(idx, conf, right, n_bins)
    res = {"median": float(np.median(out)), "q05": float(np.quantile(out, 0.05)),
           "q95": float(np.quantile(out, 0.95)), "n": len(p)}
    if measured is not None:
        res["share_at_or_above"] = float((out >= measured).mean())
    return res


BY_PRODUCT_DRAWS = 200


def ece_by_product(probs: np.ndarray, y: np.ndarray, products: Sequence[str], *, draws: int = BY_PRODUCT_DRAWS,
                   n_bins: int = N_BINS, seed: int = 0) -> dict[str, float] | None:
    """How much the ECE depends on which products the images are of: the ECE over ``draws`` resamples of the
    products with replacement (each with all its images; a cluster bootstrap). Images of one product are not
    independent, and :func:`ece_if_calibrated` counts images: on held-out renderers, two seeds' 19 test products
    gave one model's ECE 0.053 and 0.034 on one family (docs/inspect.md, forty-sixth round). Returns the median
    and the 5 % / 95 % quantiles and the number of products; None with fewer than two products, or none recorded
    (an empty ``products``)."""
    p = np.asarray(probs, np.float64)
    y = np.asarray(y, np.int64)
    if len(products) == 0:
        return None
    if len(products) != len(y):
        raise ValueError(f"one product per row: {len(products)} products for {len(y)} rows")
    names, g = np.unique(np.asarray(list(products), dtype=object).astype(str), return_inverse=True)
    if len(names) < 2:
        return None
    rows = [np.flatnonzero(g == k) for k in range(len(names))]
    conf = p.max(1)  # each row's confidence, bin and verdict are the same in every resample: computed once
    right = (p.argmax(1) == y).astype(np.float64)
    idx = _bin_index(conf, n_bins)
    rng = np.random.default_rng(seed)
    out = np.empty(draws)
    for i in range(draws):
        pick = np.concatenate([rows[k] for k in rng.integers(0, len(names), len(names))])
        out[i] = _binned_ece(idx[pick], conf[pick], right[pick], n_bins)
    return {"median": float(np.median(out)), "q05": float(np.quantile(out, 0.05)),
            "q95": float(np.quantile(out, 0.95)), "products": len(names)}


def calibration_metrics(logits: np.ndarray, y: np.ndarray, temperature: float) -> dict[str, float]:
    """NLL and both ECEs before (T = 1) and after calibration."""
    before, after = softmax(logits), softmax(logits, temperature)
    return {"temperature": float(temperature),
            "nll_before": nll(logits, y), "nll": nll(logits, y, temperature),
            "ece_before": expected_calibration_error(before, y), "ece": expected_calibration_error(after, y),
            "ece_available_before": available_calibration_error(before, y),
            "ece_available": available_calibration_error(after, y)}


def plot_reliability(y: np.ndarray, probs: np.ndarray, path: Path, *, before: np.ndarray | None = None,
                     title: str = "RFNet") -> Path:
    """Reliability diagrams: top-label confidence vs accuracy, and P(available) vs the available rate, with the
    uncalibrated curves (``before``) dashed beside the calibrated ones; bars count the samples per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adcreative.report.plots import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    panels: list[tuple[Any, str, Any]] = [
        (axes[0], "top-label confidence", lambda p: (p.max(1), (p.argmax(1) == y).astype(float))),
        (axes[1], f"P({CLASSES[0]})", lambda p: (p[:, 0], (y == 0).astype(float)))]
    for ax, name, fn in panels:
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":")
        for p, style, label in ((before, "--", "before"), (probs, "-", "calibrated")):
            if p is None:
                continue
            conf, hit = fn(p)
            bins = _bins(conf, hit, N_BINS)
            ece = sum(n * abs(a - c) for _, c, a, n in bins) / max(1, len(y))
            ax.plot([b[1] for b in bins], [b[2] for b in bins], style, marker="o", ms=3,
                    label=f"{label} (ECE {ece:.3f})")
        # conf and bins are the calibrated curve's (the loop ends on it). What a calibrated model's curve would do
        # by chance: 5-95 % of the binomial around each bin's confidence (consistency bars, Bröcker & Smith 2007)
        from scipy.stats import binom

        for _, c, _, n in bins:
            lo, hi = binom.ppf(0.05, n, c) / n, binom.ppf(0.95, n, c) / n
            ax.plot([c, c], [lo, hi], color="grey", lw=3, alpha=0.35, solid_capstyle="butt")
        ax.plot([], [], color="grey", lw=3, alpha=0.35, label="90 % of a calibrated model's bins")
        counts, edges = np.histogram(conf, bins=N_BINS, range=(0, 1))
        ax2 = ax.twinx()
        ax2.bar(edges[:-1], counts, width=1 / N_BINS, align="edge", alpha=0.15, color="tab:blue")
        ax2.set_yticks([])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(name)
        ax.set_ylabel("observed frequency")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: reliability (n={len(y)})")
    save_figure(fig, path, dpi=110)
    return path
