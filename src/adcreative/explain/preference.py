"""P(A beats B | user): a user-aware Bradley–Terry model over represent's features.

Each creative ``c`` has a utility for user ``u``::

    s(u, c) = φ(c) · w_u,      w_u = w + Bᵀ A e(u)            P(A ≻ B | u) = σ(s(u, A) − s(u, B))

* ``φ(c)``: represent's explicit features (:data:`~adcreative.represent.features.NUMERIC_FEATURES`;
  heavy-tailed ones through ``log1p``), standardised, optionally followed by the first
  ``embedding_dim`` principal components of the creative's learned embedding.
* ``e(u)``: the user context: categorical fields hashed into one-hot buckets (the selection models'
  :func:`~adcreative.select.data.hash_bucket`), numeric fields standardised.
* ``anchor`` (optional): a feature that enters on its own scale, unshrunk, with its weight starting at 1 — the
  serving (selection) model's logit for this user and creative (``selection_logit``). The model then learns
  what the serving model gets wrong, additively, and the serving model's opinion is one more aspect of the
  explanation ("the serving model scores it higher for this user"), swapped and checked like the others.
* ``w`` is what every shopper likes; ``Bᵀ A e(u)`` (rank ``rank``) is how this user's taste bends it, so
  ``w_u`` is the user's own weight on every feature: the "user's interest" the explanations quote.

The utility is linear in φ for a given user, so swapping one feature group of a creative changes the
utility by exactly that group's share: reasons are additive and the counterfactual check is exact for
this model (it is still computed, see :mod:`adcreative.explain.pairwise`). It is antisymmetric by
construction: P(A ≻ B) = 1 − P(B ≻ A), identical creatives get exactly 0.5. Trained on pairs (logged or
labelled, soft targets) by :func:`train_preference`; scoring is NumPy only (no torch import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.represent.features import NUMERIC_FEATURES
from adcreative.select.data import hash_bucket

# heavy tails (a 10× sharper or pricier creative is not 10× as different): compared on a log scale
LOG_FEATURES: tuple[str, ...] = ("sharpness", "min_price", "n_words", "n_text_boxes")
EMBEDDING_KEY = "embedding"  # where a creative's feature dict may carry its learned embedding


def explicit_matrix(feats: Sequence[Mapping[str, Any]], names: Sequence[str] = NUMERIC_FEATURES,
                    log_features: Sequence[str] | set[str] = LOG_FEATURES) -> np.ndarray:
    """``[N, len(names)]`` explicit features of feature dicts (booleans → 0/1, heavy tails through log1p)."""
    x = np.array([[float(f.get(k, 0.0) or 0.0) for k in names] for f in feats], np.float64).reshape(len(feats), len(names))
    for j, k in enumerate(names):
        if k in log_features:
            x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
    return x


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -40, 40)))  # type: ignore[no-any-return]


class PreferenceModel(ConfigMixin):
    """User-aware Bradley–Terry preference over creatives (NumPy parameters; see the module docstring)."""

    registry_family = "preference model"
    registry_name = "bradley_terry"

    @register_to_config
    def __init__(self, creative_features: list[str] | None = None, log_features: list[str] | None = None,
                 user_cat_fields: list[str] | None = None, user_num_fields: list[str] | None = None,
                 n_buckets: int = 8, rank: int = 4, embedding_in: int = 0, embedding_dim: int = 0,
                 tie_margin: float = 0.02, anchor: str | None = None) -> None:
        self.creative_features = list(creative_features if creative_features is not None else NUMERIC_FEATURES)
        self.anchor = anchor
        if anchor is not None and anchor not in self.creative_features:
            self.creative_features.append(anchor)
        self.log_features = set(log_features if log_features is not None else LOG_FEATURES)
        self.user_cat_fields = list(user_cat_fields or [])
        self.user_num_fields = list(user_num_fields or [])
        if embedding_dim > embedding_in:
            raise InputError(f"embedding_dim ({embedding_dim}) cannot exceed embedding_in ({embedding_in})")
        if rank < 0 or n_buckets < 1:
            raise InputError("rank must be >= 0 and n_buckets >= 1")
        self.n_buckets, self.rank, self.tie_margin = n_buckets, rank, tie_margin
        self.embedding_in, self.embedding_dim = embedding_in, embedding_dim
        d = len(self.creative_features) + embedding_dim
        u = len(self.user_cat_fields) * n_buckets + len(self.user_num_fields)
        self.c_mean = np.zeros(len(self.creative_features))
        self.c_std = np.ones(len(self.creative_features))
        self.e_mean = np.zeros(embedding_in)
        self.e_components = np.zeros((embedding_dim, embedding_in))
        self.u_mean = np.zeros(len(self.user_num_fields))
        self.u_std = np.ones(len(self.user_num_fields))
        self.w = np.zeros(d)
        self.A = np.zeros((rank, u))
        self.B = np.zeros((rank, d))
        self.w_population = np.zeros(d)  # the mean w_u over the training users: "the average shopper"

    ARRAYS = ("c_mean", "c_std", "e_mean", "e_components", "u_mean", "u_std", "w", "A", "B", "w_population")

    def state_arrays(self) -> dict[str, Any]:
        return {k: np.ascontiguousarray(getattr(self, k), np.float32) for k in self.ARRAYS}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        for k in self.ARRAYS:
            if k not in arrays:
                raise ValueError(f"preference model state missing {k!r}")
            v = np.asarray(arrays[k], np.float64)
            if v.shape != np.shape(getattr(self, k)):
                raise ValueError(f"{k} has shape {v.shape}, config implies {np.shape(getattr(self, k))}")
            setattr(self, k, v.copy())

    # -- inputs -----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The columns of φ: explicit feature names, then ``embedding_pc{i}``."""
        return self.creative_features + [f"embedding_pc{i}" for i in range(self.embedding_dim)]

    def raw_creative(self, feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Explicit features before standardisation ``[N, D]`` (log1p applied)."""
        if self.anchor is not None:
            for i, f in enumerate(feats):
                if f.get(self.anchor) is None:  # a missing logit must not read as 0
                    raise InputError(f"this preference model is stacked on the serving model: creative {i} has no "
                                     f"{self.anchor!r} (the serving model's logit for the user)")
        return explicit_matrix(feats, self.creative_features, self.log_features)

    def creative_matrix(self, feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """φ ``[N, D + embedding_dim]`` of feature dicts (embeddings under ``"embedding"`` when used)."""
        z = (self.raw_creative(feats) - self.c_mean) / self.c_std
        if not self.embedding_dim:
            return z
        emb = np.zeros((len(feats), self.embedding_in))
        for i, f in enumerate(feats):
            v = f.get(EMBEDDING_KEY)
            if v is None:
                raise InputError(f"this preference model needs creative embeddings ({self.embedding_in}-d); "
                                 "creative {i} has none".replace("{i}", str(i)))
            v = np.asarray(v, np.float64).ravel()
            if len(v) != self.embedding_in:
                raise InputError(f"embedding has {len(v)} values, the model expects {self.embedding_in}")
            emb[i] = v
        return np.concatenate([z, (emb - self.e_mean) @ self.e_components.T], axis=1)

    def user_matrix(self, users: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
        """e(u) ``[N, F·n_buckets + N_num]``; a missing field hashes as ``None`` / reads as the mean."""
        nc, nb = len(self.user_cat_fields), self.n_buckets
        out = np.zeros((len(users), nc * nb + len(self.user_num_fields)))
        for i, u in enumerate(users):
            u = u or {}
            for j, f in enumerate(self.user_cat_fields):
                out[i, j * nb + hash_bucket(f, u.get(f), nb)] = 1.0
            for j, f in enumerate(self.user_num_fields):
                v = u.get(f)
                try:
                    x = float(v) if v is not None else float(self.u_mean[j])
                except (TypeError, ValueError):
                    raise InputError(f"user field {f!r} must be numeric, got {v!r}") from None
                out[i, nc * nb + j] = (x - self.u_mean[j]) / self.u_std[j]
        return out

    # -- scores -----------------------------------------------------------------------------------
    def user_weights(self, users: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
        """w_u ``[N, D']``: each user's weight on every standardised feature (utility per s.d.)."""
        e = self.user_matrix(users)
        return self.w[None, :] + (e @ self.A.T) @ self.B  # type: ignore[no-any-return]

    def utility(self, user: Mapping[str, Any] | None, feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """s(u, c) for one user and several creatives (only differences between creatives mean anything)."""
        return self.creative_matrix(feats) @ self.user_weights([user])[0]  # type: ignore[no-any-return]

    def scorer(self, user: Mapping[str, Any] | None) -> Any:
        """The utility for one user as a function of feature dicts (what the explainer swaps through)."""
        wu = self.user_weights([user])[0]
        return lambda feats: self.creative_matrix(feats) @ wu

    def prob(self, user: Mapping[str, Any] | None, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
        """P(a beats b | user)."""
        s = self.utility(user, [a, b])
        return float(sigmoid(s[0] - s[1]))

    def explain(self, user: Mapping[str, Any] | None, a: Mapping[str, Any], b: Mapping[str, Any], *,
                id_a: str = "A", id_b: str = "B", user_id: str | None = None,
                history: tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]] | None = None) -> Any:
        """Which of ``a``/``b`` to show this user, P(winner ≻ loser) and the 2–4 checked reasons
        (:func:`adcreative.explain.pairwise.explain_pair` through this model, with the user's interests)."""
        from adcreative.explain.pairwise import explain_pair

        return explain_pair(a, b, id_a=id_a, id_b=id_b, scorer=self.scorer(user),
                            interest=interest_for(self, user, history), user=user_id, tie_margin=self.tie_margin)

    def pair_logits(self, e_user: np.ndarray, phi_a: np.ndarray, phi_b: np.ndarray) -> np.ndarray:
        """Vectorised logits of P(a ≻ b) for pre-encoded rows ``e_user [N, U]``, ``phi_a/phi_b [N, D']``."""
        wu = self.w[None, :] + (e_user @ self.A.T) @ self.B
        return np.einsum("nd,nd->n", phi_a - phi_b, wu)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------ training -------
@dataclass
class PreferenceTrainConfig:
    l2: float = 1e-3          # on w (added to the mean loss per pair); both as tuned on the simulator
    l2_user: float = 1e-3     # on A and B
    steps: int = 400
    lr: float = 0.05
    batch_size: int = 4096
    seed: int = 0


@dataclass
class PairSet:
    """Encoded training pairs: users, both creatives' feature dicts, P(a ≻ b) targets and weights."""

    users: list[Mapping[str, Any] | None]
    a: list[Mapping[str, Any]]
    b: list[Mapping[str, Any]]
    target: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.users)
        self.target = np.asarray(self.target, np.float64).reshape(-1)
        self.weight = np.asarray(self.weight, np.float64).reshape(-1)
        if not (len(self.a) == len(self.b) == len(self.target) == len(self.weight) == n):
            raise InputError("users, a, b, target and weight must have one entry per pair")
        if n == 0:
            raise InputError("no training pairs")
        if ((self.target < 0) | (self.target > 1)).any():
            raise InputError("targets are probabilities in [0, 1]")

    def __len__(self) -> int:
        return len(self.users)


def _fit_inputs(model: PreferenceModel, pairs: PairSet) -> None:
    """Standardisation (and the embedding PCA) from the training creatives and users."""
    creatives = {id(f): f for f in [*pairs.a, *pairs.b]}
    feats = list(creatives.values())
    raw = model.raw_creative(feats)
    model.c_mean = raw.mean(0)
    sd = raw.std(0)
    model.c_std = np.where(sd > 1e-9, sd, 1.0)
    if model.anchor is not None:  # the serving model's logit enters on its own scale (weight 1 = trust it as is)
        j = model.creative_features.index(model.anchor)
        model.c_mean[j], model.c_std[j] = 0.0, 1.0
    if model.embedding_dim:
        emb = np.array([np.asarray(f[EMBEDDING_KEY], np.float64).ravel() for f in feats])
        model.e_mean = emb.mean(0)
        _, s, vt = np.linalg.svd(emb - model.e_mean, full_matrices=False)
        # unit variance per component, so the L2 penalty treats them like the explicit features
        k = min(model.embedding_dim, len(s))
        scale = s[:k] / np.sqrt(max(len(emb) - 1, 1))
        comps = np.zeros((model.embedding_dim, model.embedding_in))  # fewer creatives than components: zeros
        comps[:k] = vt[:k] / np.where(scale > 1e-9, scale, 1.0)[:, None]
        model.e_components = comps
    if model.user_num_fields:
        num = np.array([[float((u or {}).get(f, np.nan) if (u or {}).get(f) is not None else np.nan)
                         for f in model.user_num_fields] for u in pairs.users])
        model.u_mean = np.nan_to_num(np.nanmean(num, 0))
        sd = np.nan_to_num(np.nanstd(num, 0))
        model.u_std = np.where(sd > 1e-9, sd, 1.0)


def train_preference(model: PreferenceModel, pairs: PairSet, cfg: PreferenceTrainConfig | None = None,
                     *, progress: bool = False) -> list[float]:
    """Fit ``model`` on ``pairs`` (weighted binary cross-entropy of σ(s(u,a) − s(u,b)) against the target).

    Returns the loss per step. Deterministic for a given ``cfg.seed``.
    """
    import torch

    cfg = cfg or PreferenceTrainConfig()
    _fit_inputs(model, pairs)
    d = (model.creative_matrix(pairs.a) - model.creative_matrix(pairs.b)).astype(np.float32)
    e = model.user_matrix(pairs.users).astype(np.float32)
    y = torch.from_numpy(pairs.target.astype(np.float32))
    wt = torch.from_numpy((pairs.weight / max(pairs.weight.mean(), 1e-12)).astype(np.float32))
    dt, et = torch.from_numpy(d), torch.from_numpy(e)
    g = torch.Generator().manual_seed(cfg.seed)
    w0 = torch.zeros(d.shape[1])
    free = torch.zeros(d.shape[1])  # 1 where w is not shrunk: the anchor starts at 1 (the serving model as is)
    if model.anchor is not None:
        j = model.creative_features.index(model.anchor)
        w0[j], free[j] = 1.0, 1.0
    w = w0.clone().requires_grad_()
    # small random factors: at exactly zero the bilinear term has no gradient
    A = (0.01 * torch.randn(model.rank, e.shape[1], generator=g)).requires_grad_()
    B = (0.01 * torch.randn(model.rank, d.shape[1], generator=g)).requires_grad_()
    opt = torch.optim.Adam([w, A, B], lr=cfg.lr)
    n = len(pairs)
    losses: list[float] = []
    steps: Any = range(cfg.steps)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="train preference", leave=False)
    for _ in steps:
        idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=g) if n > cfg.batch_size else torch.arange(n)
        db, eb = dt[idx], et[idx]
        logit = db @ w + ((eb @ A.T) * (db @ B.T)).sum(1)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, y[idx], weight=wt[idx])
        loss = bce + cfg.l2 * ((1 - free) * w * w).sum() + cfg.l2_user * ((A * A).sum() + (B * B).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(bce.detach()))
    model.w = w.detach().double().numpy()
    model.A = A.detach().double().numpy()
    model.B = B.detach().double().numpy()
    model.w_population = model.user_weights(pairs.users).mean(0)
    return losses


# ---------------------------------------------------------------------------- user interests ---------
def interest_for(model: PreferenceModel, user: Mapping[str, Any] | None,
                 history: tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]] | None = None) -> Any:
    """``interest(aspect) -> str``: the user's taste for an aspect, quoted from the model (the user's weight
    on the aspect's main feature per standard deviation, against the average shopper's) and, when
    ``history = (features of creatives shown to the user, features of those they clicked)`` is given with
    at least one click, from their own clicks."""
    from adcreative.explain.pairwise import Aspect

    wu = model.user_weights([user])[0]
    col = {k: j for j, k in enumerate(model.names)}

    def interest(asp: Aspect) -> str | None:
        k = asp.keys[0]
        if k not in col:
            return None
        j = col[k]
        u, pop = float(wu[j]), float(model.w_population[j])
        likes = asp.likes[0] if u > 0 else asp.likes[1]
        if k == model.anchor:  # not a taste: how far the model follows the serving model for this user
            text = (f"for shoppers like this user the serving model's logit counts ×{u:.2f} "
                    f"(average shopper ×{pop:.2f})")
        else:
            text = (f"shoppers like this user lean to {likes} (weight {u:+.2f} per s.d. of {k}; "
                    f"average shopper {pop:+.2f})")
        if history is not None and history[1]:
            shown, clicked = history
            mc = float(np.mean([float(f.get(k, 0) or 0) for f in clicked]))
            ms = float(np.mean([float(f.get(k, 0) or 0) for f in shown])) if shown else float("nan")
            text += (f"; their own clicks: mean {k} {mc:.3g} over {len(clicked)} clicked vs {ms:.3g} over "
                     f"{len(shown)} shown")
        return text

    return interest
