"""Leave-one-renderer-out screening of cue sets with the cue expert alone (docs/inspect.md, thirty-fourth round).

The cue expert is boosted trees on the measured cues (inspect/cue_trees.py), so a cue set can be judged on held-out
renderer families in seconds once every image's cues are measured, before any RFNet is trained on it:

    python scripts/cue_loro.py encode DATASET CUES.npz [--set 7] [--workers 2]   # every image's cues, once
    python scripts/cue_loro.py loro CUES.npz [...] [--sets 6,7]                  # one table per file
    python scripts/cue_loro.py loro CUES.npz --rows-from OTHER.npz [...]         # training rows of other seeds too
    python scripts/cue_loro.py kinds CUES.npz [--set 7]                           # which defect kinds cost AP
    python scripts/cue_loro.py calib CUES.npz [--set 7]                           # calibration off the families

Each fold trains on the other families' ``train`` split, keeps the rounds with the lowest NLL on their ``val`` split
(class-weighted, depth 3, as the shipped cue expert) and tests on the held-out family's ``test`` split, whose
products no fold trained on. A set's columns are picked by name from the encoded set, so any set whose cues the
encoded one computes can be compared on the same measurements.

``--rows-from`` also trains on the other families' ``train`` and ``val`` rows of other encoded files (other seeds:
other drawn SKUs, the same families), and still tests on the first file's held-out family. The sample and JD
products are in every seed, and which split each falls in depends on the seed, so a product in the first file's
``test`` split can be a training product of another seed: those rows are dropped, or the held-out family's test
products would not be unseen (docs/inspect.md, thirty-seventh round, where pooled readings first missed this).

``kinds`` says where a held-out family's AP(available) is lost (docs/inspect.md, thirty-fifth round): each family is
held out in turn and its validation and test products scored by the fold's trees, then ``inspect eval``'s kind table
(:func:`adcreative.inspect.metrics.kind_misses`) lists each drawn defect kind (``params.kind``: a hole, a giant
product, a stray reflection...) with the share of its images scored above the median P(available) of that family's
good images.

``calib`` asks how a held-out family's calibration fares (docs/inspect.md, thirty-ninth round): the fold's
temperature and three-way decision thresholds (accept 0.99, reject 0.98 precision) are fitted either on the other
families' ``val`` rows, as ``inspect train`` fits the temperature (the thresholds here pooled over those rows;
the shipped decision also holds them per family), or on out-of-family predictions of those rows (for each
training family G, trees that trained on neither G nor the held-out family predict G's ``val`` rows): the
miscalibration a model shows on a family it never saw. It needs three families or more.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Mapping, Sequence
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from adcreative.core.types import CLASSES


def _measure(args: tuple[object, str]) -> np.ndarray:
    from adcreative.core.errors import InputError
    from adcreative.inspect.cues import observe
    from adcreative.inspect.data import load_sample

    sample, version = args
    item = load_sample(sample)  # type: ignore[arg-type]
    if item.mask is None or item.product is None:
        # an exception, not SystemExit: a pool worker passes it back to the parent (SystemExit would end the worker)
        raise InputError("the cue expert needs each image's mask and cutout", source=item.id)
    mask = np.asarray(item.mask, np.float32) / 255.0
    return observe(np.asarray(item.image), mask, np.asarray(item.product), version=version, height_cm=item.height_cm)


def encode(data: Path, out: Path, version: str, workers: int) -> None:
    from adcreative.core.imageio import atomic_write
    from adcreative.inspect.cues import cue_names
    from adcreative.inspect.data import renderer_family
    from adcreative.inspect.datasets.formats import read_dataset
    from adcreative.inspect.evaluate import drawn_kinds

    samples = read_dataset(data)
    rows = []
    jobs = [(s, version) for s in samples]
    pool = Pool(workers) if workers > 1 else None  # one worker: in this process (nothing to spawn or pickle)
    try:
        found = pool.imap(_measure, jobs, chunksize=8) if pool is not None else map(_measure, jobs)
        for i, x in enumerate(found, 1):
            rows.append(x)
            if i % 500 == 0 or i == len(samples):
                print(f"  cues {i}/{len(samples)}", file=sys.stderr, flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    buf = io.BytesIO()
    np.savez(buf, x=np.stack(rows), names=np.array(cue_names(version)), label=np.array([s.label for s in samples]),
             renderer=np.array([renderer_family(s) for s in samples]), split=np.array([s.split for s in samples]),
             kind=np.array(drawn_kinds(samples, [s.id for s in samples])),
             product=np.array([s.product_id for s in samples]))
    atomic_write(out, buf.getvalue())
    print(f"{out}: {len(samples)} images, cue set {version}")


def _fit_logits(x: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray,
                outs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The logits on each row set of ``outs`` of trees fitted on ``tr`` (rounds on ``va``; cues standardised on
    ``tr``)."""
    import torch

    from adcreative.inspect.cue_trees import CueTrees, fit_cue_trees

    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    z = (x - mu) / sd
    counts = np.bincount(y[tr], minlength=len(CLASSES)).astype(float)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(CLASSES), 0.0)
    trees = CueTrees(len(CLASSES))
    fit_cue_trees(trees, z[tr], y[tr], weights, z[va], y[va], seed=0)
    with torch.no_grad():
        return [trees(torch.from_numpy(z[o]).float()).numpy() for o in outs]


def _fit_predict(x: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray, te: np.ndarray) -> np.ndarray:
    """Class probabilities on ``te`` of trees fitted on ``tr`` (rounds on ``va``)."""
    import torch

    (logits,) = _fit_logits(x, y, tr, va, [te])
    return np.asarray(torch.softmax(torch.from_numpy(logits), -1).numpy())


def _fold(x: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray, te: np.ndarray) -> tuple[float, float, float]:
    """AP(available), macro-F1 and available recall of trees fitted on ``tr`` (rounds on ``va``), tested on ``te``."""
    from sklearn.metrics import average_precision_score, f1_score

    p = _fit_predict(x, y, tr, va, te)
    yt, pred = y[te], p.argmax(1)
    f1 = f1_score(yt, pred, average="macro", labels=list(range(len(CLASSES))))
    return float(average_precision_score(yt == 0, p[:, 0])), float(f1), float((pred[yt == 0] == 0).mean())


def _columns(path: Path, d: Mapping[str, np.ndarray], version: str) -> list[int]:
    """The columns of cue set ``version`` in an encoded file (refused when it was encoded with an earlier set)."""
    from adcreative.inspect.cues import cue_names

    names = [str(n) for n in d["names"]]
    missing = [n for n in cue_names(version) if n not in names]
    if missing:
        raise SystemExit(f"{path} lacks set {version}'s cues ({', '.join(missing[:3])}...): encode a later set")
    return [names.index(n) for n in cue_names(version)]


def _read(path: Path, products: bool) -> dict[str, np.ndarray]:
    """An encoded file's arrays, each read once (an npz file decompresses a member again at every access);
    ``products``: refuse a file encoded before product ids were kept."""
    with np.load(path) as d:
        if products and "product" not in d.files:
            raise SystemExit(f"{path} has no product ids, which --rows-from needs: encode it again with this script")
        return {k: d[k] for k in d.files}


def _pooled(path: Path, extra: list[Path], sets: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                                                                      np.ndarray, np.ndarray, int]:
    """Each set's cue matrix, the labels, families and splits of ``path``'s rows followed by ``extra``'s rows (but
    not those of ``path``'s test products), a mask of ``path``'s rows, and how many rows of ``extra`` were dropped."""
    d = _read(path, products=bool(extra))
    parts = [(path, d, np.ones(len(d["label"]), bool))]
    if extra:
        test_products = np.unique(d["product"][d["split"] == "test"])
        for f in extra:
            e = _read(f, products=True)
            parts.append((f, e, ~np.isin(e["product"], test_products)))
    xs = {v: np.concatenate([e["x"][k][:, _columns(f, e, v)] for f, e, k in parts]).astype(np.float64) for v in sets}
    y = np.concatenate([np.array([CLASSES.index(str(c)) for c in e["label"]])[k] for _, e, k in parts])
    ren = np.concatenate([e["renderer"][k] for _, e, k in parts])
    split = np.concatenate([e["split"][k] for _, e, k in parts])
    own = np.arange(len(y)) < len(d["label"])
    return xs, y, ren, split, own, int(sum((~k).sum() for _, _, k in parts))


def loro(path: Path, sets: list[str], extra: list[Path] | None = None) -> None:
    extra = extra or []
    xs, y, ren, split, own, dropped = _pooled(path, extra, sets)
    print(f"## {path}: {int(own.sum())} images; cells are AP(available) / macro-F1 / available recall, cue set "
          + " | ".join(sets))
    if extra:
        print(f"training rows also from {', '.join(map(str, extra))} ({dropped} rows of {path}'s test products "
              "dropped)")
    print("| held out | test images | " + " | ".join(f"set {v}" for v in sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    got: dict[str, list[tuple[float, float, float]]] = {v: [] for v in sets}
    for fam in sorted(set(ren.tolist())):
        tr, va = (ren != fam) & (split == "train"), (ren != fam) & (split == "val")
        te = (ren == fam) & (split == "test") & own
        if not te.any() or not (y[te] == 0).any():
            print(f"| {fam} | {int(te.sum())} | no test image of an available class |")
            continue
        cells = []
        for v in sets:
            r = _fold(xs[v], y, tr, va, te)
            got[v].append(r)
            cells.append(" / ".join(f"{a:.3f}" for a in r))
        print(f"| {fam} | {int(te.sum())} | " + " | ".join(cells) + " |", flush=True)
    for name, stat in (("median", np.median), ("mean", np.mean)):  # the mean: a change that helps one family
        cells = [" / ".join(f"{stat([r[j] for r in got[v]]):.3f}" for j in range(3)) for v in sets]
        print(f"| {name} | | " + " | ".join(cells) + " |")


def _out_of_family(x: np.ndarray, y: np.ndarray, ren: np.ndarray, split: np.ndarray, held: str,
                   fams: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of the ``val`` rows of each family G other than ``held``, predicted by trees that trained
    on neither ``held`` nor G: what a model's validation looks like on a family it never saw."""
    logits, labels = [], []
    for g in fams:
        if g == held:
            continue
        tr = (ren != held) & (ren != g) & (split == "train")
        va = (ren != held) & (ren != g) & (split == "val")
        vg = (ren == g) & (split == "val")
        if tr.any() and va.any() and vg.any():
            logits += _fit_logits(x, y, tr, va, [vg])
            labels.append(y[vg])
    if not logits:
        raise SystemExit(f"no out-of-family validation rows to calibrate on with {held} held out")
    return np.concatenate(logits).astype(np.float64), np.concatenate(labels)


def calib(path: Path, version: str, extra: list[Path] | None = None) -> None:
    """Each held-out family's calibration and three-way decision with the temperature and thresholds fitted on the
    other families' validation rows (``in``, what ``inspect train`` does) or on out-of-family predictions of them
    (``out``, :func:`_out_of_family`) (docs/inspect.md, thirty-ninth round)."""
    from adcreative.inspect.calibrate import (
        available_calibration_error,
        expected_calibration_error,
        fit_temperature,
        nll,
        softmax,
    )
    from adcreative.inspect.decision import choose_decision

    xs, y, ren, split, own, dropped = _pooled(path, extra or [], [version])
    x = xs[version]
    fams = sorted(set(ren.tolist()))
    if len(fams) < 3:
        raise SystemExit(f"{path}: out-of-family calibration needs three renderer families or more, "
                         f"found {len(fams)} ({', '.join(fams)})")
    print(f"## {path}: {int(own.sum())} images, cue set {version}; each cell 'in -> out': temperature and decision "
          "thresholds fitted on the other families' validation rows, or on out-of-family predictions of them")
    if extra:
        print(f"training rows also from {', '.join(map(str, extra))} ({dropped} rows of {path}'s test products "
              "dropped)")
    head = ("T", "ECE", "ECE(available)", "NLL", "to a human", "automatic errors")
    print("| held out | test images | ECE at T=1 | " + " | ".join(head) + " | ECE at the test rows' own T |")
    print("|---|---|---|" + "---|" * (len(head) + 1))
    got: list[list[tuple[float, float]]] = []
    for fam in fams:
        tr, va = (ren != fam) & (split == "train"), (ren != fam) & (split == "val")
        te = (ren == fam) & (split == "test") & own
        if not te.any() or not (y[te] == 0).any():
            print(f"| {fam} | {int(te.sum())} | no test image of an available class |")
            continue
        lv, lt = (z.astype(np.float64) for z in _fit_logits(x, y, tr, va, [va, te]))
        lo, yo = _out_of_family(x, y, ren, split, fam, fams)
        yt, cells = y[te], []
        for ref, yr in ((lv, y[va]), (lo, yo)):
            t = fit_temperature(ref, yr)
            p = softmax(lt, t)
            bands = np.array(choose_decision(softmax(ref, t)[:, 0], yr == 0).bands(p[:, 0]))
            errors = int(((bands == "accept") & (yt != 0)).sum() + ((bands == "reject") & (yt == 0)).sum())
            cells.append((t, expected_calibration_error(p, yt), available_calibration_error(p, yt), nll(lt, yt, t),
                          float((bands == "human").mean()), errors))
        got.append(list(zip(*cells, strict=True)))
        best = fit_temperature(lt, yt)  # fitted on the test rows themselves: what no temperature fixes
        print(f"| {fam} | {int(te.sum())} | {expected_calibration_error(softmax(lt), yt):.3f} | "
              + " | ".join(_pair(a, b, h) for h, (a, b) in zip(head, got[-1], strict=True))
              + f" | {expected_calibration_error(softmax(lt, best), yt):.3f} (T {best:.3f}) |", flush=True)
    for name, stat in (("median", np.median), ("mean", np.mean)):
        pairs = [(float(stat([g[j][0] for g in got])), float(stat([g[j][1] for g in got]))) for j in range(len(head))]
        print(f"| {name} | | | " + " | ".join(_pair(a, b, h) for h, (a, b) in zip(head, pairs, strict=True)) + " |")


def _pair(a: float, b: float, column: str) -> str:
    """One 'in -> out' cell of :func:`calib`'s table (the human share in per cent, errors as counts)."""
    if column == "to a human":
        return f"{a:.1%} -> {b:.1%}"
    if column == "automatic errors":
        return f"{a:.3g} -> {b:.3g}"
    return f"{a:.3f} -> {b:.3f}"


def kinds(path: Path, version: str, top: int, min_n: int | None) -> None:
    from adcreative.inspect.metrics import MIN_KIND, format_kind_misses, kind_misses

    d = _read(path, products=False)
    if "kind" not in d:
        raise SystemExit(f"{path} has no defect kinds: encode it again with this script")
    x = d["x"].astype(np.float64)[:, _columns(path, d, version)]
    ren, split = d["renderer"], d["split"]
    y = np.array([CLASSES.index(str(c)) for c in d["label"]])
    p = np.full(len(y), np.nan)
    for fam in sorted(set(ren.tolist())):
        tr, va = (ren != fam) & (split == "train"), (ren != fam) & (split == "val")
        te = (ren == fam) & (split != "train")  # products no fold trained on (validation products only chose rounds)
        if te.any() and tr.any():
            p[te] = _fit_predict(x, y, tr, va, te)[:, 0]
    held = ~np.isnan(p)
    rows = kind_misses(y[held], p[held], [str(k) for k in d["kind"][held]], [str(f) for f in ren[held]],
                       min_n=max(1, min_n or MIN_KIND))
    if not rows:
        raise SystemExit(f"{path}: no held-out family has good images and enough images of a drawn kind")
    print(f"{path}: set {version}, each family held out in turn (its validation and test products); 'above': the "
          "share of a kind's images scored above the median P(available) of the family's good images")
    print(format_kind_misses(rows, top=top))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode", help="measure every image's cues once")
    e.add_argument("data", type=Path)
    e.add_argument("out", type=Path)
    e.add_argument("--set", default="7", help="the cue set to measure (later sets include the earlier ones)")
    e.add_argument("--workers", type=int, default=2)
    lo = sub.add_parser("loro", help="the leave-one-renderer-out table of each encoded file")
    lo.add_argument("files", type=Path, nargs="+")
    lo.add_argument("--sets", default="6,7", help="comma-separated cue sets to compare")
    lo.add_argument("--rows-from", type=Path, nargs="+", default=[], metavar="OTHER",
                    help="also train on these encoded files' rows of the other families (other seeds), without the "
                         "rows of each tested file's test products")
    ca = sub.add_parser("calib", help="each held-out family's calibration: temperature and thresholds fitted "
                                      "in-family or out-of-family")
    ca.add_argument("files", type=Path, nargs="+")
    ca.add_argument("--set", default="7", help="the cue set the trees read")
    ca.add_argument("--rows-from", type=Path, nargs="+", default=[], metavar="OTHER",
                    help="also train on these encoded files' rows (as loro's --rows-from)")
    ki = sub.add_parser("kinds", help="which defect kinds cost each held-out family's AP (largest first)")
    ki.add_argument("file", type=Path)
    ki.add_argument("--set", default="7", help="the cue set the trees read")
    ki.add_argument("--top", type=int, default=20, help="how many kinds to list")
    ki.add_argument("--min-n", type=int, default=None,
                    help="list a family's kind from this many images on (default: inspect eval's)")
    args = ap.parse_args(argv)
    from adcreative.inspect.cues import CUE_SETS

    sets = [v.strip() for v in (args.sets.split(",") if args.cmd == "loro" else [args.set]) if v.strip()]
    unknown = [v for v in sets if v not in CUE_SETS]
    if unknown or not sets:
        ap.error(f"unknown cue set {', '.join(map(repr, unknown)) or 'none given'}; known: {', '.join(sorted(CUE_SETS))}")
    if args.cmd == "encode":
        if not (args.data / "manifest.jsonl").is_file():
            ap.error(f"{args.data} is not a dataset folder (no manifest.jsonl)")
        from adcreative.core.errors import InputError

        try:
            encode(args.data, args.out, sets[0], max(1, args.workers))
        except InputError as e:  # a missing or corrupt file, an image without its mask or cutout: one line
            print(f"error: {e}", file=sys.stderr)
            return 2
    elif args.cmd == "kinds":
        if not args.file.is_file():
            ap.error(f"{args.file}: no such file")
        kinds(args.file, sets[0], max(1, args.top), args.min_n)
    else:
        for f in [*args.files, *args.rows_from]:
            if not f.is_file():
                ap.error(f"{f}: no such file")
        for f in args.files:
            extra = [e for e in args.rows_from if e.resolve() != f.resolve()]
            if args.cmd == "calib":
                calib(f, sets[0], extra)
            else:
                loro(f, sets, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
