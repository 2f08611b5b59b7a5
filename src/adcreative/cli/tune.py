"""CLI of the tune stage: ``adcreative tune rfft`` (diffusers ControlNet) and ``adcreative tune compositor``.

Nothing heavy at import: torch, diffusers and RFNet load inside the commands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from adcreative.cli.common import console, parse_list

app = typer.Typer(help="Feedback fine-tuning (RFFT): raise RFNet's P(available) of generated creatives.",
                  no_args_is_help=True)

_PRODUCTS_HELP = "Folder of product cutouts (see 'products add'), or 'sample' for the built-in catalogue"


def load_products(products: str, meta: Path | None) -> list[Any]:
    from adcreative.catalogue.importer import read_catalogue_folder
    from adcreative.catalogue.sample import sample_catalogue

    return sample_catalogue() if products == "sample" else read_catalogue_folder(Path(products), meta)


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


@app.command("rfft")
def rfft(
    base: Path = typer.Option(..., "--base", help="Local diffusers SD 1.5 (inpainting) folder"),
    controlnet: Path = typer.Option(..., "--controlnet", help="Local diffusers canny ControlNet folder"),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, final controlnet/, rfft.json"),
    products: str = typer.Option("sample", "--products", help=_PRODUCTS_HELP),
    meta: Path | None = typer.Option(None, "--meta", help="CSV/JSON of titles and categories for --products"),
    rfnet: Path | None = typer.Option(None, "--rfnet", help="RFNet folder (default: the one shipped)"),
    lora: Path | None = typer.Option(None, "--lora", help="Local LoRA .safetensors (file or folder)"),
    sample_steps: int = typer.Option(20, "--sample-steps", help="DDIM steps per sampled creative"),
    grad_window: int = typer.Option(5, "--grad-window", help="The graded step is drawn from the last N steps"),
    guidance: float = typer.Option(7.5, "--guidance"),
    controlnet_scale: float = typer.Option(1.0, "--controlnet-scale"),
    beta: float = typer.Option(1.0, "--beta", help="Weight of the consistent-condition loss"),
    lr: float = typer.Option(1e-5, "--lr"),
    weight_decay: float = typer.Option(1e-2, "--weight-decay"),
    grad_accum: int = typer.Option(4, "--grad-accum"),
    batch_size: int = typer.Option(1, "--batch-size"),
    max_steps: int = typer.Option(500, "--max-steps", help="Optimizer steps in total (a resumed run counts on)"),
    checkpoint_every: int = typer.Option(50, "--checkpoint-every"),
    aspects: str = typer.Option("1:1", "--aspects"),
    canvas_scale: float = typer.Option(1.0, "--canvas-scale", help="1.0 → 512 px short side"),
    size_multiple: int = typer.Option(64, "--size-multiple"),
    prompts: Path | None = typer.Option(None, "--prompts", help="JD-format prompts.json (default: JD's presets)"),
    mixed_precision: str = typer.Option("no", "--mixed-precision", help="no | fp16 | bf16 (CUDA only)"),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    device: str | None = typer.Option(None, "--device", help="cuda | cpu (default: cuda when present)"),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the latest checkpoint in --out"),
    threads: int | None = typer.Option(None, "--threads"),
) -> None:
    """Fine-tune the ControlNet with RFNet's feedback; the result is OUT/controlnet for --controlnet."""
    from adcreative.tune.reward import load_rfnet_reward
    from adcreative.tune.rfft import RFFTTrainer

    _threads(threads)
    prods = load_products(products, meta)
    trainer = RFFTTrainer(
        base=str(base), controlnet=str(controlnet), lora=str(lora) if lora else None, sample_steps=sample_steps,
        grad_window=grad_window, guidance=guidance, controlnet_scale=controlnet_scale, beta=beta, lr=lr,
        weight_decay=weight_decay, grad_accum=grad_accum, batch_size=batch_size, max_steps=max_steps,
        checkpoint_every=checkpoint_every, aspects=parse_list(aspects), canvas_scale=canvas_scale,
        size_multiple=size_multiple, prompts=str(prompts) if prompts else None, mixed_precision=mixed_precision,
        gradient_checkpointing=gradient_checkpointing, device=device, seed=seed)
    reward = load_rfnet_reward(str(rfnet) if rfnet else None).to(trainer.gen.device)
    res = trainer.train(prods, reward, out, resume=resume)
    h = res.history
    if h:
        console.print(f"steps {res.resumed_from}→{res.steps}: CE {h[0]['ce']:.4f}→{h[-1]['ce']:.4f}  "
                      f"P(available) {h[0]['p_available']:.3f}→{h[-1]['p_available']:.3f}  "
                      f"consistent-condition {h[-1]['cc']:.5f}")
    console.print(f"tuned ControlNet: {res.controlnet}")


@app.command("compositor")
def compositor(
    out: Path = typer.Option(..., "--out", help="Folder for the tuned policy (config.json + model.safetensors)"),
    products: str = typer.Option("sample", "--products", help=_PRODUCTS_HELP),
    meta: Path | None = typer.Option(None, "--meta"),
    rfnet: Path | None = typer.Option(None, "--rfnet", help="RFNet folder (default: the one shipped)"),
    start: Path | None = typer.Option(None, "--policy", help="Start from this policy (default: the untuned one)"),
    iterations: int = typer.Option(60, "--iterations"),
    products_per_iter: int = typer.Option(4, "--products-per-iter"),
    samples_per_product: int = typer.Option(6, "--samples-per-product"),
    lr: float = typer.Option(0.05, "--lr"),
    kl_weight: float = typer.Option(0.05, "--kl", help="Weight of KL(tuned ‖ original)"),
    diversity_weight: float = typer.Option(1.5, "--diversity", help="Weight of the background-diversity reward"),
    threshold: float = typer.Option(0.5, "--threshold", help="P(available) that counts as available"),
    aspects: str = typer.Option("1:1", "--aspects"),
    scale: float = typer.Option(0.5, "--scale", help="Canvas scale while tuning (0.5 → 256 px short side)"),
    seed: int = typer.Option(0, "--seed"),
    threads: int | None = typer.Option(None, "--threads"),
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
