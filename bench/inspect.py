"""Inspection throughput on CPU: images per second at batch 1 and 32, RFNet and the image-only baseline
side by side, for torch (eager) and the ONNX export (onnxruntime).

    PYTHONPATH=src python bench/inspect.py [--model DIR] [--threads 1] [--reps 3]   (median of the repeats)

"model" columns time the network on prepared tensors; "end-to-end" adds preprocessing from PIL images
(letterbox, edges, masks, cached title embeddings) and the three-way decision (``judge``: calibrated
probabilities, out-of-distribution score, band). Inputs are compositor creatives of the sample catalogue.
Throughput does not depend on the weights, so the image-only column uses the default model's config
with its auxiliary inputs removed (trained weights are loaded when --image-only DIR is given).
"""

from __future__ import annotations

import os
import sys

# this file is named like the stdlib module ``inspect``: keep its folder off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def creatives(n: int) -> list[Any]:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.generate.compositor.generator import Compositor
    from adcreative.inspect.preprocess import InspectItem

    products = sample_catalogue()
    gen = Compositor(scale=1.0)  # what generation delivers (512 px long side)
    out = []
    for i in range(n):
        p = products[i % len(products)]
        gi = gen(p, seed=i, aspect=["1:1", "4:5", "16:9", "9:16"][i % 4])[0]
        out.append(InspectItem(gi.image, p.title, gi.mask, p.image, id=str(i)))
    return out


def rate(fn: Any, n_images: int, reps: int) -> float:
    """Images per second of the median repeat (one slow repeat, e.g. a page-in, does not drag the figure)."""
    fn()  # warm-up (allocations, title cache)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_images / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="RFNet folder (default: the shipped model)")
    ap.add_argument("--image-only", type=Path, default=None, help="Trained image-only folder (optional)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.model import image_only

    rfnet = load_inspector(args.model)
    if args.image_only is not None:
        base = load_inspector(args.image_only)
    else:
        cfg = {k: v for k, v in rfnet.config.items()
               if not k.startswith("use_") and k not in ("temperature", "decision")}
        torch.manual_seed(0)
        base = image_only(**cfg).eval()
    items = creatives(32)
    tmp = Path(tempfile.mkdtemp(prefix="bench-inspect-"))
    rows = []
    results: dict[tuple[str, str, int], tuple[float, float]] = {}
    for name, model in (("RFNet", rfnet), ("image-only", base)):
        d = tmp / name
        model.save_pretrained(d)
        export_onnx(model, d)
        ort = OnnxInspector(d, threads=args.threads)
        for bs in (1, 32):
            batch = items[:bs]
            model.onnx_trunk = False  # the torch rows are eager torch end to end
            with torch.no_grad():
                prepared = model.prepare(batch)
                t_model = rate(lambda m=model, x=prepared: m(x), bs, args.reps)
                t_e2e = rate(lambda m=model, b=batch, n=bs: m.judge(b, batch_size=n), bs, args.reps)
            arrays = ort.prepare(batch)
            o_model = rate(lambda o=ort, a=arrays: o.run_arrays(a), bs, args.reps)
            o_e2e = rate(lambda o=ort, b=batch, n=bs: o.judge(b, batch_size=n), bs, args.reps)
            results[(name, "torch", bs)] = (t_model, t_e2e)
            results[(name, "onnx", bs)] = (o_model, o_e2e)
            # both backends agree
            np.testing.assert_allclose(ort.run_arrays(arrays), torch.softmax(model(prepared), -1).detach().numpy(),
                                       atol=1e-4)
    print(f"inspection throughput, images/s (CPU, {args.threads} thread(s); input {rfnet.image_size}² image, "
          f"{rfnet.aux_size}² aux maps)")
    head = f"{'model':<12}{'backend':<9}{'batch':>6}{'model img/s':>13}{'end-to-end img/s':>18}"
    print(head)
    print("-" * len(head))
    for (name, backend, bs), (m, e) in results.items():
        rows.append((name, backend, bs, m, e))
        print(f"{name:<12}{backend:<9}{bs:>6}{m:>13.1f}{e:>18.1f}")
    print()
    print("ratio RFNet / image-only (model img/s; <1 means RFNet is slower):")
    for backend in ("torch", "onnx"):
        for bs in (1, 32):
            r = results[("RFNet", backend, bs)][0] / results[("image-only", backend, bs)][0]
            print(f"  {backend:<6} batch {bs:>2}: {r:.2f}")
    for bs in (1, 32):
        r = results[("RFNet", "onnx", bs)][0] / results[("RFNet", "torch", bs)][0]
        print(f"ONNX / torch speed-up for RFNet at batch {bs}: {r:.2f}×")


if __name__ == "__main__":
    main()
