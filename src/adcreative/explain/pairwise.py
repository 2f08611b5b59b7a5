"""Grounded pairwise explanations.

Given the explicit features of two creatives (``represent.features``) and, optionally, a scorer — any
function from a list of feature dicts to scores for one user, e.g. the selection model — each feature
*group* is swapped from B into A and the change of A's score is that group's contribution to "A over B"
(an occlusion/counterfactual attribution: model-faithful, no gradients needed, works for any model).
Without a scorer, differences are ranked by how unusual they are (z-scores against a reference population).
Only features that actually differ are ever mentioned, and every sentence quotes both measured values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Scorer = Callable[[Sequence[Mapping[str, Any]]], np.ndarray]


@dataclass(frozen=True)
class Aspect:
    """A group of features a reviewer would name as one thing."""

    name: str
    keys: tuple[str, ...]  # features swapped together
    more: str  # phrase when A has more of it
    less: str  # phrase when A has less of it
    fmt: Callable[[Mapping[str, Any]], str]  # the measured value, for quoting
    min_diff: float = 0.0  # differences below this are noise, never mentioned


def _pct(k: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda f: f"{100 * float(f.get(k, 0) or 0):.0f}%"


def _num(k: str, spec: str = ".0f", prefix: str = "") -> Callable[[Mapping[str, Any]], str]:
    return lambda f: f"{prefix}{float(f.get(k, 0) or 0):{spec}}"


def _flag(k: str, yes: str, no: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda f: yes if f.get(k) else no


def _price(f: Mapping[str, Any]) -> str:
    return f"price {float(f.get('min_price', 0) or 0):g} shown" if f.get("has_price") else "no price"


ASPECTS: tuple[Aspect, ...] = (
    Aspect("contrast", ("contrast_de", "luminance_contrast"), "the product stands out more from its background",
           "the product stands out less from its background", _num("contrast_de", ".0f", "ΔE "), 6.0),
    Aspect("product size", ("product_area",), "the product takes up more of the frame",
           "the product takes up less of the frame", _pct("product_area"), 0.03),
    Aspect("product position", ("product_cx", "product_cy"), "the product sits further right",
           "the product sits further left",
           lambda f: f"centre at ({float(f.get('product_cx', .5)):.2f}, {float(f.get('product_cy', .5)):.2f})", 0.05),
    Aspect("copy amount", ("text_area", "n_words", "n_text_boxes"), "it carries more copy", "it carries less copy",
           lambda f: f"{int(f.get('n_words', 0) or 0)} words over {100 * float(f.get('text_area', 0) or 0):.0f}% of the image",
           0.5),
    Aspect("discount", ("has_sale", "percent_off"), "it advertises a discount", "it does not advertise a discount",
           lambda f: f"{int(f.get('percent_off', 0) or 0)}% off" if f.get("percent_off") else
           ("sale wording" if f.get("has_sale") else "no discount"), 0.5),
    Aspect("newness", ("has_new",), "it says the product is new", "it does not say the product is new",
           _flag("has_new", "'new' in the copy", "no 'new'"), 0.5),
    Aspect("free shipping", ("has_free_shipping",), "it promises free shipping", "it does not promise free shipping",
           _flag("has_free_shipping", "free shipping", "no free shipping"), 0.5),
    Aspect("price", ("has_price", "min_price"), "it shows the price", "it does not show the price", _price, 0.5),
    Aspect("faces", ("n_faces", "face_area"), "it shows a face", "it shows no face", _num("n_faces", ".0f", "faces: "), 0.5),
    Aspect("brand logo", ("logo_found", "logo_score"), "the brand logo is visible", "the brand logo is not visible",
           _flag("logo_found", "logo found", "no logo"), 0.5),
    Aspect("colourfulness", ("colorfulness",), "it is more colourful", "it is less colourful", _num("colorfulness", ".0f"), 8.0),
    Aspect("brightness", ("brightness", "bg_L"), "it is brighter", "it is darker", _pct("brightness"), 0.06),
    Aspect("sharpness", ("sharpness",), "it is sharper", "it is softer", _num("sharpness", ".0f"), 40.0),
)


@dataclass
class Reason:
    aspect: str
    sentence: str
    value_a: str
    value_b: str
    contribution: float  # > 0 favours A; score units with a scorer, z-score units without


@dataclass
class Explanation:
    winner: str
    loser: str
    score_winner: float | None
    score_loser: float | None
    reasons: list[Reason] = field(default_factory=list)  # for the winner, strongest first
    counter: list[Reason] = field(default_factory=list)  # what speaks for the loser
    grounded_by: str = "model"  # "model" (counterfactual swaps) or "features" (z-scores)
    text: str = ""

    def facts(self) -> dict[str, Any]:
        """The grounded facts as JSON, for an LLM to rewrite and for logs."""
        return {"winner": self.winner, "loser": self.loser, "score_winner": self.score_winner,
                "score_loser": self.score_loser, "grounded_by": self.grounded_by,
                "reasons": [r.__dict__ for r in self.reasons], "counter": [r.__dict__ for r in self.counter]}


def _value(f: Mapping[str, Any], k: str) -> float:
    v = f.get(k, 0.0)
    return float(v) if isinstance(v, int | float | bool) and v is not None else 0.0


def _differs(a: Mapping[str, Any], b: Mapping[str, Any], asp: Aspect) -> bool:
    """The aspect's main feature differs by more than noise (flags: differ at all)."""
    k = asp.keys[0]
    if isinstance(a.get(k), bool) or isinstance(b.get(k), bool):
        return bool(a.get(k)) != bool(b.get(k))
    return abs(_value(a, k) - _value(b, k)) > asp.min_diff


def explain_pair(a: Mapping[str, Any], b: Mapping[str, Any], *, id_a: str = "A", id_b: str = "B",
                 scorer: Scorer | None = None, reference: Sequence[Mapping[str, Any]] | None = None,
                 top_k: int = 3) -> Explanation:
    """Why the higher-scoring of two creatives wins, in plain language with both measured values quoted.

    ``scorer`` scores feature dicts for one user (higher = more likely clicked); without it the creative
    given as ``a`` is taken as the winner and differences are ranked by z-score against ``reference``.
    """
    aspects = [asp for asp in ASPECTS if _differs(a, b, asp)]
    if scorer is not None:
        sa, sb = (float(x) for x in scorer([a, b]))
        if sb > sa:
            a, b, id_a, id_b, sa, sb = b, a, id_b, id_a, sb, sa
        swapped = [{**a, **{k: b.get(k) for k in asp.keys}} for asp in aspects]
        after = scorer(swapped) if swapped else np.zeros(0)
        contrib = {asp.name: sa - float(s) for asp, s in zip(aspects, after, strict=True)}
        grounded = "model"
        score_a: float | None = sa
        score_b: float | None = sb
    else:
        ref = list(reference or [a, b])
        contrib = {}
        for asp in aspects:
            k = asp.keys[0]
            vals = np.array([_value(r, k) for r in ref])
            sd = float(vals.std()) or max(abs(_value(a, k) - _value(b, k)), 1e-6)
            contrib[asp.name] = (_value(a, k) - _value(b, k)) / sd
        grounded = "features"
        score_a = score_b = None
    reasons: list[Reason] = []
    counter: list[Reason] = []
    for asp in aspects:
        c = contrib[asp.name]
        if abs(c) < 1e-9:
            continue
        more = _value(a, asp.keys[0]) > _value(b, asp.keys[0])
        phrase = asp.more if more else asp.less
        r = Reason(asp.name, f"in {id_a} {phrase} ({asp.fmt(a)} vs {asp.fmt(b)})", asp.fmt(a), asp.fmt(b), c)
        (reasons if c > 0 else counter).append(r)
    reasons.sort(key=lambda r: -r.contribution)
    counter.sort(key=lambda r: r.contribution)
    ex = Explanation(id_a, id_b, score_a, score_b, reasons[:top_k], counter[:top_k], grounded)
    ex.text = render_text(ex)
    return ex


def render_text(ex: Explanation) -> str:
    """The plain-language explanation from the grounded facts alone."""
    if ex.grounded_by == "features":
        diffs = sorted(ex.reasons + ex.counter, key=lambda r: -abs(r.contribution))
        if not diffs:
            return f"{ex.winner} and {ex.loser} look alike in every measured feature."
        return (f"How {ex.winner} differs from {ex.loser}, the most unusual differences first: "
                + "; ".join(r.sentence for r in diffs) + ".")
    head = f"{ex.winner} is ranked above {ex.loser} for this shopper (score {ex.score_winner:.3g} vs {ex.score_loser:.3g})."
    if not ex.reasons:
        return head + " No measured difference explains it: the two creatives look alike in every explicit feature."
    lines = [head, "Mainly because " + "; ".join(r.sentence for r in ex.reasons) + "."]
    if ex.counter:
        lines.append("Working the other way: " + "; ".join(r.sentence for r in ex.counter) + ".")
    lines.append("Each reason is what the ranking model's score loses when that aspect of "
                 f"{ex.winner} is replaced by {ex.loser}'s.")
    return " ".join(lines)
