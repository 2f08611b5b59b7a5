"""The selection HTTP service (FastAPI): ``adcreative serve --model DIR --port P [--workers N]``.

* ``POST /v1/select`` — user context, ad id, candidate creative ids → ranked ids, scores, whether the
  request explored, the shown creative's propensity, the ad-level pCTR and the model version.
* ``POST /v1/events`` — impressions and clicks. Each batch is appended to an append-only JSON-lines log
  and ``fsync``'d (and mirrored into the Store when one is configured) BEFORE the 2xx, so an
  acknowledged event survives a crash or restart. An event's idempotency key is ``(request_id, kind,
  creative_id)``: a client that retries a batch it got no answer for creates no duplicate. Needs an
  API key (header ``X-API-Key``).
* ``GET /health`` — liveness, model version, events logged. ``GET /docs``, ``/openapi.json`` — OpenAPI.
* ``POST /v1/admin/reload`` (API key) — reload the model now (in the worker that answers).

Several worker processes (``--workers``) share one model directory and one event log:

* every worker watches ``DIR/MANIFEST.json``'s mtime and hot-reloads on its own: a new bundle version is
  loaded off the event loop and swapped in with one assignment; requests in flight keep the selector they
  started with, and a bundle that fails to load leaves the old one serving;
* appends take an exclusive ``flock`` on the log, so lines of different processes never interleave, and the
  duplicate check sees every line any worker wrote before; the ``fsync`` happens after the lock is released
  (group commit: one fsync covers every write before it);
* every worker tails the log and feeds all workers' events to its policy, so the policies of all workers see
  the same history (within one reload interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from adcreative.core import limits
from adcreative.core.errors import InputError
from adcreative.core.web import BodyLimit, Clean, JsonObject, NotBlank, Number, Scalar
from adcreative.select.bundle import Bundle, manifest_mtime
from adcreative.select.selector import MAX_CANDIDATES, RankRequest, Selector

if TYPE_CHECKING:
    from adcreative.core.store import Store

log = logging.getLogger("adcreative.select.service")

CONFIG_ENV = "ADCREATIVE_SELECT_SERVICE"   # how ``serve --workers N`` hands its settings to each worker
DEDUP_WINDOW = 1_000_000                   # idempotency keys remembered per worker (the most recent ones)


def event_key(e: dict[str, Any]) -> tuple[str, str, str]:
    """The idempotency key of an event: one impression and one click per request and creative."""
    return (str(e["request_id"]), str(e["kind"]), str(e["creative_id"]))


# ---------------------------------------------------------------------------------- event log ---------
class EventLog:
    """Append-only JSON-lines file, safe for several processes (and threads) at once.

    ``append`` writes a batch with one ``write`` under an exclusive ``flock`` after catching up with the
    lines other processes wrote (so the duplicate check and ``count`` see the whole log), then ``fsync``s
    before it returns. ``drain`` hands every line logged since the last call (by any process) to a consumer,
    here the policy's updates.
    """

    def __init__(self, path: str | Path, *, dedup_window: int = DEDUP_WINDOW) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._rd = open(self.path, "rb")  # noqa: SIM115 - kept open for tailing; closed in close()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = self._synced = 0  # write sequence numbers: appended / covered by an fsync
        self._offset = 0                  # bytes of the file scanned by this process
        self.count = 0
        self._keys: set[tuple[str, str, str]] = set()
        self._order: deque[tuple[str, str, str]] = deque()
        self._window = dedup_window
        self._unseen: list[dict[str, Any]] = []
        with self._lock, self._flocked():
            self._repair_tail()
            self._scan(keep=False)

    @contextlib.contextmanager
    def _flocked(self) -> Any:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _repair_tail(self) -> None:
        # a crash mid-write can leave a partial last line (never acknowledged): cut it so appends stay parseable.
        # Under the flock no other writer is mid-line, so a missing newline can only be such a leftover.
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        self._rd.seek(max(0, size - 65536))
        tail = self._rd.read()
        if tail.endswith(b"\n"):
            return
        keep = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else self._last_newline(size)
        os.truncate(self.path, keep)
        os.fsync(self._fd)
        log.warning("event log %s: cut a torn last line (%d bytes) left by a crash", self.path, size - keep)

    def _last_newline(self, size: int) -> int:
        self._rd.seek(0)
        data = self._rd.read(size)
        return data.rfind(b"\n") + 1

    def _remember(self, key: tuple[str, str, str]) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self._window:
            self._keys.discard(self._order.popleft())

    def _scan(self, keep: bool = True) -> None:
        """Read complete lines past ``_offset`` (other processes' appends): count, keys, and (``keep``) the
        records for :meth:`drain`. A line still being written (no newline yet) waits for the next scan."""
        self._rd.seek(self._offset)
        data = self._rd.read()
        end = data.rfind(b"\n") + 1
        if end <= 0:
            return
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                log.error("event log %s: skipping a line that is not JSON", self.path)
                continue
            self.count += 1
            if isinstance(rec, dict) and {"request_id", "kind", "creative_id"} <= rec.keys():
                self._remember(event_key(rec))
                if keep:
                    self._unseen.append(rec)
        self._offset += end

    def append(self, records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """Append the records not logged before (by idempotency key) and fsync; returns them and the number
        of records in the log."""
        with self._lock:
            with self._flocked():
                self._scan()
                new: list[dict[str, Any]] = []
                for r in records:
                    k = event_key(r)
                    if k not in self._keys:
                        self._remember(k)
                        new.append(r)
                if new:
                    blob = b"".join(json.dumps(r, separators=(",", ":"), default=str).encode() + b"\n" for r in new)
                    view = memoryview(blob)
                    while view:  # a regular-file write is whole in practice; loop in case it is not
                        view = view[os.write(self._fd, view):]
                    self._offset += len(blob)
                    self.count += len(new)
                    self._unseen.extend(new)
            self._written += 1
            mine, total = self._written, self.count
        with self._sync_lock:
            if self._synced < mine:
                with self._lock:
                    upto = self._written
                os.fsync(self._fd)
                self._synced = upto
        return new, total

    def drain(self) -> list[dict[str, Any]]:
        """Every record logged (by any process) since the last call; the first call starts at the end of the
        log as it was when this object opened it."""
        with self._lock:
            self._scan()
            out, self._unseen = self._unseen, []
        return out

    def refresh(self) -> int:
        """Catch up with other processes' appends; the number of records in the log."""
        with self._lock:
            self._scan()
            return self.count

    def close(self) -> None:
        """Close the log (again is a no-op: an app's lifespan may end more than once in tests)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._rd.close()

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


def _events(records: Iterable[dict[str, Any]]) -> list[Any]:
    from adcreative.core.types import Event

    return [Event(kind=r["kind"], request_id=r["request_id"], user_id=r["user_id"], ad_id=r["ad_id"],
                  creative_id=r["creative_id"], position=r["position"], propensity=r["propensity"],
                  context=r["context"], ts=_dt.datetime.fromisoformat(r["ts"])) for r in records]


def sync_store(events_path: str | Path, store: Store, *, chunk: int = 5000) -> int:
    """Make the store hold every event of the log (after a crash between the log's fsync and the store's
    write). ``Store.add_events`` is idempotent on the event key, so replaying is safe; a checkpoint beside the
    log (``<log>.store-offset``) keeps restarts from replaying what was already replayed. Returns the number
    of events replayed."""
    from adcreative.core.imageio import atomic_write_text

    p = Path(events_path)
    ck = p.with_name(p.name + ".store-offset")
    if not p.exists():
        return 0
    start = int(ck.read_text()) if ck.exists() else 0
    n = 0
    with p.open("rb") as f:
        f.seek(start if start <= p.stat().st_size else 0)
        batch: list[dict[str, Any]] = []
        pos = f.tell()
        for line in f:
            if not line.endswith(b"\n"):
                break  # a line still being written: the next sync takes it
            pos += len(line)
            with contextlib.suppress(json.JSONDecodeError):
                batch.append(json.loads(line))
            if len(batch) >= chunk:
                n += len(store.add_events(_events(batch)))
                batch = []
        if batch:
            n += len(store.add_events(_events(batch)))
    atomic_write_text(ck, str(pos))
    return n


# ---------------------------------------------------------------------------------- API models --------
# Lengths are the store's column lengths (core.limits), so what is accepted here can be mirrored into the
# store; numbers are finite and bounded.
RequestId = Annotated[str, Field(min_length=1, max_length=limits.REQUEST_ID_MAX), Clean, NotBlank]
UserId = Annotated[str, Field(min_length=1, max_length=limits.USER_ID_MAX), Clean, NotBlank]
AdId = Annotated[str, Field(min_length=1, max_length=limits.AD_ID_MAX), Clean, NotBlank]
CreativeId = Annotated[str, Field(min_length=1, max_length=limits.CREATIVE_ID_MAX), Clean, NotBlank]
MAX_BODY_BYTES = 16 << 20    # a full events batch (10,000 events with small contexts) fits


class SelectIn(BaseModel):
    request_id: RequestId | None = None
    user_id: UserId
    user: dict[Annotated[str, Field(max_length=64), Clean], Scalar] = Field(default_factory=dict, max_length=256,
                                         description="user fields (hashed categoricals, numerics)")
    ad_id: AdId
    candidates: list[CreativeId] = Field(..., min_length=1, max_length=MAX_CANDIDATES, description="creative ids")
    position: int = Field(0, ge=0, le=64, description="slot position, 0-based")
    pair: dict[CreativeId, list[Number]] | None = Field(
        None, max_length=MAX_CANDIDATES, description="optional per-candidate user×creative features")
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
    request_id: RequestId
    user_id: UserId
    ad_id: AdId
    creative_id: CreativeId
    position: int = Field(0, ge=0, le=64)
    propensity: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    context: JsonObject = Field(default_factory=dict)
    ts: _dt.datetime | None = None


class EventsIn(BaseModel):
    events: list[EventIn] = Field(..., min_length=1, max_length=10000)


class EventsOut(BaseModel):
    accepted: int = Field(..., description="events logged by this call")
    duplicates: int = Field(0, description="events already logged under the same (request_id, kind, creative_id)")
    total_logged: int


# ---------------------------------------------------------------------------------- the app -----------
class ServiceState:
    def __init__(self, model_dir: Path, events: EventLog, api_keys: set[str], store: Store | None,
                 reload_interval: float) -> None:
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
            log.info("pid %d reloaded model version %s", os.getpid(), sel.bundle.version)
            return True

    def feed_policy(self) -> int:
        """Apply every event logged since the last call (by any worker) to this worker's policy."""
        recs = self.events.drain()
        sel = self.selector
        if sel is not None:
            for r in recs:
                sel.observe(str(r.get("kind")), str(r.get("creative_id")))
        return len(recs)


def create_app(model_dir: str | Path, *, events_path: str | Path | None = None, api_keys: Sequence[str] = (),
               store: Store | None = None, reload_interval: float = 1.0, dedup_window: int = DEDUP_WINDOW) -> FastAPI:
    """Build the service. ``api_keys`` guard the write endpoints (empty = writes refused)."""
    model_dir = Path(model_dir)
    state = ServiceState(model_dir, EventLog(events_path or model_dir / "events.jsonl", dedup_window=dedup_window),
                         set(api_keys), store, reload_interval)
    state.load()  # fail fast at startup on a bad model folder

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def watch() -> None:
            while True:
                await asyncio.sleep(state.reload_interval)
                await state.maybe_reload()
                await asyncio.to_thread(state.feed_policy)

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
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    _document(app, SelectIn)

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
                "serves": ("model" if sel.bundle.serves_model else "policy") if sel else None,
                "creatives": len(sel.bundle.creatives) if sel else 0,
                "events_logged": await asyncio.to_thread(state.events.refresh), "worker_pid": os.getpid(),
                "reloads": state.reloads, "uptime_s": round(time.time() - state.started, 1)}

    def problems(exc: ValidationError) -> list[str]:
        return [f"body.{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]

    def refusal(raw: bytes, exc: ValidationError) -> list[str]:
        """The problems with a refused body. What the strict JSON parser refuses outright (a lone surrogate
        escape) is parsed again by the standard library, so the answer names the field."""
        if not any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problems(exc)
        try:
            SelectIn.model_validate(json.loads(raw))
        except ValidationError as again:
            return problems(again)
        except ValueError:
            pass
        return problems(exc)

    # The hot path reads the body itself: pydantic validates the JSON bytes in one pass (no json.loads, no
    # second validation of a dict), the request schema is still SelectIn (documented below), and orjson writes
    # the answer. Together about half the per-request CPU of a body-model route.
    @app.post("/v1/select", response_model=SelectOut, openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SelectIn"}}}}})
    async def select(request: Request) -> Any:
        t0 = time.perf_counter()
        raw = await request.body()
        try:
            body = SelectIn.model_validate_json(raw)
        except ValidationError as e:
            return JSONResponse(status_code=422, content={"error": "invalid request", "problems": refusal(raw, e)})
        sel = state.selector  # take one reference: a concurrent reload cannot change it under us
        if sel is None:
            raise HTTPException(503, "no model loaded")
        try:
            r = sel.rank(RankRequest(user_id=body.user_id, ad_id=body.ad_id, candidates=body.candidates, user=body.user,
                                     position=body.position, pair=body.pair, request_id=body.request_id,
                                     explore=body.explore))
        except LookupError as e:
            raise HTTPException(404, str(e.args[0])) from e
        return Response(orjson.dumps(r.__dict__), media_type="application/json",
                        headers={"Server-Timing": f"rank;dur={(time.perf_counter() - t0) * 1000:.3f}"})

    @app.post("/v1/events", response_model=EventsOut, dependencies=[Depends(require_key)])
    def events(body: EventsIn) -> EventsOut:
        # sync handler: runs in the threadpool, so the flock and the fsync never block the event loop
        now = _dt.datetime.now(_dt.UTC)
        records = [{**e.model_dump(), "ts": (e.ts or now).isoformat()} for e in body.events]
        new, total = state.events.append(records)          # durable before we answer
        if state.store is not None:
            # the whole batch, duplicates included: a retry after a failed store write completes the store
            # (Store.add_events ignores events it already holds)
            state.store.add_events(_events(records))
        state.feed_policy()  # this worker's policy learns at once; the others within one reload interval
        return EventsOut(accepted=len(new), duplicates=len(records) - len(new), total_logged=total)

    @app.post("/v1/admin/reload", dependencies=[Depends(require_key)])
    async def reload() -> dict[str, Any]:
        changed = await state.maybe_reload(force=True)
        sel = state.selector
        return {"reloaded": changed, "model_version": sel.bundle.version if sel else None, "worker_pid": os.getpid()}

    return app


def _document(app: FastAPI, *models: type[BaseModel]) -> None:
    """Put request models that routes read themselves into the OpenAPI components (routes ``$ref`` them)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base()
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for m in models:
                js = m.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(js.pop("$defs", {}))
                comps[m.__name__] = js
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """The app of one worker of ``serve(workers=N)``: settings from ``$ADCREATIVE_SELECT_SERVICE``."""
    cfg = json.loads(os.environ[CONFIG_ENV])
    store = None
    if cfg.get("store_home") is not None or cfg.get("mirror_store"):
        from adcreative.config import get_settings
        from adcreative.core.store import Store

        store = Store(get_settings(cfg.get("store_home")))
    _one_blas_thread()
    return create_app(cfg["model_dir"], events_path=cfg["events_path"], api_keys=cfg["api_keys"], store=store,
                      reload_interval=cfg["reload_interval"])


def _one_blas_thread() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # per-request matmuls are tiny; BLAS threads only add contention
    except ImportError:
        pass


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000, events_path: str | Path | None = None,
          api_keys: Sequence[str] = (), store: Store | None = None, store_home: str | Path | None = None,
          reload_interval: float = 1.0, workers: int = 1, log_level: str = "warning") -> None:
    """Run the service. ``workers > 1`` starts that many processes on one socket (uvicorn's supervisor), each
    with its own selector, reload watcher and policy feed over the shared model folder and event log.
    With a ``store``, the log is first replayed into it (the store converges to the log after a crash)."""
    import uvicorn

    model_dir = Path(model_dir)
    Bundle.load(model_dir)  # fail fast in the parent, with a clear error, before any worker starts
    events_path = Path(events_path or model_dir / "events.jsonl")
    if store is not None:
        n = sync_store(events_path, store)
        if n:
            log.warning("replayed %d logged events into the store", n)
    run = {"host": host, "port": port, "log_level": log_level, "access_log": False, "loop": "auto", "http": "auto"}
    if workers <= 1:
        _one_blas_thread()
        app = create_app(model_dir, events_path=events_path, api_keys=api_keys, store=store,
                         reload_interval=reload_interval)
        uvicorn.run(app, **run)  # type: ignore[arg-type]  # uvloop + httptools when installed (the ``serve`` extra)
        return
    os.environ[CONFIG_ENV] = json.dumps({
        "model_dir": str(model_dir), "events_path": str(events_path), "api_keys": list(api_keys),
        "reload_interval": reload_interval, "mirror_store": store is not None,
        "store_home": str(store_home) if store_home is not None else None})
    uvicorn.run("adcreative.select.service:app_from_env", factory=True, workers=workers, **run)  # type: ignore[arg-type]
