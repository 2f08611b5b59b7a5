"""Creative pairs: the unit the preference model learns from and the explainer talks about.

The file format follows Creative4U's CreativePair (arXiv 2508.12628): one pair per record with
``image_a``, ``image_b`` (stored creative ids or image paths), ``winner`` (``"a"``, ``"b"`` or ``"tie"``),
``reason`` (why, in words) and an optional ``user`` (a user id, or the user's context as a dict). We add
two optional fields: ``evidence`` (impressions and clicks behind a pair built from logs, and the
posterior probability that the winner really is better) and ``source`` (``"logged"`` or ``"label"``).
JSON lines (``.jsonl``) or CSV (``.csv``; ``user`` and ``evidence`` as JSON in their cells).

Pairs from logs (:func:`aggregate_pairs`, :func:`pairs_from_store`): creatives of the same ad shown to
the same user group ("similar users": one user, or one value of a context field, or a cluster); each
side needs ``min_impressions`` impressions in the group and the pair ``min_clicks`` clicks (the
minimum-evidence rule); the winner is the side with the higher posterior mean CTR (Beta(1, 1) prior),
and ``evidence.p_better`` = P(CTR_winner > CTR_loser) under the two Beta posteriors, which the
preference model uses as a soft target.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write_text

if TYPE_CHECKING:
    from adcreative.core.store import Store
    from adcreative.core.types import Event

WINNERS = ("a", "b", "tie")
FIELDS = ("image_a", "image_b", "winner", "reason", "user", "evidence", "source")


@dataclass
class CreativePair:
    image_a: str
    image_b: str
    winner: str  # "a" | "b" | "tie"
    reason: str = ""
    user: str | dict[str, Any] | None = None
    evidence: dict[str, Any] | None = None
    source: str = "label"

    def __post_init__(self) -> None:
        w = str(self.winner).strip().lower()
        w = {"1": "a", "2": "b", "image_a": "a", "image_b": "b", "none": "tie", "": "tie"}.get(w, w)
        if w not in WINNERS:
            raise InputError(f"winner must be one of a, b, tie (got {self.winner!r})")
        if not str(self.image_a).strip() or not str(self.image_b).strip():
            raise InputError("image_a and image_b must name a creative id or an image path")
        self.winner = w

    @property
    def target(self) -> float:
        """P(a beats b) the pair asserts: the posterior from logs when known, else 1 / 0 / 0.5."""
        if self.winner == "tie":
            return 0.5
        p = float((self.evidence or {}).get("p_better", 1.0))
        return p if self.winner == "a" else 1.0 - p

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"image_a": self.image_a, "image_b": self.image_b, "winner": self.winner,
                             "reason": self.reason}
        if self.user is not None:
            d["user"] = self.user
        if self.evidence is not None:
            d["evidence"] = self.evidence
        d["source"] = self.source
        return d


# ----------------------------------------------------------------------------------- files -----------
def _from_record(rec: Mapping[str, Any], where: str) -> CreativePair:
    missing = [k for k in ("image_a", "image_b", "winner") if rec.get(k) in (None, "")]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(rec) - set(FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; a CreativePair has {', '.join(FIELDS)}")
    user, evidence = rec.get("user"), rec.get("evidence")
    for name, v in (("user", user), ("evidence", evidence)):
        if isinstance(v, str) and v.strip().startswith("{"):
            try:
                v = json.loads(v)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: {name} is not valid JSON ({e.msg})") from None
        if name == "user":
            user = v if v not in ("", None) else None
        else:
            evidence = v if v not in ("", None) else None
    if evidence is not None and not isinstance(evidence, dict):
        raise InputError(f"{where}: evidence must be a JSON object")
    if user is not None and not isinstance(user, str | dict):
        user = str(user)
    try:
        return CreativePair(str(rec["image_a"]).strip(), str(rec["image_b"]).strip(), str(rec["winner"]),
                            str(rec.get("reason") or ""), user, evidence, str(rec.get("source") or "label"))
    except InputError as e:
        raise InputError(f"{where}: {e.problem}") from None


def read_pairs(path: str | Path) -> list[CreativePair]:
    """Read a CreativePair file (``.jsonl``/``.json`` lines, or ``.csv``); a bad record refuses the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError("no such pair file", source=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("pair file is not UTF-8 text", source=p) from None
    out: list[CreativePair] = []
    if p.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        for i, row in enumerate(rows, start=2):
            out.append(_from_record({k: v for k, v in row.items() if k is not None}, f"{p}:{i}"))
    else:
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{p}:{i}: not a JSON object ({e.msg})") from None
            if not isinstance(rec, dict):
                raise InputError(f"{p}:{i}: not a JSON object")
            out.append(_from_record(rec, f"{p}:{i}"))
    if not out:
        raise InputError("pair file holds no pairs", source=p)
    return out


def write_pairs(path: str | Path, pairs: Iterable[CreativePair]) -> Path:
    """Write pairs atomically as JSON lines, or CSV when the name ends in ``.csv``."""
    p = Path(path)
    recs = [q.to_dict() for q in pairs]
    if p.suffix.lower() == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(FIELDS), lineterminator="\n")
        w.writeheader()
        for r in recs:
            w.writerow({k: json.dumps(v) if isinstance(v, dict) else ("" if v is None else v)
                        for k, v in ((k, r.get(k)) for k in FIELDS)})
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in recs)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, text)
    return p


# -------------------------------------------------------------------------------- from logs ----------
def p_better(clicks_a: float, n_a: float, clicks_b: float, n_b: float) -> float:
    """P(CTR_a > CTR_b) under independent Beta(1 + clicks, 1 + non-clicks) posteriors (normal approximation)."""
    def beta(c: float, n: float) -> tuple[float, float]:
        a, b = 1.0 + c, 1.0 + n - c
        return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1.0))

    ma, va = beta(clicks_a, n_a)
    mb, vb = beta(clicks_b, n_b)
    return 0.5 * (1.0 + math.erf((ma - mb) / math.sqrt(2.0 * (va + vb))))


@dataclass
class GroupStats:
    """Impressions and clicks per creative of one ad within one user group, and the group's context."""

    impressions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    clicks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    user: Any = None


def aggregate_pairs(ad: Sequence[Hashable], group: Sequence[Hashable], creative: Sequence[str],
                    click: Sequence[float], *, min_impressions: int = 20, min_clicks: int = 1,
                    users: Mapping[Any, Any] | None = None, describe: str = "user group") -> list[CreativePair]:
    """Pairs from an impression log under the minimum-evidence rule (see the module docstring).

    ``ad``, ``group``, ``creative``, ``click``: one entry per impression. ``users[group]`` is the user
    context recorded on each pair (a user id or a feature dict; the group key when absent).
    """
    n = len(creative)
    if not (len(ad) == len(group) == len(click) == n):
        raise InputError("ad, group, creative and click must have one entry per impression")
    if min_impressions < 1:
        raise InputError(f"min_impressions must be >= 1, got {min_impressions}")
    stats: dict[tuple[Hashable, Hashable], GroupStats] = defaultdict(GroupStats)
    for a, g, c, k in zip(ad, group, creative, click, strict=True):
        s = stats[(a, g)]
        s.impressions[c] += 1
        s.clicks[c] += int(k > 0)
    out: list[CreativePair] = []
    for (a, g), s in sorted(stats.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        ids = sorted(c for c, m in s.impressions.items() if m >= min_impressions)
        for i, ca in enumerate(ids):
            for cb in ids[i + 1:]:
                na, nb, ka, kb = s.impressions[ca], s.impressions[cb], s.clicks[ca], s.clicks[cb]
                if ka + kb < min_clicks:
                    continue
                p = p_better(ka, na, kb, nb)
                if p == 0.5:
                    continue
                win = "a" if p > 0.5 else "b"
                (wn, wk, wid), (ln, lk, _) = ((na, ka, ca), (nb, kb, cb)) if win == "a" else ((nb, kb, cb), (na, ka, ca))
                reason = (f"CTR {wk}/{wn} ({wk / wn:.1%}) vs {lk}/{ln} ({lk / ln:.1%}) for {describe} {g} on ad {a}; "
                          f"P({wid} better) = {max(p, 1 - p):.2f}")
                ev = {"ad": str(a), "group": str(g), "impressions_a": na, "clicks_a": ka, "impressions_b": nb,
                      "clicks_b": kb, "p_better": round(max(p, 1.0 - p), 6)}
                user = (users or {}).get(g, str(g))
                out.append(CreativePair(ca, cb, win, reason, user, ev, "logged"))
    return out


def logged_user(e: Event) -> dict[str, Any]:
    """The user fields the selection service logged with an event (``context["user"]``), or ``{}``."""
    u = e.context.get("user")
    return dict(u) if isinstance(u, dict) else {}


def _group_value(e: Event, group_by: str) -> Hashable:
    if group_by == "user":
        return e.user_id
    v = logged_user(e).get(group_by, e.context.get(group_by))
    return None if v is None else str(v)


def pairs_from_events(impressions: Sequence[Event], clicks: Sequence[Event], *, min_impressions: int = 20,
                      min_clicks: int = 1, group_by: str = "user") -> list[CreativePair]:
    """Pairs from logged events. A click counts once, and only when its impression was logged (same
    request and creative). ``group_by``: ``user`` (one user's own impressions) or a user-context field
    (e.g. ``segment``: users who share it); impressions without that field are left out."""
    clicked = {(c.request_id, c.creative_id) for c in clicks}
    seen: set[tuple[str, str]] = set()
    ad, grp, cre, clk = [], [], [], []
    users: dict[Hashable, Any] = {}
    for e in impressions:
        key = (e.request_id, e.creative_id)
        if key in seen:  # the same impression logged twice counts once
            continue
        seen.add(key)
        g = _group_value(e, group_by)
        if g is None:
            continue
        ad.append(e.ad_id)
        grp.append(g)
        cre.append(e.creative_id)
        clk.append(1.0 if key in clicked else 0.0)
        if group_by == "user":
            users[g] = {"id": e.user_id, **logged_user(e)}
        else:
            users[g] = {group_by: g}
    describe = "user" if group_by == "user" else f"users with {group_by} ="
    return aggregate_pairs(ad, grp, cre, clk, min_impressions=min_impressions, min_clicks=min_clicks,
                           users=users, describe=describe)


def pairs_from_store(store: Store, *, min_impressions: int = 20, min_clicks: int = 1,
                     group_by: str = "user") -> list[CreativePair]:
    """:func:`pairs_from_events` over the store's impression and click log."""
    return pairs_from_events(store.events(kind="impression"), store.events(kind="click"),
                             min_impressions=min_impressions, min_clicks=min_clicks, group_by=group_by)


def user_context(store: Store, user_id: str) -> dict[str, Any] | None:
    """The latest user context the selection service logged for ``user_id`` (``context["user"]``), or
    ``{}`` when the user has events without one; None when the user has no events at all."""
    ctx: dict[str, Any] | None = None
    for e in store.events():
        if e.user_id == user_id:
            ctx = logged_user(e) or (ctx or {})
    return ctx


def click_history(store: Store, user_id: str) -> tuple[list[str], list[str]]:
    """(creative ids shown to ``user_id``, creative ids they clicked), one entry per impression/click."""
    shown = [e.creative_id for e in store.events(kind="impression") if e.user_id == user_id]
    clicked = [e.creative_id for e in store.events(kind="click") if e.user_id == user_id]
    return shown, clicked


def click_pairs(ad: Sequence[Hashable], user_x: np.ndarray, creative: Sequence[str], click: Sequence[float], *,
                per_click: int = 4, users: Sequence[Any] | None = None, seed: int = 0) -> list[CreativePair]:
    """Matched pairs from an impression log: each click (user u, creative A of an ad) against the
    ``per_click`` non-clicked impressions of *other* creatives of the same ad whose users are nearest to u
    (Euclidean on ``user_x [N, d]``, a numeric encoding of the user context). The clicked creative wins.

    Why this is the Bradley–Terry likelihood: with a click logit ``a(u) + s(u, c)`` and rare clicks,
    P(the click fell on A | one of A, B was clicked, same user) ≈ σ(s(u, A) − s(u, B)); matching on similar
    users makes ``a(u)`` cancel. ``users[i]`` is the context recorded on a pair from click row ``i``.
    """
    n = len(creative)
    x = np.asarray(user_x, np.float64).reshape(n, -1)
    if not (len(ad) == len(click) == n):
        raise InputError("ad, user_x, creative and click must have one row per impression")
    if per_click < 1:
        raise InputError(f"per_click must be >= 1, got {per_click}")
    rng = np.random.default_rng(seed)
    ads = np.asarray([str(a) for a in ad])
    cre = np.asarray(creative, dtype=object)
    clk = np.asarray(click, np.float64) > 0
    out: list[CreativePair] = []
    for a in np.unique(ads):
        rows = np.flatnonzero(ads == a)
        pos, neg = rows[clk[rows]], rows[~clk[rows]]
        if not len(pos) or not len(neg):
            continue
        for i in pos:
            cand = neg[cre[neg] != cre[i]]
            if not len(cand):
                continue
            d = ((x[cand] - x[i]) ** 2).sum(1) + 1e-9 * rng.random(len(cand))  # random tie-break
            for j in cand[np.argsort(d)[:per_click]]:
                dist = float(np.sqrt(((x[j] - x[i]) ** 2).sum()))
                ev = {"ad": str(a), "clicked_row": int(i), "matched_row": int(j), "user_distance": round(dist, 4),
                      "p_better": 1.0}
                out.append(CreativePair(str(cre[i]), str(cre[j]), "a",
                                        f"{cre[i]} was clicked; {cre[j]} was shown to a similar user "
                                        f"(distance {dist:.2f}) on ad {a} and was not", users[i] if users is not None else None,
                                        ev, "logged"))
    return out
