"""The compositor's sampling distributions, gathered in one parametric policy.

Every random choice the compositor makes (background kind, palette, product scale, how the product meets
its support, props and their colours, lighting) is drawn here, so that

* a seed fixes every choice (``sample`` takes a NumPy generator);
* the drawn choices are recorded as the creative's provenance (``Choice.values``);
* feedback fine-tuning can move the distributions (``score`` gives ∇θ log π(choice), the REINFORCE term),
  and a tuned policy saves and loads like any model (config.json + model.safetensors).

Choices have natural failure regions — a product too small or too large for its props, lifted off its support,
toned onto a background of its own colour, with a prop in its colours touching its silhouette — so the
untuned policy yields a realistic mix of available and defective creatives, as a diffusion model does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.generate.compositor.styles import BG_KINDS, CATEGORIES, N_PALETTES, PROP_KINDS

SUPPORTS = ("surface", "lifted")
PROP_COLOURS = ("palette", "product")
PALETTE_MODES = ("category", "tone_on_tone")
LIGHTS = ("soft", "spot", "window", "rim")

# Categorical variables: name → option names. Per-category logits (a row per category).
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "bg_kind": BG_KINDS,
    "palette": tuple(f"p{i}" for i in range(N_PALETTES)),
    "palette_mode": PALETTE_MODES,
    "support": SUPPORTS,
    "n_props": ("0", "1", "2", "3"),
    "prop_kind": PROP_KINDS,
    "prop_colour": PROP_COLOURS,
    "light": LIGHTS,
}
# Gaussian variables: name → (mean, log std) of the untuned policy.
GAUSSIAN: dict[str, tuple[float, float]] = {
    "scale": (0.0, np.log(0.8)),  # logit of product height / product-region height, around 0.7
    "x_offset": (0.0, np.log(0.35)),  # product centre offset in units of the free width
    "lift": (0.0, np.log(1.0)),  # how far a lifted product floats (sigmoid → fraction of its height)
    "tone": (0.0, np.log(0.9)),  # tone-on-tone lightness shift (sigmoid → 0..1; small = indistinct)
    "prop_gap": (0.6, np.log(0.6)),  # gap between product and nearest prop (units of prop width; <0 touches)
    "horizon": (0.0, np.log(0.5)),  # horizon height jitter
    "texture": (-0.5, np.log(0.8)),  # texture strength (sigmoid)
}
# Untuned preferences, as log-odds: most products rest on their support, most palettes come from the category.
PRIOR_BIAS: dict[str, dict[str, float]] = {
    "support": {"surface": 2.0, "lifted": 0.0},
    "palette_mode": {"category": 1.2, "tone_on_tone": 0.0},
    "prop_colour": {"palette": 1.0, "product": 0.0},
    "n_props": {"0": 0.0, "1": 0.6, "2": 0.6, "3": 0.0},
}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return np.asarray(e / e.sum())


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@dataclass
class Choice:
    """One draw of every variable: categorical indices and Gaussian values, plus derived numbers."""

    category: str
    cat: dict[str, int] = field(default_factory=dict)
    gauss: dict[str, float] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: CATEGORICAL[k][i] for k, i in self.cat.items()}
        out.update({k: round(v, 6) for k, v in self.gauss.items()})
        return out


class CompositorPolicy(ConfigMixin):
    """Per-category categorical logits and Gaussian (mean, log std) parameters, as NumPy arrays."""

    @register_to_config
    def __init__(self, categories: list[str] | None = None, temperature: float = 1.0) -> None:
        self.categories = list(categories or CATEGORIES)
        self.temperature = temperature
        nc = len(self.categories)
        self.logits: dict[str, np.ndarray] = {}
        for name, opts in CATEGORICAL.items():
            row = np.array([PRIOR_BIAS.get(name, {}).get(o, 0.0) for o in opts], dtype=np.float64)
            self.logits[name] = np.tile(row, (nc, 1))
        self.mu = {k: np.full(nc, m, dtype=np.float64) for k, (m, _) in GAUSSIAN.items()}
        self.log_sigma = {k: np.full(nc, s, dtype=np.float64) for k, (_, s) in GAUSSIAN.items()}

    # -- parameters as flat arrays (safetensors) -----------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {f"logits.{k}": v.astype(np.float64) for k, v in self.logits.items()}
        out.update({f"mu.{k}": v.astype(np.float64) for k, v in self.mu.items()})
        out.update({f"log_sigma.{k}": v.astype(np.float64) for k, v in self.log_sigma.items()})
        return out

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        expected = set(self.state_arrays())
        got = set(arrays)
        if expected != got:
            raise ValueError(f"policy weights do not match: missing {sorted(expected - got)[:3]}, "
                             f"unexpected {sorted(got - expected)[:3]}")
        for key, v in arrays.items():
            group, name = key.split(".", 1)
            getattr(self, group)[name] = np.asarray(v, dtype=np.float64).copy()

    def copy(self) -> CompositorPolicy:
        other = CompositorPolicy(**self.config)
        other.load_state_arrays(self.state_arrays())
        return other

    # -- sampling ------------------------------------------------------------------------------------
    def row(self, category: str) -> int:
        return self.categories.index(category) if category in self.categories else self.categories.index("default")

    def probs(self, name: str, category: str) -> np.ndarray:
        return _softmax(self.logits[name][self.row(category)] / self.temperature)

    def sample(self, rng: np.random.Generator, category: str) -> Choice:
        r = self.row(category)
        ch = Choice(category=category)
        for name in CATEGORICAL:  # fixed order: the seed fixes every draw
            ch.cat[name] = int(rng.choice(len(CATEGORICAL[name]), p=self.probs(name, category)))
        for name in GAUSSIAN:
            ch.gauss[name] = float(self.mu[name][r] + np.exp(self.log_sigma[name][r]) * rng.standard_normal())
        return ch

    def log_prob(self, ch: Choice) -> float:
        r = self.row(ch.category)
        lp = 0.0
        for name, i in ch.cat.items():
            lp += float(np.log(self.probs(name, ch.category)[i] + 1e-12))
        for name, x in ch.gauss.items():
            s = np.exp(self.log_sigma[name][r])
            lp += float(-0.5 * ((x - self.mu[name][r]) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi))
        return lp

    def score(self, ch: Choice) -> dict[str, np.ndarray]:
        """∇θ log π(choice) for every parameter array (the REINFORCE score function)."""
        r = self.row(ch.category)
        g = {k: np.zeros_like(v) for k, v in self.state_arrays().items()}
        for name, i in ch.cat.items():
            p = self.probs(name, ch.category)
            onehot = np.zeros_like(p)
            onehot[i] = 1.0
            g[f"logits.{name}"][r] = (onehot - p) / self.temperature
        for name, x in ch.gauss.items():
            s2 = np.exp(2 * self.log_sigma[name][r])
            d = x - self.mu[name][r]
            g[f"mu.{name}"][r] = d / s2
            g[f"log_sigma.{name}"][r] = d * d / s2 - 1.0
        return g

    def kl_to(self, ref: CompositorPolicy) -> float:
        """KL(self ‖ ref) summed over variables and categories: the regulariser that keeps a tuned policy
        near the original distribution."""
        kl = 0.0
        for c in self.categories:
            for name in CATEGORICAL:
                p, q = self.probs(name, c), ref.probs(name, c)
                kl += float(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12))))
            r = self.row(c)
            for name in GAUSSIAN:
                m1, s1 = self.mu[name][r], np.exp(self.log_sigma[name][r])
                m2, s2 = ref.mu[name][r], np.exp(ref.log_sigma[name][r])
                kl += float(np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5)
        return kl


def derived(ch: Choice) -> dict[str, float]:
    """Numbers the renderer uses, squashed from the Gaussian draws into their ranges."""
    g = ch.gauss
    return {
        "scale": 0.3 + 0.8 * _sigmoid(g["scale"]),  # product height / region height, 0.7 at the mean
        "x_offset": float(np.tanh(g["x_offset"])),
        "lift": 0.08 + 0.5 * _sigmoid(g["lift"]),  # gap as a fraction of product height, when lifted
        "tone": _sigmoid(g["tone"]),
        "prop_gap": float(g["prop_gap"]),
        "horizon": float(np.tanh(g["horizon"])),
        "texture": _sigmoid(g["texture"]),
    }
