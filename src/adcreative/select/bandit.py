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


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))  # type: ignore[no-any-return]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))  # type: ignore[no-any-return]


class BetaVisualTS(ConfigMixin):
    """Beta-Bernoulli Thompson sampling per creative with a visual-feature regression prior."""

    @register_to_config
    def __init__(self, n_features: int, prior_strength: float = 50.0, base_ctr: float = 0.02,
                 ridge: float = 1.0, exploration_share: float = 0.1, mc_samples: int = 64,
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
        a, b = self.posterior(self.rows(ids))
        return self.rng.beta(a, b, size=(n, len(a)))

    def rank(self, ids: Sequence[str], scores: np.ndarray | None = None, *, explore: bool | None = None
             ) -> tuple[np.ndarray, bool, float]:
        """Order of ``ids`` (best first), whether this request explored, and the propensity of the top one.

        Exploit traffic ranks by ``scores`` (the list-wise model's) when given, else by posterior mean;
        explore traffic (``exploration_share`` of requests) ranks by a Thompson sample. The propensity of
        the chosen creative mixes both: ``(1-ε)·1[greedy] + ε·P_TS(top)`` (P_TS by Monte Carlo).
        """
        eps = float(self.config["exploration_share"])
        explored = bool(self.rng.random() < eps) if explore is None else explore
        greedy = scores if scores is not None else self.posterior_mean(ids)
        draws = self.sample(ids, int(self.config["mc_samples"]))
        order = np.argsort(-draws[0]) if explored else np.argsort(-np.asarray(greedy))
        top = int(order[0])
        p_ts = float(np.mean(np.argmax(draws, axis=1) == top))
        p = (1 - eps) * float(top == int(np.argmax(greedy))) + eps * p_ts
        return order, explored, p


class HybridLinearTS(ConfigMixin):
    """Contextual Thompson sampling, hybrid linear model with a visual prior (see module doc)."""

    @register_to_config
    def __init__(self, n_user: int, n_creative: int, n_components: int = 6, prior_var: float = 1.0,
                 noise_var: float = 0.05, arm_prior_var: float = 0.0025, exploration_share: float = 1.0,
                 seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.k = min(n_components, n_creative)
        self.dim = 1 + self.k + n_user * self.k
        self.mean = np.zeros(n_creative)
        self.components = np.eye(n_creative)[: self.k]
        self.scale = np.ones(self.k)
        # A and b are kept in units of the noise variance: A = (σ²/s0²)·I + ΣφφT, θ = A⁻¹b, Cov = σ²A⁻¹
        self.A = np.eye(self.dim) * (noise_var / prior_var)
        self.b = np.zeros(self.dim)
        self.Z = np.zeros((0, self.k))
        self.arm_n = np.zeros(0)
        self.arm_resid = np.zeros(0)
        self._theta: np.ndarray | None = None
        self._chol: np.ndarray | None = None

    def state_arrays(self) -> dict[str, Any]:
        return {"mean": self.mean, "components": self.components, "scale": self.scale, "A": self.A, "b": self.b,
                "Z": self.Z, "arm_n": self.arm_n, "arm_resid": self.arm_resid}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        for k, v in arrays.items():
            setattr(self, k, np.asarray(v, np.float64).copy())
        self._theta = self._chol = None

    # -- creatives ----------------------------------------------------------------------------------
    def set_creatives(self, features: np.ndarray, *, fit_projection: bool = True) -> None:
        """Register the creative feature matrix ``[C, D]``; fits standardisation + PCA on it (preprocessing
        that ships with the bandit's state)."""
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.config["n_creative"]:
            raise InputError(f"creative features must be [C, {self.config['n_creative']}], got {f.shape}")
        if fit_projection:
            self.mean = f.mean(0)
            sd = f.std(0) + 1e-6
            x = (f - self.mean) / sd
            _, _, vt = np.linalg.svd(x, full_matrices=False)
            self.components = vt[: self.k] / sd  # project raw features: (f - mean) @ components.T
            z = (f - self.mean) @ self.components.T
            self.scale = z.std(0) + 1e-6
        self.Z = (f - self.mean) @ self.components.T / self.scale
        n = len(f)
        if len(self.arm_n) < n:  # new creatives start with no residual evidence
            self.arm_n = np.concatenate([self.arm_n, np.zeros(n - len(self.arm_n))])
            self.arm_resid = np.concatenate([self.arm_resid, np.zeros(n - len(self.arm_resid))])

    def phi(self, x_user: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        z = self.Z if rows is None else self.Z[rows]
        inter = (np.asarray(x_user)[None, :, None] * z[:, None, :]).reshape(len(z), -1)
        return np.hstack([np.ones((len(z), 1)), z, inter])

    # -- posterior ---------------------------------------------------------------------------------
    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        if self._theta is None or self._chol is None:
            self._chol = np.linalg.cholesky(self.A)
            self._theta = np.linalg.solve(self.A, self.b)
        return self._theta, self._chol

    def _arm_post(self) -> tuple[np.ndarray, np.ndarray]:
        nv, av = float(self.config["noise_var"]), float(self.config["arm_prior_var"])
        prec = self.arm_n / nv + 1.0 / av
        return (self.arm_resid / nv) / prec, 1.0 / prec

    def scores(self, x_user: np.ndarray, *, sample: bool) -> np.ndarray:
        theta, chol = self._posterior()
        ph = self.phi(x_user)
        m, v = self._arm_post()
        if not sample:
            return ph @ theta + m  # type: ignore[no-any-return]
        # θ̃ = θ + L^-T ε with A = L Lᵀ gives Cov = A^-1
        eps = self.rng.standard_normal(self.dim)
        theta_s = theta + np.linalg.solve(chol.T, eps) * np.sqrt(self.config["noise_var"])
        return ph @ theta_s + m + np.sqrt(v) * self.rng.standard_normal(len(m))  # type: ignore[no-any-return]

    def choose(self, x_user: np.ndarray) -> tuple[int, bool]:
        explored = bool(self.rng.random() < float(self.config["exploration_share"]))
        return int(np.argmax(self.scores(x_user, sample=explored))), explored

    def update(self, x_user: np.ndarray, row: int, reward: float) -> None:
        ph = self.phi(x_user, np.array([row]))[0]
        theta, _ = self._posterior()
        # the arm's residual is measured against the shared model before this update (backfitting)
        self.arm_resid[row] += reward - float(ph @ theta)
        self.arm_n[row] += 1
        self.A += np.outer(ph, ph)
        self.b += ph * reward
        self._theta = self._chol = None
