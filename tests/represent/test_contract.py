"""The encoder contract, for every registered encoder and for a toy one added with one registry line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.represent.encoder import ENCODERS
from tests.contracts import check_encoder, registered

TINY_CONFIGS = {"moco-effnet-minilm": {"dim": 8, "hidden": 16, "image_size": 64, "use_text": False}}


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_registered_encoder_honours_the_contract(name: str, tmp_path: Path) -> None:
    assert name in TINY_CONFIGS, f"add a tiny config for encoder {name!r} to this test"
    torch.manual_seed(0)
    check_encoder(ENCODERS, name, TINY_CONFIGS[name], tmp_path)


class ColourHistogramEncoder(ConfigMixin):
    """A fixed random projection of a joint RGB histogram: a NumPy-state encoder."""

    registry_family = "encoder"
    registry_name = "colour-histogram"

    @register_to_config
    def __init__(self, bins: int = 4, dim: int = 8, seed: int = 0) -> None:
        self.bins, self.dim = bins, dim
        self.proj = np.random.default_rng(seed).normal(size=(bins ** 3, dim)).astype(np.float32)

    def state_arrays(self) -> dict[str, Any]:
        return {"proj": self.proj}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        self.proj = np.asarray(arrays["proj"], np.float32)

    def embed(self, images: Sequence[Image.Image], texts: Sequence[str] | None = None) -> np.ndarray:
        out = []
        for im in images:
            q = (np.asarray(im.convert("RGB")) // (256 // self.bins)).reshape(-1, 3).astype(np.int64)
            h = np.bincount(q[:, 0] * self.bins ** 2 + q[:, 1] * self.bins + q[:, 2], minlength=self.bins ** 3)
            v = (h / h.sum()).astype(np.float32) @ self.proj
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)


def test_a_toy_encoder_takes_one_registry_entry(tmp_path: Path) -> None:
    with registered(ENCODERS, "colour-histogram", ColourHistogramEncoder):
        check_encoder(ENCODERS, "colour-histogram", {"bins": 4, "dim": 8}, tmp_path)
