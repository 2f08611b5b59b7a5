"""``Selector.rank(request) -> Ranking``: the in-process serving path (NumPy only, no torch, no web).

The list-wise creative model scores the candidates; the bundle's policy (any registered one, see
``select.bandit``) sends its ``exploration_share`` of requests to a posterior-sampled order instead and
reports the chosen creative's propensity, so logged traffic supports off-policy evaluation later. When the
deployment gate refused the learned model (``Bundle.serves_model`` False) the policy ranks every request.
The ad CTR model — served separately — gives the request's ad-level pCTR for the upstream ad auction.
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.web import check_number
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


class Selector:
    """Ranks an ad's candidate creatives for one user with a loaded :class:`Bundle`."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.lock = threading.Lock()   # the policy's counts are updated by the event feed in another thread
        sc = bundle.creative_scorer
        self._num_fields = sc.user_num_fields
        self._n_ad_num = len(bundle.ad_scorer.user_num_fields)
        self._ad_bucket = hash_bucket("ad", bundle.ad_id, bundle.ad_scorer.n_ad_buckets)
        pol = bundle.policy
        self._n_context = int(pol.config.get("n_context", 0)) if pol is not None else 0
        if self._n_context not in (0, len(self._num_fields)):
            raise InputError(f"the policy takes {self._n_context} context values but the model has "
                             f"{len(self._num_fields)} numeric user fields", source=bundle.directory)
        self._map_policy_rows()

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

    def _user_numeric(self, user: dict[str, Any]) -> np.ndarray:
        unum = np.zeros(len(self._num_fields), np.float32)
        for j, f in enumerate(self._num_fields):
            # finite and bounded: "inf" or 1e39 in a numeric field would overflow float32 scores
            unum[j] = check_number(user.get(f, 0.0), f"user field {f!r}")
        return unum

    def rank(self, req: RankRequest) -> Ranking:
        b = self.bundle
        rows = self._validate(req)
        sc = b.creative_scorer
        ucat = hash_user(req.user, sc.user_cat_fields, sc.n_buckets)
        unum = self._user_numeric(req.user)
        pair = None
        if sc.pair_dim and req.pair:  # no pair features given: the model's zero input adds nothing
            pair = np.zeros((len(rows), sc.pair_dim), np.float32)
            for i, c in enumerate(req.candidates):
                if req.pair and c in req.pair:
                    vals = req.pair[c]
                    if len(vals) != sc.pair_dim:
                        raise InputError(f"pair features of {c!r}: expected {sc.pair_dim} values, got {len(vals)}")
                    pair[i] = [check_number(x, f"pair features of {c!r}") for x in vals]
        scores = sc.score(ucat, rows, unum, pair)
        pol = b.policy
        if pol is not None:
            ctx = unum if self._n_context else None
            with self.lock:
                prows = self._policy_rows[rows]
                if not self._policy_complete and prows.min() < 0:  # unseen creatives: feature prior
                    pol.add_arms(req.candidates, b.creatives.features[rows])
                    self._map_policy_rows()
                    prows = self._policy_rows[rows]
                d = pol.rank(req.candidates, ctx, scores if b.serves_model else None, explore=req.explore,
                             rows=prows)
            order, explored, prop = d.order, d.explored, d.propensity
        else:
            order, explored, prop = np.argsort(-scores), False, 1.0
        ad_logit = b.ad_scorer.logit(ucat, unum[: self._n_ad_num], self._ad_bucket, req.position)
        cands = req.candidates
        return Ranking(request_id=req.request_id or uuid.uuid4().hex, ad_id=req.ad_id,
                       ranked=list(map(cands.__getitem__, order.tolist())), scores=scores[order].tolist(),
                       explored=bool(explored), propensity=float(prop),
                       ad_pctr=1.0 / (1.0 + math.exp(-min(max(ad_logit, -30.0), 30.0))), model_version=b.version)

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
