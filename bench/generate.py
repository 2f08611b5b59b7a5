"""Scene-renderer throughput: creatives per second per canvas size, on one core.

    python bench/generate.py [--n 40] [--families compositor,softfocus,perspective,poster]

Runs single-threaded (OpenCV and NumPy pinned to one thread) over the sample catalogue, natural policy and
forced defects mixed, and prints the median of three repeats per canvas and family, with the CPU seconds per
creative (steadier than wall time on a shared machine) and each family's rate as a ratio of the first's.
Target for the compositor: ≥ 10/s at 512×512.
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
from adcreative.generate.base import create_generator


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40, help="creatives per canvas per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--families", default="compositor", help="comma-separated registered scene renderers")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    products = sample_catalogue()
    rows = []
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        gen = create_generator(family)
        for p in products:  # warm caches (fonts, product preparation)
            gen(p, seed=0, aspect="1:1")
        for aspect, (w, h) in ASPECTS.items():
            rates, enc_rates, cpus = [], [], []
            for r in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                imgs = []
                for i in range(args.n):
                    p = products[i % len(products)]
                    defect = None if i % 2 == 0 else CLASSES[(i // 2) % len(CLASSES)]
                    imgs.append(gen(p, seed=r * 1000 + i, aspect=aspect, defect=defect)[0].image)
                dt = time.perf_counter() - t
                cpus.append((time.process_time() - c) / args.n)
                rates.append(args.n / dt)
                t = time.perf_counter()
                for im in imgs:
                    png_bytes(im)
                enc_rates.append(args.n / (dt + time.perf_counter() - t))
            rows.append((family, gen.version, aspect, f"{w}×{h}", statistics.median(rates),
                         statistics.median(enc_rates), statistics.median(cpus)))
    print(f"1 thread, {args.n} creatives × {args.repeats} repeats per canvas and family (median)")
    print(f"{'family':<16} {'aspect':<7} {'canvas':<9} {'creatives/s':>12} {'incl. PNG/s':>12} {'CPU s each':>11} "
          f"{'× first':>8} {'target':>7}")
    first = {aspect: rate for fam, _, aspect, _, rate, _, _ in rows if fam == rows[0][0]}
    for family, version, aspect, size, rate, enc, cpu in rows:
        flag = "" if family != "compositor" or aspect != "1:1" else ("ok" if rate >= 10 else "BELOW")
        print(f"{family + ' ' + version:<16} {aspect:<7} {size:<9} {rate:>12.1f} {enc:>12.1f} {cpu:>11.3f} "
              f"{rate / first[aspect]:>8.2f} {flag:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
