"""The store: round trip of every record, all-or-nothing writes, validation before anything is written
(lengths, NUL, lone surrogates, non-finite numbers: no row and no orphan blob), a creative committed with
its verdict, idempotent events, availability, and one home = one store (PostgreSQL: one schema per home).

CI runs this module on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adcreative.core import limits
from adcreative.core.errors import InputError
from adcreative.core.store import Store
from adcreative.core.types import Creative, Event, Label, Product, Verdict


def _cutout(size: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    a = np.zeros((size, size, 4), np.uint8)
    a[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (*colour, 255)
    return Image.fromarray(a, "RGBA")


def _creative(cid: str = "c1", pid: str = "p1", **kw: object) -> Creative:
    return Creative(cid, pid, "", "compositor", "1.0", 7, "1:1", 40, 30, **kw)  # type: ignore[arg-type]


def _blobs(store: Store) -> set[str]:
    return {p.name for p in store.blobs.root.rglob("*.png")}


def _verdict(cid: str, p: float = 0.8) -> Verdict:
    return Verdict(cid, "rfnet@x", {"available": p, "unsuitable": 1 - p})


def test_store_round_trip(store: Store) -> None:
    p = Product("p1", "Red Box", "default", _cutout(), copy="Buy now", price=9.5, attrs={"badge": "NEW"})
    store.add_products([p])
    got = store.get_product("p1")
    assert got.title == "Red Box" and got.price == 9.5 and got.attrs == {"badge": "NEW"}
    assert np.array_equal(np.asarray(got.image), np.asarray(p.image))
    img = Image.new("RGB", (40, 30), (1, 2, 3))
    mask = Image.new("L", (40, 30), 0)
    mask.paste(255, (5, 5, 20, 25))
    c = store.add_creative(_creative(params={"a": [1, 2]}, layout={"product": [0, 0, 5, 5]}), img, mask=mask)
    assert store.blobs.path(c.image_sha).exists() and c.mask_sha is not None
    assert store.get_creative("c1").params == {"a": [1, 2]}
    assert np.array_equal(np.asarray(store.creative_image("c1")), np.asarray(img))
    assert np.array_equal(np.asarray(store.creative_mask("c1")), np.asarray(mask))
    store.add_verdicts([_verdict("c1")])
    v = store.latest_verdict("c1")
    assert v is not None and v.label == "available" and v.p_available == pytest.approx(0.8)
    assert store.latest_verdicts(["c1", "nope"]) == {"c1": v}
    store.add_label(Label("c1", "space_mismatch", "alice"))
    assert [lb.label for lb in store.labels()] == ["space_mismatch"]
    added = store.add_events([Event("impression", "r1", "u1", "ad1", "c1"), Event("click", "r1", "u1", "ad1", "c1")])
    assert [e.kind for e in added] == ["impression", "click"]
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
    with pytest.raises(InputError, match="title is empty"):
        store.add_products([Product("d", "  ", "default", _cutout())])
    assert store.product_ids() == ["a"]
    with pytest.raises(InputError, match="no creative"):
        store.add_label(Label("missing", "available", "bob"))
    with pytest.raises(ValueError, match="not one of"):
        Label("x", "blurry", "bob")


LONG_PRODUCT = "p" * (limits.PRODUCT_ID_MAX + 1)


@pytest.mark.parametrize(("product", "field"), [
    (Product(LONG_PRODUCT, "T", "default", _cutout(colour=(1, 2, 3))), "product id is 129 characters long"),
    (Product("p\x00", "T", "default", _cutout(colour=(4, 5, 6))), "product id contains a NUL"),
    (Product("p\ud800", "T", "default", _cutout(colour=(7, 8, 9))), "product id contains a lone surrogate"),
    (Product("p2", "T\x00itle", "default", _cutout(colour=(10, 11, 12))), "title contains a NUL"),
    (Product("p2", "T", "c" * 65, _cutout(colour=(13, 14, 15))), "category is 65 characters long"),
    (Product("p2", "T", "default", _cutout(colour=(16, 17, 18)), price=math.nan), "price must be a finite"),
    (Product("p2", "T", "default", _cutout(colour=(19, 20, 21)), price=math.inf), "price must be a finite"),
    (Product("p2", "T", "default", _cutout(colour=(22, 23, 24)), attrs={"k": "\ud83d"}), "attrs.k contains a lone"),
    (Product("p2", "T", "default", _cutout(colour=(25, 26, 27)), attrs={"x": math.nan}), "attrs holds a number"),
], ids=["long-id", "nul-id", "surrogate-id", "nul-title", "long-category", "nan-price", "inf-price",
        "surrogate-attr", "nan-attr"])
def test_bad_product_fields_are_refused_before_anything_is_written(store: Store, product: Product, field: str) -> None:
    before = _blobs(store)
    with pytest.raises(InputError, match=field):
        store.add_products([Product("ok", "Fine", "default", _cutout()), product])
    assert store.product_ids() == [] and _blobs(store) == before  # no row, no orphan blob


def test_bad_creatives_verdicts_labels_events_are_refused_whole(store: Store) -> None:
    store.add_products([Product("p1", "P", "default", _cutout())])
    img = Image.new("RGB", (40, 30), (9, 9, 9))
    before = _blobs(store)
    cases: list[tuple[dict[str, object], str]] = [
        ({"cid": "c" * (limits.CREATIVE_ID_MAX + 1)}, "creative id is 65 characters long"),
        ({"cid": "c\x00"}, "creative id contains a NUL"),
        ({"run_id": "r" * (limits.RUN_ID_MAX + 1)}, "creative run_id is 65"),
        ({"params": {"render": {"x": math.inf}}}, "creative params holds a number"),
    ]
    for kw, msg in cases:
        cid = str(kw.pop("cid", "c1"))
        with pytest.raises(InputError, match=msg):
            store.add_creative(_creative(cid, **kw), img, mask=Image.new("L", (40, 30), 255))
    # a verdict that cannot be stored stops its creative too: they are one transaction
    with pytest.raises(InputError, match="probs\\['available'\\] must be a finite"):
        store.add_creative(_creative(), img, verdict=Verdict("c1", "m", {"available": math.nan}))
    # the database refuses (unknown product): nothing stays behind either
    with pytest.raises(InputError, match="its product 'no-such-product' is not in the store"):
        store.add_creative(_creative("c2", "no-such-product"), img)
    store.add_creative(_creative("taken"), Image.new("RGB", (40, 30), (1, 1, 1)))
    before = _blobs(store)
    with pytest.raises(InputError, match="creative id 'taken' is already in the store"):
        store.add_creative(_creative("taken"), img, mask=Image.new("L", (40, 30), 7))
    store.add_verdicts([_verdict("taken")])
    assert [c.id for c in store.creatives()] == ["taken"] and _blobs(store) == before
    store.add_creative(_creative(), img)
    for bad, msg in [(Label("c1", "available", "r" * 129), "reviewer is 129"),
                     (Label("c1", "available", "bob", note="\ud800"), "note contains a lone surrogate")]:
        with pytest.raises(InputError, match=msg):
            store.add_label(bad)
    with pytest.raises(InputError, match="model_id is 129"):
        store.add_verdicts([Verdict("c1", "m" * 129, {"available": 1.0})])
    good = Event("impression", "r1", "u1", "ad1", "c1")
    for bad, msg in [(Event("impression", "r" * 65, "u", "a", "c1"), "request_id is 65"),
                     (Event("impression", "r2", "u\x00", "a", "c1"), "user_id contains a NUL"),
                     (Event("click", "r2", "u", "a", "c1", context={"x": math.nan}), "context holds a number"),
                     (Event("click", "r2", "u", "a", "c1", propensity=math.inf), "propensity must be a finite"),
                     (Event("click", "r2", "u", "a", "c1", position=2**40), "position must be an integer")]:
        with pytest.raises(InputError, match=msg):
            store.add_events([good, bad])
    assert store.labels() == [] and store.latest_verdict("c1") is None and store.events() == []


def test_creative_and_verdict_commit_together_and_unaudited_is_never_available(store: Store) -> None:
    store.add_products([Product("p1", "P", "default", _cutout())])
    img = Image.new("RGB", (40, 30), (9, 9, 9))
    store.add_creative(_creative("ok"), img, verdict=_verdict("ok", 0.9))
    store.add_creative(_creative("bad"), img, verdict=_verdict("bad", 0.1))
    store.add_creative(_creative("unaudited"), img)  # what a crash between two commits used to leave
    store.add_creative(_creative("relabelled"), img, verdict=_verdict("relabelled", 0.9))
    store.add_label(Label("relabelled", "size_mismatch", "alice"))  # a human overrides the inspector
    store.add_creative(_creative("rescued"), img, verdict=_verdict("rescued", 0.2))
    store.add_label(Label("rescued", "available", "alice"))
    assert store.latest_verdict("ok") is not None
    assert sorted(c.id for c in store.available_creatives()) == ["ok", "rescued"]


def test_events_are_idempotent_on_kind_request_and_creative(store: Store) -> None:
    e = [Event("impression", "r1", "u1", "ad", "c1"), Event("click", "r1", "u1", "ad", "c1"),
         Event("impression", "r1", "u1", "ad", "c2"), Event("impression", "r1", "u1", "ad", "c1", position=3)]
    assert store.add_events(e) == e[:3]  # the repeat inside one call is skipped, the first wins
    assert store.add_events(e) == []  # a client retrying the whole batch adds nothing
    new = Event("click", "r2", "u1", "ad", "c2")
    assert store.add_events([e[1], new]) == [new]
    got = store.events()
    assert [(x.kind, x.request_id, x.creative_id, x.position) for x in got] == [
        ("impression", "r1", "c1", 0), ("click", "r1", "c1", 0), ("impression", "r1", "c2", 0), ("click", "r2", "c2", 0)]
    # many at once (over SQLite's bound-parameter limit per statement), half of them already stored
    many = [Event("impression", f"q{i}", "u", "ad", "c1") for i in range(2500)]
    assert len(store.add_events(many[:1200])) == 1200
    assert len(store.add_events(many)) == 1300 and len(store.events(kind="impression")) == 2502


def test_every_home_is_its_own_store(tmp_path: Path) -> None:
    """Two homes never share rows, whatever the database: a fresh home is empty, not a view of another
    home's rows whose blobs it does not have (on PostgreSQL: a schema per home, named in store.json)."""
    a = Store(home=tmp_path / "a")
    a.add_products([Product("p1", "P", "default", _cutout())])
    b = Store(home=tmp_path / "b")
    assert b.product_ids() == [] and a.product_ids() == ["p1"]
    b.add_products([Product("p1", "Other", "default", _cutout(colour=(0, 90, 0)))])  # same id, its own row
    assert Store(home=tmp_path / "a").get_product("p1").title == "P"
    if a.location.dialect == "postgresql":
        assert a.location.schema != b.location.schema
        assert (tmp_path / "a" / "store.json").exists()
    # the home moves with its rows (PostgreSQL: store.json goes with the folder)
    (tmp_path / "a").rename(tmp_path / "moved")
    assert Store(home=tmp_path / "moved").get_product("p1").title == "P"


def test_missing_blob_is_a_clear_error(store: Store) -> None:
    store.add_products([Product("p1", "P", "default", _cutout())])
    for f in store.blobs.root.rglob("*.png"):
        f.unlink()
    with pytest.raises(InputError, match="is missing from"):
        store.get_product("p1")
