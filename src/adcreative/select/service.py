"""The selection HTTP service (FastAPI): ``adcreative serve --model DIR --port P``.

* ``POST /v1/select`` — user context, ad id, candidate creative ids → ranked ids, scores, whether the
  request explored, the shown creative's propensity, the ad-level pCTR and the model version.
* ``POST /v1/events`` — impressions and clicks. Each batch is appended to an append-only JSON-lines log
  and ``fsync``'d (and mirrored into the Store when one is configured) BEFORE the 2xx, so an
  acknowledged event survives a crash or restart. Needs an API key (header ``X-API-Key``).
* ``GET /health`` — liveness, model version, events logged. ``GET /docs``, ``/openapi.json`` — OpenAPI.
* ``POST /v1/admin/reload`` (API key) — reload the model now.

Hot reload: a background task watches ``DIR/MANIFEST.json``'s mtime; a new bundle version is loaded
off the event loop and swapped in with one assignment. Requests in flight keep the selector they
started with, so no request fails during a reload; a bundle that fails to load leaves the old one serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adcreative.core.errors import InputError
from adcreative.select.bundle import Bundle, manifest_mtime
from adcreative.select.selector import MAX_CANDIDATES, RankRequest, Selector

if TYPE_CHECKING:
    from adcreative.core.store import Store

log = logging.getLogger("adcreative.select.service")


# ---------------------------------------------------------------------------------- event log ---------
class EventLog:
    """Append-only JSON-lines file; every append is flushed and fsync'd before it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = self._synced = 0  # write sequence numbers: appended / covered by an fsync
        self._repair_tail()
        self._f = self.path.open("ab")
        self.count = sum(1 for _ in self.read(self.path))

    def _repair_tail(self) -> None:
        # a crash mid-write can leave a partial last line (never acknowledged): cut it so appends stay parseable
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with self.path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                f.flush()
                os.fsync(f.fileno())

    def append(self, records: Sequence[dict[str, Any]]) -> int:
        """Append and fsync; returns the number of records logged so far. Group commit: writers append
        under one lock, then one fsync covers every write made before it, so concurrent batches share
        an fsync instead of queueing for one each."""
        blob = b"".join(json.dumps(r, separators=(",", ":"), default=str).encode() + b"\n" for r in records)
        with self._lock:
            self._f.write(blob)
            self._f.flush()
            self.count += len(records)
            self._written += 1
            mine, total = self._written, self.count
        with self._sync_lock:
            if self._synced < mine:
                with self._lock:
                    upto = self._written
                os.fsync(self._f.fileno())
                self._synced = upto
        return total

    def close(self) -> None:
        with self._lock:
            self._f.close()

    @staticmethod
    def read(path: str | Path) -> list[dict[str, Any]]:
        """All complete records (a torn last line is ignored)."""
        p = Path(path)
        if not p.exists():
            return []
        out = []
        for line in p.read_bytes().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


# ---------------------------------------------------------------------------------- API models --------
Scalar = str | int | float | bool | None


class SelectIn(BaseModel):
    request_id: str | None = Field(None, max_length=128)
    user_id: str = Field(..., min_length=1, max_length=128)
    user: dict[str, Scalar] = Field(default_factory=dict, description="user fields (hashed categoricals, numerics)")
    ad_id: str = Field(..., min_length=1, max_length=128)
    candidates: list[str] = Field(..., min_length=1, max_length=MAX_CANDIDATES, description="creative ids")
    position: int = Field(0, ge=0, le=64, description="slot position, 0-based")
    pair: dict[str, list[float]] | None = Field(None, description="optional per-candidate user×creative features")
    explore: bool | None = Field(None, description="force (true/false) the exploration decision; null = policy")


class SelectOut(BaseModel):
    request_id: str
    ad_id: str
    ranked: list[str]
    scores: list[float]
    explored: bool
    propensity: float
    ad_pctr: float
    model_version: str


class EventIn(BaseModel):
    kind: Literal["impression", "click"]
    request_id: str = Field(..., min_length=1, max_length=128)
    user_id: str = Field(..., min_length=1, max_length=128)
    ad_id: str = Field(..., min_length=1, max_length=128)
    creative_id: str = Field(..., min_length=1, max_length=128)
    position: int = Field(0, ge=0, le=64)
    propensity: float | None = Field(None, gt=0.0, le=1.0)
    context: dict[str, Any] = Field(default_factory=dict)
    ts: _dt.datetime | None = None


class EventsIn(BaseModel):
    events: list[EventIn] = Field(..., min_length=1, max_length=10000)


class EventsOut(BaseModel):
    accepted: int
    total_logged: int


# ---------------------------------------------------------------------------------- the app -----------
class ServiceState:
    def __init__(self, model_dir: Path, events: EventLog, api_keys: set[str], store: Store | None, reload_interval: float) -> None:
        self.model_dir = model_dir
        self.events = events
        self.api_keys = api_keys
        self.store = store
        self.reload_interval = reload_interval
        self.selector: Selector | None = None
        self.mtime = 0.0
        self.reloads = 0
        self.started = time.time()
        self.reload_lock = asyncio.Lock()

    def load(self) -> None:
        mtime = manifest_mtime(self.model_dir)
        sel = Selector(Bundle.load(self.model_dir))
        self.selector, self.mtime = sel, mtime   # one assignment: requests see the old or the new, never a mix
        self.reloads += 1

    async def maybe_reload(self, force: bool = False) -> bool:
        async with self.reload_lock:
            m = manifest_mtime(self.model_dir)
            if not force and m == self.mtime:
                return False
            try:
                sel = await asyncio.to_thread(lambda: Selector(Bundle.load(self.model_dir)))
            except Exception as e:  # keep serving the old model; the error is logged and reported by /health
                log.error("model reload from %s failed: %s", self.model_dir, e)
                self.mtime = m
                return False
            self.selector, self.mtime = sel, m
            self.reloads += 1
            log.info("reloaded model version %s", sel.bundle.version)
            return True


def create_app(model_dir: str | Path, *, events_path: str | Path | None = None, api_keys: Sequence[str] = (),
               store: Store | None = None, reload_interval: float = 1.0) -> FastAPI:
    """Build the service. ``api_keys`` guard the write endpoints (empty = writes refused)."""
    model_dir = Path(model_dir)
    state = ServiceState(model_dir, EventLog(events_path or model_dir / "events.jsonl"), set(api_keys), store,
                         reload_interval)
    state.load()  # fail fast at startup on a bad model folder

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def watch() -> None:
            while True:
                await asyncio.sleep(state.reload_interval)
                await state.maybe_reload()

        task = asyncio.create_task(watch()) if state.reload_interval > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            state.events.close()

    app = FastAPI(title="adcreative selection", version="1", lifespan=lifespan,
                  description="Per-user creative selection: list-wise ranking with Thompson exploration.")
    app.state.svc = state

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse(status_code=422, content={"error": "invalid request", "problems": problems})

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "invalid request", "problems": [str(exc)]})

    def require_key(x_api_key: str | None = Header(None, description="API key for write endpoints")) -> None:
        if not x_api_key:
            raise HTTPException(401, "missing X-API-Key header (write endpoints need an API key)")
        if x_api_key not in state.api_keys:
            raise HTTPException(403, "X-API-Key is not valid")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        sel = state.selector
        return {"status": "ok" if sel is not None else "no model",
                "model_version": sel.bundle.version if sel else None, "ad_id": sel.bundle.ad_id if sel else None,
                "creatives": len(sel.bundle.creatives) if sel else 0, "events_logged": state.events.count,
                "reloads": state.reloads, "uptime_s": round(time.time() - state.started, 1)}

    @app.post("/v1/select", response_model=SelectOut)
    async def select(body: SelectIn) -> Any:
        t0 = time.perf_counter()
        sel = state.selector  # take one reference: a concurrent reload cannot change it under us
        if sel is None:
            raise HTTPException(503, "no model loaded")
        try:
            r = sel.rank(RankRequest(**body.model_dump()))
        except LookupError as e:
            raise HTTPException(404, str(e.args[0])) from e
        # the Ranking already has SelectOut's shape; skipping response re-validation saves ~1 ms per request
        return JSONResponse(r.__dict__, headers={"Server-Timing": f"rank;dur={(time.perf_counter() - t0) * 1000:.3f}"})

    @app.post("/v1/events", response_model=EventsOut, dependencies=[Depends(require_key)])
    def events(body: EventsIn) -> EventsOut:
        # sync handler: runs in the threadpool, so the fsync never blocks the event loop
        now = _dt.datetime.now(_dt.UTC)
        records = [{**e.model_dump(), "ts": (e.ts or now).isoformat()} for e in body.events]
        total = state.events.append(records)          # durable before we answer
        if state.store is not None:
            from adcreative.core.types import Event

            state.store.add_events(Event(kind=r["kind"], request_id=r["request_id"], user_id=r["user_id"],
                                         ad_id=r["ad_id"], creative_id=r["creative_id"], position=r["position"],
                                         propensity=r["propensity"], context=r["context"],
                                         ts=_dt.datetime.fromisoformat(r["ts"])) for r in records)
        sel = state.selector
        if sel is not None:
            for r in records:
                sel.observe(r["kind"], r["creative_id"])
        return EventsOut(accepted=len(records), total_logged=total)

    @app.post("/v1/admin/reload", dependencies=[Depends(require_key)])
    async def reload() -> dict[str, Any]:
        changed = await state.maybe_reload(force=True)
        sel = state.selector
        return {"reloaded": changed, "model_version": sel.bundle.version if sel else None}

    return app


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000, events_path: str | Path | None = None,
          api_keys: Sequence[str] = (), store: Store | None = None, reload_interval: float = 1.0, log_level: str = "warning") -> None:
    import uvicorn

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # per-request matmuls are tiny; BLAS threads only add contention
    except ImportError:
        pass
    app = create_app(model_dir, events_path=events_path, api_keys=api_keys, store=store, reload_interval=reload_interval)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                loop="auto", http="auto")  # uvloop + httptools when installed (the ``serve`` extra)
