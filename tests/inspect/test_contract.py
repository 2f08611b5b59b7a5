"""The inspector contract, for every registered inspector and for a toy one added with one registry line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.core.types import CLASSES
from adcreative.inspect.base import INSPECTORS
from adcreative.inspect.preprocess import InspectItem
from tests.contracts import check_inspector, registered
from tests.inspect.helpers import TINY

TINY_CONFIGS = {"rfnet": TINY, "image-only": TINY}


@pytest.mark.parametrize("name", INSPECTORS.names())
def test_every_registered_inspector_honours_the_contract(name: str, tmp_path: Path) -> None:
    assert name in TINY_CONFIGS, f"add a tiny config for inspector {name!r} to this test"
    torch.manual_seed(0)
    check_inspector(INSPECTORS, name, TINY_CONFIGS[name], tmp_path)


class ToyInspector(ConfigMixin, nn.Module):
    """Mean colour inside and outside the placement mask → a linear layer → the six classes."""

    registry_family = "inspector"
    registry_name = "toy"

    @register_to_config
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, len(CLASSES))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # type: ignore[no-any-return]

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)  # type: ignore[no-any-return]

    @torch.no_grad()
    def predict_proba(self, items: Sequence[InspectItem], batch_size: int = 32) -> np.ndarray:
        rows = []
        for it in items:
            rgb = np.asarray(it.image.convert("RGB"), np.float32) / 255
            m = np.asarray(it.mask.convert("L")) > 127 if it.mask is not None else np.ones(rgb.shape[:2], bool)
            rows.append(np.concatenate([rgb[m].mean(0), rgb[~m].mean(0) if (~m).any() else np.zeros(3)]))
        x = torch.from_numpy(np.stack(rows).astype(np.float32))
        return torch.softmax(self.forward_head(self.forward_features(x)), -1).numpy()


def test_a_toy_inspector_takes_one_registry_entry(tmp_path: Path) -> None:
    torch.manual_seed(0)
    with registered(INSPECTORS, "toy", ToyInspector):
        check_inspector(INSPECTORS, "toy", {"hidden": 4}, tmp_path)
