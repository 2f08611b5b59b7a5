"""RFNet as a differentiable reward: scores like RFNet and passes gradients to the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

pytest.importorskip("diffusers")

from adcreative.core.types import Product  # noqa: E402


def product(pid: str = "p1", colour: tuple[int, int, int] = (200, 30, 40)) -> Product:
    im = Image.new("RGBA", (96, 160), (0, 0, 0, 0))
    ImageDraw.Draw(im).rounded_rectangle((10, 10, 86, 150), radius=12, fill=(*colour, 255))
    return Product(id=pid, title="Sparkling water", category="beverage", image=im)


@pytest.fixture(scope="module")
def tiny_rfnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("rfnet")
    RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=True).save_pretrained(d)
    return d


def scores_like_rfnet(model_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The reward loaded from ``model_dir`` judges a pasted creative as RFNet's own preprocessing does, and passes
    gradients to the pixels and never to RFNet; returns the logits of the reward and of RFNet."""
    import random

    from adcreative.generate.diffusers_inpaint import paste_back, place_product
    from adcreative.inspect.preprocess import InspectItem
    from adcreative.tune.reward import load_rfnet_reward

    reward = load_rfnet_reward(str(model_dir))
    net = reward.rfnet
    prod = product()
    pl = place_product(prod.image, (96, 64), 0.75, rng=random.Random(0))
    bg = Image.fromarray((np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8))
    img = paste_back(bg, pl)
    with torch.no_grad():
        want = net(net.prepare([InspectItem(image=img, title=prod.title, mask=pl.paste_mask, product=prod.image)]))
    aux = {k: v[None] for k, v in reward.auxiliaries(prod, pl).items()}
    x = torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)[None].requires_grad_(True)
    got = reward(x, aux)
    # the same judgement as RFNet's own NumPy/OpenCV preprocessing
    assert torch.allclose(torch.softmax(got, -1), torch.softmax(want, -1), atol=1e-3)
    got[0, 0].backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.parameters())
    return got.detach(), want


def test_rfnet_adapter_scores_like_rfnet_and_passes_gradients(tiny_rfnet_dir: Path) -> None:
    scores_like_rfnet(tiny_rfnet_dir)


def test_rfnet_adapter_scores_a_seed_ensemble_like_the_ensemble(tmp_path: Path) -> None:
    """RFFT's reward from an ensemble (inspect.model.ensemble): it judges as the ensemble does, every member counts,
    and the gradient reaches the pixels through all of them."""
    from adcreative.inspect.model import RFNet, ensemble

    members = []
    for seed, t in ((0, 0.8), (1, 1.3)):
        torch.manual_seed(seed)
        m = RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=True)
        m.set_calibration(t, None)
        m.save_pretrained(tmp_path / f"m{seed}")
        members.append(m)
    ensemble(members).save_pretrained(tmp_path / "ens")
    got, _ = scores_like_rfnet(tmp_path / "ens")
    one, _ = scores_like_rfnet(tmp_path / "m0")
    assert not torch.allclose(torch.softmax(one, -1), torch.softmax(got, -1), atol=1e-4)  # both members count


def test_adapter_measures_the_cues_as_rfnet_does(tmp_path: Path) -> None:
    """A model with the cue token: the adapter measures the cues of the image it is given (a constant of the
    pixels, no gradient) exactly as RFNet's preprocessing does, so the two judge alike."""
    import random

    from adcreative.generate.diffusers_inpaint import paste_back, place_product
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.preprocess import InspectItem
    from adcreative.tune.reward import load_rfnet_reward

    torch.manual_seed(0)
    net = RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=False, use_cues=True)
    net.fit_cues(torch.rand(40, net.cue_mean.numel()))
    net.save_pretrained(tmp_path / "m")
    reward = load_rfnet_reward(str(tmp_path / "m"))
    prod = product(colour=(40, 90, 200))
    big = prod.image.resize((480, 800))  # larger than the cues' cutout side: both paths shrink it alike
    prod = Product(id=prod.id, title=prod.title, category=prod.category, image=big)
    pl = place_product(prod.image, (96, 80), 0.7, rng=random.Random(2))
    img = paste_back(Image.fromarray((np.random.default_rng(2).random((80, 96, 3)) * 255).astype(np.uint8)), pl)
    item = InspectItem(image=img, title=prod.title, mask=pl.paste_mask, product=prod.image)
    want_in = reward.rfnet.prepare([item])
    aux = {k: v[None] for k, v in reward.auxiliaries(prod, pl).items()}
    x = torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)[None].requires_grad_(True)
    assert torch.equal(reward.cues(x, aux), want_in["cues"])
    with torch.no_grad():
        want = reward.rfnet(want_in)
    got = reward(x, aux)
    assert torch.allclose(torch.softmax(got, -1), torch.softmax(want, -1), atol=1e-3)
    got[0, 0].backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_adapter_reproduces_rfnets_own_inputs(tiny_rfnet_dir: Path) -> None:
    """The adapter rounds where PIL and OpenCV do (straight through), so the maps RFNet is given are the
    maps it would compute itself, not a resampled approximation."""
    import random

    from adcreative.generate.diffusers_inpaint import paste_back, place_product
    from adcreative.inspect.preprocess import InspectItem
    from adcreative.tune.reward import load_rfnet_reward

    reward = load_rfnet_reward(str(tiny_rfnet_dir))
    prod = product()
    pl = place_product(prod.image, (120, 72), 0.8, rng=random.Random(1))
    img = paste_back(Image.fromarray((np.random.default_rng(1).random((72, 120, 3)) * 255).astype(np.uint8)), pl)
    want = reward.rfnet.prepare([InspectItem(image=img, title=prod.title, mask=pl.paste_mask, product=prod.image)])
    aux = {k: v[None] for k, v in reward.auxiliaries(prod, pl).items()}
    got = reward.inputs(torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)[None], aux)
    for k in ("image", "local", "aux", "local_aux", "product"):
        # identical but for a rare ±1 rounding tie in PIL's fixed-point resize (one level: 1/255/std ≈ 0.018)
        d = (got[k] - want[k]).abs()
        assert float((d > 1e-4).float().mean()) < 0.01 and float(d.max()) < 0.05, k


@pytest.mark.slow
def test_adapter_agrees_with_the_shipped_rfnet_at_its_input_size() -> None:
    """With the shipped RFNet (224 px image, 112 px aux maps), the differentiable adapter's P(available) and
    RFNet's own agree on full-size creatives: median difference ≤ 0.01 (measured ~1e-5, max ~5e-3)."""
    from types import SimpleNamespace

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.catalogue.sizes import real_height_cm
    from adcreative.core.types import CLASSES
    from adcreative.generate.base import create_generator
    from adcreative.inspect.preprocess import InspectItem, catalogue_source
    from adcreative.tune.reward import load_rfnet_reward

    reward = load_rfnet_reward(None)
    net = reward.rfnet
    comp = create_generator("compositor")
    diffs, probs = [], []
    for i, prod in enumerate(sample_catalogue()):
        for j, (aspect, defect) in enumerate([("1:1", None), ("4:5", CLASSES[1 + i % 5]), ("16:9", None)]):
            gi = comp(prod, seed=i * 10 + j, aspect=aspect, defect=defect)[0]
            with torch.no_grad():
                item = InspectItem(image=gi.image, title=prod.title, mask=gi.mask, product=prod.image,
                                   height_cm=real_height_cm(prod),  # as the adapter's auxiliaries measure it
                                   product_source=catalogue_source(prod))  # (a drawn SKU: no real-product bias)
                want = float(net.predict_proba([item])[0, 0])
                aux = {k: v[None] for k, v in reward.auxiliaries(prod, SimpleNamespace(paste_mask=gi.mask)).items()}
                x = torch.from_numpy(np.asarray(gi.image, np.float32) / 255).permute(2, 0, 1)[None]
                got = float(torch.softmax(reward(x, aux), -1)[0, 0])
            diffs.append(abs(got - want))
            probs.append(want)
    d = np.asarray(diffs)
    print(f"shipped RFNet ({net.image_size}/{net.aux_size} px), {len(d)} creatives with P(available) "
          f"{min(probs):.3f}–{max(probs):.3f}: |adapter − RFNet| median {np.median(d):.2e}, max {d.max():.2e}")
    assert max(probs) - min(probs) > 0.5, "the check spans confident and doubtful judgements"
    assert np.median(d) <= 0.01 and d.max() <= 0.05


@pytest.mark.parametrize("source", ["real", "procedural"])
def test_adapter_adds_the_real_product_bias_as_judge_does(tmp_path: Path, source: str) -> None:
    """A model with a real-product bias: the reward's probabilities are ``RFNet.judge``'s, which moves a real
    product's images by the bias and leaves a drawn SKU's alone."""
    import random

    from adcreative.generate.diffusers_inpaint import paste_back, place_product
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.preprocess import InspectItem
    from adcreative.tune.reward import load_rfnet_reward

    torch.manual_seed(0)
    net = RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=True)
    net.set_real_bias([1.5, -2.0, 0.0, 0.5, 0.0, 0.0])
    net.save_pretrained(tmp_path / "m")
    reward = load_rfnet_reward(str(tmp_path / "m"))
    prod = product()
    prod.attrs["catalogue_source"] = source
    pl = place_product(prod.image, (96, 64), 0.75, rng=random.Random(0))
    bg = Image.fromarray((np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8))
    img = paste_back(bg, pl)
    item = InspectItem(image=img, title=prod.title, mask=pl.paste_mask, product=prod.image, product_source=source)
    want = reward.rfnet.judge([item]).probs
    aux = {k: v[None] for k, v in reward.auxiliaries(prod, pl).items()}
    x = torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        got = torch.softmax(reward(x, aux), -1).numpy()
        plain = torch.softmax(reward.rfnet(reward.rfnet.prepare([item])), -1).numpy()
    assert np.allclose(got, want, atol=1e-3)
    moved = float(np.abs(got - plain).max())
    assert (moved > 0.01) if source == "real" else (moved < 1e-3)


def test_adapter_applies_the_tuned_renderers_own_calibration_as_judge_does(tmp_path: Path) -> None:
    """A model with a calibration of its own for the renderer being tuned (``inspect calibrate-renderer``): the
    reward judges that renderer's images as ``RFNet.judge`` does; a reward for another renderer ignores it."""
    import dataclasses
    import random

    from adcreative.generate.diffusers_inpaint import NAME, paste_back, place_product
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.preprocess import InspectItem
    from adcreative.tune.reward import load_rfnet_reward

    torch.manual_seed(0)
    net = RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=True)
    net.set_renderer_calibration(NAME, 0.25, [0.5, -0.5, 0.0, 0.0, 0.0, 0.0])  # sharper and shifted: a visible move
    net.save_pretrained(tmp_path / "m")
    tuned, other = load_rfnet_reward(str(tmp_path / "m"), renderer=NAME), load_rfnet_reward(str(tmp_path / "m"))
    prod = product()
    pl = place_product(prod.image, (96, 64), 0.75, rng=random.Random(0))
    bg = Image.fromarray((np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8))
    img = paste_back(bg, pl)
    item = InspectItem(image=img, title=prod.title, mask=pl.paste_mask, product=prod.image)
    aux = {k: v[None] for k, v in tuned.auxiliaries(prod, pl).items()}
    x = torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        got, plain = (torch.softmax(r(x, aux), -1).numpy() for r in (tuned, other))
    assert np.allclose(got, tuned.rfnet.judge([dataclasses.replace(item, renderer=NAME)]).probs, atol=1e-3)
    assert np.allclose(plain, tuned.rfnet.judge([item]).probs, atol=1e-3)
    assert float(np.abs(got - plain).max()) > 0.01
