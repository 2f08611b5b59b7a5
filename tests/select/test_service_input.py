"""Hostile numbers and strings get a 422 naming the field before anything is written, never a 5xx; bodies
over the limit get a 413. Numbers at the bound still rank to finite JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from fastapi.testclient import TestClient

from adcreative.core.store import EventRow, Store
from adcreative.core.web import MAX_ABS_NUMBER
from adcreative.select.service import MAX_BODY_BYTES, EventIn, EventLog, SelectIn, create_app
from adcreative.select.simulator import build_bundle

KEY = "k"
HEADERS = {"X-API-Key": KEY, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    feats = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    return build_bundle(tmp_path_factory.mktemp("b") / "bundle", feats, n_logged=600, epochs=1)


@pytest.fixture()
def client(bundle_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    store = Store(home=tmp_path / "home")
    app = create_app(bundle_dir, events_path=tmp_path / "ev.jsonl", api_keys=[KEY], store=store, reload_interval=0)
    with TestClient(app) as c:
        yield c


def _select(user: str = '{"x0": 0.5}', pair: str = "null") -> str:
    cands = json.dumps([f"sim_{j}" for j in range(6)])
    return f'{{"user_id": "u", "ad_id": "sim", "candidates": {cands}, "user": {user}, "pair": {pair}}}'


# raw JSON: Python's json (and so FastAPI) reads NaN, Infinity and 1e999 (= inf) as floats
HOSTILE_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e39", "2.8e123", "1e999", "-1e999",
                   "123456789012345678901234567890", str(10**300), '"inf"', '"-inf"', '"nan"', '"1e39"', '"1e999"']


@pytest.mark.parametrize("value", HOSTILE_NUMBERS)
def test_select_refuses_hostile_user_numbers(client: TestClient, value: str) -> None:
    r = client.post("/v1/select", content=_select(f'{{"x0": {value}}}'), headers=HEADERS)
    assert r.status_code == 422, r.text
    assert "x0" in r.text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e39"])
def test_select_refuses_hostile_pair_features(client: TestClient, value: str) -> None:
    r = client.post("/v1/select", content=_select(pair=f'{{"sim_0": [{value}]}}'), headers=HEADERS)
    assert r.status_code == 422, r.text
    assert "pair" in r.text


@pytest.mark.parametrize("bound", [MAX_ABS_NUMBER, -MAX_ABS_NUMBER, int(MAX_ABS_NUMBER)])
def test_numbers_at_the_bound_rank_to_finite_json(client: TestClient, bound: float) -> None:
    user = json.dumps({f"x{i}": bound for i in range(4)} | {"segment": bound})
    r = client.post("/v1/select", content=_select(user), headers=HEADERS)
    assert r.status_code == 200, r.text
    out = r.json()
    assert all(np.isfinite(out["scores"])) and 0 <= out["ad_pctr"] <= 1


@pytest.mark.parametrize(("field", "value"), [
    ("user_id", "u\x00"), ("user_id", "\ud800"), ("request_id", "r" * 65), ("ad_id", "a" * 129),
])
def test_select_refuses_unstorable_strings(client: TestClient, field: str, value: str) -> None:
    body = json.loads(_select()) | {field: value}
    r = client.post("/v1/select", content=json.dumps(body), headers=HEADERS)
    assert r.status_code == 422 and field in r.text, r.text


def _event(**kw: object) -> dict[str, object]:
    return {"kind": "impression", "request_id": "r1", "user_id": "u", "ad_id": "sim", "creative_id": "sim_1", **kw}


@pytest.mark.parametrize(("raw", "field"), [
    ('{"a": NaN}', "context"), ('{"a": {"b": [1, Infinity]}}', "context"), ('{"a": 1e999}', "context"),
    ('{"a": 123456789012345678901234567890}', "context"), ('{"a": "x\\u0000"}', "context"),
    ('{"a\\ud800": 1}', "context"), ('{"a": "\\udfff"}', "context"), ('{"a": "' + "x" * 5000 + '"}', "context"),
    ('{"a": {"b": {"c": {"d": {"e": 1}}}}}', "context"),
])
def test_events_refuse_hostile_context_before_writing(client: TestClient, raw: str, field: str,
                                                        tmp_path: Path) -> None:
    before = EventLog.read(tmp_path / "ev.jsonl")
    body = json.dumps({"events": [_event()]}).replace('"creative_id": "sim_1"', f'"creative_id": "sim_1", "context": {raw}')
    r = client.post("/v1/events", content=body, headers=HEADERS)
    assert r.status_code == 422 and field in r.text, r.text
    assert EventLog.read(tmp_path / "ev.jsonl") == before  # nothing logged


@pytest.mark.parametrize(("field", "value"), [
    ("creative_id", "c" * 65), ("request_id", "r" * 65), ("user_id", "u" * 129), ("user_id", "a\x00b"),
    ("creative_id", "\ud800"), ("propensity", float("nan")), ("propensity", 0.0), ("position", 10**30),
])
def test_events_refuse_what_the_store_cannot_hold(client: TestClient, field: str, value: object) -> None:
    r = client.post("/v1/events", content=json.dumps({"events": [_event(**{field: value})]}), headers=HEADERS)
    assert r.status_code == 422 and field in r.text, r.text


def test_events_at_the_limits_are_logged_and_mirrored(client: TestClient, tmp_path: Path) -> None:
    ev = _event(request_id="r" * 64, user_id="ü" * 128, ad_id="a" * 128, creative_id="c" * 64,
                context={"price": MAX_ABS_NUMBER, "tags": ["a", "é", None, True], "nested": {"k": -1.5}})
    r = client.post("/v1/events", json={"events": [ev]}, headers=HEADERS)
    assert r.status_code == 200, r.text
    stored = Store(home=tmp_path / "home").events()
    assert [(e.request_id, e.user_id, e.context["nested"]) for e in stored] == [("r" * 64, "ü" * 128, {"k": -1.5})]


def test_request_schemas_match_the_store_columns() -> None:
    cols = {c.name: c.type.length for c in EventRow.__table__.columns if getattr(c.type, "length", None)}
    checked = 0
    for model in (EventIn, SelectIn):
        for name, prop in model.model_json_schema()["properties"].items():
            if name not in cols:
                continue
            alts = prop.get("anyOf", [prop])  # an optional field: the string and null
            if any("enum" in a or "const" in a for a in alts):
                limit = max(len(v) for a in alts for v in a.get("enum", [a.get("const", "")]))
                assert limit <= cols[name], f"{model.__name__}.{name}: {limit} > column {cols[name]}"
            else:
                limit = next(a["maxLength"] for a in alts if "maxLength" in a)
                assert limit == cols[name], f"{model.__name__}.{name}: {limit} != column {cols[name]}"
            checked += 1
    assert checked == 8  # kind, request_id, user_id, ad_id, creative_id; request_id, user_id, ad_id


def test_bodies_over_the_limit_are_413(client: TestClient) -> None:
    big = b'{"events": [' + b"1," * (MAX_BODY_BYTES // 2) + b"1]}"
    r = client.post("/v1/events", content=big, headers=HEADERS)
    assert r.status_code == 413, r.text[:200]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"events": ['
        for _ in range(MAX_BODY_BYTES // (1 << 16) + 2):
            yield b"1," * (1 << 15)
        yield b"1]}"

    r = client.post("/v1/select", content=chunks(), headers=HEADERS)
    assert r.status_code == 413, r.text[:200]
    assert client.post("/v1/select", content=_select(), headers=HEADERS).status_code == 200  # still serving
