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


def test_verdict_bands_and_the_human_band_first(store: Store) -> None:
    store.add_products([Product("p1", "Red Box", "default", _cutout())])
    img = Image.new("RGB", (40, 30), (1, 2, 3))
    for i, (p_av, band) in enumerate([(0.5, "reject"), (0.97, "accept"), (0.9, "human"), (0.2, None)]):
        store.add_creative(Creative(f"c{i}", "p1", "", "compositor", "1.0", i, "1:1", 40, 30), img)
        store.add_verdicts([Verdict(f"c{i}", "m", {"available": p_av, "unsuitable": 1 - p_av}, band=band,
                                    ood=0.5 * i)])
    store.add_creative(Creative("c9", "p1", "", "compositor", "1.0", 9, "1:1", 40, 30), img)  # never judged
    v = store.latest_verdict("c2")
    assert v is not None and v.band == "human" and v.ood == pytest.approx(1.0)
    # the human band first (however sure), then the unjudged, then the rest least sure first
    assert [c.id for c, _ in store.review_queue()] == ["c2", "c9", "c0", "c3", "c1"]
    assert store.verdict_bands() == {"reject": 1, "accept": 1, "human": 1, "none": 1}


def test_a_store_of_an_earlier_version_gains_the_new_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    home = tmp_path / "old"
    Store(home=home)
    db = next(home.glob("*.db"))
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE verdicts DROP COLUMN band")
    con.execute("ALTER TABLE verdicts DROP COLUMN ood")
    con.commit()
    con.close()
    s = Store(home=home)
    s.add_products([Product("p1", "Red Box", "default", _cutout())])
    s.add_creative(Creative("c1", "p1", "", "compositor", "1.0", 1, "1:1", 40, 30), Image.new("RGB", (40, 30)))
    s.add_verdicts([Verdict("c1", "m", {"available": 0.6, "unsuitable": 0.4}, band="human", ood=2.0)])
    v = s.latest_verdict("c1")
    assert v is not None and v.band == "human"
