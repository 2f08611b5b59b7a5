"""The three-way decision on a judged image: **accept** (ship without a human), **human** (a reviewer decides),
**reject** (regenerate), from the calibrated P(available) and an out-of-distribution score.

Thresholds are chosen on validation for target precisions: of the images auto-accepted, at least
``target_accept`` (default 0.99) must truly be available; of those auto-rejected, at least ``target_reject`` must
truly be defective. Each threshold is the loosest one at which the precision holds *at every stricter threshold
too* (the running minimum of the precision curve), so one lucky stretch of the curve does not set it. An image
whose out-of-distribution score is above ``ood`` (a quantile of the validation images' scores) goes to a human
whatever its P(available): the model has not seen its like, so neither verdict is trusted.

**Label shift.** The probabilities are calibrated to validation, where a share ``prior`` of images is available
(about 20 % on the shipped data); a batch of generated ads is often mostly good. The decision keeps histograms of
validation P(available) for available and for defective images, so :meth:`Decision.for_prior` can re-choose the
accept threshold for the precision target at another available share (precision at threshold t is
``π·TPR(t) / (π·TPR(t) + (1-π)·FPR(t))``, TPR and FPR read off the histograms), and :func:`estimate_prior` gives
that share for an unlabelled batch (Saerens et al. 2002, EM over all classes, with Dirichlet pseudo-counts at
validation's shares so a handful of images cannot swing it). Only the accept threshold moves: a wrong estimate can move images
between *accept* and *human*, never into *reject*.

**Worst group.** With ``groups`` (each validation row's renderer family), :func:`choose_decision` makes each target
hold on every family, not only pooled: the accept threshold is the strictest (highest) of the per-family ones, the
reject threshold the strictest (lowest), and never looser than the pooled one. The spread across known families
stands in for a renderer never seen. A family with fewer than ``min_group`` rows, or fewer than ``min_class``
available (for the accept threshold) or defective (for the reject threshold) images, is skipped; with none left a
threshold is the pooled one. (The histograms are pooled, so :meth:`Decision.for_prior` keeps such a decision's accept
threshold as a floor: label shift can raise it, never loosen it below what the worst family asked for.) The rule
"reject-family" applies the worst family to the reject threshold only: the accept threshold is the pooled one, and
label shift moves it both ways — a model whose strictest family asks for an accept threshold no clean render reaches
otherwise auto-accepts nothing on a batch that is mostly good (docs/inspect.md, thirteenth round). Either rule also
keeps each family's own accept threshold and label-shift statistics (``Decision.families``): an image whose renderer
family is known is accepted at its family's threshold, an unknown renderer at the rule's (fourteenth round). The
rule "floor" is "reject-family" whose family accept thresholds may only raise the pooled one, never lower it: a
family's threshold rests on its 70–120 available validation images, its lowest stretch of clean scores is partly
luck, and on fresh renders the families set below the pooled threshold let defective images through (precision
0.96–0.985 against 0.99; docs/inspect.md, twenty-second round). Under label shift a family's threshold moves with its
own histograms but never below the pooled decision moved to the same share.
An image whose product was looked for and not found (no mask came with it; ``Judgements.placement``) goes to a human.

**Real products.** ``real_accept`` is a floor on the accept threshold for images of real products — anything but
the SKUs the project draws itself (``sample``, ``procedural``, ``fitted``; :func:`is_drawn`). The family thresholds
are chosen mostly on drawn SKUs, and a model is sharper on those than on a shopper's real product: on real products
it never trained on, a family threshold let defective images through (docs/inspect.md, fifteenth round). The floor
is chosen on validation rows of real products alone (:func:`choose_decision`'s ``real``) and applied after every
other rule, label shift included, so it only ever moves images from *accept* to *human*.
NumPy only; saved in the model's config (``RFNet(decision=...)``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from adcreative.catalogue.sources import DRAWN_FAMILIES
from adcreative.core.types import BANDS, TARGET_REJECT

NEVER = 2.0  # a P(available) threshold no probability reaches: the band is empty
PRIOR_BINS = 1000  # validation P(available) histogram bins kept for label-shift thresholds
# how thresholds are chosen: on all validation rows, or the worst family, or the worst family for the reject
# threshold only (the accept threshold pooled, so the label-shift adaptation can move it: with the family rule a
# model whose strictest family asks for a high accept threshold auto-accepts nothing on a batch that is mostly good),
# or as reject-family with each family's accept threshold no lower than the pooled one
GROUP_RULES = ("pooled", "family", "reject-family", "floor")
# the default rule: on held-out renderer families the pooled rule's reject precision fell short of its 0.98 target
# (0.937 on v5's five, 0.969 on v7's), the family rule's met it about (0.977, 0.980) — docs/inspect.md, tenth round
DECISION_GROUPS = "family"
MIN_GROUP = 50  # validation rows a family needs to set a threshold of its own
MIN_GROUP_CLASS = 5  # … and available images (accept threshold) or defective ones (reject threshold)
BOUND_CONFIDENCE = 0.95  # the confidence of the precision bounds a report gives beside each observed precision
# where a product comes from when the project drew it (catalogue ``products_from_sources``, ``dataset synth``'s
# ``product_source``): anything else — an imported catalogue folder, or unknown — is a real product
DRAWN_SOURCES = ("sample", *DRAWN_FAMILIES)


def is_drawn(source: str | None) -> bool:
    """Whether a product of this source is one of the SKUs the project draws itself (not a real product)."""
    return str(source or "") in DRAWN_SOURCES


def real_mask(sources: Sequence[str | None]) -> np.ndarray:
    """Per image, whether its product is real (not drawn): the rows the real-product floor and bias apply to."""
    return np.array([not is_drawn(s) for s in sources], bool)


@dataclass(frozen=True)
class Decision:
    """Thresholds of the three-way decision (P(available) ≥ ``accept`` → accept, ≤ ``reject`` → reject, OOD score
    > ``ood`` → human first)."""

    accept: float
    reject: float
    ood: float | None = None
    target_accept: float = 0.99
    target_reject: float = 0.95
    ood_quantile: float = 0.99
    prior: float | None = None                   # validation share of available images
    class_prior: tuple[float, ...] | None = None  # validation share of each class (available first)
    # validation P(available) histograms (PRIOR_BINS on [0, 1]) of available and of defective images; kept out of
    # repr: 2 × 1,000 counts made every logged decision thousands of characters long
    val_available: tuple[int, ...] | None = field(default=None, repr=False)
    val_defective: tuple[int, ...] | None = field(default=None, repr=False)
    # how the thresholds were chosen (GROUP_RULES); a decision saved before the option was pooled
    groups: str = "pooled"
    # per validation renderer family large enough to judge alone: its own accept threshold and label-shift
    # statistics (reject and OOD thresholds are this decision's), for images whose renderer family is known
    families: dict[str, Decision] | None = field(default=None, repr=False, hash=False)
    # the accept threshold's floor for images of real products (module doc); None: none
    real_accept: float | None = None
    # a family's decision under the rule "floor" (:meth:`for_family`): the pooled decision its accept threshold
    # never goes below, at validation's share and at any share label shift moves both to
    floor: Decision | None = field(default=None, repr=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("val_available", "val_defective", "class_prior"):
            d[k] = list(d[k]) if d[k] is not None else None
        if self.families is not None:
            d["families"] = {name: fam.to_dict() for name, fam in self.families.items()}
        if self.floor is not None:
            d["floor"] = self.floor.to_dict()
        else:  # only a family's decision at run time has one; a saved decision stays as it was before the field
            d.pop("floor")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown decision fields: {sorted(unknown)}")
        d = {**d, **{k: tuple(int(x) for x in d[k]) for k in ("val_available", "val_defective") if d.get(k)}}
        if d.get("class_prior"):
            d["class_prior"] = tuple(float(x) for x in d["class_prior"])
        if d.get("families") is not None:
            d["families"] = {str(name): cls.from_dict(fam) for name, fam in d["families"].items()}
        if d.get("floor") is not None:
            d["floor"] = cls.from_dict(d["floor"])
        return cls(**d)

    def for_family(self, name: str | None) -> Decision:
        """The decision for an image drawn by renderer family ``name``: that family's own accept threshold and
        label-shift statistics when validation had enough of its images, else this (pooled or worst-family) one —
        a renderer the model never saw gets the decision chosen for one. Under the rule "floor" the family's
        accept threshold is raised to this one's where it is lower, and keeps this one as its label-shift floor."""
        fam = (self.families or {}).get(name or "")
        if fam is None:
            return self
        floor = None
        if self.groups == "floor":
            floor = replace(self, families=None, floor=None)
            fam = replace(fam, accept=max(fam.accept, self.accept))
        return replace(fam, reject=min(self.reject, float(np.nextafter(fam.accept, -np.inf))), ood=self.ood,
                       target_reject=self.target_reject, ood_quantile=self.ood_quantile, real_accept=self.real_accept,
                       floor=floor)

    def accept_for(self, source: str | None) -> float:
        """The accept threshold an image of a product from ``source`` meets (:func:`is_drawn`): this decision's,
        raised to the real-product floor for a real product."""
        if self.real_accept is None or is_drawn(source):
            return self.accept
        return max(self.accept, self.real_accept)

    @property
    def adaptable(self) -> bool:
        """Whether :meth:`for_prior` can move the accept threshold (validation histograms were saved)."""
        return self.prior is not None and self.val_available is not None and self.val_defective is not None

    def for_prior(self, prior: float) -> Decision:
        """This decision at a deployment where a share ``prior`` of images is available: the accept threshold is
        the loosest histogram edge where precision, re-weighted to ``prior``, meets ``target_accept`` at that edge
        and every stricter one (never looser than the reject threshold). Reject and OOD thresholds are kept. A
        decision chosen with the family rule keeps its accept threshold as a floor: the histograms are pooled, so
        a re-choice on them could only undo the margin the worst family asked for; a batch with fewer available
        images still raises it. A family's decision under the rule "floor" stays at or above its pooled decision
        re-chosen for the same share."""
        if not self.adaptable:
            raise ValueError("this decision has no validation histograms (calibrate the model again)")
        if not 0.0 <= prior <= 1.0 or prior != prior:
            raise ValueError(f"prior must be in [0, 1], got {prior}")
        pos = np.asarray(self.val_available, np.float64)
        neg = np.asarray(self.val_defective, np.float64)
        tpr = np.cumsum(pos[::-1])[::-1] / max(pos.sum(), 1.0)  # share of available images with p ≥ edge[i]
        fpr = np.cumsum(neg[::-1])[::-1] / max(neg.sum(), 1.0)
        edges = np.linspace(0.0, 1.0, len(pos) + 1)[:-1]
        tp, fp = prior * tpr, (1.0 - prior) * fpr
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        # at this edge and every stricter one (edges no validation image reaches hold vacuously)
        ok = np.minimum.accumulate(prec[::-1])[::-1] >= self.target_accept
        bad = np.flatnonzero(~ok)
        first = int(bad[-1]) + 1 if len(bad) else 0
        accept = NEVER if first >= len(edges) else float(edges[first])
        accept = max(accept, float(np.nextafter(self.reject, np.inf)))
        if self.groups == "family":
            accept = max(accept, self.accept)
        if self.floor is not None:
            accept = max(accept, self.floor.for_prior(prior).accept)
        return replace(self, accept=accept)

    def bands(self, p_available: np.ndarray, ood: np.ndarray | None = None,
              placement: np.ndarray | None = None, renderers: Sequence[str] | None = None,
              sources: Sequence[str] | None = None) -> list[str]:
        """The band of each image; with ``placement`` (:class:`Judgements`), an image whose product was looked
        for and not found goes to a human too; with ``renderers`` (each image's renderer family, "" unknown),
        each image is accepted at :meth:`for_family`'s threshold; ``sources`` (where each image's product comes
        from, :func:`is_drawn`) tells which images are of real products, accepted no lower than ``real_accept``
        (None: all are real)."""
        p = np.asarray(p_available, np.float64)
        accept = np.full(len(p), self.accept)
        if renderers is not None and self.families:
            if len(renderers) != len(p):
                raise ValueError(f"one renderer per image: {len(renderers)} renderers for {len(p)} scores")
            own = {name: self.for_family(name).accept for name in self.families}  # the floor rule applied there
            accept = np.array([own.get(r, self.accept) for r in renderers], np.float64)
        if self.real_accept is not None:
            if sources is not None and len(sources) != len(p):
                raise ValueError(f"one product source per image: {len(sources)} sources for {len(p)} scores")
            real = np.ones(len(p), bool) if sources is None else real_mask(sources)
            accept = np.where(real, np.maximum(accept, self.real_accept), accept)
        out = np.where(p >= accept, "accept", np.where(p <= self.reject, "reject", "human")).astype(object)
        if self.ood is not None and ood is not None:
            out[np.asarray(ood, np.float64) > self.ood] = "human"
        if placement is not None:
            out[not_found(placement)] = "human"
        return [str(b) for b in out]


def decision_of(config: dict[str, Any]) -> Decision | None:
    """The decision saved in a model's config, if it has one."""
    d = config.get("decision")
    return Decision.from_dict(d) if d else None


@dataclass
class Judgements:
    """What an inspector says about a batch of images: calibrated class probabilities (N, 6), out-of-distribution
    scores (N,) and each image's band (``accept``/``human``/``reject``; two-way at P(available) 0.5 for a model
    without a fitted decision). ``placement`` (N,) is how sure the product's placement is (1 for a given mask, the
    correlation of the cutout found in the image without one, NaN when there was nothing to look for): an image
    whose product was looked for and not found goes to a human whatever the model says, by any decision — its
    verdict rests on a guessed placement, and most likely the image does not hold the product."""

    probs: np.ndarray
    ood: np.ndarray
    bands: list[str]
    placement: np.ndarray | None = None

    @classmethod
    def of(cls, probs: np.ndarray, ood: np.ndarray, decision: Decision | None,
           placement: np.ndarray | None = None, renderers: Sequence[str] | None = None,
           sources: Sequence[str] | None = None) -> Judgements:
        rule = decision or Decision(accept=0.5, reject=float(np.nextafter(0.5, -1.0)))
        return cls(probs, ood, rule.bands(probs[:, 0], ood, placement, renderers, sources), placement)

    @property
    def not_found(self) -> np.ndarray:
        """Per image: the product was looked for and not found (see the class docstring)."""
        return np.zeros(len(self.bands), bool) if self.placement is None else not_found(self.placement)

    @classmethod
    def empty(cls, n_classes: int) -> Judgements:
        return cls(np.zeros((0, n_classes), np.float32), np.zeros(0, np.float32), [])

    def counts(self) -> dict[str, int]:
        c = Counter(self.bands)
        return {k: int(c.get(k, 0)) for k in BANDS}


def not_found(placement: np.ndarray) -> np.ndarray:
    """Per image, from its placement score: the product was looked for and not found (NaN: not looked for)."""
    from adcreative.inspect.locate import FOUND

    return np.asarray(placement, np.float64) < FOUND


def accept_threshold(p: np.ndarray, positive: np.ndarray, target: float) -> float:
    """The lowest t such that precision(positive | p ≥ t') ≥ target for every observed t' ≥ t; NEVER if none."""
    p = np.asarray(p, np.float64)
    pos = np.asarray(positive, bool)
    values = np.unique(p)[::-1]  # candidate thresholds, strictest first
    if len(values) == 0:
        return NEVER
    order = np.argsort(-p, kind="stable")
    cum_pos = np.cumsum(pos[order])
    # accepted at threshold v: every p ≥ v (ties included)
    n_at = np.searchsorted(-p[order], -values, side="right")
    prec = cum_pos[n_at - 1] / n_at
    ok = np.minimum.accumulate(prec) >= target
    if not ok[0]:
        return NEVER
    return float(values[np.flatnonzero(ok)[-1]])


def reject_threshold(p: np.ndarray, negative: np.ndarray, target: float) -> float:
    """The highest t such that precision(negative | p ≤ t') ≥ target for every observed t' ≤ t; −1 if none."""
    t = accept_threshold(-np.asarray(p, np.float64), negative, target)
    return -1.0 if t == NEVER else -t


def choose_decision(p_available: np.ndarray, is_available: np.ndarray, *, ood: np.ndarray | None = None,
                    target_accept: float = 0.99, target_reject: float = TARGET_REJECT,
                    ood_quantile: float = 0.99, class_prior: Sequence[float] | None = None,
                    groups: Sequence[str] | np.ndarray | None = None, min_group: int = MIN_GROUP,
                    min_class: int = MIN_GROUP_CLASS, family_accept: bool = True, family_floor: bool = False,
                    labels: np.ndarray | None = None, real: Sequence[bool] | np.ndarray | None = None) -> Decision:
    """Thresholds from validation scores: P(available), whether each image truly is available, and (optionally)
    OOD scores of these in-distribution images, whose ``ood_quantile`` becomes the OOD threshold. With ``groups``
    (a label per row, e.g. its renderer family) each target must hold on every group large enough to count
    (:func:`group_thresholds`), not only on all rows pooled; with ``family_accept`` False only the reject target
    (rule "reject-family", or with ``family_floor`` the rule "floor": a family's own accept threshold never below
    the pooled one). With ``groups`` the decision also keeps each such group's own accept threshold and
    label-shift statistics (``families``: class shares from ``labels``, the class index per row, when given), which
    :meth:`Decision.for_family` applies to images of a known family. ``real`` (per row: the image is of a real
    product, :func:`is_drawn`) sets ``real_accept``, the accept target on those rows alone, when there are at least
    ``min_group`` of them with ``min_class`` available (NEVER when no threshold meets it: real products then always
    go to a human)."""
    for name, v in (("target_accept", target_accept), ("target_reject", target_reject),
                    ("ood_quantile", ood_quantile)):
        if not 0.0 < v <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {v}")
    if family_accept and family_floor:
        raise ValueError("family_floor applies to the pooled accept threshold: give family_accept=False with it")
    pos = np.asarray(is_available, bool)
    acc = accept_threshold(p_available, pos, target_accept)
    rej = reject_threshold(p_available, ~pos, target_reject)
    if groups is not None:
        g_acc, g_rej = group_thresholds(p_available, pos, groups, target_accept=target_accept,
                                        target_reject=target_reject, min_group=min_group, min_class=min_class)
        rej = min([rej, *g_rej.values()])
        if family_accept:
            acc = max([acc, *g_acc.values()])
    if rej >= acc:  # never both: a score meeting both targets cannot exist, so only ties land here
        rej = float(np.nextafter(acc, -np.inf))
    thr = None if ood is None or len(ood) == 0 else float(np.quantile(np.asarray(ood, np.float64), ood_quantile))
    p = np.clip(np.asarray(p_available, np.float64), 0.0, 1.0)
    families = None
    if groups is not None:
        g = np.asarray([str(x) for x in groups])
        families = {}
        for name in np.unique(g).tolist():
            m = g == name
            if name == "" or m.sum() < min_group or pos[m].sum() < min_class:
                continue
            shares = None
            if labels is not None and class_prior is not None:
                shares = np.bincount(np.asarray(labels)[m], minlength=len(class_prior)) / m.sum()
            families[name] = Decision(
                accept=accept_threshold(p[m], pos[m], target_accept), reject=rej, target_accept=target_accept,
                prior=float(pos[m].mean()), class_prior=tuple(float(x) for x in shares) if shares is not None else None,
                val_available=_histogram(p[m & pos]), val_defective=_histogram(p[m & ~pos]))
    real_acc = None
    if real is not None:
        r = np.asarray(real, bool)
        if len(r) != len(p):
            raise ValueError(f"one real flag per row: {len(r)} flags for {len(p)} scores")
        if r.sum() >= min_group and pos[r].sum() >= min_class:
            real_acc = accept_threshold(p[r], pos[r], target_accept)
    return Decision(accept=acc, reject=rej, ood=thr, target_accept=target_accept, target_reject=target_reject,
                    ood_quantile=ood_quantile, prior=float(pos.mean()) if len(pos) else None,
                    class_prior=tuple(float(x) for x in class_prior) if class_prior is not None else None,
                    val_available=_histogram(p[pos]), val_defective=_histogram(p[~pos]),
                    groups="pooled" if groups is None else
                    "family" if family_accept else "floor" if family_floor else "reject-family",
                    families=families, real_accept=real_acc)


def _histogram(p: np.ndarray) -> tuple[int, ...]:
    """Validation P(available) counts in PRIOR_BINS bins on [0, 1] (what :meth:`Decision.for_prior` reads)."""
    return tuple(int(c) for c in np.histogram(p, bins=PRIOR_BINS, range=(0.0, 1.0))[0])


def group_thresholds(p_available: np.ndarray, is_available: np.ndarray, groups: Sequence[str] | np.ndarray, *,
                     target_accept: float = 0.99, target_reject: float = TARGET_REJECT, min_group: int = MIN_GROUP,
                     min_class: int = MIN_GROUP_CLASS) -> tuple[dict[str, float], dict[str, float]]:
    """Per group, the accept and the reject threshold meeting the targets on that group's rows alone. A group
    with fewer than ``min_group`` rows is left out of both; one with fewer than ``min_class`` available images
    out of the accept thresholds (its precision of accepted images means little), fewer than ``min_class``
    defective ones out of the reject thresholds."""
    p = np.asarray(p_available, np.float64)
    pos = np.asarray(is_available, bool)
    g = np.asarray([str(x) for x in groups])
    if not len(p) == len(pos) == len(g):
        raise ValueError(f"one group per row: {len(g)} groups for {len(p)} scores and {len(pos)} labels")
    acc: dict[str, float] = {}
    rej: dict[str, float] = {}
    for name in np.unique(g).tolist():
        m = g == name
        if m.sum() < min_group:
            continue
        if pos[m].sum() >= min_class:
            acc[name] = accept_threshold(p[m], pos[m], target_accept)
        if (~pos[m]).sum() >= min_class:
            rej[name] = reject_threshold(p[m], ~pos[m], target_reject)
    return acc, rej


def adapted_decision(decision: Decision, p_available: np.ndarray, ood: np.ndarray | None = None, *,
                     pseudo: float = 8.0) -> tuple[Decision, float]:
    """``decision`` re-thresholded for the available share estimated on a batch (its out-of-distribution images
    left out of the estimate: their probabilities are not the calibrated kind), and that share. ``p_available``
    may be the whole class-probability matrix ``[N, K]``: with the validation class shares saved, the estimate
    then uses every class (:func:`estimate_class_prior`)."""
    if not decision.adaptable or decision.prior is None:
        raise ValueError("this decision has no validation histograms (calibrate the model again)")
    p = np.asarray(p_available, np.float64)
    keep = np.isfinite(p).all(axis=1) if p.ndim == 2 else np.isfinite(p)
    if ood is not None and decision.ood is not None:
        keep &= np.asarray(ood, np.float64) <= decision.ood
    if not keep.any():
        return decision, decision.prior
    if p.ndim == 2 and decision.class_prior is not None and p.shape[1] == len(decision.class_prior):
        pi = float(estimate_class_prior(p[keep], np.asarray(decision.class_prior), pseudo=pseudo)[0])
    else:
        pi = estimate_prior(p[keep, 0] if p.ndim == 2 else p[keep], decision.prior, pseudo=pseudo)
    return decision.for_prior(pi), pi


def estimate_class_prior(probs: np.ndarray, prior: np.ndarray, *, pseudo: float = 8.0, iters: int = 300,
                         tol: float = 1e-6) -> np.ndarray:
    """Class shares of an unlabelled batch whose probabilities ``probs [N, K]`` are calibrated to class shares
    ``prior`` (Saerens-EM: each image's probabilities re-weighted to the current estimate, the estimate set to
    their mean; MAP with Dirichlet pseudo-counts ``pseudo · prior``, so a small batch stays near ``prior``). A
    batch short of some defect kinds moves their probability mass where it belongs, which a two-class estimate
    cannot see."""
    P = np.clip(np.asarray(probs, np.float64), 1e-12, None)
    prior = np.asarray(prior, np.float64)
    if prior.ndim != 1 or len(prior) != P.shape[1] or (prior <= 0).any():
        raise ValueError("class prior must be positive, one value per class")
    prior = prior / prior.sum()
    pi = prior.copy()
    for _ in range(iters):
        Q = P * (pi / prior)
        Q /= Q.sum(axis=1, keepdims=True)
        new = (Q.sum(axis=0) + pseudo * prior) / (len(P) + pseudo)
        if np.abs(new - pi).max() < tol:
            return new  # type: ignore[no-any-return]
        pi = new
    return pi


def estimate_prior(p_available: np.ndarray, prior: float, *, pseudo: float = 8.0) -> float:
    """The share of available images in an unlabelled batch whose P(available) is calibrated to ``prior``:
    :func:`estimate_class_prior` with two classes (available, defective)."""
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be in (0, 1), got {prior}")
    p = np.clip(np.asarray(p_available, np.float64), 0.0, 1.0)
    return float(estimate_class_prior(np.stack([p, 1.0 - p], axis=1), np.array([prior, 1.0 - prior]),
                                      pseudo=pseudo)[0])


def precision_bound(hits: int, n: int, confidence: float = BOUND_CONFIDENCE) -> float:
    """The one-sided Clopper–Pearson lower bound on a precision observed as ``hits`` right of ``n``: the precision
    these images show at ``confidence`` (NaN when ``n`` is 0). An observed 1.000 is not a target met: 44 right of
    44 shows only 0.934 at 95 %, and showing 0.99 takes at least 299 accepted images without one wrong."""
    if not 0 <= hits <= n:
        raise ValueError(f"hits must be in [0, n], got {hits} of {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return float("nan")
    if hits == 0:
        return 0.0
    from scipy.stats import beta  # scipy comes with scikit-image; lazy, as only reports need it

    return float(beta.ppf(1.0 - confidence, hits, n - hits + 1))


def decision_metrics(bands: Sequence[str], is_available: np.ndarray) -> dict[str, Any]:
    """What the decision did on labelled images: counts per band, share sent to humans, precision of the
    automatic bands (NaN when a band is empty) with its 95 % lower bound (:func:`precision_bound`; ``*_low``),
    and the share of available images auto-accepted."""
    b = np.asarray(list(bands))
    pos = np.asarray(is_available, bool)
    n = len(b)
    acc, rej, hum = b == "accept", b == "reject", b == "human"
    counts = Counter(str(x) for x in b)
    return {"n": n, "counts": {k: int(counts.get(k, 0)) for k in BANDS},
            "human_rate": float(hum.mean()) if n else float("nan"),
            "precision_accept": float(pos[acc].mean()) if acc.any() else float("nan"),
            "precision_reject": float((~pos[rej]).mean()) if rej.any() else float("nan"),
            "precision_accept_low": precision_bound(int(pos[acc].sum()), int(acc.sum())),
            "precision_reject_low": precision_bound(int((~pos[rej]).sum()), int(rej.sum())),
            "available_auto_accepted": float(acc[pos].mean()) if pos.any() else float("nan"),
            "defective_auto_rejected": float(rej[~pos].mean()) if (~pos).any() else float("nan")}
