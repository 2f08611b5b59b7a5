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


def test_rfnet_adapter_scores_like_rfnet_and_passes_gradients(tiny_rfnet_dir: Path) -> None:
    import random

    from adcreative.generate.diffusers_inpaint import paste_back, place_product
    from adcreative.inspect.preprocess import InspectItem
    from adcreative.tune.reward import load_rfnet_reward

    reward = load_rfnet_reward(str(tiny_rfnet_dir))
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
    # same judgement as RFNet's own NumPy/OpenCV preprocessing (resampling differs by a few 1e-3)
    assert torch.allclose(torch.softmax(got, -1), torch.softmax(want, -1), atol=0.01)
    got[0, 0].backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.parameters())
