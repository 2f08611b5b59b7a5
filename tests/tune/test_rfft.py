"""RFFT on tiny random SD + ControlNet folders and a tiny conv reward model (CPU, seconds)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

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

    def __init__(self, available_bias: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, len(CLASSES)))
        with torch.no_grad():  # a decisive auditor: its logits move with the background it sees
            self.net[-1].weight.mul_(30.0)
            self.net[-1].bias[0] += available_bias

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


def gen_config(tiny: tuple[Path, Path], **kw: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"base": str(tiny[0]), "controlnet": str(tiny[1]), "steps": 3, "guidance": 3.0,
                           "canvas_scale": 0.0625, "device": "cpu", "batch_size": 1}
    cfg.update(kw)
    return cfg


def trainer(tiny: tuple[Path, Path], gen: dict[str, Any] | None = None, **kw: object) -> RFFTTrainer:
    cfg: dict[str, object] = dict(grad_window=2, lr=1e-3, lr_warmup_steps=0, grad_accum=2, batch_size=1,
                                  max_steps=4, checkpoint_every=2, beta=0.5, seed=0, validate_every=0,
                                  tensorboard=False)
    cfg.update(kw)
    return RFFTTrainer(generator=gen or gen_config(tiny), **cfg)  # type: ignore[arg-type]


# -- one source of truth: RFFT samples what the generator makes ---------------------------------------------
@pytest.mark.parametrize("channels", [9, 4])
def test_sampler_reproduces_the_generator(tiny_sd: tuple[Path, Path], tmp_path: Path, channels: int) -> None:
    """RFFT's sampling loop and the real diffusers pipeline, called by the generator with the same config and
    seed, give the same latents (and the same creative), for an inpainting UNet and a plain one."""
    tiny = tiny_sd if channels == 9 else build_tiny_sd_folders(tmp_path / "sd4", in_channels=4)
    tr = trainer(tiny, gen_config(tiny, steps=4, canvas_scale=0.125, batch_size=2))
    prod = product()
    for aspect, seeds in (("1:1", [6, 7]), ("16:9", [4, 5])):  # 16:9 here: 64×36 canvas, 64×40 work size
        exs = [tr.example(prod, s, aspect) for s in seeds]
        c = tr.condition(exs)
        ours = tr.sample(c, tr.controlnet, len(c.timesteps))
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        theirs = tr.gen.pipeline(**tr.gen.pipeline_inputs([e.placement for e in exs], [e.params for e in exs]),
                                 generator=gens, output_type="latent").images
        diff = float((ours - theirs).abs().max())
        print(f"{channels}-channel UNet, {aspect}: max |latent difference| = {diff:.2e}")
        assert diff <= 1e-5
        made = tr.gen(prod, seed=seeds[0], aspect=aspect, n=len(seeds))
        rendered = (tr.render(exs) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for r, g in zip(rendered, made, strict=True):
            assert r.shape[:2] == (g.image.height, g.image.width)
            assert np.array_equal(r, np.asarray(g.image)), "training renders the creative the generator makes"


def test_rfft_takes_the_generators_settings(tiny_sd: tuple[Path, Path]) -> None:
    tr = trainer(tiny_sd, gen_config(tiny_sd, steps=5, controlnet_scale=0.7, guidance=4.0))
    assert tr.config["generator"]["controlnet_scale"] == 0.7 and tr.gen.config["steps"] == 5
    c = tr.condition([tr.example(product(), 0, "1:1")])
    assert len(c.timesteps) == 5
    with pytest.raises(InputError, match="DDIM"):
        trainer(tiny_sd, gen_config(tiny_sd, scheduler="euler"))
    with pytest.raises(InputError, match="guidance"):
        trainer(tiny_sd, gen_config(tiny_sd, guidance=1.0))
    with pytest.raises(InputError, match="grad_window"):
        trainer(tiny_sd, grad_window=9)


# -- gradients, memory, precision -------------------------------------------------------------------------
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
        assert not mod.training, f"{name} is frozen in eval mode"
    assert all(p.grad is None for p in reward.parameters())


def _saved_activations(tr: RFFTTrainer) -> tuple[int, int, list[float]]:
    """Tensors autograd keeps for the backward pass of one graded step (count, bytes), and the gradients."""
    count, nbytes, seen = 0, 0, set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal count, nbytes
        count += 1
        key = (t.untyped_storage().data_ptr(), t.dtype, tuple(t.shape))
        if key not in seen:
            seen.add(key)
            nbytes += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = tr.loss(TinyReward().requires_grad_(False), [product()], step=0, micro=0)
    loss.backward()
    return count, nbytes, [float(p.grad.abs().sum()) for p in tr.trainable_parameters() if p.grad is not None]


def test_gradient_checkpointing_lowers_saved_activations(tiny_sd: tuple[Path, Path]) -> None:
    """With the UNet and VAE frozen in eval mode (as RFFT runs them), checkpointing must still drop their
    activations (diffusers < 0.32 silently skipped it there), and the gradients must not change."""
    gen = gen_config(tiny_sd, canvas_scale=0.125)
    n0, b0, g0 = _saved_activations(trainer(tiny_sd, gen, beta=0.0))
    n1, b1, g1 = _saved_activations(trainer(tiny_sd, gen, beta=0.0, gradient_checkpointing=True))
    print(f"saved for backward: {n0} tensors / {b0 / 2**20:.2f} MiB without checkpointing, "
          f"{n1} / {b1 / 2**20:.2f} MiB with ({n1 / n0:.1%} of the tensors, {b1 / b0:.1%} of the bytes)")
    assert n1 < 0.5 * n0 and b1 < 0.6 * b0
    np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-9)


def test_fp16_scaler_keeps_gradients(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    """fp16 (frozen modules in half precision, ControlNet float32): with RFNet almost sure the creative is
    available the loss is ~1e-6 and its gradients underflow fp16 unless the loss is scaled, as training does."""
    reward = TinyReward(available_bias=10.0).requires_grad_(False)
    tr = trainer(tiny_sd, mixed_precision="fp16", beta=0.0, grad_window=1)
    loss, m = tr.loss(reward, [product()], step=0, micro=0)
    assert tr.unet.dtype == torch.float16 and tr.controlnet.dtype == torch.float32
    assert m["ce"] < 1e-3
    loss.backward()
    unscaled = [p.grad for p in tr.trainable_parameters()]
    zero_unscaled = sum(1 for g in unscaled if g is None or not bool(g.abs().sum() > 0))
    tr.controlnet.zero_grad(set_to_none=True)
    scaler = torch.amp.GradScaler("cpu")
    loss, _ = tr.loss(reward, [product()], step=0, micro=0)
    scaler.scale(loss).backward()
    opt = torch.optim.SGD(tr.trainable_parameters(), lr=0.0)
    scaler.unscale_(opt)
    scaled = [p.grad for p in tr.trainable_parameters()]
    zero_scaled = sum(1 for g in scaled if g is None or not bool(g.abs().sum() > 0))
    total = len(scaled)
    print(f"fp16: ControlNet tensors with an all-zero gradient: {zero_unscaled}/{total} unscaled, "
          f"{zero_scaled}/{total} with the gradient scaler")
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in scaled)
    assert zero_scaled == 0 and zero_unscaled > zero_scaled
    # and the training loop runs with it: finite steps, the scaler's state in the checkpoint
    res = trainer(tiny_sd, mixed_precision="fp16", max_steps=1, grad_accum=1).train(
        [product()], TinyReward(), tmp_path, progress=False)
    assert np.isfinite(res.history[0]["loss"])
    state = json.loads((latest_checkpoint(tmp_path) / "state.json").read_text())  # type: ignore[operator]
    assert state["scaler"]["scale"] > 1


@pytest.mark.parametrize("weighting", ["score", "epsilon"])
def test_consistent_condition_weighting(tiny_sd: tuple[Path, Path], weighting: str) -> None:
    """L_CC in the paper's score space is the ε-space distance × 1/(1−ᾱ_t), at the step that is graded."""
    tr = trainer(tiny_sd, beta=1.0, cc_weighting=weighting, grad_window=1, lr=0.0)
    reward = TinyReward().requires_grad_(False)
    opt = torch.optim.SGD(tr.trainable_parameters(), lr=0.05)
    loss, _ = tr.loss(reward, [product()], step=0, micro=0)  # cc = 0 before any update: tuned == reference
    loss.backward()
    opt.step()
    tr.controlnet.zero_grad()
    _, m = tr.loss(reward, [product()], step=0, micro=0)
    # the same step recomputed by hand, in ε space
    c = tr.condition(tr.examples([product()], 0, 0))
    k = len(c.timesteps) - 1
    x = tr.sample(c, tr.controlnet, k)
    t = c.timesteps[k]
    with torch.no_grad():
        eu, ec = tr.eps(tr.controlnet, x, t, c)
        ru, rc = tr.eps(tr.ref_controlnet, x, t, c)
    eps_space = float(((ec - eu) - (rc - ru)).pow(2).mean())
    a_t = float(tr.scheduler.alphas_cumprod[int(t)])
    want = eps_space / (1 - a_t) if weighting == "score" else eps_space
    assert m["cc"] > 0 and m["cc"] == pytest.approx(want, rel=1e-4)
    assert tr.cc_weight(t) == (pytest.approx(1 / (1 - a_t)) if weighting == "score" else 1.0)


def test_learning_rate_schedule(tiny_sd: tuple[Path, Path]) -> None:
    tr = trainer(tiny_sd, lr=1e-4, lr_warmup_steps=4, lr_schedule="cosine", max_steps=12)
    lrs = [tr.lr_at(s) for s in range(12)]
    assert lrs[:4] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4])
    assert all(b <= a for a, b in itertools.pairwise(lrs[4:])) and lrs[-1] < 0.1e-4
    assert trainer(tiny_sd, lr=1e-4, lr_warmup_steps=0).lr_at(100) == pytest.approx(1e-4)


# -- training, resuming, checkpoints -------------------------------------------------------------------------
def test_loss_falls_and_resume_continues(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    # a fixed example (seed_pool=1, the last step only) isolates the optimisation from sampling noise; in ε
    # space, since at this 3-step schedule's last step (t=1) the score weighting 1/(1−ᾱ_t) is ~600
    kw = dict(seed_pool=1, grad_window=1, beta=0.5, lr=2e-3, cc_weighting="epsilon")
    full = trainer(tiny_sd, max_steps=4, **kw).train([product()], TinyReward(), tmp_path / "full", progress=False)
    ce = [h["ce"] for h in full.history]
    assert len(ce) == 4 and all(b < a for a, b in itertools.pairwise(ce)), ce
    assert full.history[-1]["p_available"] > full.history[0]["p_available"]
    assert full.history[0]["cc"] == pytest.approx(0.0, abs=1e-10)  # tuned == reference before any step
    assert full.history[-1]["cc"] > 0  # …and the regulariser sees the drift afterwards
    # the tuned ControlNet is a diffusers folder the generator loads, with the config it was tuned with
    from adcreative.generate.diffusers_inpaint import TUNED_WITH, check_controlnet

    check_controlnet(full.controlnet)
    tuned_with = json.loads((full.controlnet / TUNED_WITH).read_text())
    assert tuned_with == json.loads((tmp_path / "full" / "generator.json").read_text())
    assert tuned_with["controlnet"] == str(full.controlnet.resolve()) and tuned_with["steps"] == 3
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
    # resuming with other sampling settings is refused: the run would mix two configurations
    with pytest.raises(InputError, match="controlnet_scale"):
        trainer(tiny_sd, gen_config(tiny_sd, controlnet_scale=0.5), max_steps=6, **kw).train(
            [product()], TinyReward(), tmp_path / "part", progress=False)


def test_checkpoints_are_replaced_only_once_the_new_one_is_complete(tiny_sd: tuple[Path, Path], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: a crash while a checkpoint or the final ControlNet goes in place never loses the previous one,
    and older checkpoints are pruned only after the new one is in place."""
    from adcreative.core import durable

    out = tmp_path / "run"
    kw: dict[str, object] = dict(grad_accum=1, checkpoint_every=1, keep_checkpoints=1)
    trainer(tiny_sd, max_steps=2, **kw).train([product()], TinyReward(), out, progress=False)
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-0000002"]
    before = (out / "controlnet" / "diffusion_pytorch_model.safetensors").read_bytes()
    real_install = durable._install

    def crash_swapping(name: str) -> Any:
        def install(tmp: Path, target: Path) -> None:
            if target.name == name:  # the new folder is complete on disk: the moment of the crash
                raise KeyboardInterrupt("crash")
            real_install(tmp, target)
        return install

    # a crash as checkpoint 3 goes in place: checkpoint 2 is still there and is the one resumed from
    monkeypatch.setattr(durable, "_install", crash_swapping("checkpoint-0000003"))
    with pytest.raises(KeyboardInterrupt):
        trainer(tiny_sd, max_steps=3, **kw).train([product()], TinyReward(), out, progress=False)
    assert latest_checkpoint(out) == out / "checkpoint-0000002"
    assert json.loads((out / "checkpoint-0000002" / "state.json").read_text())["step"] == 2
    assert (out / "controlnet" / "diffusion_pytorch_model.safetensors").read_bytes() == before

    # a crash as the final ControlNet goes in place: the previous one is intact, checkpoint 3 is complete
    monkeypatch.setattr(durable, "_install", crash_swapping("controlnet"))
    with pytest.raises(KeyboardInterrupt):
        trainer(tiny_sd, max_steps=3, **kw).train([product()], TinyReward(), out, progress=False)
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-0000003"]
    assert (out / "controlnet" / "diffusion_pytorch_model.safetensors").read_bytes() == before
    monkeypatch.setattr(durable, "_install", real_install)
    res = trainer(tiny_sd, max_steps=3, **kw).train([product()], TinyReward(), out, progress=False)
    assert res.resumed_from == 3 and (out / "controlnet" / "diffusion_pytorch_model.safetensors").read_bytes() != before
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary folders left behind"


def test_ema_validation_and_tensorboard(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    prods = [product(), product("p2", (20, 160, 60))]
    res = trainer(tiny_sd, max_steps=2, grad_accum=1, ema_decay=0.9, validate_every=1, val_products=2,
                  val_seeds=2, tensorboard=True, lr=5e-3, lr_warmup_steps=1).train(
        prods, TinyReward(), tmp_path, progress=False)
    assert [v["step"] for v in res.validation] == [0, 1, 2]
    for v in res.validation:
        assert 0 <= v["available_rate"] <= 1 and 0 <= v["p_available"] <= 1 and 0 <= v["diversity"] <= 1
    assert res.validation[0]["diversity"] > 0, "different seeds give different backgrounds"
    grid = Image.open(tmp_path / "validation" / "step-0000002.png")
    assert grid.size == (2 * 32, 2 * 32)  # products × seeds at the 32 px canvas
    assert [h["lr"] for h in res.history] == pytest.approx([5e-3, 5e-3])
    assert list((tmp_path / "rfft").rglob("events.out.tfevents.*")), "TensorBoard event file"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(next((tmp_path / "rfft").rglob("events.out.tfevents.*")).parent)).Reload()
    assert {"train/ce", "val/available_rate", "val/diversity"} <= set(ev.Tags()["scalars"])
    assert "val/grid" in ev.Tags()["images"]
    # the final ControlNet holds the EMA weights, the checkpoint both
    from safetensors.torch import load_file

    ck = latest_checkpoint(tmp_path)
    assert ck is not None
    final = load_file(str(res.controlnet / "diffusion_pytorch_model.safetensors"))
    raw = load_file(str(ck / "controlnet" / "diffusion_pytorch_model.safetensors"))
    ema = load_file(str(ck / "ema.safetensors"))
    k = next(n for n in ema if n in raw)
    assert torch.equal(final[k], ema[k]) and not torch.equal(final[k], raw[k])


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
    with pytest.raises(InputError, match="ControlNet folder does not exist"):
        RFFTTrainer(generator=gen_config(tiny, controlnet=str(tmp_path / "missing")))
    for bad in ({"cc_weighting": "kl"}, {"lr_schedule": "step"}, {"mixed_precision": "int8"}, {"aspects": ["3:7"]}):
        with pytest.raises(InputError):
            trainer(tiny, **bad)


@pytest.mark.slow
def test_two_processes_train_data_parallel(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    """``torchrun``/``accelerate launch`` with 2 processes (DDP over gloo on CPU): each process draws its own
    examples, gradients are averaged, the main process alone validates and writes; resuming with another
    number of processes is refused (the example draws would differ)."""
    import subprocess
    import sys

    from tests.paths import REPO

    out = tmp_path / "run"
    args = ["tune", "rfft", "--gen-config", json.dumps(gen_config(tiny_sd, steps=2)), "--out", str(out),
            "--max-steps", "2", "--grad-window", "1", "--grad-accum", "2", "--lr", "1e-4", "--validate-every", "2",
            "--val-products", "1", "--val-seeds", "2", "--no-tensorboard", "--threads", "1", "--rfnet"]
    rfnet = tmp_path / "rfnet"
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=False).save_pretrained(rfnet)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "adcreative", *args, str(rfnet)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("tuned ControlNet") == 1, "only the main process reports"
    state = json.loads((out / "checkpoint-0000002" / "state.json").read_text())
    assert state["processes"] == 2 and [h["step"] for h in state["history"]] == [1, 2]
    assert [v["step"] for v in state["validation"]] == [0, 2] and (out / "controlnet" / "config.json").is_file()
    with pytest.raises(InputError, match="2 processes"):
        trainer(tiny_sd, gen_config(tiny_sd, steps=2), max_steps=3, grad_window=1).train(
            [product()], TinyReward(), out, progress=False)


# -- the command --------------------------------------------------------------------------------------------
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
    gen = json.dumps(gen_config(tiny_sd, steps=2))
    argv = ["tune", "rfft", "--gen-config", gen, "--rfnet", str(tiny_rfnet_dir), "--products", str(cat),
            "--out", str(out), "--max-steps", "1", "--grad-window", "1", "--grad-accum", "1", "--batch-size", "2",
            "--lr", "1e-4", "--validate-every", "1", "--val-products", "1", "--val-seeds", "2", "--no-tensorboard"]
    assert main(argv) == 0
    assert (out / "controlnet" / "config.json").exists() and latest_checkpoint(out) is not None
    assert (out / "validation" / "step-0000001.png").is_file()
    # the tuned ControlNet plugs into the generator unchanged, through the config RFFT saved
    from adcreative.generate.base import create_generator

    saved = json.loads((out / "generator.json").read_text())
    gen_obj = create_generator("diffusers-inpaint", **{**saved, "canvas_scale": 0.125})
    assert gen_obj(product(), seed=0)[0].image.size == (64, 64)
    with pytest.warns(UserWarning, match=r"tuned with controlnet_scale=1\.0.*uses controlnet_scale=0\.5"):
        create_generator("diffusers-inpaint", **{**saved, "controlnet_scale": 0.5})
    # …and into recurrent generation and bit-for-bit regeneration, through the generate command
    home = ["--home", str(tmp_path / "home")]
    assert main([*home, "products", "add", str(cat)]) == 0
    cfg = str(out / "generator.json")
    assert main([*home, "generate", "--product", "p1", "--generator", "diffusers-inpaint", "--gen-config", cfg,
                 "--until-available", "1", "--max-attempts", "2", "--threshold", "1e-6",
                 "--inspector", str(tiny_rfnet_dir)]) == 0
    from adcreative.core.store import Store

    made = Store(home=tmp_path / "home").creatives(product_id="p1")
    assert made and made[0].generator == "diffusers-inpaint"
    assert main([*home, "creatives", "regenerate", made[0].id]) == 0
    # a bad generator config and a missing weights folder are clear errors (exit code 2), named
    assert main([*argv[:2], "--gen-config", "{not json", *argv[4:]]) == 2
    for cfg in ({}, {**gen_config(tiny_sd), "nope": 1}):  # a missing or unknown key was a TypeError traceback
        assert main([*argv[:2], "--gen-config", json.dumps(cfg), *argv[4:]]) == 2
    missing = json.dumps(gen_config(tiny_sd, controlnet=str(tmp_path / "no-controlnet")))
    assert main([*argv[:2], "--gen-config", missing, *argv[4:]]) == 2
