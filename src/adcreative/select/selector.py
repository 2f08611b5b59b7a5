"""``Selector.rank(request) -> Ranking``: the in-process serving path (NumPy only, no torch, no web).

The list-wise creative model scores the candidates; the bundle's :class:`BetaVisualTS` sends its
``exploration_share`` of requests to a Thompson-sampled order instead and reports the chosen creative's
propensity, so logged traffic supports off-policy evaluation later. The ad CTR model — served separately
— gives the request's ad-level pCTR for the upstream ad auction.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.web import check_number
from adcreative.select.bundle import Bundle
from adcreative.select.data import hash_user
from adcreative.select.scoring import sigmoid

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


class Selector:
    """Ranks an ad's candidate creatives for one user with a loaded :class:`Bundle`."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.lock = threading.Lock()   # the bandit's counts are updated by event writers in other threads
        sc = bundle.creative_scorer
        self._num_fields = sc.user_num_fields

    def _validate(self, req: RankRequest) -> np.ndarray:
        if req.ad_id != self.bundle.ad_id:
            raise LookupError(f"unknown ad {req.ad_id!r}: this model serves ad {self.bundle.ad_id!r}")
        if not req.candidates:
            raise InputError("candidates is empty: give at least one creative id")
        if len(req.candidates) > MAX_CANDIDATES:
            raise InputError(f"{len(req.candidates)} candidates; at most {MAX_CANDIDATES} per request")
        if len(set(req.candidates)) != len(req.candidates):
            dup = sorted({c for c in req.candidates if req.candidates.count(c) > 1})
            raise InputError(f"duplicate candidate ids: {', '.join(dup[:10])}")
        if req.position < 0:
            raise InputError(f"position must be >= 0, got {req.position}")
        return self.bundle.creatives.index_of(req.candidates)

    def rank(self, req: RankRequest) -> Ranking:
        b = self.bundle
        rows = self._validate(req)
        sc = b.creative_scorer
        ucat = hash_user(req.user, sc.user_cat_fields, sc.n_buckets)
        unum = np.zeros(len(self._num_fields), np.float32)
        for j, f in enumerate(self._num_fields):
            # finite and bounded: "inf" or 1e39 in a numeric field would overflow float32 scores
            unum[j] = check_number(req.user.get(f, 0.0), f"user field {f!r}")
        pair = None
        if sc.pair_dim:
            pair = np.zeros((len(rows), sc.pair_dim), np.float32)
            for i, c in enumerate(req.candidates):
                if req.pair and c in req.pair:
                    vals = req.pair[c]
                    if len(vals) != sc.pair_dim:
                        raise InputError(f"pair features of {c!r}: expected {sc.pair_dim} values, got {len(vals)}")
                    pair[i] = [check_number(x, f"pair features of {c!r}") for x in vals]
        scores = sc.score(ucat, rows, unum, pair)
        if b.bandit is not None:
            with self.lock:
                if any(c not in b.bandit._index for c in req.candidates):  # new creatives: visual prior
                    b.bandit.add_arms(req.candidates, b.creatives.features[rows])
                order, explored, prop = b.bandit.rank(req.candidates, scores, explore=req.explore)
        else:
            order, explored, prop = np.argsort(-scores), False, 1.0
        ad_logit = b.ad_scorer.logits(ucat[None, :], unum[None, : len(b.ad_scorer.user_num_fields)],
                                      np.array([self._ad_bucket()]), np.array([req.position]))
        return Ranking(request_id=req.request_id or uuid.uuid4().hex, ad_id=req.ad_id,
                       ranked=[req.candidates[i] for i in order], scores=[float(scores[i]) for i in order],
                       explored=bool(explored), propensity=float(prop), ad_pctr=float(sigmoid(ad_logit)[0]),
                       model_version=b.version)

    def _ad_bucket(self) -> int:
        from adcreative.select.data import hash_bucket

        return hash_bucket("ad", self.bundle.ad_id, self.bundle.ad_scorer.n_ad_buckets)

    def observe(self, kind: str, creative_id: str) -> None:
        """Feed an impression/click to the bandit (ignored for creatives it does not know)."""
        bd = self.bundle.bandit
        if bd is None or creative_id not in bd._index:
            return
        with self.lock:
            bd.update(creative_id, 1.0 if kind == "impression" else 0.0, 1.0 if kind == "click" else 0.0)
