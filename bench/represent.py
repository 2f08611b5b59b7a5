"""Benchmark of the represent stage; prints tables.

1. Encoder throughput (embeddings/s) of the learned image+text encoder side by side with the raw ImageNet
   backbone features it starts from (same trunk, same images), and explicit features/s with and without OCR.
2. FAISS at 100k vectors: build time, single-query p50/p99 latency and recall@10 against exact search, for
   flat, IVF-Flat and HNSW. The 100k vectors are synthetic but shaped like creative embeddings: 256-d unit
   vectors in 2,000 product clusters of 50 creatives (cosine to the cluster centre ≈ 0.8), since generating
   and embedding 100k real creatives is not a benchmark's job on 2 cores.

    python bench/represent.py [--threads 1] [--n 100000] [--images 48] [--queries 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# bench/ holds scripts named like stdlib modules (inspect.py, select.py): keep this folder off the path
# before anything imports ``inspect``
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _creatives(n: int) -> tuple[list, list[str]]:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.represent.evaluate import creative_set

    prods = sample_catalogue()
    items = creative_set(prods, max(1, n // len(prods) + 1), seed=0, aspects=["1:1", "4:5", "16:9", "9:16"])[:n]
    return [it.image for it in items], [it.text for it in items]


def bench_encoder(n_images: int) -> None:
    import torch
    from torch.nn import functional as F

    from adcreative.core.backbones import clear_text_caches
    from adcreative.represent.encoder import CreativeEncoder, TextEmbedder
    from adcreative.represent.features import CreativeInput, FeatureExtractor

    images, texts = _creatives(n_images)
    enc = CreativeEncoder()
    TextEmbedder()(texts)  # load MiniLM outside the timing (one-off ~7 s import)
    clear_text_caches()
    enc.embed(images[:4], texts[:4])

    def raw() -> None:
        with torch.no_grad():
            for i in range(0, len(images), 32):
                F.normalize(enc.forward_features(enc.preprocess(images[i: i + 32])), dim=1)

    rows = []
    for name, fn in (("ImageNet EfficientNet-Lite0 pooled (baseline)", raw),
                     ("ours: image only", lambda: enc.embed(images)),
                     ("ours: image + MiniLM text", lambda: (clear_text_caches(), enc.embed(images, texts)))):
        t = time.perf_counter()
        fn()
        rows.append((name, len(images) / (time.perf_counter() - t)))
    ex_ocr, ex_no = FeatureExtractor(ocr=True), FeatureExtractor(ocr=False)
    items = [CreativeInput(im) for im in images[:16]]
    ex_ocr(items[:1])
    for name, ex in (("explicit features, no OCR", ex_no), ("explicit features + OCR", ex_ocr)):
        t = time.perf_counter()
        ex(items)
        rows.append((name, len(items) / (time.perf_counter() - t)))
    base = rows[0][1]
    print(f"\nencoders and features on {len(images)} compositor creatives (threads={torch.get_num_threads()})")
    print(f"{'model':<48}{'items/s':>10}{'vs baseline':>13}")
    for name, r in rows:
        print(f"{name:<48}{r:>10.1f}{r / base:>12.2f}x")


def realistic_vectors(n: int, n_queries: int, dim: int = 256, per_cluster: int = 50, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(stored vectors, queries): unit vectors around product centres; queries are new creatives of the same
    products (drawn around the same centres), as when a fresh creative is checked against the index."""
    rng = np.random.default_rng(seed)
    k = max(1, n // per_cluster)
    centres = rng.normal(size=(k, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def around(m: int) -> np.ndarray:
        x = centres[rng.integers(0, k, m)] + rng.normal(scale=0.75 / np.sqrt(dim), size=(m, dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return around(n), around(n_queries)


def bench_index(n: int, n_queries: int) -> None:
    import faiss

    from adcreative.represent.index import Index

    x, q = realistic_vectors(n, n_queries)
    ids = [f"c{i}" for i in range(n)]
    exact = None
    rows = []
    for kind, kw in (("flat", {}), ("ivf", {"nprobe": 16}), ("hnsw", {"hnsw_m": 32, "ef_search": 128})):
        idx = Index(x.shape[1], kind, **kw)
        t = time.perf_counter()
        idx.add(ids, x)
        build = time.perf_counter() - t
        lat = []
        found = []
        for i in range(n_queries):
            t = time.perf_counter()
            r, _ = idx.search(q[i: i + 1], 10)
            lat.append(time.perf_counter() - t)
            found.append(r[0])
        if exact is None:
            exact = found
        rec = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]))
        nn_rec = float(np.mean([b[0] in a for a, b in zip(found, exact, strict=True)]))  # true 1-NN among the 10
        extra = f"nlist={idx.nlist}, nprobe={idx.nprobe}" if kind == "ivf" else \
            f"M={idx.hnsw_m}, efSearch={idx.ef_search}" if kind == "hnsw" else "exact"
        rows.append((kind, extra, build, np.percentile(lat, 50) * 1e3, np.percentile(lat, 99) * 1e3, rec, nn_rec))
    print(f"\nFAISS on {n:,} synthetic creative-like {x.shape[1]}-d vectors, {n_queries} single queries, k=10 "
          f"(faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()})")
    print(f"{'index':<6}{'params':<26}{'build s':>9}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}{'1-NN@10':>9}"
          f"{'p50 vs flat':>13}")
    for kind, extra, build, p50, p99, rec, nn_rec in rows:
        print(f"{kind:<6}{extra:<26}{build:>9.2f}{p50:>9.3f}{p99:>9.3f}{rec:>11.3f}{nn_rec:>9.3f}{rows[0][3] / p50:>12.1f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--skip-encoder", action="store_true")
    a = ap.parse_args(argv)
    import faiss
    import torch

    torch.set_num_threads(a.threads)
    faiss.omp_set_num_threads(a.threads)
    if not a.skip_encoder:
        bench_encoder(a.images)
    bench_index(a.n, a.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
