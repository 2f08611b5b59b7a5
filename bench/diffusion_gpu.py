"""The diffusers backend and RFFT on a GPU at Stable Diffusion 1.5 size: speed and peak memory, measured.

Random weights in SD 1.5's exact architectures (inpainting UNet, canny ControlNet, VAE, CLIP ViT-L text
encoder) are written as local diffusers folders (``build_random_sd_folders``), and then the real code paths
run on the device, as a GPU user's commands would run them:

* ``generate --generator diffusers-inpaint``: the registry's generator (fp16 on CUDA, JD's 40 DDIM steps,
  guidance 7.5, 512 px short side), batch 1 and 4, aspects 1:1 and 4:5; seconds per image and peak memory; and
  the product's pixels checked to be the cutout's own in every creative;
* ``tune rfft``: ``RFFTTrainer.train`` with bf16 frozen modules, with and without gradient checkpointing and
  EMA, batch 1 and 2; seconds per optimizer step and peak memory; the reward is an RFNet of the shipped
  architecture (random weights, no title encoder: its package is too large to carry);
* the tuned ControlNet then generates through ``OUT/generator.json``, as ``generate --gen-config`` would.

Peak memory is ``torch.cuda.max_memory_allocated`` (and ``_reserved``) of each configuration alone: the
previous one is freed and the counters reset first. Random weights make noise, not ads; speed and memory
do not depend on the weights' values. ``--arch tiny --device cpu`` runs the same script in seconds (a check
of the script, not a measurement).

    PYTHONPATH=src python bench/diffusion_gpu.py --out OUT [--arch sd15] [--device cuda] [--rfft-steps 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

GIB = 2**30


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def reset(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak(device: str) -> tuple[float, float]:
    """(allocated, reserved) peak in GiB since the last reset; NaN off CUDA."""
    import torch

    if not device.startswith("cuda"):
        return float("nan"), float("nan")
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_generate(folders: tuple[Path, Path], product: Any, device: str, scale: float, steps: int,
                   out: Path) -> list[dict[str, Any]]:
    import numpy as np
    from PIL import Image

    from adcreative.generate.provenance import build_generator

    rows: list[dict[str, Any]] = []
    shown: list[Any] = []
    for batch in (1, 4):
        reset(device)
        gen: Any = build_generator("diffusers-inpaint", base=str(folders[0]), controlnet=str(folders[1]),
                                   device=device, batch_size=batch, steps=steps, canvas_scale=scale)
        t = time.perf_counter()
        gen(product, seed=1000, aspect="1:1", n=batch)  # load + warm-up (kernels, allocator)
        sync(device)
        load_s = time.perf_counter() - t
        for aspect in ("1:1", "4:5"):
            reset(device)
            t = time.perf_counter()
            made = gen(product, seed=0, aspect=aspect, n=2 * batch)
            sync(device)
            s = time.perf_counter() - t
            alloc, res = peak(device)
            intact = True
            for g in made:  # the product's own pixels, exactly the cutout's, in every creative
                placement, _ = gen.prepare(product, seed=g.seed, aspect=aspect)
                inside = np.asarray(g.mask) > 0
                intact &= bool(np.array_equal(np.asarray(g.image)[inside],
                                              np.asarray(placement.layer)[..., :3][inside]))
            rows.append({"what": "generate", "batch": batch, "aspect": aspect, "size": made[0].image.size,
                         "images": len(made), "s_per_image": s / len(made), "first_call_s": load_s,
                         "peak_alloc_gib": alloc, "peak_reserved_gib": res, "product_pixels_intact": intact})
            log(f"generate batch {batch} {aspect} {made[0].image.size}: {s / len(made):.3f} s/image, "
                f"peak {alloc:.2f} GiB (reserved {res:.2f}), product intact {intact}")
            shown.extend(made[:2])
        del gen
    w = sum(g.image.width for g in shown[:4])
    h = max(g.image.height for g in shown[:4])
    sheet = Image.new("RGB", (w, h), (255, 255, 255))
    x = 0
    for g in shown[:4]:
        sheet.paste(g.image, (x, 0))
        x += g.image.width
    sheet.thumbnail((1600, 1600))
    sheet.save(out / "generated.png")
    return rows


def parse_rfft_configs(text: str) -> list[tuple[int, bool, bool, str]]:
    """``"1:full,1:ckpt,2:ckpt:ema,1:ckpt:fp16"`` → (batch, checkpointing, ema, precision) per configuration."""
    configs = []
    for item in filter(None, text.split(",")):
        batch, *flags = item.split(":")
        if not set(flags) <= {"full", "ckpt", "ema", "fp16", "bf16", "no"}:
            raise SystemExit(f"error: unknown RFFT configuration {item!r} (batch:full|ckpt[:ema][:fp16|bf16|no])")
        precision = next((f for f in flags if f in ("fp16", "bf16", "no")), "bf16")
        configs.append((int(batch), "ckpt" in flags, "ema" in flags, precision))
    return configs


def bench_rfft(folders: tuple[Path, Path], products: list[Any], device: str, scale: float, steps: int,
               rfft_steps: int, work: Path, configs: list[tuple[int, bool, bool, str]]
               ) -> tuple[list[dict[str, Any]], Path]:
    from adcreative.inspect.model import RFNet
    from adcreative.tune.reward import RFNetReward
    from adcreative.tune.rfft import RFFTTrainer

    gen_cfg = {"base": str(folders[0]), "controlnet": str(folders[1]), "device": device, "steps": steps,
               "canvas_scale": scale, "batch_size": 4}
    rows: list[dict[str, Any]] = []
    last = work
    for batch, ckpt, ema, precision in configs:
        precision = precision if device.startswith("cuda") else "no"  # half-precision autocast is a GPU path
        reset(device)
        reward = RFNetReward(RFNet(tokens="block", local_width=32, use_cues=True, use_text=False))
        tr = RFFTTrainer(generator=gen_cfg, grad_window=min(5, steps), beta=1.0, lr=1e-5, lr_warmup_steps=0, grad_accum=1,
                         batch_size=batch, max_steps=rfft_steps, ema_decay=0.999 if ema else 0.0,
                         checkpoint_every=10_000, validate_every=0, mixed_precision=precision,
                         gradient_checkpointing=ckpt, tensorboard=False, seed=0)
        last = work / f"rfft-b{batch}-{'ckpt' if ckpt else 'full'}{'-ema' if ema else ''}-{precision}"
        t = time.perf_counter()
        res = tr.train(products, reward, last, resume=False, progress=False)
        sync(device)
        total = time.perf_counter() - t
        alloc, reserved = peak(device)
        per_step = [h["seconds"] for h in res.history]
        steady = statistics.median_high(per_step[1:] or per_step)  # the first step pays kernel selection
        rows.append({"what": "rfft", "batch": batch, "checkpointing": ckpt, "ema": ema, "precision": precision,
                     "steps": res.steps, "skipped_steps": int(sum(h["skipped"] for h in res.history)),
                     "s_per_step": steady, "first_step_s": per_step[0], "total_s": total,
                     "peak_alloc_gib": alloc, "peak_reserved_gib": reserved,
                     "loss": [round(h["loss"], 5) for h in res.history],
                     "p_available": [round(h["p_available"], 4) for h in res.history]})
        log(f"rfft {precision} batch {batch} checkpointing {ckpt} ema {ema}: {steady:.2f} s/step (first {per_step[0]:.2f}), "
            f"peak {alloc:.2f} GiB (reserved {reserved:.2f}), loss {rows[-1]['loss']}, "
            f"{rows[-1]['skipped_steps']} steps skipped by the loss scaler")
        del tr, reward, res
    return rows, last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the JSON report and the contact sheet")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder for weights and runs (default OUT/work)")
    ap.add_argument("--arch", choices=("sd15", "tiny"), default="sd15")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=40, help="DDIM steps (JD's default 40)")
    ap.add_argument("--scale", type=float, default=1.0, help="canvas scale: 1.0 → 512 px short side")
    ap.add_argument("--rfft-steps", type=int, default=3, help="optimizer steps per RFFT configuration")
    ap.add_argument("--rfft-configs", default="1:full,1:ckpt,2:ckpt:ema",
                    help="batch:full|ckpt[:ema][:fp16|bf16|no], comma-separated (default bf16)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: generate,rfft")
    args = ap.parse_args(argv)

    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.generate.diffusers_tiny import build_random_sd_folders

    # The byte-level test tokenizer spells prompts letter by letter, so every prompt is cut at CLIP's 77 tokens
    # (the real tokenizer would give ~40): the length, not the text, is what costs time; silence the warnings.
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda asked for but CUDA is not available (use --arch tiny --device cpu to check "
              "the script)", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or out / "work"
    skip = set(filter(None, args.skip.split(",")))
    rfft_configs = parse_rfft_configs(args.rfft_configs)
    env = {"torch": torch.__version__, "device": args.device, "arch": args.arch, "steps": args.steps,
           "scale": args.scale}
    if args.device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / GIB
    import diffusers
    import transformers

    env.update(diffusers=diffusers.__version__, transformers=transformers.__version__)
    log(f"environment: {env}")

    t = time.perf_counter()
    folders = build_random_sd_folders(work / "weights", arch=args.arch, dtype="float16" if args.arch == "sd15"
                                      else "float32", device=args.device if args.arch == "sd15" else "cpu")
    sizes = {p.name: sum(f.stat().st_size for f in p.rglob("*.safetensors")) / GIB for p in folders}
    env["build_s"] = time.perf_counter() - t
    log(f"random {args.arch} folders in {env['build_s']:.1f} s: {sizes}")

    products = sample_catalogue()[:4]
    rows: list[dict[str, Any]] = []
    report = out / "diffusion_gpu.json"

    def save() -> None:
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps({"environment": env, "rows": rows}, indent=1, default=str))
        tmp.replace(report)

    if "generate" not in skip:
        rows += bench_generate(folders, products[0], args.device, args.scale, args.steps, out)
        save()
    if "rfft" not in skip:
        rfft_rows, last = bench_rfft(folders, products, args.device, args.scale, args.steps, args.rfft_steps, work,
                                     rfft_configs)
        rows += rfft_rows
        save()
        # the tuned ControlNet through the config RFFT wrote, as `generate --gen-config OUT/generator.json`
        from adcreative.generate.provenance import build_generator, parse_generator_config

        reset(args.device)
        tuned: Any = build_generator("diffusers-inpaint", **parse_generator_config(str(last / "generator.json")))
        g = tuned(products[0], seed=0, aspect="1:1", n=1)[0]
        rows.append({"what": "generate with the tuned ControlNet", "controlnet": tuned.config["controlnet"],
                     "size": g.image.size})
        log(f"tuned ControlNet generates: {g.image.size} from {tuned.config['controlnet']}")
        save()

    print()
    print(f"{'what':10} {'config':34} {'s/image or s/step':>18} {'peak alloc GiB':>15} {'reserved GiB':>13}")
    for r in rows:
        if r["what"] == "generate":
            cfg = f"fp16 batch {r['batch']} {r['aspect']} {r['size'][0]}x{r['size'][1]}"
            print(f"{'generate':10} {cfg:34} {r['s_per_image']:18.3f} {r['peak_alloc_gib']:15.2f} "
                  f"{r['peak_reserved_gib']:13.2f}")
        elif r["what"] == "rfft":
            cfg = (f"{r['precision']} batch {r['batch']}{' ckpt' if r['checkpointing'] else ''}"
                   f"{' ema' if r['ema'] else ''}")
            print(f"{'tune rfft':10} {cfg:34} {r['s_per_step']:18.2f} {r['peak_alloc_gib']:15.2f} "
                  f"{r['peak_reserved_gib']:13.2f}")
    print(f"\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
