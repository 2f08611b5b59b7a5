"""A tiny training run lowers the loss and evaluates."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from adcreative.core.types import CLASSES
from tests.inspect.helpers import TINY


def test_tiny_training_lowers_loss_and_evaluates(encoded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.evaluate import evaluate_model
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, split_sets, train_model

    torch.manual_seed(0)
    tr, va, te = split_sets(encoded)
    model = RFNet(**TINY)
    res = train_model(model, tr, va, TrainConfig(epochs=12, batch_size=16, lr=3e-3, patience=100, seed=0),
                      progress=False)
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] * 0.8, losses
    assert te is not None
    m = evaluate_model(model, te, out=tmp_path / "eval")
    assert set(m["per_class"]) == set(CLASSES) and 0 <= m["macro_f1"] <= 1 and 0 <= m["ap_available"] <= 1
    assert (tmp_path / "eval" / "pr_curves.png").stat().st_size > 1000
    assert Image.open(tmp_path / "eval" / "confusion.png").size[0] > 100
    # seeded: the same run gives the same weights
    model2 = RFNet(**TINY)
    torch.manual_seed(0)
    model2 = RFNet(**TINY)
    res2 = train_model(model2, tr, va, TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=0), progress=False)
    torch.manual_seed(0)
    model3 = RFNet(**TINY)
    res3 = train_model(model3, tr, va, TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=0), progress=False)
    assert res2.history == res3.history
