"""JD's diffusion generator (Reliable_AD): SD 1.5-class inpainting + a canny ControlNet around the product.

For each creative the product cutout is scaled to a fraction of the canvas and placed; the canny edges of
that placed product steer a ControlNet; Stable Diffusion inpaints everything outside the product (the
inpainting mask is dilated a few pixels into the product so its soft edge blends); finally the product's
own pixels are pasted back unaltered. Weights come from local folders only (no hub access at run time).

Everything heavy (torch, diffusers) is imported inside methods so that importing this module is cheap.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.modeling import register_to_config
from adcreative.core.types import Box, Product, canvas_size
from adcreative.generate.base import GeneratedImage
from adcreative.generate.prompts import choose_prompt, load_presets

NAME = "diffusers-inpaint"
VERSION = "1.0"
# Components a diffusers SD folder must have; the ControlNet is loaded from its own folder.
BASE_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
NEUTRAL_GREY = (127, 127, 127)


# ---------------------------------------------------------------------------------------------- local weights
def _weights_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())


def check_base_folder(path: str | Path) -> Path:
    """A local diffusers Stable Diffusion folder (e.g. a snapshot of an SD 1.5 inpainting model)."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError("Stable Diffusion base folder does not exist (weights are read from local folders "
                         "only; download a diffusers-format SD 1.5 inpainting model there)", source=p)
    if not (p / "model_index.json").is_file():
        raise InputError("not a diffusers pipeline folder: model_index.json is missing (a single-file "
                         ".ckpt/.safetensors must be converted to the diffusers layout first)", source=p)
    for comp in BASE_COMPONENTS:
        sub = p / comp
        if not sub.is_dir():
            raise InputError(f"the Stable Diffusion folder has no '{comp}/' sub-folder", source=sub)
        if comp in ("unet", "vae", "text_encoder") and not _weights_in(sub):
            raise InputError(f"no weights file (*.safetensors) in '{comp}/'", source=sub)
    return p


def check_controlnet_folder(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError("ControlNet folder does not exist (a diffusers-format canny ControlNet, e.g. "
                         "control_v11p_sd15_canny, saved locally)", source=p)
    if not (p / "config.json").is_file():
        raise InputError("ControlNet folder has no config.json", source=p / "config.json")
    if not _weights_in(p):
        raise InputError("ControlNet folder has no weights file (diffusion_pytorch_model.safetensors)", source=p)
    return p


def check_lora(path: str | Path) -> tuple[Path, str | None]:
    """A LoRA as a folder holding one ``*.safetensors`` (or ``pytorch_lora_weights.safetensors``), or a file."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix != ".safetensors":
            raise InputError("LoRA weights must be a .safetensors file", source=p)
        return p.parent, p.name
    if not p.is_dir():
        raise InputError("LoRA weights folder/file does not exist", source=p)
    files = [f for f in _weights_in(p) if f.suffix == ".safetensors"]
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


# ---------------------------------------------------------------------------------------------- geometry
@dataclass
class Placement:
    """The product scaled and placed on the canvas, and the images the pipeline is conditioned on."""

    layer: Image.Image  # RGBA, canvas size: the product where it will be pasted, transparent elsewhere
    box: Box
    paste_mask: Image.Image  # L, 255 where the product's own pixels are pasted exactly (alpha ≥ 128)
    init_image: Image.Image  # RGB: the product on neutral grey (what the inpainting model sees)
    inpaint_mask: Image.Image  # L, 255 = generate here (background, dilated into the product's edge)
    control_image: Image.Image  # RGB canny edges of the placed product
    scale: float


def place_product(product_rgba: Image.Image, size: tuple[int, int], scale: float, *, rng: random.Random,
                  jitter: float = 0.0, dilate: int = 4, canny: tuple[int, int] = (100, 200)) -> Placement:
    """Scale the cutout so it fits ``scale`` × the canvas, centre it (± ``jitter`` of the free margin), and
    build the inpainting init image, mask and canny control image for that placement."""
    import cv2

    w, h = size
    rgba = product_rgba.convert("RGBA")
    bbox = rgba.getchannel("A").point(lambda a: 255 if a > 0 else 0).getbbox()
    if bbox is None:
        raise InputError("the product cutout is fully transparent")
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
    alpha = np.asarray(layer.getchannel("A"))
    hard = alpha >= 128
    init = Image.new("RGB", (w, h), NEUTRAL_GREY)
    init.paste(prod.convert("RGB"), (x, y), prod.getchannel("A"))
    background = (~hard).astype(np.uint8) * 255
    if dilate > 0:
        k = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        background = np.asarray(cv2.dilate(background, k), dtype=np.uint8)
    edges = cv2.Canny(cv2.cvtColor(np.asarray(init), cv2.COLOR_RGB2GRAY), canny[0], canny[1])
    return Placement(
        layer=layer, box=Box(x, y, x + pw, y + ph), paste_mask=Image.fromarray(hard.astype(np.uint8) * 255, "L"),
        init_image=init, inpaint_mask=Image.fromarray(background, "L"),
        control_image=Image.fromarray(np.stack([edges] * 3, -1), "RGB"), scale=scale,
    )


def paste_back(background: Image.Image, placement: Placement) -> Image.Image:
    """The product's own pixels over the generated background: exact where alpha ≥ 128 (the paste mask),
    alpha-blended only on the soft fringe outside it."""
    bg = np.asarray(background.convert("RGB"), dtype=np.float32)
    layer = np.asarray(placement.layer, dtype=np.float32)
    a = layer[..., 3:4] / 255.0
    out = bg * (1 - a) + layer[..., :3] * a
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    hard = np.asarray(placement.paste_mask) > 0
    out[hard] = np.asarray(placement.layer)[..., :3][hard]
    return Image.fromarray(out, "RGB")


def work_size(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The generation size: the canvas rounded to a multiple the UNet's down/up-sampling accepts."""
    return tuple(max(multiple, round(v / multiple) * multiple) for v in size)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- generator
class DiffusersInpaintGenerator:
    """SD inpainting + canny ControlNet generator (JD's Reliable_AD), product pasted back unaltered.

    The constructor arguments are the config (JSON-serialisable, stored in every creative's provenance).
    """

    name = NAME
    version = VERSION

    @register_to_config
    def __init__(
        self,
        base: str,
        controlnet: str,
        lora: str | None = None,
        lora_scale: float = 1.0,
        steps: int = 30,
        guidance: float = 7.5,
        controlnet_scale: float = 0.5,
        scale_range: tuple[float, float] | list[float] = (0.7, 0.78),
        position_jitter: float = 0.1,
        mask_dilate: int = 4,
        canny_low: int = 100,
        canny_high: int = 200,
        canvas_scale: float = 1.0,
        size_multiple: int = 64,
        prompts: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        scheduler: str = "ddim",
    ) -> None:
        lo, hi = float(scale_range[0]), float(scale_range[1])
        if not 0.05 <= lo <= hi <= 1.0:
            raise InputError(f"scale_range must satisfy 0.05 ≤ low ≤ high ≤ 1, got {list(scale_range)}")
        if steps < 1:
            raise InputError(f"steps must be ≥ 1, got {steps}")
        if scheduler not in ("ddim", "dpm", "unipc", "euler"):
            raise InputError(f"unknown scheduler {scheduler!r}; choose ddim, dpm, unipc or euler")
        # Validate every local path now: a missing folder fails here, not after minutes of loading.
        self.base_dir = check_base_folder(base)
        self.controlnet_dir = check_controlnet_folder(controlnet)
        self.lora_ref = check_lora(lora) if lora else None
        self.presets = load_presets(prompts)
        self.scale_range = (lo, hi)
        self._pipe: Any = None
        self.config: dict[str, Any]

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

    @property
    def pipeline(self) -> Any:
        """The diffusers pipeline, loaded on first use from the local folders."""
        if self._pipe is None:
            self._pipe = load_pipeline(self.base_dir, self.controlnet_dir, lora=self.lora_ref,
                                       lora_scale=self.config["lora_scale"], device=self.device,
                                       dtype=self.torch_dtype, scheduler=self.config["scheduler"])
        return self._pipe

    # -- generation ----------------------------------------------------------------------------------------
    def prepare(self, product: Product, *, seed: int, aspect: str) -> tuple[Placement, dict[str, Any]]:
        """Placement, prompts and sampled choices for one creative (shared with RFFT training)."""
        size = canvas_size(aspect, self.config["canvas_scale"])
        rng = random.Random(f"{NAME}:{seed}")
        scale = rng.uniform(*self.scale_range)
        placement = place_product(product.image, size, scale, rng=rng, jitter=self.config["position_jitter"],
                                  dilate=self.config["mask_dilate"],
                                  canny=(self.config["canny_low"], self.config["canny_high"]))
        choice = choose_prompt(product.category, seed, self.presets)
        params = {"prompt": choice.prompt, "negative_prompt": choice.negative_prompt, "preset": choice.preset,
                  "wall": choice.wall, "scale": round(scale, 4), "work_size": list(work_size(size, self.config["size_multiple"])),
                  "steps": self.config["steps"], "guidance": self.config["guidance"],
                  "controlnet_scale": self.config["controlnet_scale"]}
        return placement, params

    def __call__(self, product: Product, *, seed: int, aspect: str = "1:1", n: int = 1,
                 defect: str | None = None, severity: float = 0.5) -> list[GeneratedImage]:
        if defect is not None:
            raise InputError(f"defect synthesis ({defect!r}) is done by the compositor only; "
                             f"use --generator compositor for labelled defect data", source=NAME)
        if n < 1:
            raise InputError(f"n must be ≥ 1, got {n}")
        import torch

        pipe = self.pipeline
        out: list[GeneratedImage] = []
        for i in range(n):
            s = seed + i
            placement, params = self.prepare(product, seed=s, aspect=aspect)
            size = placement.layer.size
            ws = tuple(params["work_size"])
            gen = torch.Generator(device="cpu").manual_seed(s)  # CPU generator: same noise on every device
            result = pipe(
                prompt=params["prompt"], negative_prompt=params["negative_prompt"],
                image=placement.init_image.resize(ws, Image.Resampling.LANCZOS),
                mask_image=placement.inpaint_mask.resize(ws, Image.Resampling.NEAREST),
                control_image=placement.control_image.resize(ws, Image.Resampling.NEAREST),
                height=ws[1], width=ws[0], num_inference_steps=self.config["steps"],
                guidance_scale=self.config["guidance"], controlnet_conditioning_scale=self.config["controlnet_scale"],
                generator=gen, strength=1.0, output_type="pil",
            )
            background = result.images[0].convert("RGB")
            if background.size != size:
                background = background.resize(size, Image.Resampling.LANCZOS)
            image = paste_back(background, placement)
            out.append(GeneratedImage(
                image=image, mask=placement.paste_mask, layout={"product": placement.box}, seed=s, aspect=aspect,
                generator=NAME, generator_version=VERSION, params=params, config=dict(self.config),
            ))
        return out


def load_pipeline(base: Path, controlnet: Path, *, lora: tuple[Path, str | None] | None = None,
                  lora_scale: float = 1.0, device: str = "cpu", dtype: Any = None, scheduler: str = "ddim") -> Any:
    """Load ``StableDiffusionControlNetInpaintPipeline`` from local folders only (``local_files_only``)."""
    import torch
    from diffusers import (
        ControlNetModel,
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        StableDiffusionControlNetInpaintPipeline,
        UniPCMultistepScheduler,
    )

    dtype = dtype or torch.float32
    dt = _dtype_kwarg(dtype)
    try:
        cn = ControlNetModel.from_pretrained(str(controlnet), local_files_only=True, **dt)
        pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(
            str(base), controlnet=cn, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, local_files_only=True, **dt)
    except (OSError, ValueError, json.JSONDecodeError) as e:
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
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """diffusers ≥ 0.42 renamed ``torch_dtype`` to ``dtype``; older releases only know the former."""
    import diffusers

    major, minor = (int(x) for x in diffusers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (0, 42) else {"torch_dtype": dtype}
