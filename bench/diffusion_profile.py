"""Where the diffusers generator's time goes, per image, at batch 1 and batch 4 (why batch 1 costs more per image).

Random weights in SD 1.5's exact architectures (``build_random_sd_folders(arch="sd15")``, as
``bench/diffusion_gpu.py``) are loaded by the registry's ``diffusers-inpaint`` generator (fp16 on CUDA, 40 DDIM
steps, guidance 7.5, 512×512), and for ``batch_size`` 1 and 4, after one warm-up call, these are timed (median
of ``--reps`` calls, fresh seed blocks each time, ``torch.cuda.synchronize()`` around every timer):

* ``whole call``: ``gen(product, seed=…, n=batch)``, nothing instrumented, eagerly (``gen.cuda_graphs = False``)
  and as the generator runs by default on CUDA (the denoising step replayed as CUDA graphs);
* ``project pre``: ``prepare`` of every seed (placement, mask, canny) + ``pipeline_inputs`` + the product key;
* ``pipeline``: the diffusers pipeline call alone (eager) on the prepared inputs; inside it, on the GPU's own timeline
  (CUDA events recorded from wrappers, which neither synchronise nor move work): text encoding, the masked
  image's VAE encoding, the other input preparation (image/mask/control preprocessing, noise), the denoising
  loop (and per step), VAE decoding and diffusers' postprocessing;
* ``project post``: ``placement_tensors`` + ``compose`` + ``to_pil`` (the product pasted back, 8-bit images);
* one denoising step (ControlNet + UNet on the captured inputs of a real call) run 10 times back to back in
  eager mode, and replayed 10 times as one CUDA graph: the graph's time is the GPU's own work, the eager time
  adds the CPU's kernel launches; their difference is the launch overhead a batch-1 call pays per step;
* the pipeline with ControlNet and UNet replayed as CUDA graphs (``adcreative.generate.cuda_graphs``): its
  first (capturing) call, its steady ms per call, and whether its images are bit-identical to the eager ones;
* ``torch.profiler`` of one pipeline call of at most 10 steps (``--profile-batches``, run last): GPU busy time
  (sum of kernel/memcpy durations), kernels, host-device synchronisations, and the top operators by device
  and by CPU time, written to ``OUT/profile_b{batch}.txt``.

``--arch tiny --device cpu`` runs the same script in seconds (a check of the script, not a measurement).

    PYTHONPATH=src python bench/diffusion_profile.py --out OUT [--arch sd15] [--device cuda] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAN = float("nan")
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Timeline:
    """Named marks on the GPU's timeline (CUDA events: no synchronisation) or, off CUDA, the CPU's clock."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.marks: list[tuple[str, Any]] = []

    def mark(self, name: str) -> None:
        import torch

        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append((name, ev))
        else:
            self.marks.append((name, time.perf_counter()))

    def times_ms(self) -> dict[str, list[float]]:
        """Each mark's time(s) in ms from the first mark (call after a synchronisation)."""
        first = self.marks[0][1]
        out: dict[str, list[float]] = {}
        for name, m in self.marks:
            ms = first.elapsed_time(m) if self.cuda else (m - first) * 1e3
            out.setdefault(name, []).append(ms)
        return out


def instrument(pipe: Any, box: dict[str, Timeline | None]) -> None:
    """Wrap the pipeline's stages to record marks on ``box["t"]`` (when set); the pipeline's work is unchanged."""

    def around(obj: Any, attr: str, name: str) -> None:
        fn: Callable[..., Any] = getattr(obj, attr)

        def wrapped(*a: Any, **k: Any) -> Any:
            tl = box["t"]
            if tl is not None:
                tl.mark(name + ":start")
            r = fn(*a, **k)
            if tl is not None:
                tl.mark(name + ":end")
            return r

        setattr(obj, attr, wrapped)

    around(pipe, "encode_prompt", "text")
    around(pipe, "prepare_mask_latents", "vae_encode")
    around(pipe.vae, "decode", "vae_decode")
    around(pipe.scheduler, "step", "step")

    def pre(_m: Any, _a: Any) -> None:
        tl = box["t"]
        if tl is not None:
            tl.mark("controlnet:start")

    pipe.controlnet.register_forward_pre_hook(pre)


def segments(marks: dict[str, list[float]], steps: int) -> dict[str, float]:
    """ms per pipeline call of each stage, from one call's marks."""
    start, end = marks["call:start"][0], marks["call:end"][0]
    loop0, loop1 = marks["controlnet:start"][0], marks["step:end"][-1]
    text = marks["text:end"][0] - marks["text:start"][0]
    enc = marks["vae_encode:end"][0] - marks["vae_encode:start"][0]
    dec = marks["vae_decode:end"][0] - marks["vae_decode:start"][0]
    return {"pipeline": end - start, "text encoding": text, "masked-image VAE encode": enc,
            "other input preparation": (loop0 - start) - text - enc, "denoising loop": loop1 - loop0,
            "per step": (loop1 - loop0) / steps, "loop to decode": marks["vae_decode:start"][0] - loop1,
            "VAE decode": dec, "diffusers postprocess": end - marks["vae_decode:end"][0]}


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def step_bench(pipe: Any, captured: dict[str, Any], device: str, n: int = 10) -> dict[str, float]:
    """ms per denoising step (ControlNet + UNet on the captured inputs): eager back to back, and one CUDA graph."""
    import torch

    cn_a, cn_k = captured["controlnet"]
    un_a, un_k = captured["unet"]

    def step() -> Any:
        down, mid = pipe.controlnet(*cn_a, **cn_k)
        return pipe.unet(*un_a, **{**un_k, "down_block_additional_residuals": down,
                                   "mid_block_additional_residual": mid})

    res: dict[str, float] = {}
    with torch.no_grad():
        for _ in range(2):
            step()
        sync(device)
        t = time.perf_counter()
        for _ in range(n):
            step()
        sync(device)
        res["eager ms/step"] = (time.perf_counter() - t) * 1e3 / n
        if device.startswith("cuda"):
            try:
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(2):
                        step()
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    step()
                g.replay()
                sync(device)
                t = time.perf_counter()
                for _ in range(n):
                    g.replay()
                sync(device)
                res["CUDA graph ms/step"] = (time.perf_counter() - t) * 1e3 / n
                del g
            except Exception as e:  # a capture failure is a finding, not a crash
                log(f"CUDA graph capture failed: {type(e).__name__}: {e}")
                res["CUDA graph ms/step"] = float("nan")
    return res


def graph_trial(pipe: Any, inputs: dict[str, Any], make_gens: Callable[[], Any], device: str,
                reps: int) -> dict[str, Any]:
    """The pipeline with ControlNet and UNet replayed as CUDA graphs (the generator's ``cuda_graphed``): first
    call (capture), steady ms per call, and whether its images are bit-identical to the eager pipeline's."""
    import torch

    from adcreative.generate.cuda_graphs import cuda_graphed

    if not device.startswith("cuda"):
        return {}

    def call() -> tuple[float, Any]:
        sync(device)
        t = time.perf_counter()
        with torch.no_grad():
            im = pipe(**inputs, generator=make_gens(), output_type="pt").images
        sync(device)
        return (time.perf_counter() - t) * 1e3, im

    eager_ms, eager = call()
    res: dict[str, Any] = {"graph eager ref ms": eager_ms}
    cache: dict[str, Any] = {}
    try:
        with cuda_graphed({"controlnet": pipe.controlnet, "unet": pipe.unet}, cache):
            res["graph first call ms"], _ = call()
            timed = [call() for _ in range(reps)]
        res["graphed pipeline"] = med([ms for ms, _ in timed])
        im = timed[-1][1]
        res["graph bit-identical"] = bool(torch.equal(im, eager))
        res["graph max abs diff"] = float((im.float() - eager.float()).abs().max())
    except Exception as e:  # a capture failure is a finding, not a crash
        log(f"graphed pipeline failed: {type(e).__name__}: {e}")
        res["graph error"] = f"{type(e).__name__}: {e}"
    finally:
        cache.clear()
        sync(device)
        torch.cuda.empty_cache()
    return res


def profile_call(pipe: Any, inputs: dict[str, Any], make_gens: Callable[[], Any], device: str, steps: int,
                 path: Path) -> dict[str, float]:
    """One pipeline call under torch.profiler: GPU busy ms, kernels per step; the top-op tables to ``path``."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    sync(device)
    t = time.perf_counter()
    with profile(activities=acts) as prof, torch.no_grad():
        pipe(**{**inputs, "num_inference_steps": steps}, generator=make_gens(), output_type="pt")
        sync(device)
    wall = (time.perf_counter() - t) * 1e3
    events = prof.events()
    gpu = [e for e in events if e.device_type == DeviceType.CUDA]
    busy = sum(e.time_range.elapsed_us() for e in gpu) / 1e3
    kernels = sum(1 for e in gpu if "memcpy" not in e.name.lower() and "memset" not in e.name.lower())
    # host-device synchronisations: each stalls the CPU until the GPU has caught up
    syncs = sum(1 for e in events if e.device_type == DeviceType.CPU
                and e.name in ("aten::_local_scalar_dense", "cudaStreamSynchronize", "cudaDeviceSynchronize"))
    avg = prof.key_averages()
    with path.open("w") as f:
        f.write(f"one pipeline call ({steps} steps) under torch.profiler: wall {wall:.1f} ms (profiled), GPU busy "
                f"{busy:.1f} ms, {kernels} kernels ({kernels / steps:.0f} per step incl. the pre/post work), "
                f"{syncs} host-device synchronisations (item/stream/device sync)\n\n")
        keys = ["self_cpu_time_total"]
        if device.startswith("cuda"):
            keys.insert(0, "self_device_time_total" if hasattr(avg[0], "self_device_time_total")
                        else "self_cuda_time_total")
        for key in keys:
            try:
                f.write(f"== top operators by {key} ==\n{avg.table(sort_by=key, row_limit=30)}\n\n")
            except Exception as e:  # an older/newer profiler's key names: the totals above still stand
                f.write(f"== no table sorted by {key}: {type(e).__name__}: {e} ==\n\n")
    return {"profiled wall ms": wall, "GPU busy ms": busy, "kernels": float(kernels), "syncs": float(syncs)}


def bench_batch(folders: tuple[Path, Path], product: Any, device: str, scale: float, steps: int, batch: int,
                reps: int, out: Path, profiled: bool) -> tuple[dict[str, Any], Callable[[], dict[str, float]] | None]:
    import torch

    from adcreative.generate.diffusers_inpaint import _product_key, compose, placement_tensors, to_pil
    from adcreative.generate.provenance import build_generator

    gen: Any = build_generator("diffusers-inpaint", base=str(folders[0]), controlnet=str(folders[1]),
                               device=device, batch_size=batch, steps=steps, canvas_scale=scale)
    first = NAN
    whole: list[float] = []
    whole_graphs: list[float] = []
    for graphs, times in ((False, whole), (True, whole_graphs)):  # eager, then the generator's default
        gen.cuda_graphs = graphs
        sync(device)
        t = time.perf_counter()
        gen(product, seed=1000 + 100 * graphs, aspect="1:1", n=batch)  # load / capture + warm-up
        sync(device)
        first = first if graphs else time.perf_counter() - t
        first_graphs = time.perf_counter() - t
        for r in range(reps):  # each a fresh block of seeds, so the generator's block cache does not answer
            sync(device)
            t = time.perf_counter()
            gen(product, seed=2000 + 100 * graphs + r * batch, aspect="1:1", n=batch)
            sync(device)
            times.append((time.perf_counter() - t) * 1e3)
    gen.cuda_graphs = False
    gen._graphs.clear()

    pipe = gen.pipeline
    seeds = list(range(3000, 3000 + batch))
    pre, key = [], []
    for _ in range(reps):
        t = time.perf_counter()
        _product_key(product)
        key.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        prepared = [gen.prepare(product, seed=s, aspect="1:1") for s in seeds]
        placements, params = [p for p, _ in prepared], [q for _, q in prepared]
        inputs = gen.pipeline_inputs(placements, params)
        pre.append((time.perf_counter() - t) * 1e3)

    def make_gens() -> list[Any]:
        return [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

    box: dict[str, Timeline | None] = {"t": None}
    instrument(pipe, box)
    # the inputs of one real denoising step, for the step benchmark
    captured: dict[str, Any] = {}

    def grab(name: str) -> Callable[..., None]:
        def hook(_m: Any, a: Any, k: Any) -> None:
            if name not in captured:
                captured[name] = (a, dict(k))
        return hook

    hs = [pipe.controlnet.register_forward_pre_hook(grab("controlnet"), with_kwargs=True),
          pipe.unet.register_forward_pre_hook(grab("unet"), with_kwargs=True)]
    pipe_ms, segs = [], []
    bg: Any = None
    for _ in range(reps):
        tl = Timeline(device)
        box["t"] = tl
        sync(device)
        t = time.perf_counter()
        tl.mark("call:start")
        with torch.no_grad():
            bg = pipe(**inputs, generator=make_gens(), output_type="pt").images
        tl.mark("call:end")
        sync(device)
        pipe_ms.append((time.perf_counter() - t) * 1e3)
        box["t"] = None
        segs.append(segments(tl.times_ms(), steps))
    for h in hs:
        h.remove()
    post = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        with torch.no_grad():
            layer, hard = placement_tensors(placements)
            to_pil(compose(bg.float(), layer.to(bg.device), hard))
        post.append((time.perf_counter() - t) * 1e3)

    step = step_bench(pipe, captured, device)
    captured.clear()
    graphed = graph_trial(pipe, inputs, make_gens, device, reps)
    row = {"batch": batch, "first_call_s": first, "first_call_graphs_s": first_graphs, "whole call": med(whole),
           "whole call (graphs)": med(whole_graphs), "project pre": med(pre),
           "product key": med(key), "pipeline (timed)": med(pipe_ms),
           **{k: med([s[k] for s in segs]) for k in segs[0]}, "project post": med(post), **step, **graphed,
           "raw": {"whole": whole, "whole_graphs": whole_graphs, "pre": pre, "pipeline": pipe_ms, "post": post, "segments": segs}}
    log(f"batch {batch}: whole {row['whole call']:.0f} ms/call (graphs {row['whole call (graphs)']:.0f}), pipeline {row['pipeline (timed)']:.0f}, loop "
        f"{row['denoising loop']:.0f} ({row['per step']:.1f}/step), eager step {step['eager ms/step']:.1f}, graph "
        f"step {step.get('CUDA graph ms/step', NAN):.1f}; graphed pipeline {graphed.get('graphed pipeline', NAN):.0f}"
        f" ms/call, bit-identical {graphed.get('graph bit-identical')}")

    def prof() -> dict[str, float]:
        return profile_call(pipe, inputs, make_gens, device, min(steps, 10), out / f"profile_b{batch}.txt")

    return row, (prof if profiled else None)


ORDER = ("whole call", "whole call (graphs)", "project pre", "product key", "pipeline (timed)", "pipeline", "text encoding",
         "masked-image VAE encode", "other input preparation", "denoising loop", "per step", "loop to decode",
         "VAE decode", "diffusers postprocess", "project post", "eager ms/step", "CUDA graph ms/step",
         "graphed pipeline", "graph first call ms", "GPU busy ms", "profiled wall ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the JSON report and the profiler tables")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder for the weights (default OUT/work)")
    ap.add_argument("--arch", choices=("sd15", "tiny"), default="sd15")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=40, help="DDIM steps (JD's default 40)")
    ap.add_argument("--scale", type=float, default=1.0, help="canvas scale: 1.0 → 512 px short side")
    ap.add_argument("--reps", type=int, default=3, help="timed calls per measurement (median)")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--profile-batches", default="1",
                    help="batches whose pipeline runs once (≤ 10 steps) under torch.profiler")
    args = ap.parse_args(argv)

    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.generate.diffusers_tiny import build_random_sd_folders

    diffusers_logging.set_verbosity_error()  # the byte-level test tokenizer cuts every prompt at 77 tokens
    transformers_logging.set_verbosity_error()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda asked for but CUDA is not available (use --arch tiny --device cpu to check "
              "the script)", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = args.work or out / "work"
    import diffusers

    env: dict[str, Any] = {"torch": torch.__version__, "diffusers": diffusers.__version__, "device": args.device,
                           "arch": args.arch, "steps": args.steps, "scale": args.scale, "reps": args.reps}
    if args.device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
    import os

    env["cpu_count"] = os.cpu_count()
    log(f"environment: {env}")
    t = time.perf_counter()
    folders = build_random_sd_folders(work / "weights", arch=args.arch, dtype="float16" if args.arch == "sd15"
                                      else "float32", device=args.device if args.arch == "sd15" else "cpu")
    log(f"random {args.arch} folders in {time.perf_counter() - t:.1f} s")
    product = sample_catalogue()[0]
    rows = []
    report = out / "diffusion_profile.json"
    profiles = []
    for b in (int(x) for x in args.batches.split(",")):
        row, prof = bench_batch(folders, product, args.device, args.scale, args.steps, b, args.reps, out,
                                str(b) in args.profile_batches.split(","))
        rows.append(row)
        profiles.append(prof)
        report.write_text(json.dumps({"environment": env, "rows": rows}, indent=1, default=str))
    for row, prof in zip(rows, profiles, strict=True):  # last: the profiler is the likeliest part to fail
        if prof is not None:
            try:
                row.update(prof())
            except Exception as e:
                log(f"profiler failed: {type(e).__name__}: {e}")
            report.write_text(json.dumps({"environment": env, "rows": rows}, indent=1, default=str))

    print(f"\nms per image (a call's ms / batch); per-step and step-bench rows are ms per step; {args.steps} steps")
    print(f"{'component':28}" + "".join(f"{'batch ' + str(r['batch']):>12}" for r in rows))
    for k in ORDER:
        per_step = k in ("per step", "eager ms/step", "CUDA graph ms/step")
        vals = "".join(f"{(r.get(k, NAN) if per_step else r.get(k, NAN) / r['batch']):12.1f}" for r in rows)
        print(f"{k:28}{vals}")
    print(f"{'graph bit-identical':28}" + "".join(f"{r.get('graph bit-identical')!s:>12}" for r in rows))
    for k in ("kernels", "syncs"):
        print(f"{k + ' per call':28}" + "".join(f"{r.get(k, NAN):12.0f}" for r in rows))
    print(f"{'first call s (load+warm-up)':28}" + "".join(f"{r['first_call_s']:12.1f}" for r in rows))
    print(f"{'first graphed call s':28}" + "".join(f"{r['first_call_graphs_s']:12.1f}" for r in rows))
    print(f"\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
