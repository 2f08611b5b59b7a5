"""Read and write labelled inspection datasets (our manifest layout, and RF1M's ``label.txt``).

See ``docs/dataset.md``. Splits are by product: a product's images are all in one split.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adcreative.core.errors import InputError
from adcreative.core.types import CLASSES

if TYPE_CHECKING:
    from adcreative.core.store import Store

SPLITS = ("train", "val", "test")
_TEXT_FIELDS = ("id", "image", "mask", "product", "product_id", "title", "category", "label", "split", "aspect",
                "generator", "renderer", "product_source")


@dataclass
class Sample:
    id: str
    image: Path
    mask: Path | None
    product: Path | None
    product_id: str
    title: str
    category: str
    label: str
    split: str
    severity: float = 0.0
    aspect: str = "1:1"
    seed: int = 0
    generator: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    renderer: str = ""  # the scene-renderer family that drew it (compositor, photoset, softfocus, ...)
    # where it comes from: real (a catalogue folder), sample, or a family of catalogue.sources.DRAWN_FAMILIES
    product_source: str = ""

    @property
    def label_index(self) -> int:
        return CLASSES.index(self.label)


def split_for(product_id: str, *, val: float = 0.15, test: float = 0.15, salt: str = "") -> str:
    """Deterministic split of a product by hashing its id: stable across runs and machines."""
    h = int(hashlib.sha256(f"{salt}{product_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "val" if h < test + val else "train"


def sample_line(directory: Path, s: Sample) -> str:
    """One manifest line (no newline) for ``s``, paths relative to ``directory``."""
    d = asdict(s)
    for k in ("image", "mask", "product"):
        if d[k] is not None:
            d[k] = str(Path(d[k]).resolve().relative_to(directory.resolve()))
    return json.dumps(d, sort_keys=True)


def sample_from_record(directory: Path, r: dict[str, Any]) -> Sample:
    """The sample a parsed manifest line describes, paths made absolute under ``directory``."""
    return Sample(**{**r, "image": directory / r["image"], "mask": directory / r["mask"] if r.get("mask") else None,
                     "product": directory / r["product"] if r.get("product") else None})


def write_manifest(directory: Path, samples: Iterable[Sample]) -> Path:
    """Write manifest.jsonl atomically, paths relative to ``directory``."""
    return write_manifest_lines(directory, [sample_line(directory, s) for s in samples])


def write_manifest_lines(directory: Path, lines: list[str]) -> Path:
    """Write manifest.jsonl atomically from lines made by :func:`sample_line`."""
    from adcreative.core.imageio import atomic_write_text

    p = directory / "manifest.jsonl"
    atomic_write_text(p, "\n".join(lines) + "\n")
    return p


def read_dataset(directory: str | Path, *, split: str | None = None) -> list[Sample]:
    """Samples of a dataset folder (manifest.jsonl, or RF1M's label.txt), optionally one split."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError("dataset folder does not exist", source=d)
    if (d / "manifest.jsonl").exists():
        samples = _read_manifest(d)
    elif (d / "label.txt").exists():
        from adcreative.inspect.datasets.rf1m import read_rf1m

        samples = read_rf1m(d)
    else:
        raise InputError("no manifest.jsonl or label.txt: not a dataset folder", source=d)
    if split is not None:
        samples = [s for s in samples if s.split == split]
    return samples


def _read_manifest(d: Path) -> list[Sample]:
    out = []
    for n, line in enumerate((d / "manifest.jsonl").read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            s = sample_from_record(d, r)
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise InputError(f"line {n}: malformed sample ({e})", source=d / "manifest.jsonl") from None
        # JSON carries NaN, numbers and nulls where text belongs; they would reach the model as "nan" or "None"
        wrong = next((k for k in _TEXT_FIELDS if k in r and not isinstance(r[k], str)
                      and not (r[k] is None and k in ("mask", "product"))), None)
        if wrong is not None:
            raise InputError(f"line {n}: {wrong} must be a string, got {r[wrong]!r}", source=d / "manifest.jsonl")
        if not isinstance(s.severity, (int, float)) or not math.isfinite(s.severity):
            raise InputError(f"line {n}: severity must be a finite number, got {s.severity!r}",
                             source=d / "manifest.jsonl")
        if s.label not in CLASSES:
            raise InputError(f"line {n}: unknown label {s.label!r}", source=d / "manifest.jsonl")
        out.append(s)
    return out


def summarize(samples: list[Sample]) -> dict[str, dict[str, int]]:
    """Counts per split and class, for READMEs and progress lines."""
    c: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    for s in samples:
        c.setdefault(s.split, Counter())[s.label] += 1
    return {k: dict(v) for k, v in c.items()}


def export_labels(store: Store, out: str | Path) -> int:
    """Human labels from the store as a dataset folder that ``read_dataset``, ``inspect train`` and ``inspect
    calibrate`` read: ``manifest.jsonl`` with each creative's placement mask (RFNet leans on the exact mask: without
    it the model falls back to a located one, docs/inspect.md), its generator and renderer family, the product's
    source (real or drawn) and a split by product, plus an RF1M-style ``label.txt`` of the same rows for other
    tools. Written to a temporary folder and renamed into place, so a crash never leaves half a dataset. Returns
    the number of labelled creatives."""
    import shutil
    import tempfile

    from adcreative.core.imageio import save_png
    from adcreative.inspect.preprocess import catalogue_source, generator_family

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError("output folder exists and is not empty", source=out)
    labels = store.latest_labels()
    if not labels:
        raise InputError("the store has no human labels yet (review creatives in `adcreative console`)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for sub in ("images", "masks", "products"):
            (tmp / sub).mkdir()
        lines = ["# image label product title  (labels: " + ", ".join(f"{i} {c}" for i, c in enumerate(CLASSES)) + ")"]
        samples = []
        seen_products: dict[str, str] = {}
        for cid, lb in sorted(labels.items()):
            c = store.get_creative(cid)
            p = store.get_product(c.product_id)
            if c.product_id not in seen_products:
                rel = f"products/{len(seen_products):05d}.png"
                save_png(tmp / rel, p.image)
                seen_products[c.product_id] = rel
            image = tmp / "images" / f"{cid}.png"
            image.write_bytes(store.blobs.get_bytes(c.image_sha))
            mask = None
            if c.mask_sha is not None:
                mask = tmp / "masks" / f"{cid}.png"
                mask.write_bytes(store.blobs.get_bytes(c.mask_sha))
            title = p.title.replace("\n", " ")
            lines.append(f"images/{cid}.png\t{CLASSES.index(lb.label)}\t{seen_products[c.product_id]}\t{title}")
            samples.append(Sample(id=cid, image=image, mask=mask, product=tmp / seen_products[c.product_id],
                                  product_id=c.product_id, title=p.title, category=p.category, label=lb.label,
                                  split=split_for(c.product_id), aspect=c.aspect, seed=c.seed,
                                  generator=c.generator, renderer=generator_family(c.generator),
                                  product_source=catalogue_source(p)))
        (tmp / "label.txt").write_text("\n".join(lines) + "\n")
        write_manifest(tmp, samples)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(labels)
