"""A synthetic ad market for the whole loop: generate → inspect → select online → log → retrain.

The market (:class:`SyntheticMarket`)
--------------------------------------
* **Creatives** are given as a feature matrix ``F [C, D]`` — the features of generated ad images.
  :func:`image_features` computes one from PIL images with real image statistics (brightness, contrast,
  colourfulness, saturation, a saturation-weighted hue histogram, edge density, product area and
  position), so the simulator runs on the compositor's output before the represent stage lands; the
  represent stage's explicit features or embeddings plug in the same way.
* **Users** have a latent taste ``t ∈ R^k`` (``k = taste_dim``, standard normal). The selector observes
  a noisy view ``x = t + user_noise·ε`` and a categorical segment (the sign pattern of the first two
  observed coordinates); the latent taste stays hidden.
* **Hidden click model**: each creative has an appeal vector ``a_c = tanh(P · standardise(F_c))``
  (``P`` a hidden random projection), a hidden quality ``ε_c ~ N(0, hidden_quality²)`` that no feature
  reveals, and ::

      logit P(click | user, creative) = base_logit + taste_scale · tᵀ M a_c + appeal_scale · qᵀ a_c + ε_c

  with hidden ``M`` (k×k) and ``q``. So some creatives are better for everyone (``q``, ``ε_c``), and
  which one is best depends on the user (``M``): a per-user selector can beat the best fixed creative.
* **Oracle**: knows ``t`` and the hidden model and shows the argmax; **best fixed creative**: the one
  with the highest expected CTR over the user population (known to the simulator, not learned);
  **uniform random**; **VW**: Vowpal Wabbit ``--cb_explore_adf`` on the same observed features;
  **ours**: :class:`HybridLinearTS` (contextual Thompson sampling with the visual prior), and the
  list-wise model retrained every ``retrain_every`` impressions on the log with the bandit exploring.

All policies see the same users and the same click randomness (common random numbers), so differences
in cumulative CTR come from the policies only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.select.bandit import HybridLinearTS

FEATURE_NAMES: list[str] = [
    "brightness", "contrast", "colourfulness", "saturation",
    *[f"hue_{i}" for i in range(8)],
    "edge_density", "product_area", "product_cx", "product_cy",
]


# --------------------------------------------------------------------------- image features ----------
def image_features(images: Sequence[Image.Image], masks: Sequence[Image.Image | None] | None = None,
                   *, size: int = 128) -> np.ndarray:
    """Explicit visual features ``[N, 16]`` (see :data:`FEATURE_NAMES`) of ad images.

    ``masks`` (L, 255 = product) give the product area and position; without one the product is the
    set of pixels far from the border's median colour (a generated ad's background touches the border).
    """
    if not images:
        raise InputError("image_features needs at least one image")
    out = np.zeros((len(images), len(FEATURE_NAMES)), np.float32)
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise InputError(f"image {i} is a {type(im).__name__}, not a PIL image")
        rgb = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255.0
        hsv = np.asarray(im.convert("RGB").resize((size, size)).convert("HSV"), np.float32) / 255.0
        luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        rg, yb = r - g, 0.5 * (r + g) - b
        colourful = float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
        sat = hsv[..., 1]
        counts = np.bincount(np.minimum((hsv[..., 0] * 8).astype(int), 7).ravel(), weights=sat.ravel(), minlength=8)
        hist = counts.astype(np.float64) / max(float(counts.sum()), 1e-6)
        gy, gx = np.gradient(luma)
        edges = float((np.hypot(gx, gy) > 0.08).mean())
        m = masks[i] if masks is not None else None
        if m is not None:
            fg = np.asarray(m.convert("L").resize((size, size), Image.Resampling.NEAREST)) > 127
        else:
            border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
            fg = np.linalg.norm(rgb - np.median(border, axis=0), axis=-1) > 0.2
        area = float(fg.mean())
        ys, xs = np.nonzero(fg)
        cx, cy = (float(xs.mean()) / size, float(ys.mean()) / size) if len(xs) else (0.5, 0.5)
        out[i] = [luma.mean(), luma.std(), colourful, sat.mean(), *hist, edges, area, cx, cy]
    return out


# ------------------------------------------------------------------------------- the market ----------
@dataclass
class SimUsers:
    latent: np.ndarray    # [N, k] hidden tastes
    x: np.ndarray         # [N, k] observed noisy tastes
    segment: np.ndarray   # [N] observed categorical


class SyntheticMarket:
    """Users with latent tastes, creatives described by image features, a hidden click model."""

    def __init__(self, creative_features: np.ndarray, *, seed: int = 0, taste_dim: int = 4,
                 base_logit: float = -3.6, taste_scale: float = 0.7, appeal_scale: float = 0.4,
                 hidden_quality: float = 0.25, user_noise: float = 0.3) -> None:
        f = np.asarray(creative_features, np.float64)
        if f.ndim != 2 or len(f) < 2:
            raise InputError(f"creative_features must be [n_creatives >= 2, D], got {f.shape}")
        if not np.isfinite(f).all():
            raise InputError("creative_features contain NaN or inf")
        self.features = f
        self.n_creatives, self.k = len(f), taste_dim
        rng = np.random.default_rng(seed)
        z = (f - f.mean(0)) / (f.std(0) + 1e-6)
        P = rng.standard_normal((f.shape[1], taste_dim)) / np.sqrt(f.shape[1])
        self.appeal = np.tanh(z @ P * 1.5)                       # [C, k]
        self.M = rng.standard_normal((taste_dim, taste_dim)) / np.sqrt(taste_dim)
        self.q = rng.standard_normal(taste_dim) / np.sqrt(taste_dim)
        self.quality = rng.standard_normal(self.n_creatives) * hidden_quality
        self.base_logit, self.taste_scale, self.appeal_scale = base_logit, taste_scale, appeal_scale
        self.user_noise = user_noise

    def users(self, n: int, rng: np.random.Generator) -> SimUsers:
        t = rng.standard_normal((n, self.k))
        x = t + self.user_noise * rng.standard_normal((n, self.k))
        seg = (x[:, 0] > 0).astype(np.int64) * 2 + (x[:, 1] > 0).astype(np.int64)
        return SimUsers(t, x, seg)

    def logits(self, latent: np.ndarray) -> np.ndarray:
        """``[N, C]`` click logits for users with latent tastes ``[N, k]``."""
        lt = np.atleast_2d(latent)
        return (self.base_logit + self.taste_scale * (lt @ self.M) @ self.appeal.T
                + self.appeal_scale * (self.appeal @ self.q)[None, :] + self.quality[None, :])

    def click_prob(self, latent: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(latent)))  # type: ignore[no-any-return]

    def best_fixed(self, n: int = 20000, seed: int = 12345) -> int:
        """Creative with the highest expected CTR over the population (Monte Carlo)."""
        return int(np.argmax(self.click_prob(self.users(n, np.random.default_rng(seed)).latent).mean(0)))


# ---------------------------------------------------------------------------------- policies ----------
class Policy:
    name = "policy"

    def choose(self, i: int, users: SimUsers) -> tuple[int, float]:
        """The arm shown to user ``i`` and its propensity."""
        raise NotImplementedError  # abstract

    def update(self, i: int, users: SimUsers, arm: int, click: float, propensity: float) -> None:
        return None


class OraclePolicy(Policy):
    name = "oracle"

    def __init__(self, market: SyntheticMarket) -> None:
        self.market = market

    def choose(self, i: int, users: SimUsers) -> tuple[int, float]:
        return int(np.argmax(self.market.logits(users.latent[i])[0])), 1.0


class UniformPolicy(Policy):
    name = "uniform random"

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.rng = n, np.random.default_rng(seed)

    def choose(self, i: int, users: SimUsers) -> tuple[int, float]:
        return int(self.rng.integers(self.n)), 1.0 / self.n


class FixedPolicy(Policy):
    name = "best fixed creative"

    def __init__(self, arm: int) -> None:
        self.arm = arm

    def choose(self, i: int, users: SimUsers) -> tuple[int, float]:
        return self.arm, 1.0


class ThompsonPolicy(Policy):
    """Ours, online: :class:`HybridLinearTS` on observed user features × visual creative features."""

    name = "ours: hybrid Thompson (visual prior)"

    def __init__(self, features: np.ndarray, n_user: int, seed: int, exploration_share: float = 1.0) -> None:
        self.bandit = HybridLinearTS(n_user=n_user, n_creative=features.shape[1], seed=seed,
                                     exploration_share=exploration_share)
        self.bandit.set_creatives(features)

    def choose(self, i: int, users: SimUsers) -> tuple[int, float]:
        arm, _ = self.bandit.choose(users.x[i])
        return arm, float("nan")

    def update(self, i: int, users: SimUsers, arm: int, click: float, propensity: float) -> None:
        self.bandit.update(users.x[i], arm, click)


class ListwisePolicy(ThompsonPolicy):
    """Ours, the production shape: the joint ad/list-wise model retrained on the log every
    ``retrain_every`` impressions ranks exploit traffic; the hybrid bandit explores ``exploration_share``."""

    name = "ours: list-wise model + Thompson exploration"

    def __init__(self, features: np.ndarray, n_user: int, seed: int, retrain_every: int = 2000,
                 exploration_share: float = 0.2, epochs: int = 4) -> None:
        super().__init__(features, n_user, seed, exploration_share=1.0)
        from adcreative.select.data import CreativeTable

        z = (features - features.mean(0)) / (features.std(0) + 1e-6)
        self.table = CreativeTable([f"c{j}" for j in range(len(features))], z.astype(np.float32))
        self.retrain_every, self.share, self.epochs, self.seed = retrain_every, exploration_share, epochs, seed
        self.rng = np.random.default_rng(seed + 7)
        self.rows: list[tuple[int, int, float, float]] = []   # (user index, arm, click, propensity)
        self.scorer: Any = None
        self.trained: Any = None
        self.retrains = 0
        self.train_seconds = 0.0

    def choose(self, i: int, users: SimUsers) -> tuple[int, float]:
        if self.scorer is None or self.rng.random() < self.share:
            return super().choose(i, users)
        s = self.scorer.score(np.array([users.segment[i]]), np.arange(len(self.table)), users.x[i].astype(np.float32))
        return int(np.argmax(s)), float("nan")

    def update(self, i: int, users: SimUsers, arm: int, click: float, propensity: float) -> None:
        super().update(i, users, arm, click, propensity)
        self.rows.append((i, arm, click, propensity))
        if len(self.rows) % self.retrain_every == 0:
            self._retrain(users)

    def _retrain(self, users: SimUsers) -> None:
        import torch

        from adcreative.select.models import TrainConfig, train_joint
        from adcreative.select.scoring import CreativeScorer

        t0 = time.perf_counter()
        torch.set_num_threads(1)
        idx = np.array([r[0] for r in self.rows])
        c = len(self.table)
        log = market_log(users, idx, np.array([r[1] for r in self.rows]), np.array([r[2] for r in self.rows]),
                         np.full(len(idx), 1.0 / c), c)
        cfg = TrainConfig(epochs=self.epochs, seed=self.seed + self.retrains, n_creative_buckets=0, batch_size=512)
        cat, num = sim_user_fields(users.x.shape[1])
        self.trained = train_joint(log, self.table, cat, user_num_fields=num, n_buckets=4, cfg=cfg, init=self.trained)
        self.scorer = CreativeScorer.from_model(self.trained.creative_model, self.table)
        self.retrains += 1
        self.train_seconds += time.perf_counter() - t0


class VWPolicy(Policy):
    """Vowpal Wabbit ``--cb_explore_adf`` (the peer), on the same observed user and creative features."""

    def __init__(self, features: np.ndarray, seed: int, epsilon: float = 0.05, extra: str = "") -> None:
        import vowpalwabbit

        self.name = f"VW cb_explore_adf ε={epsilon:g}" + (f" {extra}" if extra else "")
        self.vw = vowpalwabbit.Workspace(f"--cb_explore_adf --epsilon {epsilon} -q uc --quiet --random_seed {seed} {extra}")
        z = (features - features.mean(0)) / (features.std(0) + 1e-6)
        self.actions = [f"|c id{j} " + " ".join(f"f{d}:{v:.4f}" for d, v in enumerate(row)) for j, row in enumerate(z)]
        self.rng = np.random.default_rng(seed + 11)

    def _ex(self, x: np.ndarray, seg: int, label: tuple[int, float, float] | None = None) -> list[str]:
        shared = f"shared |u seg{seg} " + " ".join(f"x{d}:{v:.4f}" for d, v in enumerate(x))
        acts = [(f"0:{label[1]}:{label[2]} " if label is not None and label[0] == j else "") + a
                for j, a in enumerate(self.actions)]
        return [shared, *acts]

    def choose(self, i: int, users: SimUsers) -> tuple[int, float]:
        pmf = np.asarray(self.vw.predict(self._ex(users.x[i], int(users.segment[i]))), np.float64)
        pmf = pmf / pmf.sum()
        arm = int(self.rng.choice(len(pmf), p=pmf))
        return arm, float(pmf[arm])

    def update(self, i: int, users: SimUsers, arm: int, click: float, propensity: float) -> None:
        self.vw.learn(self._ex(users.x[i], int(users.segment[i]), (arm, -click, propensity)))

    def close(self) -> None:
        self.vw.finish()


# ---------------------------------------------------------------------------------- campaign ----------
@dataclass
class CampaignResult:
    n_impressions: int
    n_creatives: int
    seed: int
    clicks: dict[str, int]
    curves: dict[str, np.ndarray]          # cumulative CTR after each impression
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def ctr(self, name: str) -> float:
        return self.clicks[name] / self.n_impressions

    def table(self) -> list[dict[str, Any]]:
        oracle = self.ctr("oracle") if "oracle" in self.clicks else float("nan")
        uni = self.ctr("uniform random") if "uniform random" in self.clicks else float("nan")
        return [{"policy": k, "clicks": v, "ctr": v / self.n_impressions, "vs_oracle": v / self.n_impressions / oracle,
                 "vs_uniform": v / self.n_impressions / uni, "seconds": self.seconds.get(k, 0.0)}
                for k, v in sorted(self.clicks.items(), key=lambda kv: -kv[1])]

    def to_markdown(self) -> str:
        lines = [f"Simulated campaign: N = {self.n_impressions} impressions, {self.n_creatives} creatives, seed {self.seed}",
                 "", "| policy | clicks | CTR | vs oracle | vs uniform | seconds |", "|---|---|---|---|---|---|"]
        for r in self.table():
            lines.append(f"| {r['policy']} | {r['clicks']} | {r['ctr']:.4f} | {r['vs_oracle']:.1%} | "
                         f"{r['vs_uniform']:.2f}× | {r['seconds']:.1f} |")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)

    def to_html(self, png_name: str | None = None) -> str:
        rows = "".join(f"<tr><td>{r['policy']}</td><td>{r['clicks']}</td><td>{r['ctr']:.4f}</td>"
                       f"<td>{r['vs_oracle']:.1%}</td><td>{r['vs_uniform']:.2f}×</td></tr>" for r in self.table())
        img = f'<img src="{png_name}" alt="cumulative CTR" style="max-width:720px">' if png_name else ""
        return (f"<h2>Simulated campaign</h2><p>N = {self.n_impressions} impressions over {self.n_creatives} "
                f"creatives (seed {self.seed}).</p><table><tr><th>policy</th><th>clicks</th><th>CTR</th>"
                f"<th>vs oracle</th><th>vs uniform</th></tr>{rows}</table>{img}")

    def plot(self, path: str | Path) -> Path:
        """Cumulative CTR curves as a PNG (atomically written)."""

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from adcreative.report.plots import save_figure

        fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
        start = min(200, self.n_impressions // 10)
        xs = np.arange(1, self.n_impressions + 1)
        for name, curve in sorted(self.curves.items(), key=lambda kv: -kv[1][-1]):
            ax.plot(xs[start:], curve[start:], label=f"{name} ({curve[-1]:.4f})",
                    lw=2.2 if name.startswith("ours") else 1.4, ls="--" if name == "oracle" else "-")
        ax.set_xlabel("impressions")
        ax.set_ylabel("cumulative CTR")
        ax.set_title(f"Simulated campaign, {self.n_creatives} creatives")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        return save_figure(fig, path)


def _one_blas_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


POLICY_NAMES = ("oracle", "ours", "ours_listwise", "uniform", "best_fixed", "vw", "vw_squarecb")


def check_policies(policies: Sequence[str]) -> None:
    """Unknown policy names are an :class:`InputError`, raised before any campaign work starts."""
    unknown = [p for p in policies if p not in POLICY_NAMES]
    if unknown or not policies:
        raise InputError(f"unknown policy {', '.join(map(repr, unknown)) or '(none given)'}; choose from "
                         f"{', '.join(POLICY_NAMES)}")


def run_campaign(creative_features: np.ndarray, n_impressions: int = 5000, seed: int = 0, *,
                 policies: Sequence[str] = ("oracle", "ours", "uniform", "best_fixed"),
                 png: str | Path | None = None, market_kwargs: dict[str, Any] | None = None,
                 retrain_every: int = 2000, exploration_share: float = 0.3, progress: bool = False) -> CampaignResult:
    """Run a simulated campaign over ``n_impressions`` with each policy on the same user stream.

    ``policies`` from: ``oracle``, ``ours`` (hybrid Thompson), ``ours_listwise`` (list-wise model retrained
    every ``retrain_every`` + Thompson exploration), ``uniform``, ``best_fixed``, ``vw`` (ε-greedy),
    ``vw_squarecb`` (VW's SquareCB exploration, its strongest setting we tried).
    ``exploration_share``: fraction of our requests ranked by a posterior sample (the rest by its mean).
    """
    if n_impressions < 1:
        raise InputError(f"n_impressions must be >= 1, got {n_impressions}")
    check_policies(policies)
    # small matrices: multi-threaded BLAS only thrashes (20-40x slower on a shared 2-core machine)
    with _one_blas_thread():
        return _run_campaign(creative_features, n_impressions, seed, policies=policies, png=png,
                             market_kwargs=market_kwargs, retrain_every=retrain_every,
                             exploration_share=exploration_share, progress=progress)


def _run_campaign(creative_features: np.ndarray, n_impressions: int, seed: int, *, policies: Sequence[str],
                  png: str | Path | None, market_kwargs: dict[str, Any] | None, retrain_every: int,
                  exploration_share: float, progress: bool) -> CampaignResult:
    market = SyntheticMarket(creative_features, seed=seed, **(market_kwargs or {}))
    rng = np.random.default_rng(seed + 1)
    users = market.users(n_impressions, rng)
    u = rng.random(n_impressions)                                    # common random numbers for clicks
    probs = market.click_prob(users.latent)                          # [N, C] hidden
    feats = np.asarray(creative_features, np.float64)
    makers: dict[str, Any] = {
        "oracle": lambda: OraclePolicy(market),
        "ours": lambda: ThompsonPolicy(feats, market.k, seed, exploration_share=exploration_share),
        "ours_listwise": lambda: ListwisePolicy(feats, market.k, seed, retrain_every=retrain_every,
                                                exploration_share=exploration_share),
        "uniform": lambda: UniformPolicy(market.n_creatives, seed),
        "best_fixed": lambda: FixedPolicy(market.best_fixed()),
        "vw": lambda: VWPolicy(feats, seed),
        "vw_squarecb": lambda: VWPolicy(feats, seed, extra="--squarecb"),
    }
    res = CampaignResult(n_impressions, market.n_creatives, seed, {}, {}, {})
    assert set(makers) == set(POLICY_NAMES)
    for key in policies:
        try:
            pol = makers[key]()
        except ImportError as e:
            res.notes.append(f"{key} skipped: {e}")
            continue
        t0 = time.perf_counter()
        clicks = np.zeros(n_impressions)
        it: Any = range(n_impressions)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=pol.name, leave=False)
        for i in it:
            arm, prop = pol.choose(i, users)
            c = float(u[i] < probs[i, arm])
            clicks[i] = c
            pol.update(i, users, arm, c, prop)
        if isinstance(pol, VWPolicy):
            pol.close()
        res.seconds[pol.name] = time.perf_counter() - t0
        res.clicks[pol.name] = int(clicks.sum())
        res.curves[pol.name] = np.cumsum(clicks) / np.arange(1, n_impressions + 1)
        if isinstance(pol, ListwisePolicy):
            res.notes.append(f"{pol.name}: {pol.retrains} retrains, {pol.train_seconds:.1f} s training")
    res.notes.append("expected CTR (hidden model): oracle "
                     f"{probs.max(1).mean():.4f}, uniform {probs.mean():.4f}, best fixed "
                     f"{probs[:, market.best_fixed()].mean():.4f}")
    if png is not None:
        res.plot(png)
    return res


def quick_creatives(cutouts: Sequence[Image.Image], n: int, seed: int = 0, size: int = 256
                    ) -> tuple[list[Image.Image], list[Image.Image]]:
    """``n`` simple ad images (+ product masks) from RGBA cutouts: varied background colour/gradient,
    product scale and position. A stand-in for the compositor when only the simulator is needed
    (benchmarks, tests); the real loop feeds the generator's creatives through :func:`image_features`."""
    if not cutouts:
        raise InputError("quick_creatives needs at least one RGBA cutout")
    rng = np.random.default_rng(seed)
    images, masks = [], []
    yy = np.linspace(0, 1, size)[:, None, None]
    for j in range(n):
        cut = cutouts[j % len(cutouts)].convert("RGBA")
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        bg = (c0 * (1 - yy) + c1 * yy) * np.ones((1, size, 1))
        canvas = Image.fromarray(bg.astype(np.uint8), "RGB")
        scale = float(rng.uniform(0.3, 0.8))
        w = max(8, int(size * scale))
        h = max(8, int(cut.height * w / cut.width))
        prod = cut.resize((w, h), Image.Resampling.BILINEAR)
        x0 = int(rng.integers(0, max(1, size - w + 1)))
        y0 = int(rng.integers(0, max(1, size - h + 1)))
        canvas.paste(prod, (x0, y0), prod)
        mask = Image.new("L", (size, size), 0)
        mask.paste(prod.getchannel("A"), (x0, y0))
        images.append(canvas)
        masks.append(mask)
    return images, masks


# ------------------------------------------------------------------ logs and bundles from the market ----
def sim_user_fields(k: int) -> tuple[list[str], list[str]]:
    """(categorical, numeric) user field names the simulator's users expose to the models."""
    return ["segment"], [f"x{j}" for j in range(k)]


def market_log(users: SimUsers, idx: np.ndarray, shown: np.ndarray, click: np.ndarray, propensity: np.ndarray,
               n_creatives: int) -> Any:
    """An :class:`ImpressionLog` of simulated impressions (every creative is a candidate)."""
    from adcreative.select.data import AD_BUCKETS, ImpressionLog, hash_bucket

    n = len(idx)
    return ImpressionLog(
        user_cat=users.segment[idx][:, None].astype(np.int64), user_num=users.x[idx].astype(np.float32),
        ad=np.full(n, hash_bucket("ad", "sim", AD_BUCKETS), np.int64), context=np.zeros(n, np.int64),
        candidates=np.tile(np.arange(n_creatives, dtype=np.int64), (n, 1)),
        pair=np.zeros((n, n_creatives, 0), np.float32), shown=shown.astype(np.int64),
        click=click.astype(np.float32), propensity=propensity.astype(np.float32), group=idx.astype(np.int64),
        ad_id=np.zeros(n, np.int64))


def build_bundle(directory: str | Path, creative_features: np.ndarray, *, n_logged: int = 20000, seed: int = 0,
                 epochs: int = 3, exploration_share: float = 0.1, ids: Sequence[str] | None = None,
                 market_kwargs: dict[str, Any] | None = None) -> Path:
    """Log ``n_logged`` uniformly-randomised impressions in the market, train the joint model on them and
    save a servable bundle (ad id ``"sim"``) with a Beta bandit whose prior is fitted on the same log."""
    import torch

    from adcreative.select.bandit import BetaVisualTS
    from adcreative.select.bundle import save_bundle
    from adcreative.select.data import CreativeTable
    from adcreative.select.models import TrainConfig, train_joint

    torch.set_num_threads(1)
    market = SyntheticMarket(creative_features, seed=seed, **(market_kwargs or {}))
    rng = np.random.default_rng(seed + 3)
    users = market.users(n_logged, rng)
    c = market.n_creatives
    shown = rng.integers(0, c, n_logged)
    click = (rng.random(n_logged) < market.click_prob(users.latent)[np.arange(n_logged), shown]).astype(np.float32)
    log = market_log(users, np.arange(n_logged), shown, click, np.full(n_logged, 1.0 / c), c)
    f = np.asarray(creative_features, np.float32)
    table = CreativeTable(list(ids) if ids is not None else [f"sim_{j}" for j in range(c)],
                          (f - f.mean(0)) / (f.std(0) + 1e-6))
    cat, num = sim_user_fields(market.k)
    res = train_joint(log, table, cat, user_num_fields=num, n_buckets=4,
                      cfg=TrainConfig(epochs=epochs, seed=seed, n_creative_buckets=0, batch_size=512))
    bandit = BetaVisualTS(n_features=f.shape[1], base_ctr=float(max(click.mean(), 1e-3)),
                          exploration_share=exploration_share, seed=seed)
    bandit.add_arms(table.ids, f)
    np.add.at(bandit.impressions, shown, 1.0)
    np.add.at(bandit.clicks, shown, click)
    bandit.fit_prior()
    return save_bundle(directory, res.ad_model, res.creative_model, table, ad_id="sim", bandit=bandit,
                       meta={"source": "simulator", "rows": n_logged})


def demo_campaign(images: Sequence[Image.Image], out_dir: str | Path, *, n_impressions: int = 5000, seed: int = 0,
                  masks: Sequence[Image.Image | None] | None = None) -> tuple[CampaignResult, Path]:
    """For ``adcreative demo``: features of the generated creatives → a short simulated campaign (ours vs
    oracle, uniform random, best fixed creative) → ``out_dir/campaign.png``. Seconds on one core."""
    res = run_campaign(image_features(images, masks), n_impressions, seed,
                       policies=("oracle", "ours", "uniform", "best_fixed"))
    png = res.plot(Path(out_dir) / "campaign.png")
    return res, png
