"""``adcreative products``: import (cutouts, photos with masks, photos to matte), list, show and re-mask products."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from adcreative.cli.common import console, err_console, record, settings_from, store_from

if TYPE_CHECKING:
    from adcreative.catalogue.importer import Planned

app = typer.Typer(help="Catalogue: import, list and review products.", no_args_is_help=True)


@app.command("add")
def products_add(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Folder of product images: RGBA cutouts, photos with '<name>_mask.png', "
                                          "or photos on a plain backdrop (matted automatically)"),
    meta: Path | None = typer.Option(None, "--meta", help="Sheet (.csv, .xlsx or .json): id, title, category, copy, "
                                                         "price, logo, badge, and 'image' naming each row's file"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report what would be imported; "
                                                          "write nothing"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Import the good rows and write a report of the rest "
                                                            "(default: one bad row and nothing is imported)"),
    report: Path = typer.Option(Path("import-report.csv"), "--report", dir_okay=False,
                                help="Where --skip-bad writes the rows it skipped"),
    titles_from_filenames: bool = typer.Option(False, "--titles-from-filenames",
                                               help="Rows without a title take one from the image's file name"),
    accept_low_quality: bool = typer.Option(False, "--accept-low-quality",
                                            help="Store automatic mattes even under the quality threshold"),
    previews: Path | None = typer.Option(None, "--previews", file_okay=False,
                                         help="Write photo | matte previews of matted products into this folder"),
) -> None:
    """Import a catalogue folder. All or nothing unless --skip-bad; every problem is listed with its row."""
    from adcreative.catalogue.importer import ImportRefused, commit_plan, plan_import, write_report
    from adcreative.catalogue.review import write_previews
    from adcreative.core.database import store_exists
    from adcreative.core.errors import InputError

    # The store is opened (and, in a new home, created) only to write: a dry run or a refused import into a new
    # home leaves nothing behind.
    existing = store_from(ctx).product_ids() if store_exists(settings_from(ctx)) else []
    plan = plan_import(path, meta, titles_from_filenames=titles_from_filenames,
                       accept_low_quality=accept_low_quality, existing=existing, progress=True)
    for note in plan.notes:
        err_console.print(f"note: {note}")
    if previews is not None:
        written = write_previews(plan, previews)
        console.print(f"previews: {len(written)} in {previews}")
    for p in plan.needs_look:
        err_console.print(f"needs a look: {p.product.id} ({p.row}, matte quality "
                          f"{p.matte.quality if p.matte else 0:.2f})")
    if dry_run:
        for p in plan.planned:
            console.print(f"would add {p.product.id}  [{p.product.category}]  {p.product.title}  ({_how(p)})")
        for bad in plan.problems:
            err_console.print(f"would skip {bad}" if skip_bad else f"problem: {bad}")
        console.print(f"dry run: {len(plan.planned)} to import, {len(plan.problems)} with problems; "
                      "nothing written")
        if plan.problems and not skip_bad:
            raise InputError(f"{len(plan.problems)} row(s) have problems (listed above): the import would write "
                             "nothing; fix them or pass --skip-bad")
        return
    if plan.problems and not skip_bad:
        raise ImportRefused(plan)
    added = commit_plan(store_from(ctx), plan, skip_bad=skip_bad) if plan.planned else []
    for product in added:
        console.print(f"added {product.id}  [{product.category}]  {product.title}")
    if plan.problems:
        write_report(report, plan.problems)
        err_console.print(f"skipped {len(plan.problems)} row(s); report: {report}")


def _how(p: Planned) -> str:
    if p.matte is not None:
        return f"matted, quality {p.matte.quality:.2f}"
    return {"mask": "photo + mask", "cutout": "cutout"}.get(p.source, p.source)


@app.command("show")
def products_show(
    ctx: typer.Context,
    product_id: str = typer.Argument(..., help="Product id"),
    matte: bool = typer.Option(False, "--matte", help="Write a checkerboard preview: original photo | cutout"),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Preview file (default: <id>-matte.png)"),
) -> None:
    """Show a product's fields; with --matte, write a preview of its cutout on a checkerboard."""
    from adcreative.catalogue.review import product_preview
    from adcreative.core.imageio import save_png

    store = store_from(ctx, must_exist=True)
    p = store.get_product(product_id)
    record(p.id, p.category, p.title)
    for k, v in (("copy", p.copy), ("price", p.price), *sorted(p.attrs.items())):
        if v is not None:
            console.print(f"  {k}: {v}")
    if matte:
        path = out or Path(f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in p.id)}-matte.png")
        save_png(path, product_preview(store, product_id))
        console.print(f"preview: {path}")


@app.command("mask")
def products_mask(
    ctx: typer.Context,
    product_id: str = typer.Argument(..., help="Product id"),
    mask: Path = typer.Argument(..., help="Mask image (white = product) the size of the product's photo"),
) -> None:
    """Replace a product's cutout with your own mask over its original photo."""
    from adcreative.catalogue.review import set_user_mask

    p = set_user_mask(store_from(ctx, must_exist=True), product_id, mask)
    console.print(f"masked {p.id}: cutout replaced from {mask}")


@app.command("sample")
def products_sample(ctx: typer.Context) -> None:
    """Import the built-in sample catalogue (procedurally rendered products)."""
    from adcreative.catalogue.sample import import_sample_catalogue

    for p in import_sample_catalogue(store_from(ctx)):
        console.print(f"added {p.id}  [{p.category}]  {p.title}")


@app.command("list")
def products_list(ctx: typer.Context) -> None:
    """List the catalogue."""
    for p in store_from(ctx, must_exist=True).products():
        record(p.id, p.category, p.title)
