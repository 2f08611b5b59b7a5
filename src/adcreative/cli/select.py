"""CLI of the select stage: ``adcreative select obd|simulate|rank`` and the top-level ``adcreative serve``.

Nothing heavy is imported here (torch, FastAPI, VW load inside the commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from adcreative.cli.common import check_bind, console, home_from, parse_list, parse_seeds, store_from

app = typer.Typer(help="Creative selection: train/evaluate on OBD, simulate campaigns, rank.", no_args_is_help=True)


@app.command("obd")
def obd(
    data: Path = typer.Option(Path("../shared/data/obd/men"), "--data",
                              help="OBD campaign folder: random/ and bts/, each with <campaign>.csv + item_context.csv"),
    out: Path | None = typer.Option(None, "--out", file_okay=False,
                                    help="Save a servable bundle (it follows the deployment gate)"),
    seeds: str = typer.Option("0,1,2,3,4", "--seeds", help="comma-separated seeds (folds and initialisation)"),
    folds: int = typer.Option(5, "--folds", min=2, help="outer cross-fitting folds"),
    inner_folds: int = typer.Option(3, "--inner-folds", min=2, help="CV folds for hyperparameters, inside each split"),
    report: Path | None = typer.Option(None, "--report", dir_okay=False, help="Also write the report as Markdown here"),
) -> None:
    """Nested-CV off-policy evaluation (IPS/SNIPS/DR, exact-or-bootstrap 95% intervals, ESS) of the learned
    policy and baselines vs the logged random and BTS policies, and the deployment decision."""
    from adcreative.select.obd import evaluate_obd

    r = evaluate_obd(data, seeds=parse_seeds(seeds), folds=folds, inner_folds=inner_folds,
                     save_to=out, progress=True)
    _emit(r.to_markdown(), report)


def _source(ctx: typer.Context, from_store: bool, images: Path | None, products: Path | None, n_creatives: int,
            encoder: Path | None, ocr: bool) -> Any:
    from adcreative.pipelines.simulation import Source

    return Source(store=store_from(ctx, must_exist=True) if from_store else None, images=images, cutouts=products,
                  n_quick=n_creatives, encoder=encoder, ocr=ocr)


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    n: int = typer.Option(20000, "--n", min=1, help="impressions per policy"),
    seeds: str = typer.Option("0", "--seeds", "--seed", help="comma-separated seeds: one hidden market each"),
    policies: str = typer.Option("oracle,ours,uniform,best_fixed,vw_squarecb", "--policies",
                                 help="oracle, best_fixed, ours, ours_listwise, vw, vw_squarecb, or any registered "
                                      "policy (beta_visual, hybrid_linear, hybrid_online, uniform, ...)"),
    products: Path | None = typer.Option(None, "--products", help="Folder of RGBA cutouts → quick creatives"),
    images: Path | None = typer.Option(None, "--images", help="Folder of creative images (PNG/JPG)"),
    from_store: bool = typer.Option(False, "--from-store", help="Use the (available) creatives in the store"),
    n_creatives: int = typer.Option(16, "--creatives", min=2,
                                    help="creatives per campaign (drawn per seed from the store's), or to make with --products"),
    encoder: Path | None = typer.Option(None, "--encoder", help="Represent encoder folder: add its embeddings"),
    ocr: bool = typer.Option(True, "--ocr/--no-ocr", help="Read the copy on --images (slow)"),
    png: Path | None = typer.Option(None, "--png", dir_okay=False, help="Write the cumulative-CTR curves here"),
    report: Path | None = typer.Option(None, "--report", dir_okay=False, help="Also write the table as Markdown here"),
) -> None:
    """Run simulated campaigns on represent's features of the creatives (see docs/select.md)."""
    from adcreative.pipelines.simulation import simulate_source

    seed_list = parse_seeds(seeds)  # before the store opens: a usage error creates no store
    res = simulate_source(_source(ctx, from_store, images, products, n_creatives, encoder, ocr), n=n,
                          seeds=seed_list, policies=parse_list(policies),
                          n_creatives=n_creatives if products is None else None, png=png, progress=True)
    _emit(res.to_markdown(), report)
    if png is not None:
        console.print(f"curves: {png}")


@app.command("coldstart")
def coldstart(
    ctx: typer.Context,
    seeds: str = typer.Option("0,1,2,3,4", "--seeds", help="comma-separated seeds"),
    n: int = typer.Option(20000, "--n", min=100, help="logged impressions for training, and again for testing"),
    encoder: Path | None = typer.Option(None, "--encoder", help="Represent encoder folder: add its embeddings"),
    epochs: int = typer.Option(4, "--epochs", min=1),
    report: Path | None = typer.Option(None, "--report", dir_okay=False, help="Also write the table as Markdown here"),
) -> None:
    """Cold-start click AUC on creatives of held-out products, with and without represent's features."""
    from adcreative.pipelines.simulation import cold_start_source

    seed_list = parse_seeds(seeds)  # before the store opens: a usage error creates no store
    res = cold_start_source(_source(ctx, True, None, None, 0, encoder, True), seeds=seed_list,
                            n_train=n, n_test=n, epochs=epochs, progress=True)
    _emit(res.to_markdown(), report)


def _emit(md: str, report: Path | None) -> None:
    from adcreative.core.imageio import atomic_write_text

    console.print(md)
    if report is not None:
        atomic_write_text(report, md + "\n")


@app.command("rank")
def rank(
    model: Path = typer.Option(..., "--model", help="Selection bundle folder"),
    ad: str = typer.Option(..., "--ad"),
    candidates: str = typer.Option(..., "--candidates", help="comma-separated creative ids"),
    user: str = typer.Option("{}", "--user", help='user fields as JSON, e.g. {"user_feature_0": "abc"}'),
    user_id: str = typer.Option("cli", "--user-id"),
    position: int = typer.Option(0, "--position", min=0),
) -> None:
    """Rank candidates for one user with a saved bundle (the service's in-process path)."""
    from adcreative.core.errors import InputError
    from adcreative.select.selector import RankRequest, Selector

    try:
        fields = json.loads(user)
    except json.JSONDecodeError as e:
        raise InputError(f"--user is not JSON: {e}") from e
    if not isinstance(fields, dict):
        raise InputError("--user must be a JSON object")
    r = Selector.load(model).rank(RankRequest(user_id=user_id, ad_id=ad, candidates=parse_list(candidates),
                                              user=fields, position=position))
    console.print(json.dumps(r.__dict__, indent=1))


def serve(
    ctx: typer.Context,
    model: Path = typer.Option(..., "--model", help="Selection bundle folder (watched for new versions)"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    events: Path | None = typer.Option(None, "--events", help="Event log (JSON lines). Default: MODEL/events.jsonl"),
    api_keys: str = typer.Option("", "--api-keys", envvar="ADCREATIVE_API_KEYS",
                                 help="comma-separated keys for write endpoints"),
    mirror_store: bool = typer.Option(False, "--mirror-store", help="Also write events into the store"),
    reload_interval: float = typer.Option(1.0, "--reload-interval", help="seconds between model-dir checks; 0 = off"),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="worker processes sharing the model folder and the event log"),
) -> None:
    """Serve creative selection over HTTP (FastAPI; OpenAPI at /docs)."""
    from adcreative.select.service import serve as run

    check_bind(host, port)
    console.print(f"serving {model} on http://{host}:{port} with {workers} worker(s)  (OpenAPI: /docs)")
    run(model, host=host, port=port, events_path=events, api_keys=parse_list(api_keys),
        store=store_from(ctx) if mirror_store else None, store_home=home_from(ctx) if mirror_store else None,
        reload_interval=reload_interval, workers=workers)
