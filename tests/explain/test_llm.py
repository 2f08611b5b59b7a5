"""The MLLM path against a local OpenAI-compatible server the test starts: Creative4U's comparative
prompt on the wire, the parsed answer checked against the grounded facts and the model's choice, and
the grounded text whenever the answer is unusable."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from adcreative.explain.llm import llm_compare, parse_answer
from adcreative.explain.pairwise import differences, explain_pair

BASE = {"contrast_de": 20.0, "luminance_contrast": 1.5, "product_area": 0.2, "product_cx": 0.5, "product_cy": 0.55,
        "n_words": 8, "has_sale": False, "percent_off": 0, "has_price": True, "min_price": 24.9, "colorfulness": 30.0,
        "brightness": 0.6, "sharpness": 300.0, "bg_L": 70.0, "bg_a": 0.0, "bg_b": 0.0}
A = {**BASE, "contrast_de": 50.0, "has_sale": True, "percent_off": 20}
B = {**BASE, "product_area": 0.3}


def linear(feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
    w = {"contrast_de": 0.02, "product_area": 2.0, "has_sale": 0.3}
    return np.array([sum(v * float(f.get(k, 0) or 0) for k, v in w.items()) for f in feats])


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    reply: ClassVar[Any] = ""
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        r = type(self).reply
        out = r if isinstance(r, bytes) else json.dumps({"choices": [{"message": {"role": "assistant", "content": r}}]}).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.status, _Handler.requests = 200, []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _ask(url: str, **kw: Any) -> Any:
    ex = explain_pair(A, B, id_a="cA", id_b="cB", scorer=linear)
    im = Image.new("RGB", (64, 64), "red")
    interests = ["shoppers like this user lean to high-contrast creatives (weight +0.80 per s.d.)"]
    return ex, llm_compare(ex, differences(A, B), interests, im, im, url=url, model="tiny-vlm", **kw)


def test_agreeing_answer_on_the_wire(server: str) -> None:
    _Handler.reply = ('<think>A pops more and has a discount.</think><answer>{"winner": "A", "reason": "The product '
                      'stands out and 20% off suits a deal seeker.", "aspects": ["contrast", "discount"]}</answer>')
    ex, j = _ask(server, api_key="k")
    assert j.used and j.winner == "cA" and j.agrees_with_model and not (j.not_differing or j.against_winner)
    assert "agrees with the preference model" in j.report(ex)
    req = _Handler.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    sys_msg, user_msg = req["body"]["messages"]
    assert "<answer>" in sys_msg["content"] and "protocol" in sys_msg["content"]
    parts = user_msg["content"]
    assert sum(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/jpeg;base64,")
               for p in parts) == 2
    prompt = parts[0]["text"]
    assert "high-contrast" in prompt and "contrast: A ΔE 50 vs B ΔE 20" in prompt
    assert "0.6" not in prompt and "P(" not in prompt  # the model's choice and probability are not revealed


def test_disagreement_is_reported_not_hidden(server: str) -> None:
    _Handler.reply = ('<answer>{"winner": "B", "reason": "Bigger product, sharper photo.", '
                      '"aspects": ["product size", "sharpness", "contrast", "mood"]}</answer>')
    ex, j = _ask(server)
    assert j.used and j.winner == "cB" and j.agrees_with_model is False
    assert j.not_differing == ["sharpness"] and j.against_winner == ["contrast"] and j.unknown == ["mood"]
    text = j.report(ex)
    assert "disagrees with the preference model, which shows cA" in text
    assert "do not differ: sharpness" in text and ex.text in text


@pytest.mark.parametrize("reply, why", [
    ("A is better because it pops.", "no JSON answer"),
    ('<answer>{"winner": "C", "reason": "x"}</answer>', "neither A nor B"),
    ('<answer>{"winner": "A", "reason": ""}</answer>', "no reason"),
    ('<answer>{"winner": "A", "reason": "x", "aspects": "contrast"}</answer>', "not a list"),
    (b"<html>gateway</html>", "endpoint failed"),
    (b'{"choices": []}', "endpoint failed"),
])
def test_malformed_answers_fall_back_to_the_grounded_text(server: str, reply: Any, why: str) -> None:
    _Handler.reply = reply
    ex, j = _ask(server)
    assert not j.used and why in (j.problem or "")
    assert j.report(ex).startswith(ex.text) and "MLLM answer not used" in j.report(ex)


def test_endpoint_errors_fall_back(server: str) -> None:
    _Handler.reply, _Handler.status = '<answer>{"winner": "A", "reason": "x"}</answer>', 500
    _, j = _ask(server)
    assert not j.used and "HTTPStatusError" in (j.problem or "")
    _, j = _ask("http://127.0.0.1:9/v1", timeout=1.0)
    assert not j.used and "endpoint failed" in (j.problem or "")


def test_parse_answer_takes_the_answer_block_or_the_last_object() -> None:
    assert parse_answer('<think>{"x": 1}</think><answer>{"winner": "B"}</answer>') == {"winner": "B"}
    assert parse_answer('blah {"winner": "A", "reason": "r"} done') == {"winner": "A", "reason": "r"}
    assert parse_answer("nothing here") is None
