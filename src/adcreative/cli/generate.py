"""``adcreative generate`` and ``adcreative creatives``: make creatives (optionally with RFNet in the loop) and
look at what is stored: provenance manifests, bit-exact regeneration."""

from __future__ import annotations

from pathlib import Path

import typer

from adcreative.cli.common import SEED_MAX, console, parse_list, record, store_from
from adcreative.core.errors import InputError

creatives_app = typer.Typer(help="Creatives in the store: list, show provenance, regenerate.", no_args_is_help=True)


def generate(
    ctx: typer.Context,
    product: str = typer.Option(..., "--product", help="Product id, or 'all'"),
    n: int = typer.Option(4, "--n", help="Images per aspect ratio"),
    aspect: str = typer.Option("1:1", "--aspect", help="Comma-separated: 1:1,4:5,16:9,9:16"),
    generator: str = typer.Option("compositor", "--generator"),
    policy: Path | None = typer.Option(None, "--policy", help="Tuned compositor policy folder"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    until_available: int | None = typer.Option(
        None, "--until-available", help="Recurrent generation: regenerate until K creatives per product are "
        "auto-accepted by RFNet (every attempt is stored with its verdict; those sent to a human are queued)"),
    max_attempts: int | None = typer.Option(None, "--max-attempts", help="Attempt budget per product (with "
                                            "--until-available; default 20)"),
    threshold: float | None = typer.Option(None, "--threshold", help="Replace the inspector's three-way decision "
                                           "by a two-way one: deliver when P(available) ≥ this (no human band)"),
    adapt_prior: bool = typer.Option(
        False, "--adapt-prior", help="With --until-available: move the accept threshold to each product's "
        "estimated share of available attempts (label shift; the 0.99 precision target is kept at that share)"),
    inspector: Path | None = typer.Option(None, "--inspector", help="Inspector folder (default: shipped RFNet)"),
    run_id: str | None = typer.Option(
        None, "--run-id", help="Recurrent run to start or resume (default: derived from the generator, aspects, "
        "seed and inspector, so rerunning the same command after a crash resumes it)"),
    gen_config: str | None = typer.Option(
        None, "--gen-config", help="Generator constructor args as JSON, inline or a .json file (e.g. for "
        "diffusers-inpaint: {\"base\": DIR, \"controlnet\": DIR, \"lora\": FILE}; after tune rfft: "
        "RUN/generator.json)"),
    executor: str = typer.Option("local", "--executor", help="local, or ray (a local cluster, or --ray-address)"),
    workers: int = typer.Option(2, "--workers", help="Ray actors (with --executor ray)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Existing Ray cluster address"),
) -> None:
    """Generate creatives for a product and store them with their provenance."""
    from adcreative.core.errors import ConfigError
    from adcreative.executors import check_executor
    from adcreative.generate.provenance import build_generator, parse_generator_config

    # Every argument is checked before anything is built or opened; an option that would be silently ignored is
    # refused, so a forgotten --until-available does not look like a run with the asked-for threshold.
    check_executor(executor, workers)
    aspects = parse_list(aspect)
    if not aspects:
        raise InputError("--aspect names no aspect ratio (e.g. 1:1 or 1:1,4:5,16:9,9:16)")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold is a probability between 0 and 1, got {threshold:g}")
    if until_available is None:
        given = [name for name, v in (("--max-attempts", max_attempts), ("--threshold", threshold),
                                      ("--inspector", inspector), ("--run-id", run_id)) if v is not None]
        given += ["--adapt-prior"] if adapt_prior else []
        if given:
            raise InputError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to recurrent "
                             "generation: add --until-available K")

    try:
        gen = build_generator(generator, policy=policy, **parse_generator_config(gen_config))
    except ConfigError as e:
        raise ConfigError(f"{e}; pass them as JSON with --gen-config") from None
    if product != "all" and not parse_list(product):
        raise InputError("--product names no product (give an id, a comma-separated list, or 'all')")
    store = store_from(ctx, must_exist=True)  # after the arguments are checked; a missing store is not created
    ids = store.product_ids() if product == "all" else parse_list(product)
    if not ids:
        raise InputError("the store has no products: add some first ('adcreative products add' or 'products sample')")
    if until_available is None:
        from adcreative.pipelines.generation import generate_products

        for c in generate_products(store, gen, ids, n=n, aspects=aspects, seed=seed, executor=executor,
                                   workers=workers, address=ray_address):
            record(c.id, c.product_id, c.aspect, f"seed={c.seed}")
        return
    from adcreative.pipelines.recurrent import format_attempts, format_results, recurrent_for_products

    results = recurrent_for_products(store, gen, ids, k=until_available,
                                     max_attempts=20 if max_attempts is None else max_attempts, aspects=aspects,
                                     seed=seed, threshold=threshold, inspector=inspector, run_id=run_id,
                                     on_result=lambda r: console.print(format_attempts(r)), adapt_prior=adapt_prior)
    console.print(format_results(results))
    if results:
        reused = sum(r.reused for r in results)
        console.print(f"run {results[0].run_id}" + (f" (resumed: {reused} attempts were already stored)" if reused else ""))
    n_human = sum(len(r.to_human) for r in results)
    if n_human:
        console.print(f"{n_human} attempt(s) sent to a human: first in the review queue (`adcreative console`)")
    if any(not r.complete for r in results):
        from rich.markup import escape

        console.print("[yellow]budget spent before K available for: "
                      + escape(", ".join(r.product_id for r in results if not r.complete)) + "[/]", markup=True)


@creatives_app.command("list")
def creatives_list(ctx: typer.Context, product: str | None = typer.Option(None, "--product")) -> None:
    """List creatives (id, product, generator, seed, aspect, latest verdict)."""
    store = store_from(ctx, must_exist=True)
    for c in store.creatives(product_id=product):
        v = store.latest_verdict(c.id)
        verdict = f"{v.label} p_avail={v.p_available:.2f}" if v else "-"
        record(c.id, c.product_id, f"{c.generator}@{c.generator_version}", f"seed={c.seed}", c.aspect, verdict)


@creatives_app.command("show")
def creatives_show(ctx: typer.Context, creative_id: str) -> None:
    """Print a creative's provenance manifest."""
    import json

    console.print_json(json.dumps(store_from(ctx, must_exist=True).get_creative(creative_id).manifest(), default=str))


@creatives_app.command("regenerate")
def creatives_regenerate(ctx: typer.Context, creative_id: str,
                         out: Path | None = typer.Option(None, "--out", dir_okay=False,
                                                         help="Also write the PNG here")) -> None:
    """Regenerate a creative from its manifest and check the bytes are identical."""
    from adcreative.generate.provenance import regenerate

    store = store_from(ctx, must_exist=True)
    creative = store.get_creative(creative_id)
    data, sha = regenerate(store, creative)
    if out is not None:
        from adcreative.core.imageio import atomic_write

        atomic_write(out, data)
    if sha != creative.image_sha:
        from rich.markup import escape

        console.print(f"[red]MISMATCH[/] {escape(creative_id)}: stored {creative.image_sha[:12]} regenerated "
                      f"{sha[:12]}", markup=True)
        raise typer.Exit(1)
    console.print(f"identical: {creative_id} sha256={sha}")
