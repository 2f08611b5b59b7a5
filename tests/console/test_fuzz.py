"""Fuzzing the review console's write routes (labels, sign-in) with valid ids and hostile strings and numbers,
and schemathesis over its OpenAPI: never a 5xx, and a refused label writes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from adcreative.console.app import create_app
from adcreative.core.store import Store
from adcreative.core.types import CLASSES, Product
from adcreative.generate.compositor.generator import Compositor
from adcreative.generate.provenance import generate_and_store
from tests.hostile import FUZZ, SCHEMA_FUZZ, dumps, json_values, numbers, one_hostile, texts

BASE = "http://127.0.0.1:8765"
KEY = "fuzz-key"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, sample_products: list[Product]) -> Iterator[
        tuple[TestClient, Store, list[str]]]:
    store = Store(home=tmp_path_factory.mktemp("console") / "home")
    store.add_products(sample_products[:1])
    ids = [c.id for c in generate_and_store(store, Compositor(scale=0.25), sample_products[0], n=3, aspects=["1:1"])]
    with TestClient(create_app(store, api_key=KEY), base_url=BASE) as c:
        yield c, store, ids


def test_labels_never_5xx_and_refusals_write_nothing(console: tuple[TestClient, Store, list[str]]) -> None:
    client, store, ids = console
    bodies = st.sampled_from(ids).flatmap(lambda cid: one_hostile(
        {"creative_id": cid, "label": "available", "reviewer": "ana", "note": "looks fine"},
        {"creative_id": st.one_of(texts, numbers), "label": st.one_of(st.sampled_from(CLASSES), texts, numbers),
         "reviewer": st.one_of(texts, numbers, json_values), "note": st.one_of(texts, numbers, json_values)}))
    seen: Counter[int] = Counter()

    @FUZZ
    @given(body=bodies, header=st.sampled_from(["key", "key", "origin", "origin", "none", "evil-origin"]))
    def run(body: dict[str, Any], header: str) -> None:
        headers = {"Content-Type": "application/json",
                   **({"X-API-Key": KEY} if header != "none" else {}),
                   **({"Origin": BASE} if header == "origin" else {}),
                   **({"Origin": "http://evil.example"} if header == "evil-origin" else {})}
        before = len(store.labels())
        r = client.post("/api/labels", content=dumps(body), headers=headers)
        seen[r.status_code] += 1
        assert r.status_code < 500, (body, r.text)
        assert len(store.labels()) == before + (r.status_code == 200), r.text
        if r.status_code == 200:
            assert store.labels()[-1].reviewer == str(body["reviewer"]).strip()

    run()
    print(f"labels fuzz statuses: {dict(seen)}")
    assert seen[200] >= 15 and seen[422] >= 15 and seen[401] and seen[403], seen


def test_sign_in_never_5xx(console: tuple[TestClient, Store, list[str]]) -> None:
    client, _, _ = console
    seen: Counter[int] = Counter()

    @FUZZ
    @given(key=st.one_of(texts, st.just(KEY)), origin=st.sampled_from([BASE, None, "null", "http://evil.example"]))
    def run(key: str, origin: str | None) -> None:
        try:
            form = key.encode("utf-8", "surrogatepass")
        except UnicodeEncodeError:
            form = b"x"
        r = client.post("/session", content=b"key=" + form.replace(b"&", b"%26"), follow_redirects=False,
                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                 **({"Origin": origin} if origin else {})})
        seen[r.status_code] += 1
        assert r.status_code < 500, (key, r.text)
        signed_in = "adcreative_session=" in r.headers.get("set-cookie", "")
        assert signed_in == (key == KEY and origin in (BASE, None)), (key, origin)

    run()
    print(f"sign-in fuzz statuses: {dict(seen)}")
    assert seen[303] and seen[403], seen


schema = pytest.importorskip("schemathesis").pytest.from_fixture("console_schema")


@pytest.fixture()
def console_schema(console: tuple[TestClient, Store, list[str]]) -> Any:
    import schemathesis

    return schemathesis.openapi.from_asgi("/openapi.json", console[0].app, headers={"Host": "127.0.0.1:8765"})


@pytest.mark.slow
@schema.parametrize()
@SCHEMA_FUZZ
def test_openapi_operations_never_5xx(case: Any) -> None:
    r = case.call(base_url=BASE, headers={"X-API-Key": KEY})
    assert r.status_code < 500, (case.path, case.body, r.text)
    assert r.status_code != 421  # the fuzz reached the routes (a loopback Host)
