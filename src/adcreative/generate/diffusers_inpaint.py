"""JD's diffusion generator (Reliable_AD): SD 1.5-class inpainting + a canny ControlNet around the product.

For each creative the product cutout is cropped to its box (alpha ≥ ``box_alpha``), scaled to the prompt
preset's ``image_scale`` of the canvas and placed; the canny edges of the placed product (in colour, over
black) steer a ControlNet; Stable Diffusion inpaints everything outside the product (the inpainting mask is
dilated ``mask_dilate`` px into the product so its soft edge blends); finally the product's own pixels are
pasted back unaltered. These are JD's conventions (``Reliable_AD``: ``utils/utils.py``, ``sample.py``,
ControlNet scale 1.0, 40 DDIM steps), each a config field. Weights come from local files only (no hub access
at run time): diffusers folders, fp16 variants, single-file ``.safetensors`` checkpoints, kohya or diffusers
LoRAs.

``tune rfft`` fine-tunes the ControlNet through :meth:`DiffusersInpaintGenerator.prepare`,
:meth:`~DiffusersInpaintGenerator.pipeline_inputs` and :func:`compose`, so training sees exactly what this
generator makes. Everything heavy (torch, diffusers) is imported inside functions so importing this module
is cheap.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.modeling import register_to_config
from adcreative.core.types import Box, Product, canvas_size
from adcreative.generate.base import GeneratedImage
from adcreative.generate.prompts import choose_prompt, load_presets

if TYPE_CHECKING:
    import torch

NAME = "diffusers-inpaint"
VERSION = "2.0"
# Components a diffusers SD folder must have; the ControlNet is loaded from its own folder.
BASE_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHTED_COMPONENTS = ("unet", "vae", "text_encoder")
CANNY_SOURCES = ("colour-on-black", "grey-on-grey")
SCHEDULERS = ("ddim", "dpm", "unipc", "euler")
NEUTRAL_GREY = (127, 127, 127)
# Written by ``tune rfft`` inside a tuned ControlNet folder: the generator config it was tuned with.
TUNED_WITH = "adcreative_generator.json"
# Config fields that change what the ControlNet sees or how strongly it steers: serving a tuned ControlNet
# with other values than it was tuned with silently weakens the tuning.
SAMPLING_KEYS = ("steps", "guidance", "controlnet_scale", "scheduler", "canny_source", "canny_outline",
                 "canny_low", "canny_high", "mask_dilate", "box_alpha", "scale_range", "size_multiple")
MIN_DIFFUSERS = (0, 32)  # gradient checkpointing of frozen (eval-mode) modules, diffusers PR #9878


# ---------------------------------------------------------------------------------------------- local weights
def _weights_in(folder: Path, variant: str | None = None) -> list[Path]:
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    if variant:
        return [p for p in files if p.name.endswith(f".{variant}.safetensors")]
    return files


def _single_file(p: Path, what: str) -> Path:
    if p.suffix != ".safetensors":
        raise InputError(f"a single-file {what} must be .safetensors (.ckpt/.bin are pickles and are not "
                         "loaded)", source=p)
    return p


def check_config_folder(path: str | Path | None, what: str, *, needs: tuple[str, ...]) -> Path:
    """The diffusers-format config folder a single-file checkpoint is read with (no weights needed)."""
    if path is None:
        raise InputError(f"a single-file {what} needs its diffusers config folder ({what}_config): hub access "
                         "is off, so the component layout cannot be downloaded")
    p = Path(path).expanduser()
    for rel in needs:
        if not (p / rel).exists():
            raise InputError(f"the {what} config folder has no {rel}", source=p / rel)
    return p


def check_base(path: str | Path, *, config: str | Path | None = None, variant: str | None = None) -> Path:
    """A local Stable Diffusion: a diffusers folder (e.g. a snapshot of an SD 1.5 inpainting model), or one
    single-file ``.safetensors`` checkpoint (A1111/civitai layout) read with ``config`` (a diffusers folder
    holding the component configs and tokenizer)."""
    p = Path(path).expanduser()
    if p.is_file():
        check_config_folder(config, "base", needs=("model_index.json", *(f"{c}/" for c in BASE_COMPONENTS)))
        return _single_file(p, "Stable Diffusion checkpoint")
    if not p.is_dir():
        raise InputError("Stable Diffusion base folder does not exist (weights are read from local files "
                         "only; download a diffusers-format SD 1.5 model there, or give one .safetensors file)",
                         source=p)
    if not (p / "model_index.json").is_file():
        raise InputError("not a diffusers pipeline folder: model_index.json is missing (for a single-file "
                         "checkpoint give the .safetensors file itself and base_config)", source=p)
    for comp in BASE_COMPONENTS:
        sub = p / comp
        if not sub.is_dir():
            raise InputError(f"the Stable Diffusion folder has no '{comp}/' sub-folder", source=sub)
        if comp in WEIGHTED_COMPONENTS and not _weights_in(sub, variant):
            want = f"*.{variant}.safetensors" if variant else "*.safetensors"
            raise InputError(f"no weights file ({want}) in '{comp}/'", source=sub)
    return p


def check_controlnet(path: str | Path, *, config: str | Path | None = None) -> Path:
    """A canny ControlNet: a diffusers folder, or one ``.safetensors`` file read with ``config`` (a folder
    holding its config.json)."""
    p = Path(path).expanduser()
    if p.is_file():
        check_config_folder(config, "controlnet", needs=("config.json",))
        return _single_file(p, "ControlNet")
    if not p.is_dir():
        raise InputError("ControlNet folder does not exist (a diffusers-format canny ControlNet, e.g. "
                         "control_v11p_sd15_canny or JD's reliable_controlnet, saved locally)", source=p)
    if not (p / "config.json").is_file():
        raise InputError("ControlNet folder has no config.json", source=p / "config.json")
    if not _weights_in(p):
        raise InputError("ControlNet folder has no weights file (diffusion_pytorch_model.safetensors)", source=p)
    return p


def check_lora(path: str | Path) -> tuple[Path, str | None]:
    """A LoRA (diffusers/peft or kohya keys) as a folder holding one ``*.safetensors`` (or
    ``pytorch_lora_weights.safetensors``), or a file."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix != ".safetensors":
            raise InputError("LoRA weights must be a .safetensors file", source=p)
        return p.parent, p.name
    if not p.is_dir():
        raise InputError("LoRA weights folder/file does not exist", source=p)
    files = _weights_in(p)
    if not files:
        raise InputError("LoRA folder has no .safetensors weights", source=p)
    named = [f for f in files if f.name == "pytorch_lora_weights.safetensors"]
    return p, (named[0] if named else files[0]).name


def resolve_device(device: str | None) -> str:
    import torch

    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for but CUDA is not available")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def diffusers_version() -> tuple[int, int]:
    import diffusers

    major, minor = (int(x) for x in diffusers.__version__.split(".")[:2])
    return major, minor


# ---------------------------------------------------------------------------------------------- geometry
@dataclass
class Placement:
    """The product scaled and placed on the canvas, and the images the pipeline is conditioned on."""

    layer: Image.Image  # RGBA, canvas size: the product where it will be pasted, transparent elsewhere
    box: Box
    paste_mask: Image.Image  # L, 255 where the product's own pixels are pasted exactly (alpha ≥ 128)
    init_image: Image.Image  # RGB: the product on the control background (what the inpainting model sees)
    inpaint_mask: Image.Image  # L, 255 = generate here (background, dilated into the product's edge)
    control_image: Image.Image  # RGB canny edges of the placed product
    scale: float


def product_box(alpha: np.ndarray, box_alpha: float) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the pixels with alpha ≥ ``box_alpha`` (JD: 0.5, so a faint halo or shadow left in
    the cutout does not shrink the product); any non-zero alpha when ``box_alpha`` is 0."""
    level = max(1, math.ceil(box_alpha * 255))
    ys, xs = np.nonzero(alpha >= level)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def place_product(product_rgba: Image.Image, size: tuple[int, int], scale: float, *, rng: random.Random,
                  jitter: float = 0.0, dilate: int = 10, canny: tuple[int, int] = (100, 200),
                  box_alpha: float = 0.5, canny_source: str = "colour-on-black",
                  canny_outline: bool = False) -> Placement:
    """Scale the cutout's box (alpha ≥ ``box_alpha``) to fit ``scale`` × the canvas, centre it (± ``jitter``
    of the free margin), and build the inpainting init image, mask and canny control image for it."""
    import cv2

    if canny_source not in CANNY_SOURCES:
        raise InputError(f"canny_source must be one of {', '.join(CANNY_SOURCES)}, got {canny_source!r}")
    w, h = size
    rgba = product_rgba.convert("RGBA")
    bbox = product_box(np.asarray(rgba.getchannel("A")), box_alpha)
    if bbox is None:
        raise InputError(f"the product cutout has no pixel with alpha ≥ {box_alpha}")
    crop = rgba.crop(bbox)
    s = scale * min(w / crop.width, h / crop.height)
    pw, ph = max(1, round(crop.width * s)), max(1, round(crop.height * s))
    prod = crop.resize((pw, ph), Image.Resampling.LANCZOS)
    free_x, free_y = w - pw, h - ph
    x = round(free_x / 2 + rng.uniform(-jitter, jitter) * free_x / 2)
    y = round(free_y / 2 + rng.uniform(-jitter, jitter) * free_y / 2)
    x, y = min(max(0, x), max(0, free_x)), min(max(0, y), max(0, free_y))
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    layer.paste(prod, (x, y))
    arr = np.asarray(layer)
    hard = arr[..., 3] >= 128
    # JD's init image is the product over black; the grey convention keeps neutral grey
    init = Image.new("RGB", (w, h), (0, 0, 0) if canny_source == "colour-on-black" else NEUTRAL_GREY)
    init.paste(prod.convert("RGB"), (x, y), prod.getchannel("A"))
    background = (~hard).astype(np.uint8) * 255
    if dilate > 0:
        k = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        background = np.asarray(cv2.dilate(background, k), dtype=np.uint8)
    if canny_source == "colour-on-black":
        # JD: canny of the colour product, everything under alpha 0.5 black; OpenCV takes the strongest
        # channel's gradient, so a colour change with little luminance contrast is still an edge
        src = arr[..., :3].copy()
        src[~hard] = 0
    else:  # this project's earlier convention: the grey image of the product on neutral grey
        src = cv2.cvtColor(np.asarray(init), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(np.ascontiguousarray(src), canny[0], canny[1])
    if canny_outline:  # the silhouette's own edge, so a dark product on black keeps its outline
        edges = np.maximum(edges, cv2.Canny(hard.astype(np.uint8) * 255, canny[0], canny[1]))
    return Placement(
        layer=layer, box=Box(x, y, x + pw, y + ph), paste_mask=Image.fromarray(hard.astype(np.uint8) * 255, "L"),
        init_image=init, inpaint_mask=Image.fromarray(background, "L"),
        control_image=Image.fromarray(np.stack([edges] * 3, -1), "RGB"), scale=scale,
    )


def placement_tensors(placements: list[Placement]) -> tuple[torch.Tensor, torch.Tensor]:
    """The placed products as (B, 4, H, W) RGBA in [0, 1] and their paste masks (B, 1, H, W) bool."""
    import torch

    layer = torch.stack([torch.from_numpy(np.asarray(p.layer, np.float32) / 255.0).permute(2, 0, 1)
                         for p in placements])
    hard = torch.stack([torch.from_numpy(np.asarray(p.paste_mask) > 0)[None] for p in placements])
    return layer, hard


def compose(background: torch.Tensor, layer: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """The product over the generated background, differentiably: ``background`` (B, 3, h, w) in [0, 1] at the
    work size is resized to the canvas (antialiased bilinear, only when the sizes differ), the product's own
    pixels are copied exactly where ``hard`` (alpha ≥ 128), and alpha-blended on the soft fringe outside it.
    The one paste-back of inference and of RFFT training, so both see the same product edge."""
    import torch
    import torch.nn.functional as F

    if background.shape[-2:] != layer.shape[-2:]:
        background = F.interpolate(background, size=tuple(layer.shape[-2:]), mode="bilinear", align_corners=False,
                                   antialias=True)
    layer = layer.to(background)
    a = layer[:, 3:4]
    out = background * (1 - a) + layer[:, :3] * a
    return torch.where(hard.to(background.device), layer[:, :3], out)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] → 8-bit RGB images (rounded half to even, as diffusers' own postprocess)."""
    arr = (images.detach().float().clamp(0, 1) * 255).round().to("cpu").numpy().astype(np.uint8)
    return [Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0)), "RGB") for a in arr]


def paste_back(background: Image.Image, placement: Placement) -> Image.Image:
    """:func:`compose` for one PIL background (any size; it is resized to the canvas)."""
    import torch

    bg = torch.from_numpy(np.asarray(background.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)[None]
    layer, hard = placement_tensors([placement])
    return to_pil(compose(bg, layer, hard))[0]


def work_size(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The generation size: the canvas rounded to a multiple the pipeline accepts (8 = the VAE's factor;
    diffusers' UNet resizes its skip connections for sizes that are not multiples of 64)."""
    return tuple(max(multiple, round(v / multiple) * multiple) for v in size)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- generator
class DiffusersInpaintGenerator:
    """SD inpainting + canny ControlNet generator (JD's Reliable_AD), product pasted back unaltered.

    The constructor arguments are the config (JSON-serialisable, stored in every creative's provenance).
    Defaults are JD's: 40 DDIM steps, guidance 7.5, ControlNet scale 1.0, scale per prompt preset, canny on
    the colour product over black, box from alpha ≥ 0.5, mask dilated ~10 px.
    """

    name = NAME
    version = VERSION
    # Replay the denoising step as CUDA graphs on a GPU (bit-identical images, 3.4× faster at batch 1 on an
    # H200); not a config field since it changes no output. Set False on an instance to run eagerly.
    cuda_graphs: bool = True

    @register_to_config
    def __init__(
        self,
        base: str,
        controlnet: str,
        lora: str | None = None,
        lora_scale: float = 1.0,
        base_config: str | None = None,
        controlnet_config: str | None = None,
        variant: str | None = None,
        steps: int = 40,
        guidance: float = 7.5,
        controlnet_scale: float = 1.0,
        scale_range: tuple[float, float] | list[float] | None = None,
        position_jitter: float = 0.1,
        mask_dilate: int = 10,
        box_alpha: float = 0.5,
        canny_source: str = "colour-on-black",
        canny_outline: bool = False,
        canny_low: int = 100,
        canny_high: int = 200,
        canvas_scale: float = 1.0,
        size_multiple: int = 8,
        batch_size: int = 4,
        prompts: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        scheduler: str = "ddim",
    ) -> None:
        self.scale_range: tuple[float, float] | None = None
        if scale_range is not None:
            lo, hi = float(scale_range[0]), float(scale_range[1])
            if not 0.05 <= lo <= hi <= 1.0:
                raise InputError(f"scale_range must satisfy 0.05 ≤ low ≤ high ≤ 1, got {list(scale_range)}")
            self.scale_range = (lo, hi)
        if steps < 1:
            raise InputError(f"steps must be ≥ 1, got {steps}")
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}")
        if size_multiple < 8 or size_multiple % 8:
            raise InputError(f"size_multiple must be a multiple of 8 (the VAE's factor), got {size_multiple}")
        if scheduler not in SCHEDULERS:
            raise InputError(f"unknown scheduler {scheduler!r}; choose {', '.join(SCHEDULERS)}")
        if canny_source not in CANNY_SOURCES:
            raise InputError(f"canny_source must be one of {', '.join(CANNY_SOURCES)}, got {canny_source!r}")
        if not 0.0 <= box_alpha <= 1.0 or mask_dilate < 0:
            raise InputError("box_alpha must be in [0, 1] and mask_dilate ≥ 0")
        if dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise InputError(f"dtype must be auto, float32, float16 or bfloat16, got {dtype!r}")
        # Validate every local path now: a missing folder fails here, not after minutes of loading.
        self.base_path = check_base(base, config=base_config, variant=variant)
        self.controlnet_path = check_controlnet(controlnet, config=controlnet_config)
        self.lora_ref = check_lora(lora) if lora else None
        self.presets = load_presets(prompts)
        self._pipe: Any = None
        self._block: dict[tuple[Any, str, int], GeneratedImage] = {}  # the last rendered block of seeds
        self._graphs: dict[str, Any] = {}  # CUDA graphs of the denoising step, per module (see _graphed)
        self.config: dict[str, Any]
        mine = {k: v for k, v in locals().items() if k in SAMPLING_KEYS}  # this call's sampling arguments
        warn_if_tuned_differently(self.controlnet_path, mine)

    # -- loading -------------------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return resolve_device(self.config["device"])

    @property
    def torch_dtype(self) -> Any:
        import torch

        dt = self.config["dtype"]
        if dt == "auto":
            return torch.float16 if self.device.startswith("cuda") else torch.float32
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dt]

    def load(self, device: str | None = None, dtype: Any = None) -> Any:
        """The diffusers pipeline, loaded once from the local files (``device``/``dtype`` override the config:
        RFFT loads in float32 onto its accelerator's device)."""
        if self._pipe is None:
            c = self.config
            self._pipe = load_pipeline(
                self.base_path, self.controlnet_path, base_config=c["base_config"],
                controlnet_config=c["controlnet_config"], variant=c["variant"], lora=self.lora_ref,
                lora_scale=c["lora_scale"], device=device or self.device, dtype=dtype or self.torch_dtype,
                scheduler=c["scheduler"])
        return self._pipe

    @property
    def pipeline(self) -> Any:
        return self.load()

    # -- generation ----------------------------------------------------------------------------------------
    def prepare(self, product: Product, *, seed: int, aspect: str) -> tuple[Placement, dict[str, Any]]:
        """Placement, prompts and sampled choices for one creative (shared with RFFT training)."""
        c = self.config
        size = canvas_size(aspect, c["canvas_scale"])
        choice = choose_prompt(product.category, seed, self.presets)
        rng = random.Random(f"{NAME}:{seed}")
        scale = rng.uniform(*self.scale_range) if self.scale_range else choice.image_scale
        placement = place_product(product.image, size, scale, rng=rng, jitter=c["position_jitter"],
                                  dilate=c["mask_dilate"], canny=(c["canny_low"], c["canny_high"]),
                                  box_alpha=c["box_alpha"], canny_source=c["canny_source"],
                                  canny_outline=c["canny_outline"])
        params = {"prompt": choice.prompt, "negative_prompt": choice.negative_prompt, "preset": choice.preset,
                  "wall": choice.wall, "scale": round(scale, 4), "work_size": list(work_size(size, c["size_multiple"])),
                  "steps": c["steps"], "guidance": c["guidance"], "controlnet_scale": c["controlnet_scale"]}
        return placement, params

    def pipeline_inputs(self, placements: list[Placement], params: list[dict[str, Any]]) -> dict[str, Any]:
        """The keyword arguments of one pipeline call for creatives of one aspect ratio (all but ``generator``
        and ``output_type``): what the generator samples and what RFFT's sampler mirrors."""
        ws = tuple(params[0]["work_size"])
        if any(tuple(p["work_size"]) != ws for p in params):
            raise InputError("one pipeline call needs one work size (one aspect ratio)")

        def at(im: Image.Image, resample: Image.Resampling) -> Image.Image:
            return im if im.size == ws else im.resize(ws, resample)

        c = self.config
        return {
            "prompt": [p["prompt"] for p in params], "negative_prompt": [p["negative_prompt"] for p in params],
            "image": [at(pl.init_image, Image.Resampling.LANCZOS) for pl in placements],
            "mask_image": [at(pl.inpaint_mask, Image.Resampling.NEAREST) for pl in placements],
            "control_image": [at(pl.control_image, Image.Resampling.NEAREST) for pl in placements],
            "height": ws[1], "width": ws[0], "num_inference_steps": c["steps"], "guidance_scale": c["guidance"],
            "controlnet_conditioning_scale": c["controlnet_scale"], "strength": 1.0, "eta": 0.0,
        }

    def __call__(self, product: Product, *, seed: int, aspect: str = "1:1", n: int = 1,
                 defect: str | None = None, severity: float = 0.5) -> list[GeneratedImage]:
        """``n`` creatives with seeds ``seed … seed+n-1``, made ``batch_size`` per pipeline call.

        Seeds are grouped in fixed blocks (``batch_size`` consecutive seeds from a multiple of it) and a block
        is always rendered whole, each image with its own CPU generator: a creative is computed by the same
        pipeline call whether it was asked for alone, in a batch or by ``creatives regenerate``, so its bytes
        do not depend on how it was requested (convolution kernels round differently at other batch sizes,
        so "one at a time" would not reproduce a batched image bit for bit). The rest of a block is kept for
        the next call, so one-at-a-time callers (recurrent generation) are batched too."""
        if defect is not None:
            raise InputError(f"defect synthesis ({defect!r}) is done by the compositor only; "
                             f"use --generator compositor for labelled defect data", source=NAME)
        if n < 1:
            raise InputError(f"n must be ≥ 1, got {n}")
        bs = self.config["batch_size"]
        key = _product_key(product)
        out: list[GeneratedImage] = []
        for s in range(seed, seed + n):
            if (key, aspect, s) not in self._block:
                self._block = {(key, aspect, gi.seed): gi for gi in self._render(product, aspect, s - s % bs)}
            out.append(self._block[(key, aspect, s)])
        return out

    def _graphed(self, pipe: Any) -> AbstractContextManager[Any]:
        """On CUDA, the ControlNet and UNet forwards replayed as CUDA graphs (:mod:`.cuda_graphs`): the same
        kernels, so the same bytes, without the per-kernel launch cost that dominates small batches."""
        if not (self.cuda_graphs and str(pipe.device).startswith("cuda")):
            return nullcontext()
        from adcreative.generate.cuda_graphs import cuda_graphed

        return cuda_graphed({"controlnet": pipe.controlnet, "unet": pipe.unet}, self._graphs)

    def _render(self, product: Product, aspect: str, start: int) -> list[GeneratedImage]:
        """One pipeline call: the block of seeds ``start … start+batch_size-1``."""
        import torch

        seeds = list(range(start, start + self.config["batch_size"]))
        prepared = [self.prepare(product, seed=s, aspect=aspect) for s in seeds]
        placements, params = [p for p, _ in prepared], [q for _, q in prepared]
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]  # same noise on every device
        pipe = self.pipeline
        with torch.no_grad(), self._graphed(pipe):
            bg = pipe(**self.pipeline_inputs(placements, params), generator=gens, output_type="pt").images
            layer, hard = placement_tensors(placements)
            images = to_pil(compose(bg.float(), layer.to(bg.device), hard))
        return [GeneratedImage(image=image, mask=pl.paste_mask, layout={"product": pl.box}, seed=s, aspect=aspect,
                               generator=NAME, generator_version=VERSION, params={**prm, "block": [start, len(seeds)]},
                               config=dict(self.config))
                for s, image, pl, prm in zip(seeds, images, placements, params, strict=True)]


def _product_key(product: Product) -> tuple[str, str, str, str]:
    """What a rendered block depends on besides seed and aspect: the cutout's pixels, its category (the
    prompt's scene) and id."""
    import hashlib

    im = product.image
    digest = hashlib.sha1(im.tobytes() + repr((im.mode, im.size)).encode()).hexdigest()
    return product.id, product.category, product.title, digest


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def warn_if_tuned_differently(controlnet: Path, sampling: dict[str, Any]) -> list[str]:
    """A ControlNet tuned by ``tune rfft`` carries the generator config it was tuned with: warn when it would
    be served with other sampling settings (the tuning would not transfer). Returns the differing keys."""
    f = controlnet / TUNED_WITH
    if not f.is_file():
        return []
    try:
        tuned = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    diff = [k for k in SAMPLING_KEYS if k in tuned and _norm(tuned[k]) != _norm(sampling.get(k))]
    if diff:
        warnings.warn("this ControlNet was tuned with " + ", ".join(f"{k}={tuned[k]!r}" for k in diff)
                      + "; this generator uses " + ", ".join(f"{k}={sampling.get(k)!r}" for k in diff)
                      + f" (generate with the config tune rfft saved beside it: {f})", UserWarning, stacklevel=4)
    return diff


def load_pipeline(base: Path, controlnet: Path, *, base_config: str | None = None,
                  controlnet_config: str | None = None, variant: str | None = None,
                  lora: tuple[Path, str | None] | None = None, lora_scale: float = 1.0, device: str = "cpu",
                  dtype: Any = None, scheduler: str = "ddim") -> Any:
    """``StableDiffusionControlNetInpaintPipeline`` from local files only (``local_files_only``): diffusers
    folders (the ``variant`` weights where a folder has them, e.g. ``fp16``) or single-file ``.safetensors``
    checkpoints read with their diffusers config folders; a LoRA (diffusers or kohya keys) fused at
    ``lora_scale``."""
    import torch
    from diffusers import (
        ControlNetModel,
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        StableDiffusionControlNetInpaintPipeline,
        UniPCMultistepScheduler,
    )
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    dtype = dtype or torch.float32
    dt = _dtype_kwarg(dtype)
    quiet = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    try:
        if controlnet.is_file():
            cn = ControlNetModel.from_single_file(str(controlnet), config=str(controlnet_config),
                                                  local_files_only=True, **dt)
        else:
            cn_variant = variant if variant and _weights_in(controlnet, variant) else None
            cn = ControlNetModel.from_pretrained(str(controlnet), local_files_only=True, variant=cn_variant, **dt)
        if base.is_file():
            pipe = StableDiffusionControlNetInpaintPipeline.from_single_file(
                str(base), config=str(base_config), controlnet=cn, local_files_only=True, **quiet, **dt)
        else:
            pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(
                str(base), controlnet=cn, local_files_only=True, variant=variant, **quiet, **dt)
    except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError, SingleFileComponentError) as e:
        # RuntimeError: weights that do not fit the config (e.g. a single file read with another model's configs)
        raise InputError(f"cannot load the diffusion weights: {e}", source=base) from None
    scheds = {"ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler, "unipc": UniPCMultistepScheduler,
              "euler": EulerDiscreteScheduler}
    pipe.scheduler = scheds[scheduler].from_config(pipe.scheduler.config)
    if lora is not None:
        folder, weight_name = lora
        try:
            pipe.load_lora_weights(str(folder), weight_name=weight_name, local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"cannot load the LoRA weights: {e}", source=folder) from None
        pipe.fuse_lora(lora_scale=lora_scale)
        pipe.unload_lora_weights()  # fused into the weights: drop the adapter layers (and their compute)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """diffusers ≥ 0.42 renamed ``torch_dtype`` to ``dtype``; older releases only know the former."""
    return {"dtype": dtype} if diffusers_version() >= (0, 42) else {"torch_dtype": dtype}
