"""Data for RFNet: dataset folders and store labels → items → cached encodings.

Training runs the frozen EfficientNet trunk and the MiniLM title encoder once per image (the slow part on a
CPU), keeps their outputs in an :class:`EncodedSet`, and then trains only the small trainable parts for many
epochs. The same encodings serve every ablation, so the baselines table costs one encoding pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
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
from adcreative.inspect.preprocess import InspectItem, check_item, preprocess_item

if TYPE_CHECKING:
    from adcreative.core.store import Store

ENCODING_VERSION = "6"  # 4: + the product view's last-block maps; 5: + colour affinity; 6: aux maps pooled


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
                       product_id=s.product_id, id=s.id, source=str(s.image))
    check_item(item, need_title=False)
    return item


def creative_item(store: Store, creative: Creative, product: Product | None = None,
                  label: str | None = None, mask: Image.Image | None = None) -> InspectItem:
    """An item for a creative in the store: its image, its product's cutout and title, and its placement
    mask (given; else the one stored at generation; else, for a legacy row, rebuilt from the layout; else
    none, and the model falls back to saliency)."""
    from adcreative.generate.provenance import placement_mask

    product = product or store.get_product(creative.product_id)
    image = store.creative_image(creative).convert("RGB")
    if mask is None or mask.size != image.size:
        mask = placement_mask(store, creative, product)
    return InspectItem(image=image, title=product.title, mask=mask if mask is not None and mask.size == image.size
                       else None, product=product.image, label=label, product_id=product.id, id=creative.id,
                       source=f"creative {creative.id}")


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
TENSOR_FIELDS = ("image", "image_mid", "local_mid", "product", "aux", "local_aux", "text", "text_valid", "labels",
                 "local")


@dataclass
class EncodedSet:
    """Cached model inputs for a set of items: trunk maps, aux maps, title token embeddings, labels."""

    image: Tensor  # (N, 320, g, g) float16 (or 1280 after the frozen head conv)
    image_mid: Tensor  # (N, 40, S/8, S/8) float16: the trunk's stride-8 maps
    local_mid: Tensor  # (N, 40, S/8, S/8) float16: stride-8 maps of the product view
    product: Tensor  # (N, 320, g, g) float16
    aux: Tensor  # (N, 4, S/8, S/8) float16: mask, valid, edges, colour affinity, pooled to the local grid
    local_aux: Tensor  # (N, 4, S/8, S/8) float16: the same for the product view
    text: Tensor  # (N, T, 384) float16
    text_valid: Tensor  # (N, T) bool
    labels: Tensor  # (N,) int64, -1 when unknown
    local: Tensor  # (N, 320, g, g) float16 (or 1280): the trunk's last-block maps of the product view
    ids: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: Sequence[int] | np.ndarray) -> EncodedSet:
        ix = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        pick = [int(i) for i in ix]
        return EncodedSet(**{f: getattr(self, f)[ix] for f in TENSOR_FIELDS}, ids=[self.ids[i] for i in pick],
                          product_ids=[self.product_ids[i] for i in pick], splits=[self.splits[i] for i in pick])

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
            setattr(self, f, full[:0])
            del full
        out = {}
        for n in names:
            pick = rows[n].tolist()
            out[n] = EncodedSet(**parts[n], ids=[self.ids[i] for i in pick],
                                product_ids=[self.product_ids[i] for i in pick], splits=[n] * len(pick))
        self.ids, self.product_ids, self.splits = [], [], []
        return out

    def batch(self, idx: Tensor, *, flip: Tensor | None = None) -> dict[str, Tensor]:
        """A float32 batch for ``forward_features``; ``flip`` (bool per row) mirrors the spatial modalities."""
        valid = self.text_valid[idx]
        L = max(1, int(valid.sum(1).max())) if len(idx) else 1  # trim padding shared by the whole batch
        b = {"image": self.image[idx].float(), "image_mid": self.image_mid[idx].float(),
             "local_mid": self.local_mid[idx].float(), "local_aux": self.local_aux[idx].float(),
             "product": self.product[idx].float(), "aux": self.aux[idx].float(),
             "text": self.text[idx, :L].float(), "text_valid": valid[:, :L], "local": self.local[idx].float()}
        if flip is not None and bool(flip.any()):
            for k in SPATIAL_KEYS:
                b[k][flip] = b[k][flip].flip(-1)
        return b

    def with_maps(self, image: Tensor, product: Tensor, local: Tensor) -> EncodedSet:
        """The same samples with other trunk maps (e.g. after the frozen head conv)."""
        return replace(self, image=image, product=product, local=local)

    def class_counts(self) -> np.ndarray:
        lab = self.labels[self.labels >= 0].numpy()
        return np.bincount(lab, minlength=len(CLASSES))

    def save(self, path: Path, key: str) -> None:
        from safetensors.torch import save

        from adcreative.core.imageio import atomic_write

        tensors = {f: getattr(self, f) for f in TENSOR_FIELDS}
        tensors["text_valid"] = self.text_valid.to(torch.uint8)  # safetensors has no bool
        meta = {"key": key, "ids": json.dumps(self.ids), "product_ids": json.dumps(self.product_ids),
                "splits": json.dumps(self.splits)}
        atomic_write(path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))

    @classmethod
    def load(cls, path: Path, key: str) -> EncodedSet | None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not path.exists():
            return None
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if meta.get("key") != key:
            return None
        t = load_file(str(path))
        t["text_valid"] = t["text_valid"].bool()
        return cls(**{f: t[f] for f in TENSOR_FIELDS}, ids=json.loads(meta["ids"]),
                   product_ids=json.loads(meta["product_ids"]), splits=json.loads(meta["splits"]))


def encoding_config(model_config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a model's config the encodings depend on (any RFNet variant with these can share them)."""
    keys = ("image_size", "aux_size", "max_text_tokens", "text_encoder", "backbone", "backbone_weights")
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
    progress: bool = True,
    desc: str = "encoding",
) -> EncodedSet:
    """Run the frozen trunk and title encoder over items (any RFNet variant with ``cfg`` can train on it)."""
    from tqdm.auto import tqdm

    from adcreative.core.backbones import fast_trunk, title_tokens

    weights = cfg.get("backbone_weights")
    S, A, T = int(cfg["image_size"]), int(cfg["aux_size"]), int(cfg["max_text_tokens"])
    parts: dict[str, list[Tensor]] = {k: [] for k in ("image", "image_mid", "local_mid", "product", "aux",
                                                      "local_aux", "text", "text_valid", "labels", "local")}
    ids: list[str] = []
    pids: list[str] = []
    buf: list[InspectItem] = []

    # every image of a product shares its cutout: run the trunk once per cutout (keyed by its pixels)
    product_feats: dict[str, Tensor] = {}

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
        arr = [preprocess_item(it, image_size=S, aux_size=A) for it in buf]
        keys = [product_key(it) for it in buf]
        todo = [i for i, k in enumerate(keys) if k is None or k not in product_feats]
        x = torch.from_numpy(np.stack([a["image"] for a in arr]))
        loc = torch.from_numpy(np.stack([a["local"] for a in arr]))
        p = torch.from_numpy(np.stack([arr[i]["product"] for i in todo])) if todo else x[:0]
        mid, f = fast_trunk(torch.cat([x, loc, p]), weights)
        f = f.half()
        n = len(buf)
        parts["image"].append(f[:n])
        parts["image_mid"].append(mid[:n].half())
        parts["local_mid"].append(mid[n:2 * n].half())
        parts["local"].append(f[n:2 * n])
        parts["local_aux"].append(pooled("local_aux", arr))
        fresh = dict(zip(todo, f[2 * n:], strict=True))
        for i, k in enumerate(keys):
            if k is not None and i in fresh:
                product_feats[k] = fresh[i]
        parts["product"].append(torch.stack([fresh[i] if k is None else product_feats[k]
                                             for i, k in enumerate(keys)]))
        parts["aux"].append(pooled("aux", arr))
        titles = [str(it.title or "") for it in buf]
        txt, valid = title_tokens(titles, encoder=str(cfg["text_encoder"]), max_tokens=T)
        pad = torch.zeros(len(buf), T, txt.shape[-1])
        pv = torch.zeros(len(buf), T, dtype=torch.bool)
        pad[:, :txt.shape[1]], pv[:, :valid.shape[1]] = txt, valid
        parts["text"].append(pad.half())
        parts["text_valid"].append(pv)
        parts["labels"].append(torch.tensor([CLASSES.index(it.label) if it.label else -1 for it in buf]))
        ids.extend(it.id for it in buf)
        pids.extend(it.product_id for it in buf)
        buf.clear()

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
    bar.close()
    if not ids:
        raise InputError("no samples to encode")
    return EncodedSet(**{k: torch.cat(v) for k, v in parts.items()}, ids=ids, product_ids=pids,
                      splits=list(splits) if splits is not None else [""] * len(ids))


def encode_samples(samples: Sequence[Sample], cfg: dict[str, Any], *, cache_dir: Path | None = None,
                   progress: bool = True, batch_size: int = 32) -> EncodedSet:
    """Encode dataset samples, reusing a cache file keyed by the encoding config and the sample files."""
    check_splits(samples)
    key = None
    path = None
    if cache_dir is not None:
        h = hashlib.sha256(json.dumps([ENCODING_VERSION, cfg], sort_keys=True).encode())
        for s in samples:
            st = s.image.stat() if s.image.exists() else None
            h.update(f"{s.id}|{s.image}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}|{s.label}|"
                     f"{s.split}|{s.title}".encode())
        key = h.hexdigest()
        path = cache_dir / f"rfnet-enc-{key[:16]}.safetensors"
        hit = EncodedSet.load(path, key)
        if hit is not None:
            return hit
    cutouts: dict[Path, Image.Image] = {}
    enc = encode_items((load_sample(s, cutouts) for s in samples), len(samples), cfg,
                       splits=[s.split for s in samples], progress=progress, batch_size=batch_size)
    if path is not None and key is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        enc.save(path, key)
    return enc


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


def load_training_data(data: str | Path | None, store: Store | None, cfg: dict[str, Any], *,
                       use_store_labels: bool = False, cache: bool = True,
                       progress: bool = True) -> EncodedSet:
    """A dataset folder (ours or RF1M's), the store's human labels, or both concatenated."""
    sets = []
    if data is not None:
        d = Path(data)
        samples = read_dataset(d)
        if not samples:
            raise InputError("dataset has no samples", source=d)
        sets.append(encode_samples(samples, cfg, cache_dir=(d / ".cache") if cache else None, progress=progress))
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
    T = max(s.text.shape[1] for s in sets)

    def cat(f: str) -> Tensor:
        ts = [getattr(s, f) for s in sets]
        if f in ("text", "text_valid"):  # titles are padded to the longest set's token count
            ts = [torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, T - t.shape[1])) for t in ts]
        return torch.cat(ts)

    return EncodedSet(**{f: cat(f) for f in TENSOR_FIELDS}, ids=[i for s in sets for i in s.ids],
                      product_ids=[p for s in sets for p in s.product_ids], splits=[x for s in sets for x in s.splits])

