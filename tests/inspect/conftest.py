"""Fixtures of the inspect tests: the tiny dataset, encoded once per module, and one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adcreative.inspect.datasets.formats import read_dataset
from tests.inspect.helpers import TINY, make_dataset


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("inspect-data"), per_class=2)


@pytest.fixture(scope="module")
def encoded(dataset: Path):  # type: ignore[no-untyped-def]
    from adcreative.inspect.data import encode_samples, encoding_config
    from adcreative.inspect.model import RFNet

    torch.set_num_threads(1)
    cfg = encoding_config(RFNet(**TINY).config)
    return encode_samples(read_dataset(dataset), cfg, cache_dir=dataset / ".cache", progress=False)

