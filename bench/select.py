"""Benchmark of the select stage's serving path.

1. In-process latency of ``Selector.rank``: the serving path and the reference path (``reference=True``:
   each model's own API, no serving tables, no propensity factor cache) side by side in one process,
   interleaved call by call, for 10, 100 and 1,000 candidates (those the bundle has), without and with an
   impression event after every request: wall and CPU p50/p99/p99.9, their ratio, and how many decisions
   differ (must be 0). Then the reference path's parts (NumPy list-wise scores, the policy's exploration
   and propensity, the ad pCTR) and the same list-wise model in torch.
2. HTTP: a real ``adcreative serve --workers W`` on 127.0.0.1 and an open-loop load generator (requests are
   due at fixed times whatever the server does; latency counts from the due time, so queueing is not
   hidden; bounded in count and time): ``POST /v1/select`` (100 candidates) at each offered rate for
   ``--seconds`` s — achieved rate, p50/p99, errors — and ``POST /v1/events`` (fsync before the 2xx).
   ``--repeats`` runs of the whole table; the median per cell is printed beside every run's, with the load
   average, because the 2 cores are shared with other jobs.

    python bench/select.py                                  # 500, 1000, 2000 rps × 10 s, 2 workers, 3 repeats
    python bench/select.py --rps 500,1000 --seconds 5 --repeats 1 --workers 1
    python bench/select.py --skip-http --creatives 1200                 # in-process only, up to 1,000 candidates
"""

from __future__ import annotations

import os
import sys

# this file is named like the stdlib's ``select`` module: drop its folder from sys.path before anything
# (asyncio, subprocess) imports ``select``
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from threadpoolctl import threadpool_limits

N_FEATURES = 26  # the length of represent's explicit feature vector (what a served creative table holds)


def pct(a: list[float] | np.ndarray) -> tuple[float, float]:
    x = np.asarray(a) * 1000
    return (float(np.percentile(x, 50)), float(np.percentile(x, 99))) if len(x) else (float("nan"), float("nan"))


def timed(fn: Any, items: list[Any]) -> tuple[float, float, float, float]:
    lat, cpu = [], []
    for it in items:
        t, c = time.perf_counter(), time.thread_time()
        fn(it)
        lat.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return (*pct(lat), *pct(cpu))


def make_requests(ids: list[str], ad_id: str, n: int, k: int, seed: int = 0) -> list[Any]:
    from adcreative.select.selector import RankRequest

    rng = np.random.default_rng(seed)
    return [RankRequest(user_id=f"u{i}", ad_id=ad_id, candidates=[str(c) for c in rng.choice(ids, k, replace=False)],
                        user={"segment": int(rng.integers(4)), **{f"x{j}": float(rng.normal()) for j in range(4)}})
            for i in range(n)]


def side_by_side(bundle_dir: Path, n: int, k: int, events: bool) -> dict[str, Any]:
    """``Selector.rank`` (the serving path) and ``Selector(reference=True)`` (each model's own API, the path
    before the serving tables and the propensity factor cache) on the same requests, interleaved call by call
    (which goes first alternates), so a change in the host's speed hits both alike. Each has its own bundle
    copy with the same seeds, so both make the same draws; their decisions are compared after each call
    (outside the timing). ``events``: an impression of the shown creative is fed to both after every
    request (``Selector.observe``), so the cached factors of that arm go stale every time."""
    from adcreative.select.bundle import Bundle
    from adcreative.select.selector import Selector

    sels = {"reference": Selector(Bundle.load(bundle_dir), reference=True), "serving": Selector(Bundle.load(bundle_dir))}
    reqs = make_requests(sels["serving"].bundle.creatives.ids, sels["serving"].bundle.ad_id, n + 200, k)
    wall: dict[str, list[float]] = {name: [] for name in sels}
    cpu: dict[str, list[float]] = {name: [] for name in sels}
    mismatch = 0
    names = list(sels)
    for i, r in enumerate(reqs):
        out = {}
        for name in (names if i % 2 else names[::-1]):
            sel = sels[name]
            t, c = time.perf_counter(), time.thread_time()
            out[name] = sel.rank(r)
            if i >= 200:                               # the first 200 calls warm both up
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.thread_time() - c)
        a, b = out["reference"], out["serving"]
        mismatch += (a.ranked != b.ranked or a.explored != b.explored
                     or abs(a.propensity - b.propensity) > 1e-9 * a.propensity)
        if events:
            for sel in sels.values():
                sel.observe("impression", a.ranked[0])
    q = (50, 99, 99.9)
    return {"wall": {m: np.percentile(np.asarray(v) * 1000, q) for m, v in wall.items()},
            "cpu": {m: np.percentile(np.asarray(v) * 1000, q) for m, v in cpu.items()}, "mismatch": mismatch}


def in_process(bundle_dir: Path, n: int, k: int) -> dict[str, tuple[float, float, float, float]]:
    """The reference path's parts (each model's own API), and the list-wise model in torch for comparison."""
    import torch

    from adcreative.select import SELECT_MODELS
    from adcreative.select.bandit import BetaVisualTS
    from adcreative.select.bundle import Bundle
    from adcreative.select.data import hash_user
    from adcreative.select.selector import Selector

    torch.set_num_threads(1)
    b = Bundle.load(bundle_dir)
    sel = Selector(b, reference=True)
    reqs = make_requests(b.creatives.ids, b.ad_id, n, k)
    for r in reqs[:200]:
        sel.rank(r)
    sc, pol = b.creative_scorer, b.policy
    assert pol is not None
    prepared = []
    for r in reqs:
        rows = b.creatives.index_of(r.candidates)
        u = hash_user(r.user, sc.user_cat_fields, sc.n_buckets)
        x = sel._user_numeric(r.user)
        prepared.append((r, rows, u, x, sc.score(u, rows, x)))
    out = {"  list-wise model scores (NumPy)": timed(lambda p: sc.score(p[2], p[1], p[3]), prepared),
           "  policy: order + propensity (exploit)": timed(
               lambda p: pol.rank(p[0].candidates, None, p[4], explore=False, rows=sel._policy_rows[p[1]]), prepared),
           "  policy: order + propensity (explore)": timed(
               lambda p: pol.rank(p[0].candidates, None, p[4], explore=True, rows=sel._policy_rows[p[1]]), prepared),
           "  ad pCTR (NumPy)": timed(lambda p: b.ad_scorer.logit(p[2], p[3], sel._ad_bucket, 0), prepared)}
    if isinstance(pol, BetaVisualTS):
        pol.cache_p_top()
        out["  policy: order + propensity (exploit), factors cached (serving)"] = timed(
            lambda p: pol.rank(p[0].candidates, None, p[4], explore=False, rows=sel._policy_rows[p[1]]), prepared)
    model = SELECT_MODELS.load(b.directory / b.manifest["current"] / "creative_ranker")
    feats = torch.from_numpy(b.creatives.features)

    def torch_score(p: Any) -> None:
        with torch.no_grad():
            model(torch.from_numpy(p[2][None, :]), torch.from_numpy(p[3][None, :]), feats[torch.from_numpy(p[1])][None],
                  None, torch.zeros(1, k, sc.pair_dim), None)

    out["list-wise model in torch (no_grad, 1 thread), for comparison"] = timed(torch_score, prepared[:1000])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(url: str, bodies: list[bytes], rps: float, seconds: float, headers: dict[str, str] | None = None,
               connections: int = 64) -> tuple[list[float], int, float]:
    """Open-loop load over raw keep-alive HTTP/1.1 connections (a lean client, so the shared cores go to the
    server). Request i is due at ``i / rps``; a free connection sends it then (or at once if late), and its
    latency counts from the due time. Bounded: exactly ``len(bodies)`` requests; whatever is not answered by
    ``seconds + 5`` s is an error. Returns latencies of answered requests, errors and elapsed seconds."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    host, port, path = u.hostname or "127.0.0.1", u.port or 80, u.path
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    payloads = [f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
    lat: list[float] = []                 # answered with 200
    nxt = 0
    start = time.perf_counter()
    deadline = start + seconds + 5.0

    async def worker() -> None:
        nonlocal nxt
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return
        try:
            while nxt < len(payloads):
                i = nxt
                nxt += 1
                due = start + i / rps
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                if time.perf_counter() > deadline:
                    continue
                writer.write(payloads[i])
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(0.01, deadline - time.perf_counter()))
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    await reader.readexactly(length)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return  # this connection is done; its request counts as an error
                if int(head.split(b" ", 2)[1]) == 200:
                    lat.append(time.perf_counter() - due)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return lat, len(payloads) - len(lat), time.perf_counter() - start


def start_server(bundle_dir: Path, workers: int, events: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "adcreative", "serve", "--model", str(bundle_dir), "--port", str(port),
                             "--events", str(events), "--api-keys", "bench", "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    raise RuntimeError("server did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every process of a process group (the server's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[2]) == pgid:            # fields after ")": state ppid pgrp ...; utime, stime are 12th/13th
            total += (int(f[11]) + int(f[12])) / tick
    return total


def http_run(base: str, pgid: int, rates: list[float], seconds: float, k: int, n_creatives: int
             ) -> list[tuple[Any, ...]]:
    import json

    import httpx

    rng = np.random.default_rng(1)
    ids = [f"sim_{j}" for j in range(n_creatives)]
    n = int(max(rates) * seconds)
    bodies = [json.dumps({"user_id": f"u{i}", "ad_id": "sim", "candidates": list(rng.choice(ids, k, replace=False)),
                          "user": {"segment": int(rng.integers(4)), **{f"x{j}": float(rng.normal()) for j in range(4)}}
                          }).encode() for i in range(n)]
    asyncio.run(load(base + "/v1/select", bodies[:400], 200, 2))                     # warm-up, every worker
    rows = []
    for rps in rates:
        m = int(rps * seconds)
        s0, c0 = group_cpu(pgid), time.process_time()
        lat, err, el = asyncio.run(load(base + "/v1/select", bodies[:m], rps, seconds))
        cpu_s, cpu_c = (group_cpu(pgid) - s0) / max(1, len(lat)), (time.process_time() - c0) / max(1, len(lat))
        rows.append(("POST /v1/select (100 candidates)", rps, len(lat) / el, *pct(lat), m, err, cpu_s * 1e3, cpu_c * 1e3))
    ev_rps = 200.0
    before = httpx.get(base + "/health").json()["events_logged"]
    t = time.time_ns()
    ev = [json.dumps({"events": [{"kind": "impression", "request_id": f"r{t}-{i}", "user_id": f"u{i}", "ad_id": "sim",
                                  "creative_id": ids[i % len(ids)]}]}).encode() for i in range(int(ev_rps * seconds))]
    s0, c0 = group_cpu(pgid), time.process_time()
    lat, err, el = asyncio.run(load(base + "/v1/events", ev, ev_rps, seconds, headers={"X-API-Key": "bench"}))
    cpu_s, cpu_c = (group_cpu(pgid) - s0) / max(1, len(lat)), (time.process_time() - c0) / max(1, len(lat))
    rows.append(("POST /v1/events (1 event, fsync)", ev_rps, len(lat) / el, *pct(lat), len(ev), err, cpu_s * 1e3,
                 cpu_c * 1e3))
    logged = httpx.get(base + "/health").json()["events_logged"] - before
    assert logged == len(ev) - err, (logged, len(ev), err)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creatives", type=int, default=120)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--requests", type=int, default=5000, help="in-process rank calls (per path and row)")
    ap.add_argument("--inprocess-candidates", default="10,100,1000",
                    help="candidate counts of the in-process side-by-side table (at most --creatives)")
    ap.add_argument("--rps", default="500,1000,2000", help="offered loads for /v1/select (comma-separated)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-http", action="store_true")
    a = ap.parse_args(argv)
    threadpool_limits(1)
    from adcreative.select.simulator import build_bundle

    print(f"cores visible: {os.cpu_count()}, load average (1/5/15 min): "
          + " / ".join(f"{x:.1f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        feats = np.random.default_rng(0).standard_normal((a.creatives, N_FEATURES)).astype(np.float32)
        t = time.perf_counter()
        bdir = build_bundle(Path(tmp) / "bundle", feats, n_logged=20000, epochs=2)
        print(f"bundle: {a.creatives} creatives × {N_FEATURES} features, joint model trained on 20000 simulated "
              f"impressions in {time.perf_counter() - t:.1f} s")
        ks = [int(x) for x in a.inprocess_candidates.split(",")]
        print(f"\n## In-process `Selector.rank`, serving path vs reference path, side by side (target: serving p99 "
              f"≤ 0.2 ms at 100 candidates); {a.requests} requests per row, interleaved call by call")
        print("wall = what a caller waits (includes preemption by the other jobs on the 2 shared cores); "
              "CPU = this thread's own CPU time; ratio = serving / reference; mismatches = requests whose order, "
              "exploration flag or propensity (rel 1e-9) differ")
        print("| candidates | events | path | load avg | wall p50 ms | wall p99 ms | wall p99.9 ms | CPU p50 ms | "
              "CPU p99 ms | CPU p99.9 ms | mismatches |\n|---|---|---|---|---|---|---|---|---|---|---|")
        for k in ks:
            if k > a.creatives:
                print(f"| {k} | | (skipped: the bundle has {a.creatives} creatives) | | | | | | | | |")
                continue
            for events in (False, True):
                la = os.getloadavg()[0]
                r = side_by_side(bdir, a.requests, k, events)
                w, c = r["wall"], r["cpu"]
                ev = "1 per request" if events else "none"
                for m in ("reference", "serving"):
                    print(f"| {k} | {ev} | {m} | {la:.1f} | {w[m][0]:.3f} | {w[m][1]:.3f} | {w[m][2]:.3f} | "
                          f"{c[m][0]:.3f} | {c[m][1]:.3f} | {c[m][2]:.3f} | {r['mismatch'] if m == 'serving' else ''} |")
                rw, rc = w["serving"] / w["reference"], c["serving"] / c["reference"]
                print(f"| {k} | {ev} | **ratio** | | **{rw[0]:.2f}** | **{rw[1]:.2f}** | {rw[2]:.2f} | {rc[0]:.2f} | "
                      f"{rc[1]:.2f} | {rc[2]:.2f} | |")
        res = in_process(bdir, a.requests, min(a.candidates, a.creatives))
        print(f"\nThe reference path's parts ({a.candidates} candidates), and the torch model for comparison:")
        print("| path | wall p50 ms | wall p99 ms | CPU p50 ms | CPU p99 ms |\n|---|---|---|---|---|")
        for name, (p50, p99, c50, c99) in res.items():
            print(f"| {name} | {p50:.3f} | {p99:.3f} | {c50:.3f} | {c99:.3f} |")
        if a.skip_http:
            return 0
        rates = [float(x) for x in a.rps.split(",")]
        runs = []
        for rep in range(a.repeats):
            proc, base = start_server(bdir, a.workers, Path(tmp) / f"events-{rep}.jsonl")
            try:
                la = os.getloadavg()[0]
                runs.append((la, http_run(base, proc.pid, rates, a.seconds, a.candidates, a.creatives)))
            finally:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=20)
        print(f"\n## HTTP on 127.0.0.1: `serve --workers {a.workers}`, open-loop, {a.seconds:g} s per rate, "
              f"{a.repeats} runs (target: 2000 rps sustained, p99 ≤ 20 ms, no errors)")
        print("latency from each request's due time; achieved = answered requests / elapsed; CPU ms/request = "
              "CPU time the server's processes (all workers) and the load generator used, per answered request — "
              "what the work costs, whatever else runs on the cores")
        print("| endpoint | offered rps | run | load avg | achieved rps | p50 ms | p99 ms | requests | errors "
              "| server CPU ms/req | client CPU ms/req |\n|---|---|---|---|---|---|---|---|---|---|---|")
        for i in range(len(runs[0][1])):
            cells = [(la, rows[i]) for la, rows in runs]
            for j, (la, (name, rps, ach, p50, p99, n, err, cs, cc)) in enumerate(cells):
                print(f"| {name} | {rps:g} | {j + 1} | {la:.1f} | {ach:.0f} | {p50:.2f} | {p99:.2f} | {n} | {err} | "
                      f"{cs:.3f} | {cc:.3f} |")
            med = np.median(np.array([[r[2], r[3], r[4], r[6], r[7], r[8]] for _, r in cells]), axis=0)
            print(f"| {cells[0][1][0]} | {cells[0][1][1]:g} | **median** | {np.median([c[0] for c in cells]):.1f} | "
                  f"**{med[0]:.0f}** | **{med[1]:.2f}** | **{med[2]:.2f}** | {cells[0][1][5]} | **{med[3]:.0f}** | "
                  f"{med[4]:.3f} | {med[5]:.3f} |")
        sel = [np.median([rows[i][7] + rows[i][8] for _, rows in runs]) for i in range(len(rates))]
        print(f"\nCPU per /v1/select request (server + client): {min(sel):.3f}–{max(sel):.3f} ms, so 2 dedicated cores "
              f"would carry about {2000 / max(sel):.0f}–{2000 / min(sel):.0f} requests/s with this client on them")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
