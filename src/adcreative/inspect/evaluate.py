"""Evaluation: per-class precision/recall/F1, AP with *available* as the positive class, macro-F1,
PR curves and the confusion matrix as PNG, and the baselines/ablation table (the paper's Tables 1–2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.types import CLASSES, TARGET_REJECT
from adcreative.inspect.calibrate import softmax
from adcreative.inspect.data import EncodedSet
from adcreative.inspect.datasets.formats import Sample
from adcreative.inspect.metrics import average_precision, compute_metrics


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


SHIP_THRESHOLD = 0.5  # P(available) at which a two-way auditor ships an image (recurrent generation's default)


def judged_logits(logits: np.ndarray, model: Any, sources: Sequence[str] | None,
                  renderers: Sequence[str] | None = None) -> np.ndarray:
    """Raw logits → the calibrated logits the model judges with: divided by its temperature, plus its
    real-product bias on the rows of real products (``sources``; None: every row is a real product's), then each
    renderer's own calibration on its rows (``renderers``; None: none applies), as :meth:`RFNet.judge` and
    ``encoded_outputs(calibrated=True)`` give them. Metrics of a model with a bias measured without it described
    a model nobody runs (``inspect eval`` did so until round 28)."""
    from adcreative.inspect.calibrate import with_real_bias, with_renderer_calibration
    from adcreative.inspect.decision import real_mask

    z = np.asarray(logits, np.float64) / model.temperature
    real = np.ones(len(z), bool) if sources is None else real_mask(sources)
    z = with_real_bias(z, real, getattr(model, "real_bias", None))
    return with_renderer_calibration(z, renderers, getattr(model, "renderer_calibration", None))


def judged_metrics(y: np.ndarray, logits: np.ndarray, ood: np.ndarray, model: Any,
                   placement: np.ndarray | None = None, renderers: Sequence[str] | None = None,
                   sources: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
                   products: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything measured on labelled images from the model's raw logits and OOD scores: the classification
    metrics on the probabilities the model judges with (:func:`judged_logits`: its temperature and
    real-product bias), available recall at the shipping threshold, calibration (NLL, ECE before and after the
    temperature and the bias) and, when the model has a decision, what its three bands did (with
    ``placement``, an image whose product was not found goes to a human, and with ``renderers`` each image is
    accepted at its renderer family's threshold and with ``sources`` an image of a real product no lower than the
    real-product floor, as in ``judge``). With ``kinds`` (how each image's defect was drawn, :func:`drawn_kinds`)
    also ``by_kind``, the drawn kinds it ranks among the available images (:func:`.metrics.kind_misses`). With
    ``products`` (each row's product id) the calibration also holds ``ece_by_product``, the ECE's spread over
    resampled products (``calibrate.ece_by_product``)."""
    from adcreative.inspect.calibrate import (
        available_calibration_error,
        calibration_metrics,
        ece_by_product,
        ece_if_calibrated,
        expected_calibration_error,
        nll,
    )
    from adcreative.inspect.decision import decision_metrics

    z = judged_logits(logits, model, sources, renderers)
    p64 = softmax(z)
    probs = p64.astype(np.float32)
    m = compute_metrics(y, probs)
    pos = y == 0
    m["recall_available_at_ship"] = float((probs[pos, 0] >= SHIP_THRESHOLD).mean()) if pos.any() else float("nan")
    m["calibration"] = calibration_metrics(logits, y, model.temperature) if len(y) else {}
    own = bool(renderers is not None and set(renderers) & set(getattr(model, "renderer_calibration", None) or {}))
    if len(y) and (getattr(model, "real_bias", None) is not None or own):  # "after": what judge gives
        m["calibration"].update(nll=nll(z, y), ece=expected_calibration_error(p64, y),
                                ece_available=available_calibration_error(p64, y),
                                real_bias=getattr(model, "real_bias", None) is not None, renderer_calibration=own)
    if len(y):  # how far below the measured ECE sampling alone would leave a calibrated model on these rows
        m["calibration"]["ece_if_calibrated"] = ece_if_calibrated(p64, m["calibration"]["ece"])
        if products is not None:
            m["calibration"]["ece_by_product"] = ece_by_product(p64, y, products)
    if model.decision is not None:
        m["decision"] = {**decision_metrics(model.decision.bands(probs[:, 0], ood, placement, renderers, sources), pos),
                         "thresholds": model.decision.to_dict()}
    if kinds is not None:
        from adcreative.inspect.metrics import kind_misses

        m["by_kind"] = kind_misses(y, probs[:, 0], list(kinds), list(renderers or [""] * len(y)))
    if placement is not None:
        from adcreative.inspect.decision import not_found

        pl = np.asarray(placement, np.float64)
        searched = np.isfinite(pl) & (pl < 1.0)  # 1: a mask came with the image; NaN: no cutout to look for
        m["placement"] = {"with_mask": int((pl == 1.0).sum()), "searched": int(searched.sum()),
                          "not_found": int(not_found(pl).sum())}
    return m


def part_metrics(model: Any, enc: EncodedSet, probs: np.ndarray, batch_size: int = 128
                 ) -> dict[str, dict[str, dict[str, float]]]:
    """AP(available) and macro-F1 of the model as it judges (``probs``: calibrated, with its real-product
    bias) and of each part it mixes, alone (:meth:`RFNet.part_log_probs`): over all rows and, where the data
    has both, over real products' and drawn products' rows apart. Which part ranks which products is what
    decides a mixture's weight: on unseen real products the fused network ranks far worse than the cue expert,
    on drawn SKUs it does not (docs/inspect.md, round 28)."""
    import torch

    from adcreative.inspect.decision import real_mask

    y = enc.labels.numpy()
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(enc), batch_size):
        batch = enc.batch(torch.arange(i, min(i + batch_size, len(enc))))
        for name, lp in model.part_log_probs(batch).items():
            parts.setdefault(name, []).append(lp.exp().numpy())
    scored = {"model": probs, **{name: np.concatenate(v) for name, v in parts.items()}}
    judged_real = real_mask(enc.sources)
    drawn = ~judged_real
    real = judged_real & np.array([s != "" for s in enc.sources], bool)  # an unknown source is judged as a
    # real product's, but not counted among them here
    groups = {"all": np.ones(len(y), bool)}
    if real.any() and drawn.any():
        groups.update({"real products": real, "drawn products": drawn})
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group, rows in groups.items():
        out[group] = {}
        for name, p in scored.items():
            m = compute_metrics(y[rows], p[rows])
            out[group][name] = {"ap_available": m["ap_available"], "macro_f1": m["macro_f1"],
                                "n": int(rows.sum())}
    return out


def evaluate_model(model: Any, enc: EncodedSet, out: Path | None = None, title: str = "RFNet",
                   kinds: Sequence[str] | None = None, write_json: bool = True) -> dict[str, Any]:
    """Metrics on labelled encodings (see :func:`judged_metrics`; ``kinds``: per row of ``enc``); with ``out``, also
    ``pr_curves.png``, ``confusion.png``, ``reliability.png`` and (unless ``write_json`` is false: the caller adds
    to the metrics and writes them once) ``metrics.json``."""
    import json

    from adcreative.core.imageio import atomic_write_text
    from adcreative.inspect.calibrate import plot_reliability
    from adcreative.inspect.metrics import encoded_outputs
    from adcreative.report.plots import plain

    title = plain(title)  # it may name a renderer family from the data
    keep = (enc.labels >= 0).nonzero().flatten().numpy()
    if len(keep) < len(enc):  # a subset is a copy (GBs for a large test split): only when some rows have no label
        enc = enc.subset(keep)
    y = enc.labels.numpy()
    logits, ood = encoded_outputs(model, enc, calibrated=False, ood=True)
    m = judged_metrics(y, logits, ood, model, enc.placement.numpy(), enc.renderers, enc.sources,
                       None if kinds is None else [kinds[i] for i in keep], products=enc.product_ids)
    probs = softmax(judged_logits(logits, model, enc.sources, enc.renderers))
    if len(y) and getattr(model, "cue_expert", 0.0) > 0:  # a mixture: what each of its parts ranks, alone
        m["parts"] = part_metrics(model, enc, probs)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        m["pr_curves"] = str(plot_pr_curves(y, probs, out / "pr_curves.png", title))
        m["confusion_png"] = str(plot_confusion(m["confusion"], out / "confusion.png", title))
        m["reliability_png"] = str(plot_reliability(y, probs, out / "reliability.png", before=softmax(logits),
                                                    title=title))
        if write_json:
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

    import torch

    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import calibrate_model, train_model

    rows = []
    for name, flags in (variants or ABLATIONS).items():
        t0 = time.perf_counter()
        torch.manual_seed(train_cfg.seed)  # each variant's initial weights from the run's seed, not torch's random one
        model = RFNet(**{**base_config, **flags})
        train_model(model, train, val, train_cfg, desc=name, progress=progress)
        calibrate_model(model, train, val, train_cfg)
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


def evaluate_folder(model: str | Path | None, data: Path, *, split: str = "test", out: Path | None = None,
                    cache: bool = True) -> dict[str, Any]:
    """Evaluate a saved inspector (None: the shipped default) on one split (or ``all``) of a dataset folder,
    overall and per renderer family (``by_renderer`` when the data has several), and where the manifest says how
    each defect was drawn, the kinds it misses most (``by_kind``, :func:`~adcreative.inspect.metrics.kind_misses`);
    writes PR curves, confusion matrix, reliability diagram, ``kinds.png`` and metrics.json to ``out`` (default:
    beside the model)."""
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.data import encode_splits, encoding_config
    from adcreative.inspect.datasets.formats import read_dataset

    net = load_inspector(model)
    samples = read_dataset(data)
    enc = encode_splits(data, None if split == "all" else [split], encoding_config(net.config), cache=cache,
                        samples=samples)
    out = out or (data / "eval" if model is None else Path(model) / f"eval-{data.name}-{split}")
    families = sorted(set(enc.renderers))
    by = {}
    if len(families) > 1:
        for fam in families:
            sub = enc.subset([i for i, r in enumerate(enc.renderers) if r == fam])
            by[fam] = evaluate_model(net, sub, out=out / f"renderer-{slug(fam)}", title=f"{fam}")
    kinds = drawn_kinds(samples, enc.ids)
    m = evaluate_model(net, enc, out=out, title=Path(model).name if model else "default RFNet",
                       kinds=kinds if any(kinds) else None, write_json=False)
    if m.get("by_kind"):
        m["by_kind_png"] = str(plot_kind_misses(m["by_kind"], out / "kinds.png"))
    else:  # no kind recorded, or none with enough images: nothing to draw
        m.pop("by_kind", None)
    if by:
        m["by_renderer"] = by
    import json

    from adcreative.core.imageio import atomic_write_text

    atomic_write_text(out / "metrics.json", json.dumps(m, indent=2))  # once, and the same as what is returned
    return m


def drawn_kinds(samples: Sequence[Sample], ids: Sequence[str]) -> list[str]:
    """How each image's defect was drawn, from the manifest (``params.kind``, and whether the auditor was handed the
    damaged source itself as the cutout); "" where the dataset does not say (RF1M's label.txt, available images)."""
    by_id = {}
    for s in samples:
        k = s.params.get("kind") if isinstance(s.params, dict) else None
        if not k or k == "clean" or s.label == "available":
            by_id[s.id] = ""
            continue
        own_source = s.product is not None and s.product.stem == s.id  # dataset synth's own damaged cutout
        by_id[s.id] = f"{k} (bad source)" if own_source or s.params.get("bad_source") else str(k)
    return [by_id.get(i, "") for i in ids]


def plot_kind_misses(rows: list[dict[str, Any]], path: Path, top: int = 20) -> Path:
    """A bar per drawn kind (the worst ``top``): the share of its images ranked above the available median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adcreative.report.plots import plain, save_figure

    rows = rows[:top]
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(4, len(rows)) + 1.2))
    names = [plain(f"{r['family']} · {r['label'].replace('_', ' ')}: {r['kind']} (n={r['n']})") for r in rows]
    ax.barh(range(len(rows)), [r["above_available_median"] for r in rows], color="#c0504d")
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share above the median P(available) of the family's available images")
    ax.set_title("Drawn defect kinds the auditor misses most")
    save_figure(fig, path, dpi=110)
    return path


def _calibration_config(target_accept: float, target_reject: float, ood_quantile: float,
                        decision_groups: str | None, decision_min_group: int | None, real_bias: bool = False) -> Any:
    """The TrainConfig that :func:`calibrate_model` reads: the decision's targets and groups (None: the defaults),
    and whether to fit the real-product bias."""
    from adcreative.inspect.decision import DECISION_GROUPS, MIN_GROUP
    from adcreative.inspect.train import TrainConfig

    return TrainConfig(target_accept=target_accept, target_reject=target_reject, ood_quantile=ood_quantile,
                       decision_groups=DECISION_GROUPS if decision_groups is None else decision_groups,
                       decision_min_group=MIN_GROUP if decision_min_group is None else decision_min_group,
                       real_bias=real_bias)


def calibrate_folder(model: str | Path | None, data: Path, out: Path, *, target_accept: float = 0.99,
                     target_reject: float = TARGET_REJECT, ood_quantile: float = 0.99,
                     cache: bool = True, decision_groups: str | None = None,
                     decision_min_group: int | None = None, real_bias: bool = False) -> dict[str, Any]:
    """Calibrate a saved inspector on a dataset folder (temperature and thresholds on val, the OOD model on
    train) and save the calibrated copy to ``out``; returns the fitted values. ``decision_groups`` (default
    "family") makes the thresholds meet their targets on each renderer family of val too (:func:`calibrate_model`)."""
    import json

    from adcreative.core.errors import InputError
    from adcreative.inspect.base import default_model_dir, load_inspector
    from adcreative.inspect.data import encode_splits, encoding_config
    from adcreative.inspect.datasets.formats import read_dataset
    from adcreative.inspect.train import calibrate_model

    net = load_inspector(model)
    samples = read_dataset(data)
    if not any(s.split == "val" for s in samples):
        raise InputError("calibration needs a 'val' split", source=data)
    enc = encode_splits(data, ("train", "val"), encoding_config(net.config), cache=cache, samples=samples)
    tr, va = enc.split("train"), enc.split("val")
    cfg = _calibration_config(target_accept, target_reject, ood_quantile, decision_groups, decision_min_group,
                              real_bias)
    cal = calibrate_model(net, tr if len(tr) else va, va, cfg)
    src = Path(model) if model is not None else default_model_dir()
    extra = dict(json.loads((src / "config.json").read_text()).get("_extra", {}))
    extra["calibration"] = {**{k: v for k, v in cal.items() if k != "decision"}, "data": str(data)}
    net.save_pretrained(out, extra=extra)
    return cal


def calibrate_renderer_folder(model: str | Path | None, data: Path, out: Path, *, renderer: str | None = None,
                              bias: bool = False, cache: bool = True) -> dict[str, Any]:
    """Fit one renderer's own temperature, and with ``bias`` a per-class bias beside it
    (``calibrate.fit_renderer_calibration``), on the labelled images it drew
    in a dataset folder — every split: reviewed images exported with ``dataset export-labels`` — and save the
    model with it to ``out``, everything else as it was; a reliability diagram of those images before and after
    (out of fold) goes beside it. ``renderer`` None: the folder's only renderer family. Returns what was fitted."""
    import json

    from adcreative.core.errors import InputError
    from adcreative.inspect.base import default_model_dir, load_inspector
    from adcreative.inspect.calibrate import fit_renderer_calibration, plot_reliability
    from adcreative.inspect.data import encode_splits, encoding_config, renderer_family
    from adcreative.inspect.datasets.formats import read_dataset
    from adcreative.inspect.metrics import encoded_outputs
    from adcreative.report.plots import plain

    net = load_inspector(model)
    samples = read_dataset(data)
    found = sorted({renderer_family(s) for s in samples})
    if renderer is None:
        if len(found) != 1:
            raise InputError(f"the folder holds images of {len(found)} renderer families "
                             f"({', '.join(repr(f) for f in found)}): name one with --renderer", source=data)
        renderer = found[0]
    if not renderer.strip():
        raise InputError("the images do not say which renderer drew them (no renderer or generator in the "
                         "manifest): name it with --renderer only for a folder that records it", source=data)
    if renderer not in found:
        raise InputError(f"no images of renderer {renderer!r} (the folder has {', '.join(map(repr, found))})",
                         source=data)
    enc = encode_splits(data, None, encoding_config(net.config), cache=cache, samples=samples)
    rows = np.flatnonzero((np.asarray(enc.renderers, dtype=object) == renderer) & (enc.labels.numpy() >= 0))
    logits, _ = encoded_outputs(net, enc, calibrated=False, rows=rows)
    z = judged_logits(logits, net, [enc.sources[i] for i in rows])  # as judged today: without a calibration of its own
    y = enc.labels.numpy()[rows]
    try:
        fit = fit_renderer_calibration(z, y, [enc.product_ids[i] for i in rows], bias=bias)
    except ValueError as e:
        raise InputError(f"renderer {renderer!r}: {e}", source=data) from None
    previous = (net.renderer_calibration or {}).get(renderer)
    net.set_renderer_calibration(renderer, fit["temperature"], fit["bias"])
    src = Path(model) if model is not None else default_model_dir()
    extra = dict(json.loads((src / "config.json").read_text()).get("_extra", {}))
    summary = {k: v for k, v in fit.items() if k not in ("oof", "before")}
    extra["renderer_calibration"] = {**extra.get("renderer_calibration", {}), renderer: {**summary, "data": str(data)}}
    net.save_pretrained(out, extra=extra)
    png = plot_reliability(y, fit["oof"], out / f"reliability_{_file_part(renderer)}.png", before=fit["before"],
                           title=plain(f"RFNet on renderer {renderer}, out of fold"))
    return {**summary, "renderer": renderer, "previous": previous, "reliability_png": str(png)}


def _file_part(name: str) -> str:
    """A renderer family's name as part of a file name (it comes from the data)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:64] or "renderer"


def ensemble_folder(members: Sequence[str | Path], data: Sequence[Path], out: Path, *, splits: str = "same",
                    target_accept: float = 0.99, target_reject: float = TARGET_REJECT, ood_quantile: float = 0.99,
                    cache: bool = True, decision_groups: str | None = None,
                    decision_min_group: int | None = None, real_bias: bool = False,
                    ood_style: str | None = None) -> dict[str, Any]:
    """A seed ensemble of saved inspectors (:func:`adcreative.inspect.model.ensemble`, with ``ood_style`` when
    given), calibrated on the dataset folders' validation split as :func:`calibrate_folder` does (several folders are
    one dataset, as in training: ``splits`` "first" gives a product the first folder's split), saved to ``out``;
    returns the fitted values."""
    from adcreative.core.errors import InputError
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.data import encode_folders, encoding_config
    from adcreative.inspect.model import ensemble
    from adcreative.inspect.train import calibrate_model

    net = ensemble([load_inspector(m) for m in members], ood_style=ood_style)
    enc, _ = encode_folders(list(data), encoding_config(net.config), splits=splits, cache=cache, mmap=True)
    tr, va = enc.split("train"), enc.split("val")
    if not len(va):
        raise InputError("calibration needs a 'val' split", source=data[0])
    cfg = _calibration_config(target_accept, target_reject, ood_quantile, decision_groups, decision_min_group,
                              real_bias)
    cal = calibrate_model(net, tr if len(tr) else va, va, cfg)
    extra = {"members": [str(m) for m in members],
             "calibration": {**{k: v for k, v in cal.items() if k != "decision"}, "data": [str(d) for d in data]}}
    net.save_pretrained(out, extra=extra)
    return cal


def run_loro_folder(data: Path | Sequence[Path], base_config: dict[str, Any], train_cfg: Any, *, seeds: list[int],
                    models: list[str], families: list[str] | None = None, real: list[str] | None = None,
                    train_families: list[str] | None = None, max_train: int | None = None,
                    max_val: int | None = None, save_dir: Path | None = None, log: Any = print,
                    checkpoint: Path | None = None, splits: str = "same", warm_from: str | None = None) -> Any:
    """Leave-one-renderer-out on one or more dataset folders (see :mod:`adcreative.inspect.loro`): encodes each
    once (cached in the folder, memory-mapped), cuts the folds by product and renderer family, and trains/tests
    every model per fold and seed (``max_train``/``max_val`` cap each fold's training and validation rows, class
    shares kept; ``train_families`` keeps the other families test-only). Several folders are one dataset: a
    product must have the same split in each (e.g. another family rendered later with the same products and
    seed), or with ``splits`` "first" takes the first folder's (:func:`inspect.data.encode_folders`). With
    ``checkpoint`` the partial report is written there after every result."""
    from adcreative.inspect.data import encode_folders, encoding_config
    from adcreative.inspect.loro import cap_fold, make_folds, real_products, run_loro, write_report

    folders = [data] if isinstance(data, Path) else list(data)
    enc, samples_of = encode_folders(folders, encoding_config(base_config), splits=splits, mmap=True)
    reals: set[str] = set()
    for samples in samples_of:
        reals |= real_products(samples, real or [])
    folds = make_folds(enc.renderers, enc.splits, enc.product_ids, real=reals, families=families,
                       train_families=train_families)
    labels = enc.labels.numpy()
    folds = [cap_fold(f, labels, max_train=max_train, max_val=max_val) for f in folds]
    log(f"{len(enc)} images, {len(set(enc.product_ids))} products, renderer families "
        f"{', '.join(sorted(set(enc.renderers)))}"
        + (f" (training on {', '.join(train_families)} only)" if train_families else "")
        + f"; real products: {', '.join(sorted(reals)) or 'none'}")

    def save(report: Any) -> None:
        if checkpoint is not None:
            write_report(report, checkpoint)

    # how each row's defect was drawn, in the rows' order (each folder's samples, folder after folder)
    kinds = [k for samples in samples_of for k in drawn_kinds(samples, [s.id for s in samples])]
    return run_loro(enc, folds, base_config, train_cfg, seeds=seeds, models=models, save_dir=save_dir,
                    plots_dir=checkpoint, log=log, on_result=save, warm_from=warm_from,
                    kinds=kinds if len(kinds) == len(enc) and any(kinds) else None)


def run_baselines(data: Path, base_config: dict[str, Any], train_cfg: Any, names: list[str], *,
                  save_dir: Path | None = None) -> tuple[list[TableRow], EncodedSet]:
    """Every named variant trained and evaluated on the same split and cached encodings of ``data``;
    returns the rows and the test set they were measured on."""
    from adcreative.core.errors import InputError
    from adcreative.inspect.data import encoding_config, load_training_data
    from adcreative.inspect.train import split_sets

    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise InputError(f"unknown variant {unknown[0]!r}; choose from {', '.join(ABLATIONS)}")
    enc = load_training_data(data, None, encoding_config(base_config))
    tr, va, te = split_sets(enc, consume=True)  # frees the whole set as it is cut
    if te is None or va is None:
        raise InputError("baselines need train, val and test splits", source=data)
    rows = baselines_table(tr, va, te, base_config, train_cfg, {n: ABLATIONS[n] for n in names}, save_dir=save_dir)
    return rows, te
