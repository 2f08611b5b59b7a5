"""Data for RFNet: dataset folders and store labels → items → cached encodings.

Training runs the frozen EfficientNet trunk and the MiniLM title encoder once per image (the slow part on a
CPU), keeps their outputs in an :class:`EncodedSet`, and then trains only the small trainable parts for many
epochs. The same encodings serve every ablation, so the baselines table costs one encoding pass.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from adcreative.core.errors import InputError
from adcreative.core.imageio import open_image
from adcreative.core.types import CLASSES, Creative, Product
from adcreative.inspect.datasets.formats import Sample, read_dataset, split_for
from adcreative.inspect.model import SPATIAL_KEYS
from adcreative.inspect.preprocess import (
    InspectItem,
    catalogue_source,
    check_item,
    generator_family,
    preprocess_item,
)

if TYPE_CHECKING:
    from adcreative.core.store import Store

ENCODING_VERSION = "8"  # 4: + the product view's last-block maps; 5: + colour affinity; 6: aux maps pooled;
# 7: product maps and titles as shared tables, renderer families; 8: + the measured cues


# -- items -----------------------------------------------------------------------------------------------
def check_splits(samples: Sequence[Sample]) -> None:
    """Splits are by product: a product id in two splits would leak its look into evaluation."""
    seen: dict[str, str] = {}
    for s in samples:
        prev = seen.setdefault(s.product_id, s.split)
        if prev != s.split:
            raise InputError(f"product {s.product_id!r} appears in splits {prev!r} and {s.split!r} "
                             "(splits must be by product)", source=s.image)


def load_sample(s: Sample, _cutouts: dict[Path, Image.Image] | None = None) -> InspectItem:
    """Open a sample's files (checked: missing, corrupt, size mismatch → InputError)."""
    image = open_image(s.image).convert("RGB")
    mask = None
    if s.mask is not None:
        mask = open_image(s.mask).convert("L")
        if mask.size != image.size:
            raise InputError(f"mask is {mask.size[0]}×{mask.size[1]} but its image is "
                             f"{image.size[0]}×{image.size[1]}", source=s.mask)
    product = None
    if s.product is not None:
        if _cutouts is not None and s.product in _cutouts:
            product = _cutouts[s.product]
        else:
            raw = open_image(s.product)
            if raw.mode not in ("RGBA", "LA", "P"):
                raise InputError(f"product cutout has mode {raw.mode}, needs an alpha channel", source=s.product)
            product = raw.convert("RGBA")
            if _cutouts is not None:
                _cutouts[s.product] = product
    title = s.title or s.category  # RF1M lines may carry no title; the category is the next best text
    item = InspectItem(image=image, title=title, mask=mask, product=product, label=s.label,
                       product_id=s.product_id, id=s.id, source=str(s.image), height_cm=sample_height_cm(s),
                       renderer=renderer_family(s), product_source=s.product_source)
    check_item(item, need_title=False)
    return item


def sample_height_cm(s: Sample) -> float:
    """A dataset sample's product height in cm: the catalogue's figure ``dataset synth`` recorded with the scene
    (``params.geometry.product_cm``, from :func:`~adcreative.catalogue.sizes.real_height_cm`), else the catalogue's
    prior from the title and category (an RF1M line)."""
    from adcreative.catalogue.sizes import is_height_cm, text_height_cm

    geometry = s.params.get("geometry") if isinstance(s.params, dict) else None
    cm = geometry.get("product_cm") if isinstance(geometry, dict) else None
    if is_height_cm(cm):
        return float(cm)
    return text_height_cm(s.title, s.category)


def creative_item(store: Store, creative: Creative, product: Product | None = None,
                  label: str | None = None, mask: Image.Image | None = None) -> InspectItem:
    """An item for a creative in the store: its image, its product's cutout and title, and its placement
    mask (given; else the one stored at generation; else, for a legacy row, rebuilt from the layout; else
    none, and the model falls back to saliency)."""
    from adcreative.catalogue.sizes import real_height_cm
    from adcreative.generate.provenance import placement_mask

    product = product or store.get_product(creative.product_id)
    image = store.creative_image(creative).convert("RGB")
    if mask is None or mask.size != image.size:
        mask = placement_mask(store, creative, product)
    return InspectItem(image=image, title=product.title, mask=mask if mask is not None and mask.size == image.size
                       else None, product=product.image, label=label, product_id=product.id, id=creative.id,
                       source=f"creative {creative.id}", height_cm=real_height_cm(product),
                       renderer=generator_family(creative.generator),
                       product_source=catalogue_source(product))


def latest_labels(store: Store) -> dict[str, str]:
    """Human labels, the latest per creative wins."""
    out: dict[str, str] = {}
    for lab in store.labels():  # ordered oldest first
        out[lab.creative_id] = lab.label
    return out


def store_samples(store: Store) -> list[tuple[Creative, str, str]]:
    """(creative, label, split) for every human-labelled creative; splits by hashing the product id."""
    labels = latest_labels(store)
    out = []
    for cid, lab in sorted(labels.items()):
        c = store.get_creative(cid)
        out.append((c, lab, split_for(c.product_id)))
    return out


# -- encodings -------------------------------------------------------------------------------------------
# per-row tensors; ``product``/``text``/``text_valid`` are tables shared by rows (every image of a product shares its
# cutout's maps, every image of a title its token embeddings), reached through ``product_idx``/``text_idx``
TENSOR_FIELDS = ("image", "image_mid", "local_mid", "aux", "local_aux", "labels", "local", "product_idx", "text_idx",
                 "cues", "placement")
TABLE_FIELDS = ("product", "text", "text_valid")


@dataclass
class EncodedSet:
    """Cached model inputs for a set of items: trunk maps, aux maps, title token embeddings, labels."""

    image: Tensor  # (N, 320, g, g) float16 (or 1280 after the frozen head conv)
    image_mid: Tensor  # (N, 40, S/8, S/8) float16: the trunk's stride-8 maps
    local_mid: Tensor  # (N, 40, S/8, S/8) float16: stride-8 maps of the product view
    aux: Tensor  # (N, 4, S/8, S/8) float16: mask, valid, edges, colour affinity, pooled to the local grid
    local_aux: Tensor  # (N, 4, S/8, S/8) float16: the same for the product view
    labels: Tensor  # (N,) int64, -1 when unknown
    local: Tensor  # (N, 320, g, g) float16 (or 1280): the trunk's last-block maps of the product view
    product_idx: Tensor  # (N,) int64: row of ``product``
    text_idx: Tensor  # (N,) int64: row of ``text``/``text_valid``
    cues: Tensor  # (N, n_cues) float32: the measured cues (inspect.cues) of the encoding config's cue set
    placement: Tensor  # (N,) float32: how sure the placement mask is (preprocess.placement_mask; 1 = given)
    product: Tensor  # (P, 320, g, g) float16 (or 1280): maps of the distinct product canvases
    text: Tensor  # (U, T, 384) float16: token embeddings of the distinct titles
    text_valid: Tensor  # (U, T) bool
    ids: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    renderers: list[str] = field(default_factory=list)  # the renderer family that drew each image ("" unknown)
    # where each image's product comes from (``product_source``: "real", "sample", "procedural", "fitted",
    # "skinned", "lookalike"; "" unknown, which the decision counts as real, decision.is_drawn)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.renderers:
            self.renderers = [""] * len(self.ids)
        if not self.sources:
            self.sources = [""] * len(self.ids)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def _tables(self) -> dict[str, Tensor]:
        return {f: getattr(self, f) for f in TABLE_FIELDS}

    def subset(self, idx: Sequence[int] | np.ndarray) -> EncodedSet:
        """The rows ``idx`` (copied); the shared tables are shared, not copied."""
        ix = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        pick = [int(i) for i in ix]
        return EncodedSet(**{f: getattr(self, f)[ix] for f in TENSOR_FIELDS}, **self._tables(),
                          ids=[self.ids[i] for i in pick], product_ids=[self.product_ids[i] for i in pick],
                          splits=[self.splits[i] for i in pick], renderers=[self.renderers[i] for i in pick],
                          sources=[self.sources[i] for i in pick])

    def split(self, name: str) -> EncodedSet:
        return self.subset([i for i, s in enumerate(self.splits) if s == name])

    def partition(self) -> dict[str, EncodedSet]:
        """The set cut into its splits, *consuming* it: each field is freed as soon as it is copied out, so a
        large set peaks at about 1.25× its size instead of 2× (train + val + test copies beside the whole)."""
        names = sorted(set(self.splits))
        rows = {n: torch.as_tensor([i for i, s in enumerate(self.splits) if s == n], dtype=torch.int64) for n in names}
        parts: dict[str, dict[str, Any]] = {n: {} for n in names}
        for f in TENSOR_FIELDS:
            full = getattr(self, f)
            for n in names:
                parts[n][f] = full[rows[n]]
            # an empty tensor of its own: a slice such as full[:0] would be a view that keeps all of full alive
            setattr(self, f, full.new_empty((0, *full.shape[1:])))
            del full
        out = {}
        for n in names:
            pick = rows[n].tolist()
            out[n] = EncodedSet(**parts[n], **self._tables(), ids=[self.ids[i] for i in pick],
                                product_ids=[self.product_ids[i] for i in pick], splits=[n] * len(pick),
                                renderers=[self.renderers[i] for i in pick], sources=[self.sources[i] for i in pick])
        self.ids, self.product_ids, self.splits, self.renderers, self.sources = [], [], [], [], []
        return out

    def batch(self, idx: Tensor, *, flip: Tensor | None = None) -> dict[str, Tensor]:
        """A float32 batch for ``forward_features``; ``flip`` (bool per row) mirrors the spatial modalities."""
        t = self.text_idx[idx]
        valid = self.text_valid[t]
        L = max(1, int(valid.sum(1).max())) if len(idx) else 1  # trim padding shared by the whole batch
        b = {"image": self.image[idx].float(), "image_mid": self.image_mid[idx].float(),
             "local_mid": self.local_mid[idx].float(), "local_aux": self.local_aux[idx].float(),
             "product": self.product[self.product_idx[idx]].float(), "aux": self.aux[idx].float(),
             "text": self.text[t, :L].float(), "text_valid": valid[:, :L], "local": self.local[idx].float(),
             "cues": self.cues[idx].float()}
        if flip is not None and bool(flip.any()):
            for k in SPATIAL_KEYS:
                b[k][flip] = b[k][flip].flip(-1)
        return b

    def with_maps(self, image: Tensor, product: Tensor, local: Tensor) -> EncodedSet:
        """The same samples with other trunk maps (e.g. after the frozen head conv); ``product`` is the table."""
        return replace(self, image=image, product=product, local=local)

    def class_counts(self) -> np.ndarray:
        lab = self.labels[self.labels >= 0].numpy()
        return np.bincount(lab, minlength=len(CLASSES))

    def nbytes(self) -> int:
        return sum(getattr(self, f).element_size() * getattr(self, f).nelement()
                   for f in (*TENSOR_FIELDS, *TABLE_FIELDS))

    def save(self, path: Path, key: str, extra: dict[str, str] | None = None) -> None:
        """Write the set to ``path`` (atomically) under ``key``; ``extra``: more metadata strings."""
        from safetensors.torch import save

        from adcreative.core.imageio import atomic_write

        tensors = {f: getattr(self, f) for f in (*TENSOR_FIELDS, *TABLE_FIELDS)}
        tensors["text_valid"] = self.text_valid.to(torch.uint8)  # safetensors has no bool
        meta = {**(extra or {}), "key": key, "ids": json.dumps(self.ids), "product_ids": json.dumps(self.product_ids),
                "splits": json.dumps(self.splits), "renderers": json.dumps(self.renderers),
                "sources": json.dumps(self.sources)}
        atomic_write(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))

    @classmethod
    def load(cls, path: Path, key: str, *, mmap: bool = False) -> EncodedSet | None:
        """The set saved at ``path`` if it was saved under ``key``. With ``mmap`` the tensors are memory-mapped
        from the file (copy-on-write) instead of read: pages come in as rows are used and the kernel may drop
        them again, so a set larger than the free memory can still be cut into training folds."""
        from safetensors import SafetensorError, safe_open

        if not path.exists():
            return None
        try:  # a damaged cache file (a disk filled mid-copy, a stray edit) is a miss: encoded again and replaced
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            if meta.get("key") != key:
                return None
            if mmap:
                t = _mmap_safetensors(path)
            else:
                from safetensors.torch import load_file

                t = load_file(str(path))
        except (SafetensorError, OSError, ValueError, struct.error):
            return None
        t["text_valid"] = t["text_valid"].bool()
        ids = json.loads(meta["ids"])
        if "placement" not in t:  # saved before placements were kept: only sets with masks were (PLACEMENT_VERSION)
            t["placement"] = torch.ones(len(ids))
        return cls(**{f: t[f] for f in (*TENSOR_FIELDS, *TABLE_FIELDS)}, ids=ids,
                   product_ids=json.loads(meta["product_ids"]), splits=json.loads(meta["splits"]),
                   renderers=json.loads(meta.get("renderers", "[]")), sources=json.loads(meta.get("sources", "[]")))


_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}


def _mmap_safetensors(path: Path) -> dict[str, Tensor]:
    """Tensors of a safetensors file as copy-on-write memory maps (the format: an 8-byte little-endian header
    length, a JSON header of dtype/shape/byte offsets, then the raw buffers)."""
    import struct
    import warnings

    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES[info["dtype"]]
        start, stop = info["data_offsets"]
        shape = tuple(info["shape"])
        if stop == start:
            arr = np.zeros(shape, dtype)
        else:
            arr = np.memmap(path, dtype=dtype, mode="c", offset=8 + n + start, shape=shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = torch.from_numpy(arr)
    return out


def encoding_config(model_config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a model's config the encodings depend on (any RFNet variant with these can share them)."""
    keys = ("image_size", "aux_size", "max_text_tokens", "text_encoder", "backbone", "backbone_weights", "cue_set")
    from adcreative.inspect.model import RFNet

    defaults = {k: v.default for k, v in __import__("inspect").signature(RFNet.__init__).parameters.items()}
    return {k: model_config.get(k, defaults.get(k)) for k in keys}


@torch.no_grad()
def encode_items(
    items: Iterable[InspectItem],
    n: int,
    cfg: dict[str, Any],
    *,
    batch_size: int = 32,
    splits: Sequence[str] | None = None,
    renderers: Sequence[str] | None = None,
    progress: bool = True,
    desc: str = "encoding",
    tables: EncodeTables | None = None,
    bar: Any = None,
) -> EncodedSet:
    """Run the frozen trunk and title encoder over items (any RFNet variant with ``cfg`` can train on it).
    ``tables``: the product canvases and titles met by earlier calls of one encoding (see :class:`EncodeTables`);
    the rows then index those tables and the returned set holds only the table rows this call added. ``bar``: a
    progress bar to advance instead of one of its own."""
    from tqdm.auto import tqdm

    from adcreative.core.backbones import fast_trunk, title_tokens

    weights = cfg.get("backbone_weights")
    S, A, T = int(cfg["image_size"]), int(cfg["aux_size"]), int(cfg["max_text_tokens"])
    # rows go straight into tensors allocated for ``n`` rows at the first batch: no list of batches to concatenate
    # at the end, which would hold the whole set twice
    parts: dict[str, Tensor] = {}
    ids: list[str] = []
    pids: list[str] = []
    sources: list[str] = []
    buf: list[InspectItem] = []

    # every image of a product shares its cutout: the trunk runs once per cutout (keyed by its pixels) and the
    # maps are kept once, in a table the rows index; titles likewise
    tables = EncodeTables() if tables is None else tables
    product_rows, product_table = tables.product_rows, tables.product
    title_rows, text_table, valid_table = tables.title_rows, tables.text, tables.valid
    p0, t0 = len(product_table), len(text_table)  # the table rows this call adds start here

    def product_key(it: InspectItem) -> str | None:
        if it.product is None:
            return None  # cut out of the image itself: differs per image
        return hashlib.sha1(it.product.tobytes()).hexdigest() + str(it.product.size)

    # RFNet reads the aux maps average-pooled onto the stride-8 grid, so the cache keeps them pooled: 16× less
    # memory at the default sizes, the same numbers (pooling commutes with the mirror flip)
    G = S // 8

    def pooled(key: str, arr: list[dict[str, np.ndarray]]) -> Tensor:
        x = torch.from_numpy(np.stack([a[key] for a in arr]))
        if A > G and A % G == 0:
            x = torch.nn.functional.avg_pool2d(x, A // G)
        return x.half()

    def flush() -> None:
        arr = [preprocess_item(it, image_size=S, aux_size=A, cue_set=cfg.get("cue_set")) for it in buf]
        keys = [product_key(it) for it in buf]
        todo: list[int] = []
        fresh_keys: set[str] = set()
        for i, k in enumerate(keys):
            if k is None or (k not in product_rows and k not in fresh_keys):
                todo.append(i)
                if k is not None:
                    fresh_keys.add(k)
        x = torch.from_numpy(np.stack([a["image"] for a in arr]))
        loc = torch.from_numpy(np.stack([a["local"] for a in arr]))
        p = torch.from_numpy(np.stack([arr[i]["product"] for i in todo])) if todo else x[:0]
        mid, f = fast_trunk(torch.cat([x, loc, p]), weights)
        f = f.half()
        b = len(buf)
        row: dict[str, Tensor] = {"image": f[:b], "image_mid": mid[:b].half(), "local_mid": mid[b:2 * b].half(),
                                  "local": f[b:2 * b], "local_aux": pooled("local_aux", arr), "aux": pooled("aux", arr),
                                  "cues": torch.from_numpy(np.stack([a["cues"] for a in arr])),
                                  "placement": torch.from_numpy(np.stack([a["placement"] for a in arr]))}
        rows = []
        own: dict[int, int] = {}
        for j, i in enumerate(todo):
            own[i] = len(product_table)
            product_table.append(f[2 * b + j])
            tables.product_keys.append(keys[i])
            if keys[i] is not None:
                product_rows[keys[i]] = own[i]  # type: ignore[index]
        for i, k in enumerate(keys):
            rows.append(own[i] if i in own else product_rows[k])  # type: ignore[index]
        row["product_idx"] = torch.tensor(rows, dtype=torch.int64)
        titles = [str(it.title or "") for it in buf]
        new = sorted({t for t in titles if t not in title_rows})
        if new:
            txt, valid = title_tokens(new, encoder=str(cfg["text_encoder"]), max_tokens=T)
            for j, t in enumerate(new):
                pad = torch.zeros(T, txt.shape[-1])
                pv = torch.zeros(T, dtype=torch.bool)
                pad[:txt.shape[1]], pv[:valid.shape[1]] = txt[j], valid[j]
                title_rows[t] = len(text_table)
                text_table.append(pad.half())
                valid_table.append(pv)
                tables.titles.append(t)
        row["text_idx"] = torch.tensor([title_rows[t] for t in titles], dtype=torch.int64)
        row["labels"] = torch.tensor([CLASSES.index(it.label) if it.label else -1 for it in buf], dtype=torch.int64)
        start = len(ids)
        for k, v in row.items():
            if k not in parts:
                parts[k] = torch.empty((max(n, start + b), *v.shape[1:]), dtype=v.dtype)
            elif start + b > len(parts[k]):  # more items than announced
                parts[k] = torch.cat([parts[k], torch.empty((start + b - len(parts[k]), *v.shape[1:]), dtype=v.dtype)])
            parts[k][start:start + b] = v
        ids.extend(it.id for it in buf)
        pids.extend(it.product_id for it in buf)
        sources.extend(it.product_source for it in buf)
        buf.clear()

    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, leave=False)
    for it in items:
        buf.append(it)
        if len(buf) == batch_size:
            flush()
            bar.update(batch_size)
    if buf:
        k = len(buf)
        flush()
        bar.update(k)
    if own_bar:
        bar.close()
    if not ids:
        raise InputError("no samples to encode")
    def added(table: list[Tensor], start: int) -> Tensor:  # no new canvas or title: still the table's shape
        return torch.stack(table[start:]) if len(table) > start else table[0].new_zeros((0, *table[0].shape))

    return EncodedSet(**{k: v[:len(ids)] for k, v in parts.items()}, product=added(product_table, p0),
                      text=added(text_table, t0), text_valid=added(valid_table, t0),
                      ids=ids, product_ids=pids, splits=list(splits) if splits is not None else [""] * len(ids),
                      renderers=list(renderers) if renderers is not None else [""] * len(ids), sources=sources)


@dataclass
class EncodeTables:
    """The distinct product canvases and titles an encoding has met, in table order, with the keys
    :func:`encode_items` finds them by (a canvas's pixel digest, None for one cut out of its own image; a title's
    text). A resumable encoding carries them from chunk to chunk, so its rows index them as one run's would."""

    product_rows: dict[str, int] = field(default_factory=dict)
    product: list[Tensor] = field(default_factory=list)
    product_keys: list[str | None] = field(default_factory=list)
    title_rows: dict[str, int] = field(default_factory=dict)
    text: list[Tensor] = field(default_factory=list)
    valid: list[Tensor] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)

    def extend(self, part: EncodedSet, product_keys: Sequence[str | None], titles: Sequence[str]) -> None:
        """Add the table rows a saved chunk added (``part``'s tables, with their keys)."""
        # checked whole before anything is added: a chunk refused here leaves the tables as they were
        if (len(product_keys) != len(part.product) or len(titles) != len(part.text)
                or len(part.text_valid) != len(part.text)):
            raise ValueError("a chunk's table keys do not match its tables")
        for k, row in zip(product_keys, part.product, strict=True):
            if k is not None:
                self.product_rows[k] = len(self.product)
            self.product.append(row)
            self.product_keys.append(k)
        for t, row, v in zip(titles, part.text, part.text_valid, strict=True):
            self.title_rows[t] = len(self.text)
            self.text.append(row)
            self.valid.append(v)
            self.titles.append(t)


def renderer_family(s: Sample) -> str:
    """The renderer family that drew a sample: the manifest's ``renderer`` field or ``params["renderer"]``, else
    the generator's name (``compositor@3`` → ``compositor``)."""
    r = getattr(s, "renderer", "") or (s.params or {}).get("renderer") or generator_family(s.generator)
    return str(r)


PLACEMENT_VERSION = 2  # how an image without a mask gets one (inspect.locate); bump when it changes
# 2: the best placement below FOUND too (not saliency); small products and products cut by the canvas edge


def _cache_file(samples: Sequence[Sample], cfg: dict[str, Any], cache_dir: Path) -> tuple[str, Path]:
    """The cache key of these samples' encodings and the file that holds them."""
    from adcreative.inspect.cues import CUES_VERSION, LEGACY_CUE_SET, cue_names

    # the set's cue names too: two definitions of one set (branches, a renamed cue) never share a cache
    names = list(cue_names(cfg.get("cue_set") or LEGACY_CUE_SET))
    h = hashlib.sha256(json.dumps([ENCODING_VERSION, CUES_VERSION, cfg, names], sort_keys=True).encode())
    for s in samples:
        st = s.image.stat() if s.image.exists() else None
        h.update(f"{s.id}|{s.image}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}|{s.label}|"
                 f"{s.split}|{s.title}|{renderer_family(s)}|{sample_height_cm(s)}".encode())
        if s.mask is None:  # placed by locate (sets with masks keep the keys they had)
            h.update(f"|placement {PLACEMENT_VERSION}".encode())
    key = h.hexdigest()
    return key, cache_dir / f"rfnet-enc-{key[:16]}.safetensors"


ENCODE_CHUNK = 1024  # rows per saved chunk of a cached encoding: an interrupted one loses at most this many


def encode_samples(samples: Sequence[Sample], cfg: dict[str, Any], *, cache_dir: Path | None = None,
                   progress: bool = True, batch_size: int = 32, mmap: bool = False,
                   chunk_rows: int = ENCODE_CHUNK) -> EncodedSet:
    """Encode dataset samples, reusing a cache file keyed by the encoding config and the sample files (with
    ``mmap`` a cached set is memory-mapped, see :meth:`EncodedSet.load`).

    With a cache, the encoding is saved chunk by chunk (``chunk_rows`` rows, a multiple of ``batch_size``) beside
    the cache file, and an encoding interrupted (killed, a corrupt image met) resumes from its last whole chunk:
    the chunks carry the product and title tables from one to the next, so the resumed set equals one run's bit
    for bit. The chunks are removed once the whole set is written."""
    check_splits(samples)
    if cache_dir is None:
        cutouts: dict[Path, Image.Image] = {}
        return encode_items((load_sample(s, cutouts) for s in samples), len(samples), cfg,
                            splits=[s.split for s in samples], renderers=[renderer_family(s) for s in samples],
                            progress=progress, batch_size=batch_size)
    if chunk_rows < 1 or chunk_rows % batch_size:
        # the trunk sees the same batches as one run's only when chunks end where batches do
        raise ValueError(f"chunk_rows must be a positive multiple of batch_size ({batch_size}), got {chunk_rows}")
    key, path = _cache_file(samples, cfg, cache_dir)
    hit = EncodedSet.load(path, key, mmap=mmap)
    if hit is not None:
        hit.sources = [s.product_source for s in samples]  # a cache saved before sources were kept has none
        return hit
    enc = _encode_in_chunks(samples, cfg, key, path, progress=progress, batch_size=batch_size, chunk_rows=chunk_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc.save(path, key)
    for part in _chunk_files(path):  # only after the whole set is on disk
        part.unlink(missing_ok=True)
    if mmap:  # hand back the mapped file, not the set just built in memory
        del enc
        hit = EncodedSet.load(path, key, mmap=True)
        assert hit is not None
        return hit
    return enc


def _chunk_files(path: Path) -> list[Path]:
    """The saved chunks of the encoding whose cache file is ``path`` (``rfnet-enc-KEY.chunk-NNNN.safetensors``)."""
    return sorted(path.parent.glob(f"{path.stem}.chunk-*.safetensors"))


def _encode_in_chunks(samples: Sequence[Sample], cfg: dict[str, Any], key: str, path: Path, *, progress: bool,
                      batch_size: int, chunk_rows: int) -> EncodedSet:
    """The samples' encodings, chunk by chunk, each chunk read back when a whole one of this key is saved and
    encoded and saved (atomically) otherwise; the chunks joined (their rows index the joined tables)."""
    from safetensors import SafetensorError, safe_open
    from tqdm.auto import tqdm

    tables = EncodeTables()
    pieces: list[EncodedSet] = []
    cutouts: dict[Path, Image.Image] = {}
    bar = tqdm(total=len(samples), desc="encoding", unit="img", disable=not progress, leave=False)
    for c, start in enumerate(range(0, len(samples), chunk_rows)):
        chunk = samples[start:start + chunk_rows]
        part_path = path.with_name(f"{path.stem}.chunk-{c:04d}.safetensors")
        part_key = f"{key}|chunk {c} of {chunk_rows} rows"
        part = EncodedSet.load(part_path, part_key)
        if part is not None:
            try:
                with safe_open(str(part_path), "pt") as f:
                    meta = f.metadata() or {}
                tables.extend(part, json.loads(meta["product_keys"]), json.loads(meta["titles"]))
            except (SafetensorError, OSError, KeyError, ValueError):
                part = None  # a damaged chunk is encoded again (the tables are only extended once it is whole)
        if part is None:
            p0, t0 = len(tables.product), len(tables.text)
            part = encode_items((load_sample(s, cutouts) for s in chunk), len(chunk), cfg,
                                splits=[s.split for s in chunk], renderers=[renderer_family(s) for s in chunk],
                                batch_size=batch_size, tables=tables, bar=bar)
            part_path.parent.mkdir(parents=True, exist_ok=True)
            part.save(part_path, part_key, extra={"product_keys": json.dumps(tables.product_keys[p0:]),
                                                  "titles": json.dumps(tables.titles[t0:])})
        else:
            bar.update(len(chunk))
        pieces.append(part)
    bar.close()
    if len(pieces) == 1:
        return pieces[0]

    def joined(f: str) -> Tensor:  # each field freed from the chunks once joined: the set is not held twice
        out = torch.cat([getattr(p, f) for p in pieces])
        for p in pieces:
            setattr(p, f, getattr(p, f)[:0])
        return out

    return EncodedSet(**{f: joined(f) for f in (*TENSOR_FIELDS, *TABLE_FIELDS)},
                      ids=[i for p in pieces for i in p.ids], product_ids=[i for p in pieces for i in p.product_ids],
                      splits=[i for p in pieces for i in p.splits], renderers=[i for p in pieces for i in p.renderers],
                      sources=[i for p in pieces for i in p.sources])


def encode_splits(data: Path, splits: Collection[str] | None, cfg: dict[str, Any], *, cache: bool = True,
                  progress: bool = True, samples: Sequence[Sample] | None = None) -> EncodedSet:
    """The samples of the dataset folder ``data`` in ``splits`` (every split when None), encoded. When the whole
    dataset's encodings are cached already (training leaves them), they are read from that file, memory-mapped,
    and subset: encoding a split of a large set again took as long as training on it. ``samples``: the folder's
    samples when the caller has read them already (``read_dataset(data)``), so the manifest is read once."""
    samples = read_dataset(data) if samples is None else samples
    keep = [i for i, s in enumerate(samples) if splits is None or s.split in splits]
    if not keep:
        if splits is None:
            raise InputError("no samples: the dataset's manifest lists no images", source=data)
        raise InputError(f"no samples in split{'s' if len(splits) > 1 else ''} {', '.join(sorted(splits))}",
                         source=data)
    if cache and len(keep) < len(samples):
        check_splits(samples)
        key, path = _cache_file(samples, cfg, data / ".cache")
        whole = EncodedSet.load(path, key, mmap=True)
        if whole is not None:
            return whole.subset(keep)
    return encode_samples([samples[i] for i in keep], cfg, cache_dir=(data / ".cache") if cache else None,
                          progress=progress)


def encode_store_labels(store: Store, cfg: dict[str, Any], *, progress: bool = True) -> EncodedSet:
    """Encode the human-labelled creatives of a store (the RF1M-style feedback dataset)."""
    rows = store_samples(store)
    if not rows:
        raise InputError("the store has no human labels to train on (label creatives first)")
    products: dict[str, Product] = {}

    def items() -> Iterable[InspectItem]:
        for c, lab, _ in rows:
            if c.product_id not in products:
                products[c.product_id] = store.get_product(c.product_id)
            yield creative_item(store, c, products[c.product_id], label=lab)

    return encode_items(items(), len(rows), cfg, splits=[s for _, _, s in rows], progress=progress,
                        desc="encoding labels")


SPLIT_RULES = ("same", "first")  # how several dataset folders that share products agree on their splits


def encode_folders(folders: Sequence[Path], cfg: dict[str, Any], *, splits: str = "same", cache: bool = True,
                   mmap: bool = False, progress: bool = True) -> tuple[EncodedSet, list[list[Sample]]]:
    """Several dataset folders as one dataset: each encoded (and cached) in its own folder, then concatenated;
    returns the set and each folder's samples. A product in several folders (the real and sample products every
    rendered set draws again) must have one split. ``splits`` "same" refuses folders that split a product
    differently; "first" gives it the split of the first folder that has it, so a set rendered later can join
    one whose test products must stay unseen. The splits move after encoding: each folder's cache still holds."""
    if splits not in SPLIT_RULES:
        raise InputError(f"unknown split rule {splits!r}; choose from {', '.join(SPLIT_RULES)}")
    sets: list[EncodedSet] = []
    all_samples: list[list[Sample]] = []
    split_of: dict[str, tuple[str, Path]] = {}
    for folder in folders:
        samples = read_dataset(folder)
        if not samples:
            raise InputError("dataset has no samples", source=folder)
        enc = encode_samples(samples, cfg, cache_dir=(folder / ".cache") if cache else None, progress=progress,
                             mmap=mmap)
        moved = 0
        for i, (pid, sp) in enumerate(zip(enc.product_ids, enc.splits, strict=True)):
            first, where = split_of.setdefault(pid, (sp, folder))
            if first == sp:
                continue
            if splits == "same":
                raise InputError(f"product {pid} is in the {first} split of {where} and in the {sp} split of "
                                 f"{folder}; the folders must split products alike (or give the first folder's "
                                 "split with the 'first' rule)", source=folder)
            enc.splits[i] = first
            moved += 1
        if moved and progress:
            print(f"{folder}: {moved} images moved to the split an earlier folder gives their product")
        sets.append(enc)
        all_samples.append(samples)
    return (sets[0] if len(sets) == 1 else concat(sets)), all_samples


def load_training_data(data: str | Path | Sequence[str | Path] | None, store: Store | None, cfg: dict[str, Any], *,
                       use_store_labels: bool = False, cache: bool = True, progress: bool = True,
                       splits: str = "same") -> EncodedSet:
    """One or more dataset folders (ours or RF1M's; several are one dataset, their shared products split by
    ``splits``, see :func:`encode_folders`), the store's human labels, or both concatenated."""
    sets = []
    if data is not None:
        folders = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
        if folders:
            # mapped, not read: the folders' sets are copied once, into the joined set (or the splits cut from it)
            sets.append(encode_folders(folders, cfg, splits=splits, cache=cache, mmap=cache, progress=progress)[0])
    if use_store_labels and store is not None:
        sets.append(encode_store_labels(store, cfg, progress=progress))
    if not sets:
        raise InputError("nothing to train on: give --data DIR and/or --store-labels")
    out = sets[0] if len(sets) == 1 else concat(sets)
    seen: dict[str, str] = {}
    for pid, sp in zip(out.product_ids, out.splits, strict=True):
        if seen.setdefault(pid, sp) != sp:
            raise InputError(f"product {pid!r} falls in splits {seen[pid]!r} and {sp!r} across the dataset and "
                             "the store labels (splits must be by product)")
    return out


def concat(sets: Sequence[EncodedSet]) -> EncodedSet:
    """The sets one after another (their tables concatenated, the row indices shifted to match)."""
    T = max(s.text.shape[1] for s in sets)
    rows: dict[str, list[Tensor]] = {f: [] for f in TENSOR_FIELDS}
    p_off = t_off = 0
    for s in sets:
        for f in TENSOR_FIELDS:
            v = getattr(s, f)
            rows[f].append(v + p_off if f == "product_idx" else v + t_off if f == "text_idx" else v)
        p_off += len(s.product)
        t_off += len(s.text)

    def pad(t: Tensor) -> Tensor:  # titles are padded to the longest set's token count
        return torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, T - t.shape[1]))

    return EncodedSet(**{f: torch.cat(v) for f, v in rows.items()},
                      product=torch.cat([s.product for s in sets]), text=torch.cat([pad(s.text) for s in sets]),
                      text_valid=torch.cat([pad(s.text_valid) for s in sets]), ids=[i for s in sets for i in s.ids],
                      product_ids=[p for s in sets for p in s.product_ids], splits=[x for s in sets for x in s.splits],
                      renderers=[r for s in sets for r in s.renderers], sources=[x for s in sets for x in s.sources])
