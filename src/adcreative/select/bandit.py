"""Selection policies: which of an ad's candidate creatives to show, and with which probability.

Every policy is built and loaded through one registry, ``adcreative.select.POLICIES`` (family ``policy``);
the serving bundle, the OBD export and the simulator all go through it. The contract (:class:`Policy`):

* ``Policy(n_features=D, n_context=U, seed=S, ...)`` — ``D`` creative features, ``U`` numeric user-context
  features (a policy may ignore either);
* ``add_arms(ids, features [C, D])`` registers creatives (new ones start from the policy's prior);
* ``rank(ids, context=None, scores=None, explore=None, pair=None, rows=None) -> Decision`` orders candidates
  (``rows``: the policy's rows of ``ids`` when the caller resolved them already, see :meth:`ArmPolicy.rows`);
  ``scores`` are a ranking model's (exploit traffic follows them when given); ``pair [K, P]`` are
  user × candidate features (e.g. how often this user saw each candidate); ``Decision.propensity`` is the
  probability that this policy puts ``order[0]`` first, so logged traffic supports off-policy evaluation;
* ``update(creative_id, reward, context=None, pair=None, impressions=1.0)`` learns from one impression (or,
  with ``impressions=0``, a click that arrives after its impression was counted);
* ``save_pretrained(dir)`` / ``POLICIES.load(dir)`` (``config.json`` + NumPy arrays in ``model.safetensors``;
  loading imports no torch).

Policies here:

* :class:`BetaVisualTS` — per-creative Beta-Bernoulli Thompson sampling over CTR. A new creative's prior
  mean is ``sigmoid(β · standardised visual features)``, a ridge regression of the creatives' smoothed
  logit-CTR on their features, worth ``prior_strength`` pseudo-impressions. With ``exploration_share=1``
  and no model scores it is Bernoulli Thompson sampling (the policy that logged OBD's ``bts`` data).
* :class:`HybridLinearTS` — contextual Thompson sampling on Li et al.'s (2010) hybrid model,
  ``logit = θ·[1, z_c, x ⊗ z_c] + per-creative (1, x)`` with ``z_c`` the PCA of standardised creative
  features, Laplace posterior of Bayesian logistic regression.
* :class:`OnlineHybridTS` — the same model learning from every impression (online Laplace steps between
  refits) with an empirical-Bayes (hierarchical) prior on each creative's own block: ours in the simulator.
* :class:`UniformPolicy` — a uniformly random order (hold-out traffic; the simulator's floor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.modeling import ConfigMixin, register_to_config

# Propensity quadrature: Gauss–Hermite nodes and weights for E[f(Z)], Z ~ N(0, 1), built once.
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(16)
_GH_W = _GH_W / _GH_W.sum()
_ndtr: Callable[..., np.ndarray] | None = None  # scipy.special.ndtr, imported on first use (scipy is heavy)


def _get_ndtr() -> Callable[..., np.ndarray]:
    global _ndtr
    if _ndtr is None:
        from scipy.special import ndtr

        _ndtr = ndtr
    return _ndtr


class Decision:
    """What a policy decided for one request: ``order`` (positions in the candidate list, best first),
    ``explored`` (ranked by a posterior draw rather than the greedy scores) and ``propensity``, P(this policy
    puts ``order[0]`` first | request) — given as a number or as a function computed on first access, so a
    caller that never logs (the simulator) does not pay for a Monte Carlo estimate."""

    __slots__ = ("_p", "explored", "order")

    def __init__(self, order: np.ndarray, explored: bool, propensity: float | Callable[[], float]) -> None:
        self.order, self.explored, self._p = order, explored, propensity

    @property
    def propensity(self) -> float:
        if callable(self._p):
            self._p = float(self._p())
        return self._p


@runtime_checkable
class Policy(Protocol):
    """The selection-policy contract (see the module docstring)."""

    config: dict[str, Any]
    ids: list[str]

    def add_arms(self, ids: Sequence[str], features: np.ndarray) -> None: ...

    def rank(self, ids: Sequence[str], context: np.ndarray | None = None, scores: np.ndarray | None = None, *,
             explore: bool | None = None, pair: np.ndarray | None = None, rows: np.ndarray | None = None
             ) -> Decision: ...

    def update(self, creative_id: str, reward: float, context: np.ndarray | None = None, *,
               pair: np.ndarray | None = None, impressions: float = 1.0) -> None: ...

    def save_pretrained(self, directory: Any, extra: dict[str, Any] | None = None) -> Any: ...


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))  # type: ignore[no-any-return]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))  # type: ignore[no-any-return]


def _check_share(share: float) -> None:
    if not 0.0 <= share <= 1.0:
        raise InputError(f"exploration_share must be in [0, 1], got {share}")


class ArmPolicy(ConfigMixin):
    """Creative ids ↔ rows, shared by the policies below. NumPy state only: ``ConfigMixin.from_pretrained``
    loads it without importing torch, so the service stays light."""

    registry_family = "policy"

    def _init_arms(self, ids: Sequence[str] | None) -> None:
        self.ids: list[str] = list(ids or [])
        self._index = {c: i for i, c in enumerate(self.ids)}

    def _append_ids(self, ids: Sequence[str]) -> list[int]:
        """Positions in ``ids`` of creatives not known yet (now registered)."""
        fresh = []
        for j, c in enumerate(ids):
            if c not in self._index:
                self._index[c] = len(self.ids)
                self.ids.append(c)
                fresh.append(j)
        return fresh

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        idx = self._index
        try:
            return np.fromiter(map(idx.__getitem__, ids), np.int64, len(ids))  # map: no generator frame per id
        except KeyError:
            missing = [c for c in ids if c not in idx]
            raise InputError(f"policy has no arm for creative ids: {', '.join(missing[:10])}") from None

    def _save_ids(self) -> None:
        self.config["arm_ids"] = list(self.ids)  # arms added since construction belong to the saved config


class _TopFactors:
    """One top arm's cached quadrature factors against every rival arm (:meth:`BetaVisualTS.cache_p_top`):
    ``log_factor [C, 16]``, the rival's moment stamp each row was computed at (-1: not yet), the top's stamp."""

    __slots__ = ("log_factor", "stamp", "top_stamp")

    def __init__(self, log_factor: np.ndarray, stamp: np.ndarray, top_stamp: int) -> None:
        self.log_factor, self.stamp, self.top_stamp = log_factor, stamp, top_stamp


class BetaVisualTS(ArmPolicy):
    """Beta-Bernoulli Thompson sampling per creative with a feature-regression prior (module doc)."""

    registry_name = "beta_visual"

    @register_to_config
    def __init__(self, n_features: int, n_context: int = 0, prior_strength: float = 50.0, base_ctr: float = 0.02,
                 ridge: float = 1.0, exploration_share: float = 0.1, arm_ids: list[str] | None = None,
                 seed: int = 0) -> None:
        _check_share(exploration_share)
        self.n_features = n_features
        self.prior_strength = prior_strength
        self.rng = np.random.default_rng(seed)
        self.coef = np.zeros(n_features + 1, np.float64)
        self.coef[0] = float(_logit(np.array(base_ctr)))
        self.mu = np.zeros(n_features, np.float64)
        self.sd = np.ones(n_features, np.float64)
        self._init_arms(arm_ids)
        self.features = np.zeros((len(self.ids), n_features), np.float64)
        self.impressions = np.zeros(len(self.ids), np.float64)
        self.clicks = np.zeros(len(self.ids), np.float64)
        self._cache_budget = 0   # bytes of p_top factors kept between requests (0: none; see cache_p_top)
        self._clock = 0
        self._refresh_prior()

    # -- state ------------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, Any]:
        self._save_ids()
        return {"coef": self.coef, "mu": self.mu, "sd": self.sd, "features": self.features,
                "impressions": self.impressions, "clicks": self.clicks}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        for k in ("coef", "mu", "sd", "features", "impressions", "clicks"):
            if k not in arrays:
                raise ValueError(f"policy state missing {k!r}")
            setattr(self, k, np.asarray(arrays[k], np.float64).copy())
        if len(self.impressions) != len(self.ids):
            raise ValueError(f"policy state has {len(self.impressions)} arms, config lists {len(self.ids)}")
        self._refresh_prior()

    # -- arms -------------------------------------------------------------------------------------
    def add_arms(self, ids: Sequence[str], features: np.ndarray) -> None:
        """Register creatives (ids already known are ignored); their prior comes from the regression."""
        features = np.asarray(features, np.float64).reshape(len(ids), self.n_features)
        fresh = self._append_ids(ids)
        if fresh:
            self.features = np.vstack([self.features, features[fresh]])
            self.impressions = np.concatenate([self.impressions, np.zeros(len(fresh))])
            self.clicks = np.concatenate([self.clicks, np.zeros(len(fresh))])
            self._refresh_prior()

    def update(self, creative_id: str, reward: float, context: np.ndarray | None = None, *,
               pair: np.ndarray | None = None, impressions: float = 1.0) -> None:
        i = self.rows([creative_id])[0]
        self.impressions[i] += impressions
        self.clicks[i] += reward
        self._refresh_moments(i)

    # -- feature prior ----------------------------------------------------------------------------
    def fit_prior(self) -> None:
        """Ridge regression of each creative's smoothed logit-CTR on its standardised features,
        weighted by impressions (creatives with no traffic do not pull the fit)."""
        w = self.impressions
        if w.sum() <= 0:
            return
        self.mu = np.average(self.features, axis=0, weights=w)
        self.sd = np.sqrt(np.average((self.features - self.mu) ** 2, axis=0, weights=w)) + 1e-6
        base = float(self.clicks.sum() / w.sum())
        base = min(max(base, 1e-4), 0.5)
        # smoothed per-arm CTR: shrink towards the base rate with 10 pseudo-impressions
        p = (self.clicks + 10 * base) / (w + 10)
        y = _logit(p)
        X = np.hstack([np.ones((len(w), 1)), (self.features - self.mu) / self.sd])
        reg = np.eye(X.shape[1]) * self.config["ridge"]
        reg[0, 0] = 1e-6
        XtW = X.T * w
        self.coef = np.linalg.solve(XtW @ X + reg * w.sum() / max(len(w), 1), XtW @ y)
        self._refresh_prior()

    def _refresh_prior(self) -> None:
        """Prior pseudo-counts per arm, cached: the request path only adds its own counts."""
        z = (self.features - self.mu) / self.sd
        m = np.clip(_sigmoid(self.coef[0] + z @ self.coef[1:]), 1e-4, 1 - 1e-4)
        s = float(self.prior_strength)
        self._prior_a, self._prior_b = m * s, (1 - m) * s
        n = len(self.ids)
        (self._a, self._b, self._mean, self._sd, self._sd_q, self._inv_sd_q, self._reach,
         self._low) = (np.empty(n) for _ in range(8))
        self._stamp = np.zeros(n, np.int64)   # when each arm's moments last changed (the factor cache's key)
        self._factors: dict[int, _TopFactors] = {}
        self._refresh_moments(slice(None))

    def _refresh_moments(self, rows: int | slice) -> None:
        """Posterior moments per arm, cached for the request path (``rows``: all after a prior or arm change,
        one arm after :meth:`update`). Counts changed in place must be followed by :meth:`fit_prior`."""
        a, b = self.posterior(rows)  # type: ignore[arg-type]
        self._a[rows], self._b[rows] = a, b
        s = a + b
        self._mean[rows] = a / s
        self._sd[rows] = sd = np.sqrt(a * b / (s * s * (s + 1)))
        self._sd_q[rows] = sd = sd + 1e-12                         # p_top's sd: never zero
        self._inv_sd_q[rows] = 1.0 / sd                             # p_top multiplies (cheaper than dividing)
        self._reach[rows] = self._mean[rows] + 9.0 * sd             # a rival's 9-sd upper bound
        self._low[rows] = np.minimum(a, b)                          # _draw's normal-approximation test
        self._n_low = int(np.count_nonzero(self._low < 10.0))       # arms that still need exact Beta draws
        self._clock += 1
        self._stamp[rows] = self._clock                             # cached p_top factors of these arms: stale

    def prior_mean(self, rows: np.ndarray) -> np.ndarray:
        return self._prior_a[rows] / float(self.prior_strength)  # type: ignore[no-any-return]

    def posterior(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.clicks[rows]
        return self._prior_a[rows] + c, self._prior_b[rows] + self.impressions[rows] - c

    def posterior_mean(self, ids: Sequence[str]) -> np.ndarray:
        a, b = self.posterior(self.rows(ids))
        return a / (a + b)  # type: ignore[no-any-return]

    def sample(self, ids: Sequence[str], n: int = 1) -> np.ndarray:
        """``n`` Thompson draws per creative ``[n, len(ids)]``."""
        return self._draw(*self.posterior(self.rows(ids)), n)

    def _draw(self, a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
        # Beta draws are ~10x slower than normal ones: once every posterior has ≥ 10 pseudo-counts on each
        # side, the moment-matched normal is used (the serving p99 budget); otherwise exact Beta draws.
        if min(a.min(), b.min()) >= 10.0:
            s = a + b
            mean, sd = a / s, np.sqrt(a * b / (s * s * (s + 1)))
            return np.clip(mean + sd * self.rng.standard_normal((n, len(a))), 0.0, 1.0)  # type: ignore[no-any-return]
        return self.rng.beta(a, b, size=(n, len(a)))

    def _draw_rows(self, rows: np.ndarray) -> np.ndarray:
        """One Thompson draw per row from the cached moments, for ranking: the moment-matched normal, and an
        exact Beta draw only for the rows with under 10 pseudo-counts on a side. (Drawing Beta for every
        candidate because one of them is young cost ~20 µs per explored request.) Not clipped to [0, 1]:
        the order is what matters, and unclipped draws rank exactly as :meth:`p_top`'s normals assume."""
        d = self.rng.standard_normal(len(rows))
        d *= self._sd[rows]
        d += self._mean[rows]
        if self._n_low:
            young = np.flatnonzero(self._low[rows] < 10.0)
            if len(young) > 8:
                r = rows[young]
                d[young] = self.rng.beta(self._a[r], self._b[r])
            else:  # Generator.beta costs ~11 µs per array call but ~1 µs per scalar call; same stream
                a, b, beta = self._a, self._b, self.rng.beta
                for i, j in zip(young.tolist(), rows[young].tolist(), strict=True):
                    d[i] = beta(a[j], b[j])
        return d

    def rank(self, ids: Sequence[str], context: np.ndarray | None = None, scores: np.ndarray | None = None, *,
             explore: bool | None = None, pair: np.ndarray | None = None, rows: np.ndarray | None = None
             ) -> Decision:
        """Exploit traffic ranks by ``scores`` when given, else by posterior mean; explore traffic
        (``exploration_share`` of requests) ranks by a Thompson draw. The propensity of the top creative
        mixes both: ``(1-ε)·1[greedy top] + ε·P_TS(top)`` (:meth:`p_top`)."""
        eps = float(self.config["exploration_share"])
        explored = bool(self.rng.random() < eps) if explore is None else explore
        rows = self.rows(ids) if rows is None else rows
        greedy = np.asarray(scores) if scores is not None else self._mean[rows]
        if explored:
            order = (-self._draw_rows(rows)).argsort()  # the method: np.argsort's dispatch costs ~2 µs here
            top, g = int(order[0]), int(greedy.argmax())
        else:
            order = (-greedy).argsort()
            top = g = int(order[0])
        p_top = self._p_top_cached if self._cache_budget else self._p_top_rows
        p = (1 - eps) * float(top == g) + (eps * p_top(rows, top) if eps > 0 else 0.0)
        return Decision(order, explored, p)

    def cache_p_top(self, max_bytes: int = 8 << 20) -> None:
        """Keep :meth:`p_top`'s quadrature factors ``Φ((x_k − m_j) / s_j)`` per (top, rival) arm pair between
        requests, up to ``max_bytes`` (0: off, the default). They depend only on the two arms' posterior
        moments, which change only when events arrive, so a served request multiplies cached factors instead
        of evaluating 16 normal CDFs per rival (the bulk of the propensity's cost). A rival's factors are
        recomputed, for the pairs a request needs, once its counts changed; a top whose counts changed is
        computed directly once, and cached from its next request at the same posterior on. The service
        turns it on; a loop that updates the top after every request (the simulator) would not reuse them."""
        self._cache_budget = int(max_bytes)
        self._factors = {}
        self._ones = np.ones(0)

    def _p_top_cached(self, rows: np.ndarray, top: int) -> float:
        """:meth:`_p_top_rows` from the factor cache (:meth:`cache_p_top`). The cache holds each factor's log
        (the same ``Φ`` value as :meth:`_p_top_rows` computes for the pair), so a request's product over
        rivals is one matrix-vector product, ``exp(1ᵀ log F)``: equal to the direct product to rounding.
        Rivals :meth:`_p_top_rows` prunes have ``Φ = 1`` exactly here (``Φ(z ≥ 9)`` rounds to 1), and the
        top's own entry is ``log 1 = 0``."""
        if len(rows) == 1:
            return 1.0
        t = int(rows[top])
        ent = self._factors.get(t)
        top_stamp = int(self._stamp[t])
        if ent is None or ent.top_stamp != top_stamp:
            # the first request for this top since its counts changed: the direct quadrature. Its factors are
            # kept from the next request at the same posterior on (with an impression of the top between every
            # two requests, as when one process serves and learns, they would never be reused)
            if ent is None:
                n = len(self._stamp)
                if len(self._factors) * n * 136 >= self._cache_budget and self._factors:
                    del self._factors[next(iter(self._factors))]          # the oldest top's row makes room
                self._factors[t] = _TopFactors(np.empty((n, len(_GH_X))), np.full(n, -1, np.int64), top_stamp)
            else:
                ent.stamp.fill(-1)                                          # the top moved: every pair is stale
                ent.top_stamp = top_stamp
            return self._p_top_rows(rows, top)
        stamps = self._stamp.take(rows)
        stale = ent.stamp.take(rows) != stamps
        if stale.any():
            r = rows[stale]
            x = self._mean[t] + self._sd_q[t] * _GH_X
            z = np.subtract.outer(x, self._mean[r])
            z *= self._inv_sd_q[r]
            with np.errstate(divide="ignore"):                              # Φ underflowing to 0: log −inf
                ent.log_factor[r] = np.log(_get_ndtr()(z, out=z)).T
            ent.log_factor[t] = 0.0
            ent.stamp[r] = stamps[stale]
        if len(self._ones) < len(rows):
            self._ones = np.ones(len(rows))
        log_prod = self._ones[: len(rows)] @ ent.log_factor.take(rows, 0)
        return float(min(max(float(_GH_W @ np.exp(log_prod)), 0.0), 1.0))

    def _p_top_rows(self, rows: np.ndarray, top: int) -> float:
        """:meth:`p_top` for the candidates at policy ``rows`` from the cached moments: rivals are pruned
        before anything is gathered, and the quadrature runs in one [16, R] buffer."""
        if len(rows) == 1:
            return 1.0
        r_top = rows[top]
        x = self._mean[r_top] + self._sd_q[r_top] * _GH_X
        rival = rows[self._reach[rows] > x[0]]
        rival = rival[rival != r_top]
        if not len(rival):
            return 1.0
        z = np.subtract.outer(x, self._mean[rival])
        z *= self._inv_sd_q[rival]
        cdf = _get_ndtr()(z, out=z)
        return float(min(max(float(_GH_W @ np.multiply.reduce(cdf, axis=1)), 0.0), 1.0))

    @staticmethod
    def p_top(a: np.ndarray, b: np.ndarray, top: int) -> float:
        """P(a Thompson draw of ``top`` beats every other), for the logged propensity.

        ``E_x[Π_j Φ((x − m_j) / s_j)]`` over ``top``'s draw ``x`` with moment-matched normal posteriors: 16-node
        Gauss–Hermite quadrature (exact for polynomials of degree 31; the 41-point rectangle rule it replaced
        cost 2.5x more), vectorised over rivals. Deterministic (no Monte Carlo noise in 1/propensity); rivals
        that cannot reach the lowest node are skipped."""
        if len(a) == 1:
            return 1.0
        s = a + b
        mean = a / s
        sd = np.sqrt(a * b / (s * s * (s + 1))) + 1e-12
        x = mean[top] + sd[top] * _GH_X
        rival = mean + 9.0 * sd > x[0]
        rival[top] = False
        if not rival.any():
            return 1.0
        cdf = _get_ndtr()((x[:, None] - mean[rival]) / sd[rival])
        return float(min(max(float(_GH_W @ np.prod(cdf, axis=1)), 0.0), 1.0))


class HybridLinearTS(ArmPolicy):
    """Contextual Thompson sampling on a hybrid linear model with a feature prior (module doc).

    Design row of user context ``x`` (``n_context``), creative ``c`` and pair features ``q`` (``n_pair``)::

        [1, z_c, x ⊗ z_c, q | block of c: (1, x[:arm_context])]

    ``z_c``: PCA (``n_components``) of the standardised creative features, fitted on the creatives present
    before the first event and shipped in the state. The shared part lets a brand-new creative start at the
    regression on its features; the creative's own block (offset and, for the first ``arm_context``
    context values, its own weights) is what its clicks reveal, with prior variance ``arm_prior_var``.

    The posterior is Gaussian: the Laplace approximation of Bayesian logistic regression (MAP by damped
    Newton, covariance = inverse Hessian), refitted on the last ``window`` events every ``refit_every``
    events (and at 25, 31, 39, ... early on); between refits requests sample from the last posterior.
    """

    registry_name = "hybrid_linear"

    @register_to_config
    def __init__(self, n_features: int, n_context: int = 0, n_pair: int = 0, n_components: int = 6,
                 arm_context: int | None = None, prior_var: float = 1.0, arm_prior_var: float = 0.05,
                 base_ctr: float = 0.05, exploration_share: float = 1.0, refit_every: int = 1000,
                 window: int = 50000, arm_ids: list[str] | None = None, seed: int = 0) -> None:
        _check_share(exploration_share)
        self.rng = np.random.default_rng(seed)
        self.n_user = n_context
        self.n_pair = n_pair
        self.k = min(n_components, n_features)
        self.arm_ctx = n_context if arm_context is None else min(arm_context, n_context)
        self.shared_dim = 1 + self.k + n_context * self.k + n_pair
        self.arm_dim = 1 + self.arm_ctx
        self.mean = np.zeros(n_features)
        self.components = np.eye(n_features)[: self.k]
        self.scale = np.ones(self.k)
        self.raw = np.zeros((0, n_features))
        self.Z = np.zeros((0, self.k))
        self.theta = np.zeros(self.shared_dim)
        self.theta[0] = float(_logit(np.array(base_ctr)))
        self.prec = np.diag(self._prior_prec(0))
        # event history: user context, pair features of the shown creative, its row, the reward
        self.hist_x = np.zeros((0, self.n_user), np.float32)
        self.hist_q = np.zeros((0, self.n_pair), np.float32)
        self.hist_arm = np.zeros(0, np.int64)
        self.hist_r = np.zeros(0, np.float32)
        self._buf: list[tuple[np.ndarray, np.ndarray, int, float]] = []
        self._chol: np.ndarray | None = None
        self.n_events = 0
        self.last_refit = 0
        self._init_arms(None)
        self._saved_ids = list(arm_ids or [])  # a saved policy: its arms come back with load_state_arrays

    @property
    def n_arms(self) -> int:
        return len(self.Z)

    def _prior_prec(self, n_arm_cols: int) -> np.ndarray:
        p = np.full(self.shared_dim + n_arm_cols, 1.0 / float(self.config["prior_var"]) if hasattr(self, "config") else 1.0)
        p[0] = 0.25  # broad prior on the intercept around the base rate
        if n_arm_cols:
            p[self.shared_dim:] = 1.0 / float(self.config["arm_prior_var"])
        return p

    def _arm_prec(self) -> np.ndarray:
        """``[arm_dim, arm_dim]`` prior precision of one creative's own block (isotropic here)."""
        return np.eye(self.arm_dim) / float(self.config["arm_prior_var"])

    def _prior_matrix(self) -> np.ndarray:
        """The whole prior precision: diagonal on the shared part, :meth:`_arm_prec` on every creative's block."""
        d = self.shared_dim
        lam = np.diag(self._prior_prec(self.n_arms * self.arm_dim))
        lam[d:, d:] = np.kron(np.eye(self.n_arms), self._arm_prec())
        return lam  # type: ignore[no-any-return]

    def _theta0(self) -> np.ndarray:
        t = np.zeros(self.shared_dim + self.n_arms * self.arm_dim)
        t[0] = float(_logit(np.array(float(self.config["base_ctr"]))))
        return t

    # -- state ------------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, Any]:
        self._flush()
        self._save_ids()
        return {"mean": self.mean, "components": self.components, "scale": self.scale, "raw": self.raw,
                "Z": self.Z, "theta": self.theta, "prec": self.prec, "hist_x": self.hist_x, "hist_q": self.hist_q,
                "hist_arm": self.hist_arm, "hist_r": self.hist_r, "n_events": np.array([self.n_events, self.last_refit])}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        for k, v in arrays.items():
            setattr(self, k, np.asarray(v).copy())
        self.n_events, self.last_refit = (int(v) for v in np.asarray(arrays["n_events"])[:2])
        self.hist_arm = self.hist_arm.astype(np.int64)
        self._chol = None
        self._init_arms(self._saved_ids)
        if len(self.ids) != self.n_arms:
            raise ValueError(f"policy state has {self.n_arms} arms, config lists {len(self.ids)}")

    # -- creatives ----------------------------------------------------------------------------------
    def add_arms(self, ids: Sequence[str], features: np.ndarray) -> None:
        """Register creatives ``[C, D]`` (known ids are ignored). The standardisation + PCA is fitted on the
        creatives present before the first event (preprocessing that ships in the policy's state)."""
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.config["n_features"] or len(f) != len(ids):
            raise InputError(f"creative features must be [{len(ids)}, {self.config['n_features']}], got {f.shape}")
        fresh = self._append_ids(ids)
        if not fresh:
            return
        self.raw = np.vstack([self.raw, f[fresh]])
        if self.n_events == 0:
            self._fit_projection(self.raw)
        old = self.n_arms
        self.Z = (self.raw - self.mean) @ self.components.T / self.scale
        pad = (self.n_arms - old) * self.arm_dim  # new creatives: prior mean 0 offset, precision 1/arm_prior_var
        if self.n_events == 0:
            self.theta = self._theta0()
            self.prec = self._prior_matrix()
        else:
            self.theta = np.concatenate([self.theta, np.zeros(pad)])
            p = np.zeros((len(self.theta), len(self.theta)))
            p[: len(self.prec), : len(self.prec)] = self.prec
            p[-pad:, -pad:] = np.kron(np.eye(self.n_arms - old), self._arm_prec())
            self.prec = p
        self._chol = None

    def _fit_projection(self, f: np.ndarray) -> None:
        self.mean = f.mean(0)
        sd = f.std(0) + 1e-6
        _, _, vt = np.linalg.svd((f - self.mean) / sd, full_matrices=False)
        comp = vt[: self.k] / sd                     # project raw features: (f - mean) @ components.T
        if len(comp) < self.k:  # fewer creatives than components: the missing directions stay zero
            comp = np.vstack([comp, np.zeros((self.k - len(comp), f.shape[1]))])
        self.components = comp
        self.scale = ((f - self.mean) @ self.components.T).std(0) + 1e-6

    def _context(self, x: np.ndarray | None) -> np.ndarray:
        if x is None:
            return np.zeros(self.n_user)
        x = np.asarray(x, np.float64).ravel()
        if len(x) != self.n_user:
            raise InputError(f"context must have {self.n_user} values, got {len(x)}")
        return x

    def _pair(self, q: np.ndarray | None, n: int, width: int | None = None) -> np.ndarray:
        """``q`` as ``[n, width]`` pair features (zeros when None), checked; ``width`` defaults to ``n_pair``."""
        width = self.n_pair if width is None else width
        if q is None or not width:
            return np.zeros((n, width))
        q = np.asarray(q, np.float64).reshape(n, -1)
        if q.shape[1] != width:
            raise InputError(f"pair features must have {width} values per candidate, got {q.shape[1]}")
        return q

    def features(self, x_user: np.ndarray | None, rows: np.ndarray | None = None,
                 pair: np.ndarray | None = None) -> np.ndarray:
        """Dense design rows for one user and the given creatives (all by default): ``[shared | every arm's
        block]``, the creative's own block filled. For inspection; the posterior code never builds it."""
        rows = np.arange(self.n_arms) if rows is None else rows
        x = np.broadcast_to(self._context(x_user), (len(rows), self.n_user))
        xs, ab = self._shared(x, rows, self._pair(pair, len(rows))), self._arm_values(x)
        arm_part = np.zeros((len(rows), self.n_arms * self.arm_dim))
        cols = rows[:, None] * self.arm_dim + np.arange(self.arm_dim)[None, :]
        arm_part[np.arange(len(rows))[:, None], cols] = ab
        return np.hstack([xs, arm_part])

    def _shared(self, x: np.ndarray, arms: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The shared columns ``[1, z_c, x ⊗ z_c, q]`` of events or candidates."""
        z = self.Z[arms]
        inter = (x[:, :, None] * z[:, None, :]).reshape(len(z), -1)
        return np.hstack([np.ones((len(z), 1)), z, inter, q])

    def _arm_values(self, x: np.ndarray) -> np.ndarray:
        """The values in the shown creative's own block: ``(1, x[:arm_context])``."""
        return np.hstack([np.ones((len(x), 1)), x[:, : self.arm_ctx]])

    def _logits(self, theta: np.ndarray, xs: np.ndarray, ab: np.ndarray, arms: np.ndarray) -> np.ndarray:
        """Logits for ``theta [dim]`` or draws ``[dim, n]``: shared part plus each row's own arm block."""
        d = self.shared_dim
        blocks = theta[d:].reshape(self.n_arms, self.arm_dim, *theta.shape[1:])   # [C, a(, n)]
        own = np.einsum("ka,ka...->k...", ab, blocks[arms]) if ab.shape[0] == len(arms) else \
            np.einsum("a,ka...->k...", ab[0], blocks[arms])
        return xs @ theta[:d] + own  # type: ignore[no-any-return]

    def _draw_logits(self, draws: np.ndarray, xs: np.ndarray, ab: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The scores an explored request ranks by, from posterior draws ``[dim]`` or ``[dim, n]``."""
        return self._logits(draws, xs, ab, rows)

    # -- posterior ---------------------------------------------------------------------------------
    def _flush(self) -> None:
        if self._buf:
            self.hist_x = np.vstack([self.hist_x, np.array([b[0] for b in self._buf], np.float32)])
            self.hist_q = np.vstack([self.hist_q, np.array([b[1] for b in self._buf], np.float32)])
            self.hist_arm = np.concatenate([self.hist_arm, np.array([b[2] for b in self._buf], np.int64)])
            self.hist_r = np.concatenate([self.hist_r, np.array([b[3] for b in self._buf], np.float32)])
            self._buf = []
            w = int(self.config["window"])
            if len(self.hist_r) > w:
                self.hist_x, self.hist_q = self.hist_x[-w:], self.hist_q[-w:]
                self.hist_arm, self.hist_r = self.hist_arm[-w:], self.hist_r[-w:]

    def refit(self, iters: int = 8) -> None:
        """Laplace posterior of Bayesian logistic regression on the event history (damped Newton from the
        current mean; the prior is centred on the base rate, zero elsewhere). The Hessian is assembled by
        blocks — shared × shared, shared × each arm's block, each arm's block alone — since an event touches
        one arm's block only: far cheaper than the dense design when there are many creatives."""
        self._flush()
        if not len(self.hist_r):
            return
        x = self.hist_x.astype(np.float64)
        arms = self.hist_arm
        xs, ab = self._shared(x, arms, self.hist_q.astype(np.float64)), self._arm_values(x)
        y = self.hist_r.astype(np.float64)
        lam = self._prior_matrix()
        t0 = self._theta0()
        th = self.theta.copy()
        by_arm = [np.nonzero(arms == c)[0] for c in range(self.n_arms)]

        def objective(t: np.ndarray) -> float:  # penalised log-likelihood
            z = self._logits(t, xs, ab, arms)
            return float(y @ z - np.logaddexp(0.0, z).sum() - 0.5 * (t - t0) @ lam @ (t - t0))

        def grad_hess(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            p = 1.0 / (1.0 + np.exp(-np.clip(self._logits(t, xs, ab, arms), -30, 30)))
            r, w = y - p, p * (1 - p)
            d, a = self.shared_dim, self.arm_dim
            g = np.empty(len(t))
            g[:d] = xs.T @ r
            H = np.zeros((len(t), len(t)))
            H[:d, :d] = (xs.T * w) @ xs
            for c, idx in enumerate(by_arm):
                sl = slice(d + c * a, d + (c + 1) * a)
                g[sl] = ab[idx].T @ r[idx]
                if len(idx):
                    wa = ab[idx] * w[idx, None]
                    H[:d, sl] = xs[idx].T @ wa
                    H[sl, sl] = ab[idx].T @ wa
            H[d:, :d] = H[:d, d:].T
            H += lam
            return g - lam @ (t - t0), H

        f = objective(th)
        for _ in range(iters):
            g, H = grad_hess(th)
            step = np.linalg.solve(H, g)
            # damped Newton: halve the step until the objective improves (plain Newton can overshoot)
            for _ in range(20):
                f_new = objective(th + step)
                if f_new >= f - 1e-9:
                    break
                step *= 0.5
            th, f = th + step, f_new
            if np.abs(step).max() < 1e-5:
                break
        self.theta = th
        self.prec = grad_hess(th)[1]
        self._chol = None

    def _refit_gap(self) -> int:
        """Events until the next refit: a geometric schedule early on (25, 31, 39, ...), then every
        ``refit_every`` events."""
        return min(int(self.config["refit_every"]), max(25, self.last_refit // 4))

    def _sample_thetas(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``[dim, n]`` posterior draws: θ̃ = θ + L^-T ε with prec = L Lᵀ gives Cov(θ̃) = prec⁻¹."""
        from scipy.linalg import solve_triangular

        if self._chol is None:
            self._chol = np.linalg.cholesky(self.prec)
        eps = rng.standard_normal((len(self.theta), n))
        return self.theta[:, None] + solve_triangular(self._chol.T, eps, lower=False, check_finite=False)  # type: ignore[no-any-return]

    def _candidates(self, x_user: np.ndarray | None, rows: np.ndarray, pair: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        x = self._context(x_user)[None, :]
        return self._shared(np.broadcast_to(x, (len(rows), self.n_user)), rows, self._pair(pair, len(rows))), \
            self._arm_values(x)

    def scores(self, x_user: np.ndarray | None, rows: np.ndarray | None = None, *, sample: bool,
               pair: np.ndarray | None = None) -> np.ndarray:
        """Click logits of creatives (all by default) for one user: posterior mean, or what an explored request
        ranks by (one Thompson draw)."""
        rows = np.arange(self.n_arms) if rows is None else rows
        xs, ab = self._candidates(x_user, rows, pair)
        if sample:
            return self._draw_logits(self._sample_thetas(1, self.rng)[:, 0], xs, ab, rows)
        return self._logits(self.theta, xs, ab, rows)

    def rank(self, ids: Sequence[str], context: np.ndarray | None = None, scores: np.ndarray | None = None, *,
             explore: bool | None = None, pair: np.ndarray | None = None, rows: np.ndarray | None = None
             ) -> Decision:
        """Exploit: ``scores`` when given, else the posterior mean; explore (``exploration_share``): one
        Thompson draw. ``P_TS(top)`` is a Monte Carlo estimate over 64 draws with a fixed seed (a deterministic
        function of the posterior) plus the draw that ranked this request, computed only when the propensity
        is read: never 0 for the creative actually shown (a logged propensity of 0 breaks IPS)."""
        rows = self.rows(ids) if rows is None else rows
        eps = float(self.config["exploration_share"])
        explored = bool(self.rng.random() < eps) if explore is None else explore
        xs, ab = self._candidates(context, rows, pair)
        greedy = np.asarray(scores, np.float64) if scores is not None else self._logits(self.theta, xs, ab, rows)
        s = self._draw_logits(self._sample_thetas(1, self.rng)[:, 0], xs, ab, rows) if explored else greedy
        order = np.argsort(-s)
        top = int(order[0])

        def prop() -> float:
            p_ts = 0.0
            if eps > 0:
                draws = self._draw_logits(self._sample_thetas(64, np.random.default_rng(0)), xs, ab, rows)
                e = int(explored)  # an explored request's own draw is one more sample in which top won
                p_ts = (float((draws.argmax(0) == top).sum()) + e) / (64 + e)
            return (1 - eps) * float(top == int(np.argmax(greedy))) + eps * p_ts

        return Decision(order, explored, prop)

    def update(self, creative_id: str, reward: float, context: np.ndarray | None = None, *,
               pair: np.ndarray | None = None, impressions: float = 1.0) -> None:
        """One impression and its reward. A click reported on its own (``impressions=0``) cannot be joined
        to its impression's context here: it is left to the offline refit on joined logs."""
        if impressions <= 0:
            return
        row = int(self.rows([creative_id])[0])
        self._buf.append((self._context(context).astype(np.float32), self._pair(pair, 1)[0].astype(np.float32),
                          row, float(reward)))
        self.n_events += 1
        if self.n_events - self.last_refit >= self._refit_gap():
            self.refit()
            self.last_refit = self.n_events


class OnlineHybridTS(HybridLinearTS):
    """:class:`HybridLinearTS` that learns from every impression, not only at refits.

    Between the Laplace refits (which keep correcting the approximation on the whole window) each event
    takes one online Laplace step — assumed-density filtering of Bayesian logistic regression: with the
    current posterior ``N(θ, Σ)`` and the event's design row ``d``, ``p = σ(d·θ)``, ``w = p(1 − p)``::

        Σ ← Σ − w Σd (Σd)ᵀ / (1 + w dᵀΣd)        θ ← θ + Σd (y − p) / (1 + w dᵀΣd)

    (Sherman–Morrison, ``O(dim²)``; ``d`` touches the shared block and one creative's block only). So a new
    creative's block moves after its first clicks instead of after the next refit, which is where the
    batch-refitted policy loses most against the oracle: the learning phase. The rank-one terms are applied
    to Σ, and the Cholesky factor that Thompson draws use is refreshed, every ``chol_every`` events;
    ``sample_scale`` scales the draws' spread around the posterior mean (1: plain Thompson sampling; below
    1: less exploration). With ``empirical_prior`` the prior covariance of a creative's own block is learned
    from all creatives (a hierarchical model, :meth:`_update_arm_prior`), ``em_iters`` EM steps per refit,
    of rank ``prior_rank`` (None: full) above a shrinkage floor. ``optimistic``: explored requests rank by
    ``max(draw, posterior mean)`` per creative (:meth:`_draw_logits`).

    Feature-conditioned block prior (with ``empirical_prior``; :meth:`_update_arm_prior`): ``block_mean``
    ``"constant"`` centres every creative's block on the blocks' common mean (the context's main effects:
    slot, segment and taste change every creative's click rate alike, and the zero-mean prior made each
    creative learn them on its own), ``"features"`` on a ridge regression (``block_mean_ridge``) of the
    blocks on the creative's standardised features, ``[1, f_c] R``, refitted at each EM step — a creative with
    few impressions starts from what creatives that look like it taught. ``block_kernel`` γ > 0 correlates the
    blocks of similar-looking creatives: ``Cov(b_c, b_c') = K[c, c'] Ψ`` with ``K = (1 − γ) I + γ ·
    exp(−‖f_c − f_c'‖² / (kernel_scale · median ‖f − f'‖²))``, so a click moves the blocks of a creative's
    look-alikes too (the online steps use the full Σ). Both use the features themselves, not only the
    ``n_components`` PCA that the shared part sees.

    Learning phase (``early_events`` > 0: the campaign's first events; off by default): the Thompson draws use
    ``early_sample_scale`` instead of ``sample_scale`` there, and refits come at least every
    ``early_refit_every`` events (the geometric schedule's gaps reach thousands of events, and the hierarchical
    prior only moves at refits); afterwards the usual scale and schedule.

    Round f (off by default): ``shared_ard`` learns the prior variance of the shared part's weights per PCA
    component of the features (its main effect and its context interactions; automatic relevance
    determination by the same EM steps, shrunk by ``prior_shrink``, :meth:`_update_shared_prior`);
    ``prior_floor="ppca"`` with ``prior_rank`` gives the discarded directions of the block prior their mean
    variance (probabilistic PCA's noise) instead of only the shrinkage floor.

    Round g (off by default): ``kernel_space="ard"`` (with ``shared_ard``) measures the look-alike kernel's
    distance on the PCA scores weighted by their learned relevance instead of on all standardised features
    alike, so creatives count as look-alikes when they differ only in directions that do not predict clicks.

    Round h (off by default): ``novelty_scales`` adds ``exp(−I_c / τ)`` per scale τ to the shared pair features,
    ``I_c`` the policy's own count of the creative's impressions so far (an ad server knows it; saved with the
    policy). A creative's early click rate can then be credited to its being new rather than to its block.
    """

    registry_name = "hybrid_online"

    @register_to_config
    def __init__(self, n_features: int, n_context: int = 0, n_pair: int = 0, n_components: int = 6,
                 arm_context: int | None = None, prior_var: float = 1.0, arm_prior_var: float = 0.05,
                 base_ctr: float = 0.05, exploration_share: float = 1.0, refit_every: int = 5000,
                 window: int = 50000, chol_every: int = 50, sample_scale: float = 1.0,
                 empirical_prior: bool = False, prior_shrink: float = 0.2, prior_rank: int | None = None,
                 em_iters: int = 1, optimistic: bool = False, block_mean: str | None = None,
                 block_mean_ridge: float = 10.0, block_kernel: float = 0.0, kernel_scale: float = 1.0,
                 early_events: int = 0, early_sample_scale: float | None = None,
                 early_refit_every: int | None = None, shared_ard: bool = False, prior_floor: str = "shrink",
                 kernel_space: str = "features", novelty_scales: list[float] | None = None,
                 arm_ids: list[str] | None = None, seed: int = 0) -> None:
        scales = [float(t) for t in (novelty_scales or [])]
        if any(not t > 0 for t in scales):
            raise InputError(f"novelty_scales must be positive impression counts, got {novelty_scales}")
        if prior_floor not in ("shrink", "ppca"):
            raise InputError(f"prior_floor must be 'shrink' or 'ppca', got {prior_floor!r}")
        if kernel_space not in ("features", "ard"):
            raise InputError(f"kernel_space must be 'features' or 'ard', got {kernel_space!r}")
        if kernel_space == "ard" and not shared_ard:
            raise InputError("kernel_space='ard' weighs the look-alike distance by the learned relevances: "
                             "it needs shared_ard=True")
        if early_events < 0:
            raise InputError(f"early_events must be >= 0, got {early_events}")
        if early_sample_scale is not None and early_sample_scale < 0:
            raise InputError(f"early_sample_scale must be >= 0 (or None: sample_scale), got {early_sample_scale}")
        if early_refit_every is not None and early_refit_every < 1:
            raise InputError(f"early_refit_every must be >= 1 (or None: refit_every), got {early_refit_every}")
        if block_mean not in (None, "constant", "features"):
            raise InputError(f"block_mean must be None, 'constant' or 'features', got {block_mean!r}")
        if block_mean_ridge <= 0:
            raise InputError(f"block_mean_ridge must be > 0, got {block_mean_ridge}")
        if not 0.0 <= block_kernel < 1.0:
            raise InputError(f"block_kernel must be in [0, 1), got {block_kernel}")
        if kernel_scale <= 0:
            raise InputError(f"kernel_scale must be > 0, got {kernel_scale}")
        if em_iters < 1:
            raise InputError(f"em_iters must be >= 1, got {em_iters}")
        if prior_rank is not None and prior_rank < 1:
            raise InputError(f"prior_rank must be >= 1 (or None: full rank), got {prior_rank}")
        if chol_every < 1:
            raise InputError(f"chol_every must be >= 1, got {chol_every}")
        if sample_scale < 0:
            raise InputError(f"sample_scale must be >= 0, got {sample_scale}")
        if not 0.0 < prior_shrink <= 1.0:
            raise InputError(f"prior_shrink must be in (0, 1], got {prior_shrink}")
        # the pair features the caller gives, then exp(-I_c / τ) per novelty scale τ (the policy's own count)
        self.n_pair_given = n_pair
        self.novelty_scales = np.asarray(scales, np.float64)
        self.impressions = np.zeros(0)
        super().__init__(n_features, n_context, n_pair + len(scales), n_components, arm_context, prior_var,
                         arm_prior_var, base_ctr, exploration_share, refit_every, window, arm_ids, seed)
        # the prior covariance of a creative's own block: isotropic until the empirical-Bayes step learns it
        self.arm_prior_cov = np.eye(self.arm_dim) * float(arm_prior_var)
        # the feature-conditioned prior mean of a block: [1, f_c] @ block_map (zero until the first EM step)
        self.block_map = np.zeros((1 + n_features, self.arm_dim))
        # the prior variance of each shared column (``shared_ard`` learns it per PCA component; else prior_var)
        self.shared_var = np.full(self.shared_dim, float(prior_var))
        # Σ = prec⁻¹ as of the last flush (built when first needed after a refit or new arms), minus the
        # rank-one terms Σ_i c_i u_i u_iᵀ of the online steps since: applied together every ``chol_every``
        # steps (one matrix product instead of a dense outer product per impression)
        self._cov: np.ndarray | None = None
        self._u = np.zeros((0, 0))
        self._c = np.zeros(0)
        self._stale = 0

    def state_arrays(self) -> dict[str, Any]:
        return {**super().state_arrays(), "arm_prior_cov": self.arm_prior_cov, "block_map": self.block_map,
                "shared_var": self.shared_var, "impressions": self.impressions}

    def _novel(self, pair: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
        """The caller's pair features for ``rows`` with the novelty columns appended (the caller's alone when
        there are no novelty scales)."""
        if not len(self.novelty_scales):
            return pair
        given = self._pair(pair, len(rows), self.n_pair_given)
        seen = self.impressions[rows] if len(self.impressions) else np.zeros(len(rows))
        return np.hstack([given, np.exp(-seen[:, None] / self.novelty_scales[None, :])])

    def _candidates(self, x_user: np.ndarray | None, rows: np.ndarray, pair: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        return super()._candidates(x_user, rows, self._novel(pair, rows))

    def features(self, x_user: np.ndarray | None, rows: np.ndarray | None = None,
                 pair: np.ndarray | None = None) -> np.ndarray:
        rows = np.arange(self.n_arms) if rows is None else rows
        return super().features(x_user, rows, self._novel(pair, rows))

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        if "impressions" in arrays:
            self.impressions = np.asarray(arrays["impressions"], np.float64)
        super().load_state_arrays(arrays)  # a policy saved before ``shared_var`` existed keeps prior_var
        self.arm_prior_cov = np.asarray(self.arm_prior_cov, np.float64)
        self.block_map = np.asarray(self.block_map, np.float64)
        self.shared_var = np.asarray(self.shared_var, np.float64)
        self._cov, self._stale = None, 0

    def _arm_prec(self) -> np.ndarray:
        return np.linalg.inv(self.arm_prior_cov)  # type: ignore[no-any-return]

    def _prior_prec(self, n_arm_cols: int) -> np.ndarray:
        p = super()._prior_prec(n_arm_cols)
        if getattr(self, "shared_var", None) is not None and self.config["shared_ard"]:
            g = self._component_columns().ravel()
            p[g] = 1.0 / self.shared_var[g]
        return p

    def _component_columns(self) -> np.ndarray:
        """``[k, 1 + n_context]``: the shared columns of each PCA component — its main effect ``z_j`` and its
        interactions ``x_i · z_j`` (``x ⊗ z`` is laid out context-major)."""
        k = self.k
        return np.hstack([1 + np.arange(k)[:, None],
                          1 + k + np.arange(self.n_user)[None, :] * k + np.arange(k)[:, None]])

    def _update_shared_prior(self) -> None:
        """One EM step of automatic relevance determination on the shared part: the prior variance of each
        PCA component's weights (main effect and context interactions, ``1 + n_context`` of them) ← their mean
        posterior second moment, shrunk by ``prior_shrink`` towards the components' average. A component of
        represent's features that does not predict clicks on this campaign is shrunk away, so its weights stop
        adding noise to the Thompson draws and the predictive ones can move."""
        g = self._component_columns()
        second = (self.theta[g] ** 2 + np.diag(self.covariance())[g]).mean(1)
        rho = float(self.config["prior_shrink"])
        v = (1 - rho) * second + rho * second.mean()
        self.shared_var[g] = v[:, None]

    def _design(self) -> np.ndarray:
        """``[C, 1 + D]``: a constant and the creatives' standardised features (the block prior's inputs)."""
        f = self.raw
        return np.hstack([np.ones((len(f), 1)), (f - f.mean(0)) / (f.std(0) + 1e-6)])

    def _kernel(self) -> np.ndarray:
        """``[C, C]`` correlation of the creatives' blocks (the identity when ``block_kernel`` is 0)."""
        g, c = float(self.config["block_kernel"]), self.n_arms
        if g == 0.0 or c < 2:
            return np.eye(c)
        if self.config["kernel_space"] == "ard":
            # look-alike by what predicts clicks in this market: the PCA scores, each scaled by the square
            # root of its learned relevance (ARD variance over the components' mean), so directions the EM
            # step has shrunk away no longer make two creatives differ
            rel = self.shared_var[self._component_columns()[:, 0]]
            f = self.Z * np.sqrt(rel / rel.mean())
        else:
            f = self._design()[:, 1:]
        d2 = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
        scale = float(self.config["kernel_scale"]) * max(float(np.median(d2[np.triu_indices(c, 1)])), 1e-12)
        return (1 - g) * np.eye(c) + g * np.exp(-d2 / scale)  # type: ignore[no-any-return]

    def _prior_matrix(self) -> np.ndarray:
        lam = super()._prior_matrix()
        if float(self.config["block_kernel"]) > 0 and self.n_arms:
            d = self.shared_dim
            lam[d:, d:] = np.kron(np.linalg.inv(self._kernel()), self._arm_prec())
        return lam

    def _theta0(self) -> np.ndarray:
        t = super()._theta0()
        if self.config["block_mean"] is not None and self.n_arms:
            t[self.shared_dim:] = (self._design() @ self.block_map).ravel()
        return t

    def _fit_block_map(self, blocks: np.ndarray, kinv: np.ndarray) -> None:
        """Generalised ridge of the blocks' posterior means on ``[1, f_c]`` (the constant unpenalised; only the
        constant with ``block_mean="constant"``), weighted by the blocks' correlation ``K⁻¹``."""
        phi = self._design()
        if self.config["block_mean"] == "constant":
            phi = phi[:, :1]
        reg = np.eye(phi.shape[1]) * float(self.config["block_mean_ridge"])
        reg[0, 0] = 1e-9
        pk = phi.T @ kinv
        r = np.linalg.solve(pk @ phi + reg, pk @ blocks)
        self.block_map = np.zeros((1 + self.raw.shape[1], self.arm_dim))
        self.block_map[: len(r)] = r

    def _update_arm_prior(self) -> None:
        """One EM step of the hierarchical prior ``block_c ~ N(0, Ψ)``: ``Ψ ← mean_c(E[b_c b_cᵀ])`` under the
        current posterior (mean and covariance of every creative's block), shrunk by ``prior_shrink`` towards
        its average variance so that 40 creatives can estimate it. The blocks' common directions (e.g. a
        creative that suits one segment suits the matching tastes) then make a new creative's few
        impressions inform its whole block."""
        d, a, c = self.shared_dim, self.arm_dim, self.n_arms
        cov = self.covariance()
        blocks = self.theta[d:].reshape(c, a)
        kernel = float(self.config["block_kernel"]) > 0
        kinv = np.linalg.inv(self._kernel()) if kernel else np.eye(c)
        if self.config["block_mean"] is not None:
            self._fit_block_map(blocks, kinv)
            blocks = blocks - self._design() @ self.block_map
        if kernel:  # Ψ ← E[Bᵀ K⁻¹ B] / C over the blocks' joint posterior
            s4 = cov[d:, d:].reshape(c, a, c, a)
            second = (blocks.T @ kinv @ blocks + np.einsum("ce,cjek->jk", kinv, s4)) / c
        else:
            idx = d + np.arange(c)[:, None] * a + np.arange(a)[None, :]
            second = (blocks.T @ blocks + cov[idx[:, :, None], idx[:, None, :]].sum(0)) / c
        rank = self.config["prior_rank"]
        if rank is not None and rank < a:
            # reduced rank: the blocks vary along ``rank`` shared directions of the context; the others keep
            # only the shrinkage floor below (fewer free values per creative to learn)
            val, vec = np.linalg.eigh(second)
            top = vec[:, -rank:]
            low = (top * val[-rank:]) @ top.T
            if self.config["prior_floor"] == "ppca":
                # probabilistic PCA's maximum-likelihood noise: the discarded directions keep their mean
                # variance instead of only the shrinkage floor, so they can still be learned, only slower
                low += float(val[:-rank].mean()) * (np.eye(a) - top @ top.T)
            second = low
        rho = float(self.config["prior_shrink"])
        psi = (1 - rho) * second + rho * np.eye(a) * np.trace(second) / a
        self.arm_prior_cov = (psi + psi.T) / 2

    def add_arms(self, ids: Sequence[str], features: np.ndarray) -> None:
        """New creatives after events: with a feature-conditioned prior (mean or kernel) the posterior is
        refitted at once, so the newcomers start from the prior their features give (and are linked to their
        look-alikes) rather than from zero."""
        old = self.n_arms
        super().add_arms(ids, features)
        if len(self.impressions) < self.n_arms:
            self.impressions = np.concatenate([self.impressions, np.zeros(self.n_arms - len(self.impressions))])
        self._cov, self._stale = None, 0
        informed = self.config["block_mean"] is not None or float(self.config["block_kernel"]) > 0
        if self.n_arms > old and self.n_events and informed:
            self.refit()

    def refit(self, iters: int = 8) -> None:
        """With ``empirical_prior``, the prior is re-estimated from the current posterior first (EM step)."""
        hier, ard = bool(self.config["empirical_prior"]), bool(self.config["shared_ard"])
        em = bool((hier or ard) and self.n_arms and self.n_events)
        for _ in range(int(self.config["em_iters"]) if em else 1):
            if em and hier:
                self._update_arm_prior()
            if em and ard:
                self._update_shared_prior()
            super().refit(iters)
            self._cov, self._stale = None, 0  # the next EM step reads the refitted posterior's covariance

    def _early(self) -> bool:
        """Whether the campaign is still in its learning phase (the first ``early_events`` events)."""
        return self.n_events < int(self.config["early_events"])

    def _refit_gap(self) -> int:
        """In the learning phase the gap is capped at ``early_refit_every``: the geometric schedule's gaps
        grow from ~1,100 events at 4,400 to ~4,200 at 17,000, and the hierarchical prior (EM steps, the
        blocks' common mean) only moves at refits."""
        gap, early = super()._refit_gap(), self.config["early_refit_every"]
        return min(gap, int(early)) if early is not None and self._early() else gap

    def _sample_thetas(self, n: int, rng: np.random.Generator) -> np.ndarray:
        early = self.config["early_sample_scale"]
        scale = float(early if early is not None and self._early() else self.config["sample_scale"])
        if scale == 1.0:
            return super()._sample_thetas(n, rng)
        return self.theta[:, None] + scale * (super()._sample_thetas(n, rng) - self.theta[:, None])  # type: ignore[no-any-return]

    def _draw_logits(self, draws: np.ndarray, xs: np.ndarray, ab: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """With ``optimistic``, a draw below a creative's posterior mean counts as the mean (optimistic
        Bayesian sampling, May et al. 2012): uncertainty can only lift a creative, so a good creative is not
        pushed down by an unlucky draw while the others are still being learned."""
        s = self._logits(draws, xs, ab, rows)
        if not self.config["optimistic"]:
            return s
        mean = self._logits(self.theta, xs, ab, rows)
        return np.maximum(s, mean if s.ndim == 1 else mean[:, None])  # type: ignore[no-any-return]

    def update(self, creative_id: str, reward: float, context: np.ndarray | None = None, *,
               pair: np.ndarray | None = None, impressions: float = 1.0) -> None:
        """The batch policy's update (history, refit schedule); between refits, one online Laplace step."""
        if impressions <= 0:
            return
        row = int(self.rows([creative_id])[0])
        pair = self._novel(pair, np.array([row]))  # the novelty this creative had when it was shown
        if len(self.novelty_scales):
            self.impressions[row] += 1
        refits = self.last_refit
        super().update(creative_id, reward, context, pair=pair, impressions=impressions)
        if self.last_refit != refits:
            return  # the refit just fitted this event with the rest of the window
        self._online_step(self._context(context), self._pair(pair, 1)[0], row, float(reward))

    def _online_step(self, x: np.ndarray, q: np.ndarray, row: int, y: float) -> None:
        d, a = self.shared_dim, self.arm_dim
        v = np.concatenate([self._shared(x[None, :], np.array([row]), q[None, :])[0], self._arm_values(x[None, :])[0]])
        idx = np.concatenate([np.arange(d), d + row * a + np.arange(a)])
        p = float(_sigmoid(np.array(v @ self.theta[idx])))
        w = p * (1.0 - p)
        if self._cov is None:
            self._cov, self._stale = np.linalg.inv(self.prec), 0
        if not self._stale:
            self._u = np.zeros((len(self.theta), int(self.config["chol_every"])))
            self._c = np.zeros(int(self.config["chol_every"]))
        k = self._stale
        s = self._cov[:, idx] @ v                     # Σd with the pending rank-one terms
        if k:
            s -= self._u[:, :k] @ (self._c[:k] * (v @ self._u[idx, :k]))
        denom = 1.0 + w * float(v @ s[idx])
        self.theta = self.theta + s * ((y - p) / denom)
        self._u[:, k], self._c[k] = s, w / denom
        self.prec[np.ix_(idx, idx)] += w * np.outer(v, v)
        self._stale = k + 1
        if self._stale >= int(self.config["chol_every"]):
            self.covariance()
            self._chol = None

    def covariance(self) -> np.ndarray:
        """The posterior covariance Σ = prec⁻¹ (pending online steps applied)."""
        if self._cov is None:
            self._cov, self._stale = np.linalg.inv(self.prec), 0
        elif self._stale:
            k = self._stale
            self._cov -= (self._u[:, :k] * self._c[:k]) @ self._u[:, :k].T
            self._stale = 0
        return self._cov


class UniformPolicy(ArmPolicy):
    """A uniformly random order: hold-out traffic, and the floor every other policy must beat."""

    registry_name = "uniform"

    @register_to_config
    def __init__(self, n_features: int = 0, n_context: int = 0, arm_ids: list[str] | None = None,
                 seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self._init_arms(arm_ids)

    def state_arrays(self) -> dict[str, Any]:
        self._save_ids()
        return {"n_arms": np.array([len(self.ids)])}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        return None  # the arms are the config's ids; nothing is learned

    def add_arms(self, ids: Sequence[str], features: np.ndarray) -> None:
        self._append_ids(ids)

    def rank(self, ids: Sequence[str], context: np.ndarray | None = None, scores: np.ndarray | None = None, *,
             explore: bool | None = None, pair: np.ndarray | None = None, rows: np.ndarray | None = None
             ) -> Decision:
        if rows is None:
            self.rows(ids)
        return Decision(self.rng.permutation(len(ids)), True, 1.0 / len(ids))

    def update(self, creative_id: str, reward: float, context: np.ndarray | None = None, *,
               pair: np.ndarray | None = None, impressions: float = 1.0) -> None:
        self.rows([creative_id])
