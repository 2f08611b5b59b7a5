"""GPU memory of ``tune rfft`` and ``generate --generator diffusers-inpaint`` at SD 1.5 size, estimated on a CPU.

No GPU or real weights are needed: the SD 1.5 architectures (inpainting UNet, canny ControlNet, VAE, CLIP
text encoder) are built with random weights. Parameter, gradient and AdamW bytes are exact. The activations
RFFT keeps for its backward pass (the graded step: ControlNet + UNet on the [uncond; cond] rows, the VAE
decoder on one row) are measured with autograd's saved-tensor hooks during the forward pass at two small
sizes and extrapolated
linearly in pixel count to the creative's size — an estimate (attention is assumed to run in a
memory-efficient kernel, as PyTorch's SDPA does on CUDA, so it grows linearly too; allocator fragmentation
and CUDA context, ~1-2 GB, are added as a flat margin).

    PYTHONPATH=src python bench/rfft_memory.py [--sizes 64 96] [--target 512]

On a GPU, measure instead: ``bench/diffusion_gpu.py`` (on an H200 these estimates proved 1–4 GiB low at
batch 2; docs/diffusion.md has both).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

GIB = 2**30
MARGIN_GIB = 1.5  # CUDA context + allocator fragmentation (typical, not measured here)


def sd15_modules(dtype: Any) -> dict[str, Any]:
    """SD 1.5's architectures with random weights (``random_sd_modules``), frozen parts in ``dtype`` and the
    ControlNet, which RFFT trains, in float32."""
    from adcreative.generate.diffusers_tiny import random_sd_modules

    mods = random_sd_modules("sd15", randomize_zero_convs=False)
    for name in ("unet", "vae", "text_encoder"):
        mods[name].to(dtype).requires_grad_(False).eval()
    return mods


def saved_bytes(mods: dict[str, Any], px: int, batch: int, checkpointing: bool, dtype: Any) -> int:
    """Bytes autograd keeps for backward in one graded step at ``px``×``px`` for ``batch`` examples."""
    import torch

    unet, cn, vae = mods["unet"], mods["controlnet"], mods["vae"]
    for m in (unet, cn, vae):
        (m.enable_gradient_checkpointing if checkpointing else m.disable_gradient_checkpointing)()
    lat = px // 8
    x = torch.randn(2 * batch, 4, lat, lat, dtype=dtype)
    emb = torch.randn(2 * batch, 77, 768, dtype=dtype)
    control = torch.rand(2 * batch, 3, px, px)
    extra = torch.randn(2 * batch, 5, lat, lat, dtype=dtype)
    seen: dict[tuple[int, Any, tuple[int, ...]], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.dtype, tuple(t.shape))
        if not isinstance(t, torch.nn.Parameter) and not t.is_inference():
            seen[key] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=dtype):
        down, mid = cn(x, 500, encoder_hidden_states=emb, controlnet_cond=control, return_dict=False)
        eps = unet(torch.cat([x, extra], 1), 500, encoder_hidden_states=emb,
                   down_block_additional_residuals=down, mid_block_additional_residual=mid, return_dict=False)[0]
        eu, ec = eps.chunk(2)
        x0 = eu + 7.5 * (ec - eu)
        vae.decode(x0.to(dtype), return_dict=False)
    # the forward pass is what decides what is kept: no backward needed (nor its gradient memory here)
    return sum(seen.values())


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[64, 96], help="two small square sizes measured (px)")
    ap.add_argument("--target", type=int, default=512, help="creative size extrapolated to (px, square)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    half = torch.bfloat16  # fp16 on CUDA: the same bytes
    t0 = time.time()
    mods = sd15_modules(half)
    n = {k: sum(p.numel() for p in m.parameters()) for k, m in mods.items()}
    print("parameters: " + ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in n.items()))
    frozen = 2 * (n["unet"] + n["vae"] + n["text_encoder"])  # half precision
    ref_cn = 2 * n["controlnet"]  # the frozen reference ControlNet (β > 0), half precision
    trained = 4 * n["controlnet"] * 4  # float32 weights + gradients + AdamW's two moments
    ema = 4 * n["controlnet"]
    rows = []
    for ckpt in (False, True):
        for batch in (1, 2):
            a, b = (saved_bytes(mods, s, batch, ckpt, half) for s in args.sizes)
            print(f"  measured: checkpointing {ckpt}, batch {batch}: {a / 2**20:.0f} / {b / 2**20:.0f} MiB "
                  f"({time.time() - t0:.0f} s)", flush=True)
            s0, s1 = (s * s for s in args.sizes)
            slope = (b - a) / (s1 - s0)
            act = a + slope * (args.target**2 - s0)
            rows.append((ckpt, batch, a, b, act))
    fixed = frozen + ref_cn + trained
    print(f"\nweights and optimizer (exact): frozen UNet+VAE+text encoder {frozen / GIB:.2f} GiB, reference "
          f"ControlNet {ref_cn / GIB:.2f} GiB, trained ControlNet + grads + AdamW {trained / GIB:.2f} GiB, "
          f"EMA {ema / GIB:.2f} GiB")
    print(f"\n| checkpointing | batch/GPU | saved @{args.sizes[0]} px | saved @{args.sizes[1]} px | "
          f"activations @{args.target} px (est.) | total, no EMA (est.) | total, EMA (est.) |")
    print("|---|---|---|---|---|---|---|")
    for ckpt, batch, a, b, act in rows:
        tot = (fixed + act) / GIB + MARGIN_GIB
        print(f"| {'on' if ckpt else 'off'} | {batch} | {a / 2**20:.0f} MiB | {b / 2**20:.0f} MiB | "
              f"{act / GIB:.1f} GiB | {tot:.1f} GiB | {tot + ema / GIB:.1f} GiB |")
    infer = 2 * (n["unet"] + n["vae"] + n["text_encoder"] + n["controlnet"])
    print(f"\ngeneration (fp16 weights, exact): {infer / GIB:.2f} GiB of weights; activations are transient "
          f"(no graph). ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
