"""Review console: queue order, durable labels, 4xx on bad requests, RF1M export, sign-in, origin checks, and
real-Chromium tests: a review click, and hostile titles/copy/OCR text/ids that must never run script."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from adcreative.cli import main
from adcreative.cli.console import is_loopback
from adcreative.console.app import CSP, SESSION_COOKIE, create_app
from adcreative.core.store import Store
from adcreative.core.types import CLASSES, Label, Product, Verdict
from adcreative.generate.compositor.generator import Compositor
from adcreative.generate.provenance import generate_and_store
from adcreative.inspect.datasets.formats import read_dataset, split_for
from adcreative.inspect.datasets.rf1m import read_rf1m

BASE = "http://127.0.0.1:8765"  # a loopback Host, as a browser on the reviewer's machine sends


@pytest.fixture()
def reviewed_store(store: Store, sample_products: list[Product]) -> Store:
    store.add_products(sample_products[:2])
    gen = Compositor(scale=0.3)
    cs = []
    for p in sample_products[:2]:
        cs += generate_and_store(store, gen, p, n=2, aspects=["1:1"], seed=1)
    for c, p_av in zip(cs, (0.95, 0.52, 0.1, 0.7), strict=True):
        rest = (1 - p_av) / 5
        store.add_verdicts([Verdict(c.id, "rfnet-test", {k: (p_av if k == "available" else rest) for k in CLASSES})])
    return store


def test_queue_labels_and_errors(reviewed_store: Store) -> None:
    client = TestClient(create_app(reviewed_store, api_key="s3cret"), base_url=BASE)
    q = client.get("/api/queue").json()
    assert [round(x["verdict"]["p_available"], 2) for x in q] == [0.52, 0.7, 0.1, 0.95]  # least certain first
    assert client.get(q[0]["image"]).headers["content-type"] == "image/png"
    cid = q[0]["creative_id"]
    body = {"creative_id": cid, "label": "space_mismatch", "reviewer": "ana"}
    assert client.post("/api/labels", json=body).status_code == 401
    assert client.post("/api/labels", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    r = client.post("/api/labels", json=body, headers={"X-API-Key": "s3cret"})
    assert r.status_code == 200 and r.json()["stored"]
    # durable: a new Store on the same folder sees it; the labelled creative leaves the queue
    assert Store(home=reviewed_store.home).latest_labels()[cid].label == "space_mismatch"
    assert cid not in [x["creative_id"] for x in client.get("/api/queue").json()]
    h = {"X-API-Key": "s3cret"}
    assert client.post("/api/labels", json={**body, "label": "blurry"}, headers=h).status_code == 422
    assert client.post("/api/labels", json={**body, "creative_id": "nope"}, headers=h).status_code == 404
    assert client.post("/api/labels", json={"creative_id": cid}, headers=h).status_code == 422
    assert client.post("/api/labels", content=b"{not json", headers={**h, "Content-Type": "application/json"}).status_code == 422
    assert client.get("/api/queue?limit=0").status_code == 422
    # what the labels table cannot hold is a 422 naming the field, before anything is written
    for field, value in (("creative_id", "c" * 65), ("reviewer", "r" * 129), ("reviewer", "a\x00"),
                         ("note", "\ud800"), ("reviewer", "   ")):
        r = client.post("/api/labels", content=json.dumps({**body, field: value}),  # \ud800 escaped
                        headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 422 and field in r.text, (field, r.text)
    assert client.post("/api/labels", content=b"x" * (1 << 20), headers=h).status_code == 413
    assert len(Store(home=reviewed_store.home).labels()) == 1


def test_the_human_band_heads_the_queue(reviewed_store: Store) -> None:
    c = reviewed_store.creatives()[0]  # the surest (P 0.95): last in the queue until the decision sends it to a human
    reviewed_store.add_verdicts([Verdict(c.id, "rfnet-test", {"available": 0.95, "unsuitable": 0.05}, band="human",
                                         ood=7.5)])
    client = TestClient(create_app(reviewed_store), base_url=BASE)
    q = client.get("/api/queue").json()
    assert q[0]["creative_id"] == c.id and q[0]["verdict"]["band"] == "human" and q[0]["verdict"]["ood"] == 7.5
    b = client.get("/api/bands").json()
    assert b["human"] == 1 and b["none"] == 3 and b["awaiting_review"] == 4


def test_export_labels_round_trip(reviewed_store: Store, tmp_path: Path) -> None:
    client = TestClient(create_app(reviewed_store), base_url=BASE)
    q = client.get("/api/queue").json()
    for item, label in zip(q, ("available", "indistinctiveness", "available"), strict=False):
        assert client.post("/api/labels", json={"creative_id": item["creative_id"], "label": label,
                                                "reviewer": "bo"}).status_code == 200
    # a correction: the latest label wins
    client.post("/api/labels", json={"creative_id": q[0]["creative_id"], "label": "unsuitable", "reviewer": "cy"})
    out = tmp_path / "rf1m"
    assert main(["--home", str(reviewed_store.home), "dataset", "export-labels", "--out", str(out)]) == 0
    samples = read_dataset(out)
    assert sorted(s.label for s in samples) == ["available", "indistinctiveness", "unsuitable"]
    assert all(s.image.exists() and s.product is not None and s.product.exists() and s.title for s in samples)
    # what retraining and a renderer's calibration need: the placement mask, the renderer, the product's source
    stored = {c.id: c for c in reviewed_store.creatives()}
    for s in samples:
        c = stored[s.id]
        assert s.mask is not None and s.mask.read_bytes() == reviewed_store.blobs.get_bytes(c.mask_sha)
        assert s.renderer == "compositor" and s.generator == c.generator and s.product_id == c.product_id
        assert s.product_source == "sample" and s.split == split_for(c.product_id)
    assert len(read_rf1m(out)) == 3  # the RF1M-style label.txt beside the manifest holds the same rows
    assert main(["--home", str(reviewed_store.home), "dataset", "export-labels", "--out", str(out)]) == 2  # not empty


def test_security_headers_and_no_inline_script(reviewed_store: Store) -> None:
    client = TestClient(create_app(reviewed_store), base_url=BASE)
    for path in ("/", "/api/queue", "/static/review.js", "/nope"):
        r = client.get(path)
        assert r.headers["content-security-policy"] == CSP and r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    html = client.get("/").text
    assert html.count("<script") == 1 and '<script src="/static/review.js"' in html and " on" not in html.lower()
    assert client.get("/docs").status_code == 404  # FastAPI's docs page needs inline script


def test_sign_in_sets_an_httponly_strict_cookie(reviewed_store: Store) -> None:
    client = TestClient(create_app(reviewed_store, api_key="s3cret"), base_url=BASE)
    assert 'name="key"' in client.get("/").text and "card" not in client.get("/").text
    r = client.post("/session", data={"key": "wrong"}, follow_redirects=False)
    assert r.status_code == 303 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    r = client.post("/session", data={"key": "s3cret"}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert r.status_code == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie and "s3cret" not in cookie
    page = client.get("/").text
    assert 'class="card"' in page and "s3cret" not in page
    cid = client.get("/api/queue").json()[0]["creative_id"]
    body = {"creative_id": cid, "label": "available", "reviewer": "ana"}
    assert client.post("/api/labels", json=body, headers={"Origin": BASE}).status_code == 200  # the cookie
    client.post("/session/end", headers={"Origin": BASE})
    assert client.post("/api/labels", json=body, headers={"Origin": BASE}).status_code == 401


def test_writes_must_come_from_this_origin_and_host(reviewed_store: Store) -> None:
    client = TestClient(create_app(reviewed_store), base_url=BASE)  # no key: loopback only, origin-checked
    cid = client.get("/api/queue").json()[0]["creative_id"]
    body = {"creative_id": cid, "label": "available", "reviewer": "ana"}
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:9999"},
                    {"Sec-Fetch-Site": "cross-site"}):
        assert client.post("/api/labels", json=body, headers=headers).status_code == 403, headers
        assert client.post("/session", data={"key": "x"}, headers=headers).status_code == 403, headers
    # DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends Host: evil.example
    rebind = TestClient(create_app(reviewed_store), base_url="http://evil.example:8765")
    assert rebind.post("/api/labels", json=body).status_code == 421
    assert rebind.get("/api/queue").status_code == 421
    assert reviewed_store.labels() == []
    assert client.post("/api/labels", json=body, headers={"Origin": BASE}).status_code == 200


def test_an_empty_key_is_no_key_and_only_loopback_runs_without_one(reviewed_store: Store, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    client = TestClient(create_app(reviewed_store, api_key=""), base_url=BASE)
    assert "card" in client.get("/").text  # no sign-in form: there is no key
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("no-such-host.invalid")
    for argv in (["console", "--host", "0.0.0.0"], ["console", "--host", "10.1.2.3", "--api-key", ""],
                 ["console", "--host", "0.0.0.0", "--api-key", "   "]):
        capsys.readouterr()
        assert main(["--home", str(tmp_path / "h"), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert "refusing to serve the console" in err and "--api-key" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ real browser --------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serve(store: Store, **kw: Any) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, **kw), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(5)


@pytest.fixture()
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium; scripts/setup.sh does it as root)")
    pw = pytest.importorskip("playwright.sync_api")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"])
        yield b
        b.close()


@pytest.mark.slow
def test_browser_review_click(reviewed_store: Store, browser: Any, tmp_path: Path) -> None:
    with _serve(reviewed_store, api_key="s3cret") as url:
        page = browser.new_page()
        page.goto(url)
        page.fill("input[name=key]", "s3cret")
        page.click("#sign-in button[type=submit]")
        page.wait_for_selector("html[data-ready='1']")  # the cards exist before review.js has wired them
        assert page.locator(".card").count() == 4
        assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly: no script can read it
        assert "s3cret" not in page.content()
        page.fill("#reviewer", "dana")
        first = page.locator(".card").first
        cid = first.get_attribute("data-id")
        first.locator("button[data-label='shape_hallucination']").click()
        page.wait_for_selector(".card.done")
        assert "saved" in first.locator(".msg").inner_text()
        page.screenshot(path=str(tmp_path / "console.png"))
    assert reviewed_store.latest_labels()[str(cid)].label == "shape_hallucination"


# Each payload reports itself if any of it runs: a dialog, a request to /pwned, a global, or the title.
PAYLOADS = [
    '<img src=x onerror="window.__pwned=1;fetch(\'/pwned?img\')">',
    "<script>window.__pwned=2;fetch('/pwned?script')</script>",
    '"><svg onload="window.__pwned=3;alert(3)">',
    "'><iframe srcdoc=\"<script>parent.__pwned=4</script>\"></iframe>",
    "</b></div><a href=javascript:alert(5) id=pw>x</a><style>body{display:none}</style>",
    "{{7*7}}{% raw %}${alert(6)}",
    '<img src=x onerror="document.title=\'PWNED\';new Image().src=\'/pwned?\'+document.cookie">',
]


@pytest.fixture()
def hostile_store(store: Store, sample_products: list[Product]) -> tuple[Store, list[str]]:
    """Creatives whose product title, copy, OCR text, verdict model id and ids are all payloads."""
    base = sample_products[0]
    gen = Compositor(scale=0.25)
    ids = []
    for i, payload in enumerate(PAYLOADS):
        pid = f"p{i}{payload}"[:128]
        store.add_products([dataclasses.replace(base, id=pid, title=payload, copy=f"copy {payload}")])
        c = generate_and_store(store, gen, store.get_product(pid), n=1, aspects=["1:1"], seed=i)[0]
        cid = f"{i}{payload}"[:64]
        store.add_creative(dataclasses.replace(c, id=cid), data=store.blobs.get_bytes(c.image_sha))
        store.add_label(Label(c.id, "available", "setup"))  # the plain-id copy leaves the review queue
        store.put_features("explicit", "1", {cid: {"text": f"ocr {payload}"}})
        store.add_verdicts([Verdict(cid, f"m{payload}"[:128], {k: 1 / len(CLASSES) for k in CLASSES})])
        ids.append(cid)
    return store, ids


@pytest.mark.slow
def test_hostile_text_never_runs_script(hostile_store: tuple[Store, list[str]], browser: Any) -> None:
    store, ids = hostile_store
    with _serve(store) as url:
        page = browser.new_page()
        fired: list[str] = []
        page.on("dialog", lambda d: (fired.append(f"dialog {d.message}"), d.dismiss()))
        # the creatives' own images carry "pwned" in their (encoded) ids; a payload's request goes to /pwned
        page.on("request", lambda r: fired.append(r.url) if urlsplit(r.url).path == "/pwned" else None)
        page.goto(url)
        page.wait_for_selector("html[data-ready='1']")
        page.wait_for_timeout(500)  # give any injected handler (onerror, onload, iframe) time to fire
        assert fired == []
        assert page.evaluate("window.__pwned") is None and page.title() == "adcreative review"
        # every payload is on the page as text, where it was put, and made no element of its own
        cards = page.locator(".card")
        shown = {cards.nth(i).get_attribute("data-id"): cards.nth(i) for i in range(cards.count())}
        assert set(shown) == set(ids)
        for i, payload in enumerate(PAYLOADS):
            card = shown[ids[i]]
            assert card.locator(".title").inner_text() == payload
            assert card.locator(".copy").inner_text() == f"copy: copy {payload}"
            assert card.locator(".ocr").inner_text() == f"read on the image: ocr {payload}"
            assert payload[:40] in card.locator(".verdict").inner_text()
        assert page.locator("iframe, svg, a#pw, .card script, .card style").count() == 0
        assert page.locator(".card img").count() == len(ids)  # only the creatives' own images
        assert all(page.locator(".card img").nth(i).evaluate("i => i.complete && i.naturalWidth > 0")
                   for i in range(len(ids)))  # their images load under the hostile ids
        # a label for a hostile id goes through the page's own script and is stored under that exact id
        page.fill("#reviewer", "<b>eve</b>")
        shown[ids[0]].locator("button[data-label='available']").click()
        page.wait_for_selector(".card.done")
        assert fired == [] and page.evaluate("window.__pwned") is None
    assert store.latest_labels()[ids[0]].reviewer == "<b>eve</b>"
