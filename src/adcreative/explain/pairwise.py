"""Grounded, faithful pairwise explanations: which creative wins for this user, by how much, and why.

Given two creatives' explicit features (``represent.features``) and a *scorer* — a function from feature
dicts to utilities for one user, e.g. :meth:`PreferenceModel.scorer <adcreative.explain.preference.
PreferenceModel.scorer>` or the selection model's creative logits — the preference is the Bradley–Terry
probability ``P(W ≻ L) = σ(s(W) − s(L))``. Each *aspect* (a group of features a reviewer names as one
thing; the groups partition :data:`~adcreative.represent.features.NUMERIC_FEATURES`) that really differs
is swapped between the two creatives, both ways:

* ``δ_W`` = what the winner's utility loses when it takes the loser's value of the aspect,
* ``δ_L`` = what the loser's utility gains when it takes the winner's value;

the aspect's contribution is their mean (logit units) and the reason states it as probability points,
``p − σ(Δ − c)``. The **counterfactual check** then actually performs each one-sided swap and passes when
both move ``P(W ≻ L)`` in the stated direction and land within ``max(0.01, 25 %)`` of the stated amount. For
a model that is additive in the aspects both swaps equal the statement; interactions (the selection
model's ReLU tower) make it fail, and the failure is reported, not hidden.

Only aspects whose main feature differs by more than noise are ever mentioned; every sentence quotes both
measured values and, with a user model, the user's weight on that aspect against the average shopper's.
Without a scorer (no model trained), differences are listed by how unusual they are (z-scores against a
reference population) and nobody is named the winner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SELECTION_LOGIT = "selection_logit"  # feature key of the serving model's logit (user-specific, see Aspect below)
Scorer = Callable[[Sequence[Mapping[str, Any]]], np.ndarray]
Interest = Callable[["Aspect"], "str | None"]


def _sig(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0))))


def _v(f: Mapping[str, Any], k: str) -> float:
    v = f.get(k, 0.0)
    return float(v) if isinstance(v, int | float | bool) and v is not None else 0.0


@dataclass(frozen=True)
class Aspect:
    """A group of features a reviewer would name as one thing."""

    name: str
    keys: tuple[str, ...]  # features swapped together
    more: str  # "in A …" when A has more of the main feature
    less: str  # … when A has less
    fmt: Callable[[Mapping[str, Any]], str]  # the measured value, for quoting
    min_diff: float = 0.0  # differences at or below this are noise, never mentioned
    likes: tuple[str, str] = ("more of it", "less of it")  # what a positive / negative taste leans to
    delta: Callable[[Mapping[str, Any], Mapping[str, Any]], float] | None = None  # default |Δ main feature|

    def differs(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        k = self.keys[0]
        if isinstance(a.get(k), bool) or isinstance(b.get(k), bool):
            return bool(a.get(k)) != bool(b.get(k))
        d = self.delta(a, b) if self.delta is not None else abs(_v(a, k) - _v(b, k))
        return d > self.min_diff

    def phrase(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
        return self.more if _v(a, self.keys[0]) > _v(b, self.keys[0]) else self.less


def _pct(k: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda f: f"{100 * _v(f, k):.0f}%"


def _num(k: str, spec: str = ".0f", prefix: str = "") -> Callable[[Mapping[str, Any]], str]:
    return lambda f: f"{prefix}{_v(f, k):{spec}}"


def _flag(k: str, yes: str, no: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda f: yes if f.get(k) else no


def _price(f: Mapping[str, Any]) -> str:
    return f"price {_v(f, 'min_price'):g} shown" if f.get("has_price") else "no price"


def _bg(f: Mapping[str, Any]) -> str:
    return f"background L*a*b* ({_v(f, 'bg_L'):.0f}, {_v(f, 'bg_a'):.0f}, {_v(f, 'bg_b'):.0f})"


def _bg_de(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    return float(np.sqrt(sum((_v(a, k) - _v(b, k)) ** 2 for k in ("bg_L", "bg_a", "bg_b"))))


# The aspects partition NUMERIC_FEATURES: every feature a model sees belongs to exactly one named aspect.
ASPECTS: tuple[Aspect, ...] = (
    Aspect("contrast", ("contrast_de", "luminance_contrast"), "the product stands out more from its background",
           "the product stands out less from its background", _num("contrast_de", ".0f", "ΔE "), 6.0,
           ("high-contrast creatives", "low-contrast creatives")),
    Aspect("product size", ("product_area",), "the product takes up more of the frame",
           "the product takes up less of the frame", _pct("product_area"), 0.03,
           ("large products in the frame", "small products in the frame")),
    Aspect("product position", ("product_cx", "product_cy"), "the product sits further right",
           "the product sits further left",
           lambda f: f"centre at ({_v(f, 'product_cx'):.2f}, {_v(f, 'product_cy'):.2f})", 0.05,
           ("products on the right", "products on the left"),
           lambda a, b: float(np.hypot(_v(a, "product_cx") - _v(b, "product_cx"),
                                       _v(a, "product_cy") - _v(b, "product_cy")))),
    Aspect("copy amount", ("text_area", "n_words", "n_text_boxes"), "it carries more copy", "it carries less copy",
           lambda f: f"{int(_v(f, 'n_words'))} words over {100 * _v(f, 'text_area'):.0f}% of the image", 2.0,
           ("wordy creatives", "sparse copy"), lambda a, b: abs(_v(a, "n_words") - _v(b, "n_words"))),
    Aspect("discount", ("has_sale", "percent_off"), "it advertises a discount", "it does not advertise a discount",
           lambda f: f"{int(_v(f, 'percent_off'))}% off" if f.get("percent_off") else
           ("sale wording" if f.get("has_sale") else "no discount"), 0.5, ("discounts", "no discount talk"),
           lambda a, b: float(bool(a.get("has_sale") or a.get("percent_off")) != bool(b.get("has_sale") or b.get("percent_off")))
           + abs(_v(a, "percent_off") - _v(b, "percent_off"))),
    Aspect("newness", ("has_new",), "it says the product is new", "it does not say the product is new",
           _flag("has_new", "'new' in the copy", "no 'new'"), 0.5, ("'new' labels", "no 'new' labels")),
    Aspect("free shipping", ("has_free_shipping",), "it promises free shipping", "it does not promise free shipping",
           _flag("has_free_shipping", "free shipping", "no free shipping"), 0.5,
           ("free-shipping offers", "no shipping talk")),
    Aspect("price", ("has_price", "min_price"), "it shows the price", "it does not show the price", _price, 0.5,
           ("prices on the creative", "no price on the creative")),
    Aspect("faces", ("n_faces", "face_area"), "it shows a face", "it shows no face", _num("n_faces", ".0f", "faces: "),
           0.5, ("faces", "no faces")),
    Aspect("brand logo", ("logo_score", "logo_found"), "the brand logo is more visible", "the brand logo is less visible",
           _num("logo_score", ".2f", "logo match "), 0.2, ("visible logos", "no logos")),
    Aspect("colourfulness", ("colorfulness",), "it is more colourful", "it is less colourful",
           _num("colorfulness", ".0f", "colourfulness "), 8.0, ("colourful creatives", "muted creatives")),
    Aspect("brightness", ("brightness",), "it is brighter", "it is darker", _num("brightness", ".2f", "mean grey "),
           0.06, ("bright creatives", "dark creatives")),
    Aspect("background", ("bg_L", "bg_a", "bg_b", "bg_share", "bg_n_colors"), "its background is lighter",
           "its background is darker", _bg, 12.0, ("light backgrounds", "dark backgrounds"), _bg_de),
    Aspect("sharpness", ("sharpness",), "it is sharper", "it is softer", _num("sharpness", ".0f", "sharpness "), 40.0,
           ("crisp, detailed images", "soft images"),
           lambda a, b: abs(_v(a, "sharpness") - _v(b, "sharpness")) if min(_v(a, "sharpness"), _v(b, "sharpness")) <= 0
           else 40.0 * abs(np.log(_v(a, "sharpness") / _v(b, "sharpness"))) / np.log(1.5)),
    Aspect("format", ("aspect_ratio",), "it is wider", "it is taller", _num("aspect_ratio", ".2f", "width/height "), 0.05,
           ("wide formats", "tall formats")),
    # the serving (selection) model's logit for this user, when a preference model is stacked on it: one more
    # additive input, so its share of the utility is swapped and checked like any other aspect
    Aspect("serving model", (SELECTION_LOGIT,), "the serving model scores it higher for this user",
           "the serving model scores it lower for this user", _num(SELECTION_LOGIT, ".2f", "serving-model logit "),
           0.01, ("what the serving model scores high", "what the serving model scores low")),
)
ASPECT_BY_NAME = {a.name: a for a in ASPECTS}


def aspect_of(feature: str) -> Aspect | None:
    for a in ASPECTS:
        if feature in a.keys:
            return a
    return None


@dataclass
class Check:
    """The counterfactual check of one reason (probability points of P(winner ≻ loser))."""

    winner_takes_loser: float  # p − P after the winner takes the loser's value of the aspect
    loser_takes_winner: float  # p − P after the loser takes the winner's value
    passed: bool


@dataclass
class Reason:
    aspect: str
    sentence: str
    value_winner: str
    value_loser: str
    contribution: float  # logit units; > 0 favours the winner
    points: float  # stated change of P(winner ≻ loser) when the aspect is swapped (probability points)
    interest: str | None = None
    check: Check | None = None


@dataclass
class Explanation:
    winner: str | None  # None: no preference
    loser: str | None
    p_winner: float | None  # P(winner ≻ loser | user); None without a model
    reasons: list[Reason] = field(default_factory=list)  # for the winner, strongest first (2–4 when there are)
    counter: list[Reason] = field(default_factory=list)  # what speaks for the loser
    grounded_by: str = "model"  # "model" (counterfactual swaps) or "features" (z-scores, no model)
    ids: tuple[str, str] = ("A", "B")
    user: str | None = None
    unexplained: float = 0.0  # share of the logit gap that no cited aspect accounts for
    text: str = ""

    @property
    def no_preference(self) -> bool:
        return self.winner is None

    def facts(self) -> dict[str, Any]:
        """The grounded facts as JSON (for an LLM to rewrite, for logs and ``--json``)."""
        return {"ids": list(self.ids), "user": self.user, "winner": self.winner, "loser": self.loser,
                "p_winner": self.p_winner, "no_preference": self.no_preference, "grounded_by": self.grounded_by,
                "unexplained_share": round(self.unexplained, 4),
                "reasons": [asdict(r) for r in self.reasons], "counter": [asdict(r) for r in self.counter]}

    def checks(self) -> list[Check]:
        return [r.check for r in [*self.reasons, *self.counter] if r.check is not None]


def _check(stated: float, a: float, b: float) -> bool:
    tol = max(0.01, 0.25 * abs(stated))
    same = all(np.sign(x) == np.sign(stated) for x in (a, b)) if abs(stated) > 1e-12 else True
    return bool(same and abs(a - stated) <= tol and abs(b - stated) <= tol)


def explain_pair(a: Mapping[str, Any], b: Mapping[str, Any], *, id_a: str = "A", id_b: str = "B",
                 scorer: Scorer | None = None, reference: Sequence[Mapping[str, Any]] | None = None,
                 interest: Interest | None = None, user: str | None = None, max_reasons: int = 4,
                 min_reasons: int = 2, tie_margin: float = 0.02) -> Explanation:
    """Which of two creatives wins for the scorer's user, with P(winner ≻ loser) and the reasons.

    ``scorer`` maps feature dicts to utilities for one user. ``interest(aspect)`` phrases the user's taste
    for an aspect (e.g. :func:`adcreative.explain.preference.interest_for`). ``|p − ½| < tie_margin``
    is "no preference". Without ``scorer`` the differences are ranked by z-score against ``reference``.
    """
    given = (id_a, id_b)
    aspects = [asp for asp in ASPECTS if asp.differs(a, b)]
    if scorer is None:
        return _by_rarity(a, b, id_a, id_b, aspects, reference)
    sa, sb = (float(x) for x in scorer([a, b]))
    p_a = _sig(sa - sb)
    if abs(p_a - 0.5) < tie_margin:
        ex = Explanation(None, None, 0.5 if sa == sb else max(p_a, 1 - p_a), grounded_by="model", ids=(id_a, id_b),
                         user=user)
        ex.text = render_text(ex, a, b)
        return ex
    if sb > sa:
        a, b, id_a, id_b, sa, sb = b, a, id_b, id_a, sb, sa
    gap = sa - sb
    p = _sig(gap)
    # the two one-sided swaps for every differing aspect, scored in one call
    w_takes = [{**a, **{k: b.get(k) for k in asp.keys}} for asp in aspects]
    l_takes = [{**b, **{k: a.get(k) for k in asp.keys}} for asp in aspects]
    s = scorer([*w_takes, *l_takes]) if aspects else np.zeros(0)
    sw, sl = s[: len(aspects)], s[len(aspects):]
    reasons: list[Reason] = []
    counter: list[Reason] = []
    for j, asp in enumerate(aspects):
        d_w, d_l = sa - float(sw[j]), float(sl[j]) - sb
        c = 0.5 * (d_w + d_l)
        if abs(c) < 1e-9:
            continue  # the model ignores this difference: never offered as a reason
        points = p - _sig(gap - c)
        m_w, m_l = p - _sig(float(sw[j]) - sb), p - _sig(sa - float(sl[j]))
        r = Reason(asp.name, f"in {id_a} {asp.phrase(a, b)} ({asp.fmt(a)} vs {asp.fmt(b)})", asp.fmt(a), asp.fmt(b),
                   c, points, interest(asp) if interest is not None else None,
                   Check(m_w, m_l, _check(points, m_w, m_l)))
        (reasons if c > 0 else counter).append(r)
    reasons.sort(key=lambda r: -r.contribution)
    counter.sort(key=lambda r: r.contribution)
    # the 2–4 that move the model most: stop after two once the cited ones cover 90 % of what favours W
    total = sum(r.contribution for r in reasons)
    chosen: list[Reason] = []
    for r in reasons:
        if len(chosen) >= max_reasons or (len(chosen) >= min_reasons and sum(x.contribution for x in chosen) >= 0.9 * total):
            break
        chosen.append(r)
    counter = [r for r in counter if abs(r.points) >= 0.005][:2]  # under half a point is not worth a sentence
    cited = sum(r.contribution for r in chosen) + sum(r.contribution for r in counter)
    ex = Explanation(id_a, id_b, p, chosen, counter, "model", given, user,
                     unexplained=float(abs(gap - cited) / max(abs(gap), 1e-12)))
    ex.text = render_text(ex, a, b)
    return ex


def _by_rarity(a: Mapping[str, Any], b: Mapping[str, Any], id_a: str, id_b: str, aspects: list[Aspect],
               reference: Sequence[Mapping[str, Any]] | None) -> Explanation:
    ref = list(reference or [a, b])
    diffs: list[Reason] = []
    for asp in aspects:
        k = asp.keys[0]
        vals = np.array([_v(r, k) for r in ref])
        sd = float(vals.std()) or max(abs(_v(a, k) - _v(b, k)), 1e-6)
        z = (_v(a, k) - _v(b, k)) / sd
        diffs.append(Reason(asp.name, f"in {id_a} {asp.phrase(a, b)} ({asp.fmt(a)} vs {asp.fmt(b)})", asp.fmt(a),
                            asp.fmt(b), z, 0.0))
    diffs.sort(key=lambda r: -abs(r.contribution))
    ex = Explanation(None, None, None, diffs, [], "features", (id_a, id_b))
    ex.text = render_text(ex, a, b)
    return ex


def render_text(ex: Explanation, a: Mapping[str, Any] | None = None, b: Mapping[str, Any] | None = None) -> str:
    """The plain-language explanation from the grounded facts alone."""
    id_a, id_b = ex.ids
    who = f"user {ex.user}" if ex.user else "this user"
    if ex.grounded_by == "features":
        if not ex.reasons:
            return f"{id_a} and {id_b} look alike in every measured feature."
        return (f"How {id_a} differs from {id_b}, the most unusual differences first (no preference model: "
                "nothing is said about which one wins): " + "; ".join(r.sentence for r in ex.reasons) + ".")
    if ex.no_preference:
        alike = a is not None and b is not None and not any(asp.differs(a, b) for asp in ASPECTS)
        why = (" The two creatives are alike in every measured feature." if alike else
               " Their differences cancel out in the model for this user.")
        return f"No preference between {id_a} and {id_b} for {who}: P = {ex.p_winner:.2f}, within a coin flip.{why}"
    head = f"Show {ex.winner} to {who}: P({ex.winner} beats {ex.loser}) = {ex.p_winner:.2f}."
    if not ex.reasons:
        return head + " No measured difference explains it."
    parts = []
    for i, r in enumerate(ex.reasons, 1):
        s = f"({i}) {r.sentence}"
        if r.interest:
            s += f"; {r.interest}"
        parts.append(s + f": {100 * r.points:+.0f} points")
    lines = [head, "Why: " + " ".join(parts) + "."]
    if ex.counter:
        lines.append("Working the other way: " + "; ".join(
            f"{r.sentence} ({100 * r.points:+.0f} points)" for r in ex.counter) + ".")
    lines.append(f"Each amount is how much P({ex.winner} beats {ex.loser}) drops when that aspect is swapped "
                 "between the two creatives (computed both ways).")
    return " ".join(lines)


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every aspect that really differs, with both measured values (what an MLLM is allowed to cite)."""
    return [{"aspect": asp.name, "a": asp.fmt(a), "b": asp.fmt(b)} for asp in ASPECTS if asp.differs(a, b)]
