"""CLI of the explain stage: ``adcreative explain pair|pairs|train|eval`` (thin: each calls one function)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from adcreative.cli.common import (
    SEED_MAX,
    console,
    home_from,
    parse_json_object,
    parse_list,
    parse_seeds,
    store_from,
)
from adcreative.core.errors import InputError

app = typer.Typer(help="Which creative to show this user, and why: preference model, pairs, grounded reasons.",
                  no_args_is_help=True)


@app.command("pair")
def pair(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="Creative id"),
    b: str = typer.Argument(..., help="Creative id"),
    user: str | None = typer.Option(None, "--user", help="User id: their logged context and clicks"),
    user_json: str | None = typer.Option(None, "--user-json", help='User fields, e.g. \'{"segment": 2}\''),
    model: Path | None = typer.Option(None, "--model", help="Preference model folder (default: HOME/models/preference)"),
    llm_url: str | None = typer.Option(None, "--llm-url", help="OpenAI-compatible endpoint, e.g. http://host/v1"),
    llm_model: str = typer.Option("gpt-4o-mini", "--llm-model"),
    as_json: bool = typer.Option(False, "--json", help="Print the grounded facts as JSON"),
) -> None:
    """Which of two stored creatives to show a user, with P(winner beats loser) and 2–4 checked reasons."""
    from adcreative.explain.stored import default_model_dir, explain_stored_pair

    store = store_from(ctx, must_exist=True)
    ans = explain_stored_pair(store, a, b, user=user,
                              user_fields=parse_json_object(user_json, "--user-json") if user_json else None,
                              model_dir=model or default_model_dir(home_from(ctx)), llm_url=llm_url,
                              llm_model=llm_model)
    if as_json:
        out = {**ans.explanation.facts(), "text": ans.text, "user_context": ans.user}
        if ans.judgement is not None:
            out["llm"] = {k: v for k, v in ans.judgement.__dict__.items()}
        console.print_json(json.dumps(out, default=str))
    else:
        console.print(ans.text)


@app.command("pairs")
def pairs(
    ctx: typer.Context,
    from_store: bool = typer.Option(False, "--from-store", help="Build pairs from the store's impressions and clicks"),
    import_file: Path | None = typer.Option(None, "--import", help="Read and check a CreativePair file (.jsonl/.csv)"),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Write the pairs here (.jsonl or .csv)"),
    min_impressions: int = typer.Option(20, "--min-impressions", min=1, help="Impressions each side needs per group"),
    min_clicks: int = typer.Option(1, "--min-clicks", min=0, help="Clicks the two sides need together"),
    group_by: str = typer.Option("user", "--group-by", help="'user', or a user field shared by similar users"),
) -> None:
    """Export pairs from the event log (minimum-evidence rule), or import/convert a CreativePair file."""
    from adcreative.explain.pairs import pairs_from_store, read_pairs, write_pairs

    if from_store == (import_file is not None):
        raise InputError("give exactly one of --from-store or --import FILE")
    if from_store:
        ps = pairs_from_store(store_from(ctx, must_exist=True), min_impressions=min_impressions, min_clicks=min_clicks,
                              group_by=group_by)
    else:
        assert import_file is not None
        ps = read_pairs(import_file)
        from adcreative.explain.stored import resolve_features

        store = store_from(ctx, must_exist=True)
        resolve_features(store, [r for q in ps for r in (q.image_a, q.image_b)])  # every image resolves
    wins = {w: sum(q.winner == w for q in ps) for w in ("a", "b", "tie")}
    console.print(f"{len(ps)} pairs (winner a: {wins['a']}, b: {wins['b']}, tie: {wins['tie']})")
    if out is not None:
        console.print(f"written: {write_pairs(out, ps)}")


@app.command("train")
def train(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", file_okay=False,
                                    help="Model folder (default: HOME/models/preference)"),
    pairs_files: list[Path] = typer.Option([], "--pairs", help="CreativePair label files (repeatable)"),
    events: bool = typer.Option(True, "--events/--no-events", help="Learn from the store's impressions and clicks"),
    per_click: int = typer.Option(4, "--per-click", min=1, help="Matched non-clicked impressions per click (4: tuned, docs/explain.md)"),
    rank: int = typer.Option(4, "--rank", min=0, help="Rank of the user-specific taste"),
    steps: int = typer.Option(400, "--steps", min=1),
    categorical: str = typer.Option("", "--categorical", help="User fields to treat as categorical (comma list)"),
    encoder: Path | None = typer.Option(None, "--encoder", help="Represent encoder folder: add creative embeddings"),
    embedding_dim: int = typer.Option(8, "--embedding-dim", min=1, help="Principal components of the embeddings"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
) -> None:
    """Train the user-aware Bradley–Terry preference model from logged clicks and explicit pair labels."""
    from adcreative.explain.stored import default_model_dir, train_from_store

    r = train_from_store(store_from(ctx, must_exist=True), out or default_model_dir(home_from(ctx)),
                         label_files=pairs_files, use_events=events, per_click=per_click, rank=rank, steps=steps,
                         categorical=parse_list(categorical), encoder_dir=encoder, embedding_dim=embedding_dim,
                         seed=seed, progress=True)
    console.print(f"{r.logged_pairs} logged pairs ({r.clicks} clicks / {r.impressions} impressions) + "
                  f"{r.label_pairs} labelled pairs; user fields: categorical {r.user_cat_fields}, numeric "
                  f"{r.user_num_fields}; final loss {r.final_loss:.4f}")
    console.print(f"model: {r.model_dir}")


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    out: Path = typer.Option(Path("explain-eval"), "--out", file_okay=False,
                             help="Folder for report.md, results.json and plots"),
    seeds: str = typer.Option("2,3,4,5,6", "--seeds", help="Reporting seeds (never used for tuning)"),
    products: str = typer.Option("sample,procedural:41", "--products",
                                 help="Products the evaluation's creatives are made for (sources, comma list)"),
    obd: Path | None = typer.Option(None, "--obd", help="OBD campaign folder (random/, bts/) for the real-data rows"),
    quick: bool = typer.Option(False, "--quick", help="Smaller run (fewer products, users and impressions)"),
    tune: bool = typer.Option(True, "--tune/--no-tune", help="Tune on seeds 0-1 first, or use the tuned defaults"),
) -> None:
    """Held-out pairwise accuracy, faithfulness and user sensitivity (simulator, and OBD when given)."""
    from adcreative.catalogue.sources import products_from_sources
    from adcreative.explain.evaluate import run_eval

    path = run_eval(out, products_from_sources(parse_list(products)), seeds=parse_seeds(seeds),
                    obd=obd, quick=quick, tune_first=tune, cache=home_from(ctx) / "cache", progress=True)
    console.print(path.read_text())
