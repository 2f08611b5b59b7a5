"""Feedback fine-tuning of the compositor's sampling policy (RFFT's idea on CPU, without a diffusion model).

The compositor draws every choice (background kind and palette, palette mode, product scale and offset,
support, props, light, texture…) from a :class:`CompositorPolicy`. Tuning raises the auditor's P(available)
with REINFORCE and a baseline, regularised two ways so the tuned creatives stay varied and close to the
designed distribution:

    J(θ) = E_π[ P_RFNet(available | x) + γ · div(x) ] − λ · KL(π_θ ‖ π_0)

* ``div(x)`` is the background's mean colour-histogram distance to the other creatives drawn for the same
  product in the batch (a reward for staying different), and
* the KL term (closed form per variable and category, with its analytic gradient) anchors π_θ to π_0.

Each iteration draws ``samples_per_product`` creatives for ``products_per_iter`` products; the baseline of a
sample is the leave-one-out mean reward of its product group (RLOO), which removes the per-product offset
of RFNet's scores. Parameters move with Adam (ascent). The tuned policy saves like a model
(``config.json`` + ``model.safetensors``) and is used with ``--generator compositor --policy DIR``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write_text
from adcreative.core.modeling import register_to_config
from adcreative.core.types import ASPECTS, Product
from adcreative.generate.compositor.policy import CATEGORICAL, GAUSSIAN, Choice, CompositorPolicy


class Scorer(Protocol):
    """RFNet, its ONNX export, or any auditor with the same method: (N, 6) class probabilities."""

    def predict_proba(self, items: Sequence[Any], batch_size: int = 32) -> np.ndarray: ...


# -- measurements shared with bench/rfft.py ---------------------------------------------------------------
def background_histogram(image: Any, mask: Any, bins: int = 8) -> np.ndarray:
    """Normalised RGB histogram (bins³) of the pixels outside the product mask."""
    rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
    keep = np.asarray(mask.convert("L")).reshape(-1) == 0
    px = rgb[keep] if keep.any() else rgb
    idx = (px.astype(np.int64) * bins // 256) @ np.array([bins * bins, bins, 1])
    h = np.bincount(idx, minlength=bins**3).astype(np.float64)
    return h / max(1.0, h.sum())


def histogram_distances(hists: np.ndarray) -> np.ndarray:
    """Pairwise total-variation distances (in [0, 1]) between normalised histograms (N, K) → (N, N)."""
    return 0.5 * np.abs(hists[:, None, :] - hists[None, :, :]).sum(-1)


def mean_pairwise(hists: Sequence[np.ndarray]) -> float:
    if len(hists) < 2:
        return 0.0
    d = histogram_distances(np.stack(hists))
    n = len(hists)
    return float(d.sum() / (n * (n - 1)))


def choice_from_params(params: dict[str, Any]) -> Choice:
    """The policy draw behind a compositor creative, rebuilt from its provenance (``params``)."""
    values = params["choice"]
    cat = {k: CATEGORICAL[k].index(values[k]) for k in CATEGORICAL if k in values}
    gauss = {k: float(values[k]) for k in GAUSSIAN if k in values}
    return Choice(category=params["category"], cat=cat, gauss=gauss)


def kl_gradient(policy: CompositorPolicy, ref: CompositorPolicy) -> dict[str, np.ndarray]:
    """∇θ KL(π_θ ‖ π_ref) for every parameter array, in closed form (matches ``policy.kl_to(ref)``)."""
    g = {k: np.zeros_like(v) for k, v in policy.state_arrays().items()}
    T = policy.temperature
    for c in policy.categories:
        r = policy.row(c)
        for name in CATEGORICAL:
            p, q = policy.probs(name, c), ref.probs(name, c)
            lr = np.log(p + 1e-12) - np.log(q + 1e-12)
            g[f"logits.{name}"][r] += p * (lr - float(np.sum(p * lr))) / T
        for name in GAUSSIAN:
            m1, ls1 = policy.mu[name][r], policy.log_sigma[name][r]
            m2, s2 = ref.mu[name][r], np.exp(ref.log_sigma[name][r])
            g[f"mu.{name}"][r] += (m1 - m2) / s2**2
            g[f"log_sigma.{name}"][r] += -1.0 + np.exp(2 * ls1) / s2**2
    return g


@dataclass
class TuneResult:
    policy: CompositorPolicy
    output: Path | None
    history: list[dict[str, float]] = field(default_factory=list)


class Adam:
    """Adam over a dict of NumPy arrays (ascent: ``step`` adds the update)."""

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.t += 1
        b1, b2 = self.betas
        out = {}
        for k, p in params.items():
            g = grads[k]
            self.m[k] = b1 * self.m.get(k, np.zeros_like(g)) + (1 - b1) * g
            self.v[k] = b2 * self.v.get(k, np.zeros_like(g)) + (1 - b2) * g * g
            mh = self.m[k] / (1 - b1**self.t)
            vh = self.v[k] / (1 - b2**self.t)
            out[k] = p + self.lr * mh / (np.sqrt(vh) + self.eps)
        return out


class CompositorTuner:
    """REINFORCE-with-baseline tuning of a :class:`CompositorPolicy` against an auditor. Config = constructor."""

    @register_to_config
    def __init__(
        self,
        iterations: int = 60,
        products_per_iter: int = 4,
        samples_per_product: int = 6,
        lr: float = 0.05,
        kl_weight: float = 0.05,
        diversity_weight: float = 1.5,
        threshold: float = 0.5,
        aspects: list[str] | tuple[str, ...] = ("1:1",),
        scale: float = 0.5,
        max_log_sigma_drop: float = 1.0,
        seed: int = 0,
    ) -> None:
        if iterations < 1 or products_per_iter < 1 or samples_per_product < 2:
            raise InputError("iterations and products_per_iter must be ≥ 1, samples_per_product ≥ 2 "
                             "(the baseline is the leave-one-out mean of a product's samples)")
        bad = [a for a in aspects if a not in ASPECTS]
        if bad or not aspects:
            raise InputError(f"unknown aspect ratio {bad[0] if bad else ''!r}; choose from {', '.join(ASPECTS)}")
        if not 0.0 < threshold < 1.0:  # at 0 or 1 every sample (or none) counts as available: no signal
            raise InputError(f"threshold is a probability strictly between 0 and 1, got {threshold:g}")
        if kl_weight < 0 or diversity_weight < 0:
            raise InputError("kl_weight and diversity_weight must be ≥ 0")
        self.config: dict[str, Any]

    def _draw(self, policy: CompositorPolicy, product: Product, seed: int, aspect: str) -> Any:
        from adcreative.generate.compositor.generator import Compositor

        gen = Compositor(scale=self.config["scale"])
        gen.policy = policy  # the policy being tuned, not a saved one
        return gen(product, seed=seed, aspect=aspect, n=1)[0]

    def train(self, products: Sequence[Product], scorer: Scorer, output: str | Path | None = None, *,
              start: CompositorPolicy | None = None, progress: bool = True) -> TuneResult:
        """Tune ``start`` (default: the untuned policy); writes the tuned policy and its history to ``output``."""
        from tqdm.auto import tqdm

        from adcreative.catalogue.sizes import real_height_cm
        from adcreative.inspect.preprocess import InspectItem, catalogue_source

        if not products:
            raise InputError("no products to tune on")
        heights = [real_height_cm(p) for p in products]  # what the auditor knows of each product's real size
        cfg = self.config
        ref = start.copy() if start is not None else CompositorPolicy()
        policy = ref.copy()
        floor = {k: v - cfg["max_log_sigma_drop"] for k, v in ref.log_sigma.items()}
        opt = Adam(cfg["lr"])
        rng = np.random.default_rng(cfg["seed"])
        history: list[dict[str, float]] = []
        bar = tqdm(range(cfg["iterations"]), desc="tune compositor", disable=not progress, unit="it")
        n_prod = min(cfg["products_per_iter"], len(products))
        for it in bar:
            t0 = time.perf_counter()
            order = [(it * n_prod + j) % len(products) for j in range(n_prod)]  # round robin over the catalogue
            draws: list[tuple[int, Any, Choice]] = []
            for gi_prod in order:
                for _ in range(cfg["samples_per_product"]):
                    seed = int(rng.integers(2**31))
                    aspect = str(rng.choice(list(cfg["aspects"])))
                    g = self._draw(policy, products[gi_prod], seed, aspect)
                    draws.append((gi_prod, g, choice_from_params(g.params)))
            items = [InspectItem(image=g.image, title=products[p].title, mask=g.mask, product=products[p].image,
                                 product_id=products[p].id, height_cm=heights[p],
                                 product_source=catalogue_source(products[p])) for p, g, _ in draws]
            p_av = scorer.predict_proba(items)[:, 0].astype(np.float64)
            hists = np.stack([background_histogram(g.image, g.mask) for _, g, _ in draws])
            groups = np.array([p for p, _, _ in draws])
            div = np.zeros(len(draws))
            adv = np.zeros(len(draws))
            for p in set(groups.tolist()):
                idx = np.flatnonzero(groups == p)
                d = histogram_distances(hists[idx])
                div[idx] = d.sum(1) / (len(idx) - 1)
            reward = p_av + cfg["diversity_weight"] * div
            for p in set(groups.tolist()):
                idx = np.flatnonzero(groups == p)
                loo = (reward[idx].sum() - reward[idx]) / (len(idx) - 1)  # leave-one-out baseline
                adv[idx] = reward[idx] - loo
            grads = {k: np.zeros_like(v) for k, v in policy.state_arrays().items()}
            for a, (_, _, ch) in zip(adv, draws, strict=True):
                for k, s in policy.score(ch).items():
                    grads[k] += a * s / len(draws)
            if cfg["kl_weight"] > 0:
                for k, gk in kl_gradient(policy, ref).items():
                    grads[k] -= cfg["kl_weight"] * gk
            new = opt.step(policy.state_arrays(), grads)
            for k in list(new):  # keep exploration: a std may shrink at most e^max_log_sigma_drop-fold
                if k.startswith("log_sigma."):
                    new[k] = np.maximum(new[k], floor[k.split(".", 1)[1]])
            policy.load_state_arrays(new)
            rec = {"iteration": it + 1, "p_available": float(p_av.mean()),
                   "available_rate": float((p_av >= cfg["threshold"]).mean()), "diversity": float(div.mean()),
                   "kl": policy.kl_to(ref), "seconds": time.perf_counter() - t0}
            history.append(rec)
            bar.set_postfix(p_avail=f"{rec['p_available']:.3f}", kl=f"{rec['kl']:.3f}")
        out = Path(output) if output is not None else None
        if out is not None:
            save_tuned(policy, out, {"tuner": dict(cfg), "history": history})
        return TuneResult(policy=policy, output=out, history=history)


def save_tuned(policy: CompositorPolicy, out: Path, info: dict[str, Any]) -> Path:
    """The tuned policy folder (loads with ``CompositorPolicy.from_pretrained`` / ``--policy``) + its history."""
    policy.save_pretrained(out, extra={"tuned_by": "adcreative tune compositor"})
    atomic_write_text(out / "tuning.json", json.dumps(info, indent=1))
    hist = info.get("history") or []
    if hist:
        _plot(hist, out / "tuning_curve.png")
    return out


def _plot(history: list[dict[str, float]], path: Path) -> None:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adcreative.report.plots import save_figure

    its = [h["iteration"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, key, title in zip(axes, ("p_available", "diversity", "kl"),
                              ("mean P(available)", "background diversity", "KL to the original"), strict=True):
        ax.plot(its, [h[key] for h in history])
        ax.set_title(title)
        ax.set_xlabel("iteration")
    save_figure(fig, path, dpi=80)
