"""Compositor throughput: creatives per second per canvas size, on one core.

    python bench/generate.py [--n 40]

Runs single-threaded (OpenCV and NumPy pinned to one thread) over the sample catalogue, natural policy and
forced defects mixed, and prints the median of three repeats per canvas. Target: ≥ 10/s at 512×512.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# bench/ holds scripts named like stdlib modules (inspect.py, select.py): keep this folder off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import cv2

from adcreative.catalogue.sample import sample_catalogue
from adcreative.core.imageio import png_bytes
from adcreative.core.types import ASPECTS, CLASSES
from adcreative.generate.compositor.generator import Compositor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40, help="creatives per canvas per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    products = sample_catalogue()
    gen = Compositor()
    gen(products[0], seed=0)  # warm caches (fonts, product preparation)
    for p in products:
        gen(p, seed=0, aspect="1:1")
    rows = []
    for aspect, (w, h) in ASPECTS.items():
        rates, enc_rates = [], []
        for r in range(args.repeats):
            t = time.perf_counter()
            imgs = []
            for i in range(args.n):
                p = products[i % len(products)]
                defect = None if i % 2 == 0 else CLASSES[(i // 2) % len(CLASSES)]
                imgs.append(gen(p, seed=r * 1000 + i, aspect=aspect, defect=defect)[0].image)
            dt = time.perf_counter() - t
            rates.append(args.n / dt)
            t = time.perf_counter()
            for im in imgs:
                png_bytes(im)
            enc_rates.append(args.n / (dt + time.perf_counter() - t))
        rows.append((aspect, f"{w}×{h}", statistics.median(rates), statistics.median(enc_rates)))
    print(f"compositor {gen.version}, 1 thread, {args.n} creatives × {args.repeats} repeats per canvas (median)")
    print(f"{'aspect':<7} {'canvas':<9} {'creatives/s':>12} {'incl. PNG encode/s':>19} {'target ≥10/s':>13}")
    for aspect, size, rate, enc in rows:
        flag = "ok" if rate >= 10 or aspect != "1:1" else "BELOW"
        print(f"{aspect:<7} {size:<9} {rate:>12.1f} {enc:>19.1f} {flag:>13}")


if __name__ == "__main__":
    main()
