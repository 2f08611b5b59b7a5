"""The review console: a FastAPI app over the store.

``GET /`` the review page (rendered on the server, every text autoescaped); ``GET /api/queue`` creatives
without a human label: those the inspector's decision sent to a human first, then the least certain;
``GET /api/bands`` creatives per band of their latest verdict; ``POST /api/labels`` a reviewer's verdict (committed before the
200); ``GET /images/{creative_id}.png``; ``GET /masks/{creative_id}.png`` where the product's own pixels are
(the placement mask stored at generation); ``POST /session`` signs a reviewer in with the console's key.

Titles, copy, OCR text and ids come from catalogues and generators, so they are hostile until shown otherwise:
the page renders them as text only (Jinja autoescape on the server, ``textContent`` in the browser), runs no
inline script, and every response carries a Content-Security-Policy that allows scripts from this origin only.

Writes need the key when the console has one: the ``X-API-Key`` header (API clients), or the session cookie
that ``POST /session`` sets (browsers: HttpOnly and SameSite=Strict, so page scripts can neither read the key
nor the session). Every write must come from this origin (``Origin``) to an expected ``Host``, which stops
cross-site forms and DNS rebinding against a console on localhost.
"""

from __future__ import annotations

import hmac
import secrets
import time
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, select_autoescape
from pydantic import BaseModel, Field

from adcreative.core import limits
from adcreative.core.errors import InputError, NotFoundError
from adcreative.core.store import Store
from adcreative.core.types import CLASSES, Label
from adcreative.core.web import BodyLimit, Clean

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SESSION_COOKIE = "adcreative_session"
SESSION_SECONDS = 12 * 3600
MAX_BODY_BYTES = 64 << 10
# scripts and styles only from files this app serves: an injected <script> or onerror= never runs
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# same-origin, not no-referrer: under no-referrer browsers send "Origin: null" on form posts, which the origin
# check must refuse
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
STATIC = {"review.js": "text/javascript; charset=utf-8", "review.css": "text/css; charset=utf-8"}


class LabelIn(BaseModel):
    # lengths are the store's columns (labels.creative_id VARCHAR(64), reviewer VARCHAR(128))
    creative_id: Annotated[str, Field(min_length=1, max_length=limits.CREATIVE_ID_MAX), Clean]
    label: Annotated[str, Field(min_length=1, max_length=limits.LABEL_MAX), Clean]
    reviewer: Annotated[str, Field(min_length=1, max_length=limits.REVIEWER_MAX), Clean]
    note: Annotated[str, Field(max_length=2000), Clean] = ""


def _host_only(netloc: str) -> str:
    """``example.com:8765`` → ``example.com``; ``[::1]:8765`` → ``::1``."""
    host = urlsplit(f"//{netloc}").hostname
    return host or ""


def create_app(store: Store, *, api_key: str | None = None,
               allowed_hosts: tuple[str, ...] | list[str] | None = LOOPBACK_HOSTS) -> FastAPI:
    """The console over ``store``. ``api_key``: required for writes (an empty key is no key).
    ``allowed_hosts``: the host names the browser may use to reach it (None: any, for a console behind a
    name the operator chose; the default suits one bound to loopback)."""
    key = api_key or None
    hosts = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}
    sessions: dict[str, float] = {}   # token → expiry; in memory: a restart signs everyone out

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        yield
        store.engine.dispose()

    # no /docs: FastAPI's docs page loads inline and CDN scripts, which the policy forbids
    app = FastAPI(title="adcreative review console", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    page = env.from_string(files("adcreative.console").joinpath("templates/review.html").read_text())

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        if hosts is not None and _host_only(request.headers.get("host", "")).lower() not in hosts:
            return JSONResponse({"detail": "unexpected Host header"}, status_code=421, headers=SECURITY_HEADERS)
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "; ".join(problems)[:2000]})

    def signed_in(request: Request) -> bool:
        token = request.cookies.get(SESSION_COOKIE, "")
        expiry = sessions.get(token)
        if expiry is None or expiry < time.time():
            sessions.pop(token, None)
            return False
        return True

    def same_origin(request: Request) -> None:
        """A write comes from this console's own page (or from a client that is not a browser)."""
        origin = request.headers.get("origin")
        if origin is not None:
            o = urlsplit(origin)
            if origin == "null" or o.netloc.lower() != request.headers.get("host", "").lower():
                raise HTTPException(403, "cross-origin write refused")
        elif request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
            raise HTTPException(403, "cross-site write refused")

    def write_access(request: Request) -> None:
        same_origin(request)
        if key is None:
            return
        given = request.headers.get("x-api-key")
        if given is not None and hmac.compare_digest(given.encode(), key.encode()):
            return
        if not signed_in(request):
            raise HTTPException(401, "sign in with the console key (or send the X-API-Key header)")

    def queue_items(limit: int) -> list[dict[str, Any]]:
        pairs = store.review_queue(limit)
        ocr = store.get_features("explicit", [c.id for c, _ in pairs])  # represent.features' cache, when present
        out = []
        for c, v in pairs:
            p = store.get_product(c.product_id)
            out.append({"creative_id": c.id, "product_id": c.product_id, "title": p.title, "copy": p.copy or "",
                        "ocr_text": str(ocr.get(c.id, {}).get("text") or ""), "aspect": c.aspect,
                        "image": f"/images/{quote(c.id, safe='')}.png", "mask": f"/masks/{quote(c.id, safe='')}.png",
                        "verdict": None if v is None else
                        {"label": v.label, "p_available": round(v.p_available, 4), "model_id": v.model_id,
                         "band": v.band, "ood": None if v.ood is None else round(v.ood, 3),
                         "probs": {k: round(x, 4) for k, x in v.probs.items()}}})
        return out

    def band_counts() -> dict[str, int]:
        counts = store.verdict_bands()
        counts["awaiting_review"] = store.awaiting_review()
        return counts

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, error: str | None = None) -> HTMLResponse:
        needs_sign_in = key is not None and not signed_in(request)
        html = page.render(items=[] if needs_sign_in else queue_items(24), classes=CLASSES,
                           bands=None if needs_sign_in else band_counts(),
                           needs_sign_in=needs_sign_in, keyed=key is not None,
                           error="wrong key" if error == "key" else None)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/api/bands")
    def bands() -> dict[str, int]:
        """Creatives per band of their latest verdict, and how many still await a human label."""
        return band_counts()

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        return Response(files("adcreative.console").joinpath(f"static/{name}").read_bytes(), media_type=STATIC[name])

    @app.post("/session")
    def sign_in(request: Request, key_: Annotated[str, Form(alias="key", max_length=1024)] = "") -> Response:
        same_origin(request)
        if key is None:
            return RedirectResponse("/", status_code=303)
        if not hmac.compare_digest(key_.encode(), key.encode()):
            return RedirectResponse("/?error=key", status_code=303)
        now = time.time()
        for t in [t for t, exp in sessions.items() if exp < now]:
            sessions.pop(t, None)
        token = secrets.token_urlsafe(32)
        sessions[token] = now + SESSION_SECONDS
        r = RedirectResponse("/", status_code=303)
        r.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True, samesite="strict",
                     secure=request.url.scheme == "https")
        return r

    @app.post("/session/end")
    def sign_out(request: Request) -> Response:
        same_origin(request)
        sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        r = RedirectResponse("/", status_code=303)
        r.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return r

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "labels": len(store.labels())}

    @app.get("/api/queue")
    def queue(limit: int = 24) -> list[dict[str, Any]]:
        if not 1 <= limit <= 500:
            raise HTTPException(422, "limit must be between 1 and 500")
        return queue_items(limit)

    @app.post("/api/labels", dependencies=[Depends(write_access)])
    def add_label(body: LabelIn) -> dict[str, Any]:
        if body.label not in CLASSES:
            raise HTTPException(422, f"label {body.label!r} is not one of {', '.join(CLASSES)}")
        if not body.reviewer.strip():
            raise HTTPException(422, "reviewer is empty")
        try:
            store.add_label(Label(body.creative_id, body.label, body.reviewer.strip(), body.note))
        except NotFoundError as e:
            raise HTTPException(404, str(e)) from None
        except InputError as e:  # what the schema let through but the store refuses: nothing was written
            raise HTTPException(422, str(e)) from None
        return {"stored": True, "creative_id": body.creative_id, "label": body.label}

    @app.get("/images/{creative_id:path}.png")
    def image(creative_id: str) -> Response:
        try:
            c = store.get_creative(creative_id)
        except InputError as e:
            raise HTTPException(404, str(e)) from None
        return Response(store.blobs.get_bytes(c.image_sha), media_type="image/png")

    @app.get("/masks/{creative_id:path}.png")
    def mask(creative_id: str) -> Response:
        from adcreative.core.imageio import png_bytes
        from adcreative.generate.provenance import placement_mask

        try:
            c = store.get_creative(creative_id)
            if c.mask_sha is not None:
                return Response(store.blobs.get_bytes(c.mask_sha), media_type="image/png")
            m = placement_mask(store, c)  # a creative stored before masks were kept: rebuilt from its layout
        except InputError as e:
            raise HTTPException(404, str(e)) from None
        if m is None:
            raise HTTPException(404, f"creative {creative_id!r} records no product placement")
        return Response(png_bytes(m), media_type="image/png")

    return app
