"""The simulator on generated creatives: the hidden attributes come from the compositor's provenance."""

from __future__ import annotations

import numpy as np

from adcreative.core.store import Store
from adcreative.generate.base import create_generator
from adcreative.generate.provenance import generate_and_store
from adcreative.pipelines.simulation import provenance_attributes
from tests.contracts import toy_product


def test_provenance_attributes_read_what_the_compositor_drew(store: Store) -> None:
    p = toy_product()
    store.add_products([p])
    crs = generate_and_store(store, create_generator("compositor"), p, n=3, aspects=["1:1", "16:9"], seed=3)
    a = provenance_attributes(crs, {p.id: p})
    assert a is not None and a.shape[0] == 6 and np.isfinite(a).all()
    # creatives differ in what was drawn, and the aspect is among the attributes
    assert len({tuple(r) for r in a.round(6)}) == 6
    # creatives without compositor provenance have no hidden attributes: the market falls back to features
    assert provenance_attributes([crs[0].__class__(**{**crs[0].__dict__, "params": {}})], {p.id: p}) is None
