"""``adcreative products``: import and list the catalogue."""

from __future__ import annotations

from pathlib import Path

import typer

from adcreative.cli.common import console, store_from

app = typer.Typer(help="Catalogue: import and list products.", no_args_is_help=True)


@app.command("add")
def products_add(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Folder of RGBA PNG cutouts (or image + '<name>_mask.png' pairs)"),
    meta: Path | None = typer.Option(None, "--meta", help="CSV or JSON with id,title,category,copy,price,logo"),
) -> None:
    """Import a folder of product cutouts. All or nothing: one bad file and nothing is written."""
    from adcreative.catalogue.importer import import_folder

    for p in import_folder(store_from(ctx), path, meta):
        console.print(f"added {p.id}  [{p.category}]  {p.title}")


@app.command("sample")
def products_sample(ctx: typer.Context) -> None:
    """Import the built-in sample catalogue (procedurally rendered products)."""
    from adcreative.catalogue.sample import import_sample_catalogue

    for p in import_sample_catalogue(store_from(ctx)):
        console.print(f"added {p.id}  [{p.category}]  {p.title}")


@app.command("list")
def products_list(ctx: typer.Context) -> None:
    """List the catalogue."""
    for p in store_from(ctx).products():
        console.print(f"{p.id}\t{p.category}\t{p.title}")
