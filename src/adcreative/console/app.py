"""The review console: a FastAPI app over the store.

``GET /`` the review page; ``GET /api/queue`` creatives without a human label, least certain first;
``POST /api/labels`` a reviewer's verdict (committed before the 200); ``GET /images/{creative_id}.png``;
``GET /masks/{creative_id}.png`` where the product's own pixels are (the placement mask stored at generation).
Writes need the ``X-API-Key`` header when the console was started with a key.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from adcreative.core.errors import InputError
from adcreative.core.store import Store
from adcreative.core.types import CLASSES, Label


class LabelIn(BaseModel):
    creative_id: str = Field(min_length=1, max_length=64)
    label: str
    reviewer: str = Field(min_length=1, max_length=128)
    note: str = Field(default="", max_length=2000)


def create_app(store: Store, *, api_key: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        yield
        store.engine.dispose()

    app = FastAPI(title="adcreative review console", version="1", lifespan=lifespan)
    page = files("adcreative.console").joinpath("templates/review.html").read_text()

    def write_access(x_api_key: str | None = Header(default=None)) -> None:
        if api_key is not None and x_api_key != api_key:
            raise HTTPException(401, "missing or wrong X-API-Key header")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page.replace("__CLASSES__", ",".join(CLASSES))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "labels": len(store.labels())}

    @app.get("/api/queue")
    def queue(limit: int = 24) -> list[dict[str, Any]]:
        if not 1 <= limit <= 500:
            raise HTTPException(422, "limit must be between 1 and 500")
        out = []
        for c, v in store.review_queue(limit):
            p = store.get_product(c.product_id)
            out.append({"creative_id": c.id, "product_id": c.product_id, "title": p.title, "aspect": c.aspect,
                        "image": f"/images/{c.id}.png", "mask": f"/masks/{c.id}.png", "verdict": None if v is None else
                        {"label": v.label, "p_available": round(v.p_available, 4), "model_id": v.model_id,
                         "probs": {k: round(x, 4) for k, x in v.probs.items()}}})
        return out

    @app.post("/api/labels", dependencies=[Depends(write_access)])
    def add_label(body: LabelIn) -> dict[str, Any]:
        if body.label not in CLASSES:
            raise HTTPException(422, f"label {body.label!r} is not one of {', '.join(CLASSES)}")
        try:
            store.add_label(Label(body.creative_id, body.label, body.reviewer.strip(), body.note))
        except InputError as e:
            raise HTTPException(404, str(e)) from None
        return {"stored": True, "creative_id": body.creative_id, "label": body.label}

    @app.get("/images/{creative_id}.png")
    def image(creative_id: str) -> Response:
        try:
            c = store.get_creative(creative_id)
        except InputError as e:
            raise HTTPException(404, str(e)) from None
        return Response(store.blobs.get_bytes(c.image_sha), media_type="image/png")

    @app.get("/masks/{creative_id}.png")
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
