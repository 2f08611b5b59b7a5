"""Optional: an OpenAI-compatible multimodal LLM rewrites the grounded facts as a short explanation.

The model sees both images and the facts JSON and is told to use nothing else; if the endpoint fails or
answers with something unusable, the template text stands. Configure with ``--llm-url``/``--llm-model``
and ``ADCREATIVE_LLM_API_KEY``.
"""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Any

from PIL import Image

from adcreative.explain.pairwise import Explanation

SYSTEM = ("You explain to an advertising team why one ad creative was ranked above another for a shopper. "
          "Use only the facts given (both measured values and their effect on the ranking score); do not invent "
          "reasons. Three sentences at most, plain language.")


def _data_url(im: Image.Image, side: int = 384) -> str:
    t = im.convert("RGB")
    t.thumbnail((side, side))
    buf = io.BytesIO()
    t.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def llm_explain(ex: Explanation, image_winner: Image.Image | None, image_loser: Image.Image | None, *, url: str,
                model: str, api_key: str | None = None, timeout: float = 30.0) -> str:
    """Ask the endpoint (``{url}/chat/completions``) for prose; returns the template text on any failure."""
    import httpx

    content: list[dict[str, Any]] = [{"type": "text", "text": "Facts:\n" + json.dumps(ex.facts(), indent=1)}]
    for name, im in ((ex.winner, image_winner), (ex.loser, image_loser)):
        if im is not None:
            content += [{"type": "text", "text": f"Creative {name}:"},
                        {"type": "image_url", "image_url": {"url": _data_url(im)}}]
    body = {"model": model, "temperature": 0.2,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]}
    key = api_key or os.environ.get("ADCREATIVE_LLM_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        r = httpx.post(url.rstrip("/") + "/chat/completions", json=body, headers=headers, timeout=timeout)
        r.raise_for_status()
        text = r.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError):
        return ex.text
    return text.strip() if isinstance(text, str) and text.strip() else ex.text
