"""Generation for a set of products, in this process or spread over Ray actors; the driver alone writes
the store. Recurrent generation (with the inspector in the loop) is :mod:`adcreative.pipelines.recurrent`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adcreative.core.errors import InputError
from adcreative.core.types import ASPECTS, Creative
from adcreative.generate.base import Generator
from adcreative.generate.provenance import generate_and_store, to_creative

if TYPE_CHECKING:
    from adcreative.core.store import Store


def generate_products(store: Store, generator: Generator, product_ids: Sequence[str], *, n: int,
                      aspects: Sequence[str], seed: int = 0, executor: str = "local", workers: int = 2,
                      address: str | None = None) -> list[Creative]:
    """``n`` creatives per aspect ratio for every product, stored with their provenance."""
    bad = [a for a in aspects if a not in ASPECTS]
    if bad:
        raise InputError(f"unknown aspect ratio {bad[0]!r}; choose from {', '.join(ASPECTS)}")
    if executor == "local":
        return [c for pid in product_ids
                for c in generate_and_store(store, generator, store.get_product(pid), n=n, aspects=list(aspects),
                                            seed=seed)]
    from adcreative.executors import run_stage
    from adcreative.generate.stage import GenerateStage

    products = [store.get_product(pid) for pid in product_ids]
    generated = run_stage(executor, GenerateStage, {"generator": generator.name, "config": generator.config,
                                                    "aspects": list(aspects), "n": n, "seed": seed},
                          products, batch_size=1, workers=workers, address=address)
    out = []
    for prod, items in zip(products, generated, strict=True):
        for data, gi in items:
            c, data, mask = to_creative(gi, prod, data=data)
            out.append(store.add_creative(c, data=data, mask=mask))
    return out
