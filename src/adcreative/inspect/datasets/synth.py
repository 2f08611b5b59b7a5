"""``dataset synth``: a labelled inspection dataset of available and defective creatives from several renderer
families, split by product.

For every product, renderer family and class, ``per_class`` images at severities drawn from [0.2, 1], cycling
aspect ratios from a random start per class (so the class is not in the aspect ratio). Every family labels what
it rendered with the one shared labeller (:mod:`adcreative.generate.measure`); an image is kept only when the
measurements agree with the class asked for (a defect found and no other; an available image clear of every rule
and doubt band), otherwise it is redrawn with the next seed. After ``MAX_REDRAWS`` the last draw stands with its
*measured* label when that label is itself unambiguous (a single defect found, or available clear of every doubt
band); otherwise the sample is dropped, so a label never contradicts what was rendered and no borderline image is
called available.

What keeps product and renderer identity from being a shortcut: every product appears under every class and
every family; a product is mirrored in half of its samples; colourways (hue-rotated copies, as separate SKUs)
widen a small catalogue and always land in their source's split; and each image goes through a seeded chain of
degradations (:mod:`adcreative.inspect.datasets.degrade`) after it is labelled. A synthesised bad source (a torn,
cropped or low-resolution product) is written as that sample's own product cutout: the auditor is given the
source it was made from (``bad_source_cutout="own"``, the default), or the catalogue cutout it should have been
(``"catalogue"``: the damage is then a change against the catalogue image, what a reviewer compares; docs/inspect.md,
sixteenth round). Where a renderer damaged the product in the image itself (a hole, a faded part), half
the samples carry the placement mask (where the product was put) and half the visible mask, since a renderer the
model has never seen may report either.

A run is durable and resumable: ``synth.json`` records its options before anything is rendered, every finished
sample is appended to ``manifest.partial.jsonl`` (after its files are written; one line each, fsynced, written by
the parent process only) together with a line per finished (product, renderer) job, and re-running the same
command on the same folder renders only what is missing. A sample's draws depend on its product, family and the
dataset seed alone, so the resumed dataset is byte for byte the one an uninterrupted run writes. When every job
is done, ``manifest.jsonl`` is written in the canonical order and the journal removed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from adcreative.catalogue.sources import DRAWN_FAMILIES
from adcreative.core.durable import fsync_dir
from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write_text, save_png
from adcreative.core.types import ASPECTS, CLASSES, Product
from adcreative.generate.base import GeneratedImage, Generator, create_generator
from adcreative.generate.measure import agrees
from adcreative.inspect.datasets.degrade import degrade
from adcreative.inspect.datasets.formats import (
    SPLITS,
    Sample,
    sample_from_record,
    sample_line,
    summarize,
    write_manifest_lines,
)
from adcreative.inspect.preprocess import catalogue_source

# the scene-renderer families `dataset synth` can mix (poster is held back from training: the never-seen family;
# lowkey, dark premium shots, is a sixth family sharing no drawing code with the others)
RENDERERS = ("compositor", "photoset", "softfocus", "perspective", "poster", "lowkey")
MAX_REDRAWS = 8
HEADER = "synth.json"  # the run's options, written before anything is rendered
JOURNAL = "manifest.partial.jsonl"  # finished samples and jobs of an unfinished run
ASPECT_STREAM = 0xA5EC7  # the random stream of :func:`aspect_starts`, apart from the product's draws
ASPECT_CYCLE = "random-start"  # in the run header: sets of the old class-tied cycle are not resumed into
BAD_SOURCE_CUTOUTS = ("own", "catalogue")  # what a bad-source sample gives the auditor as its product cutout


def colourway(product: Product, k: int) -> Product:
    """Product ``k`` of a colour range: the cutout's hue rotated by k/6 of a turn (alpha untouched)."""
    im = product.image.convert("RGBA")
    hsv = np.asarray(im.convert("RGB").convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(256 * k / 6)) % 256).astype(np.uint8)
    rgb = Image.fromarray(hsv, "HSV").convert("RGB")
    rgb.putalpha(im.getchannel("A"))
    return Product(id=f"{product.id}~c{k}", title=product.title, category=product.category, image=rgb,
                   copy=product.copy, price=product.price, attrs={**product.attrs, "source_product": product.id})


def studio_copy(product: Product, k: int, *, seed: int = 0) -> Product | None:
    """Copy ``k`` of a product as a matted catalogue photo: its cutout photographed on a studio sweep with a contact
    shadow (``catalogue.studio``), then matted back out by the importer's matting, so the auditor also sees the
    product with the edges, halos and shadow remnants of a matted photo. Split with its source product, like a
    colourway. Real products that come as matted white-backdrop photos were the ones whose good images the auditor
    called damaged on renderers it never saw; a script's matted copies of the training products lifted them
    (docs/inspect.md, twenty-fifth round), these copies did not reproduce it (twenty-sixth round). None when
    the matte is under the importer's quality threshold (the importer would refuse that photo too: a white
    product on white)."""
    from adcreative.catalogue.matting import QUALITY_THRESHOLD, matte
    from adcreative.catalogue.studio import BACKDROPS, studio_photo

    rng = np.random.default_rng(int(hashlib.sha256(f"{seed}:studio:{product.id}:{k}".encode()).hexdigest()[:8], 16))
    backdrop = list(BACKDROPS)[(k - 1) % len(BACKDROPS)]
    photo = studio_photo(product.image, backdrop, seed=int(rng.integers(2**31)), size=800,
                         shadow=float(rng.uniform(0.2, 0.5)), jpeg_quality=int(rng.integers(80, 96))).photo
    m = matte(photo)
    if m.quality < QUALITY_THRESHOLD:
        return None
    cut = m.cutout()
    box = cut.getchannel("A").getbbox()
    if box is None:
        return None
    return Product(id=f"{product.id}~s{k}", title=product.title, category=product.category, image=cut.crop(box),
                   copy=product.copy, price=product.price,
                   attrs={**product.attrs, "source_product": product.id, "studio_copy": k})


def mirrored(product: Product) -> Product:
    """The same product seen from its other side (the cutout flipped left to right); it keeps its id."""
    return Product(id=product.id, title=product.title, category=product.category,
                   image=ImageOps.mirror(product.image.convert("RGBA")), copy=product.copy, price=product.price,
                   attrs={**product.attrs, "mirrored": True})


def assign_splits(product_ids: list[str], *, seed: int = 0, val: float = 0.15, test: float = 0.2,
                  fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Product → split; at least one product in each split when there are three or more products."""
    fixed = dict(fixed or {})
    free = sorted((p for p in product_ids if p not in fixed),
                  key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
    n = len(free)
    n_test = max(1 if n >= 3 else 0, round(n * test)) if not any(v == "test" for v in fixed.values()) else round(n * test)
    n_val = max(1 if n >= 3 else 0, round(n * val)) if not any(v == "val" for v in fixed.values()) else round(n * val)
    out = dict(fixed)
    for i, p in enumerate(free):
        out[p] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def _draw(gen: Generator, p: Product, seed: int, aspect: str, label: str, severity: float
          ) -> tuple[GeneratedImage, int]:
    """The first draw whose measured label agrees with ``label`` (and how many were redrawn before it)."""
    for k in range(MAX_REDRAWS):
        gi = gen(p, seed=seed + k, aspect=aspect, defect=label, severity=severity)[0]
        if gi.params.get("agrees"):
            return gi, k
    return gi, MAX_REDRAWS  # the last draw stands, labelled by what was measured on it


def _source_id(p: Product) -> str:
    """The product a sample counts as for splits: a colourway's source, else the product itself."""
    return str(p.attrs.get("source_product", p.id))


PRODUCT_SOURCES = ("real", "sample", *DRAWN_FAMILIES)


def product_source(p: Product) -> str:
    """Where a product comes from (``real`` catalogue cutouts, ``sample``, a family of ``DRAWN_FAMILIES``)."""
    src = catalogue_source(p)
    if src:
        return src
    pid = _source_id(p)
    for family, prefix in DRAWN_FAMILIES.items():
        if pid.startswith(prefix):
            return family
    return "real"


def product_seed(seed: int, product_id: str, renderer: str = "compositor") -> int:
    """The seed of one product's draws in one renderer family: from the dataset seed, the product id and the
    family alone, so a product's images do not depend on which other products or families are in the set (or
    on which worker renders them)."""
    key = f"{seed}:{product_id}" if renderer == "compositor" else f"{seed}:{renderer}:{product_id}"
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def aspect_starts(seed: int, product_id: str, renderer: str, n_aspects: int) -> list[int]:
    """Where each class's cycle through the aspect ratios starts for one product in one family: drawn at random
    per class, so the class cannot be read off the aspect ratio (the letterbox shows it). The cycle used to start
    at the class's index, which with fewer images per class than aspects tied each class to its own aspects:
    at ``per_class`` 1 every available image was square and every size mismatch 9:16. Its own stream, so the
    product's other draws are unchanged."""
    rng = np.random.default_rng([product_seed(seed, product_id, renderer), ASPECT_STREAM])
    return [int(x) for x in rng.integers(n_aspects, size=len(CLASSES))]


def _sample_id(product_id: str, renderer: str, label: str, i: int) -> str:
    return f"{_safe(product_id)}-{renderer}-{label}-{i:04d}"


def _job_sample_ids(product_id: str, renderer: str, per_class: int) -> list[str]:
    """Every sample id one (product, renderer) job can write, in the order it draws them."""
    return [_sample_id(product_id, renderer, label, i) for label in CLASSES for i in range(per_class)]


def _render_product(gen: Generator, renderer: str, p: Product, out: Path, split: str, per_class: int,
                    aspects: list[str], seed: int, degrade_rate: float, mirror_rate: float,
                    bad_source_cutout: str = "own", *, skip: frozenset[str] = frozenset(),
                    on_slot: Callable[[Sample | None], None] | None = None) -> list[Sample]:
    """Every class's images of one product in one renderer family, written under ``out``; returns the samples.
    Ids in ``skip`` (already recorded) are not rendered, but their draws are still taken from the product's
    generator, so the others come out as in a full run. ``on_slot`` hears of each sample once its files are
    written (None for one dropped as ambiguous)."""
    src = _source_id(p)
    prod_rel = Path("products") / f"{_safe(p.id)}.png"
    flip_rel = Path("products") / f"{_safe(p.id)}~m.png"
    flipped = mirrored(p)
    rng = np.random.default_rng(product_seed(seed, p.id, renderer))
    starts = aspect_starts(seed, p.id, renderer, len(aspects))
    samples = []
    for label in CLASSES:
        for i in range(per_class):
            s = int(rng.integers(2**31))
            severity = 0.0 if label == "available" else float(rng.uniform(0.2, 1.0))
            aspect = aspects[(i + starts[CLASSES.index(label)]) % len(aspects)]
            flip = bool(rng.random() < mirror_rate)
            use_placement = bool(rng.random() < 0.5)
            noise_seed = int(rng.integers(2**31))
            sid = _sample_id(p.id, renderer, label, i)
            if sid in skip:
                continue
            gi, redraws = _draw(gen, flipped if flip else p, s, aspect, label, severity)
            final = label if gi.params.get("agrees") else str(gi.params.get("label", label))
            if final != label and not agrees(final, list(gi.params.get("defects", [])),
                                             list(gi.params.get("doubtful", []))):
                if on_slot is not None:
                    on_slot(None)
                continue  # neither what was asked nor plainly anything else (say, a defect in its doubt band)
            image, ops = degrade(gi.image, noise_seed, rate=degrade_rate)
            mask = gi.placement if (gi.placement is not None and use_placement) else gi.mask
            save_png(out / "images" / f"{sid}.png", image)
            save_png(out / "masks" / f"{sid}.png", mask)
            sample_prod = flip_rel if flip else prod_rel
            if gi.source is not None and bad_source_cutout == "own":  # the damaged cutout is this sample's input
                sample_prod = Path("products") / f"{sid}.png"
                save_png(out / sample_prod, gi.source)
            params: dict[str, Any] = {
                "requested": label, "agrees": bool(gi.params.get("agrees")), "redraws": redraws,
                "kind": gi.params.get("kind") or gi.params.get("forced", {}).get("hallucination")
                or gi.params.get("forced", {}).get("damage"),
                "measured": gi.params.get("measured"), "defects": gi.params.get("defects"),
                "doubtful": gi.params.get("doubtful"), "geometry": gi.params.get("geometry"),
                "mask": "placement" if mask is gi.placement else "visible", "mirrored": flip, "degrade": ops,
            }
            if gi.source is not None and bad_source_cutout != "own":
                params["bad_source"] = bad_source_cutout  # the auditor was given the catalogue cutout for it
            if "forced" in gi.params:
                params["forced"] = gi.params["forced"]
            samples.append(Sample(id=sid, image=out / "images" / f"{sid}.png", mask=out / "masks" / f"{sid}.png",
                                  product=out / sample_prod, product_id=src, title=p.title, category=p.category,
                                  label=final, split=split, severity=round(severity, 4), aspect=aspect, seed=gi.seed,
                                  generator=f"{gi.generator}@{gi.generator_version}", params=params,
                                  renderer=renderer, product_source=product_source(p)))
            if on_slot is not None:
                on_slot(samples[-1])
    return samples


_WORKER_GENS: dict[str, Generator] = {}


def _worker_init(configs: dict[str, dict], parent: int) -> None:
    _die_with(parent)
    _WORKER_GENS.clear()
    for name, cfg in configs.items():
        _WORKER_GENS[name] = create_generator(name, **cfg)


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when ``parent`` (the process that journals) dies. A SIGTERM or SIGKILL to
    the parent alone would otherwise leave the workers rendering the queued jobs for minutes, results nobody
    records (Linux; elsewhere a no-op beyond the check below)."""
    import sys

    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _worker_render(args: tuple) -> list[Sample]:
    *job, skip = args
    return _render_product(_WORKER_GENS[job[0]], *job, skip=skip)


def synth_dataset(products: list[Product], out: str | Path, *, per_class: int = 20, aspects: list[str] | None = None,
                  seed: int = 0, scale: float = 1.0, colourways: int = 0, splits: dict[str, str] | None = None,
                  generator: Generator | None = None, workers: int = 1, renderers: Sequence[str] = ("compositor",),
                  degrade_rate: float = 0.0, mirror_rate: float = 0.0,
                  colourway_sources: Sequence[str] | None = None,
                  bad_source_cutout: str = "own", studio_copies: int = 0) -> dict[str, dict[str, int]]:
    """Write the dataset folder (see docs/dataset.md); returns counts per split and class. ``renderers`` are
    generator names (see ``RENDERERS``); ``generator`` overrides the first one's instance. ``workers`` > 1 renders
    (product, renderer) pairs in that many processes; the dataset is the same for any number of workers.
    ``colourway_sources`` limits colourways to products from those sources (``product_source``; all if None).
    ``bad_source_cutout`` is the cutout a bad-source sample carries: its own damaged one, or the catalogue's.
    ``studio_copies`` adds that many matted studio copies (:func:`studio_copy`) of each real product that came as a
    cutout (not one already matted from a photo); a copy whose matte the importer would refuse is left out.
    An unfinished run in ``out`` with the same options is resumed; one with other options is refused."""
    out = Path(out)
    if bad_source_cutout not in BAD_SOURCE_CUTOUTS:
        raise InputError(f"bad_source_cutout must be one of {', '.join(BAD_SOURCE_CUTOUTS)}, got {bad_source_cutout!r}")
    renderers = list(dict.fromkeys(renderers))
    unknown = [r for r in renderers if r not in RENDERERS]
    if unknown or not renderers:
        raise InputError(f"unknown renderer {', '.join(unknown) or '(none)'}; choose from {', '.join(RENDERERS)}")
    aspects = aspects or ["1:1", "4:5", "16:9", "9:16"]
    # checked before anything is written (a bad aspect was a ValueError after the folder was begun)
    bad = [a for a in aspects if a not in ASPECTS]
    if bad:
        raise InputError(f"unknown aspect ratio {bad[0]!r}; choose from {', '.join(ASPECTS)}")
    unknown_ids = sorted(set(splits or {}) - {p.id for p in products})
    if unknown_ids:
        raise InputError(f"split given for product(s) not in the catalogue: {', '.join(map(repr, unknown_ids))}")
    bad = sorted(set(colourway_sources or ()) - set(PRODUCT_SOURCES))
    if bad:
        raise InputError(f"unknown product source(s) for colourways: {', '.join(map(repr, bad))}; choose from "
                         f"{', '.join(PRODUCT_SOURCES)}")
    gens: dict[str, Generator] = {r: create_generator(r, scale=scale) for r in renderers}
    if generator is not None:
        gens[renderers[0]] = generator
    split_of = assign_splits([p.id for p in products], seed=seed, fixed=splits)
    all_products = list(products)
    for p in products:
        if colourway_sources is None or product_source(p) in colourway_sources:
            all_products += [colourway(p, k) for k in range(1, colourways + 1)]
    for p in products:
        if studio_copies > 0 and product_source(p) == "real" and "matte" not in p.attrs:
            all_products += [c for k in range(1, studio_copies + 1) if (c := studio_copy(p, k, seed=seed)) is not None]
    jobs = [(r, p, out, split_of[_source_id(p)], per_class, aspects, seed, degrade_rate, mirror_rate,
             bad_source_cutout) for p in all_products for r in renderers]
    header = _header(products, gens, per_class=per_class, aspects=aspects, aspect_cycle=ASPECT_CYCLE, seed=seed,
                     colourways=colourways, colourway_sources=colourway_sources, splits=splits,
                     degrade_rate=degrade_rate, mirror_rate=mirror_rate,
                     # recorded only when not the default, so runs begun before the option existed still resume
                     **({} if bad_source_cutout == "own" else {"bad_source_cutout": bad_source_cutout}),
                     **({"studio_copies": studio_copies} if studio_copies > 0 else {}))
    recorded, done = _resume(out, header, jobs)
    for p in all_products:  # cutouts first, so no two workers write the same file
        save_png(out / "products" / f"{_safe(p.id)}.png", p.image)
        if mirror_rate > 0:
            save_png(out / "products" / f"{_safe(p.id)}~m.png", mirrored(p).image)
    slots = len(CLASSES) * per_class
    pending = []
    already = 0
    for job in jobs:
        if _job_key(job) in done:
            already += slots
        else:
            have = frozenset(i for i in _job_sample_ids(job[1].id, job[0], per_class) if i in recorded)
            already += len(have)
            pending.append((job, have))
    with open(out / JOURNAL, "a", encoding="utf-8") as journal, \
            tqdm(total=len(jobs) * slots, initial=already, desc="synth", unit="img") as bar:

        def record(lines: list[str]) -> None:  # whole lines, on disk before anything counts as done
            journal.write("".join(line + "\n" for line in lines))
            journal.flush()
            os.fsync(journal.fileno())

        def finished(job: tuple, got: list[Sample], live: bool) -> None:
            lines = [sample_line(out, s) for s in got]
            recorded.update((s.id, line) for s, line in zip(got, lines, strict=True))
            record(([] if live else lines) + [json.dumps({"done": _job_key(job)})])

        def on_slot(s: Sample | None) -> None:
            if s is not None:
                record([sample_line(out, s)])
            bar.update(1)

        if workers <= 1:
            for job, have in pending:
                finished(job, _render_product(gens[job[0]], *job, skip=have, on_slot=on_slot), live=True)
        elif pending:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may hold threads (torch, tqdm's monitor) that a fork would copy mid-lock
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                     initargs=({r: dict(g.config) for r, g in gens.items()}, os.getpid())) as pool:
                # only this process writes the journal: results come back through the pool, so lines never mix
                for (job, have), got in zip(pending, pool.map(_worker_render, [(*j, h) for j, h in pending],
                                                              chunksize=1), strict=True):
                    finished(job, got, live=False)
                    bar.update(slots - len(have))
    lines = [recorded[i] for job in jobs for i in _job_sample_ids(job[1].id, job[0], per_class) if i in recorded]
    write_manifest_lines(out, lines)
    samples = [sample_from_record(out, json.loads(line)) for line in lines]
    summary = summarize(samples)
    expected = Counter(job[0] for job in jobs)
    dropped = {r: expected[r] * slots - sum(s.renderer == r for s in samples) for r in renderers}
    atomic_write_text(out / "README.md", _readme(samples, products, split_of, gens, seed, colourways, per_class,
                                                 degrade_rate, mirror_rate, dropped, bad_source_cutout))
    (out / JOURNAL).unlink(missing_ok=True)
    fsync_dir(out)
    return summary


def _job_key(job: tuple) -> str:
    return f"{job[0]}:{job[1].id}"


def _header(products: list[Product], gens: dict[str, Generator], **options: Any) -> dict[str, Any]:
    """What makes a run's samples what they are (not ``workers``): checked when a run resumes."""
    h = hashlib.sha256()
    for p in products:
        im = p.image
        h.update(json.dumps([p.id, p.title, p.category, im.mode, im.size]).encode())
        h.update(im.tobytes())
    options["colourway_sources"] = sorted(options["colourway_sources"]) if options["colourway_sources"] else None
    options["splits"] = dict(sorted((options["splits"] or {}).items()))
    return {**options, "renderers": {r: {"version": g.version, "config": g.config} for r, g in gens.items()},
            "products": {"n": len(products), "sha256": h.hexdigest()}}


def _resume(out: Path, header: dict[str, Any], jobs: list[tuple]) -> tuple[dict[str, str], set[str]]:
    """Start a run in ``out`` or pick up the one there: the manifest lines already recorded (by sample id) and
    the jobs finished. A run with other options is refused; a finished run counts as all done."""
    header = json.loads(json.dumps(header))  # as it reads back from disk (tuples become lists)
    journal, manifest = out / JOURNAL, out / "manifest.jsonl"
    if (out / HEADER).exists():
        old = json.loads((out / HEADER).read_text())
        if old != header:
            key = next(k for k in sorted({*old, *header}) if old.get(k) != header.get(k))
            raise InputError(f"holds a run made with other options ({key}: {json.dumps(old.get(key))} there, "
                             f"{json.dumps(header.get(key))} now); rerun it with the same options or choose another "
                             "--out", source=out)
        if journal.exists():
            for sub in (".", "images", "masks", "products"):  # half-written files of a killed run's atomic writes
                for tmp in (out / sub).glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
            return _read_journal(journal)
        if manifest.exists():  # finished before: nothing to render, the manifest and README are rewritten
            return ({json.loads(line)["id"]: line for line in manifest.read_text().splitlines() if line.strip()},
                    {_job_key(j) for j in jobs})
    for sub in ("images", "masks", "products"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)  # an older dataset's manifest must not pass for this run's
    journal.unlink(missing_ok=True)
    atomic_write_text(out / HEADER, json.dumps(header, indent=1, sort_keys=True) + "\n")
    return {}, set()


def _read_journal(path: Path) -> tuple[dict[str, str], set[str]]:
    """Samples (id → manifest line) and finished jobs recorded in a journal. A last line cut short by a kill is
    dropped, and cut off the file so that new lines start on a line of their own."""
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) < len(data):
        with open(path, "r+b") as f:
            f.truncate(len(whole))
            f.flush()
            os.fsync(f.fileno())
    samples: dict[str, str] = {}
    done: set[str] = set()
    for n, line in enumerate(whole.decode("utf-8").splitlines(), 1):
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"line {n} is not JSON: the journal is damaged; remove the folder and start again",
                             source=path) from None
        if "done" in r:
            done.add(r["done"])
        else:
            samples[r["id"]] = line
    return samples, done


def agreement(samples: Sequence[Sample]) -> dict[str, dict[str, Any]]:
    """Per renderer family: the share of samples whose first draw's measured label agreed with the class asked
    for, the share that agreed after redraws, and how many stand relabelled by the measurements."""
    out: dict[str, dict[str, Any]] = {}
    for r in sorted({s.renderer for s in samples}):
        rows = [s for s in samples if s.renderer == r]
        per_class = {}
        for c in CLASSES:
            cr = [s for s in rows if s.params.get("requested", s.label) == c]
            if cr:
                per_class[c] = round(sum(s.params.get("redraws", 0) == 0 and s.params.get("agrees", True)
                                         for s in cr) / len(cr), 3)
        out[r] = {"n": len(rows),
                  "first_draw": round(sum(s.params.get("redraws", 0) == 0 and s.params.get("agrees", True)
                                          for s in rows) / max(1, len(rows)), 3),
                  "after_redraws": round(sum(bool(s.params.get("agrees", True)) for s in rows) / max(1, len(rows)), 3),
                  "relabelled": sum(s.label != s.params.get("requested", s.label) for s in rows),
                  "first_draw_by_class": per_class}
    return out


def _readme(samples: list[Sample], products: list[Product], split_of: dict[str, str], gens: dict[str, Generator],
            seed: int, colourways: int, per_class: int, degrade_rate: float, mirror_rate: float,
            dropped: dict[str, int], bad_source_cutout: str = "own") -> str:
    lines = ["# Synthesised inspection dataset", "",
             f"Made by `adcreative dataset synth`, seed {seed}; renderers: "
             + ", ".join(f"{r} {g.version} (config {json.dumps(g.config)})" for r, g in gens.items()) + ".",
             f"{len(products)} products (+{colourways} colourways each), {per_class} images per class per product per "
             f"renderer; degradation rate {degrade_rate}, mirror rate {mirror_rate}; a bad-source sample carries "
             + ("its own damaged cutout." if bad_source_cutout == "own" else "the catalogue cutout."), "",
             "| split | renderer | products | " + " | ".join(CLASSES) + " |", "|---|---|---|" + "---|" * len(CLASSES)]
    counts: Counter[tuple[str, str, str]] = Counter((s.split, s.renderer, s.label) for s in samples)
    for sp in SPLITS:
        n_prod = sum(1 for v in split_of.values() if v == sp)
        for r in gens:
            lines.append(f"| {sp} | {r} | {n_prod} | " + " | ".join(str(counts[(sp, r, c)]) for c in CLASSES) + " |")
    lines += ["", "Labeller agreement (share of samples whose first draw measured as the class asked for):", "",
              "| renderer | samples | first draw | after redraws | relabelled | dropped as ambiguous |",
              "|---|---|---|---|---|---|"]
    for r, a in agreement(samples).items():
        lines.append(f"| {r} | {a['n']} | {a['first_draw']} | {a['after_redraws']} | {a['relabelled']} | "
                     f"{dropped.get(r, 0)} |")
    lines += ["", "Test products: " + ", ".join(sorted(p for p, v in split_of.items() if v == "test")), "",
              "Format: see docs/dataset.md in the adcreative repository.", ""]
    return "\n".join(lines)


def _safe(pid: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in pid)
