"""RFFT: reliable feedback fine-tuning of the ControlNet (Du et al., ECCV 2024, §4).

Per training example the trainer samples a creative with DDIM exactly as the diffusers generator would
(same placement, canny control, inpainting mask, prompts), without gradients, up to one step ``t_k`` drawn
from the last ``grad_window`` steps. At that step only, with gradients, it predicts the clean latent

    x̂0 = (x_t − √(1−ᾱ_t) · ε̂) / √ᾱ_t,     ε̂ = ε(x_t, z, ∅) + w · (ε(x_t, z, c) − ε(x_t, z, ∅))

decodes x̂0 with the (frozen) VAE, pastes the product back, and scores the image with a differentiable
reward model (RFNet). The loss is

    L = CE(RFNet(x̂0), available) + β · ‖d_θ − d_ref‖²,    d = ε(x_t, z, c) − ε(x_t, z, ∅)

where d_ref comes from a frozen copy of the original ControlNet: the *consistent-condition* regulariser
keeps the tuned ControlNet's classifier-free-guidance direction where it was, so chasing the reward does
not wash out the prompt and the control image. ∅ is the unconditional branch as sampled at inference (the
negative prompt; the empty prompt with ``negative_prompts=False``). Only the ControlNet learns: the UNet,
VAE, text encoder and reward model are frozen.

AdamW with gradient accumulation; checkpoints are safetensors (ControlNet weights, optimizer state as
tensors) plus a JSON step counter — no pickles — and a run resumes from its latest checkpoint. Example
draws are a function of (seed, step, micro-batch), so a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

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
    placement: Placement  # at the work (generation) size
    prompt: str
    negative_prompt: str


@dataclass
class RFFTResult:
    output: Path
    controlnet: Path
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0


class RFFTTrainer:
    """Fine-tunes a canny ControlNet against a differentiable reward model. The constructor is the config."""

    @register_to_config
    def __init__(
        self,
        base: str,
        controlnet: str,
        lora: str | None = None,
        lora_scale: float = 1.0,
        sample_steps: int = 20,
        grad_window: int = 5,
        guidance: float = 7.5,
        controlnet_scale: float = 1.0,
        beta: float = 1.0,
        lr: float = 1e-5,
        weight_decay: float = 1e-2,
        grad_accum: int = 4,
        batch_size: int = 1,
        max_steps: int = 500,
        max_grad_norm: float = 1.0,
        checkpoint_every: int = 50,
        keep_checkpoints: int = 2,
        aspects: list[str] | tuple[str, ...] = ("1:1",),
        canvas_scale: float = 1.0,
        size_multiple: int = 64,
        scale_range: list[float] | tuple[float, float] = (0.7, 0.78),
        mask_dilate: int = 4,
        prompts: str | None = None,
        negative_prompts: bool = True,
        seed_pool: int = 0,
        mixed_precision: str = "no",
        gradient_checkpointing: bool = False,
        device: str | None = None,
        seed: int = 0,
    ) -> None:
        from adcreative.generate.diffusers_inpaint import DiffusersInpaintGenerator

        if not 1 <= grad_window <= sample_steps:
            raise InputError(f"grad_window must be in [1, sample_steps={sample_steps}], got {grad_window}")
        if beta < 0:
            raise InputError(f"beta must be ≥ 0, got {beta}")
        if min(grad_accum, batch_size, max_steps, checkpoint_every) < 1:
            raise InputError("grad_accum, batch_size, max_steps and checkpoint_every must be ≥ 1")
        if mixed_precision not in ("no", "fp16", "bf16"):
            raise InputError(f"mixed_precision must be no, fp16 or bf16, got {mixed_precision!r}")
        # The generator validates the local folders and owns placement/prompt sampling, so training sees
        # exactly the inputs inference will.
        self.gen = DiffusersInpaintGenerator(
            base=base, controlnet=controlnet, lora=lora, lora_scale=lora_scale, steps=sample_steps,
            guidance=guidance, controlnet_scale=controlnet_scale, scale_range=list(scale_range),
            mask_dilate=mask_dilate, canvas_scale=canvas_scale, size_multiple=size_multiple, prompts=prompts,
            device=device, dtype="float32")
        self.config: dict[str, Any]
        self._loaded = False

    # -- components ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the pipeline's components from the local folders; freeze all but the ControlNet."""
        if self._loaded:
            return
        import copy

        import torch

        pipe = self.gen.pipeline
        self.device = self.gen.device
        self.unet, self.vae, self.text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
        self.tokenizer, self.scheduler = pipe.tokenizer, pipe.scheduler
        self.controlnet = pipe.controlnet.float()
        self.ref_controlnet = copy.deepcopy(self.controlnet)
        frozen_dtype = torch.float32
        if self.device.startswith("cuda") and self.config["mixed_precision"] != "no":
            frozen_dtype = torch.float16 if self.config["mixed_precision"] == "fp16" else torch.bfloat16
        for m in (self.unet, self.vae, self.text_encoder, self.ref_controlnet):
            m.requires_grad_(False)
            m.eval()
            if frozen_dtype != torch.float32:
                m.to(dtype=frozen_dtype)
        self.frozen_dtype = frozen_dtype
        self.controlnet.requires_grad_(True)
        self.controlnet.train()
        if self.config["gradient_checkpointing"]:
            # the graded step keeps UNet, ControlNet and VAE-decoder activations: recompute them instead
            self.unet.enable_gradient_checkpointing()
            self.controlnet.enable_gradient_checkpointing()
            self.vae.enable_gradient_checkpointing()
        self.unet_channels = int(self.unet.config.in_channels)
        self.vae_scale = int(2 ** (len(self.vae.config.block_out_channels) - 1))
        self._loaded = True

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        self.load()
        return [p for p in self.controlnet.parameters() if p.requires_grad]

    def frozen_modules(self) -> dict[str, torch.nn.Module]:
        self.load()
        return {"unet": self.unet, "vae": self.vae, "text_encoder": self.text_encoder,
                "ref_controlnet": self.ref_controlnet}

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.frozen_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.frozen_dtype)

    # -- data ---------------------------------------------------------------------------------------------
    def examples(self, products: Sequence[Product], step: int, micro: int) -> list[Example]:
        """The micro-batch for (step, micro): a function of the run's seed only, so resuming is exact."""
        from adcreative.generate.diffusers_inpaint import work_size

        rng = random.Random(f"rfft:{self.config['seed']}:{step}:{micro}")
        aspect = rng.choice(list(self.config["aspects"]))
        out = []
        for _ in range(self.config["batch_size"]):
            prod = products[rng.randrange(len(products))]
            pool = self.config["seed_pool"]
            s = rng.randrange(pool) if pool > 0 else rng.randrange(2**31)
            placement, params = self.gen.prepare(prod, seed=s, aspect=aspect)
            ws = work_size(placement.layer.size, self.config["size_multiple"])
            out.append(Example(product=prod, seed=s, aspect=aspect, placement=resize_placement(placement, ws),
                               prompt=params["prompt"],
                               negative_prompt=params["negative_prompt"] if self.config["negative_prompts"] else ""))
        return out

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        import torch

        ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.device)
        with torch.no_grad():
            return self.text_encoder(ids)[0]  # type: ignore[no-any-return]

    def _batch_tensors(self, exs: list[Example]) -> dict[str, torch.Tensor]:
        import torch

        dev, dt = self.device, self.frozen_dtype
        init = torch.stack([_to_tensor(e.placement.init_image) for e in exs]).to(dev) * 2 - 1
        mask = torch.stack([_to_tensor(e.placement.inpaint_mask) for e in exs]).to(dev)
        mask = (mask > 0.5).float()
        control = torch.stack([_to_tensor(e.placement.control_image) for e in exs]).to(dev)
        layer = torch.stack([_to_tensor(e.placement.layer) for e in exs]).to(dev)  # RGBA in [0, 1]
        h, w = init.shape[-2:]
        lat_hw = (h // self.vae_scale, w // self.vae_scale)
        with torch.no_grad():
            sf = self.vae.config.scaling_factor
            masked = init * (mask < 0.5)
            masked_lat = self.vae.encode(masked.to(dt)).latent_dist.mode() * sf
            init_lat = self.vae.encode(init.to(dt)).latent_dist.mode() * sf
        cond = self._encode_text([e.prompt for e in exs])
        uncond = self._encode_text([e.negative_prompt for e in exs])
        return {"mask_lat": torch.nn.functional.interpolate(mask, size=lat_hw).to(dt), "masked_lat": masked_lat,
                "init_lat": init_lat, "control": control.to(dt), "layer": layer, "cond": cond, "uncond": uncond}

    # -- the model ----------------------------------------------------------------------------------------
    def _eps(self, controlnet: Any, x: torch.Tensor, t: Any, emb: torch.Tensor, b: dict[str, torch.Tensor],
             rows: slice | None = None) -> torch.Tensor:
        """ε(x_t, z, emb) of the frozen UNet steered by ``controlnet``. ``x`` and ``emb`` are stacked
        [uncond; cond] (2B rows), as diffusers does for classifier-free guidance."""
        import torch

        n_rep = x.shape[0] // b["control"].shape[0]
        control = b["control"].repeat(n_rep, 1, 1, 1)
        x_in = self.scheduler.scale_model_input(x, t)
        down, mid = controlnet(x_in.to(self.frozen_dtype), t, encoder_hidden_states=emb, controlnet_cond=control,
                               conditioning_scale=self.config["controlnet_scale"], return_dict=False)
        unet_in = x_in
        if self.unet_channels == 9:
            unet_in = torch.cat([x_in, b["mask_lat"].repeat(n_rep, 1, 1, 1), b["masked_lat"].repeat(n_rep, 1, 1, 1)], 1)
        out = self.unet(unet_in.to(self.frozen_dtype), t, encoder_hidden_states=emb,
                        down_block_additional_residuals=down, mid_block_additional_residual=mid, return_dict=False)[0]
        return out.float()  # type: ignore[no-any-return]

    def loss(self, reward: Any, products: Sequence[Product], step: int, micro: int
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """One micro-batch's RFFT loss (with a graph to the ControlNet only) and its metrics."""
        import torch
        import torch.nn.functional as F

        self.load()
        cfg = self.config
        exs = self.examples(products, step, micro)
        b = self._batch_tensors(exs)
        B = len(exs)
        rng = random.Random(f"rfft-t:{cfg['seed']}:{step}:{micro}")
        self.scheduler.set_timesteps(cfg["sample_steps"], device=self.device)
        timesteps = self.scheduler.timesteps
        k = len(timesteps) - 1 - rng.randrange(cfg["grad_window"])  # one of the last grad_window steps
        # x_T from each example's own seed (CPU generator: the same on every device), as the generator does
        lat_shape = (4, *b["init_lat"].shape[-2:])
        noise = torch.stack([torch.randn(lat_shape, generator=torch.Generator(device="cpu").manual_seed(e.seed))
                             for e in exs]).to(self.device)
        x = noise * self.scheduler.init_noise_sigma
        emb = torch.cat([b["uncond"], b["cond"]])
        w = cfg["guidance"]
        with torch.no_grad(), self._autocast():
            for i in range(k):
                t = timesteps[i]
                eu, ec = self._eps(self.controlnet, torch.cat([x, x]), t, emb, b).chunk(2)
                x = self.scheduler.step(eu + w * (ec - eu), t, x, eta=0.0).prev_sample
                if self.unet_channels == 4:  # plain UNet: keep the known region on its noised original
                    nt = timesteps[i + 1]
                    known = self.scheduler.add_noise(b["init_lat"], noise, nt.reshape(1))
                    x = (1 - b["mask_lat"]) * known + b["mask_lat"] * x
        t = timesteps[k]
        with self._autocast():
            eu, ec = self._eps(self.controlnet, torch.cat([x, x]), t, emb, b).chunk(2)
            eps = eu + w * (ec - eu)
            a_t = self.scheduler.alphas_cumprod.to(self.device)[t].float()
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            if self.unet_channels == 4:
                x0 = (1 - b["mask_lat"]) * b["init_lat"] + b["mask_lat"] * x0
            img = self.vae.decode((x0 / self.vae.config.scaling_factor).to(self.frozen_dtype)).sample.float()
        img = ((img + 1) / 2).clamp(0, 1)
        alpha = b["layer"][:, 3:4]
        img = img * (1 - alpha) + b["layer"][:, :3] * alpha  # the product's own pixels, as at inference
        aux = _stack_aux([reward.auxiliaries(e.product, e.placement) if hasattr(reward, "auxiliaries") else {}
                          for e in exs], self.device)
        logits = reward(img, aux)
        ce = F.cross_entropy(logits.float(), torch.full((B,), AVAILABLE, dtype=torch.long, device=self.device))
        cc = torch.zeros((), device=self.device)
        if cfg["beta"] > 0:
            with torch.no_grad(), self._autocast():
                ru, rc = self._eps(self.ref_controlnet, torch.cat([x, x]), t, emb, b).chunk(2)
            cc = F.mse_loss(ec - eu, (rc - ru).detach())
        loss = ce + cfg["beta"] * cc
        p_av = torch.softmax(logits.detach().float(), -1)[:, AVAILABLE].mean()
        return loss, {"loss": float(loss.detach()), "ce": float(ce.detach()), "cc": float(cc.detach()),
                      "p_available": float(p_av), "t": int(t)}

    # -- training -----------------------------------------------------------------------------------------
    def train(self, products: Sequence[Product], reward: Any, output: str | Path, *, resume: bool = True,
              progress: bool = True) -> RFFTResult:
        """Run (or resume) fine-tuning to ``max_steps`` optimizer steps; writes checkpoints and, at the end,
        ``output/controlnet`` (a diffusers ControlNet folder the generator loads) and ``output/rfft.json``."""
        import torch
        from tqdm.auto import tqdm

        if not products:
            raise InputError("no products to fine-tune on")
        if isinstance(reward, torch.nn.Module):
            reward.requires_grad_(False)
            reward.eval()
        self.load()
        cfg = self.config
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        params = self.trainable_parameters()
        opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        step = 0
        history: list[dict[str, float]] = []
        ckpt = latest_checkpoint(out) if resume else None
        if ckpt is not None:
            step, history = self._load_checkpoint(ckpt, opt)
        resumed_from = step
        bar = tqdm(total=cfg["max_steps"], initial=step, desc="rfft", disable=not progress, unit="step")
        while step < cfg["max_steps"]:
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            metrics: list[dict[str, float]] = []
            for micro in range(cfg["grad_accum"]):
                loss, m = self.loss(reward, products, step, micro)
                (loss / cfg["grad_accum"]).backward()
                metrics.append(m)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg["max_grad_norm"])
            opt.step()
            step += 1
            rec = {k: float(np.mean([m[k] for m in metrics])) for k in ("loss", "ce", "cc", "p_available")}
            rec.update(step=step, grad_norm=float(grad_norm), seconds=time.perf_counter() - t0)
            history.append(rec)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", p_avail=f"{rec['p_available']:.3f}")
            if step % cfg["checkpoint_every"] == 0 or step == cfg["max_steps"]:
                self._save_checkpoint(out, step, opt, history)
        bar.close()
        final = self._save_final(out, step, history)
        return RFFTResult(output=out, controlnet=final, steps=step, history=history, resumed_from=resumed_from)

    # -- checkpoints --------------------------------------------------------------------------------------
    def _save_checkpoint(self, out: Path, step: int, opt: Any, history: list[dict[str, float]]) -> Path:
        from safetensors.torch import save_file

        final = out / f"{CKPT_PREFIX}{step:07d}"
        tmp = out / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.controlnet.save_pretrained(str(tmp / "controlnet"), safe_serialization=True)
        tensors, groups = optimizer_to_tensors(opt)
        save_file(tensors, str(tmp / OPTIM_NAME))
        state = {"step": step, "config": self.config, "param_groups": groups, "history": history}
        (tmp / STATE_NAME).write_text(json.dumps(state, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)  # a checkpoint folder is either complete or absent
        ckpts = sorted(out.glob(f"{CKPT_PREFIX}*"), key=_ckpt_step)
        for old in ckpts[:-self.config["keep_checkpoints"]]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _load_checkpoint(self, ckpt: Path, opt: Any) -> tuple[int, list[dict[str, float]]]:
        from safetensors.torch import load_file

        try:
            state = json.loads((ckpt / STATE_NAME).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"unreadable checkpoint state ({e})", source=ckpt / STATE_NAME) from None
        for key in ("base", "controlnet", "lora"):
            if state["config"].get(key) != self.config[key]:
                raise InputError(f"checkpoint was trained with {key}={state['config'].get(key)!r}, this run has "
                                 f"{self.config[key]!r}; use a new --out or the same weights", source=ckpt)
        weights = next((ckpt / "controlnet").glob("*.safetensors"), None)
        if weights is None:
            raise InputError("checkpoint has no ControlNet safetensors", source=ckpt / "controlnet")
        self.controlnet.load_state_dict(load_file(str(weights), device=str(self.device)))
        tensors_to_optimizer(opt, load_file(str(ckpt / OPTIM_NAME), device=str(self.device)), state["param_groups"])
        return int(state["step"]), list(state["history"])

    def _save_final(self, out: Path, step: int, history: list[dict[str, float]]) -> Path:
        final = out / "controlnet"
        tmp = out / ".controlnet.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.controlnet.save_pretrained(str(tmp), safe_serialization=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        summary = {"steps": step, "config": self.config, "history": history,
                   "first": history[0] if history else None, "last": history[-1] if history else None}
        atomic_write_text(out / "rfft.json", json.dumps(summary, indent=1))
        if history:
            plot_history(history, out / "rfft_curve.png")
        return final


# -- helpers ------------------------------------------------------------------------------------------------
def resize_placement(p: Placement, size: tuple[int, int]) -> Placement:
    """The placement's images at the generation size (identity when equal)."""
    from adcreative.generate.diffusers_inpaint import Placement

    if p.layer.size == tuple(size):
        return p
    nearest, lanczos = Image.Resampling.NEAREST, Image.Resampling.LANCZOS
    return Placement(layer=p.layer.resize(size, lanczos), box=p.box, paste_mask=p.paste_mask.resize(size, nearest),
                     init_image=p.init_image.resize(size, lanczos), inpaint_mask=p.inpaint_mask.resize(size, nearest),
                     control_image=p.control_image.resize(size, nearest), scale=p.scale)


def _to_tensor(im: Image.Image) -> torch.Tensor:
    import torch

    a = np.asarray(im, dtype=np.float32) / 255.0
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


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


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")

    import matplotlib.pyplot as plt

    from adcreative.report.plots import save_figure

    steps = [h["step"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, key in zip(axes, ("ce", "cc", "p_available"), strict=True):
        ax.plot(steps, [h[key] for h in history])
        ax.set_title({"ce": "CE towards available", "cc": "consistent-condition", "p_available": "P(available)"}[key])
        ax.set_xlabel("step")
    save_figure(fig, path, dpi=80)
