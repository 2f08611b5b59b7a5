"""The store: round trip of every record, all-or-nothing product imports."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.store import Store
from adcreative.core.types import Creative, Event, Label, Product, Verdict


def _cutout(size: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    a = np.zeros((size, size, 4), np.uint8)
    a[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (*colour, 255)
    return Image.fromarray(a, "RGBA")


def test_store_round_trip(store: Store) -> None:
    p = Product("p1", "Red Box", "default", _cutout(), copy="Buy now", price=9.5, attrs={"badge": "NEW"})
    store.add_products([p])
    got = store.get_product("p1")
    assert got.title == "Red Box" and got.price == 9.5 and got.attrs == {"badge": "NEW"}
    assert np.array_equal(np.asarray(got.image), np.asarray(p.image))
    img = Image.new("RGB", (40, 30), (1, 2, 3))
    c = store.add_creative(Creative("c1", "p1", "", "compositor", "1.0", 7, "1:1", 40, 30,
                                    params={"a": [1, 2]}, layout={"product": [0, 0, 5, 5]}), img)
    assert store.blobs.path(c.image_sha).exists()
    assert store.get_creative("c1").params == {"a": [1, 2]}
    assert np.array_equal(np.asarray(store.creative_image("c1")), np.asarray(img))
    store.add_verdicts([Verdict("c1", "rfnet@x", {"available": 0.8, "unsuitable": 0.2})])
    v = store.latest_verdict("c1")
    assert v is not None and v.label == "available" and v.p_available == pytest.approx(0.8)
    store.add_label(Label("c1", "space_mismatch", "alice"))
    assert [lb.label for lb in store.labels()] == ["space_mismatch"]
    assert store.add_events([Event("impression", "r1", "u1", "ad1", "c1"), Event("click", "r1", "u1", "ad1", "c1")]) == 2
    assert [e.kind for e in store.events()] == ["impression", "click"]
    store.put_features("explicit", "1", {"c1": {"area": 0.3}})
    assert store.get_features("explicit", ["c1"]) == {"c1": {"area": 0.3}}
    # a second Store on the same folder sees everything (it is on disk, not in memory)
    again = Store(home=store.home)
    assert again.product_ids() == ["p1"] and again.get_creative("c1").seed == 7


def test_store_rejects_duplicates_and_empty_titles_without_writing(store: Store) -> None:
    store.add_products([Product("a", "A", "default", _cutout())])
    with pytest.raises(InputError, match="already in the store"):
        store.add_products([Product("b", "B", "default", _cutout()), Product("a", "A2", "default", _cutout())])
    with pytest.raises(InputError, match="duplicate product id"):
        store.add_products([Product("c", "C", "default", _cutout()), Product("c", "C", "default", _cutout())])
    with pytest.raises(InputError, match="empty title"):
        store.add_products([Product("d", "  ", "default", _cutout())])
    assert store.product_ids() == ["a"]
    with pytest.raises(InputError, match="no creative"):
        store.add_label(Label("missing", "available", "bob"))
    with pytest.raises(ValueError, match="not one of"):
        Label("x", "blurry", "bob")
