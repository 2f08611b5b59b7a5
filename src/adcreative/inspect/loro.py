"""Leave-one-renderer-out evaluation: the headline measure of an auditor that must judge images from a renderer it
has never seen, of products it has never seen.

For every renderer family F of a dataset, a fold trains on the *other* families' images of the training products
(validation on the other families' images of the validation products: early stopping, calibration and the
decision's thresholds never see F) and tests on F's images of the test products. Two more folds follow:

* **real products**: trained on every family but on no real product (JD cutouts, products-extra), tested on every
  image of the real products;
* **in-distribution**: the plain train/val/test split, every family on both sides (a development figure).

A family can also be kept out of every training run (``train_families``): it is then only ever tested, by models
trained on all the others: the measure of a renderer the project never trains on.

RFNet, the image-only model and a linear probe on frozen EfficientNet-Lite0 features are trained per fold on the
same cached encodings, once per seed; the tables give the median and range over seeds.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.types import CLASSES
from adcreative.inspect.data import EncodedSet

LORO, REAL, IN_DIST = "held-out renderer", "real products", "in-distribution"
MODELS = ("RFNet", "image-only", "linear probe")
# what each row reports: (key, header, format)
COLUMNS = (("ap_available", "AP(avail)", ".3f"), ("macro_f1", "macro-F1", ".3f"),
           ("recall_available_at_ship", "avail rec@0.5", ".3f"), ("ece", "ECE", ".3f"),
           ("precision_accept", "prec accept", ".3f"), ("human_rate", "human", ".1%"))


@dataclass
class Fold:
    """Row indices of one evaluation: what trains, what validates, what is tested."""

    name: str
    kind: str  # LORO | REAL | IN_DIST
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    held_out: str | None = None

    def describe(self, enc: EncodedSet) -> str:
        def prods(ix: np.ndarray) -> int:
            return len({enc.product_ids[i] for i in ix})

        return (f"{self.name}: train {len(self.train)} images / {prods(self.train)} products, val {len(self.val)} / "
                f"{prods(self.val)}, test {len(self.test)} / {prods(self.test)}")


def make_folds(renderers: Sequence[str], splits: Sequence[str], product_ids: Sequence[str], *,
               real: set[str] | frozenset[str] = frozenset(), families: Sequence[str] | None = None,
               train_families: Sequence[str] | None = None) -> list[Fold]:
    """The leave-one-renderer-out folds (one per family), then the real-products fold (when ``real`` names
    products present) and the in-distribution fold. Checked: no test product and no held-out family trains.

    ``train_families`` limits what any fold trains and validates on (default: every family in the data). A family
    outside it is test-only: its fold trains on all of ``train_families``, which is how a renderer kept back from
    every training run is measured, and how the same test images are judged by models trained on more or fewer
    families. The in-distribution fold then tests on the training families' images only."""
    r, sp, pid = np.asarray(renderers), np.asarray(splits), np.asarray(product_ids)
    present = sorted(set(renderers))
    fams = list(families) if families is not None else present
    trainable = list(train_families) if train_families is not None else present
    unknown = sorted((set(fams) | set(trainable)) - set(renderers))
    if unknown:
        raise InputError(f"no images of renderer famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)} in the data (it has {', '.join(present)})")
    if len(set(renderers)) < 2:
        raise InputError("leave-one-renderer-out needs images of at least two renderer families "
                         f"(the data has {', '.join(present) or 'none recorded'})")
    can_train = np.isin(r, trainable)
    folds = []
    for f in fams:
        other = can_train & (r != f)
        if not other.any():
            raise InputError(f"holding out {f} leaves no training family (training families: {', '.join(trainable)})")
        folds.append(Fold(f"{LORO}: {f}", LORO, np.flatnonzero(other & (sp == "train")),
                          np.flatnonzero(other & (sp == "val")), np.flatnonzero((r == f) & (sp == "test")), f))
    is_real = np.isin(pid, sorted(real))
    if is_real.any():
        folds.append(Fold(REAL, REAL, np.flatnonzero(can_train & ~is_real & (sp == "train")),
                          np.flatnonzero(can_train & ~is_real & (sp == "val")), np.flatnonzero(can_train & is_real)))
    folds.append(Fold(IN_DIST, IN_DIST, np.flatnonzero(can_train & (sp == "train")),
                      np.flatnonzero(can_train & (sp == "val")), np.flatnonzero(can_train & (sp == "test"))))
    for fold in folds:
        check_fold(fold, r, pid)
    return folds


def cap_fold(fold: Fold, labels: np.ndarray, *, max_train: int | None = None, max_val: int | None = None,
             seed: int = 0) -> Fold:
    """The fold with its training and validation rows cut to at most ``max_train``/``max_val``, the same share of
    every class kept (seeded; the test rows are never cut). What a CPU budget for many trainings allows."""
    rng = np.random.default_rng(seed)

    def cut(ix: np.ndarray, n: int | None) -> np.ndarray:
        if n is None or len(ix) <= n:
            return ix
        keep = []
        for c in np.unique(labels[ix]):
            rows = ix[labels[ix] == c]
            keep.append(rng.choice(rows, max(1, round(n * len(rows) / len(ix))), replace=False))
        return np.sort(np.concatenate(keep))

    return Fold(fold.name, fold.kind, cut(fold.train, max_train), cut(fold.val, max_val), fold.test, fold.held_out)


def check_fold(fold: Fold, renderers: np.ndarray, product_ids: np.ndarray) -> None:
    """Refuse a fold whose test products (or held-out family) appear in its training or validation rows."""
    seen = set(product_ids[fold.train]) | set(product_ids[fold.val])
    leak = sorted(set(product_ids[fold.test]) & seen)
    if leak:
        raise InputError(f"{fold.name}: test product(s) {', '.join(leak[:5])} also train or validate")
    if fold.held_out is not None and (fold.held_out in set(renderers[fold.train]) | set(renderers[fold.val])):
        raise InputError(f"{fold.name}: the held-out family trains or validates")
    for part in ("train", "val", "test"):
        if len(getattr(fold, part)) == 0:
            raise InputError(f"{fold.name}: no {part} images (each family needs train, val and test products)")


def real_products(samples: Sequence[Any], explicit: Sequence[str] = ()) -> set[str]:
    """The real products of a dataset's samples: ``explicit`` ids, plus those the manifest marks real (the sample's
    ``product_source`` is ``"real"``: a catalogue folder's cutout, not a procedural or sample SKU)."""
    out = set(explicit)
    for s in samples:
        if getattr(s, "product_source", "") == "real" or (s.params or {}).get("product_source") == "real":
            out.add(s.product_id)
    return out


# -- running the folds -------------------------------------------------------------------------------------
@dataclass
class Result:
    fold: str
    kind: str
    model: str
    seed: int
    metrics: dict[str, Any]
    seconds: float

    def value(self, key: str) -> float:
        m = self.metrics
        if key == "ece":
            return float(m.get("calibration", {}).get("ece", math.nan))
        if key in ("precision_accept", "human_rate"):
            return float(m.get("decision", {}).get(key, math.nan))
        return float(m.get(key, math.nan))


@dataclass
class LoroReport:
    results: list[Result] = field(default_factory=list)
    folds: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def rows(self, fold: str, model: str) -> list[Result]:
        return [r for r in self.results if r.fold == fold and r.model == model]

    def summary(self, fold: str, model: str, key: str) -> tuple[float, float, float]:
        """(median, min, max) over seeds (NaN when absent)."""
        v = [x for x in (r.value(key) for r in self.rows(fold, model)) if not math.isnan(x)]
        if not v:
            return math.nan, math.nan, math.nan
        return statistics.median(v), min(v), max(v)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "seeds": self.seeds, "folds": self.folds,
                "results": [r.__dict__ for r in self.results]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LoroReport:
        return cls(results=[Result(**r) for r in d["results"]], folds=list(d["folds"]), seeds=list(d["seeds"]),
                   config=dict(d.get("config", {})))


def merge_reports(reports: Sequence[LoroReport]) -> LoroReport:
    """One report from runs of the same setup on different seeds (e.g. one process per seed). Refused when
    their configs differ or a (fold, model, seed) appears twice: the medians would mix two setups."""
    if not reports:
        raise InputError("no reports to merge")
    first = _setup(reports[0].config)
    for r in reports[1:]:
        if _setup(r.config) != first:
            raise InputError("the reports were made with different configs; merge only seeds of one setup")
    out = LoroReport(folds=list(dict.fromkeys(f for r in reports for f in r.folds)), config=first)
    seen: set[tuple[str, str, int]] = set()
    for rep in reports:
        for res in rep.results:
            key = (res.fold, res.model, res.seed)
            if key in seen:
                raise InputError(f"{res.model} on {res.fold} with seed {res.seed} is in two reports")
            seen.add(key)
            out.results.append(res)
    out.seeds = sorted({s for r in reports for s in r.seeds})
    return out


def _setup(config: dict[str, Any]) -> dict[str, Any]:
    """A report's config without the training seed: one process per seed (``--seed N``) is the same setup, and
    each result carries its own seed."""
    train = {k: v for k, v in dict(config.get("train", {})).items() if k != "seed"}
    return {**config, "train": train} if "train" in config else dict(config)


def read_report(path: Path) -> LoroReport:
    """A report written by :func:`write_report` (its folder or its ``loro.json``)."""
    path = path / "loro.json" if path.is_dir() else path
    if not path.exists():
        raise InputError("no leave-one-renderer-out report (loro.json) here", source=path)
    return LoroReport.from_json(json.loads(path.read_text()))


def _evaluate_rfnet(model: Any, test: EncodedSet, kinds: Sequence[str] | None = None) -> dict[str, Any]:
    from adcreative.inspect.evaluate import judged_metrics
    from adcreative.inspect.metrics import encoded_outputs

    logits, ood = encoded_outputs(model, test, calibrated=False, ood=True)
    m = judged_metrics(test.labels.numpy(), logits, ood, model, test.placement.numpy(), test.renderers,
                       test.sources, kinds, products=test.product_ids)
    m.pop("confusion", None)
    return m


def _evaluate_probe(train: EncodedSet, val: EncodedSet, test: EncodedSet, seed: int,
                    feats: dict[str, np.ndarray]) -> dict[str, Any]:
    from adcreative.inspect.calibrate import calibration_metrics, fit_temperature, softmax
    from adcreative.inspect.evaluate import SHIP_THRESHOLD
    from adcreative.inspect.metrics import compute_metrics
    from adcreative.inspect.probe import train_probe

    probe, info = train_probe(train, val, seed=seed, features=(feats["train"], feats["val"]))
    t = fit_temperature(probe.logits(feats["val"]), val.labels.numpy())
    z = probe.logits(feats["test"])
    y = test.labels.numpy()
    probs = softmax(z, t)
    m = compute_metrics(y, probs)
    m.pop("confusion", None)
    m["recall_available_at_ship"] = float((probs[y == 0, 0] >= SHIP_THRESHOLD).mean()) if (y == 0).any() else math.nan
    m["calibration"] = calibration_metrics(z, y, t)
    m["probe"] = info
    return m


def run_loro(enc: EncodedSet, folds: Sequence[Fold], base_config: dict[str, Any], train_cfg: Any, *,
             seeds: Sequence[int] = (0,), models: Sequence[str] = MODELS,
             variants: dict[str, dict[str, Any]] | None = None, save_dir: Path | None = None,
             plots_dir: Path | None = None, log: Callable[[str], None] = print, progress: bool = True,
             on_result: Callable[[LoroReport], None] | None = None, warm_from: str | None = None,
             kinds: Sequence[str] | None = None) -> LoroReport:
    """Train and test every model on every fold for every seed. ``variants`` adds RFNet variants by name
    (config overrides, e.g. ablation flags; key ``"train"`` holds TrainConfig overrides). With ``save_dir`` the
    trained RFNet models are saved as ``save_dir/<fold>/<model>-s<seed>``; with ``plots_dir`` each trained model's
    first seed draws its PR curves, confusion matrix and reliability diagram under ``plots_dir/<fold>/<model>``.
    ``on_result`` sees the report grow. ``warm_from`` (a saved inspector's folder, or "default" for the shipped
    one): every RFNet starts from its weights (:func:`inspect.base.warm_start`) — a family that inspector trained
    on is then not held out, whatever the fold says. ``kinds`` (per row of ``enc``: how its defect was drawn,
    :func:`inspect.evaluate.drawn_kinds`) adds each RFNet result's ``by_kind``: the drawn kinds of the fold's test
    rows it ranks among the available images (:func:`inspect.metrics.kind_misses`)."""
    import dataclasses
    import functools

    import torch

    from adcreative.inspect.base import warm_start
    from adcreative.inspect.evaluate import slug
    from adcreative.inspect.model import RFNet, image_only
    from adcreative.inspect.probe import pooled_features
    from adcreative.inspect.train import calibrate_model, train_model

    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise InputError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    report = LoroReport(folds=[f.name for f in folds], seeds=list(seeds),
                        config={"model": base_config, "train": dataclasses.asdict(train_cfg),
                                "variants": variants or {}, "warm_start": warm_from})
    head = RFNet(**{**base_config, "use_product": False, "use_mask": False, "use_structure": False,
                    "use_text": False, "tokens": "head"})  # only its frozen head conv is used, to map sets once

    def rfnet(**over: Any) -> Any:
        net = RFNet(**{**base_config, **over})
        if warm_from is not None:
            warm_start(net, None if warm_from == "default" else warm_from)
        return net

    builders: dict[str, tuple[Callable[[], Any], Any]] = {}
    for name in models:
        if name == "RFNet":
            builders[name] = (rfnet, train_cfg)
        elif name == "image-only":
            builders[name] = (functools.partial(image_only, **base_config), train_cfg)
    for vname, over in (variants or {}).items():
        over = dict(over)
        tover = over.pop("train", {})
        builders[vname] = (functools.partial(rfnet, **over), dataclasses.replace(train_cfg, **tover))
    for fold in folds:
        log(fold.describe(enc))
        # the fold's rows as trunk maps ("block") and, once some model reads them, through the head conv ("head")
        sets: dict[str, tuple[EncodedSet, EncodedSet, EncodedSet]] = {
            "block": (enc.subset(fold.train), enc.subset(fold.val), enc.subset(fold.test))}

        feats = None
        if "linear probe" in models:
            tr, va, te = sets["block"]
            feats = {"train": pooled_features(tr), "val": pooled_features(va), "test": pooled_features(te)}
        for seed in seeds:
            for name, (build, tcfg) in builders.items():
                t0 = time.perf_counter()
                torch.manual_seed(seed)
                model = build()
                if model.tokens not in sets:
                    tr, va, te = (head.head_maps(x) for x in sets["block"])
                    sets[model.tokens] = (tr, va, te)
                tr, va, te = sets[model.tokens]
                cfg = dataclasses.replace(tcfg, seed=seed)
                res = train_model(model, tr, va, cfg, desc=f"{fold.held_out or fold.kind} {name} s{seed}",
                                  progress=progress)
                test_kinds = None if kinds is None else [kinds[i] for i in fold.test]
                calibrate_model(model, tr, va, cfg)
                if plots_dir is not None and seed == seeds[0]:
                    from adcreative.inspect.evaluate import evaluate_model

                    m = evaluate_model(model, te, out=plots_dir / slug(fold.name) / slug(name),
                                       title=f"{name}, {fold.name}", kinds=test_kinds)
                    m.pop("confusion", None)
                else:
                    m = _evaluate_rfnet(model, te, test_kinds)
                m["best_epoch"] = res.best_epoch
                m["val"] = res.best  # what early stopping (and any choice between variants) saw
                m["history"] = res.history  # per epoch (with an adversary: how well it still reads its target)
                if save_dir is not None:
                    model.save_pretrained(save_dir / slug(fold.name) / f"{slug(name)}-s{seed}",
                                          extra={"fold": fold.name, "seed": seed, "test": _brief(m)})
                report.results.append(Result(fold.name, fold.kind, name, seed, m, time.perf_counter() - t0))
                log(f"  {name:<14} seed {seed}: " + _brief_line(m) + f"  ({time.perf_counter() - t0:.0f}s)")
                if on_result is not None:
                    on_result(report)
            if feats is not None:
                t0 = time.perf_counter()
                m = _evaluate_probe(*sets["block"], seed, feats)
                report.results.append(Result(fold.name, fold.kind, "linear probe", seed, m, time.perf_counter() - t0))
                log(f"  {'linear probe':<14} seed {seed}: " + _brief_line(m))
                if on_result is not None:
                    on_result(report)
        sets.clear()
        feats = None
    return report


def _brief(m: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {k: m[k] for k in ("ap_available", "macro_f1", "recall_available_at_ship", "accuracy", "n") if k in m}
    if m.get("calibration"):
        out["ece"] = m["calibration"]["ece"]
    if m.get("decision"):
        out.update({k: m["decision"][k] for k in ("precision_accept", "human_rate", "precision_reject")})
    return out


def _brief_line(m: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.3f}" for k, v in _brief(m).items() if k != "n")


# -- tables and figures -------------------------------------------------------------------------------------
def _cell(report: LoroReport, fold: str, model: str, key: str, fmt: str) -> str:
    med, lo, hi = report.summary(fold, model, key)
    if math.isnan(med):
        return "–"
    if len(report.rows(fold, model)) > 1 and hi > lo:
        return f"{med:{fmt}} [{lo:{fmt}}–{hi:{fmt}}]"
    return f"{med:{fmt}}"


def model_names(report: LoroReport) -> list[str]:
    return list(dict.fromkeys(r.model for r in report.results))


def format_report(report: LoroReport, *, markdown: bool = False) -> str:
    """Held-out families first, then real products, then in-distribution: per model the median [range] over
    seeds of AP(available), macro-F1, available recall at P ≥ 0.5, ECE, precision of auto-accepted, share sent to
    humans, then per-class F1 (medians)."""
    abbrev = {"available": "avail", "unsuitable": "unsuit", "space_mismatch": "space", "size_mismatch": "size",
              "indistinctiveness": "indist", "shape_hallucination": "halluc"}
    heads = ["fold", "model", *[h for _, h, _ in COLUMNS], *[f"F1 {abbrev[c]}" for c in CLASSES]]
    body = []
    for fold in report.folds:
        for model in model_names(report):
            if not report.rows(fold, model):
                continue
            cells = [fold, model, *[_cell(report, fold, model, k, f) for k, _, f in COLUMNS]]
            for c in CLASSES:
                v = [r.metrics["per_class"][c]["f1"] for r in report.rows(fold, model)
                     if r.metrics["per_class"][c]["support"]]
                cells.append(f"{statistics.median(v):.3f}" if v else "–")
            body.append(cells)
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [heads, *body]) for i in range(len(heads))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*heads), "-" * (sum(widths) + 2 * (len(widths) - 1))]
    lines += [fmt.format(*row) for row in body]
    return "\n".join(lines)


def format_decision_table(report: LoroReport, model: str = "RFNet", *, markdown: bool = False) -> str:
    """Per fold, for ``model``: calibration (temperature, ECE before → after, and the ECE a perfectly calibrated
    model would show on as many images, ``calibrate.ece_if_calibrated``) and the three-way decision on the
    test images (how many were auto-accepted, their precision and the precision they show at 95 %
    (:func:`.decision.precision_bound`), precision of auto-rejected, share sent to humans, share of available images
    auto-accepted), median [range] over seeds."""
    def med(fold: str, get: Callable[[Result], float], fmt: str) -> str:
        v = [x for x in (get(r) for r in report.rows(fold, model)) if not math.isnan(x)]
        if not v:
            return "–"
        m, lo, hi = statistics.median(v), min(v), max(v)
        return f"{m:{fmt}} [{lo:{fmt}}–{hi:{fmt}}]" if len(v) > 1 and hi > lo else f"{m:{fmt}}"

    def cal(key: str) -> Callable[[Result], float]:
        return lambda r: float(r.metrics.get("calibration", {}).get(key, math.nan))

    def dec(key: str) -> Callable[[Result], float]:
        return lambda r: float(r.metrics.get("decision", {}).get(key, math.nan))

    def accepted(r: Result) -> float:
        return float(r.metrics.get("decision", {}).get("counts", {}).get("accept", math.nan))

    def floor(r: Result) -> float:  # the ECE a calibrated model would show on this fold's test images
        return float(r.metrics.get("calibration", {}).get("ece_if_calibrated", {}).get("median", math.nan))

    heads = ["fold", "T", "ECE before", "ECE after", "if calibrated", "accepted", "prec accept", "shown (95%)",
             "prec reject", "human", "avail accepted"]
    body = [[f, med(f, cal("temperature"), ".2f"), med(f, cal("ece_before"), ".3f"), med(f, cal("ece"), ".3f"),
             med(f, floor, ".3f"),
             med(f, accepted, ".0f"), med(f, dec("precision_accept"), ".3f"), med(f, dec("precision_accept_low"), ".3f"),
             med(f, dec("precision_reject"), ".3f"), med(f, dec("human_rate"), ".1%"),
             med(f, dec("available_auto_accepted"), ".1%")]
            for f in report.folds if report.rows(f, model)]
    if markdown:
        return "\n".join(["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
                         + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [heads, *body]) for i in range(len(heads))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*heads), "-" * (sum(widths) + 2 * (len(widths) - 1))]
                     + [fmt.format(*r) for r in body])


def plot_report(report: LoroReport, path: Path, key: str = "ap_available", target: float | None = 0.90) -> Path:
    """Grouped bars per fold and model: the median over seeds, whiskers from the lowest to the highest seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adcreative.report.plots import plain, save_figure

    models = model_names(report)
    x = np.arange(len(report.folds))
    w = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(report.folds) + 2), 4.4))
    for j, m in enumerate(models):
        s = [report.summary(f, m, key) for f in report.folds]
        med = np.array([v[0] for v in s])
        err = np.array([[v[0] - v[1] for v in s], [v[2] - v[0] for v in s]])
        ax.bar(x + (j - (len(models) - 1) / 2) * w, np.nan_to_num(med), w, yerr=np.nan_to_num(err), capsize=3,
               label=m)
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target}")
    ax.set_xticks(x, [plain(f.replace(": ", ":\n")) for f in report.folds], fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(dict((k, h) for k, h, _ in COLUMNS).get(key, key))
    ax.set_title(f"Leave-one-renderer-out: {key} (median over seeds {', '.join(map(str, report.seeds))})")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path, dpi=110)
    return path


def format_kind_table(report: LoroReport, model: str = "RFNet", top: int = 5) -> str:
    """Markdown: per fold, the ``top`` drawn kinds ``model`` misses most (median share over seeds); "" without kinds."""
    lines = ["| fold | family | class | kind | n | share above the available median |", "|---|---|---|---|---|---|"]
    for fold in report.folds:
        shares: dict[tuple[str, str, str], list[float]] = {}
        sizes: dict[tuple[str, str, str], int] = {}
        for r in report.rows(fold, model):
            for k in r.metrics.get("by_kind", []):
                key = (k["family"], k["label"], k["kind"])
                shares.setdefault(key, []).append(float(k["above_available_median"]))
                sizes[key] = int(k["n"])
        ranked = sorted(shares.items(), key=lambda kv: -statistics.median(kv[1]))[:top]
        for (fam, label, kind), v in ranked:
            lines.append(f"| {fold} | {fam} | {label.replace('_', ' ')} | {kind} | {sizes[(fam, label, kind)]} | "
                         f"{statistics.median(v):.0%} [{min(v):.0%}–{max(v):.0%}] |")
    return "\n".join(lines) if len(lines) > 2 else ""


def write_report(report: LoroReport, out: Path) -> dict[str, Path]:
    """``out/loro.md`` (the table and the setup), ``out/loro.json`` (every result), ``out/loro_ap.png`` and
    ``out/loro_macro_f1.png``."""
    from adcreative.core.imageio import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "loro.json", "md": out / "loro.md"}
    atomic_write_text(paths["json"], json.dumps(report.to_json(), indent=1, default=float))
    paths["ap_png"] = plot_report(report, out / "loro_ap.png", "ap_available")
    paths["f1_png"] = plot_report(report, out / "loro_macro_f1.png", "macro_f1", target=0.85)
    md = ["# Leave-one-renderer-out evaluation", "",
          f"Seeds {', '.join(map(str, report.seeds))}; cells are the median [lowest–highest] over seeds. Held-out "
          "rows train on every other renderer family (training products only) and test on the held-out family's "
          "images of test products; *real products* trains on no real product and tests on all of them; "
          "*in-distribution* is the plain split. Available recall is at P(available) ≥ 0.5; ECE after "
          "temperature scaling fitted on the fold's validation images; *if calibrated* is the ECE a perfectly "
          "calibrated model with the same probabilities would show on as many images (labels drawn from its own "
          "probabilities): on a few hundred images an ECE is never near 0; *prec accept* / *human* are the three-way "
          "decision's precision of auto-accepted images and share sent to humans.", "",
          format_report(report, markdown=True), "",
          "## Calibration and the three-way decision (RFNet, test images of each fold)", "",
          format_decision_table(report, markdown=True), "",
          "![AP(available)](loro_ap.png)", "", "![macro-F1](loro_macro_f1.png)", ""]
    kinds = format_kind_table(report)
    if kinds:
        md += ["## Drawn defect kinds each fold misses most (RFNet)", "",
               "Share of a kind's test images ranked above the median P(available) of the same family's available "
               "images: median [lowest–highest] over seeds, the five worst per fold.", "", kinds, ""]
    from adcreative.inspect.evaluate import slug

    for fold in report.folds:
        rel = Path(slug(fold)) / "rfnet" / "reliability.png"
        if (out / rel).exists():
            md += [f"![reliability, {fold}]({rel.as_posix()})", ""]
    atomic_write_text(paths["md"], "\n".join(md))
    return paths


def merge_into(folders: Sequence[Path], out: Path) -> tuple[LoroReport, dict[str, Path]]:
    """Merge the reports in ``folders`` (see :func:`merge_reports`) and write the result to ``out``; the
    per-fold figures (PR curves, confusion, reliability) are those of the first folder's seed, copied along."""
    import shutil

    from adcreative.inspect.evaluate import slug

    report = merge_reports([read_report(f) for f in folders])
    out.mkdir(parents=True, exist_ok=True)
    for fold in report.folds:
        src = folders[0] / slug(fold)
        if src.is_dir() and src.resolve() != (out / slug(fold)).resolve():
            shutil.copytree(src, out / slug(fold), dirs_exist_ok=True)
    return report, write_report(report, out)
