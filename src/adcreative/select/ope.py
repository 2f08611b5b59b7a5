"""Offline evaluation of creative-selection policies.

Ranking metrics: AUC, GAUC (per-user AUC weighted by the user's impressions, users with both classes only)
and NSCTR, the replay metric of JD's creative ranking: for each logged impression the policy's top
creative is compared with the shown one; matched impressions' clicks are rescaled per ad by
all/matched impressions, i.e. ``NSCTR = Σ_ad clicks_matched(ad) · N(ad)/M(ad) / Σ_ad N(ad)``.

Off-policy value estimators of a target policy π from logs of a policy μ with known propensities
(Dudík et al. 2011; Swaminathan & Joachims 2015). With ``w = π(a|x) / μ(a|x)``:

* IPS   ``mean(w · r)`` — unbiased when μ > 0 wherever π > 0;
* SNIPS ``Σ w·r / Σ w`` — self-normalised, slightly biased, much lower variance;
* DR    ``mean(q̂(x, π) + w · (r − q̂(x, a)))`` — unbiased if either q̂ or μ is right.

Confidence intervals (95%) that stay right when matched rows hold few or no clicks: the hull of

* a percentile bootstrap over the whole log (vectorised; the same resamples for every estimator), and
* an exact Clopper–Pearson binomial interval at the estimate's effective sample size
  ``ESS = (Σw)² / Σw²`` (Kish), with ``estimate · ESS`` successes (Korn & Graubard 1998). With uniform
  logging and a deterministic target policy the matched rows have equal weights, so for SNIPS this *is* the
  exact interval of ``clicks / matched rows``; with 0 clicks in 197 matched rows it is [0, 0.0185], where a
  bootstrap collapses to [0, 0].

Every estimate reports its ESS. On-policy CTRs of logged traffic get the exact binomial interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve via the Mann–Whitney statistic (ties get half credit). NaN if one class."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    ss = s[order]
    # average ranks over ties
    _, start, counts = np.unique(ss, return_index=True, return_counts=True)
    avg = start + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def gauc(y: np.ndarray, s: np.ndarray, group: np.ndarray) -> float:
    """Impression-weighted mean of per-group AUC over groups that have both clicks and non-clicks."""
    num = den = 0.0
    for g in np.unique(group):
        m = group == g
        a = auc(y[m], s[m])
        if not np.isnan(a):
            num += a * m.sum()
            den += m.sum()
    return float(num / den) if den else float("nan")


def nsctr(top: np.ndarray, shown: np.ndarray, click: np.ndarray, ad: np.ndarray) -> float:
    """Replay CTR of a ranker whose top creative per impression is ``top`` (see module doc)."""
    total_n = 0
    total = 0.0
    for a in np.unique(ad):
        m = ad == a
        matched = m & (top == shown)
        n, k = int(m.sum()), int(matched.sum())
        total_n += n
        if k:
            total += float(click[matched].sum()) * n / k
    return total / total_n if total_n else float("nan")


def ips(r: np.ndarray, w: np.ndarray) -> float:
    return float(np.mean(w * r))


def snips(r: np.ndarray, w: np.ndarray) -> float:
    s = float(np.sum(w))
    return float(np.sum(w * r) / s) if s > 0 else float("nan")


def dr(r: np.ndarray, w: np.ndarray, q_logged: np.ndarray, q_pi: np.ndarray) -> float:
    return float(np.mean(q_pi + w * (r - q_logged)))


@dataclass
class Estimate:
    name: str
    value: float
    lo: float
    hi: float
    n: int
    ess: float = float("nan")   # effective sample size of the weights (n for on-policy estimates)

    def fmt(self, digits: int = 4) -> str:
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def _boot_idx(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap(stat: Callable[[np.ndarray], np.ndarray], n: int, *, n_boot: int = 1000, alpha: float = 0.05,
              seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``stat(idx [B, n]) -> [B]`` over ``n_boot`` resamples of ``n`` rows."""
    vals = stat(_boot_idx(n, n_boot, seed))
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return float("nan"), float("nan")
    return float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's ``(Σw)² / Σw²``: how many equally weighted rows the importance weights are worth."""
    w = np.asarray(w, np.float64)
    s2 = float((w * w).sum())
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0


def binomial_interval(p_hat: float, n_eff: float, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper–Pearson interval for a rate ``p_hat`` observed on ``n_eff`` (effective) trials; ``p_hat·n_eff``
    successes may be fractional (the beta quantiles do not need integers). ``(0, 1)`` without trials."""
    from scipy.stats import beta

    if not n_eff > 0:
        return 0.0, 1.0
    x = min(max(float(p_hat), 0.0), 1.0) * n_eff
    lo = 0.0 if x <= 0 else float(beta.ppf(alpha / 2, x, n_eff - x + 1))
    hi = 1.0 if x >= n_eff else float(beta.ppf(1 - alpha / 2, x + 1, n_eff - x))
    return lo, hi


def on_policy_ctr(click: np.ndarray, *, name: str = "on-policy", n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Mean click rate of logged traffic with a bootstrap interval."""
    c = np.asarray(click, np.float64)
    blo, bhi = bootstrap(lambda idx: c[idx].mean(axis=1), len(c), n_boot=n_boot, seed=seed)
    lo, hi = binomial_interval(float(c.mean()), float(len(c)))
    return Estimate(name, float(c.mean()), min(lo, blo), max(hi, bhi), len(c), float(len(c)))


def off_policy(r: np.ndarray, pi_logged: np.ndarray, mu: np.ndarray, q_logged: np.ndarray, q_pi: np.ndarray,
               *, n_boot: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """IPS, SNIPS and DR estimates of a target policy's CTR with 95% intervals (module doc) and ESS.

    ``pi_logged``: π(logged action | x); ``mu``: logging propensity; ``q_logged``: q̂(x, logged action);
    ``q_pi``: Σ_a π(a|x) q̂(x, a).
    """
    r = np.asarray(r, np.float64)
    w = np.asarray(pi_logged, np.float64) / np.clip(np.asarray(mu, np.float64), 1e-12, None)
    ql, qp = np.asarray(q_logged, np.float64), np.asarray(q_pi, np.float64)
    n = len(r)
    idx = _boot_idx(n, n_boot, seed)
    out: dict[str, Estimate] = {}
    wr = w * r
    boots = {
        "IPS": wr[idx].mean(axis=1),
        "SNIPS": wr[idx].sum(axis=1) / np.clip(w[idx].sum(axis=1), 1e-12, None),
        "DR": (qp + w * (r - ql))[idx].mean(axis=1),
    }
    points = {"IPS": ips(r, w), "SNIPS": snips(r, w), "DR": dr(r, w, ql, qp)}
    n_eff = effective_sample_size(w)
    scale = float(w.sum()) / n   # IPS = (Σw / n) · SNIPS: its exact interval is SNIPS's, scaled
    for k, v in boots.items():
        if k == "IPS":
            lo, hi = (scale * b for b in binomial_interval(points["SNIPS"], n_eff))
        else:
            lo, hi = binomial_interval(points[k], n_eff)
        out[k] = Estimate(k, points[k], min(lo, float(np.quantile(v, 0.025))), max(hi, float(np.quantile(v, 0.975))),
                          n, n_eff)
    return out
