"""Recurrent generation: generate → inspect → regenerate until K creatives are auto-accepted or the attempt budget
is spent. The inspector's three-way decision bands each attempt: *accept* counts as available, *human* is stored
and queued for a reviewer (the console shows that band first), *reject* is regenerated. Every attempt is stored
with its verdict and band, so rejected creatives stay auditable (and can be labelled to retrain RFNet).

Runs are resumable. Attempt ``i`` of a product is seed ``seed + i`` with aspect ``aspects[i % len]``, stored
under the key ``{run_id}/{product_id}/{seed + i}`` together with its verdict in one transaction. A rerun of
the same run (same ``run_id``; by default it is derived from the generator, its config, the aspects, the
seed and the inspector, so rerunning the same command is the same run) takes the attempts already stored
instead of making them again, and continues where the crash stopped it: the result is the one an
uninterrupted run would have given, and no seed is generated twice."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.limits import INT_MAX
from adcreative.core.types import ASPECTS, BANDS, CLASSES, Creative, Product, Verdict

if TYPE_CHECKING:
    from adcreative.core.store import Store


class Scorer(Protocol):
    """RFNet (torch) or OnnxInspector: calibrated probabilities, OOD scores and bands for items."""

    def judge(self, items: Sequence[Any], batch_size: int = 32) -> Any: ...


@dataclass
class Attempt:
    creative: Creative
    verdict: Verdict
    accepted: bool
    seconds: float  # generation + inspection time attributed to this attempt (0 when taken from the store)
    reused: bool = False  # stored by an earlier (interrupted) invocation of the same run

    @property
    def band(self) -> str:
        return self.verdict.band or ("accept" if self.accepted else "reject")

    @property
    def p_available(self) -> float:
        return self.verdict.p_available

    @property
    def defect(self) -> str:
        """The most likely defect class (what a reviewer would be told when it is rejected)."""
        probs = {k: v for k, v in self.verdict.probs.items() if k != "available"}
        return max(probs, key=lambda k: probs[k])


@dataclass
class RecurrentResult:
    product_id: str
    k: int
    max_attempts: int
    threshold: float
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str = ""
    prior: float | None = None   # with adapt_prior: the product's estimated available share, last batch
    # the auditor's P(unsuitable) for the product's cutout alone (inspect.sources), and whether that flags it: its
    # creatives' unsuitable verdicts are then about the catalogue image, not the scene (None: not checked)
    source_unsuitable: float | None = None
    source_flagged: bool = False

    @property
    def delivered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.accepted][: self.k]

    @property
    def surplus(self) -> list[Attempt]:
        """Available attempts beyond K (none with this loop; kept for results built elsewhere)."""
        return [a for a in self.attempts if a.accepted][self.k:]

    @property
    def rejected(self) -> list[Attempt]:
        """Attempts not auto-accepted (sent to a human or auto-rejected)."""
        return [a for a in self.attempts if not a.accepted]

    @property
    def reused(self) -> int:
        """Attempts an earlier invocation of this run had stored (taken, not made again)."""
        return sum(a.reused for a in self.attempts)

    @property
    def to_human(self) -> list[Attempt]:
        """Attempts the decision sent to a reviewer (stored; first in the console's queue)."""
        return [a for a in self.attempts if a.band == "human"]

    def band_counts(self) -> dict[str, int]:
        return {b: sum(a.band == b for a in self.attempts) for b in BANDS}

    @property
    def n_available(self) -> int:
        return sum(a.accepted for a in self.attempts)

    @property
    def complete(self) -> bool:
        return self.n_available >= self.k

    @property
    def available_rate(self) -> float:
        return self.n_available / len(self.attempts) if self.attempts else 0.0

    @property
    def attempts_per_available(self) -> float:
        return len(self.attempts) / self.n_available if self.n_available else float("inf")

    @property
    def seconds_per_available(self) -> float:
        return self.seconds / self.n_available if self.n_available else float("inf")

    def summary(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "k": self.k, "delivered": len(self.delivered),
                "attempts": len(self.attempts), "available_rate": round(self.available_rate, 4),
                "attempts_per_available": round(self.attempts_per_available, 3),
                "seconds_per_available": round(self.seconds_per_available, 3), "complete": self.complete,
                "bands": self.band_counts(), "run_id": self.run_id, "reused": self.reused,
                "threshold": round(self.threshold, 4),
                "prior": round(self.prior, 4) if self.prior is not None else None,
                "source_unsuitable": round(self.source_unsuitable, 4) if self.source_unsuitable is not None else None,
                "source_flagged": self.source_flagged}


def default_run_id(generator: Any, aspects: Sequence[str], seed: int, model_id: str) -> str:
    """The run id of a recurrent run when none is given: what defines its attempts (generator, version and
    config, aspects, first seed, inspector), hashed. K, the budget and the threshold only say when to stop,
    so a rerun with a larger budget continues the same run."""
    ident = {"generator": generator.name, "version": generator.version, "config": generator.config,
             "aspects": list(aspects), "seed": seed, "model": model_id}
    return "rec-" + hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]


def attempt_key(run_id: str, product_id: str, seed: int) -> str:
    """The store's key of one attempt (unique): run ids have no "/", so no two (run, product) pairs share one."""
    return f"{run_id}/{product_id}/{seed}"


def check_run_id(run_id: str) -> None:
    from adcreative.core.limits import RUN_ID_MAX, check_text

    check_text("--run-id", run_id, RUN_ID_MAX)
    if "/" in run_id:
        raise InputError(f"--run-id must not contain '/', got {run_id!r}")


def recurrent_generate(
    store: Store,
    generator: Any,
    inspector: Scorer,
    product: Product,
    *,
    k: int,
    max_attempts: int,
    aspects: Sequence[str] = ("1:1",),
    seed: int = 0,
    threshold: float | None = None,
    batch: int = 4,
    model_id: str = "rfnet",
    run_id: str | None = None,
    adapt_prior: bool = False,
    check_source: bool = True,
) -> RecurrentResult:
    """Generate for ``product`` until ``k`` attempts are auto-accepted or ``max_attempts`` were made. Attempt
    ``i`` uses seed ``seed + i`` and aspect ``aspects[i % len(aspects)]``; attempts are generated and scored
    ``batch`` at a time (the inspector is faster on batches) and all are stored with their band. ``threshold``
    None uses the inspector's three-way decision; a number replaces it by a two-way one (accept when
    P(available) ≥ threshold, no human band). With ``adapt_prior`` the accept threshold follows the share of
    available images estimated on the product's attempts so far (``inspect.decision.adapted_decision``: label
    shift, accept side only); each batch is banded with the estimate that includes it. Attempts of ``run_id``
    already in the store are taken, not made again (see the module docstring); ``run_id`` None →
    :func:`default_run_id`. With ``check_source`` the product's cutout is judged alone first
    (:func:`adcreative.inspect.sources.judge_sources`) and the result says whether the auditor already calls it
    unsuitable, in which case regenerating cannot help."""
    from adcreative.generate.provenance import MAX_PER_CALL, to_creative

    if k < 1:
        raise InputError(f"--until-available must be at least 1, got {k}")
    if max_attempts < k:
        raise InputError(f"--max-attempts ({max_attempts}) must be at least --until-available ({k})")
    if max_attempts > MAX_PER_CALL:
        raise InputError(f"--max-attempts is at most {MAX_PER_CALL} per product, got {max_attempts}")
    if not 0 <= seed <= INT_MAX - (max_attempts - 1):
        # attempt i uses seed + i: every one must fit the store's creative seed column
        raise InputError(f"--seed: the attempts' seeds {seed}…{seed + max_attempts - 1} must lie in [0, {INT_MAX}]")
    if not aspects:
        raise InputError("no aspect ratio given")
    bad = [a for a in aspects if a not in ASPECTS]
    if bad:
        raise InputError(f"unknown aspect ratio {bad[0]!r}; choose from {', '.join(ASPECTS)}")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    if run_id is not None:
        check_run_id(run_id)
    decision = getattr(inspector, "decision", None)
    from adcreative.inspect.preprocess import catalogue_source, generator_family

    if decision is not None:  # the generator's renderer family: its own accept threshold when validation knew it
        decision = decision.for_family(generator_family(getattr(generator, "name", "")))
    source = catalogue_source(product)  # a real product meets the decision's real floor too
    shown = threshold if threshold is not None else decision.accept_for(source) if decision is not None else 0.5
    if adapt_prior and (threshold is not None or decision is None or not decision.adaptable):
        raise InputError("--adapt-prior needs the inspector's three-way decision with its validation histograms "
                         "(no --threshold; a model calibrated by this version of `inspect calibrate`)")
    seen_p: list[list[float]] = []    # this product's class probabilities and OOD scores so far (adapt_prior)
    seen_ood: list[float] = []
    res = RecurrentResult(product.id, k, max_attempts, shown,
                          run_id=run_id or default_run_id(generator, aspects, seed, model_id))
    if check_source:  # one judgement of the cutout alone: says when regenerating cannot help (inspect.sources)
        from adcreative.inspect.sources import judge_sources

        src = judge_sources(inspector, [product])[0]
        res.source_unsuitable, res.source_flagged = src.probs["unsuitable"], src.flagged
    stored = _stored_attempts(store, res.run_id, product.id)
    t_start = time.perf_counter()
    i = 0
    while res.n_available < k and i < max_attempts:
        if seed + i in stored:
            res.attempts.append(_resume(store, inspector, product, stored[seed + i], aspects[i % len(aspects)],
                                        model_id, threshold))
            seen_p.append([res.attempts[-1].verdict.probs.get(c, 0.0) for c in CLASSES])
            seen_ood.append(res.attempts[-1].verdict.ood if res.attempts[-1].verdict.ood is not None else 0.0)
            i += 1
            continue
        t0 = time.perf_counter()
        # never more than the budget, nor more than the images still missing: no attempt is wasted
        # on a surplus, so attempts per available image stays an unbiased cost figure; and never past
        # an attempt already stored
        n = min(batch, max_attempts - i, k - res.n_available)
        n = next((j for j in range(n) if seed + i + j in stored), n)
        gis = [generator(product, seed=seed + j, aspect=aspects[j % len(aspects)], n=1)[0] for j in range(i, i + n)]
        made = [to_creative(gi, product, run_id=res.run_id, attempt_key=attempt_key(res.run_id, product.id, gi.seed))
                for gi in gis]
        judged = inspector.judge([creative_item_from(gi, product, c) for gi, (c, _, _) in zip(gis, made, strict=True)])
        dt = (time.perf_counter() - t0) / n
        if adapt_prior and decision is not None:  # (checked above: adapt_prior implies a decision)
            from adcreative.inspect.decision import adapted_decision

            seen_p.extend(np.asarray(judged.probs, np.float64).tolist())
            seen_ood.extend(float(x) for x in judged.ood)
            adapted, res.prior = adapted_decision(decision, np.asarray(seen_p), np.asarray(seen_ood))
            bands = adapted.bands(judged.probs[:, 0], judged.ood, judged.placement, sources=[source] * len(judged.bands))
            res.threshold = adapted.accept_for(source)
        else:
            bands = _bands(judged, threshold)
        for (c, data, mask), p, ood, band in zip(made, judged.probs, judged.ood, bands, strict=True):
            v = Verdict(c.id, model_id, {cls: float(x) for cls, x in zip(CLASSES, p, strict=True)}, band=band,
                        ood=float(ood))
            res.attempts.append(_store_attempt(store, c, data, mask, v, dt))
        i += n
    res.seconds = time.perf_counter() - t_start
    return res


def _stored_attempts(store: Store, run_id: str, product_id: str) -> dict[int, Creative]:
    """The attempts of this run and product already in the store, by seed."""
    return {c.seed: c for c in store.creatives(product_id=product_id, run_id=run_id)
            if c.attempt_key == attempt_key(run_id, product_id, c.seed)}


def _bands(judged: Any, threshold: float | None) -> list[str]:
    """The inspector's three-way bands, or a two-way accept/reject at ``threshold`` when one is given."""
    if threshold is None:
        return list(judged.bands)
    return ["accept" if p[0] >= threshold else "reject" for p in judged.probs]


def _store_attempt(store: Store, c: Creative, data: bytes, mask: bytes, v: Verdict, seconds: float) -> Attempt:
    """Commit the creative with its verdict (one transaction). Another writer that stored this attempt
    first wins: its creative and verdict are taken instead."""
    from adcreative.core.store import AttemptExists

    try:
        store.add_creative(c, data=data, mask=mask, verdict=v)
    except AttemptExists:
        assert c.attempt_key is not None
        other = store.creative_by_attempt(c.attempt_key)
        ov = store.latest_verdict(other.id) if other is not None else None
        if other is None or ov is None:
            raise
        return Attempt(other, ov, ov.band == "accept", 0.0, reused=True)
    return Attempt(c, v, v.band == "accept", seconds)


def _resume(store: Store, inspector: Scorer, product: Product, c: Creative, aspect: str, model_id: str,
            threshold: float | None) -> Attempt:
    """A stored attempt, taken as it is; scored now only when it has no verdict from this inspector (a store
    written before creatives and verdicts were committed together, or another ``--inspector``)."""
    if c.aspect != aspect:
        raise InputError(f"run {c.run_id}: the attempt with seed {c.seed} was made at {c.aspect}, this run asks "
                         f"for {aspect}; pass the run's own options or another --run-id")
    v = store.latest_verdict(c.id)
    if v is None or v.model_id != model_id or v.band is None:
        from adcreative.inspect.data import creative_item

        judged = inspector.judge([creative_item(store, c, product)])
        v = Verdict(c.id, model_id, {cls: float(x) for cls, x in zip(CLASSES, judged.probs[0], strict=True)},
                    band=_bands(judged, threshold)[0], ood=float(judged.ood[0]))
        store.add_verdicts([v])
    accepted = v.p_available >= threshold if threshold is not None else v.band == "accept"
    return Attempt(c, v, accepted, 0.0, reused=True)


def creative_item_from(gi: Any, product: Product, creative: Creative) -> Any:
    """The inspection item of a freshly generated image: its exact placement mask is known."""
    from adcreative.catalogue.sizes import real_height_cm
    from adcreative.inspect.preprocess import InspectItem, catalogue_source, generator_family

    return InspectItem(image=gi.image.convert("RGB"), title=product.title, mask=gi.mask, product=product.image,
                       product_id=product.id, id=creative.id, source=f"creative {creative.id}",
                       height_cm=real_height_cm(product), renderer=generator_family(creative.generator),
                       product_source=catalogue_source(product))


def format_results(results: Sequence[RecurrentResult]) -> str:
    """A table per product plus the totals: available rate, attempts and seconds per available image."""
    head = (f"{'product':<24}{'delivered':>10}{'attempts':>10}{'human':>7}{'reject':>8}{'avail rate':>12}"
            f"{'att/avail':>11}{'s/avail':>9}")
    lines = [head, "-" * len(head)]
    for r in results:
        b = r.band_counts()
        lines.append(f"{r.product_id:<24}{len(r.delivered):>6}/{r.k:<3}{len(r.attempts):>10}{b['human']:>7}"
                     f"{b['reject']:>8}{r.available_rate:>12.3f}"
                     f"{r.attempts_per_available:>11.2f}{r.seconds_per_available:>9.2f}")
    n_att = sum(len(r.attempts) for r in results)
    n_av = sum(r.n_available for r in results)
    secs = sum(r.seconds for r in results)
    if results:
        lines.append("-" * len(head))
        n_hum = sum(r.band_counts()["human"] for r in results)
        n_rej = sum(r.band_counts()["reject"] for r in results)
        lines.append(f"{'total':<24}{sum(len(r.delivered) for r in results):>6}/{sum(r.k for r in results):<3}"
                     f"{n_att:>10}{n_hum:>7}{n_rej:>8}{(n_av / n_att if n_att else 0):>12.3f}"
                     f"{(n_att / n_av if n_av else float('inf')):>11.2f}{(secs / n_av if n_av else float('inf')):>9.2f}")
    for r in results:
        if r.source_flagged:
            lines.append(f"note: {r.product_id}: the auditor already calls its cutout alone unsuitable (P = "
                         f"{r.source_unsuitable:.2f}); its creatives' unsuitable verdicts are about the catalogue "
                         "image, so check that image rather than regenerate (adcreative inspect sources)")
    return "\n".join(lines)


def format_attempts(result: RecurrentResult) -> str:
    """One line per attempt: creative, product, aspect, seed, P(available) and what became of it."""
    lines = []
    for a in result.attempts:
        status = ("delivered" if a in result.delivered else "surplus" if a.accepted
                  else f"to a human ({a.defect}?)" if a.band == "human" else f"rejected ({a.defect})")
        lines.append(f"{a.creative.id}\t{result.product_id}\t{a.creative.aspect}\tseed={a.creative.seed}\t"
                     f"p_avail={a.p_available:.3f}\t{status}{' (stored earlier)' if a.reused else ''}")
    return "\n".join(lines)


def recurrent_for_products(store: Store, generator: Any, product_ids: Sequence[str], *, k: int, max_attempts: int,
                           aspects: Sequence[str] = ("1:1",), seed: int = 0, threshold: float | None = None,
                           inspector: str | Path | None = None, run_id: str | None = None,
                           on_result: Callable[[RecurrentResult], None] | None = None,
                           adapt_prior: bool = False) -> list[RecurrentResult]:
    """Recurrent generation for each product with the inspector at ``inspector`` (None: the shipped RFNet),
    as one run (``run_id``, default :func:`default_run_id`): rerunning it resumes it."""
    from adcreative.inspect.base import load_scorer

    if run_id is not None:
        check_run_id(run_id)  # before the model is loaded
    scorer, mid = load_scorer(inspector, onnx=False)
    run_id = run_id or default_run_id(generator, aspects, seed, mid)
    results = []
    for pid in product_ids:
        r = recurrent_generate(store, generator, scorer, store.get_product(pid), k=k, max_attempts=max_attempts,
                               aspects=aspects, seed=seed, threshold=threshold, model_id=mid, run_id=run_id,
                               adapt_prior=adapt_prior)
        if on_result is not None:
            on_result(r)
        results.append(r)
    return results
