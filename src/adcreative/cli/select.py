"""CLI of the select stage: ``adcreative select obd|simulate|rank`` and the top-level ``adcreative serve``.

Nothing heavy is imported here (torch, FastAPI, VW load inside the commands)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from adcreative.cli.common import console, parse_list, store_from

app = typer.Typer(help="Creative selection: train/evaluate on OBD, simulate campaigns, rank.", no_args_is_help=True)


@app.command("obd")
def obd(
    data: Path = typer.Option(Path("../shared/data/obd/men"), "--data", help="OBD campaign folder (random/, bts/)"),
    out: Path | None = typer.Option(None, "--out", help="Save a servable bundle trained on all random rows here"),
    folds: int = typer.Option(5, "--folds", min=2),
    epochs: int = typer.Option(4, "--epochs", min=1),
    epsilon: float = typer.Option(0.05, "--epsilon", min=0.0, max=1.0, help="exploration share of the ε policies"),
    vw: bool = typer.Option(True, "--vw/--no-vw", help="Train Vowpal Wabbit cb_explore_adf as the peer"),
    report: Path | None = typer.Option(None, "--report", help="Also write the table as Markdown here"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Cross-fitted OPE (IPS/SNIPS/DR, bootstrap 95% CI) of the learned policy vs logged random and BTS."""
    from adcreative.core.imageio import atomic_write_text
    from adcreative.select.obd import evaluate_obd

    r = evaluate_obd(data, folds=folds, epochs=epochs, epsilon=epsilon, with_vw=vw, save_to=out, seed=seed,
                     progress=True)
    md = r.to_markdown()
    console.print(md)
    if report is not None:
        atomic_write_text(report, md + "\n")
    if out is not None:
        console.print(f"bundle: {out}")


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    n: int = typer.Option(20000, "--n", min=1, help="impressions per policy"),
    seed: int = typer.Option(0, "--seed"),
    policies: str = typer.Option("oracle,ours,uniform,best_fixed,vw", "--policies",
                                 help="oracle, ours, ours_listwise, uniform, best_fixed, vw, vw_squarecb"),
    products: Path | None = typer.Option(None, "--products", help="Folder of RGBA cutouts → quick creatives"),
    images: Path | None = typer.Option(None, "--images", help="Folder of creative images (PNG/JPG)"),
    from_store: bool = typer.Option(False, "--from-store", help="Use the creatives in the store"),
    n_creatives: int = typer.Option(16, "--creatives", min=2, help="creatives to make with --products"),
    png: Path | None = typer.Option(None, "--png", help="Write the cumulative-CTR curves here"),
    report: Path | None = typer.Option(None, "--report", help="Also write the table as Markdown here"),
) -> None:
    """Run a simulated campaign (see docs/select.md) and print cumulative CTR per policy."""
    from PIL import Image

    from adcreative.core.errors import InputError
    from adcreative.core.imageio import atomic_write_text, open_image
    from adcreative.select.simulator import image_features, quick_creatives, run_campaign

    masks: list[Image.Image | None] | None = None
    if from_store:
        from adcreative.generate.provenance import placement_mask

        store = store_from(ctx)
        # generate → inspect → select: only creatives an auditor accepted compete; unaudited ones never do
        crs = store.available_creatives()
        console.print(f"{len(crs)} of {len(store.creatives())} creatives are available (audited and accepted)")
        if len(crs) < 2:
            raise InputError("the store has fewer than 2 available creatives: run `adcreative generate "
                             "--until-available K` (or `adcreative inspect run` on what is stored) first")
        ims = [store.creative_image(c) for c in crs]
        masks = [placement_mask(store, c) for c in crs]
    elif images is not None:
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if len(files) < 2:
            raise InputError("needs at least 2 images", source=images)
        ims = [open_image(p) for p in files]
    elif products is not None:
        files = sorted(products.glob("*.png"))
        if not files:
            raise InputError("no PNG cutouts", source=products)
        ims, quick_masks = quick_creatives([Image.open(p) for p in files], n_creatives, seed=seed)
        masks = list(quick_masks)
    else:
        raise InputError("give creatives: --products DIR, --images DIR or --from-store")
    feats = image_features(ims, masks)
    res = run_campaign(feats, n, seed, policies=parse_list(policies), png=png, progress=True)
    md = res.to_markdown()
    console.print(md)
    if report is not None:
        atomic_write_text(report, md + "\n")
    if png is not None:
        console.print(f"curves: {png}")


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
    from adcreative.select.bundle import Bundle
    from adcreative.select.selector import RankRequest, Selector

    try:
        fields = json.loads(user)
    except json.JSONDecodeError as e:
        raise InputError(f"--user is not JSON: {e}") from e
    if not isinstance(fields, dict):
        raise InputError("--user must be a JSON object")
    r = Selector(Bundle.load(model)).rank(RankRequest(user_id=user_id, ad_id=ad, candidates=parse_list(candidates),
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
) -> None:
    """Serve creative selection over HTTP (FastAPI; OpenAPI at /docs)."""
    from adcreative.select.service import serve as run

    console.print(f"serving {model} on http://{host}:{port}  (OpenAPI: /docs)")
    run(model, host=host, port=port, events_path=events, api_keys=parse_list(api_keys),
        store=store_from(ctx) if mirror_store else None, reload_interval=reload_interval)
