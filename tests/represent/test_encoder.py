"""Contrastive encoder: save/load, local backbone weights, the loss, augmentations, a short real training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from adcreative.core.backbones import efficientnet_lite0
from adcreative.core.errors import InputError
from adcreative.core.types import Product
from adcreative.represent.augment import views
from adcreative.represent.encoder import (
    CreativeEncoder,
    create_encoder,
    infonce,
    train_encoder,
)
from adcreative.represent.evaluate import creative_set, recall_at_k, retrieval_views

torch.set_num_threads(1)


def _images(n: int, size: int = 96, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        d = ImageDraw.Draw(im)
        for _ in range(3):
            x, y = (int(v) for v in rng.integers(0, size, 2))
            d.ellipse((x - 15, y - 15, x + 15, y + 15), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        out.append(im)
    return out


def _product(pid: str, colour: tuple[int, int, int]) -> Product:
    im = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((60, 20, 140, 190), 20, fill=(*colour, 255))
    d.rectangle((85, 80, 115, 120), fill=(255, 255, 255, 255))
    return Product(pid, f"bottle {pid}", "personal_care", im)


def test_save_load_identical_outputs_random_backbone(tmp_path) -> None:
    torch.manual_seed(0)
    enc = CreativeEncoder(dim=16, hidden=32, image_size=64, use_text=False, backbone="random")
    ims = _images(4)
    a = enc.embed(ims)
    enc.save_pretrained(tmp_path / "m")
    back = CreativeEncoder.from_pretrained(tmp_path / "m")
    assert np.array_equal(a, back.embed(ims))
    assert a.shape == (4, 16) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert back.fingerprint() == enc.fingerprint()


def test_packaged_trunk_is_not_stored_and_reloads_identically(tmp_path) -> None:
    from safetensors.torch import load_file

    enc = create_encoder(dim=16, hidden=32, image_size=64, use_text=True, train_blocks=1)
    with torch.no_grad():  # make the trainable part differ from a fresh model
        for p in enc.projector.parameters():
            p.add_(0.01)
    ims = _images(3)
    t = torch.randn(3, 384)
    x = enc.preprocess(ims)
    a = enc(x, t)
    enc.save_pretrained(tmp_path / "m")
    keys = load_file(str(tmp_path / "m" / "model.safetensors")).keys()
    assert not any(k.startswith("trunk.") for k in keys) and any(k.startswith("tail.") for k in keys)
    back = CreativeEncoder.from_pretrained(tmp_path / "m")
    assert torch.equal(a, back(x, t))
    # only the last block(s), head and MLPs train; the trunk is frozen
    assert not any(p.requires_grad for p in back.trunk.parameters())
    assert all(p.requires_grad for p in back.tail.parameters())


def test_local_backbone_weights_file(tmp_path) -> None:
    net = efficientnet_lite0("random")
    torch.save(net.state_dict(), tmp_path / "effnet.pt")
    enc = CreativeEncoder(dim=8, hidden=16, image_size=64, use_text=False, backbone=str(tmp_path / "effnet.pt"))
    assert torch.equal(enc.trunk.stem.weight, net._conv_stem.weight)
    (tmp_path / "bad.pt").write_bytes(b"not weights")
    with pytest.raises(InputError, match="does not exist"):
        CreativeEncoder(backbone=str(tmp_path / "missing.pt"))
    torch.save({"x": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(InputError, match="not EfficientNet-Lite0 weights"):
        CreativeEncoder(backbone=str(tmp_path / "wrong.pt"))


def test_infonce_matches_hand_computation() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    tau = 0.5
    # row 0: logits [2, 1.2] → −log softmax[0]; row 1: logits [0, 1.6] → −log softmax[1]
    l0 = -np.log(np.exp(2) / (np.exp(2) + np.exp(1.2)))
    l1 = -np.log(np.exp(1.6) / (np.exp(0) + np.exp(1.6)))
    assert float(infonce(q, k, tau)) == pytest.approx((l0 + l1) / 2 * 2 * tau, rel=1e-5)


def test_views_are_reproducible_and_different() -> None:
    im = _images(1, size=128)[0]
    a, b = views(im, 2, seed=3)
    a2, _ = views(im, 2, seed=3)
    assert np.array_equal(np.asarray(a), np.asarray(a2))
    assert a.size != b.size or not np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_short_training_beats_untrained_heads_and_round_trips(tmp_path) -> None:
    """A real (short) MoCo v3 run on pasted creatives: the loss falls, retrieval of another view of the same
    creative among same-product creatives beats the untrained projection, and save/load keeps the outputs."""
    prods = [_product(f"p{i}", c) for i, c in enumerate([(200, 40, 40), (40, 160, 60), (40, 60, 200), (220, 180, 30)])]
    items = creative_set(prods, 10, seed=0, source="paste", scale=0.25)
    torch.manual_seed(0)
    enc = CreativeEncoder(dim=32, hidden=128, image_size=96, train_blocks=1, use_text=False)
    q, g = retrieval_views(items, seed=1)
    before = recall_at_k(enc.embed(q), enc.embed(g))
    hist = train_encoder(enc, [it.image for it in items], [it.product_id for it in items], None, n_views=3,
                         steps=60, batch_products=4, per_product=6, show_progress=False)
    assert np.mean(hist["loss"][-10:]) < np.mean(hist["loss"][:10])
    after = recall_at_k(enc.embed(q), enc.embed(g))
    assert after > before
    enc.save_pretrained(tmp_path / "m")
    assert np.array_equal(CreativeEncoder.from_pretrained(tmp_path / "m").embed(q[:4]), enc.embed(q[:4]))


@pytest.mark.slow
def test_text_tower_is_the_packaged_minilm() -> None:
    enc = CreativeEncoder(dim=16, hidden=32, image_size=64)
    ims = _images(2)
    e1 = enc.embed(ims, ["red running shoes", "red running shoes"])
    e2 = enc.embed(ims, ["stainless steel pressure cooker", "stainless steel pressure cooker"])
    assert e1.shape == (2, 16) and not np.allclose(e1, e2)  # the text reaches the embedding
    with pytest.raises(InputError, match="texts for"):
        enc.embed(ims, ["one"])
