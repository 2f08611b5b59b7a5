"""Benchmark of the select stage.

1. In-process latency of ``Selector.rank`` for 100 candidates (NumPy serving path, Thompson exploration
   on), beside the same list-wise model run in torch (no_grad, 1 thread): p50/p99 and the ratio.
2. HTTP latency of ``POST /v1/select`` (100 candidates) at a fixed offered load on 127.0.0.1: a real
   ``adcreative serve`` process and an open-loop, bounded load generator (fixed request count and
   duration; latency counted from each request's scheduled send time, so queueing is not hidden).
   Also ``POST /v1/events`` (fsync before the 2xx) at a lower rate.
3. The simulated campaign: cumulative CTR of ours vs oracle, uniform, best fixed creative and Vowpal
   Wabbit ``--cb_explore_adf`` over the same N impressions.

    python bench/select.py                      # all three, defaults below
    python bench/select.py --rps 200 --seconds 10 --sim-n 20000
    python bench/select.py --skip-sim
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from threadpoolctl import threadpool_limits

from adcreative.select.simulator import image_features, quick_creatives, run_campaign


def cutouts() -> list:
    from PIL import Image, ImageDraw

    folder = ROOT.parent / "shared" / "data" / "products"
    files = sorted(folder.glob("*.png")) if folder.exists() else []
    if files:
        return [Image.open(p) for p in files]
    # no shared data: procedural RGBA products (ellipses/boxes in varied colours)
    rng = np.random.default_rng(0)
    out = []
    for j in range(6):
        im = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        col = (*[int(v) for v in rng.integers(0, 256, 3)], 255)
        (d.ellipse if j % 2 else d.rectangle)((30, 20, 170, 180), fill=col)
        out.append(im)
    return out


def pct(a: list[float] | np.ndarray) -> tuple[float, float]:
    x = np.asarray(a) * 1000
    return float(np.percentile(x, 50)), float(np.percentile(x, 99))


def in_process(bundle_dir: Path, n: int, k: int) -> dict[str, tuple[float, float, float, float]]:
    import torch

    from adcreative.select.bundle import Bundle
    from adcreative.select.models import CreativeListwiseModel
    from adcreative.select.selector import RankRequest, Selector

    torch.set_num_threads(1)
    b = Bundle.load(bundle_dir)
    sel = Selector(b)
    ids = b.creatives.ids
    rng = np.random.default_rng(0)
    reqs = [RankRequest(user_id=f"u{i}", ad_id=b.ad_id, candidates=list(rng.choice(ids, k, replace=False)),
                        user={"segment": int(rng.integers(4)), **{f"x{j}": float(rng.normal()) for j in range(4)}})
            for i in range(n)]
    for r in reqs[:50]:
        sel.rank(r)
    lat, cpu = [], []
    for r in reqs:
        t, c = time.perf_counter(), time.thread_time()
        sel.rank(r)
        lat.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    # the list-wise model alone (NumPy), to compare like for like with torch below
    sl, scpu = [], []
    sc = b.creative_scorer
    for r in reqs:
        t, c = time.perf_counter(), time.thread_time()
        rows = b.creatives.index_of(r.candidates)
        ucat = np.array([int(r.user["segment"]) % 4])
        sc.score(ucat, rows, np.array([r.user[f"x{j}"] for j in range(4)], np.float32))
        sl.append(time.perf_counter() - t)
        scpu.append(time.thread_time() - c)
    # the same list-wise model in torch, the path we did not take for serving
    vdir = b.directory / b.manifest["current"]
    model = CreativeListwiseModel.from_pretrained(vdir / "creative_ranker")
    feats = torch.from_numpy(b.creatives.features)
    tl, tcpu = [], []
    with torch.no_grad():
        for r in reqs[: min(n, 1000)]:
            t, c = time.perf_counter(), time.thread_time()
            rows = torch.from_numpy(b.creatives.index_of(r.candidates))
            ucat = torch.tensor([[int(r.user["segment"]) % 4]])
            unum = torch.tensor([[r.user[f"x{j}"] for j in range(4)]], dtype=torch.float32)
            model(ucat, unum, feats[rows][None], None, torch.zeros(1, k, 0), None)
            tl.append(time.perf_counter() - t)
            tcpu.append(time.thread_time() - c)
    return {"Selector.rank: list-wise scores + Thompson exploration + propensity + ad pCTR (NumPy)": (*pct(lat), *pct(cpu)),
            "list-wise creative model only, NumPy (served path)": (*pct(sl), *pct(scpu)),
            "list-wise creative model only, torch (no_grad, 1 thread)": (*pct(tl), *pct(tcpu))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(url: str, bodies: list[dict], rps: float, seconds: float, headers: dict | None = None,
               connections: int = 16) -> tuple[list[float], int, float, list[float]]:
    """Open-loop load generator over raw keep-alive HTTP/1.1 connections (a lean client, so the 2 shared
    cores go to the server, not to client-side JSON/HTTP libraries). Request i is due at ``i/rps``; its
    latency is counted from that due time, so queueing behind busy connections is not hidden. Bounded:
    exactly ``len(bodies)`` requests, and anything not sent by ``seconds + 5`` s counts as an error."""
    import json as _json
    from urllib.parse import urlsplit

    u = urlsplit(url)
    host, port, path = u.hostname or "127.0.0.1", u.port or 80, u.path
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    payloads = []
    for b in bodies:  # encode everything up front: the timed loop only writes bytes
        data = _json.dumps(b).encode()
        payloads.append(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}"
                        f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    lat: list[float] = []
    server: list[float] = []  # the handler's own time (Server-Timing header), where the service reports it
    errors = 0
    nxt = 0
    start = time.perf_counter()
    deadline = start + seconds + 5.0

    async def worker() -> None:
        nonlocal nxt, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while nxt < len(payloads):
                i = nxt
                nxt += 1
                due = start + i / rps
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                if time.perf_counter() > deadline:
                    errors += 1
                    continue
                writer.write(payloads[i])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    low = line.lower()
                    if low.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    elif low.startswith(b"server-timing:") and b"dur=" in low:
                        server.append(float(low.split(b"dur=")[1]) / 1000.0)
                await reader.readexactly(length)
                lat.append(time.perf_counter() - due)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return lat, errors, time.perf_counter() - start, server


def http_bench(bundle_dir: Path, rates: list[float], seconds: float, k: int) -> list[tuple]:
    import httpx

    port = free_port()
    events = Path(tempfile.mkdtemp()) / "events.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "adcreative", "serve", "--model", str(bundle_dir), "--port", str(port),
                             "--events", str(events), "--api-keys", "bench"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))
        ids = httpx.get(base + "/health").json()
        n = int(max(rates) * seconds)
        rng = np.random.default_rng(1)
        all_ids = [f"sim_{j}" for j in range(ids["creatives"])]
        bodies = [{"user_id": f"u{i}", "ad_id": "sim", "candidates": list(rng.choice(all_ids, k, replace=False)),
                   "user": {"segment": int(rng.integers(4)), **{f"x{j}": float(rng.normal()) for j in range(4)}}}
                  for i in range(n)]
        asyncio.run(load(base + "/v1/select", bodies[:100], 50, 2))                      # warm-up
        rows = []
        for rps in rates:
            lat, err, _, server = asyncio.run(load(base + "/v1/select", bodies[: int(rps * seconds)], rps, seconds))
            rows.append(("POST /v1/select (100 candidates)", rps, *pct(lat), len(lat), err, *pct(server)))
        ev_rps = 25.0
        ev = [{"events": [{"kind": "impression", "request_id": f"r{i}", "user_id": f"u{i}", "ad_id": "sim",
                           "creative_id": all_ids[i % len(all_ids)]}]} for i in range(int(ev_rps * seconds))]
        lat, err, _, _ = asyncio.run(load(base + "/v1/events", ev, ev_rps, seconds, headers={"X-API-Key": "bench"}))
        rows.append(("POST /v1/events (1 event, fsync)", ev_rps, *pct(lat), len(lat), err, float("nan"), float("nan")))
        logged = httpx.get(base + "/health").json()["events_logged"]
        assert logged == len(ev) - err, (logged, len(ev), err)
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--creatives", type=int, default=120)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rps", default="50,100,200", help="offered loads for /v1/select (comma-separated)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sim-n", type=int, default=20000)
    ap.add_argument("--sim-creatives", type=int, default=16)
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    a = ap.parse_args()
    threadpool_limits(1)
    cuts = cutouts()
    print(f"cores visible: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        from adcreative.select.simulator import build_bundle

        ims, masks = quick_creatives(cuts, a.creatives, seed=0)
        t = time.perf_counter()
        bdir = build_bundle(Path(tmp) / "bundle", image_features(ims, masks), n_logged=20000, epochs=2)
        print(f"bundle: {a.creatives} creatives, joint model trained on 20000 simulated impressions "
              f"in {time.perf_counter() - t:.1f} s")
        res = in_process(bdir, a.requests, a.candidates)
        print(f"\n## In-process ranking, {a.candidates} candidates, {a.requests} requests (target p99 ≤ 5 ms)")
        print("wall = what a caller waits (includes preemption by other tenants of the 2 shared cores); "
              "CPU = this thread's own CPU time per call")
        print("| path | wall p50 ms | wall p99 ms | CPU p50 ms | CPU p99 ms |\n|---|---|---|---|---|")
        for k, (p50, p99, c50, c99) in res.items():
            print(f"| {k} | {p50:.3f} | {p99:.3f} | {c50:.3f} | {c99:.3f} |")
        vals = list(res.values())
        print(f"torch / NumPy p50 ratio (model only): {vals[2][0] / vals[1][0]:.1f}×")
        if not a.skip_http:
            rows = http_bench(bdir, [float(x) for x in a.rps.split(",")], a.seconds, a.candidates)
            print(f"\n## HTTP on 127.0.0.1, open-loop, {a.seconds:g} s per endpoint (target p99 ≤ 20 ms)")
            print("client-side latency from each request's scheduled time; 'handler' = the service's own time "
                  "(Server-Timing header)")
            print("| endpoint | offered rps | p50 ms | p99 ms | requests | errors | handler p50 ms | handler p99 ms |\n"
                  "|---|---|---|---|---|---|---|---|")
            for name, rps, p50, p99, n, err, h50, h99 in rows:
                print(f"| {name} | {rps:g} | {p50:.2f} | {p99:.2f} | {n} | {err} | {h50:.2f} | {h99:.2f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if not a.skip_sim:
        ims, masks = quick_creatives(cuts, a.sim_creatives, seed=0)
        r = run_campaign(image_features(ims, masks), a.sim_n, 0,
                         policies=("oracle", "ours", "ours_listwise", "uniform", "best_fixed", "vw", "vw_squarecb"),
                         png=Path(tempfile.gettempdir()) / "select_campaign.png", progress=True)
        print("\n## " + r.to_markdown())
        ours = r.ctr("ours: hybrid Thompson (visual prior)")
        for k in (k for k in r.clicks if k.startswith("VW")):
            print(f"ours / {k} CTR ratio: {ours / r.ctr(k):.2f}×")
        print(f"curves: {Path(tempfile.gettempdir()) / 'select_campaign.png'}")


if __name__ == "__main__":
    main()
