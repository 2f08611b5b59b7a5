"""RFFT: reliable feedback fine-tuning of the ControlNet (Du et al., ECCV 2024, §4).

The trainer is built from the diffusers generator's own config (the JSON ``generate --gen-config`` takes), so
it tunes the ControlNet at the strength, steps, guidance, canny convention and placement it will be served
with. Per example it samples a creative exactly as the generator does — the pipeline's own helpers prepare
prompts, control image, mask and noise from the example's seed, and the denoising loop mirrors
``StableDiffusionControlNetInpaintPipeline`` (tested: the same latents) — without gradients, up to one step
``t_k`` drawn from the last ``grad_window`` steps. At that step only, with gradients, it predicts the clean
latent

    x̂0 = (x_t − √(1−ᾱ_t) · ε̂) / √ᾱ_t,     ε̂ = ε(x_t, z, ∅) + w · (ε(x_t, z, c) − ε(x_t, z, ∅))

decodes it with the (frozen) VAE, pastes the product back with the generator's own :func:`compose`, and scores
the image with a differentiable reward model (RFNet). The loss is

    L = CE(RFNet(x̂0), available) + β · λ_t · ‖d_θ − d_ref‖²,    d = ε(x_t, z, c) − ε(x_t, z, ∅)

where d_ref comes from a frozen copy of the original ControlNet. The *consistent-condition* term keeps the
classifier-free-guidance direction of the tuned ControlNet where it was. In the paper it is a distance between
scores, s = −ε/√(1−ᾱ_t), so ``cc_weighting="score"`` (the default) uses λ_t = 1/(1−ᾱ_t) and β means what the
paper's β means; ``"epsilon"`` uses λ_t = 1 (the plain ε difference). Only the ControlNet learns.

Training runs under ``accelerate`` (``accelerate launch -m adcreative tune rfft …`` for several GPUs; each
process draws its own examples), with gradient accumulation, a warm-up + decay learning-rate schedule, an
optional EMA of the ControlNet weights, a gradient scaler for fp16 (bf16 needs none), gradient checkpointing
(diffusers ≥ 0.32, where it works on frozen modules in eval mode), TensorBoard logging and validation every N
steps: a fixed set of products and seeds rendered to an image grid and scored by the frozen RFNet (available
rate, mean P(available), background diversity), so aesthetic collapse shows when it starts.

Checkpoints are safetensors (ControlNet, optimizer and EMA state as tensors) plus JSON; no pickles. A run
resumes from its latest checkpoint and, since example draws are a function of (seed, process, step,
micro-batch), continues exactly as an uninterrupted run would. A checkpoint or the final ControlNet replaces
its predecessor only once it is complete on disk (:func:`adcreative.core.durable.atomic_dir`), and older
checkpoints are pruned only after the new one is in place.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from adcreative.core.durable import atomic_dir
from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write_text
from adcreative.core.modeling import register_to_config
from adcreative.core.types import CLASSES, Product

if TYPE_CHECKING:
    import torch

    from adcreative.generate.diffusers_inpaint import Placement

AVAILABLE = CLASSES.index("available")
CKPT_PREFIX = "checkpoint-"
STATE_NAME = "state.json"
OPTIM_NAME = "optimizer.safetensors"
EMA_NAME = "ema.safetensors"
GENERATOR_JSON = "generator.json"
LR_SCHEDULES = ("constant", "linear", "cosine")
CC_WEIGHTINGS = ("score", "epsilon")


@runtime_checkable
class RewardModel(Protocol):
    """A differentiable auditor: images (B, 3, H, W) in [0, 1] plus fixed per-example auxiliaries → logits
    over :data:`CLASSES`. ``auxiliaries`` builds the fixed inputs (product cutout, mask, title…) for one
    example from its product and placement; a model that needs none returns ``{}``."""

    def __call__(self, images: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def auxiliaries(self, product: Product, placement: Placement) -> dict[str, torch.Tensor]: ...


@dataclass
class Example:
    product: Product
    seed: int
    aspect: str
    placement: Placement  # at the canvas size, as the generator places it
    params: dict[str, Any]  # the generator's sampled choices (prompt, negative prompt, work size…)


@dataclass
class Conditioning:
    """What the pipeline prepares before its denoising loop, for a micro-batch of B examples."""

    emb: torch.Tensor  # (2B, 77, D): [negative; prompt] text embeddings
    control: torch.Tensor  # (2B, 3, h, w) canny images
    mask: torch.Tensor  # (2B, 1, h/8, w/8) inpainting mask at latent size
    masked: torch.Tensor  # (2B, 4, h/8, w/8) latents of the masked init image
    latents: torch.Tensor  # (B, 4, h/8, w/8) x_T
    noise: torch.Tensor
    image_latents: torch.Tensor | None  # the init image's latents (plain 4-channel UNets repaint with them)
    timesteps: torch.Tensor
    step_kwargs: dict[str, Any]
    layer: torch.Tensor  # (B, 4, H, W) the placed product, canvas size
    hard: torch.Tensor  # (B, 1, H, W) where its own pixels are pasted exactly


@dataclass
class RFFTResult:
    output: Path
    controlnet: Path
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    validation: list[dict[str, float]] = field(default_factory=list)
    main_process: bool = True  # False on the other processes of a multi-GPU run (they print nothing)


def read_generator_config(generator: dict[str, Any] | str | Path) -> dict[str, Any]:
    """The diffusers generator's config: a dict, or the path of a JSON file (e.g. a run's generator.json)."""
    if isinstance(generator, dict):
        return dict(generator)
    p = Path(generator)
    try:
        cfg = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the generator config ({e})", source=p) from None
    if not isinstance(cfg, dict):
        raise InputError("the generator config must be a JSON object", source=p)
    return cfg


class RFFTTrainer:
    """Fine-tunes the canny ControlNet of a diffusers generator config against a differentiable reward model.
    The constructor is the config."""

    @register_to_config
    def __init__(
        self,
        generator: dict[str, Any],
        grad_window: int = 5,
        beta: float = 1.0,
        cc_weighting: str = "score",
        lr: float = 1e-5,
        lr_schedule: str = "constant",
        lr_warmup_steps: int = 50,
        weight_decay: float = 1e-2,
        grad_accum: int = 4,
        batch_size: int = 1,
        max_steps: int = 500,
        max_grad_norm: float = 1.0,
        ema_decay: float = 0.0,
        checkpoint_every: int = 50,
        keep_checkpoints: int = 2,
        validate_every: int = 100,
        val_products: int = 4,
        val_seeds: int = 4,
        val_threshold: float = 0.5,
        aspects: list[str] | tuple[str, ...] = ("1:1",),
        seed_pool: int = 0,
        mixed_precision: str = "no",
        gradient_checkpointing: bool = False,
        tensorboard: bool = True,
        seed: int = 0,
    ) -> None:
        from adcreative.core.types import ASPECTS
        from adcreative.generate.diffusers_inpaint import DiffusersInpaintGenerator

        if beta < 0:
            raise InputError(f"beta must be ≥ 0, got {beta}")
        if cc_weighting not in CC_WEIGHTINGS:
            raise InputError(f"cc_weighting must be one of {', '.join(CC_WEIGHTINGS)}, got {cc_weighting!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise InputError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
        if min(grad_accum, batch_size, max_steps, checkpoint_every, keep_checkpoints) < 1:
            raise InputError("grad_accum, batch_size, max_steps, checkpoint_every and keep_checkpoints must be ≥ 1")
        if min(lr_warmup_steps, validate_every, val_products, val_seeds) < 0 or not 0.0 <= ema_decay < 1.0:
            raise InputError("lr_warmup_steps, validate_every, val_products, val_seeds must be ≥ 0 and "
                             "ema_decay in [0, 1)")
        if mixed_precision not in ("no", "fp16", "bf16"):
            raise InputError(f"mixed_precision must be no, fp16 or bf16, got {mixed_precision!r}")
        bad = [a for a in aspects if a not in ASPECTS]
        if bad or not aspects:
            raise InputError(f"unknown aspect ratio {bad[0] if bad else ''!r}; choose from {', '.join(ASPECTS)}")
        # The generator validates the local files and owns placement, prompts and sampling settings: training
        # sees exactly the inputs, strength and steps that inference will.
        try:
            self.gen = DiffusersInpaintGenerator(**generator)
        except TypeError as e:  # a missing or unknown key of the JSON config: the user's input, not a bug here
            raise InputError(f"generator config: {e} (the diffusers-inpaint generator needs base and controlnet, "
                             "local model folders)") from None
        gcfg = self.gen.config
        if gcfg["scheduler"] != "ddim":
            raise InputError(f"RFFT samples with DDIM (JD's sampler; x̂0 is its prediction), the generator config "
                             f"has scheduler={gcfg['scheduler']!r}")
        if gcfg["guidance"] <= 1.0:
            raise InputError("RFFT needs classifier-free guidance (guidance > 1): the consistent-condition "
                             "loss compares its two branches")
        if not 1 <= grad_window <= gcfg["steps"]:
            raise InputError(f"grad_window must be in [1, steps={gcfg['steps']}], got {grad_window}")
        self.config: dict[str, Any]
        self._loaded = False

    # -- components ---------------------------------------------------------------------------------------
    def load(self, device: str | None = None) -> None:
        """Load the pipeline (float32) from the local files; freeze all but the ControlNet."""
        if self._loaded:
            return
        import copy

        import torch

        from adcreative.generate.diffusers_inpaint import MIN_DIFFUSERS, diffusers_version

        cfg = self.config
        if cfg["gradient_checkpointing"] and diffusers_version() < MIN_DIFFUSERS:
            raise InputError("gradient checkpointing needs diffusers ≥ 0.32 (older releases skip it on modules in "
                             "eval mode, i.e. on the frozen UNet and VAE): pip install -U 'diffusers>=0.32'")
        self.pipe = self.gen.load(device=device or self.gen.device, dtype=torch.float32)
        self.device = str(self.pipe.device) if device is None else device
        self.unet, self.vae, self.text_encoder = self.pipe.unet, self.pipe.vae, self.pipe.text_encoder
        self.scheduler = self.pipe.scheduler
        self.controlnet = self.pipe.controlnet
        self.ref_controlnet = copy.deepcopy(self.controlnet) if cfg["beta"] > 0 else None
        # frozen modules in half precision (their activations dominate memory); the ControlNet stays float32
        half = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[cfg["mixed_precision"]]
        self.frozen_dtype = half
        for m in self.frozen_modules().values():
            m.requires_grad_(False)
            m.eval()
            if half != torch.float32:
                m.to(dtype=half)
        self.controlnet.requires_grad_(True)
        self.controlnet.train()
        if cfg["gradient_checkpointing"]:
            # the graded step keeps UNet, ControlNet and VAE-decoder activations: recompute them instead
            for m in (self.unet, self.controlnet, self.vae):
                m.enable_gradient_checkpointing()
        self.unet_channels = int(self.unet.config.in_channels)
        self._loaded = True

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        self.load()
        return [p for p in self.controlnet.parameters() if p.requires_grad]

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        mods = {"unet": self.unet, "vae": self.vae, "text_encoder": self.text_encoder}
        if self.ref_controlnet is not None:
            mods["ref_controlnet"] = self.ref_controlnet
        return mods

    def autocast(self) -> Any:
        import torch

        if self.frozen_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.split(":")[0], dtype=self.frozen_dtype)

    # -- data ---------------------------------------------------------------------------------------------
    def examples(self, products: Sequence[Product], step: int, micro: int, rank: int = 0) -> list[Example]:
        """The micro-batch for (process, step, micro): a function of the run's seed only, so resuming is exact."""
        rng = random.Random(f"rfft:{self.config['seed']}:{rank}:{step}:{micro}")
        aspect = rng.choice(list(self.config["aspects"]))
        out = []
        for _ in range(self.config["batch_size"]):
            prod = products[rng.randrange(len(products))]
            pool = self.config["seed_pool"]
            s = rng.randrange(pool) if pool > 0 else rng.randrange(2**31)
            out.append(self.example(prod, s, aspect))
        return out

    def example(self, product: Product, seed: int, aspect: str) -> Example:
        placement, params = self.gen.prepare(product, seed=seed, aspect=aspect)
        return Example(product=product, seed=seed, aspect=aspect, placement=placement, params=params)

    # -- the pipeline, mirrored -----------------------------------------------------------------------------
    def condition(self, exs: list[Example]) -> Conditioning:
        """What ``StableDiffusionControlNetInpaintPipeline.__call__`` prepares for these examples, made by its
        own helpers in its order, so the seeded noise (and the VAE samples it draws) are the generator's."""
        import torch

        from adcreative.generate.diffusers_inpaint import placement_tensors

        self.load()
        pipe, dev = self.pipe, self.device
        kw = self.gen.pipeline_inputs([e.placement for e in exs], [e.params for e in exs])
        B, h, w = len(exs), kw["height"], kw["width"]
        gens = [torch.Generator(device="cpu").manual_seed(e.seed) for e in exs]
        with torch.no_grad(), self.autocast():
            pos, neg = pipe.encode_prompt(kw["prompt"], dev, 1, True, kw["negative_prompt"])
            emb = torch.cat([neg, pos])
            control = pipe.prepare_control_image(
                image=kw["control_image"], width=w, height=h, batch_size=B, num_images_per_prompt=1, device=dev,
                dtype=self.controlnet.dtype, crops_coords=None, resize_mode="default",
                do_classifier_free_guidance=True, guess_mode=False)
            init = pipe.image_processor.preprocess(kw["image"], height=h, width=w, crops_coords=None,
                                                   resize_mode="default").to(torch.float32)
            mask = pipe.mask_processor.preprocess(kw["mask_image"], height=h, width=w, resize_mode="default",
                                                  crops_coords=None)
            masked_image = init * (mask < 0.5)
            self.scheduler.set_timesteps(self.gen.config["steps"], device=dev)
            timesteps, _ = pipe.get_timesteps(num_inference_steps=self.gen.config["steps"], strength=1.0, device=dev)
            four = self.unet_channels == 4
            outs = pipe.prepare_latents(B, pipe.vae.config.latent_channels, h, w, emb.dtype, dev, gens, None,
                                        image=init, timestep=timesteps[:1].repeat(B), is_strength_max=True,
                                        return_noise=True, return_image_latents=four)
            mask_l, masked_l = pipe.prepare_mask_latents(mask, masked_image, B, h, w, emb.dtype, dev, gens, True)
        layer, hard = placement_tensors([e.placement for e in exs])
        return Conditioning(emb=emb, control=control, mask=mask_l, masked=masked_l, latents=outs[0], noise=outs[1],
                            image_latents=outs[2] if four else None, timesteps=timesteps,
                            step_kwargs=pipe.prepare_extra_step_kwargs(gens, 0.0), layer=layer.to(dev),
                            hard=hard.to(dev))

    def eps(self, controlnet: Any, x: torch.Tensor, t: Any, c: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε(x_t, z, ∅), ε(x_t, z, c)) of the frozen UNet steered by ``controlnet``, batched as the pipeline's
        classifier-free guidance does."""
        import torch

        x_in = self.scheduler.scale_model_input(torch.cat([x, x]), t)
        down, mid = controlnet(x_in, t, encoder_hidden_states=c.emb, controlnet_cond=c.control,
                               conditioning_scale=self.gen.config["controlnet_scale"], guess_mode=False,
                               return_dict=False)
        unet_in = torch.cat([x_in, c.mask, c.masked], 1) if self.unet_channels == 9 else x_in
        out = self.unet(unet_in, t, encoder_hidden_states=c.emb, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid, return_dict=False)[0]
        eu, ec = out.chunk(2)
        return eu, ec

    def sample(self, c: Conditioning, controlnet: Any, until: int) -> torch.Tensor:
        """x_t at ``timesteps[until]`` (``until`` = the number of steps: the final latents), without gradients."""
        import torch

        w = self.gen.config["guidance"]
        x = c.latents
        with torch.no_grad(), self.autocast():
            for i in range(until):
                t = c.timesteps[i]
                eu, ec = self.eps(controlnet, x, t, c)
                x = self.scheduler.step(eu + w * (ec - eu), t, x, **c.step_kwargs, return_dict=False)[0]
                if c.image_latents is not None:  # a plain UNet: keep the known region on its noised original
                    known = c.image_latents
                    if i < len(c.timesteps) - 1:
                        known = self.scheduler.add_noise(known, c.noise, torch.tensor([c.timesteps[i + 1]]))
                    m = c.mask.chunk(2)[0]
                    x = (1 - m) * known + m * x
        return x

    def predict_x0(self, x: torch.Tensor, eps: torch.Tensor, t: Any, c: Conditioning) -> torch.Tensor:
        """DDIM's prediction of the clean latent at step t (float32, differentiable)."""
        a = self.scheduler.alphas_cumprod.to(self.device)[t].float()
        xf, ef = x.float(), eps.float()
        if self.scheduler.config.prediction_type == "v_prediction":
            x0 = a.sqrt() * xf - (1 - a).sqrt() * ef
        else:
            x0 = (xf - (1 - a).sqrt() * ef) / a.sqrt()
        if c.image_latents is not None:
            m = c.mask.chunk(2)[0].float()
            x0 = (1 - m) * c.image_latents.float() + m * x0
        return x0

    def decode(self, latents: torch.Tensor, c: Conditioning) -> torch.Tensor:
        """Latents → the creative (B, 3, H, W) in [0, 1] at canvas size: the VAE decode and denormalisation of
        the pipeline, then the generator's own paste-back."""
        from adcreative.generate.diffusers_inpaint import compose

        img = self.vae.decode((latents / self.vae.config.scaling_factor).to(self.frozen_dtype), return_dict=False)[0]
        return compose((img.float() / 2 + 0.5).clamp(0, 1), c.layer, c.hard)

    def cc_weight(self, t: Any) -> float:
        """λ_t of the consistent-condition term: 1/(1−ᾱ_t) in score space (the paper's), 1 in ε space."""
        if self.config["cc_weighting"] == "epsilon":
            return 1.0
        return float(1.0 / (1.0 - self.scheduler.alphas_cumprod[int(t)].double()))

    # -- the loss -----------------------------------------------------------------------------------------
    def loss(self, reward: Any, products: Sequence[Product], step: int, micro: int, *, rank: int = 0,
             controlnet: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
        """One micro-batch's RFFT loss (with a graph to the ControlNet only) and its metrics. ``controlnet``
        is the module the graded step runs through (the DDP wrapper in multi-GPU runs)."""
        import torch
        import torch.nn.functional as F

        self.load()
        cfg = self.config
        trained = controlnet if controlnet is not None else self.controlnet
        exs = self.examples(products, step, micro, rank)
        c = self.condition(exs)
        rng = random.Random(f"rfft-t:{cfg['seed']}:{rank}:{step}:{micro}")
        k = len(c.timesteps) - 1 - rng.randrange(cfg["grad_window"])  # one of the last grad_window steps
        x = self.sample(c, self.controlnet, k)
        t = c.timesteps[k]
        w = self.gen.config["guidance"]
        with self.autocast():
            eu, ec = self.eps(trained, x, t, c)
            x0 = self.predict_x0(x, eu + w * (ec - eu), t, c)
            img = self.decode(x0, c)
        aux = _stack_aux([reward.auxiliaries(e.product, e.placement) if hasattr(reward, "auxiliaries") else {}
                          for e in exs], self.device)
        logits = reward(img, aux).float()
        B = len(exs)
        ce = F.cross_entropy(logits, torch.full((B,), AVAILABLE, dtype=torch.long, device=logits.device))
        cc = torch.zeros((), device=logits.device)
        if cfg["beta"] > 0 and self.ref_controlnet is not None:
            with torch.no_grad(), self.autocast():
                ru, rc = self.eps(self.ref_controlnet, x, t, c)
            cc = self.cc_weight(t) * F.mse_loss((ec - eu).float(), (rc - ru).float())
        loss = ce + cfg["beta"] * cc
        p_av = torch.softmax(logits.detach(), -1)[:, AVAILABLE].mean()
        return loss, {"loss": float(loss.detach()), "ce": float(ce.detach()), "cc": float(cc.detach()),
                      "p_available": float(p_av), "t": int(t)}

    # -- validation ---------------------------------------------------------------------------------------
    def render(self, exs: list[Example], controlnet: Any = None) -> torch.Tensor:
        """The creatives the generator would make for these examples with ``controlnet`` (B, 3, H, W)."""
        import torch

        c = self.condition(exs)
        x = self.sample(c, controlnet if controlnet is not None else self.controlnet, len(c.timesteps))
        with torch.no_grad(), self.autocast():
            return self.decode(x, c)

    def validate(self, products: Sequence[Product], reward: Any, step: int, out: Path | None = None
                 ) -> tuple[dict[str, float], Any]:
        """Render the fixed validation set (the first ``val_products`` products × seeds 0…``val_seeds``-1 at
        the first aspect), score it with the reward model; returns the metrics and the image grid (H, W, 3)."""
        import torch
        from PIL import Image

        from adcreative.tune.compositor_policy import background_histogram, mean_pairwise

        cfg = self.config
        aspect = next(iter(cfg["aspects"]))
        rows: list[np.ndarray] = []
        p_all: list[float] = []
        divs: list[float] = []
        for prod in list(products)[: cfg["val_products"]]:
            exs = [self.example(prod, s, aspect) for s in range(cfg["val_seeds"])]
            imgs = self.render(exs)
            aux = _stack_aux([reward.auxiliaries(e.product, e.placement) if hasattr(reward, "auxiliaries") else {}
                              for e in exs], self.device)
            with torch.no_grad():
                p = torch.softmax(reward(imgs, aux).float(), -1)[:, AVAILABLE].cpu().numpy()
            p_all.extend(float(v) for v in p)
            arr = (imgs.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            hists = [background_histogram(Image.fromarray(a), e.placement.paste_mask)
                     for a, e in zip(arr, exs, strict=True)]
            divs.append(mean_pairwise(hists))
            rows.append(np.concatenate(list(arr), axis=1))
        grid = np.concatenate(rows, axis=0)
        p_arr = np.asarray(p_all)
        metrics = {"step": step, "available_rate": float((p_arr >= cfg["val_threshold"]).mean()),
                   "p_available": float(p_arr.mean()), "diversity": float(np.mean(divs)) if divs else 0.0}
        if out is not None:
            from adcreative.core.imageio import save_png

            save_png(out / "validation" / f"step-{step:07d}.png", Image.fromarray(grid))
        return metrics, grid

    # -- training -----------------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then constant/linear/cosine."""
        cfg = self.config
        warm = cfg["lr_warmup_steps"]
        if step < warm:
            return float(cfg["lr"] * (step + 1) / warm)
        if cfg["lr_schedule"] == "constant":
            return float(cfg["lr"])
        progress = (step - warm) / max(1, cfg["max_steps"] - warm)
        factor = 1 - progress if cfg["lr_schedule"] == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
        return float(cfg["lr"] * max(0.0, factor))

    def train(self, products: Sequence[Product], reward: Any, output: str | Path, *, resume: bool = True,
              progress: bool = True) -> RFFTResult:
        """Run (or resume) fine-tuning to ``max_steps`` optimizer steps; writes checkpoints, validation grids,
        TensorBoard logs and, at the end, ``output/controlnet`` (a diffusers ControlNet folder the generator
        loads, with the generator config it was tuned with) and ``output/generator.json`` (that config, for
        ``generate --gen-config``)."""
        import torch
        from accelerate import Accelerator
        from tqdm.auto import tqdm

        if not products:
            raise InputError("no products to fine-tune on")
        cfg = self.config
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        acc = Accelerator(cpu=self.gen.device == "cpu", project_dir=str(out),
                          log_with="tensorboard" if cfg["tensorboard"] else None)
        self.load(str(acc.device))
        if isinstance(reward, torch.nn.Module):
            reward.requires_grad_(False)
            reward.eval()
            reward.to(acc.device)
        trained = acc.prepare(self.controlnet)  # DDP across processes; the module itself on one
        params = self.trainable_parameters()
        opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        # fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none
        scaler = torch.amp.GradScaler(self.device.split(":")[0], enabled=cfg["mixed_precision"] == "fp16")
        ema = None
        if cfg["ema_decay"] > 0:
            from diffusers.training_utils import EMAModel

            ema = EMAModel(params, decay=cfg["ema_decay"])
        step = 0
        history: list[dict[str, float]] = []
        validation: list[dict[str, float]] = []
        ckpt = latest_checkpoint(out) if resume else None
        if ckpt is not None:
            step, history, validation = self._load_checkpoint(ckpt, opt, scaler, ema, acc.num_processes)
        resumed_from = step
        if cfg["tensorboard"]:
            acc.init_trackers("rfft", config=_flat_hparams(cfg))
        if cfg["validate_every"] and step == 0 and cfg["val_products"] and cfg["val_seeds"]:
            validation.append(self._validate_logged(products, reward, step, out, acc, ema, params))
        bar = tqdm(total=cfg["max_steps"], initial=step, desc="rfft", unit="step",
                   disable=not progress or not acc.is_main_process)
        while step < cfg["max_steps"]:
            t0 = time.perf_counter()
            for g in opt.param_groups:
                g["lr"] = self.lr_at(step)
            opt.zero_grad(set_to_none=True)
            metrics: list[dict[str, float]] = []
            for micro in range(cfg["grad_accum"]):
                sync = contextlib.nullcontext() if micro == cfg["grad_accum"] - 1 else acc.no_sync(trained)
                with sync:
                    loss, m = self.loss(reward, products, step, micro, rank=acc.process_index, controlnet=trained)
                    scaler.scale(loss / cfg["grad_accum"]).backward()
                metrics.append(m)
            scaler.unscale_(opt)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg["max_grad_norm"])
            scale_before = scaler.get_scale() if scaler.is_enabled() else 1.0
            scaler.step(opt)
            scaler.update()
            skipped = scaler.is_enabled() and scaler.get_scale() < scale_before  # inf/NaN grads: step skipped
            if ema is not None and not skipped:
                ema.step(params)
            step += 1
            mean = torch.tensor([[m[k] for k in ("loss", "ce", "cc", "p_available")] for m in metrics],
                                device=acc.device).mean(0)
            mean = acc.reduce(mean, reduction="mean")
            rec: dict[str, float] = dict(zip(("loss", "ce", "cc", "p_available"), map(float, mean.tolist()),
                                             strict=True))
            rec.update(step=step, lr=float(opt.param_groups[0]["lr"]), grad_norm=float(grad_norm),
                       skipped=float(skipped), seconds=time.perf_counter() - t0)
            history.append(rec)
            acc.log({f"train/{k}": v for k, v in rec.items() if k != "step"}, step=step)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", p_avail=f"{rec['p_available']:.3f}")
            if cfg["validate_every"] and step % cfg["validate_every"] == 0 and cfg["val_products"] and cfg["val_seeds"]:
                validation.append(self._validate_logged(products, reward, step, out, acc, ema, params))
            if step % cfg["checkpoint_every"] == 0 or step == cfg["max_steps"]:
                if acc.is_main_process:
                    self._save_checkpoint(out, step, opt, scaler, ema, history, validation, acc.num_processes)
                acc.wait_for_everyone()
        bar.close()
        final = out / "controlnet"
        if acc.is_main_process:
            final = self._save_final(out, step, history, validation, ema, params)
        acc.wait_for_everyone()
        acc.end_training()
        return RFFTResult(output=out, controlnet=final, steps=step, history=history, resumed_from=resumed_from,
                          validation=validation, main_process=acc.is_main_process)

    def _validate_logged(self, products: Sequence[Product], reward: Any, step: int, out: Path, acc: Any,
                         ema: Any, params: list[Any]) -> dict[str, float]:
        """Validation on the main process with the weights that would ship (the EMA's when on)."""
        metrics: dict[str, float] = {}
        if acc.is_main_process:
            if ema is not None:
                ema.store(params)
                ema.copy_to(params)
            try:
                metrics, grid = self.validate(products, reward, step, out)
            finally:
                if ema is not None:
                    ema.restore(params)
            acc.log({f"val/{k}": v for k, v in metrics.items() if k != "step"}, step=step)
            if self.config["tensorboard"]:
                acc.get_tracker("tensorboard").log_images({"val/grid": grid[None]}, step=step, dataformats="NHWC")
        acc.wait_for_everyone()
        return metrics

    # -- checkpoints --------------------------------------------------------------------------------------
    def _save_checkpoint(self, out: Path, step: int, opt: Any, scaler: Any, ema: Any, history: list[dict[str, float]],
                         validation: list[dict[str, float]], processes: int) -> Path:
        from safetensors.torch import save_file

        final = out / f"{CKPT_PREFIX}{step:07d}"
        # written beside, flushed, swapped in whole: the previous checkpoints are pruned only after
        with atomic_dir(final, keep_others=False) as tmp:
            self.controlnet.save_pretrained(str(tmp / "controlnet"), safe_serialization=True)
            tensors, groups = optimizer_to_tensors(opt)
            save_file(tensors, str(tmp / OPTIM_NAME))
            if ema is not None:
                save_file({n: t.detach().cpu().contiguous()
                           for n, t in zip(self._param_names(), ema.shadow_params, strict=True)}, str(tmp / EMA_NAME))
            state = {"step": step, "config": self.config, "param_groups": groups, "history": history,
                     "validation": validation, "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                     "ema_step": ema.optimization_step if ema is not None else None, "processes": processes}
            (tmp / STATE_NAME).write_text(json.dumps(state, indent=1))
        ckpts = sorted((p for p in out.glob(f"{CKPT_PREFIX}*") if _ckpt_step(p) >= 0), key=_ckpt_step)
        for old in ckpts[:-self.config["keep_checkpoints"]]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _param_names(self) -> list[str]:
        return [n for n, p in self.controlnet.named_parameters() if p.requires_grad]

    def _load_checkpoint(self, ckpt: Path, opt: Any, scaler: Any, ema: Any, processes: int
                         ) -> tuple[int, list[dict[str, float]], list[dict[str, float]]]:
        from safetensors.torch import load_file

        from adcreative.generate.diffusers_inpaint import SAMPLING_KEYS

        try:
            state = json.loads((ckpt / STATE_NAME).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"unreadable checkpoint state ({e})", source=ckpt / STATE_NAME) from None
        was, now = state["config"].get("generator", {}), self.config["generator"]
        for key in ("base", "controlnet", "lora", *SAMPLING_KEYS):
            if _norm(was.get(key)) != _norm(now.get(key)):
                raise InputError(f"checkpoint was trained with generator {key}={was.get(key)!r}, this run has "
                                 f"{now.get(key)!r}; use a new --out or the same generator config", source=ckpt)
        if state.get("processes", 1) != processes:
            raise InputError(f"checkpoint was trained on {state.get('processes', 1)} processes, this run has "
                             f"{processes}: example draws would differ; resume with the same launch", source=ckpt)
        weights = next((ckpt / "controlnet").glob("*.safetensors"), None)
        if weights is None:
            raise InputError("checkpoint has no ControlNet safetensors", source=ckpt / "controlnet")
        self.controlnet.load_state_dict(load_file(str(weights), device=str(self.device)))
        tensors_to_optimizer(opt, load_file(str(ckpt / OPTIM_NAME), device=str(self.device)), state["param_groups"])
        if state.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        if ema is not None:
            if not (ckpt / EMA_NAME).is_file():
                raise InputError("this run keeps an EMA but the checkpoint has none", source=ckpt)
            shadow = load_file(str(ckpt / EMA_NAME), device=str(self.device))
            ema.shadow_params = [shadow[n] for n in self._param_names()]
            ema.optimization_step = int(state["ema_step"])
        return int(state["step"]), list(state["history"]), list(state.get("validation", []))

    def _save_final(self, out: Path, step: int, history: list[dict[str, float]], validation: list[dict[str, float]],
                    ema: Any, params: list[Any]) -> Path:
        from adcreative.generate.diffusers_inpaint import TUNED_WITH

        final = out / "controlnet"
        gen_cfg = {**self.gen.config, "controlnet": str(final.resolve())}
        with atomic_dir(final, keep_others=False) as tmp:
            if ema is not None:  # ship the averaged weights
                ema.store(params)
                ema.copy_to(params)
            try:
                self.controlnet.save_pretrained(str(tmp), safe_serialization=True)
            finally:
                if ema is not None:
                    ema.restore(params)
            (tmp / TUNED_WITH).write_text(json.dumps(gen_cfg, indent=1))
        atomic_write_text(out / GENERATOR_JSON, json.dumps(gen_cfg, indent=1))
        summary = {"steps": step, "config": self.config, "history": history, "validation": validation,
                   "first": history[0] if history else None, "last": history[-1] if history else None}
        atomic_write_text(out / "rfft.json", json.dumps(summary, indent=1))
        if history:
            plot_history(history, validation, out / "rfft_curve.png")
        return final


# -- helpers ------------------------------------------------------------------------------------------------
def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _flat_hparams(cfg: dict[str, Any]) -> dict[str, Any]:
    """The run's config as TensorBoard hparams (scalars and strings only; the generator's fields prefixed)."""
    flat: dict[str, Any] = {}
    for k, v in cfg.items():
        items = v.items() if isinstance(v, dict) else [(None, v)]
        for sub, val in items:
            name = f"{k}.{sub}" if sub else k
            flat[name] = val if isinstance(val, int | float | str | bool) else json.dumps(val)
    return flat


def _stack_aux(items: list[dict[str, torch.Tensor]], device: str) -> dict[str, torch.Tensor]:
    import torch

    if not items or not items[0]:
        return {}
    return {k: torch.stack([d[k] for d in items]).to(device) for k in items[0]}


def _ckpt_step(p: Path) -> int:
    try:
        return int(p.name[len(CKPT_PREFIX):])
    except ValueError:
        return -1


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``out`` (one with its state file), or None."""
    ckpts = [p for p in Path(out).glob(f"{CKPT_PREFIX}*") if (p / STATE_NAME).is_file() and _ckpt_step(p) >= 0]
    return max(ckpts, key=_ckpt_step) if ckpts else None


def optimizer_to_tensors(opt: Any) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """An optimizer's state as flat named tensors (safetensors) and its param groups as JSON."""
    import torch

    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"{idx}.{name}"] = t.detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def tensors_to_optimizer(opt: Any, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = v
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def plot_history(history: list[dict[str, float]], validation: list[dict[str, float]], path: Path) -> None:
    """Training curves (CE, consistent-condition loss, P(available)) and the validation metrics."""
    import matplotlib

    matplotlib.use("Agg")

    import matplotlib.pyplot as plt

    from adcreative.report.plots import save_figure

    steps = [h["step"] for h in history]
    panels = [("ce", "CE towards available"), ("cc", "consistent-condition"), ("p_available", "P(available)")]
    val = [v for v in validation if v]
    fig, axes = plt.subplots(1, 4 if val else 3, figsize=(16 if val else 12, 3.2))
    for ax, (key, title) in zip(axes, panels, strict=False):
        ax.plot(steps, [h[key] for h in history])
        ax.set_title(title)
        ax.set_xlabel("step")
    if val:
        ax = axes[3]
        vs = [v["step"] for v in val]
        ax.plot(vs, [v["available_rate"] for v in val], "o-", label="available rate")
        ax.plot(vs, [v["diversity"] for v in val], "s-", label="diversity")
        ax.set_title("validation (fixed products × seeds)")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=80)
