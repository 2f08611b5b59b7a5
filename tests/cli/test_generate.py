"""`products add` → `generate` → `creatives regenerate` in-process: regenerated bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest

from adcreative.catalogue.sample import save_catalogue
from adcreative.cli import main
from adcreative.core.store import Store
from adcreative.core.types import Product


@pytest.fixture()
def catalogue(tmp_path: Path, sample_products: list[Product]) -> Path:
    return save_catalogue(sample_products[:3], tmp_path / "cat")


def _home(tmp_path: Path) -> list[str]:
    return ["--home", str(tmp_path / "home")]


def test_import_generate_regenerate(tmp_path: Path, catalogue: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = _home(tmp_path)
    assert main([*h, "products", "add", str(catalogue)]) == 0
    assert main([*h, "generate", "--product", "citrus-can", "--n", "2", "--aspect", "1:1,9:16"]) == 0
    store = Store(home=tmp_path / "home")
    cs = store.creatives(product_id="citrus-can")
    assert len(cs) == 4 and {c.aspect for c in cs} == {"1:1", "9:16"}
    assert all(c.params["generator_config"]["scale"] == 1.0 for c in cs)
    capsys.readouterr()
    out_png = tmp_path / "again.png"
    assert main([*h, "creatives", "regenerate", cs[1].id, "--out", str(out_png)]) == 0
    assert "identical" in capsys.readouterr().out
    assert out_png.read_bytes() == store.blobs.get_bytes(cs[1].image_sha)
    assert main([*h, "creatives", "show", cs[0].id]) == 0
    assert '"seed"' in capsys.readouterr().out
    assert main([*h, "generate", "--product", "nope", "--n", "1"]) == 2
    assert main([*h, "generate", "--product", "citrus-can", "--aspect", "3:1"]) == 2
