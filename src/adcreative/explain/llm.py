"""Optional: an OpenAI-compatible multimodal LLM compares the two creatives, Creative4U style.

Creative4U (arXiv 2508.12628) casts creative selection as comparative reasoning: the MLLM sees both
creatives and the user's interests, reasons along a creative-evaluation protocol and names the better
one with a reason. We send the same shape of prompt — both images, the user's interests, and the
grounded, measured differences (never the preference model's choice, so the answer is independent) —
and require a parsed structure::

    <think>…</think><answer>{"winner": "A" | "B", "reason": "…", "aspects": ["contrast", …]}</answer>

The answer is then checked, not trusted: the cited aspects must be ones that really differ, each must
favour the MLLM's winner in the preference model's counterfactual swaps, and the winner is compared with
the model's. Disagreement is reported beside the grounded text. A failed call or an answer that does not
parse leaves the grounded text as the explanation and says why. The paper's exact prompt wording is not
public in our references; the protocol below follows its structure (product presentation, copy and
offers, visual appeal, fit with the user's interests). Configure with ``--llm-url``/``--llm-model`` and
``ADCREATIVE_LLM_API_KEY``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from adcreative.explain.pairwise import ASPECT_BY_NAME, Explanation

SYSTEM = (
    "You are an advertising creative selector. Two ad creatives of the same product are shown to one shopper; "
    "decide which one this shopper is more likely to click, by comparing them along this protocol: "
    "(1) product presentation: size in the frame, position, how much it stands out from the background; "
    "(2) copy and offers: amount of text, discount, price, 'new', free shipping; "
    "(3) visual appeal: colourfulness, brightness, sharpness, background; "
    "(4) fit with the shopper's interests. "
    "Measured differences between the two creatives are given: use them for any claim about measurable "
    "properties and do not invent others. Think step by step inside <think></think>, then answer inside "
    "<answer></answer> with one JSON object: {\"winner\": \"A\" or \"B\", \"reason\": one or two sentences, "
    "\"aspects\": the names of the measured aspects your reason relies on}.")


def _data_url(im: Image.Image, side: int = 384) -> str:
    t = im.convert("RGB")
    t.thumbnail((side, side))
    buf = io.BytesIO()
    t.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def comparative_prompt(ex: Explanation, diffs: list[dict[str, str]], interests: list[str]) -> str:
    """The text part of the user message: the shopper's interests and the measured differences."""
    lines = ["Shopper's interests (from the preference model and their clicks):"]
    lines += [f"- {t}" for t in interests] or ["- unknown"]
    lines.append("Measured differences (creative A vs creative B):")
    lines += [f"- {d['aspect']}: A {d['a']} vs B {d['b']}" for d in diffs] or ["- none: they measure alike"]
    lines.append(f"Creative A is {ex.ids[0]}, creative B is {ex.ids[1]}. Which one should this shopper see?")
    return "\n".join(lines)


@dataclass
class Judgement:
    """What the MLLM answered, and how it checks against the grounded facts and the model's choice."""

    used: bool                               # a parsed, usable answer
    winner: str | None = None                # creative id the MLLM chose
    reason: str = ""
    aspects: list[str] = field(default_factory=list)
    agrees_with_model: bool | None = None    # None when the model has no preference
    not_differing: list[str] = field(default_factory=list)   # cited aspects that do not differ
    against_winner: list[str] = field(default_factory=list)  # cited aspects the model credits to the other creative
    unknown: list[str] = field(default_factory=list)         # cited names that are no aspect
    problem: str | None = None               # why the answer was not used
    raw: str = ""

    def report(self, ex: Explanation) -> str:
        """The grounded text plus the MLLM's answer and every disagreement, in words."""
        if not self.used:
            return f"{ex.text} (MLLM answer not used: {self.problem}.)"
        notes = []
        if self.agrees_with_model is False:
            notes.append(f"it disagrees with the preference model, which shows {ex.winner} (P = {ex.p_winner:.2f})")
        elif self.agrees_with_model:
            notes.append("it agrees with the preference model")
        if self.not_differing:
            notes.append("it cites aspects that do not differ: " + ", ".join(self.not_differing))
        if self.against_winner:
            notes.append("the model credits these to the other creative: " + ", ".join(self.against_winner))
        if self.unknown:
            notes.append("it cites unmeasured aspects: " + ", ".join(self.unknown))
        return (f"MLLM: show {self.winner}: {self.reason} [check: {'; '.join(notes) or 'nothing to check'}] "
                f"Grounded: {ex.text}")


def parse_answer(text: str) -> dict[str, Any] | None:
    """The JSON object inside ``<answer>…</answer>`` (or the last ``{…}`` in the text), else None."""
    m = re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.S)
    body = m.group(1) if m else text
    for cand in [body, *re.findall(r"\{.*\}", body, re.S)[::-1]]:
        try:
            obj = json.loads(cand)
        except (json.JSONDecodeError, TypeError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def check_answer(obj: dict[str, Any] | None, ex: Explanation, differing: set[str], raw: str = "") -> Judgement:
    """Validate a parsed answer and check it against the grounded facts and the model's choice."""
    if obj is None:
        return Judgement(False, problem="no JSON answer found", raw=raw)
    w = str(obj.get("winner", "")).strip()
    id_a, id_b = ex.ids
    winner = {"A": id_a, "B": id_b, "a": id_a, "b": id_b}.get(w, w if w in (id_a, id_b) else None)
    reason = obj.get("reason")
    if winner is None:
        return Judgement(False, problem=f"winner {w!r} is neither A nor B", raw=raw)
    if not isinstance(reason, str) or not reason.strip():
        return Judgement(False, problem="no reason given", raw=raw)
    aspects = obj.get("aspects") or []
    if not isinstance(aspects, list) or not all(isinstance(a, str) for a in aspects):
        return Judgement(False, problem="aspects is not a list of names", raw=raw)
    credit = {r.aspect: r.contribution for r in [*ex.reasons, *ex.counter]}  # > 0 favours ex.winner
    j = Judgement(True, winner, reason.strip(), list(aspects), raw=raw)
    j.agrees_with_model = None if ex.winner is None else winner == ex.winner
    for a in aspects:
        name = a.strip().lower()
        if name not in ASPECT_BY_NAME:
            j.unknown.append(a)
        elif name not in differing:
            j.not_differing.append(name)
        elif ex.winner is not None and name in credit and (credit[name] > 0) != (winner == ex.winner):
            j.against_winner.append(name)
    return j


def llm_compare(ex: Explanation, differing: list[dict[str, str]], interests: list[str],
                image_a: Image.Image | None, image_b: Image.Image | None, *, url: str, model: str,
                api_key: str | None = None, timeout: float = 60.0) -> Judgement:
    """Ask ``{url}/chat/completions`` to compare the pair; never raises for endpoint or answer problems.

    ``differing``: the measured differences ``[{"aspect", "a", "b"}]`` in the order of ``ex.ids``.
    """
    import httpx

    content: list[dict[str, Any]] = [{"type": "text", "text": comparative_prompt(ex, differing, interests)}]
    for name, im in (("A", image_a), ("B", image_b)):
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
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as e:
        return Judgement(False, problem=f"endpoint failed ({type(e).__name__})")
    if not isinstance(text, str):
        return Judgement(False, problem="the answer is not text")
    return check_answer(parse_answer(text), ex, {d["aspect"] for d in differing}, raw=text)
