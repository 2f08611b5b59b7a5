"""CLI of the inspect stage: ``adcreative inspect train | eval | baselines | calibrate | calibrate-renderer |
ensemble | run | sources | fit-prop-finder | export | info``.

Nothing heavy at import: torch, the trunk and MiniLM load inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from adcreative.cli.common import SEED_MAX, THREADS_MAX, console, err_console, parse_seeds, store_from
from adcreative.core.errors import InputError
from adcreative.core.types import BANDS, TARGET_REJECT

app = typer.Typer(help="RFNet: train, evaluate and run the multimodal auditor of generated ad images.",
                  no_args_is_help=True)

_MODEL_HELP = "Inspector folder (config.json + model.safetensors); default: the RFNet shipped with the package"


def _cue_set(cue_set: str | None, cues: bool) -> str:
    """--cue-set, checked: CURRENT_CUE_SET unless one is named; only meaningful with --cues."""
    from adcreative.inspect.cues import CURRENT_CUE_SET

    if cue_set is not None and not cues:
        raise InputError("--cue-set needs --cues")
    return cue_set or CURRENT_CUE_SET


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _train_config(epochs: int, batch_size: int, lr: float, patience: int, seed: int, class_weighting: bool,
                  modality_dropout: float = 0.0, target_accept: float = 0.99, target_reject: float = TARGET_REJECT,
                  ood_quantile: float = 0.99, adversary: str = "none", adversary_weight: float = 0.1,
                  adversary_mode: str = "reverse", decision_groups: str | None = None,
                  decision_min_group: int | None = None, style_mix: float = 0.0, real_bias: bool = False) -> Any:
    from adcreative.inspect.train import ADVERSARIES, ADVERSARY_MODES, TrainConfig

    if epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if lr <= 0.0:  # 0 trained nothing and saved the initial weights as a model
        raise InputError(f"--lr must be above 0, got {lr:g}")
    if patience < 1:  # below 1 stopped after the first epoch whatever --epochs said
        raise InputError(f"--patience must be at least 1, got {patience}")
    if not 0.0 <= modality_dropout < 1.0:
        raise InputError(f"--modality-dropout must be in [0, 1), got {modality_dropout}")
    if not 0.0 <= style_mix <= 1.0:
        raise InputError(f"--style-mix must be in [0, 1], got {style_mix}")
    if adversary not in ADVERSARIES:
        raise InputError(f"--adversary must be one of {', '.join(ADVERSARIES)}, got {adversary!r}")
    if adversary_mode not in ADVERSARY_MODES:
        raise InputError(f"--adversary-mode must be one of {', '.join(ADVERSARY_MODES)}, got {adversary_mode!r}")
    if adversary_weight < 0:
        raise InputError(f"--adversary-weight must be at least 0, got {adversary_weight}")
    _check_targets(target_accept, target_reject, ood_quantile)
    groups = _decision_groups(decision_groups, decision_min_group)
    return TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                       class_weighting=class_weighting, modality_dropout=modality_dropout,
                       target_accept=target_accept, target_reject=target_reject, ood_quantile=ood_quantile,
                       adversary=adversary, adversary_weight=adversary_weight, adversary_mode=adversary_mode,
                       style_mix=style_mix, real_bias=real_bias, **groups)


def _check_targets(target_accept: float, target_reject: float, ood_quantile: float) -> None:
    for name, v in (("--target-accept", target_accept), ("--target-reject", target_reject),
                    ("--ood-quantile", ood_quantile)):
        if not 0.0 < v <= 1.0:
            raise InputError(f"{name} must be in (0, 1], got {v}")


def _decision_groups(rule: str | None, min_group: int | None) -> dict[str, Any]:
    """--decision-groups and --decision-min-group, checked, as TrainConfig fields (unset: the defaults in
    inspect.decision)."""
    from adcreative.inspect.decision import DECISION_GROUPS, GROUP_RULES, MIN_GROUP

    rule = DECISION_GROUPS if rule is None else rule
    if rule not in GROUP_RULES:
        raise InputError(f"--decision-groups must be one of {', '.join(GROUP_RULES)}, got {rule!r}")
    if min_group is not None and min_group < 1:
        raise InputError(f"--decision-min-group must be at least 1, got {min_group}")
    return {"decision_groups": rule, "decision_min_group": MIN_GROUP if min_group is None else min_group}


_CUES_HELP = ("RFNet also reads the measured cues (truncation, size, outline contrast, the product's colours "
              "outside it, what lies under its base), estimated from image, mask and cutout")
_CUE_EXPERT_HELP = ("With --cues: weight w of the cue expert, a classifier of the measured cues alone mixed into the "
                    "output as (1 − w)·P(fused) + w·P(cues); 0 = none. It cannot learn a renderer's look, so it "
                    "holds up better on renderers no training run saw")
_CUE_KIND_HELP = ("With --cue-expert: the cue expert's model, trees (default: boosted trees, rounds chosen on "
                  "validation; they judged held-out renderers better, docs/inspect.md tenth round) or mlp (a small "
                  "network, the eighth round's)")
_CUE_SET_HELP = ("With --cues: the version of the measured cues to read (inspect/cues.py CUE_SETS; "
                 "default: CURRENT_CUE_SET). "
                 "A saved model keeps the set it was trained on")
_OOD_STYLE_HELP = ("A third out-of-distribution distance: none, or scene (the trunk's channel statistics of the scene "
                   "around the product against each training renderer family's: images in a style no training "
                   "family has go to a human)")
_DROPOUT_HELP = ("Training: drop each input (image, view, mid, structure, affinity, product, text, cues) with this "
                 "probability")
_STYLE_MIX_HELP = ("Training: with this probability a sample's trunk-map statistics (channel means and spreads) are "
                   "mixed with those of an image from another renderer family in the batch (MixStyle)")
_ADV_HELP = ("Training only: a domain-adversarial head on the pooled features predicts the image's renderer family, "
             "its product, or both, and its reversed gradient pushes the features to carry neither: none | renderer "
             "| product | both")
_ADV_WEIGHT_HELP = "Weight of the adversary's reversed gradient (ramped up 2/(1+e^(-10p))-1 over training)"
_ADV_MODE_HELP = ("reverse: DANN's gradient reversal; confusion: the features are pushed to make the adversary's "
                  "prediction uniform")
_ACCEPT_HELP = "Precision of auto-accepted images the decision's threshold must reach on validation"
_REJECT_HELP = "Precision of auto-rejected images (truly defective) the reject threshold must reach on validation"
_OOD_HELP = "Quantile of validation OOD scores above which an image goes to a human"
_REAL_BIAS_HELP = ("Fit a per-class logit bias for images of real (imported) products on validation's rows of real "
                   "products, when it has enough (at least 200, 10 of each class); the decision is chosen with it. "
                   "Off by default: it lifts macro-F1 and calibration on real products, but on one model it "
                   "auto-accepted more of their defective images on fresh renders; the shipped default carries one "
                   "(docs/inspect.md, twenty-third and twenty-fourth rounds)")
_GROUPS_HELP = ("How the decision's thresholds meet their targets on validation: family (default: on each renderer "
                "family too, the strictest family sets each threshold; a stand-in for a renderer never seen), "
                "pooled (all images together) or reject-family (the family rule for the reject threshold only; the "
                "accept threshold pooled, so label shift can move it) or floor (reject-family, and a family's own "
                "accept threshold may raise the pooled one, never lower it). With family, reject-family or floor "
                "each family also keeps its own accept threshold, used for images of that family")
_MIN_GROUP_HELP = ("With --decision-groups family, reject-family or floor: validation images a family needs to count (and "
                   "5 available / 5 defective ones for the accept / reject threshold); default 50")


_WARM_HELP = ("Start from a saved inspector's weights (a folder, or 'default' for the shipped RFNet) wherever they "
              "fit this model's own architecture (its options win: e.g. another --cue-set or a --cue-expert); the "
              "rest starts fresh")
_SPLITS_HELP = ("With several --data folders, the split of a product that more than one holds: same (refuse folders "
                "that split it differently) or first (the first folder's split)")


@app.command("train")
def train(
    ctx: typer.Context,
    data: list[Path] | None = typer.Option(None, "--data", help="Dataset folder (manifest.jsonl, or RF1M's "
                                           "label.txt); repeatable: several folders are one dataset"),
    splits: str = typer.Option("same", "--splits", help=_SPLITS_HELP),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Model folder to write"),
    store_labels: bool = typer.Option(False, "--store-labels", help="Also train on human labels in the store"),
    model: str = typer.Option("rfnet", "--model", help="Inspector family: rfnet | image-only"),
    init: str | None = typer.Option(None, "--init", help="Fine-tune a saved inspector (a folder, or 'default' for "
                                    "the shipped RFNet) instead of a fresh one; its architecture options win"),
    warm: str | None = typer.Option(None, "--warm-start", help=_WARM_HELP),
    epochs: int = typer.Option(20, "--epochs"),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr", min=0.0),
    patience: int = typer.Option(5, "--patience", help="Early stopping: epochs without a better val score"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    class_weighting: bool = typer.Option(True, "--class-weighting/--no-class-weighting"),
    image_size: int = typer.Option(224, "--image-size"),
    aux_size: int = typer.Option(112, "--aux-size"),
    dim: int = typer.Option(64, "--dim"),
    layers: int = typer.Option(2, "--layers"),
    no_product: bool = typer.Option(False, "--no-product", help="Ablation: drop the product cutout"),
    no_mask: bool = typer.Option(False, "--no-mask", help="Ablation: drop the mask/saliency map"),
    no_structure: bool = typer.Option(False, "--no-structure", help="Ablation: drop the structure map"),
    no_text: bool = typer.Option(False, "--no-text", help="Ablation: drop the title"),
    cues: bool = typer.Option(False, "--cues/--no-cues", help=_CUES_HELP),
    cue_expert: float = typer.Option(0.0, "--cue-expert", help=_CUE_EXPERT_HELP),
    cue_expert_kind: str = typer.Option("trees", "--cue-expert-kind", help=_CUE_KIND_HELP),
    cue_set: str | None = typer.Option(None, "--cue-set", help=_CUE_SET_HELP),
    ood_style: str = typer.Option("none", "--ood-style", help=_OOD_STYLE_HELP),
    finetune_head: bool = typer.Option(False, "--finetune-head", help="Also train the trunk's last 1×1 conv"),
    tokens: str = typer.Option("head", "--tokens", help="Deep maps of the tokens: head (1280-ch head conv) or "
                               "block (the 320-ch last block: 4× cheaper to train)"),
    local_width: int = typer.Option(64, "--local-width", help="Channels of the local stage's first conv"),
    modality_dropout: float = typer.Option(0.0, "--modality-dropout", help=_DROPOUT_HELP),
    style_mix: float = typer.Option(0.0, "--style-mix", help=_STYLE_MIX_HELP),
    adversary: str = typer.Option("none", "--adversary", help=_ADV_HELP),
    adversary_weight: float = typer.Option(0.1, "--adversary-weight", help=_ADV_WEIGHT_HELP),
    adversary_mode: str = typer.Option("reverse", "--adversary-mode", help=_ADV_MODE_HELP),
    target_accept: float = typer.Option(0.99, "--target-accept", help=_ACCEPT_HELP),
    target_reject: float = typer.Option(TARGET_REJECT, "--target-reject", help=_REJECT_HELP),
    ood_quantile: float = typer.Option(0.99, "--ood-quantile", help=_OOD_HELP),
    decision_groups: str | None = typer.Option(None, "--decision-groups", help=_GROUPS_HELP),
    decision_min_group: int | None = typer.Option(None, "--decision-min-group", help=_MIN_GROUP_HELP),
    real_bias: bool = typer.Option(False, "--real-bias/--no-real-bias", help=_REAL_BIAS_HELP),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Cache trunk encodings in DATA/.cache"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX,
                                       help="torch threads (default: torch's choice)"),
) -> None:
    """Train an inspector (seeded; class-weighted; early stopping on validation macro-F1 + AP), then calibrate it
    and fit its three-way decision on validation. With --init, fine-tune a saved one (its calibration is refitted)."""
    from adcreative.inspect.base import create_inspector, load_inspector
    from adcreative.inspect.train import train_inspector

    _threads(threads)
    cfg = _train_config(epochs, batch_size, lr, patience, seed, class_weighting, modality_dropout, target_accept,
                        target_reject, ood_quantile, adversary, adversary_weight, adversary_mode, decision_groups,
                        decision_min_group, style_mix, real_bias)
    if init is not None and warm is not None:
        raise InputError("--init fine-tunes a saved inspector as it is, --warm-start builds a new one from its "
                         "weights: give one of them")
    if init is not None:
        net = load_inspector(None if init == "default" else Path(init))
        net.set_calibration(1.0, None)  # refitted on the new validation split after training
        train_inspector(net, data, out, cfg, store=store_from(ctx, must_exist=True) if store_labels else None,
                        cache=cache, log=console.print, extra={"init": init}, splits=splits)
        console.print(f"model: {out}")
        return
    import torch

    # --seed also draws the fresh weights (all of them, or what --warm-start does not copy): torch seeds its
    # default generator at random at startup, and train_inspector's own seeding comes after the model is built
    torch.manual_seed(seed)
    try:
        net = create_inspector(model, image_size=image_size, aux_size=aux_size, dim=dim, layers=layers,
                               use_product=not no_product, use_mask=not no_mask, use_structure=not no_structure,
                               use_text=not no_text, use_cues=cues, finetune_head=finetune_head, tokens=tokens,
                               local_width=local_width, ood_style=ood_style, cue_expert=cue_expert,
                               cue_expert_kind=cue_expert_kind, cue_set=_cue_set(cue_set, cues))
    except ValueError as e:
        raise InputError(str(e)) from None
    extra = None
    if warm is not None:
        from adcreative.inspect.base import warm_start

        w = warm_start(net, None if warm == "default" else Path(warm))
        console.print(f"warm start from {warm}: {len(w['copied'])} weights copied, {len(w['fresh'])} fresh"
                      + (f" ({', '.join(w['fresh'][:6])}{', …' if len(w['fresh']) > 6 else ''})" if w["fresh"] else ""))
        extra = {"warm_start": warm, "warm_fresh": w["fresh"]}
    train_inspector(net, data, out, cfg, store=store_from(ctx, must_exist=True) if store_labels else None,
                    cache=cache, log=console.print, splits=splits, extra=extra)
    console.print(f"model: {out}")


@app.command("eval")
def evaluate(
    data: Path = typer.Option(..., "--data", help="Dataset folder"),
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    split: str = typer.Option("test", "--split", help="train | val | test | all"),
    out: Path | None = typer.Option(None, "--out", file_okay=False,
                                    help="Folder for pr_curves.png, confusion.png, reliability.png, "
                                         "metrics.json"),
    cache: bool = typer.Option(True, "--cache/--no-cache"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Per-class precision/recall/F1, AP(available), macro-F1, calibration (NLL, ECE) and the three-way decision,
    overall and per renderer family; PR curves, confusion matrix and reliability diagram as PNG. (To train on all
    renderer families but one and test on the held-out one, see `inspect baselines --loro`.)"""
    from adcreative.inspect.evaluate import evaluate_folder
    from adcreative.inspect.metrics import format_metrics

    _threads(threads)
    m = evaluate_folder(model, data, split=split, out=out, cache=cache)
    console.print(format_metrics(m))
    from rich.markup import escape

    for fam, fm in m.get("by_renderer", {}).items():  # family and kind names come from the data: escaped
        console.print(f"\n[bold]renderer family {escape(fam)}[/] ({fm['n']} images)\n" + escape(format_metrics(fm)),
                      markup=True)
    if m.get("parts"):
        from adcreative.inspect.metrics import format_parts

        console.print("\n[bold]the mixture's parts alone[/] (the model as it judges; the fused network and "
                      "the cue expert uncalibrated)\n" + escape(format_parts(m["parts"])), markup=True)
    if m.get("by_kind"):
        from adcreative.inspect.metrics import format_kind_misses

        console.print("\n[bold]drawn defect kinds missed most[/] (share ranked above the family's median available "
                      "image)\n" + escape(format_kind_misses(m["by_kind"])), markup=True)
    console.print(f"PR curves: {m['pr_curves']}\nconfusion: {m['confusion_png']}\nreliability: {m['reliability_png']}"
                  + (f"\nkinds: {m['by_kind_png']}" if m.get("by_kind_png") else ""))


@app.command("baselines")
def baselines(
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder with train/val/test splits; with --loro "
                                    "repeatable: folders of the same products and splits (e.g. a family rendered "
                                    "later) are one dataset"),
    splits: str = typer.Option("same", "--splits", help=_SPLITS_HELP),
    warm: str | None = typer.Option(None, "--warm-start", help="With --loro: " + _WARM_HELP),
    loro: bool = typer.Option(False, "--loro", help="Leave one renderer family out: train on the others, test on it "
                              "(each family in turn), plus real products and in-distribution rows"),
    families: str = typer.Option("", "--families", help="With --loro: the families to hold out (default: all)"),
    train_families: str = typer.Option("", "--train-families", help="With --loro: the only families any fold "
                                       "trains on (default: all); the others are test-only, judged by models "
                                       "trained on all of these"),
    real_products: str = typer.Option("", "--real-products", help="With --loro: comma-separated real product ids "
                                      "(default: those the manifest marks real)"),
    models: str = typer.Option("RFNet,image-only,linear probe", "--models",
                               help="With --loro: RFNet, image-only, linear probe"),
    seeds: str = typer.Option("", "--seeds", help="Comma-separated seeds; the table shows median and range "
                              "(default: --seed)"),
    max_train: int | None = typer.Option(None, "--max-train", help="With --loro: cap each fold's training images "
                                         "(class shares kept, seeded)"),
    max_val: int | None = typer.Option(None, "--max-val", help="With --loro: cap each fold's validation images"),
    tokens: str = typer.Option("head", "--tokens", help="Deep maps of the tokens: head (1280-ch head conv) or "
                               "block (the 320-ch last block: 4× cheaper to train)"),
    local_width: int = typer.Option(64, "--local-width", help="Channels of the local stage's first conv"),
    cues: bool = typer.Option(False, "--cues/--no-cues", help=_CUES_HELP),
    cue_expert: float = typer.Option(0.0, "--cue-expert", help=_CUE_EXPERT_HELP),
    cue_expert_kind: str = typer.Option("trees", "--cue-expert-kind", help=_CUE_KIND_HELP),
    cue_set: str | None = typer.Option(None, "--cue-set", help=_CUE_SET_HELP),
    ood_style: str = typer.Option("none", "--ood-style", help=_OOD_STYLE_HELP),
    epochs: int = typer.Option(20, "--epochs"),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr", min=0.0),
    patience: int = typer.Option(5, "--patience"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    modality_dropout: float = typer.Option(0.0, "--modality-dropout", help=_DROPOUT_HELP),
    style_mix: float = typer.Option(0.0, "--style-mix", help=_STYLE_MIX_HELP),
    adversary: str = typer.Option("none", "--adversary", help=_ADV_HELP),
    adversary_weight: float = typer.Option(0.1, "--adversary-weight", help=_ADV_WEIGHT_HELP),
    adversary_mode: str = typer.Option("reverse", "--adversary-mode", help=_ADV_MODE_HELP),
    target_accept: float = typer.Option(0.99, "--target-accept", help=_ACCEPT_HELP),
    target_reject: float = typer.Option(TARGET_REJECT, "--target-reject", help=_REJECT_HELP),
    ood_quantile: float = typer.Option(0.99, "--ood-quantile", help=_OOD_HELP),
    decision_groups: str | None = typer.Option(None, "--decision-groups", help=_GROUPS_HELP),
    decision_min_group: int | None = typer.Option(None, "--decision-min-group", help=_MIN_GROUP_HELP),
    only: str = typer.Option("", "--only", help="Comma-separated variant names (default: all; without --loro)"),
    out: Path | None = typer.Option(None, "--out", help="Write the table (markdown + json; with --loro a folder "
                                    "with loro.md, loro.json and PNGs) here"),
    save: Path | None = typer.Option(None, "--save", file_okay=False,
                                     help="Save every trained variant under this folder"),
    dim: int = typer.Option(64, "--dim"),
    image_size: int = typer.Option(224, "--image-size"),
    aux_size: int = typer.Option(112, "--aux-size"),
    finetune_head: bool = typer.Option(False, "--finetune-head", help="Also train the trunk's last 1×1 conv"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
    merge: str = typer.Option("", "--merge", help="With --loro and --out: train nothing, merge the reports in "
                              "these comma-separated folders (the same setup run on different seeds, e.g. one "
                              "process per seed) into one table in --out"),
) -> None:
    """The paper's Tables 1–2 (image-only and RFNet minus each auxiliary input, on the same split), or with
    --loro the leave-one-renderer-out table: RFNet, image-only and a linear probe per held-out family."""
    from adcreative.cli.common import parse_list
    from adcreative.core.imageio import atomic_write_text
    from adcreative.inspect.model import RFNet

    if merge:
        if not loro or out is None:
            raise InputError("--merge needs --loro and --out")
        from adcreative.inspect.loro import merge_into

        report, paths = merge_into([Path(d) for d in parse_list(merge)], out)
        typer.echo(format_loro(report))
        console.print(f"table: {paths['md']}  results: {paths['json']}")
        return
    if not loro and (len(data) > 1 or train_families or warm is not None):
        raise InputError("several --data folders, --train-families and --warm-start need --loro")
    _threads(threads)
    try:
        base = RFNet(dim=dim, image_size=image_size, aux_size=aux_size, finetune_head=finetune_head, tokens=tokens,
                     local_width=local_width, use_cues=cues, ood_style=ood_style, cue_expert=cue_expert,
                     cue_expert_kind=cue_expert_kind, cue_set=_cue_set(cue_set, cues)).config
    except ValueError as e:
        raise InputError(str(e)) from None
    base = {k: v for k, v in base.items() if k not in ("temperature", "decision")}
    tcfg = _train_config(epochs, batch_size, lr, patience, seed, True, modality_dropout, target_accept,
                         target_reject, ood_quantile, adversary, adversary_weight, adversary_mode, decision_groups,
                         decision_min_group, style_mix)
    if loro:
        from adcreative.inspect.evaluate import run_loro_folder
        from adcreative.inspect.loro import write_report

        report = run_loro_folder(data, base, tcfg, seeds=parse_seeds(seeds) if seeds else [seed],
                                 models=parse_list(models), families=parse_list(families) or None,
                                 real=parse_list(real_products), train_families=parse_list(train_families) or None,
                                 max_train=max_train, max_val=max_val,
                                 save_dir=save, log=console.print, checkpoint=out, splits=splits,
                                 warm_from=warm)
        typer.echo(format_loro(report))
        if out is not None:
            paths = write_report(report, out)
            console.print(f"table: {paths['md']}  results: {paths['json']}  figures: {paths['ap_png']}, "
                          f"{paths['f1_png']}")
        return
    from adcreative.inspect.evaluate import ABLATIONS, format_table, run_baselines

    names = [n.strip() for n in only.split(",") if n.strip()] or list(ABLATIONS)
    rows, te = run_baselines(data[0], base, tcfg, names, save_dir=save)
    table = format_table(rows)
    console.print(f"test split: {len(te)} images of {len(set(te.product_ids))} products unseen in training "
                  f"({', '.join(sorted(set(te.product_ids)))})")
    typer.echo(table)
    if out is not None:
        atomic_write_text(out.with_suffix(".md"), "```\n" + table + "\n```\n")
        atomic_write_text(out.with_suffix(".json"), json.dumps([r.__dict__ for r in rows], indent=2))


def format_loro(report: Any) -> str:
    from adcreative.inspect.loro import format_decision_table, format_report

    return format_report(report) + "\n\n" + format_decision_table(report)


@app.command("calibrate")
def calibrate(
    data: Path = typer.Option(..., "--data", help="Dataset folder whose train/val splits fit the calibration"),
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Model folder to write (the calibrated copy)"),
    target_accept: float = typer.Option(0.99, "--target-accept", help=_ACCEPT_HELP),
    target_reject: float = typer.Option(TARGET_REJECT, "--target-reject", help=_REJECT_HELP),
    ood_quantile: float = typer.Option(0.99, "--ood-quantile", help=_OOD_HELP),
    decision_groups: str | None = typer.Option(None, "--decision-groups", help=_GROUPS_HELP),
    decision_min_group: int | None = typer.Option(None, "--decision-min-group", help=_MIN_GROUP_HELP),
    real_bias: bool = typer.Option(False, "--real-bias/--no-real-bias", help=_REAL_BIAS_HELP),
    cache: bool = typer.Option(True, "--cache/--no-cache"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Fit a trained model's temperature, out-of-distribution model and decision thresholds on a dataset's
    validation split (OOD statistics on its training split); write the calibrated model to --out."""
    from adcreative.inspect.evaluate import calibrate_folder

    _threads(threads)
    _check_targets(target_accept, target_reject, ood_quantile)
    cal = calibrate_folder(model, data, out, target_accept=target_accept, target_reject=target_reject,
                           ood_quantile=ood_quantile, cache=cache, real_bias=real_bias,
                           **_decision_groups(decision_groups, decision_min_group))
    _print_calibration(cal, out)


def _print_calibration(cal: dict[str, Any], out: Path, head: str = "") -> None:
    """What calibration fitted (`inspect calibrate`, `inspect ensemble`), and where the model went."""
    from adcreative.inspect.decision import Decision

    decision = Decision.from_dict(cal["decision"])
    console.print(f"{head}T={cal['temperature']:.3f}: val NLL {cal['nll_before']:.4f} → {cal['nll']:.4f}, ECE "
                  f"{cal['ece_before']:.4f} → {cal['ece']:.4f}; accept P(available) ≥ {decision.accept:.4f}, reject ≤ "
                  f"{decision.reject:.4f}, OOD score > {decision.ood:.2f} → human")
    if decision.families:  # the threshold each family's images meet (under the rule "floor", never the pooled's)
        console.print("accept, images of a known renderer family: " + ", ".join(
            f"{name} ≥ {decision.for_family(name).accept:.4f}" for name in sorted(decision.families)))
    if decision.real_accept is not None:
        console.print(f"accept, images of real (imported) products: never below {decision.real_accept:.4f}")
    if cal.get("real_bias") is not None:
        from adcreative.core.types import CLASSES

        console.print(f"real-product bias on {cal['real_rows']} validation rows of real products: " + " ".join(
            f"{n} {b:+.2f}" for n, b in zip(CLASSES, cal["real_bias"], strict=True))
            + f"; their NLL {cal['real_nll_before']:.4f} → {cal['real_nll']:.4f}")
    elif cal.get("real_rows") is not None:
        console.print(f"no real-product bias: {cal['real_rows']} validation rows of real products (too few)")
    console.print(f"model: {out}")


@app.command("calibrate-renderer")
def calibrate_renderer(
    data: Path = typer.Option(..., "--data", help="Dataset folder of reviewed images (`dataset export-labels`): "
                              "every labelled image of the renderer is used, whatever its split"),
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Model folder to write (the model with the "
                             "renderer's calibration)"),
    renderer: str | None = typer.Option(None, "--renderer", help="Renderer family to calibrate (as creatives "
                                        "record it: diffusers-inpaint, compositor, ...); default: the folder's "
                                        "only one"),
    bias: bool = typer.Option(False, "--bias/--no-bias", help="Fit a per-class bias beside the temperature: it can "
                              "change verdicts, for a renderer whose good images the model files under a wrong "
                              "class"),
    cache: bool = typer.Option(True, "--cache/--no-cache"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Fit a renderer's own temperature (and with --bias a per-class bias) on reviewed images it drew, and keep
    everything else of the model: a temperature fitted on the training renderers does not carry to a new one.
    Prints what it does to images it was not fitted on (cross-validated by product) and draws their reliability
    diagram."""
    from adcreative.core.types import CLASSES
    from adcreative.inspect.evaluate import calibrate_renderer_folder
    from adcreative.inspect.metrics import format_ece_floor

    _threads(threads)
    fit = calibrate_renderer_folder(model, data, out, renderer=renderer, bias=bias, cache=cache)
    how = "by product" if fit["by_product"] else "by image: fewer products than folds"
    was = f" (replacing T' {fit['previous']['temperature']:.3f})" if fit["previous"] is not None else ""
    console.print(f"renderer {fit['renderer']!r}: T' = {fit['temperature']:.3f}{was} on {fit['n']} reviewed images")
    if fit["bias"] is not None:
        console.print("bias: " + " ".join(f"{c} {b:+.2f}" for c, b in zip(CLASSES, fit["bias"], strict=True)))
    console.print(f"out of fold ({fit['folds']} folds {how}; T' per fold "
                  + " ".join(f"{t:.2f}" for t in fit["fold_temperatures"])
                  + f"): NLL {fit['nll_before']:.4f} → {fit['nll']:.4f}, ECE {fit['ece_before']:.4f} → "
                  f"{fit['ece']:.4f}, ECE of P(available) {fit['ece_available_before']:.4f} → "
                  f"{fit['ece_available']:.4f}, macro-F1 {fit['macro_f1_before']:.4f} → {fit['macro_f1']:.4f}")
    console.print(f"  out of fold, {format_ece_floor(fit['ece'], fit['ece_if_calibrated'])}")
    if fit["nll"] > fit["nll_before"]:
        err_console.print("warning: out of fold, the renderer's own calibration raised the NLL: these images do "
                          "not ask for one (or too few of them were reviewed); the model keeps it all the same")
    console.print(f"reliability: {fit['reliability_png']}\nmodel: {out}")


@app.command("ensemble")
def ensemble(
    member: list[Path] = typer.Option(..., "--member", help="A trained inspector folder; repeat for each member "
                                      "(the same architecture, e.g. one recipe trained with other seeds)"),
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder whose train/val splits fit the calibration; "
                                    "repeatable: several folders are one dataset, as in training"),
    splits: str = typer.Option("same", "--splits", help=_SPLITS_HELP),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Model folder to write (the ensemble)"),
    target_accept: float = typer.Option(0.99, "--target-accept", help=_ACCEPT_HELP),
    target_reject: float = typer.Option(TARGET_REJECT, "--target-reject", help=_REJECT_HELP),
    ood_quantile: float = typer.Option(0.99, "--ood-quantile", help=_OOD_HELP),
    decision_groups: str | None = typer.Option(None, "--decision-groups", help=_GROUPS_HELP),
    decision_min_group: int | None = typer.Option(None, "--decision-min-group", help=_MIN_GROUP_HELP),
    real_bias: bool = typer.Option(False, "--real-bias/--no-real-bias", help=_REAL_BIAS_HELP),
    ood_style: str | None = typer.Option(None, "--ood-style", help=_OOD_STYLE_HELP + " (default: the members')"),
    cache: bool = typer.Option(True, "--cache/--no-cache"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Average trained inspectors' calibrated probabilities (a seed ensemble: the trunk runs once, the trainable
    parts once per member), then fit its temperature, OOD model and decision on the data's validation split."""
    from adcreative.inspect.evaluate import ensemble_folder

    _threads(threads)
    _check_targets(target_accept, target_reject, ood_quantile)
    if len(member) < 2:
        raise InputError(f"an ensemble needs at least 2 --member folders, got {len(member)}")
    if ood_style is not None and ood_style not in ("none", "scene"):
        raise InputError(f"--ood-style: choose none or scene, got {ood_style!r}")
    cal = ensemble_folder(member, data, out, splits=splits, target_accept=target_accept, target_reject=target_reject,
                          ood_quantile=ood_quantile, cache=cache, real_bias=real_bias, ood_style=ood_style,
                          **_decision_groups(decision_groups, decision_min_group))
    _print_calibration(cal, out, head=f"{len(member)} members; ")


@app.command("run")
def run(
    ctx: typer.Context,
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    product: str | None = typer.Option(None, "--product", help="Only this product's creatives"),
    run_id: str | None = typer.Option(None, "--run", help="Only creatives of this generation run"),
    rescore: bool = typer.Option(False, "--rescore", help="Also creatives that already have a verdict"),
    batch_size: int = typer.Option(64, "--batch-size"),
    onnx: bool = typer.Option(False, "--onnx", help="Score with the ONNX export (onnxruntime)"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Score creatives in the store in batches and write a verdict (with its accept / human / reject band)
    for each."""
    from adcreative.pipelines.scoring import score_store

    _threads(threads)
    mid, counts, bands = score_store(store_from(ctx, must_exist=True), model=model, product=product, run_id=run_id,
                                     rescore=rescore, batch_size=batch_size, onnx=onnx)
    if not counts:
        console.print("nothing to score")
        return
    console.print(f"scored {sum(counts.values())} creatives with {mid}: "
                  + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    console.print("decision: " + ", ".join(f"{b}={bands.get(b, 0)}" for b in BANDS)
                  + ("  (human band first in `adcreative console`)" if bands.get("human") else ""))


@app.command("sources")
def sources(
    ctx: typer.Context,
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    product: str | None = typer.Option(None, "--product", help="Only this product"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Judge each product's catalogue cutout alone (on a plain canvas): a product the auditor already calls
    unsuitable there will have its creatives called unsuitable whatever the scene — check its catalogue image."""
    from adcreative.core.errors import InputError
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.sources import FLAG_UNSUITABLE, judge_sources

    _threads(threads)
    store = store_from(ctx, must_exist=True)
    products = [store.get_product(product)] if product is not None else list(store.products())
    if not products:
        raise InputError("the catalogue is empty: add products first (adcreative products add / sample)")
    verdicts = judge_sources(load_inspector(model), products)
    console.print(f"{'product':<24}{'P(unsuitable)':>14}{'P(available)':>14}  verdict")
    for v in verdicts:
        note = "FLAGGED: the cutout itself looks damaged to the auditor" if v.flagged else "ok"
        console.print(f"{v.product_id:<24}{v.probs['unsuitable']:>14.3f}{v.probs['available']:>14.3f}  {note}")
    flagged = sum(v.flagged for v in verdicts)
    console.print(f"{flagged} of {len(verdicts)} flagged (P(unsuitable) ≥ {FLAG_UNSUITABLE} on the cutout alone)")


@app.command("fit-prop-finder")
def fit_prop_finder(
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder from 'dataset synth' (its renderers "
                                    "record the props they drew); repeatable"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Folder to write the finder to"),
    renderers: str | None = typer.Option(None, "--renderers", help="Only images of these renderer families "
                                         "(comma-separated; default: all)"),
    splits: str = typer.Option("train,val,test", "--splits", help="Only images of these splits (comma-separated)"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    rounds: int = typer.Option(300, "--rounds", min=1, max=5000, help="Boosting rounds"),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Processes finding candidates"),
) -> None:
    """Fit the prop finder cue set 6 reads (inspect.prop_finder) on the prop boxes a synthetic set records: every
    candidate region of its images, labelled by whether it is a prop the renderer drew. Set 6 itself reads the
    finder that ships with the package; a finder fitted here is for a new cue set or an experiment."""
    import math

    import numpy as np

    from adcreative.inspect.data import renderer_family
    from adcreative.inspect.datasets.formats import read_dataset
    from adcreative.inspect.prop_finder import (
        candidate_table,
        fit_prop_finder,
        precision_recall,
        recorded_props,
    )

    want_splits = {x.strip() for x in splits.split(",") if x.strip()}
    bad = sorted(want_splits - {"train", "val", "test"})
    if bad or not want_splits:
        raise InputError(f"--splits takes train, val and test, not {', '.join(map(repr, bad)) or 'nothing'}")
    want_fams = {x.strip() for x in renderers.split(",") if x.strip()} if renderers is not None else None
    samples = []
    for d in data:
        samples += [s for s in read_dataset(d) if s.split in want_splits
                    and (want_fams is None or renderer_family(s) in want_fams)]
    if not samples:
        raise InputError("no images of those splits and renderers in the --data folders")
    unrecorded = sum(recorded_props(s) is None for s in samples)
    if unrecorded:
        raise InputError(f"{unrecorded} of {len(samples)} images record no props (params.geometry.props): fit on "
                         "sets made by 'dataset synth'")
    console.print(f"{len(samples)} images; finding candidates with {workers} worker(s)")
    table = candidate_table(samples, workers=workers, log=console.print)
    feats, labels = table["features"], table["labels"]
    finder = fit_prop_finder(feats, labels, seed=seed, max_iter=rounds)
    found = finder.find(feats)
    fams = np.array([renderer_family(s) for s in samples])[table["row"]]
    per_family = {}
    for f in sorted(set(fams)):
        k = fams == f
        prec, rec = precision_recall(found[k], labels[k])
        per_family[f] = {"candidates": int(k.sum()), "props": int(labels[k].sum()),
                         "precision": None if math.isnan(prec) else prec, "recall": None if math.isnan(rec) else rec}
        console.print(f"  {f:12s} {int(k.sum()):6d} candidates, {int(labels[k].sum()):5d} props: in-sample "
                      f"precision {prec:.2f}, recall {rec:.2f}")
    finder.save_pretrained(out, extra={"data": [str(d) for d in data], "renderers": sorted(want_fams or []) or "all",
                                       "splits": sorted(want_splits), "images": len(samples),
                                       "candidates": len(labels), "props": int(labels.sum()),
                                       "in_sample": per_family})
    console.print(f"prop finder: {out} ({finder.n_trees} trees, depth {finder.max_depth})")


@app.command("export")
def export(
    model: Path | None = typer.Option(None, "--model", help=_MODEL_HELP),
    out: Path | None = typer.Option(None, "--out", file_okay=False,
                                    help="Folder for model.onnx (default: the model folder)"),
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
        from rich.markup import escape

        err_console.print(f"[yellow]warning:[/] {escape(str(d / 'model.safetensors'))} is missing", markup=True)
