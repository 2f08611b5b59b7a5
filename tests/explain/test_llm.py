"""The OpenAI-compatible LLM backend against a local server: wire format, and the grounded text on failure."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from adcreative.explain.llm import llm_explain
from adcreative.explain.pairwise import explain_pair

BASE = {"contrast_de": 20.0, "luminance_contrast": 1.5, "product_area": 0.2, "product_cx": 0.5, "product_cy": 0.55,
        "text_area": 0.1, "n_words": 8, "n_text_boxes": 3, "has_sale": False, "percent_off": 0, "has_new": False,
        "has_free_shipping": False, "has_price": True, "min_price": 24.9, "n_faces": 0, "face_area": 0.0,
        "logo_found": False, "logo_score": 0.0, "colorfulness": 30.0, "brightness": 0.6, "bg_L": 70.0,
        "sharpness": 300.0}


WEIGHTS = {"contrast_de": 0.02, "product_area": 2.0, "has_sale": 0.3, "colorfulness": 0.001}


def linear(feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([sum(w * float(f.get(k, 0) or 0) for k, w in WEIGHTS.items()) for f in feats])


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": "A wins: it stands out."}}]})
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def llm_server() -> Iterator[str]:
    srv = HTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_llm_backend_wire_format_and_fallback(llm_server: str) -> None:
    ex = explain_pair({**BASE, "contrast_de": 50.0}, BASE, scorer=linear)
    im = Image.new("RGB", (64, 64), "red")
    text = llm_explain(ex, im, im, url=llm_server, model="tiny-vlm", api_key="k")
    assert text == "A wins: it stands out."
    req = _Handler.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    parts = req["body"]["messages"][1]["content"]
    assert any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in parts)
    assert "contrast" in parts[0]["text"]
    _Handler.status = 500
    try:
        assert llm_explain(ex, im, im, url=llm_server, model="tiny-vlm") == ex.text
    finally:
        _Handler.status = 200
    assert llm_explain(ex, None, None, url="http://127.0.0.1:9/v1", model="x", timeout=1.0) == ex.text
