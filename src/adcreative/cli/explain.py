"""CLI of the explain stage: ``adcreative explain pair A B``."""

from __future__ import annotations

import json

import typer

from adcreative.cli.common import console, store_from

app = typer.Typer(help="Why one creative over another, in plain language grounded in features.",
                  no_args_is_help=True)


@app.command("pair")
def pair(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="Creative id"),
    b: str = typer.Argument(..., help="Creative id"),
    llm_url: str | None = typer.Option(None, "--llm-url", help="OpenAI-compatible endpoint, e.g. http://host/v1"),
    llm_model: str = typer.Option("gpt-4o-mini", "--llm-model"),
    as_json: bool = typer.Option(False, "--json", help="Print the grounded facts as JSON"),
) -> None:
    """Explain the difference between two stored creatives from their explicit features."""
    from adcreative.explain.pairwise import explain_pair
    from adcreative.represent.features import features_for_creatives

    store = store_from(ctx)
    ca, cb = store.get_creative(a), store.get_creative(b)
    feats = features_for_creatives(store, [ca, cb])
    ex = explain_pair(feats[a], feats[b], id_a=a, id_b=b)
    text = ex.text
    if llm_url:
        from adcreative.explain.llm import llm_explain

        text = llm_explain(ex, store.creative_image(ex.winner), store.creative_image(ex.loser), url=llm_url,
                           model=llm_model)
    if as_json:
        console.print_json(json.dumps({**ex.facts(), "text": text}, default=str))
    else:
        console.print(text)
