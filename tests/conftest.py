"""Shared fixtures: real classes at tiny sizes, seeded, on CPU."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adcreative.core.store import Store
from adcreative.core.types import Product

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
JD_META = Path(__file__).parent / "data" / "jd_products.json"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(home=tmp_path / "store")


@pytest.fixture(scope="session")
def sample_products() -> list[Product]:
    from adcreative.catalogue.sample import sample_catalogue

    return sample_catalogue()


@pytest.fixture(scope="session")
def jd_products() -> list[Product]:
    """The real JD cutouts in ../shared/data/products with descriptive titles."""
    folder = SHARED / "products"
    if not folder.is_dir():
        pytest.skip(f"real product cutouts not available ({folder} is absent)")
    from adcreative.catalogue.importer import read_catalogue_folder

    return read_catalogue_folder(folder, JD_META)


def jd_meta() -> list[dict[str, object]]:
    return list(json.loads(JD_META.read_text()))
