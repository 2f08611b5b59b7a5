"""The same stage class runs in-process and on a real local Ray cluster, with identical results."""

from __future__ import annotations

import importlib.util
import os

import pytest

from adcreative.core.imageio import sha256
from adcreative.core.types import Product
from adcreative.executors import batched, run_stage
from adcreative.generate.stage import GenerateStage

KW = {"generator": "compositor", "config": {"scale": 0.25}, "aspects": ["1:1", "9:16"], "n": 1, "seed": 5}


def test_batched() -> None:
    assert list(batched([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError):
        list(batched([1], 0))


def test_local_executor_keeps_order(sample_products: list[Product]) -> None:
    out = run_stage("local", GenerateStage, KW, sample_products[:3], batch_size=2, progress=False)
    assert len(out) == 3 and all(len(x) == 2 for x in out)
    assert [gi.aspect for _, gi in out[0]] == ["1:1", "9:16"]
    with pytest.raises(ValueError, match="unknown executor"):
        run_stage("spark", GenerateStage, KW, sample_products[:1])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (the [scale] extra)")
def test_ray_executor_matches_local(sample_products: list[Product]) -> None:
    os.environ["RAY_AUTH_MODE"] = "disabled"
    items = sample_products[:3]
    local = run_stage("local", GenerateStage, KW, items, batch_size=1, progress=False)
    remote = run_stage("ray", GenerateStage, KW, items, batch_size=1, workers=1, progress=False)
    assert [[sha256(b) for b, _ in x] for x in remote] == [[sha256(b) for b, _ in x] for x in local]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (the [scale] extra)")
def test_cli_generate_on_ray_then_regenerate_locally(tmp_path, sample_products: list[Product]) -> None:  # type: ignore[no-untyped-def]
    from adcreative.catalogue.sample import save_catalogue
    from adcreative.cli import main
    from adcreative.core.store import Store

    os.environ["RAY_AUTH_MODE"] = "disabled"
    cat = save_catalogue(sample_products[:2], tmp_path / "cat")
    h = ["--home", str(tmp_path / "home")]
    assert main([*h, "products", "add", str(cat)]) == 0
    assert main([*h, "generate", "--product", "all", "--n", "1", "--aspect", "1:1,16:9", "--executor", "ray",
                 "--workers", "1"]) == 0
    cs = Store(home=tmp_path / "home").creatives()
    assert len(cs) == 4
    assert main([*h, "creatives", "regenerate", cs[-1].id]) == 0  # made on a worker, identical here
