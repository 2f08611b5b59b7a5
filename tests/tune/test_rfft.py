"""RFFT on tiny random SD + ControlNet folders and a tiny conv reward model (CPU, seconds)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

pytest.importorskip("diffusers")

from adcreative.core.errors import InputError  # noqa: E402
from adcreative.core.types import CLASSES, Product  # noqa: E402
from adcreative.generate.diffusers_tiny import build_tiny_sd_folders  # noqa: E402
from adcreative.tune.rfft import RFFTTrainer, latest_checkpoint  # noqa: E402


class TinyReward(torch.nn.Module):
    """A small conv classifier over the six RF1M classes; it also reads the placement mask (an auxiliary)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, len(CLASSES)))
        with torch.no_grad():  # a decisive auditor: its logits move with the background it sees
            self.net[-1].weight.mul_(30.0)

    def auxiliaries(self, product: Product, placement: object) -> dict[str, torch.Tensor]:
        m = np.asarray(placement.paste_mask, np.float32) / 255.0  # type: ignore[attr-defined]
        return {"mask": torch.from_numpy(m)[None]}

    def forward(self, images: torch.Tensor, aux: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(torch.cat([images, aux["mask"]], 1))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    return build_tiny_sd_folders(tmp_path_factory.mktemp("sd"))


def product(pid: str = "p1", colour: tuple[int, int, int] = (200, 30, 40)) -> Product:
    im = Image.new("RGBA", (96, 160), (0, 0, 0, 0))
    ImageDraw.Draw(im).rounded_rectangle((10, 10, 86, 150), radius=12, fill=(*colour, 255))
    return Product(id=pid, title="Sparkling water", category="beverage", image=im)


def trainer(tiny: tuple[Path, Path], **kw: object) -> RFFTTrainer:
    cfg: dict[str, object] = dict(sample_steps=3, grad_window=2, guidance=3.0, lr=1e-3, grad_accum=2, batch_size=1,
                                  max_steps=4, checkpoint_every=2, canvas_scale=0.0625, size_multiple=16,
                                  device="cpu", beta=0.5, seed=0)
    cfg.update(kw)
    return RFFTTrainer(base=str(tiny[0]), controlnet=str(tiny[1]), **cfg)  # type: ignore[arg-type]


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradients_reach_the_controlnet_only(tiny_sd: tuple[Path, Path], checkpointing: bool) -> None:
    tr = trainer(tiny_sd, gradient_checkpointing=checkpointing)
    reward = TinyReward().requires_grad_(False)
    loss, m = tr.loss(reward, [product()], step=0, micro=0)
    assert loss.requires_grad and np.isfinite(m["loss"]) and 0 <= m["p_available"] <= 1
    loss.backward()
    grads = [p.grad for p in tr.trainable_parameters()]
    assert all(g is not None for g in grads), "every ControlNet parameter is in the graph"
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    for name, mod in tr.frozen_modules().items():
        assert all(p.grad is None and not p.requires_grad for p in mod.parameters()), name
    assert all(p.grad is None for p in reward.parameters())


def test_loss_falls_and_resume_continues(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    # a fixed example (seed_pool=1, the last step only) isolates the optimisation from sampling noise
    kw = dict(seed_pool=1, grad_window=1, beta=0.5, lr=2e-3)
    full = trainer(tiny_sd, max_steps=4, **kw).train([product()], TinyReward(), tmp_path / "full", progress=False)
    ce = [h["ce"] for h in full.history]
    assert len(ce) == 4 and all(b < a for a, b in itertools.pairwise(ce)), ce
    assert full.history[-1]["p_available"] > full.history[0]["p_available"]
    assert full.history[0]["cc"] == pytest.approx(0.0, abs=1e-10)  # tuned == reference before any step
    assert full.history[-1]["cc"] > 0  # …and the regulariser sees the drift afterwards
    # the tuned ControlNet is a diffusers folder the generator loads
    from adcreative.generate.diffusers_inpaint import check_controlnet_folder

    check_controlnet_folder(full.controlnet)
    summary = json.loads((tmp_path / "full" / "rfft.json").read_text())
    assert summary["steps"] == 4 and (tmp_path / "full" / "rfft_curve.png").exists()

    # interrupted after 2 steps, then resumed to 4: same weights as the uninterrupted run
    part = trainer(tiny_sd, max_steps=2, **kw).train([product()], TinyReward(), tmp_path / "part", progress=False)
    ck = latest_checkpoint(tmp_path / "part")
    assert ck is not None and ck.name.endswith("0000002")
    assert json.loads((ck / "state.json").read_text())["step"] == 2
    assert not list(ck.rglob("*.bin")) and not list(ck.rglob("*.pt")), "no pickles in checkpoints"
    resumed = trainer(tiny_sd, max_steps=4, **kw).train([product()], TinyReward(), tmp_path / "part",
                                                        progress=False)
    assert part.steps == 2 and resumed.resumed_from == 2 and resumed.steps == 4 and len(resumed.history) == 4
    from safetensors.torch import load_file

    a = load_file(str(next(full.controlnet.glob("*.safetensors"))))
    b = load_file(str(next(resumed.controlnet.glob("*.safetensors"))))
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_beta_zero_and_positive_run(tiny_sd: tuple[Path, Path], tmp_path: Path, beta: float) -> None:
    res = trainer(tiny_sd, beta=beta, max_steps=2, grad_accum=1, batch_size=2, aspects=["1:1", "16:9"]).train(
        [product(), product("p2", (20, 160, 60))], TinyReward(), tmp_path, progress=False)
    assert res.steps == 2 and all(np.isfinite(h["loss"]) for h in res.history)
    if beta == 0:
        assert all(h["cc"] == 0 for h in res.history)
    else:
        assert all(h["loss"] >= h["ce"] for h in res.history)


def test_four_channel_unet_and_bad_config(tmp_path: Path) -> None:
    tiny = build_tiny_sd_folders(tmp_path / "sd4", in_channels=4)
    tr = trainer(tiny, max_steps=1, grad_accum=1)
    loss, _ = tr.loss(TinyReward(), [product()], 0, 0)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tr.trainable_parameters())
    with pytest.raises(InputError, match="grad_window"):
        trainer(tiny, grad_window=9)
    with pytest.raises(InputError, match="ControlNet folder does not exist"):
        RFFTTrainer(base=str(tiny[0]), controlnet=str(tmp_path / "missing"))


@pytest.fixture(scope="module")
def tiny_rfnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("rfnet")
    RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=True).save_pretrained(d)
    return d


def test_cli_tune_rfft_with_rfnet_and_local_weights(tiny_sd: tuple[Path, Path], tiny_rfnet_dir: Path,
                                                   tmp_path: Path) -> None:
    from adcreative.catalogue.sample import save_catalogue
    from adcreative.cli import main

    cat = save_catalogue([product(), product("p2", (20, 160, 60))], tmp_path / "catalogue")
    out = tmp_path / "run"
    argv = ["tune", "rfft", "--base", str(tiny_sd[0]), "--controlnet", str(tiny_sd[1]), "--rfnet",
            str(tiny_rfnet_dir), "--products", str(cat), "--out", str(out), "--max-steps", "1", "--sample-steps", "2",
            "--grad-window", "1", "--grad-accum", "1", "--batch-size", "2", "--canvas-scale", "0.0625",
            "--size-multiple", "16", "--device", "cpu", "--lr", "1e-4"]
    assert main(argv) == 0
    assert (out / "controlnet" / "config.json").exists() and latest_checkpoint(out) is not None
    # the tuned ControlNet plugs into the generator unchanged
    from adcreative.generate.base import create_generator

    gen = create_generator("diffusers-inpaint", base=str(tiny_sd[0]), controlnet=str(out / "controlnet"), steps=2,
                           canvas_scale=0.125, size_multiple=16, device="cpu")
    assert gen(product(), seed=0)[0].image.size == (64, 64)
    # …and into recurrent generation and bit-for-bit regeneration, through the generate command
    home = ["--home", str(tmp_path / "home")]
    assert main([*home, "products", "add", str(cat)]) == 0
    cfg = json.dumps(dict(gen.config))
    assert main([*home, "generate", "--product", "p1", "--generator", "diffusers-inpaint", "--gen-config", cfg,
                 "--until-available", "1", "--max-attempts", "2", "--threshold", "1e-6",
                 "--inspector", str(tiny_rfnet_dir)]) == 0
    from adcreative.core.store import Store

    made = Store(home=tmp_path / "home").creatives(product_id="p1")
    assert made and made[0].generator == "diffusers-inpaint"
    assert main([*home, "creatives", "regenerate", made[0].id]) == 0
    assert main([*home, "generate", "--product", "p1", "--generator", "diffusers-inpaint", "--gen-config",
                 "{not json"]) == 2
    # a missing weights folder is a clear error (exit code 2), named
    bad = [*argv[:5], str(tmp_path / "no-controlnet"), *argv[6:]]
    assert main(bad) == 2
