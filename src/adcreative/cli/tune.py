"""CLI of the tune stage: ``adcreative tune rfft`` (diffusers ControlNet) and ``adcreative tune compositor``.

Nothing heavy at import: torch, diffusers and RFNet load inside the commands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from adcreative.cli.common import SEED_MAX, THREADS_MAX, console, parse_list
from adcreative.core.errors import InputError

app = typer.Typer(help="Feedback fine-tuning (RFFT): raise RFNet's P(available) of generated creatives.",
                  no_args_is_help=True)

_PRODUCTS_HELP = "Folder of product cutouts (see 'products add'), or 'sample' for the built-in catalogue"


def load_products(products: str, meta: Path | None) -> list[Any]:
    from adcreative.catalogue.importer import read_catalogue_folder
    from adcreative.catalogue.sample import sample_catalogue

    if not products.strip():  # Path("") would be the current folder
        raise InputError("--products: an empty source; give a cutout folder or 'sample'")
    return sample_catalogue() if products == "sample" else read_catalogue_folder(Path(products), meta)


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


@app.command("rfft")
def rfft(
    gen_config: str = typer.Option(..., "--gen-config", help="The diffusers-inpaint generator config to tune "
                                   "for (JSON object or .json file, as for 'generate --gen-config'): base, "
                                   "controlnet, steps, controlnet_scale… are read from it"),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Run folder: checkpoints, validation/, logs, controlnet/, "
                                  "generator.json, rfft.json"),
    products: str = typer.Option("sample", "--products", help=_PRODUCTS_HELP),
    meta: Path | None = typer.Option(None, "--meta", help="CSV/JSON of titles and categories for --products"),
    rfnet: Path | None = typer.Option(None, "--rfnet", help="RFNet folder (default: the one shipped)"),
    grad_window: int = typer.Option(5, "--grad-window", help="The graded step is drawn from the last N steps"),
    beta: float = typer.Option(1.0, "--beta", help="Weight of the consistent-condition loss"),
    cc_weighting: str = typer.Option("score", "--cc-weighting",
                                     help="score: the paper's (ε difference × 1/(1−ᾱ_t)) | epsilon"),
    lr: float = typer.Option(1e-5, "--lr", min=0.0),
    lr_schedule: str = typer.Option("constant", "--lr-schedule", help="constant | linear | cosine (after warm-up)"),
    lr_warmup_steps: int = typer.Option(50, "--lr-warmup-steps"),
    weight_decay: float = typer.Option(1e-2, "--weight-decay", min=0.0),
    grad_accum: int = typer.Option(4, "--grad-accum", help="Micro-batches per optimizer step"),
    batch_size: int = typer.Option(1, "--batch-size", help="Examples per micro-batch and process"),
    max_steps: int = typer.Option(500, "--max-steps", help="Optimizer steps in total (a resumed run counts on)"),
    ema_decay: float = typer.Option(0.0, "--ema-decay", help="EMA of the ControlNet weights (0 = off)"),
    checkpoint_every: int = typer.Option(50, "--checkpoint-every"),
    validate_every: int = typer.Option(100, "--validate-every", help="Validation grid every N steps (0 = off)"),
    val_products: int = typer.Option(4, "--val-products"),
    val_seeds: int = typer.Option(4, "--val-seeds"),
    aspects: str = typer.Option("1:1", "--aspects"),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="no | fp16 (with a gradient scaler) | bf16"),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    tensorboard: bool = typer.Option(True, "--tensorboard/--no-tensorboard", help="Log to OUT/rfft (TensorBoard)"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the latest checkpoint in --out"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Fine-tune the generator's ControlNet with RFNet's feedback; then generate with OUT/generator.json."""
    from adcreative.generate.diffusers_inpaint import NAME as DIFFUSERS_NAME
    from adcreative.generate.provenance import parse_generator_config
    from adcreative.inspect.preprocess import generator_family
    from adcreative.tune.reward import load_rfnet_reward
    from adcreative.tune.rfft import RFFTTrainer

    _threads(threads)
    prods = load_products(products, meta)
    trainer = RFFTTrainer(
        generator=parse_generator_config(gen_config), grad_window=grad_window, beta=beta, cc_weighting=cc_weighting,
        lr=lr, lr_schedule=lr_schedule, lr_warmup_steps=lr_warmup_steps, weight_decay=weight_decay,
        grad_accum=grad_accum, batch_size=batch_size, max_steps=max_steps, ema_decay=ema_decay,
        checkpoint_every=checkpoint_every, validate_every=validate_every, val_products=val_products,
        val_seeds=val_seeds, aspects=parse_list(aspects), mixed_precision=mixed_precision,
        gradient_checkpointing=gradient_checkpointing, tensorboard=tensorboard, seed=seed)
    # the tuned generator's images are judged as RFNet judges its renderer's (that renderer's own temperature)
    reward = load_rfnet_reward(str(rfnet) if rfnet else None, renderer=generator_family(DIFFUSERS_NAME))
    res = trainer.train(prods, reward, out, resume=resume)
    h, v = res.history, res.validation
    if not res.main_process:
        return
    if h:
        console.print(f"steps {res.resumed_from}→{res.steps}: CE {h[0]['ce']:.4f}→{h[-1]['ce']:.4f}  "
                      f"P(available) {h[0]['p_available']:.3f}→{h[-1]['p_available']:.3f}  "
                      f"consistent-condition {h[-1]['cc']:.5f}")
    if len(v) > 1 and v[0] and v[-1]:
        console.print(f"validation: available rate {v[0]['available_rate']:.1%}→{v[-1]['available_rate']:.1%}  "
                      f"diversity {v[0]['diversity']:.3f}→{v[-1]['diversity']:.3f}")
    console.print(f"tuned ControlNet: {res.controlnet}  (generate with --gen-config {out / 'generator.json'})")


@app.command("compositor")
def compositor(
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Folder for the tuned policy (config.json + model.safetensors)"),
    products: str = typer.Option("sample", "--products", help=_PRODUCTS_HELP),
    meta: Path | None = typer.Option(None, "--meta"),
    rfnet: Path | None = typer.Option(None, "--rfnet", help="RFNet folder (default: the one shipped)"),
    start: Path | None = typer.Option(None, "--policy", help="Start from this policy (default: the untuned one)"),
    iterations: int = typer.Option(60, "--iterations"),
    products_per_iter: int = typer.Option(4, "--products-per-iter"),
    samples_per_product: int = typer.Option(6, "--samples-per-product"),
    lr: float = typer.Option(0.05, "--lr", min=0.0),
    kl_weight: float = typer.Option(0.05, "--kl", help="Weight of KL(tuned ‖ original)"),
    diversity_weight: float = typer.Option(1.5, "--diversity", help="Weight of the background-diversity reward"),
    threshold: float = typer.Option(0.5, "--threshold", help="P(available) that counts as available"),
    aspects: str = typer.Option("1:1", "--aspects"),
    scale: float = typer.Option(0.5, "--scale", min=0.1, max=4.0, help="Canvas scale while tuning (0.5 → 256 px short side)"),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    threads: int | None = typer.Option(None, "--threads", min=1, max=THREADS_MAX),
) -> None:
    """Tune the compositor's sampling policy by policy gradient on RFNet's P(available)."""
    from adcreative.generate.compositor.policy import CompositorPolicy
    from adcreative.inspect.base import load_inspector
    from adcreative.tune.compositor_policy import CompositorTuner

    _threads(threads)
    prods = load_products(products, meta)
    tuner = CompositorTuner(iterations=iterations, products_per_iter=products_per_iter,
                            samples_per_product=samples_per_product, lr=lr, kl_weight=kl_weight,
                            diversity_weight=diversity_weight, threshold=threshold, aspects=parse_list(aspects),
                            scale=scale, seed=seed)
    inspector = load_inspector(str(rfnet) if rfnet else None)
    res = tuner.train(prods, inspector, out, start=CompositorPolicy.from_pretrained(start) if start else None)
    h = res.history
    # iterations visit products round robin: compare windows that cover every product equally often
    n_p = len(prods)
    w = max(1, min(len(h) // 2, n_p // math.gcd(n_p, min(products_per_iter, n_p))))

    def avg(key: str, part: list[dict[str, float]]) -> float:
        return sum(r[key] for r in part) / len(part)

    first, last = h[:w], h[-w:]
    console.print(f"iterations {len(h)} (first/last {w}): mean P(available) {avg('p_available', first):.3f}→"
                  f"{avg('p_available', last):.3f}  available rate {avg('available_rate', first):.1%}→"
                  f"{avg('available_rate', last):.1%}  diversity {avg('diversity', first):.3f}→"
                  f"{avg('diversity', last):.3f}  KL to original {h[-1]['kl']:.3f}")
    console.print(f"tuned policy: {out}  (use: adcreative generate --generator compositor --policy {out})")
