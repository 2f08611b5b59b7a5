"""The selection service: validation 4xx, API keys, durable events across a restart, hot reload, CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

pytest.importorskip("torch")

from fastapi.testclient import TestClient

from adcreative.select.bundle import Bundle
from adcreative.select.service import EventLog, create_app
from adcreative.select.simulator import build_bundle
from tests.paths import REPO

ROOT = REPO


KEY = "test-key"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    feats = np.random.default_rng(0).standard_normal((12, 16)).astype(np.float32)
    return build_bundle(tmp_path_factory.mktemp("b") / "bundle", feats, n_logged=1500, epochs=1)


def _req(**kw: object) -> dict:
    body = {"user_id": "u1", "ad_id": "sim", "candidates": [f"sim_{j}" for j in range(12)],
            "user": {"segment": 1, "x0": 0.3, "x1": -1.0, "x2": 0.0, "x3": 0.5}}
    body.update(kw)
    return body


def _ev(i: int, kind: str = "impression") -> dict:
    return {"kind": kind, "request_id": f"r{i}", "user_id": "u", "ad_id": "sim", "creative_id": f"sim_{i % 12}"}


def test_select_ranks_and_validates(bundle_dir: Path, tmp_path: Path) -> None:
    app = create_app(bundle_dir, events_path=tmp_path / "ev.jsonl", api_keys=[KEY], reload_interval=0)
    with TestClient(app) as c:
        r = c.post("/v1/select", json=_req())
        assert r.status_code == 200, r.text
        assert r.headers["server-timing"].startswith("rank;dur=")
        out = r.json()
        assert sorted(out["ranked"]) == sorted(_req()["candidates"])
        assert out["scores"] == sorted(out["scores"], reverse=True) or out["explored"]
        assert 0 < out["propensity"] <= 1 and 0 < out["ad_pctr"] < 1
        assert c.post("/v1/select", json=_req(explore=False)).json()["explored"] is False
        assert c.post("/v1/select", json=_req(explore=True)).json()["explored"] is True
        cases = [
            (_req(candidates=[]), 422, "candidates"),
            (_req(candidates=["sim_1", "nope"]), 422, "unknown creative ids: nope"),
            (_req(candidates=["sim_1", "sim_1"]), 422, "duplicate candidate ids: sim_1"),
            (_req(user={"x0": "tall"}), 422, "user field 'x0' must be numeric"),
            (_req(position=-1), 422, "position"),
            ({"ad_id": "sim", "candidates": ["sim_1"]}, 422, "user_id"),
            (_req(ad_id="other"), 404, "unknown ad 'other'"),
        ]
        for body, code, msg in cases:
            r = c.post("/v1/select", json=body)
            assert r.status_code == code, (body, r.text)
            assert msg in r.text, r.text
        assert c.get("/openapi.json").json()["paths"].keys() >= {"/v1/select", "/v1/events", "/health"}


def test_events_need_api_key_and_are_logged(bundle_dir: Path, tmp_path: Path) -> None:
    from adcreative.core.store import Store

    store = Store(home=tmp_path / "store")
    app = create_app(bundle_dir, events_path=tmp_path / "ev.jsonl", api_keys=[KEY], store=store, reload_interval=0)
    with TestClient(app) as c:
        assert c.post("/v1/events", json={"events": [_ev(0)]}).status_code == 401
        assert c.post("/v1/events", json={"events": [_ev(0)]}, headers={"X-API-Key": "bad"}).status_code == 403
        bad = {"events": [{**_ev(0), "kind": "view"}]}
        r = c.post("/v1/events", json=bad, headers={"X-API-Key": KEY})
        assert r.status_code == 422 and "kind" in r.text
        r = c.post("/v1/events", json={"events": [{**_ev(1), "propensity": 1.5}]}, headers={"X-API-Key": KEY})
        assert r.status_code == 422 and "propensity" in r.text
        r = c.post("/v1/events", json={"events": [_ev(1), _ev(1, "click")]}, headers={"X-API-Key": KEY})
        assert r.status_code == 200 and r.json() == {"accepted": 2, "duplicates": 0, "total_logged": 2}
        # a client retrying a batch it got no answer for (same request_id, kind, creative_id) duplicates nothing
        r = c.post("/v1/events", json={"events": [_ev(1, "click"), _ev(2), _ev(1)]}, headers={"X-API-Key": KEY})
        assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 2, "total_logged": 3}
        assert c.get("/health").json()["events_logged"] == 3
    assert [(e["kind"], e["request_id"]) for e in EventLog.read(tmp_path / "ev.jsonl")] == [
        ("impression", "r1"), ("click", "r1"), ("impression", "r2")]
    assert [(e.kind, e.request_id) for e in store.events()] == [("impression", "r1"), ("click", "r1"), ("impression", "r2")]


def _append_batches(path: str, worker: int, n_batches: int, q: object) -> None:
    """One writer process: batches of 4 events with a 2 KB payload (a torn or interleaved write would corrupt
    lines); every other batch is a retry of the previous one, and every worker also writes the shared keys."""
    log = EventLog(path)
    totals = []
    for b in range(n_batches):
        i = b - (b % 2)  # b and b+1 write the same events: a retry
        batch = [{**_ev(0), "request_id": f"w{worker}-{i}-{j}", "context": {"pad": "x" * 2048}} for j in range(3)]
        batch.append({**_ev(0), "request_id": f"shared-{i}"})        # also written by every other worker
        totals.append(log.append(batch)[1])
    log.close()
    q.put(totals)  # type: ignore[attr-defined]


def test_event_log_shared_by_processes_loses_interleaves_and_duplicates_nothing(tmp_path: Path) -> None:
    import multiprocessing as mp

    path = tmp_path / "ev.jsonl"
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_append_batches, args=(str(path), w, 60, q)) for w in range(4)]
    for p in procs:
        p.start()
    totals = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    lines = path.read_bytes().splitlines()
    recs = [json.loads(line) for line in lines]                      # every line whole: nothing interleaved
    keys = [(r["request_id"], r["kind"], r["creative_id"]) for r in recs]
    assert len(keys) == len(set(keys))                               # no retry and no shared key twice
    expected = {f"w{w}-{i}-{j}" for w in range(4) for i in range(0, 60, 2) for j in range(3)} | {
        f"shared-{i}" for i in range(0, 60, 2)}
    assert {k[0] for k in keys} == expected                          # nothing lost
    assert all(t == sorted(t) for t in totals) and max(max(t) for t in totals) == len(recs)
    # a reader opened now counts the same, and sees nothing new to feed a policy
    log = EventLog(path)
    assert log.count == len(recs) and log.drain() == []
    log.close()


def test_store_converges_to_the_log_after_a_restart(tmp_path: Path) -> None:
    """Events logged but not mirrored (a crash between the log's fsync and the store write) reach the store at the
    next start; replaying again adds nothing."""
    from adcreative.core.store import Store
    from adcreative.select.service import sync_store

    store = Store(home=tmp_path / "store")
    path = tmp_path / "ev.jsonl"
    app = create_app(bundle_dir_for_store(tmp_path), events_path=path, api_keys=[KEY], store=store, reload_interval=0)
    with TestClient(app) as c:
        assert c.post("/v1/events", json={"events": [_ev(1), _ev(2)]}, headers={"X-API-Key": KEY}).status_code == 200
    log = EventLog(path)  # the crash: these reach the log only
    now = "2025-01-01T00:00:00+00:00"
    log.append([{**_ev(i), "position": 0, "propensity": None, "context": {}, "ts": now} for i in (2, 3, 4)])
    log.close()
    assert len(store.events()) == 2
    assert sync_store(path, store) == 2                               # r3, r4 (r1, r2 were there)
    assert sorted(e.request_id for e in store.events()) == ["r1", "r2", "r3", "r4"]
    assert sync_store(path, store) == 0 and len(store.events()) == 4


_BUNDLE: list[Path] = []


def bundle_dir_for_store(tmp_path: Path) -> Path:
    if not _BUNDLE:
        feats = np.random.default_rng(0).standard_normal((12, 16)).astype(np.float32)
        _BUNDLE.append(build_bundle(tmp_path / "b-store", feats, n_logged=600, epochs=1))
    return _BUNDLE[0]


def test_hot_reload_swaps_model_without_failed_requests(bundle_dir: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "bundle"
    shutil.copytree(bundle_dir, d)
    app = create_app(d, events_path=tmp_path / "ev.jsonl", api_keys=[KEY], reload_interval=0.05)
    feats = np.random.default_rng(1).standard_normal((12, 16)).astype(np.float32)
    with TestClient(app) as c:
        v0 = c.get("/health").json()["model_version"]
        writer = threading.Thread(target=build_bundle, args=(d, feats), kwargs={"n_logged": 800, "epochs": 1, "seed": 5})
        writer.start()
        codes, versions = [], set()
        deadline = time.time() + 60
        while time.time() < deadline:
            r = c.post("/v1/select", json=_req())
            codes.append(r.status_code)
            versions.add(r.json().get("model_version"))
            if not writer.is_alive() and len(versions) > 1:
                break
        writer.join()
        assert set(codes) == {200}, codes
        assert len(versions) >= 2 and v0 in versions
        assert c.get("/health").json()["model_version"] == Bundle.load(d).version
        # the admin endpoint reloads on demand and needs the key
        assert c.post("/v1/admin/reload").status_code == 401
        assert c.post("/v1/admin/reload", headers={"X-API-Key": KEY}).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(bundle: Path, events: Path, port: int, workers: int = 1, reload_interval: float = 0) -> subprocess.Popen:
    """A real ``adcreative serve`` in its own process group (so a SIGKILL reaches every worker, like a crash)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "adcreative", "serve", "--model", str(bundle), "--port", str(port),
                             "--events", str(events), "--api-keys", KEY, "--reload-interval", str(reload_interval),
                             "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _wait_up(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    import httpx

    t = time.time()
    while time.time() - t < timeout:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.mark.slow
def test_no_acknowledged_event_is_lost_when_the_server_is_killed(bundle_dir: Path, tmp_path: Path) -> None:
    """A real uvicorn process is SIGKILLed while clients write events; every acknowledged event is in
    the log after the restart, and the restarted server keeps appending."""
    import httpx

    events = tmp_path / "events.jsonl"
    port = _free_port()
    proc = _start(bundle_dir, events, port)
    acked: list[str] = []
    try:
        _wait_up(port, proc)
        stop = threading.Event()

        def writer(w: int) -> None:
            i = 0
            with httpx.Client(timeout=2) as c:
                while not stop.is_set():
                    batch = [{**_ev(i), "request_id": f"w{w}-{i}-{j}"} for j in range(3)]
                    i += 1
                    try:
                        r = c.post(f"http://127.0.0.1:{port}/v1/events", json={"events": batch},
                                   headers={"X-API-Key": KEY})
                    except httpx.HTTPError:
                        continue  # the server died mid-request: not acknowledged
                    if r.status_code == 200:
                        acked.extend(e["request_id"] for e in batch)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        t0 = time.time()
        while len(acked) < 60 and time.time() - t0 < 30:
            time.sleep(0.05)
        _kill(proc)     # no graceful shutdown: only fsync'd data survives
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert len(acked) >= 60
        proc = _start(bundle_dir, events, port)
        _wait_up(port, proc)
        logged = {e["request_id"] for e in EventLog.read(events)}
        assert set(acked) <= logged, f"lost {len(set(acked) - logged)} acknowledged events"
        n_before = httpx.get(f"http://127.0.0.1:{port}/health").json()["events_logged"]
        assert n_before == len(EventLog.read(events))
        r = httpx.post(f"http://127.0.0.1:{port}/v1/events", json={"events": [_ev(999)]}, headers={"X-API-Key": KEY})
        assert r.status_code == 200 and r.json()["total_logged"] == n_before + 1
        # the log stays valid JSON lines (a torn tail from the kill was repaired at startup)
        assert all(json.loads(line) for line in events.read_text().splitlines())
    finally:
        _kill(proc)


@pytest.mark.slow
def test_workers_share_the_model_folder_and_the_event_log(bundle_dir: Path, tmp_path: Path) -> None:
    """``serve --workers 2``: concurrent clients with retries lose, interleave and duplicate no event; selects never
    fail; a new bundle version is picked up by every worker."""
    import shutil

    import httpx

    d = tmp_path / "bundle"
    shutil.copytree(bundle_dir, d)
    events = tmp_path / "events.jsonl"
    port = _free_port()
    proc = _start(d, events, port, workers=2, reload_interval=0.2)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(port, proc)
        acked: set[str] = set()
        codes: list[int] = []
        lock = threading.Lock()

        def writer(w: int) -> None:
            with httpx.Client(timeout=10) as c:
                for i in range(40):
                    # ~6 KB per batch (more than PIPE_BUF), each string and context within the service's limits
                    pad = {"pad": "y" * 1000, "pad2": "z" * 1000}
                    batch = [{**_ev(i), "request_id": f"w{w}-{i}-{j}", "context": pad} for j in range(3)]
                    for _ in range(2):  # the client retries every batch once: the retry must add nothing
                        r = c.post(f"{base}/v1/events", json={"events": batch}, headers={"X-API-Key": KEY})
                        assert r.status_code == 200, r.text
                    with lock:
                        acked.update(e["request_id"] for e in batch)

        def selector() -> None:
            with httpx.Client(timeout=10) as c:
                for _ in range(60):
                    codes.append(c.post(f"{base}/v1/select", json=_req()).status_code)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)] + [threading.Thread(target=selector)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(codes) == {200}
        recs = [json.loads(line) for line in events.read_bytes().splitlines()]
        assert sorted(r["request_id"] for r in recs) == sorted(acked) and len(recs) == 4 * 40 * 3
        # a new version: every worker reloads (each /health on a fresh connection may land on either worker)
        old = httpx.get(f"{base}/health").json()["model_version"]
        feats = np.random.default_rng(2).standard_normal((12, 16)).astype(np.float32)
        new = build_bundle(d, feats, n_logged=600, epochs=1, seed=9) and Bundle.load(d).version
        assert new != old
        seen: dict[int, str] = {}
        deadline = time.time() + 60
        while time.time() < deadline and not (len(seen) >= 2 and set(seen.values()) == {new}):
            h = httpx.get(f"{base}/health", headers={"Connection": "close"}).json()
            seen[h["worker_pid"]] = h["model_version"]
            assert h["events_logged"] == len(recs)
        assert len(seen) >= 2 and set(seen.values()) == {new}, seen
    finally:
        _kill(proc)
