"""Exploration for new creatives: Thompson sampling with priors from the creative's visual features.

Two bandits, both saved like models (``config.json`` + ``model.safetensors`` of NumPy arrays):

* :class:`BetaVisualTS` — per-creative Beta-Bernoulli Thompson sampling over CTR. A new creative's prior
  mean is ``sigmoid(β · standardised visual features)``, a ridge regression of the creatives' smoothed
  logit-CTR on their visual features, with ``prior_strength`` pseudo-impressions; so a creative that looks
  like past winners starts optimistic and one that looks like losers starts pessimistic, and its own
  clicks take over once it has more impressions than the prior is worth. The service uses it for the
  exploration share of traffic.
* :class:`HybridLinearTS` — contextual Gaussian-linear Thompson sampling with the hybrid model of
  Li et al. (2010): a click is ``θ·φ(user, creative) + δ_creative + noise`` where
  ``φ = [1, z_c, x_u ⊗ z_c]`` is shared by all creatives (``z_c`` = PCA of standardised visual features),
  so a brand-new creative starts from the regression on its visual features (its prior mean), and
  ``δ_c ~ N(0, arm_prior_var)`` is the creative's own residual that its clicks reveal.

``exploration_share`` is the fraction of requests ranked by a posterior sample; the rest use the
posterior mean (or the list-wise model's scores, where the caller provides them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.modeling import ConfigMixin, register_to_config


class NumpyModel(ConfigMixin):
    """A NumPy-state model: ``ConfigMixin.from_pretrained`` loads it without importing torch, so the
    service stays light."""


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))  # type: ignore[no-any-return]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))  # type: ignore[no-any-return]


class BetaVisualTS(NumpyModel):
    """Beta-Bernoulli Thompson sampling per creative with a visual-feature regression prior."""

    registry_family = "bandit"
    registry_name = "beta_visual"

    @register_to_config
    def __init__(self, n_features: int, prior_strength: float = 50.0, base_ctr: float = 0.02,
                 ridge: float = 1.0, exploration_share: float = 0.1,
                 arm_ids: list[str] | None = None, seed: int = 0) -> None:
        if not 0.0 <= exploration_share <= 1.0:
            raise InputError(f"exploration_share must be in [0, 1], got {exploration_share}")
        self.n_features = n_features
        self.rng = np.random.default_rng(seed)
        self.coef = np.zeros(n_features + 1, np.float64)
        self.coef[0] = float(_logit(np.array(base_ctr)))
        self.mu = np.zeros(n_features, np.float64)
        self.sd = np.ones(n_features, np.float64)
        self.ids: list[str] = list(arm_ids or [])
        self._index = {c: i for i, c in enumerate(self.ids)}
        self.features = np.zeros((len(self.ids), n_features), np.float64)
        self.impressions = np.zeros(len(self.ids), np.float64)
        self.clicks = np.zeros(len(self.ids), np.float64)

    # -- state ------------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, Any]:
        self.config["arm_ids"] = list(self.ids)  # arms added since construction belong to the saved config
        return {"coef": self.coef, "mu": self.mu, "sd": self.sd, "features": self.features,
                "impressions": self.impressions, "clicks": self.clicks}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        for k in ("coef", "mu", "sd", "features", "impressions", "clicks"):
            if k not in arrays:
                raise ValueError(f"bandit state missing {k!r}")
            setattr(self, k, np.asarray(arrays[k], np.float64).copy())
        if len(self.impressions) != len(self.ids):
            raise ValueError(f"bandit state has {len(self.impressions)} arms, config lists {len(self.ids)}")

    # -- arms -------------------------------------------------------------------------------------
    def add_arms(self, ids: Sequence[str], features: np.ndarray) -> None:
        """Register creatives (ignores ids already known); their prior comes from the regression."""
        features = np.asarray(features, np.float64).reshape(len(ids), self.n_features)
        new = [(c, f) for c, f in zip(ids, features, strict=True) if c not in self._index]
        for c, _ in new:
            self._index[c] = len(self.ids)
            self.ids.append(c)
        if new:
            self.features = np.vstack([self.features, np.array([f for _, f in new])])
            self.impressions = np.concatenate([self.impressions, np.zeros(len(new))])
            self.clicks = np.concatenate([self.clicks, np.zeros(len(new))])

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        missing = [c for c in ids if c not in self._index]
        if missing:
            raise InputError(f"bandit has no arm for creative ids: {', '.join(missing[:10])}")
        return np.array([self._index[c] for c in ids], np.int64)

    def update(self, creative_id: str, impressions: float = 1.0, clicks: float = 0.0) -> None:
        i = self.rows([creative_id])[0]
        self.impressions[i] += impressions
        self.clicks[i] += clicks

    # -- visual prior -----------------------------------------------------------------------------
    def fit_prior(self) -> None:
        """Ridge regression of each creative's smoothed logit-CTR on its standardised visual features,
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

    def prior_mean(self, rows: np.ndarray) -> np.ndarray:
        z = (self.features[rows] - self.mu) / self.sd
        return _sigmoid(self.coef[0] + z @ self.coef[1:])

    def posterior(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = np.clip(self.prior_mean(rows), 1e-4, 1 - 1e-4)
        s = float(self.config["prior_strength"])
        return m * s + self.clicks[rows], (1 - m) * s + self.impressions[rows] - self.clicks[rows]

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

    def rank(self, ids: Sequence[str], scores: np.ndarray | None = None, *, explore: bool | None = None
             ) -> tuple[np.ndarray, bool, float]:
        """Order of ``ids`` (best first), whether this request explored, and the propensity of the top one.

        Exploit traffic ranks by ``scores`` (the list-wise model's) when given, else by posterior mean;
        explore traffic (``exploration_share`` of requests) ranks by a Thompson sample. The propensity of
        the chosen creative mixes both: ``(1-ε)·1[greedy] + ε·P_TS(top)`` (P_TS by :meth:`p_top`).
        """
        eps = float(self.config["exploration_share"])
        explored = bool(self.rng.random() < eps) if explore is None else explore
        a, b = self.posterior(self.rows(ids))
        greedy = np.asarray(scores) if scores is not None else a / (a + b)
        order = np.argsort(-self._draw(a, b, 1)[0]) if explored else np.argsort(-greedy)
        top = int(order[0])
        p = (1 - eps) * float(top == int(np.argmax(greedy))) + (eps * self.p_top(a, b, top) if eps > 0 else 0.0)
        return order, explored, p

    @staticmethod
    def p_top(a: np.ndarray, b: np.ndarray, top: int, grid: int = 41) -> float:
        """P(Thompson draw of ``top`` beats every other), for the logged propensity.

        Deterministic 1-D quadrature over ``top``'s draw with moment-matched normal posteriors:
        ``∫ φ_top(x) Π_j Φ_j(x) dx`` (~50 µs for 100 candidates, no Monte Carlo noise in 1/propensity)."""
        from scipy.special import ndtr

        if len(a) == 1:
            return 1.0
        s = a + b
        mean, sd = a / s, np.sqrt(a * b / (s * s * (s + 1))) + 1e-12
        z = np.linspace(-6.0, 6.0, grid)
        x = mean[top] + sd[top] * z
        w = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) * (z[1] - z[0])
        # rivals that can never beat the lowest grid point have Φ = 1 there: skip them (most of them)
        rival = (np.arange(len(a)) != top) & (mean + 8.0 * sd > x[0])
        if not rival.any():
            return 1.0
        cdf = ndtr((x[:, None] - mean[None, rival]) / sd[None, rival])
        return float(np.clip((w * np.prod(cdf, axis=1)).sum(), 0.0, 1.0))


class HybridLinearTS(NumpyModel):
    """Contextual Thompson sampling on a hybrid linear model with a visual prior (see module doc).

    The posterior over the weights is Gaussian: with ``link="logistic"`` (default) it is the Laplace
    approximation of Bayesian logistic regression (MAP by Newton's method, covariance = inverse Hessian),
    refitted on the event history every ``refit_every`` events (and at 25, 50, 100, ... early on);
    between refits requests sample from the last posterior. Per-creative offsets are one-hot columns with
    their own prior variance ``arm_prior_var``; their prior mean is 0, so a new creative starts exactly
    at the visual-feature regression.
    """

    registry_family = "bandit"
    registry_name = "hybrid_linear"

    @register_to_config
    def __init__(self, n_user: int, n_creative: int, n_components: int = 6, prior_var: float = 1.0,
                 arm_prior_var: float = 0.05, base_ctr: float = 0.05, exploration_share: float = 1.0,
                 refit_every: int = 1000, window: int = 50000, seed: int = 0) -> None:
        if not 0.0 <= exploration_share <= 1.0:
            raise InputError(f"exploration_share must be in [0, 1], got {exploration_share}")
        self.rng = np.random.default_rng(seed)
        self.n_user = n_user
        self.k = min(n_components, n_creative)
        self.shared_dim = 1 + self.k + n_user * self.k
        self.arm_dim = 1 + n_user  # per-creative offset and per-creative user weights (the "disjoint" part)
        self.mean = np.zeros(n_creative)
        self.components = np.eye(n_creative)[: self.k]
        self.scale = np.ones(self.k)
        self.Z = np.zeros((0, self.k))
        self.theta = np.zeros(self.shared_dim)
        self.theta[0] = float(_logit(np.array(base_ctr)))
        self.prec = np.diag(self._prior_prec(0))
        self.hist_x = np.zeros((0, self.n_user), np.float32)    # event history: user features, arm, reward
        self.hist_arm = np.zeros(0, np.int64)
        self.hist_r = np.zeros(0, np.float32)
        self._buf: list[tuple[np.ndarray, int, float]] = []
        self._chol: np.ndarray | None = None
        self.n_events = 0
        self.last_refit = 0

    @property
    def n_arms(self) -> int:
        return len(self.Z)

    def _prior_prec(self, n_arms: int) -> np.ndarray:
        p = np.full(self.shared_dim + n_arms, 1.0 / float(self.config["prior_var"]) if hasattr(self, "config") else 1.0)
        p[0] = 0.25  # broad prior on the intercept around the base rate
        if n_arms:
            p[self.shared_dim:] = 1.0 / float(self.config["arm_prior_var"])
        return p

    def _theta0(self) -> np.ndarray:
        t = np.zeros(self.shared_dim + self.n_arms * self.arm_dim)
        t[0] = float(_logit(np.array(float(self.config["base_ctr"]))))
        return t

    # -- state ------------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, Any]:
        self._flush()
        return {"mean": self.mean, "components": self.components, "scale": self.scale, "Z": self.Z,
                "theta": self.theta, "prec": self.prec, "hist_x": self.hist_x, "hist_arm": self.hist_arm,
                "hist_r": self.hist_r, "n_events": np.array([self.n_events, self.last_refit])}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        for k, v in arrays.items():
            setattr(self, k, np.asarray(v).copy())
        self.n_events, self.last_refit = (int(v) for v in np.asarray(arrays["n_events"])[:2])
        self.hist_arm = self.hist_arm.astype(np.int64)
        self._chol = None

    # -- creatives ----------------------------------------------------------------------------------
    def set_creatives(self, features: np.ndarray, *, fit_projection: bool = True) -> None:
        """Register the creative feature matrix ``[C, D]`` (rows may only be appended later); fits the
        standardisation + PCA on it (preprocessing that ships in the bandit's state)."""
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.config["n_creative"]:
            raise InputError(f"creative features must be [C, {self.config['n_creative']}], got {f.shape}")
        if len(f) < self.n_arms:
            raise InputError(f"creatives can only be added: have {self.n_arms}, got {len(f)}")
        if fit_projection and self.n_events == 0:
            self.mean = f.mean(0)
            sd = f.std(0) + 1e-6
            _, _, vt = np.linalg.svd((f - self.mean) / sd, full_matrices=False)
            comp = vt[: self.k] / sd                     # project raw features: (f - mean) @ components.T
            if len(comp) < self.k:  # fewer creatives than components: the missing directions stay zero
                comp = np.vstack([comp, np.zeros((self.k - len(comp), f.shape[1]))])
            self.components = comp
            self.scale = ((f - self.mean) @ self.components.T).std(0) + 1e-6
        old = self.n_arms
        self.Z = (f - self.mean) @ self.components.T / self.scale
        if len(f) > old:  # new creatives: prior mean 0 offset, prior precision 1/arm_prior_var
            pad = (len(f) - old) * self.arm_dim
            self.theta = np.concatenate([self.theta, np.zeros(pad)])
            p = np.zeros((len(self.theta), len(self.theta)))
            p[: len(self.prec), : len(self.prec)] = self.prec
            p[-pad:, -pad:] = np.eye(pad) / float(self.config["arm_prior_var"])
            self.prec = p
            self._chol = None

    def features(self, x_user: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Design rows for one user and the given creatives (all by default)."""
        rows = np.arange(self.n_arms) if rows is None else rows
        x = np.broadcast_to(np.asarray(x_user, np.float64), (len(rows), self.n_user))
        return self._design(x, rows)

    def _design(self, x: np.ndarray, arms: np.ndarray) -> np.ndarray:
        """Rows ``[1, z_c, x ⊗ z_c | per-arm block of c: (1, x)]`` (shared part, then the arms' blocks)."""
        z = self.Z[arms]
        n, a = len(z), self.arm_dim
        inter = (x[:, :, None] * z[:, None, :]).reshape(n, -1)
        arm_part = np.zeros((n, self.n_arms * a))
        cols = arms[:, None] * a + np.arange(a)[None, :]
        arm_part[np.arange(n)[:, None], cols] = np.hstack([np.ones((n, 1)), x])
        return np.hstack([np.ones((n, 1)), z, inter, arm_part])

    # -- posterior ---------------------------------------------------------------------------------
    def _flush(self) -> None:
        if self._buf:
            self.hist_x = np.vstack([self.hist_x, np.array([b[0] for b in self._buf], np.float32)])
            self.hist_arm = np.concatenate([self.hist_arm, np.array([b[1] for b in self._buf], np.int64)])
            self.hist_r = np.concatenate([self.hist_r, np.array([b[2] for b in self._buf], np.float32)])
            self._buf = []
            w = int(self.config["window"])
            if len(self.hist_r) > w:
                self.hist_x, self.hist_arm, self.hist_r = self.hist_x[-w:], self.hist_arm[-w:], self.hist_r[-w:]

    def refit(self, iters: int = 8) -> None:
        """Laplace posterior of Bayesian logistic regression on the event history (Newton from the
        current mean; the prior is centred on the base rate, zero elsewhere)."""
        self._flush()
        if not len(self.hist_r):
            return
        X = self._design(self.hist_x.astype(np.float64), self.hist_arm)
        y = self.hist_r.astype(np.float64)
        lam = self._prior_prec(self.n_arms * self.arm_dim)
        t0 = self._theta0()
        th = self.theta.copy()

        def objective(t: np.ndarray) -> float:  # penalised log-likelihood
            z = X @ t
            return float(y @ z - np.logaddexp(0.0, z).sum() - 0.5 * (lam * (t - t0) ** 2).sum())

        f = objective(th)
        for _ in range(iters):
            p = 1.0 / (1.0 + np.exp(-np.clip(X @ th, -30, 30)))
            g = X.T @ (y - p) - lam * (th - t0)
            H = (X.T * (p * (1 - p))) @ X + np.diag(lam)
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
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ th, -30, 30)))
        self.theta = th
        self.prec = (X.T * (p * (1 - p))) @ X + np.diag(lam)
        self._chol = None

    def scores(self, x_user: np.ndarray, *, sample: bool) -> np.ndarray:
        """Click logits of every creative for one user: posterior mean, or one Thompson draw."""
        ph = self.features(x_user)
        if not sample:
            return ph @ self.theta  # type: ignore[no-any-return]
        if self._chol is None:
            self._chol = np.linalg.cholesky(self.prec)
        # θ̃ = θ + L^-T ε with prec = L Lᵀ gives Cov(θ̃) = prec⁻¹
        from scipy.linalg import solve_triangular

        theta_s = self.theta + solve_triangular(self._chol.T, self.rng.standard_normal(len(self.theta)), lower=False,
                                                check_finite=False)
        return ph @ theta_s  # type: ignore[no-any-return]

    def choose(self, x_user: np.ndarray) -> tuple[int, bool]:
        explored = bool(self.rng.random() < float(self.config["exploration_share"]))
        return int(np.argmax(self.scores(x_user, sample=explored))), explored

    def update(self, x_user: np.ndarray, row: int, reward: float) -> None:
        self._buf.append((np.asarray(x_user, np.float32), int(row), float(reward)))
        self.n_events += 1
        # refit on a geometric schedule early on (25, 31, 39, ...), then every ``refit_every`` events
        gap = min(int(self.config["refit_every"]), max(25, self.last_refit // 4))
        if self.n_events - self.last_refit >= gap:
            self.refit()
            self.last_refit = self.n_events
