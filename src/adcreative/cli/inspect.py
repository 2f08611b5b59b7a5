"""CLI of the inspect stage: ``adcreative inspect train | eval | baselines | run | export``.

Nothing heavy at import: torch, the trunk and MiniLM load inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from adcreative.cli.common import console, err_console, store_from
from adcreative.core.errors import InputError

app = typer.Typer(help="RFNet: train, evaluate and run the multimodal auditor of generated ad images.",
                  no_args_is_help=True)

_MODEL_HELP = "Inspector folder (config.json + model.safetensors); default: the RFNet shipped with the package"


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _train_config(epochs: int, batch_size: int, lr: float, patience: int, seed: int, class_weighting: bool) -> Any:
    from adcreative.inspect.train import TrainConfig

    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                       class_weighting=class_weighting)


@app.command("train")
def train(
    ctx: typer.Context,
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (manifest.jsonl, or RF1M's label.txt)"),
    out: Path = typer.Option(..., "--out", help="Model folder to write"),
    store_labels: bool = typer.Option(False, "--store-labels", help="Also train on human labels in the store"),
    model: str = typer.Option("rfnet", "--model", help="Inspector family: rfnet | image-only"),
    epochs: int = typer.Option(20, "--epochs"),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr"),
    patience: int = typer.Option(5, "--patience", help="Early stopping: epochs without a better val score"),
    seed: int = typer.Option(0, "--seed"),
    class_weighting: bool = typer.Option(True, "--class-weighting/--no-class-weighting"),
    image_size: int = typer.Option(224, "--image-size"),
    aux_size: int = typer.Option(112, "--aux-size"),
    dim: int = typer.Option(64, "--dim"),
    layers: int = typer.Option(2, "--layers"),
    no_product: bool = typer.Option(False, "--no-product", help="Ablation: drop the product cutout"),
    no_mask: bool = typer.Option(False, "--no-mask", help="Ablation: drop the mask/saliency map"),
    no_structure: bool = typer.Option(False, "--no-structure", help="Ablation: drop the structure map"),
    no_text: bool = typer.Option(False, "--no-text", help="Ablation: drop the title"),
    finetune_head: bool = typer.Option(False, "--finetune-head", help="Also train the trunk's last 1×1 conv"),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Cache trunk encodings in DATA/.cache"),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: torch's choice)"),
) -> None:
    """Train an inspector (seeded; class-weighted; early stopping on validation macro-F1)."""
    from adcreative.inspect.base import create_inspector
    from adcreative.inspect.train import train_inspector

    _threads(threads)
    cfg = _train_config(epochs, batch_size, lr, patience, seed, class_weighting)
    net = create_inspector(model, image_size=image_size, aux_size=aux_size, dim=dim, layers=layers,
                           use_product=not no_product, use_mask=not no_mask, use_structure=not no_structure,
                           use_text=not no_text, finetune_head=finetune_head)
    train_inspector(net, data, out, cfg, store=store_from(ctx) if store_labels else None, cache=cache,
                    log=console.print)
    console.print(f"model: {out}")


@app.command("eval")
def evaluate(
    data: Path = typer.Option(..., "--data", help="Dataset folder"),
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    split: str = typer.Option("test", "--split", help="train | val | test | all"),
    out: Path | None = typer.Option(None, "--out", help="Folder for pr_curves.png, confusion.png, metrics.json"),
    cache: bool = typer.Option(True, "--cache/--no-cache"),
    threads: int | None = typer.Option(None, "--threads"),
) -> None:
    """Per-class precision/recall/F1, AP(available), macro-F1; PR curves and confusion matrix as PNG."""
    from adcreative.inspect.evaluate import evaluate_folder
    from adcreative.inspect.metrics import format_metrics

    _threads(threads)
    m = evaluate_folder(model, data, split=split, out=out, cache=cache)
    console.print(format_metrics(m))
    console.print(f"PR curves: {m['pr_curves']}\nconfusion: {m['confusion_png']}")


@app.command("baselines")
def baselines(
    data: Path = typer.Option(..., "--data", help="Dataset folder with train/val/test splits"),
    epochs: int = typer.Option(20, "--epochs"),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr"),
    patience: int = typer.Option(5, "--patience"),
    seed: int = typer.Option(0, "--seed"),
    only: str = typer.Option("", "--only", help="Comma-separated variant names (default: all)"),
    out: Path | None = typer.Option(None, "--out", help="Write the table (markdown + json) here"),
    save: Path | None = typer.Option(None, "--save", help="Save every trained variant under this folder"),
    dim: int = typer.Option(64, "--dim"),
    image_size: int = typer.Option(224, "--image-size"),
    aux_size: int = typer.Option(112, "--aux-size"),
    finetune_head: bool = typer.Option(False, "--finetune-head", help="Also train the trunk's last 1×1 conv"),
    threads: int | None = typer.Option(None, "--threads"),
) -> None:
    """The paper's Tables 1–2: image-only and RFNet minus each auxiliary input, on the same split."""
    from adcreative.core.imageio import atomic_write_text
    from adcreative.inspect.evaluate import ABLATIONS, format_table, run_baselines
    from adcreative.inspect.model import RFNet

    _threads(threads)
    base = RFNet(dim=dim, image_size=image_size, aux_size=aux_size, finetune_head=finetune_head).config
    names = [n.strip() for n in only.split(",") if n.strip()] or list(ABLATIONS)
    rows, te = run_baselines(data, base, _train_config(epochs, batch_size, lr, patience, seed, True), names,
                             save_dir=save)
    table = format_table(rows)
    console.print(f"test split: {len(te)} images of {len(set(te.product_ids))} products unseen in training "
                  f"({', '.join(sorted(set(te.product_ids)))})")
    typer.echo(table)
    if out is not None:
        atomic_write_text(out.with_suffix(".md"), "```\n" + table + "\n```\n")
        atomic_write_text(out.with_suffix(".json"), json.dumps([r.__dict__ for r in rows], indent=2))


@app.command("run")
def run(
    ctx: typer.Context,
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    product: str | None = typer.Option(None, "--product", help="Only this product's creatives"),
    run_id: str | None = typer.Option(None, "--run", help="Only creatives of this generation run"),
    rescore: bool = typer.Option(False, "--rescore", help="Also creatives that already have a verdict"),
    batch_size: int = typer.Option(64, "--batch-size"),
    onnx: bool = typer.Option(False, "--onnx", help="Score with the ONNX export (onnxruntime)"),
    threads: int | None = typer.Option(None, "--threads"),
) -> None:
    """Score creatives in the store in batches and write a verdict for each."""
    from adcreative.pipelines.scoring import score_store

    _threads(threads)
    mid, counts = score_store(store_from(ctx), model=model, product=product, run_id=run_id, rescore=rescore,
                              batch_size=batch_size, onnx=onnx)
    if not counts:
        console.print("nothing to score")
        return
    console.print(f"scored {sum(counts.values())} creatives with {mid}: "
                  + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


@app.command("export")
def export(
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    out: Path | None = typer.Option(None, "--out", help="Folder for model.onnx (default: the model folder)"),
) -> None:
    """Export to ONNX (checked against torch) for fast CPU scoring with onnxruntime."""
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.export import export_onnx

    net = load_inspector(model)
    if out is None and model is None:
        raise InputError("give --out DIR to export the default model (the package folder stays read-only)")
    d = out or Path(model)  # type: ignore[arg-type]
    if (out is not None and model is not None and out != model) or (out is not None and model is None):
        net.save_pretrained(out)
    path = export_onnx(net, d)
    console.print(f"onnx: {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command("info")
def info(model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP)) -> None:
    """Show a model's config, modalities and training summary."""
    from adcreative.inspect.base import default_model_dir

    d = Path(model) if model is not None else default_model_dir()
    p = d / "config.json"
    if not p.exists():
        raise InputError("no config.json: not an inspector folder", source=d)
    cfg = json.loads(p.read_text())
    extra = cfg.pop("_extra", {})
    console.print_json(json.dumps(cfg))
    if extra.get("test"):
        console.print(f"test metrics: {extra['test']}")
    if not (d / "model.safetensors").exists():
        err_console.print(f"[yellow]warning:[/] {d / 'model.safetensors'} is missing")
