"""The domain-adversarial head: the reversal flips and scales the gradient, the head's gradient reaches the features
only through it (weight 0 trains exactly what no adversary trains), the head learns its target, and nothing of it
is saved with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.inspect.helpers import TINY


def test_gradient_reversal_flips_and_scales_the_gradient() -> None:
    from adcreative.inspect.train import adversary_ramp, grad_reverse

    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)  # identity forward
    (y * torch.tensor([1.0, 2.0, 4.0])).sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, torch.tensor([-0.3, -0.6, -1.2]))
    assert adversary_ramp(0.0) == 0.0 and 0.46 < adversary_ramp(0.1) < 0.47 and adversary_ramp(1.0) > 0.9999


def _two_renderers(encoded):  # type: ignore[no-untyped-def]
    """Every row of the tiny set, each drawn by renderer "a" or "b" (seeded), whose fingerprint (a fixed random
    direction, four standard deviations long) is added to renderer "a"'s image maps."""
    rng = np.random.default_rng(0)
    enc = encoded.subset(np.arange(len(encoded)))
    r = rng.integers(0, 2, len(enc))
    enc.renderers = ["a" if v else "b" for v in r]
    image = enc.image.float()
    v = torch.from_numpy(rng.standard_normal(image.shape[1]).astype(np.float32)).view(1, -1, 1, 1)
    image[torch.from_numpy(r == 1)] += 4 * image.std() * v
    enc.image = image.half()
    return enc


def _train(enc, adversary: str, weight: float, epochs: int = 6):  # type: ignore[no-untyped-def]
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, train_model

    torch.manual_seed(0)
    model = RFNet(**TINY)
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, patience=100, seed=0, adversary=adversary,
                      adversary_weight=weight)
    return model, train_model(model, enc, None, cfg, progress=False)


def test_the_adversary_reaches_the_features_only_through_the_reversal(encoded) -> None:  # type: ignore[no-untyped-def]
    enc = _two_renderers(encoded)
    plain, res_plain = _train(enc, "none", 0.0)
    zero, res_zero = _train(enc, "both", 0.0)
    pushed = _train(enc, "both", 1.0)[0]
    keys = set(plain.state_dict())
    assert set(zero.state_dict()) == keys and set(pushed.state_dict()) == keys  # the head is not saved
    sd_plain, sd_zero, sd_pushed = plain.state_dict(), zero.state_dict(), pushed.state_dict()
    assert all(torch.equal(sd_plain[k], sd_zero[k]) for k in keys)  # weight 0: the classifier trains as without
    assert any(not torch.equal(sd_plain[k], sd_pushed[k]) for k in keys)
    assert [h["train_loss"] for h in res_plain.history] == [h["train_loss"] for h in res_zero.history]
    # the head itself learns: with weight 0 it reads the renderer (the fingerprint is in the features) and the
    # product better than chance, and its losses fall
    first, last = res_zero.history[0], res_zero.history[-1]
    assert last["adv_renderer_acc"] >= 0.62, res_zero.history
    assert last["adv_product_acc"] > 1.5 / len(set(enc.product_ids)), res_zero.history
    assert last["adv_product_loss"] < first["adv_product_loss"] and last["adv_renderer_loss"] < first["adv_renderer_loss"]


def test_unknown_or_single_domain_adversary_is_a_clear_error(encoded) -> None:  # type: ignore[no-untyped-def]
    from adcreative.core.errors import InputError
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, adversary_targets, train_model

    with pytest.raises(InputError, match="unknown adversary"):
        adversary_targets(encoded, "camera")
    with pytest.raises(InputError, match="at least two renderers"):
        adversary_targets(encoded, "renderer")  # every row of the tiny set has the same (unknown) renderer
    with pytest.raises(InputError, match="unknown adversary mode"):
        train_model(RFNet(**TINY), encoded, None, TrainConfig(epochs=1, adversary="product", adversary_mode="x"),
                    progress=False)
    t = adversary_targets(encoded, "product")["product"]
    assert len(t) == len(encoded) and int(t.max()) + 1 == len(set(encoded.product_ids))
