"""``adcreative dataset``: labelled inspection datasets (synthesised defects, RF1M layout) for RFNet."""

from __future__ import annotations

from pathlib import Path

import typer

from adcreative.cli.common import SEED_MAX, console, parse_list, store_from
from adcreative.core.errors import InputError

app = typer.Typer(help="Labelled inspection datasets (synthesised defects, RF1M layout).", no_args_is_help=True)


@app.command("synth")
def dataset_synth(
    products: list[str] = typer.Option(..., "--products", help="Cutout folder (see 'products add'), 'sample', or "
                                       "'procedural:N' (N synthetic SKUs), 'fitted:N' (N SKUs with pumps, handles, "
                                       "spouts...), 'skinned:N' (their shapes with photographic surfaces), "
                                       "'lookalike:N' (whole SKUs whose outlines look like damage: hems, "
                                       "cut fruit...); "
                                       "repeatable"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Dataset folder to write"),
    per_class: int = typer.Option(20, "--per-class", max=10_000, help="Images per class per product"),
    meta: list[Path] = typer.Option([], "--meta", help="Metadata for the folders, in the same order; repeatable"),
    aspects: str = typer.Option("1:1,4:5,16:9,9:16", "--aspects"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    scale: float = typer.Option(1.0, "--scale", min=0.1, max=4.0, help="Canvas scale: 1.0 is what generation delivers (512 px "
                                "long side), 0.5 halves it"),
    colourways: int = typer.Option(0, "--colourways", min=0, max=100, help="Hue-rotated copies of each product, as extra SKUs"),
    colourways_of: str = typer.Option("", "--colourways-of", help="Only products from these sources get "
                                      "colourways (comma-separated: real, sample, procedural, fitted, "
                                      "skinned, lookalike)"),
    test_products: str = typer.Option("", "--test-products", help="Comma-separated ids forced into the test split"),
    workers: int = typer.Option(1, "--workers", help="Processes rendering products (same dataset for any number)"),
    renderers: str = typer.Option("compositor", "--renderers", help="Comma-separated scene-renderer families: "
                                  "compositor (studio sets), photoset (real photographs and textures), softfocus "
                                  "(diffusion-style soft sets), perspective (ray-cast 3D rooms through a pinhole camera), "
                                  "poster (flat graphic-design banners; held back from training as the never-seen family), "
                                  "lowkey (dark premium shots under hard coloured light, on a mirror floor)"),
    degrade: float = typer.Option(0.8, "--degrade", help="Share of images sent through a seeded chain of resizing, "
                                  "blur, colour shifts, vignetting, noise and JPEG (0 keeps renders exact)"),
    mirror: float = typer.Option(0.0, "--mirror", help="Share of samples showing the product mirrored (its "
                                 "printed text reads backwards: keep for products without text)"),
    bad_source_cutout: str = typer.Option("own", "--bad-source-cutout", help="The cutout an image made from a "
                                          "damaged source (torn, cropped, pixelated) gives the auditor: 'own' (the "
                                          "damaged one) or 'catalogue' (the clean one, so the damage is a change "
                                          "against it)"),
    studio_copies: int = typer.Option(0, "--studio-copies", min=0, max=10, help="Matted studio-photo copies of "
                                      "each real product that came as a cutout, split with it (the importer's "
                                      "matting on the cutout shot on a studio sweep)"),
) -> None:
    """Write a labelled dataset of available and defective creatives, split by product."""
    from adcreative.catalogue.sources import products_from_sources
    from adcreative.inspect.datasets.synth import BAD_SOURCE_CUTOUTS, RENDERERS, agreement, synth_dataset

    if per_class < 1:
        raise InputError(f"--per-class must be at least 1, got {per_class}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if not 0.0 <= degrade <= 1.0 or not 0.0 <= mirror <= 1.0:
        raise InputError(f"--degrade and --mirror are shares in [0, 1], got {degrade} and {mirror}")
    if bad_source_cutout not in BAD_SOURCE_CUTOUTS:
        raise InputError(f"--bad-source-cutout: choose from {', '.join(BAD_SOURCE_CUTOUTS)}, got {bad_source_cutout!r}")
    if not parse_list(aspects):
        raise InputError("--aspects names no aspect ratio (e.g. 1:1 or 1:1,4:5,16:9,9:16)")
    families = parse_list(renderers)
    unknown = [r for r in families if r not in RENDERERS]
    if unknown or not families:
        raise InputError(f"--renderers: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(RENDERERS)}")
    summary = synth_dataset(products_from_sources(products, meta, seed=seed), out, per_class=per_class,
                            aspects=parse_list(aspects), seed=seed, scale=scale, colourways=colourways,
                            splits={p: "test" for p in parse_list(test_products)}, workers=workers,
                            renderers=families, degrade_rate=degrade, mirror_rate=mirror,
                            colourway_sources=parse_list(colourways_of) or None,
                            bad_source_cutout=bad_source_cutout, studio_copies=studio_copies)
    for split, counts in summary.items():
        console.print(f"{split}: {sum(counts.values())} images {counts}")
    from adcreative.inspect.datasets.formats import read_dataset

    for r, a in agreement(read_dataset(out)).items():
        console.print(f"{r}: labeller agrees with the class asked for on {a['first_draw']:.1%} of first draws, "
                      f"{a['after_redraws']:.1%} after redraws ({a['relabelled']} relabelled)")
    console.print(f"dataset: {out}")


@app.command("export-labels")
def dataset_export_labels(ctx: typer.Context, out: Path = typer.Option(..., "--out", dir_okay=False)) -> None:
    """Human labels in the store → a dataset folder (manifest.jsonl with masks and renderers, and an RF1M-style
    label.txt) that retrains or recalibrates RFNet."""
    from adcreative.inspect.datasets.formats import export_labels

    n = export_labels(store_from(ctx, must_exist=True), out)
    console.print(f"{n} labelled creatives → {out}")


@app.command("info")
def dataset_info(path: Path) -> None:
    """Counts per split and class of a dataset folder (ours or RF1M's label.txt)."""
    from adcreative.inspect.datasets.formats import read_dataset, summarize

    for split, counts in summarize(read_dataset(path)).items():
        console.print(f"{split}: {sum(counts.values())} {counts}")
