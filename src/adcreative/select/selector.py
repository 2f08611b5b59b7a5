"""``Selector.rank(request) -> Ranking``: the in-process serving path (NumPy only, no torch, no web).

The list-wise creative model scores the candidates; the bundle's policy (any registered one, see
``select.bandit``) sends its ``exploration_share`` of requests to a posterior-sampled order instead and
reports the chosen creative's propensity, so logged traffic supports off-policy evaluation later. When the
deployment gate refused the learned model (``Bundle.serves_model`` False) the policy ranks every request.
The ad CTR model — served separately — gives the request's ad-level pCTR for the upstream ad auction.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.web import check_number
from adcreative.select.bandit import BetaVisualTS
from adcreative.select.bundle import Bundle
from adcreative.select.data import hash_bucket, hash_user

MAX_CANDIDATES = 1000


@dataclass
class RankRequest:
    user_id: str
    ad_id: str
    candidates: list[str]
    user: dict[str, Any] = field(default_factory=dict)     # categorical and numeric user fields
    position: int = 0
    pair: dict[str, list[float]] | None = None             # optional per-candidate user×creative features
    request_id: str | None = None
    explore: bool | None = None                            # force the exploration decision (tests, audits)


@dataclass
class Ranking:
    request_id: str
    ad_id: str
    ranked: list[str]
    scores: list[float]
    explored: bool
    propensity: float
    ad_pctr: float
    model_version: str


def new_request_id() -> str:
    """A random (version 4) UUID's 32 hex digits, like ``uuid.uuid4().hex`` without building a ``UUID`` object
    (which costs ~3 µs of a request's 200 µs budget)."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40   # version 4
    b[8] = b[8] & 0x3F | 0x80   # RFC 4122 variant
    return b.hex()


class Selector:
    """Ranks an ad's candidate creatives for one user with a loaded :class:`Bundle`.

    :meth:`rank` is the serving path: at load (so at every hot reload, which builds a new selector) the ad
    model's user tower is folded into tables (its first layer is linear in the embeddings, so each
    categorical field's embedding × weight product is precomputed) and its ad and slot terms tabulated,
    and the policy keeps its propensity factors between requests (:meth:`BetaVisualTS.cache_p_top`). The
    list-wise scores are ``CreativeScorer.score``'s own arithmetic, so rankings are bitwise those of the
    reference. ``reference=True`` ranks by composing each model's own API (``CreativeScorer.score``,
    ``Policy.rank``, ``AdScorer.logit``): the specification the serving path is tested against
    (``tests/select/test_selector.py``) and the baseline ``bench/select.py`` times beside it.
    """

    def __init__(self, bundle: Bundle, *, reference: bool = False) -> None:
        self.bundle = bundle
        self.lock = threading.Lock()   # the policy's counts are updated by the event feed in another thread
        sc = bundle.creative_scorer
        self._num_fields = sc.user_num_fields
        self._num_where = [(f, f"user field {f!r}") for f in self._num_fields]  # error labels, formatted once
        self._n_ad_num = len(bundle.ad_scorer.user_num_fields)
        self._ad_bucket = hash_bucket("ad", bundle.ad_id, bundle.ad_scorer.n_ad_buckets)
        pol = bundle.policy
        self._n_context = int(pol.config.get("n_context", 0)) if pol is not None else 0
        if self._n_context not in (0, len(self._num_fields)):
            raise InputError(f"the policy takes {self._n_context} context values but the model has "
                             f"{len(self._num_fields)} numeric user fields", source=bundle.directory)
        self._map_policy_rows()
        # the composed path feeds the creative model's hashed fields to both models: the tables need the same
        # layout in the ad model (what train_joint builds); anything else is served by the composed path
        ad = bundle.ad_scorer
        self.reference = reference or (len(ad.user_cat_fields), ad.n_buckets) != (len(sc.user_cat_fields), sc.n_buckets)
        if not self.reference:
            self._fold_ad_model()
            if isinstance(pol, BetaVisualTS):
                pol.cache_p_top()

    def _fold_ad_model(self) -> None:
        """``AdScorer.logit`` as tables (see the class doc), float32 like the model; folded in float64."""
        ad = self.bundle.ad_scorer
        w, nb, f = ad.w, ad.n_buckets, len(ad.user_cat_fields)
        emb, fc = w["user.emb.weight"].astype(np.float64), w["user.fc.weight"].astype(np.float64)
        e = emb.shape[1]
        # row j·nb + b: field j's bucket b through the first layer (the embedding's own row layout)
        cat = [emb[j * nb:(j + 1) * nb] @ fc[:, j * e:(j + 1) * e].T for j in range(f)]
        self._ad_cat = (np.concatenate(cat) if cat else np.zeros((0, fc.shape[0]))).astype(np.float32)
        self._ad_offsets = np.arange(f) * nb
        self._ad_num = fc[:, f * e:].T.astype(np.float32)                            # [N_ad, H]
        self._ad_bias = w["user.fc.bias"].astype(np.float32)
        self._ad_w = ad.user_w.astype(np.float32)
        self._ad_slot = (ad.ad_part[self._ad_bucket % ad.n_ad_buckets] + ad.ctx_part).astype(np.float32)  # [P, H]
        self._ad_out = w["out.weight"][0].astype(np.float32)
        self._ad_out_b = float(w["out.bias"][0])

    def _map_policy_rows(self) -> None:
        """The policy's row of each creative-table row (-1: an arm the policy lacks), so a request resolves
        its ids once (``CreativeTable.index_of``) and the policy gets its rows by one gather. Arms are only
        ever appended, so once the policy knows every creative no request needs to check."""
        pol, ids = self.bundle.policy, self.bundle.creatives.ids
        known = {c: i for i, c in enumerate(pol.ids)} if pol is not None else {}
        self._policy_rows = np.fromiter((known.get(c, -1) for c in ids), np.int64, len(ids))
        self._policy_complete = bool(len(ids) == 0 or self._policy_rows.min() >= 0)

    @classmethod
    def load(cls, directory: str | Path) -> Selector:
        """A selector over the bundle in ``directory`` (its current version)."""
        return cls(Bundle.load(directory))

    def _validate(self, req: RankRequest) -> np.ndarray:
        if req.ad_id != self.bundle.ad_id:
            raise LookupError(f"unknown ad {req.ad_id!r}: this model serves ad {self.bundle.ad_id!r}")
        cands = req.candidates
        if not cands:
            raise InputError("candidates is empty: give at least one creative id")
        if len(cands) > MAX_CANDIDATES:
            raise InputError(f"{len(cands)} candidates; at most {MAX_CANDIDATES} per request")
        if len(set(cands)) != len(cands):
            seen: set[str] = set()
            dup = sorted({c for c in cands if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
            raise InputError(f"duplicate candidate ids: {', '.join(dup[:10])}")
        if req.position < 0:
            raise InputError(f"position must be >= 0, got {req.position}")
        return self.bundle.creatives.index_of(cands)

    def _rows(self, req: RankRequest) -> np.ndarray:
        """:meth:`_validate`'s answer with the checks in the order that fails fastest on a valid request; any
        failure goes through :meth:`_validate`, which raises the same error as always."""
        cands, n = req.candidates, len(req.candidates)
        if req.ad_id != self.bundle.ad_id or not 0 < n <= MAX_CANDIDATES or req.position < 0:
            return self._validate(req)
        try:
            rows = self.bundle.creatives.index_of(cands)
        except InputError:
            return self._validate(req)  # duplicates are reported before unknown ids
        return rows if len(set(cands)) == n else self._validate(req)

    def _user_numeric(self, user: dict[str, Any]) -> np.ndarray:
        # finite and bounded: "inf" or 1e39 in a numeric field would overflow float32 scores
        return np.array([check_number(user.get(f, 0.0), where) for f, where in self._num_where], np.float32)

    def _pair(self, req: RankRequest, n: int) -> np.ndarray | None:
        sc = self.bundle.creative_scorer
        if not (sc.pair_dim and req.pair):  # no pair features given: the model's zero input adds nothing
            return None
        pair = np.zeros((n, sc.pair_dim), np.float32)
        for i, c in enumerate(req.candidates):
            if c in req.pair:
                vals = req.pair[c]
                if len(vals) != sc.pair_dim:
                    raise InputError(f"pair features of {c!r}: expected {sc.pair_dim} values, got {len(vals)}")
                pair[i] = [check_number(x, f"pair features of {c!r}") for x in vals]
        return pair

    def _decide(self, req: RankRequest, rows: np.ndarray, scores: np.ndarray, unum: np.ndarray
                ) -> tuple[np.ndarray, bool, float]:
        """The policy's order, exploration flag and propensity (or the model's order when there is none)."""
        b, pol = self.bundle, self.bundle.policy
        if pol is None:
            return (-scores).argsort(), False, 1.0
        ctx = unum if self._n_context else None
        with self.lock:
            prows = self._policy_rows.take(rows)
            if not self._policy_complete and prows.min() < 0:  # unseen creatives: feature prior
                pol.add_arms(req.candidates, b.creatives.features[rows])
                self._map_policy_rows()
                prows = self._policy_rows[rows]
            d = pol.rank(req.candidates, ctx, scores if b.serves_model else None, explore=req.explore, rows=prows)
        return d.order, bool(d.explored), float(d.propensity)

    def _ranking(self, req: RankRequest, decision: tuple[np.ndarray, bool, float], scores: np.ndarray,
                 ad_logit: float) -> Ranking:
        order, explored, prop = decision
        cands = req.candidates
        return Ranking(request_id=req.request_id or new_request_id(), ad_id=req.ad_id,
                       ranked=list(map(cands.__getitem__, order.tolist())), scores=scores.take(order).tolist(),
                       explored=explored, propensity=prop,
                       ad_pctr=1.0 / (1.0 + math.exp(-min(max(ad_logit, -30.0), 30.0))), model_version=self.bundle.version)

    def rank(self, req: RankRequest) -> Ranking:
        if self.reference:
            return self._rank_composed(req)
        rows = self._rows(req)
        sc = self.bundle.creative_scorer
        ucat = hash_user(req.user, sc.user_cat_fields, sc.n_buckets)
        unum = self._user_numeric(req.user)
        scores = sc.score(ucat, rows, unum, self._pair(req, len(rows)))
        decision = self._decide(req, rows, scores, unum)
        # the ad model (AdScorer.logit): its user tower from the folded tables, then the ad's and slot's terms
        h = unum[: self._n_ad_num] @ self._ad_num
        h += self._ad_bias
        if len(ucat):
            h += self._ad_cat.take(ucat + self._ad_offsets, 0).sum(0)
        g = np.maximum(h, 0.0, out=h) @ self._ad_w
        g += self._ad_slot[min(req.position, len(self._ad_slot) - 1)]
        ad_logit = float(np.maximum(g, 0.0, out=g) @ self._ad_out) + self._ad_out_b
        return self._ranking(req, decision, scores, ad_logit)

    def _rank_composed(self, req: RankRequest) -> Ranking:
        """:meth:`rank` as each model's own API computes it (the reference; see the class doc)."""
        b = self.bundle
        rows = self._validate(req)
        sc = b.creative_scorer
        ucat = hash_user(req.user, sc.user_cat_fields, sc.n_buckets)
        unum = self._user_numeric(req.user)
        scores = sc.score(ucat, rows, unum, self._pair(req, len(rows)))
        decision = self._decide(req, rows, scores, unum)
        ad_logit = b.ad_scorer.logit(ucat, unum[: self._n_ad_num], self._ad_bucket, req.position)
        return self._ranking(req, decision, scores, ad_logit)

    def observe(self, kind: str, creative_id: str, context: np.ndarray | None = None) -> None:
        """Feed one logged impression or click to the policy (ignored for creatives it does not know)."""
        pol = self.bundle.policy
        if pol is None:
            return
        with self.lock:
            try:
                pol.update(creative_id, 1.0 if kind == "click" else 0.0, context,
                           impressions=1.0 if kind == "impression" else 0.0)
            except InputError:
                return
