"""Review console: queue order, durable labels, 4xx on bad requests, RF1M export, and a real browser click."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adcreative.cli import main
from adcreative.console.app import create_app
from adcreative.core.store import Store
from adcreative.core.types import CLASSES, Product, Verdict
from adcreative.generate.compositor.generator import Compositor
from adcreative.generate.provenance import generate_and_store
from adcreative.inspect.datasets.formats import read_dataset


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
    client = TestClient(create_app(reviewed_store, api_key="s3cret"))
    q = client.get("/api/queue").json()
    assert [round(x["verdict"]["p_available"], 2) for x in q] == [0.52, 0.7, 0.1, 0.95]  # least certain first
    assert client.get(q[0]["image"]).headers["content-type"] == "image/png"
    cid = q[0]["creative_id"]
    body = {"creative_id": cid, "label": "space_mismatch", "reviewer": "ana"}
    assert client.post("/api/labels", json=body).status_code == 401
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


def test_the_human_band_heads_the_queue(reviewed_store: Store) -> None:
    c = reviewed_store.creatives()[0]  # the surest (P 0.95): last in the queue until the decision sends it to a human
    reviewed_store.add_verdicts([Verdict(c.id, "rfnet-test", {"available": 0.95, "unsuitable": 0.05}, band="human",
                                         ood=7.5)])
    client = TestClient(create_app(reviewed_store))
    q = client.get("/api/queue").json()
    assert q[0]["creative_id"] == c.id and q[0]["verdict"]["band"] == "human" and q[0]["verdict"]["ood"] == 7.5
    b = client.get("/api/bands").json()
    assert b["human"] == 1 and b["none"] == 3 and b["awaiting_review"] == 4


def test_export_labels_round_trip(reviewed_store: Store, tmp_path: Path) -> None:
    client = TestClient(create_app(reviewed_store))
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
    assert main(["--home", str(reviewed_store.home), "dataset", "export-labels", "--out", str(out)]) == 2  # not empty


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def live_console(reviewed_store: Store) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(reviewed_store), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(5)


@pytest.mark.slow
def test_browser_review_click(live_console: str, reviewed_store: Store, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    pw = pytest.importorskip("playwright.sync_api")
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"])
        page = browser.new_page()
        page.goto(live_console)
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == 4
        page.fill("#reviewer", "dana")
        first = page.locator(".card").first
        cid = first.get_attribute("data-id")
        first.locator("button[data-label='shape_hallucination']").click()
        page.wait_for_selector(".card.done")
        assert "saved" in first.locator(".msg").inner_text()
        page.screenshot(path=str(tmp_path / "console.png"))
        browser.close()
    assert reviewed_store.latest_labels()[str(cid)].label == "shape_hallucination"
