"""``adcreative represent``: explicit features, contrastive encoder, FAISS index, evaluation.

Heavy imports (torch, faiss, OCR) live inside the commands so ``adcreative --help`` stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from adcreative.cli.common import SEED_MAX, THREADS_MAX, console, parse_list, record, store_from

app = typer.Typer(help="Represent creatives: explicit features, learned embeddings, FAISS index.",
                  no_args_is_help=True)


def _creatives(ctx: typer.Context, product: str | None) -> tuple[Any, list[Any]]:
    from adcreative.core.errors import InputError

    store = store_from(ctx, must_exist=True)
    ids = parse_list(product) if product else [None]
    creatives = [c for pid in ids for c in store.creatives(product_id=pid)]
    if not creatives:
        raise InputError("no creatives in the store" + (f" for product(s) {product}" if product else "")
                         + " (run 'adcreative generate' first)")
    return store, creatives


@app.command("features")
def features(
    ctx: typer.Context,
    product: str | None = typer.Option(None, "--product", help="Comma-separated product ids (default: all)"),
    refresh: bool = typer.Option(False, "--refresh", help="Recompute even when cached"),
    ocr: bool = typer.Option(True, "--ocr/--no-ocr", help="Read copy text with OCR (the slowest feature)"),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Also write all features to this JSON file"),
) -> None:
    """Explicit features of stored creatives (cached in the store per creative and feature version)."""
    from adcreative.core.imageio import atomic_write_text
    from adcreative.represent.features import FeatureExtractor, features_for_creatives

    store, creatives = _creatives(ctx, product)
    feats = features_for_creatives(store, creatives, refresh=refresh, extractor=FeatureExtractor(ocr=ocr),
                                   show_progress=True)
    for c in creatives:
        f = feats[c.id]
        bg = f["bg_colors"][0]["rgb"] if f["bg_colors"] else None
        record(c.id, c.product_id, f"area={f['product_area']:.2f}", f"bg={bg}", f"ΔE={f['contrast_de']:.1f}",
               f"sharp={f['sharpness']:.0f}", f"colour={f['colorfulness']:.0f}", f"faces={f['n_faces']}",
               f"logo={f['logo_score']:.2f}", f"text={f['text'][:40]!r}")
    if out is not None:
        atomic_write_text(out, json.dumps(feats, indent=1))
        console.print(f"features: {out}")


@app.command("train")
def train(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Model folder to write (config.json + model.safetensors)"),
    product: str | None = typer.Option(None, "--product", help="Train on these products' creatives (default: all)"),
    steps: int = typer.Option(600, "--steps", min=1, max=1_000_000),
    n_views: int = typer.Option(6, "--views", min=2, max=64, help="Augmented views cached per creative (≥ 2: a "
                                "positive pair is two different views)"),
    dim: int = typer.Option(256, "--dim", min=1, max=4096),
    train_blocks: int = typer.Option(0, "--train-blocks", help="Last EfficientNet blocks fine-tuned (0: heads only, CPU default)"),
    text: bool = typer.Option(True, "--text/--no-text", help="Fuse the MiniLM title/copy embedding"),
    backbone: str = typer.Option("packaged", "--backbone", help="'packaged', 'random' or a local weights file"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    threads: int = typer.Option(1, "--threads", min=1, max=THREADS_MAX,
                                help="Torch threads (1 is fastest on a shared 2-core box)"),
) -> None:
    """Train the image+text encoder MoCo v3-style on stored creatives (same-product hard negatives)."""
    import torch

    from adcreative.represent.encoder import train_on_store

    torch.set_num_threads(threads)
    store, creatives = _creatives(ctx, product)
    _, hist = train_on_store(store, creatives, out, steps=steps, n_views=n_views, seed=seed, dim=dim,
                             train_blocks=train_blocks, use_text=text, backbone=backbone)
    console.print(f"trained on {len(creatives)} creatives of {len({c.product_id for c in creatives})} products; "
                  f"loss {hist['loss'][0]:.3f} → {hist['loss'][-1]:.3f}; model: {out}")


@app.command("embed")
def embed(
    ctx: typer.Context,
    model: Path = typer.Option(..., "--model", help="Encoder folder from 'represent train'"),
    product: str | None = typer.Option(None, "--product"),
    refresh: bool = typer.Option(False, "--refresh"),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Also write ids and vectors as JSON lines"),
) -> None:
    """Embed stored creatives (cached in the store under the model's fingerprint)."""
    from adcreative.core.imageio import atomic_write_text
    from adcreative.represent.encoder import embed_creatives

    enc = _load_encoder(model)
    store, creatives = _creatives(ctx, product)
    vecs = embed_creatives(store, creatives, enc, refresh=refresh, show_progress=True)
    if out is not None:
        atomic_write_text(out, "\n".join(json.dumps({"id": c.id, "v": [round(float(x), 6) for x in v]})
                                          for c, v in zip(creatives, vecs, strict=True)) + "\n")
    console.print(f"embedded {len(creatives)} creatives → {vecs.shape[1]}-d (model {enc.fingerprint()})"
                  + (f"; vectors: {out}" if out else ""))


def _load_encoder(model: Path) -> Any:
    from adcreative.core.errors import InputError
    from adcreative.represent.encoder import ENCODERS

    if not (model / "config.json").is_file():
        raise InputError("not an encoder folder (no config.json): run 'adcreative represent train' first", source=model)
    return ENCODERS.load(model)


@app.command("index")
def index(
    ctx: typer.Context,
    model: Path = typer.Option(..., "--model", help="Encoder folder"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Index folder to write"),
    kind: str = typer.Option("flat", "--kind", help="flat | ivf | hnsw"),
    product: str | None = typer.Option(None, "--product"),
    calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate",
                                   help="Calibrate the near-duplicate threshold on crops/recompressions/jitters "
                                        "of the indexed creatives vs other creatives of the same product"),
    min_precision: float = typer.Option(0.99, "--min-precision"),
) -> None:
    """Build a FAISS index of stored creatives' embeddings (+ calibrated near-duplicate threshold)."""
    from adcreative.represent.index import index_store

    enc = _load_encoder(model)
    store, creatives = _creatives(ctx, product)
    idx, cal = index_store(store, creatives, enc, kind=kind, calibrate=calibrate, min_precision=min_precision)
    if cal is not None:
        console.print(f"near-duplicate threshold {cal.threshold:.4f}: precision {cal.precision:.3f} "
                      f"recall {cal.recall:.3f} on {cal.n_pos} duplicate / {cal.n_neg} different pairs")
    idx.save(out)
    console.print(f"index: {out} ({len(idx)} creatives, {kind}, model {enc.fingerprint()})")


@app.command("search")
def search(
    ctx: typer.Context,
    index_dir: Path = typer.Option(..., "--index", help="Index folder from 'represent index'"),
    model: Path = typer.Option(..., "--model", help="The encoder that built the index"),
    creative: str | None = typer.Option(None, "--creative", help="A stored creative id"),
    image: Path | None = typer.Option(None, "--image", help="Or an image file"),
    text: str = typer.Option("", "--text", help="Title/copy of the image (with --image)"),
    k: int = typer.Option(10, "--k"),
) -> None:
    """Nearest creatives, near-duplicates and the kNN quality estimate (P(available), CTR) for one query."""
    from adcreative.core.imageio import open_image
    from adcreative.represent.index import Index, search_store

    store = store_from(ctx, must_exist=True)
    rows, knn = search_store(store, Index.load(index_dir), _load_encoder(model), creative=creative,
                             image=open_image(image) if image is not None else None, text=text, k=k)
    for i, s, dup in rows:
        record(i, f"{s:.4f}" + (" NEAR-DUPLICATE" if dup else ""))
    console.print("knn: " + "  ".join(f"{key}={v:.4f}" for key, v in knn.items()))


@app.command("eval")
def evaluate(
    out: Path = typer.Option(Path("represent-eval"), "--out", file_okay=False, help="Folder for report.json and plots"),
    products: str = typer.Option("sample+shared", "--products",
                                 help="'sample', a cutout folder, or 'sample+shared' (sample catalogue + "
                                      "../shared/data/products when present)"),
    per_product: int = typer.Option(24, "--per-product", min=2, max=10_000),
    test_products: int = typer.Option(5, "--test-products", min=1, help="Held-out products (never trained on)"),
    steps: int = typer.Option(600, "--steps", min=1, max=1_000_000),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    threads: int = typer.Option(1, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Measure retrieval recall@1 (ours vs ImageNet), near-duplicate P/R and kNN quality AUC on held-out products."""
    import torch

    from adcreative.represent.evaluate import run_evaluation

    torch.set_num_threads(threads)
    report = run_evaluation(out, products=products, per_product=per_product, test_products=test_products,
                            steps=steps, seed=seed)
    for line in report["table"]:
        console.print(line)
    console.print(f"report: {out / 'report.json'}")
