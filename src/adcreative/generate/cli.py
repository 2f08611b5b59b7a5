"""CLI of the generate stage: ``products``, ``creatives``, ``dataset`` and ``generate``."""

from __future__ import annotations

from pathlib import Path

import typer

from adcreative.cli_common import console, parse_list, store_from
from adcreative.core.errors import InputError
from adcreative.core.types import ASPECTS

products_app = typer.Typer(help="Catalogue: import and list products.", no_args_is_help=True)
creatives_app = typer.Typer(help="Creatives in the store: list, show provenance, regenerate.", no_args_is_help=True)
dataset_app = typer.Typer(help="Labelled inspection datasets (synthesised defects, RF1M layout).",
                          no_args_is_help=True)


@products_app.command("add")
def products_add(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Folder of RGBA PNG cutouts (or image + '<name>_mask.png' pairs)"),
    meta: Path | None = typer.Option(None, "--meta", help="CSV or JSON with id,title,category,copy,price,logo"),
) -> None:
    """Import a folder of product cutouts. All or nothing: one bad file and nothing is written."""
    from adcreative.generate.catalogue import read_catalogue_folder

    products = read_catalogue_folder(path, meta)
    store_from(ctx).add_products(products)
    for p in products:
        console.print(f"added {p.id}  [{p.category}]  {p.title}")


@products_app.command("sample")
def products_sample(ctx: typer.Context) -> None:
    """Import the built-in sample catalogue (procedurally rendered products)."""
    from adcreative.generate.catalogue import sample_catalogue

    products = sample_catalogue()
    store_from(ctx).add_products(products)
    for p in products:
        console.print(f"added {p.id}  [{p.category}]  {p.title}")


@products_app.command("list")
def products_list(ctx: typer.Context) -> None:
    """List the catalogue."""
    for p in store_from(ctx).products():
        console.print(f"{p.id}\t{p.category}\t{p.title}")


@creatives_app.command("list")
def creatives_list(ctx: typer.Context, product: str | None = typer.Option(None, "--product")) -> None:
    """List creatives (id, product, generator, seed, aspect, latest verdict)."""
    store = store_from(ctx)
    for c in store.creatives(product_id=product):
        v = store.latest_verdict(c.id)
        verdict = f"{v.label} p_avail={v.p_available:.2f}" if v else "-"
        console.print(f"{c.id}\t{c.product_id}\t{c.generator}@{c.generator_version}\tseed={c.seed}\t{c.aspect}\t{verdict}")


@creatives_app.command("show")
def creatives_show(ctx: typer.Context, creative_id: str) -> None:
    """Print a creative's provenance manifest."""
    import json

    console.print_json(json.dumps(store_from(ctx).get_creative(creative_id).manifest(), default=str))


@creatives_app.command("regenerate")
def creatives_regenerate(ctx: typer.Context, creative_id: str,
                         out: Path | None = typer.Option(None, "--out", help="Also write the PNG here")) -> None:
    """Regenerate a creative from its manifest and check the bytes are identical."""
    from adcreative.generate.pipeline import regenerate

    store = store_from(ctx)
    creative = store.get_creative(creative_id)
    data, sha = regenerate(store, creative)
    if out is not None:
        from adcreative.core.imageio import atomic_write

        atomic_write(out, data)
    if sha != creative.image_sha:
        console.print(f"[red]MISMATCH[/] {creative_id}: stored {creative.image_sha[:12]} regenerated {sha[:12]}")
        raise typer.Exit(1)
    console.print(f"identical: {creative_id} sha256={sha}")


@dataset_app.command("synth")
def dataset_synth(
    products: list[str] = typer.Option(..., "--products", help="Cutout folder (see 'products add'), 'sample', or "
                                       "'procedural:N' (N synthetic SKUs), 'fitted:N' (N SKUs with pumps, handles, "
                                       "spouts...); repeatable"),
    out: Path = typer.Option(..., "--out", help="Dataset folder to write"),
    per_class: int = typer.Option(20, "--per-class", help="Images per class per product"),
    meta: list[Path] = typer.Option([], "--meta", help="Metadata for the folders, in the same order; repeatable"),
    aspects: str = typer.Option("1:1,4:5,16:9,9:16", "--aspects"),
    seed: int = typer.Option(0, "--seed"),
    scale: float = typer.Option(1.0, "--scale", help="Canvas scale: 1.0 is what generation delivers (512 px "
                                "long side), 0.5 halves it"),
    colourways: int = typer.Option(0, "--colourways", help="Hue-rotated copies of each product, as extra SKUs"),
    test_products: str = typer.Option("", "--test-products", help="Comma-separated ids forced into the test split"),
    workers: int = typer.Option(1, "--workers", help="Processes rendering products (same dataset for any number)"),
) -> None:
    """Write a labelled dataset of available and defective creatives, split by product."""
    from adcreative.generate.catalogue import (
        fitted_products,
        procedural_products,
        read_catalogue_folder,
        sample_catalogue,
    )
    from adcreative.generate.synth import synth_dataset

    prods = []
    metas = list(meta)
    for src in products:
        if src == "sample":
            prods += sample_catalogue()
        elif src.startswith(("procedural:", "fitted:")):
            family, _, n_proc = src.partition(":")
            if not n_proc.isdigit() or int(n_proc) < 1:
                raise InputError(f"--products {src!r}: expected {family}:N with N ≥ 1")
            make = procedural_products if family == "procedural" else fitted_products
            prods += make(int(n_proc), seed)
        else:
            prods += read_catalogue_folder(Path(src), metas.pop(0) if metas else None)
    if per_class < 1:
        raise InputError(f"--per-class must be at least 1, got {per_class}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    fixed = {p: "test" for p in parse_list(test_products)}
    summary = synth_dataset(prods, out, per_class=per_class, aspects=parse_list(aspects), seed=seed, scale=scale,
                            colourways=colourways, splits=fixed, workers=workers)
    for split, counts in summary.items():
        console.print(f"{split}: {sum(counts.values())} images {counts}")
    console.print(f"dataset: {out}")


@dataset_app.command("export-labels")
def dataset_export_labels(ctx: typer.Context, out: Path = typer.Option(..., "--out")) -> None:
    """Human labels in the store → an RF1M-style dataset (label.txt) that retrains RFNet."""
    from adcreative.generate.dataset import export_labels

    n = export_labels(store_from(ctx), out)
    console.print(f"{n} labelled creatives → {out}")


@dataset_app.command("info")
def dataset_info(path: Path) -> None:
    """Counts per split and class of a dataset folder (ours or RF1M's label.txt)."""
    from adcreative.generate.dataset import read_dataset, summarize

    samples = read_dataset(path)
    for split, counts in summarize(samples).items():
        console.print(f"{split}: {sum(counts.values())} {counts}")


def generate(
    ctx: typer.Context,
    product: str = typer.Option(..., "--product", help="Product id, or 'all'"),
    n: int = typer.Option(4, "--n", help="Images per aspect ratio"),
    aspect: str = typer.Option("1:1", "--aspect", help="Comma-separated: 1:1,4:5,16:9,9:16"),
    generator: str = typer.Option("compositor", "--generator"),
    policy: Path | None = typer.Option(None, "--policy", help="Tuned compositor policy folder"),
    seed: int = typer.Option(0, "--seed"),
    until_available: int | None = typer.Option(
        None, "--until-available", help="Recurrent generation: regenerate until K creatives per product are "
        "judged available by RFNet (every attempt is stored with its verdict)"),
    max_attempts: int = typer.Option(20, "--max-attempts", help="Attempt budget per product (with --until-available)"),
    threshold: float = typer.Option(0.5, "--threshold", help="P(available) needed to deliver (with --until-available)"),
    inspector: Path | None = typer.Option(None, "--inspector", help="Inspector folder (default: shipped RFNet)"),
    gen_config: str | None = typer.Option(
        None, "--gen-config", help="Generator constructor args as JSON, inline or a .json file (e.g. for "
        "diffusers-inpaint: {\"base\": DIR, \"controlnet\": DIR, \"lora\": FILE, \"steps\": 30})"),
    executor: str = typer.Option("local", "--executor", help="local, or ray (a local cluster, or --ray-address)"),
    workers: int = typer.Option(2, "--workers", help="Ray actors (with --executor ray)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Existing Ray cluster address"),
) -> None:
    """Generate creatives for a product and store them with their provenance."""
    from adcreative.generate.pipeline import build_generator, generate_and_store, parse_generator_config

    store = store_from(ctx)
    gen = build_generator(generator, policy=policy, **parse_generator_config(gen_config))
    ids = store.product_ids() if product == "all" else parse_list(product)
    if until_available is not None:
        from adcreative.inspect.base import load_scorer
        from adcreative.inspect.recurrent import format_results, recurrent_generate

        scorer, mid = load_scorer(inspector, onnx=False)
        results = []
        for pid in ids:
            r = recurrent_generate(store, gen, scorer, store.get_product(pid), k=until_available,
                                   max_attempts=max_attempts, aspects=parse_list(aspect), seed=seed,
                                   threshold=threshold, model_id=mid)
            for a in r.attempts:
                status = "delivered" if a in r.delivered else "surplus" if a.accepted else f"rejected ({a.defect})"
                console.print(f"{a.creative.id}\t{pid}\t{a.creative.aspect}\tseed={a.creative.seed}\t"
                              f"p_avail={a.p_available:.3f}\t{status}")
            results.append(r)
        console.print(format_results(results))
        if any(not r.complete for r in results):
            console.print("[yellow]budget spent before K available for: "
                          + ", ".join(r.product_id for r in results if not r.complete) + "[/]")
        return
    aspects = parse_list(aspect)
    if executor != "local":
        # generation spread over Ray actors; this process alone writes the store
        from adcreative.executors import run_stage
        from adcreative.generate.pipeline import to_creative
        from adcreative.generate.stage import GenerateStage

        products = [store.get_product(pid) for pid in ids]
        bad = [a for a in aspects if a not in ASPECTS]
        if bad:
            raise InputError(f"unknown aspect ratio {bad[0]!r}; choose from {', '.join(ASPECTS)}")
        generated = run_stage(executor, GenerateStage, {"generator": generator, "config": gen.config,
                                                      "aspects": aspects, "n": n, "seed": seed},
                            products, batch_size=1, workers=workers, address=ray_address)
        for prod, items in zip(products, generated, strict=True):
            for data, gi in items:
                c, data = to_creative(gi, prod, data=data)
                store.add_creative(c, data=data)
                console.print(f"{c.id}\t{prod.id}\t{c.aspect}\tseed={c.seed}")
        return
    for pid in ids:
        prod = store.get_product(pid)
        creatives = generate_and_store(store, gen, prod, n=n, aspects=aspects, seed=seed)
        for c in creatives:
            console.print(f"{c.id}\t{pid}\t{c.aspect}\tseed={c.seed}")
