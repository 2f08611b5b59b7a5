"""CreativePair files (round trip, bad records refused) and pairs from logs (minimum evidence, matching)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.core.store import Store
from adcreative.core.types import Event
from adcreative.explain.pairs import (
    CreativePair,
    aggregate_pairs,
    click_pairs,
    p_better,
    pairs_from_store,
    read_pairs,
    write_pairs,
)

PAIRS = [
    CreativePair("c1", "c2", "a", "A's product stands out more", {"segment": 2, "age": 31.5}),
    CreativePair("shots/x.png", "shots/y.png", "b", "cleaner layout, price visible", "user-7"),
    CreativePair("c3", "c4", "tie", "", None, {"impressions_a": 40, "clicks_a": 1, "p_better": 0.51}, "logged"),
    CreativePair("c5", "c6", "a", 'quotes "inside", commas, and\nnew lines', None),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_pair_files_round_trip(tmp_path: Path, suffix: str) -> None:
    p = write_pairs(tmp_path / f"pairs{suffix}", PAIRS)
    again = read_pairs(p)
    assert [q.to_dict() for q in again] == [q.to_dict() for q in PAIRS]
    assert write_pairs(tmp_path / f"again{suffix}", again).read_bytes() == p.read_bytes()


def test_creative4u_style_records_are_read(tmp_path: Path) -> None:
    f = tmp_path / "c4u.jsonl"
    f.write_text('{"image_a": "1.jpg", "image_b": "2.jpg", "winner": "2", "reason": "brighter"}\n\n'
                 '{"image_a": "3.jpg", "image_b": "4.jpg", "winner": "A", "reason": "", "user": "u1"}\n')
    qs = read_pairs(f)
    assert [q.winner for q in qs] == ["b", "a"] and qs[1].user == "u1" and qs[0].target == 0.0


@pytest.mark.parametrize("line, needle", [
    ('{"image_a": "a", "winner": "a"}', "missing image_b"),
    ('{"image_a": "a", "image_b": "b", "winner": "c"}', "winner must be one of"),
    ('{"image_a": "a", "image_b": "b", "winner": "a", "score": 3}', "unknown field"),
    ('[1, 2]', "not a JSON object"),
    ('{"image_a": "a", "image_b": "b", "winner": "a", "evidence": 5}', "evidence must be"),
])
def test_bad_records_refuse_the_file_naming_the_line(tmp_path: Path, line: str, needle: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(write_pairs(tmp_path / "ok.jsonl", PAIRS[:1]).read_text() + line + "\n")
    with pytest.raises(InputError, match=needle) as e:
        read_pairs(f)
    assert "bad.jsonl:2" in str(e.value)
    with pytest.raises(InputError, match="no such pair file"):
        read_pairs(tmp_path / "missing.jsonl")


def test_minimum_evidence_rule() -> None:
    # ad x, group g: c1 4/40, c2 0/40, c3 2/10 (too few impressions at min 20)
    ad = ["x"] * 90
    grp = ["g"] * 90
    cre = ["c1"] * 40 + ["c2"] * 40 + ["c3"] * 10
    clk = [1] * 4 + [0] * 36 + [0] * 40 + [1] * 2 + [0] * 8
    ps = aggregate_pairs(ad, grp, cre, clk, min_impressions=20)
    assert [(q.image_a, q.image_b, q.winner) for q in ps] == [("c1", "c2", "a")]
    assert ps[0].evidence == {"ad": "x", "group": "g", "impressions_a": 40, "clicks_a": 4, "impressions_b": 40,
                              "clicks_b": 0, "p_better": pytest.approx(p_better(4, 40, 0, 40), abs=1e-6)}
    assert 0.95 < ps[0].target < 1.0 and "CTR 4/40" in ps[0].reason
    assert len(aggregate_pairs(ad, grp, cre, clk, min_impressions=10)) == 3
    assert aggregate_pairs(ad, grp, cre, clk, min_impressions=20, min_clicks=5) == []
    assert aggregate_pairs(["x"] * 4, ["g"] * 4, ["a", "a", "b", "b"], [0, 0, 0, 0], min_impressions=1) == []


def test_pairs_from_store_count_each_impression_and_click_once(store: Store) -> None:
    ev = []
    for i in range(30):
        for c in ("c1", "c2"):
            ev.append(Event("impression", f"r{i}{c}", "u1", "ad1", c, context={"user": {"segment": 1}}))
    ev.append(Event("impression", "r0c1", "u1", "ad1", "c1"))          # logged twice: counted once
    ev += [Event("click", f"r{i}c1", "u1", "ad1", "c1") for i in range(3)]
    ev.append(Event("click", "r1c1", "u1", "ad1", "c1"))               # duplicate click
    ev.append(Event("click", "nope", "u1", "ad1", "c2"))               # no impression: ignored
    store.add_events(ev)
    (q,) = pairs_from_store(store, min_impressions=30)
    assert (q.image_a, q.winner, q.evidence["clicks_a"], q.evidence["impressions_a"], q.evidence["clicks_b"]) == \
        ("c1", "a", 3, 30, 0)
    assert q.user == {"id": "u1", "segment": 1}
    assert pairs_from_store(store, min_impressions=31) == []
    (s,) = pairs_from_store(store, min_impressions=30, group_by="segment")
    assert s.user == {"segment": "1"}


def test_click_pairs_match_the_nearest_users_of_the_same_ad() -> None:
    x = np.array([[0.0], [0.1], [5.0], [0.2], [0.0]])
    ps = click_pairs(["ad", "ad", "ad", "ad", "other"], x, ["A", "B", "C", "A", "B"], [1, 0, 0, 0, 0], per_click=1,
                     users=[{"u": i} for i in range(5)])
    # row 3 shows A itself and row 4 is another ad: the nearest other creative is B at distance 0.1
    assert [(q.image_a, q.image_b, q.winner, q.user) for q in ps] == [("A", "B", "a", {"u": 0})]
    assert ps[0].evidence["user_distance"] == pytest.approx(0.1)
    assert len(click_pairs(["ad"] * 5, x, ["A", "B", "C", "A", "B"], [1, 0, 0, 0, 0], per_click=3)) == 3
