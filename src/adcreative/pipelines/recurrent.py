"""Recurrent generation: generate → inspect → regenerate until K creatives are judged available
(P(available) ≥ threshold) or the attempt budget is spent. Every attempt is stored with its verdict,
so rejected creatives stay auditable (and can be labelled to retrain RFNet)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adcreative.core.errors import InputError
from adcreative.core.types import ASPECTS, CLASSES, Creative, Product, Verdict


class Scorer(Protocol):
    """RFNet (torch) or OnnxInspector: class probabilities for items."""

    def predict_proba(self, items: Sequence[Any], batch_size: int = 32) -> np.ndarray: ...


@dataclass
class Attempt:
    creative: Creative
    verdict: Verdict
    accepted: bool
    seconds: float  # generation + inspection time attributed to this attempt

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

    @property
    def delivered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.accepted][: self.k]

    @property
    def surplus(self) -> list[Attempt]:
        """Available attempts beyond K (none with this loop; kept for results built elsewhere)."""
        return [a for a in self.attempts if a.accepted][self.k:]

    @property
    def rejected(self) -> list[Attempt]:
        return [a for a in self.attempts if not a.accepted]

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
                "run_id": self.run_id}


def recurrent_generate(
    store: Any,
    generator: Any,
    inspector: Scorer,
    product: Product,
    *,
    k: int,
    max_attempts: int,
    aspects: Sequence[str] = ("1:1",),
    seed: int = 0,
    threshold: float = 0.5,
    batch: int = 4,
    model_id: str = "rfnet",
    run_id: str | None = None,
) -> RecurrentResult:
    """Generate for ``product`` until ``k`` attempts have P(available) ≥ ``threshold`` or ``max_attempts``
    were made. Attempt ``i`` uses seed ``seed + i`` and aspect ``aspects[i % len(aspects)]``; attempts are
    generated and scored ``batch`` at a time (the inspector is faster on batches) and all are stored."""
    from adcreative.generate.provenance import to_creative

    if k < 1:
        raise InputError(f"--until-available must be at least 1, got {k}")
    if max_attempts < k:
        raise InputError(f"--max-attempts ({max_attempts}) must be at least --until-available ({k})")
    if not aspects:
        raise InputError("no aspect ratio given")
    bad = [a for a in aspects if a not in ASPECTS]
    if bad:
        raise InputError(f"unknown aspect ratio {bad[0]!r}; choose from {', '.join(ASPECTS)}")
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    res = RecurrentResult(product.id, k, max_attempts, threshold, run_id=run_id or f"rec-{uuid.uuid4().hex[:10]}")
    t_start = time.perf_counter()
    i = 0
    while res.n_available < k and i < max_attempts:
        t0 = time.perf_counter()
        # never more than the budget, nor more than the images still missing: no attempt is wasted
        # on a surplus, so attempts per available image stays an unbiased cost figure
        n = min(batch, max_attempts - i, k - res.n_available)
        gis = []
        for j in range(i, i + n):
            gis.append(generator(product, seed=seed + j, aspect=aspects[j % len(aspects)], n=1)[0])
        creatives = []
        items = []
        blobs = []
        for gi in gis:
            c, data = to_creative(gi, product, run_id=res.run_id)
            creatives.append(c)
            blobs.append(data)
            items.append(creative_item_from(gi, product, c))
        probs = inspector.predict_proba(items)
        dt = (time.perf_counter() - t0) / n
        for c, data, p in zip(creatives, blobs, probs, strict=True):
            store.add_creative(c, data=data)
            v = Verdict(c.id, model_id, {cls: float(x) for cls, x in zip(CLASSES, p, strict=True)})
            store.add_verdicts([v])
            res.attempts.append(Attempt(c, v, bool(p[0] >= threshold), dt))
        i += n
    res.seconds = time.perf_counter() - t_start
    return res


def creative_item_from(gi: Any, product: Product, creative: Creative) -> Any:
    """The inspection item of a freshly generated image: its exact placement mask is known."""
    from adcreative.inspect.preprocess import InspectItem

    return InspectItem(image=gi.image.convert("RGB"), title=product.title, mask=gi.mask, product=product.image,
                       product_id=product.id, id=creative.id, source=f"creative {creative.id}")


def format_results(results: Sequence[RecurrentResult]) -> str:
    """A table per product plus the totals: available rate, attempts and seconds per available image."""
    head = f"{'product':<24}{'delivered':>10}{'attempts':>10}{'avail rate':>12}{'att/avail':>11}{'s/avail':>9}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.product_id:<24}{len(r.delivered):>6}/{r.k:<3}{len(r.attempts):>10}{r.available_rate:>12.3f}"
                     f"{r.attempts_per_available:>11.2f}{r.seconds_per_available:>9.2f}")
    n_att = sum(len(r.attempts) for r in results)
    n_av = sum(r.n_available for r in results)
    secs = sum(r.seconds for r in results)
    if results:
        lines.append("-" * len(head))
        lines.append(f"{'total':<24}{sum(len(r.delivered) for r in results):>6}/{sum(r.k for r in results):<3}"
                     f"{n_att:>10}{(n_av / n_att if n_att else 0):>12.3f}"
                     f"{(n_att / n_av if n_av else float('inf')):>11.2f}{(secs / n_av if n_av else float('inf')):>9.2f}")
    return "\n".join(lines)


def format_attempts(result: RecurrentResult) -> str:
    """One line per attempt: creative, product, aspect, seed, P(available) and what became of it."""
    lines = []
    for a in result.attempts:
        status = "delivered" if a in result.delivered else "surplus" if a.accepted else f"rejected ({a.defect})"
        lines.append(f"{a.creative.id}\t{result.product_id}\t{a.creative.aspect}\tseed={a.creative.seed}\t"
                     f"p_avail={a.p_available:.3f}\t{status}")
    return "\n".join(lines)


def recurrent_for_products(store: Any, generator: Any, product_ids: Sequence[str], *, k: int, max_attempts: int,
                           aspects: Sequence[str] = ("1:1",), seed: int = 0, threshold: float = 0.5,
                           inspector: str | Path | None = None,
                           on_result: Callable[[RecurrentResult], None] | None = None) -> list[RecurrentResult]:
    """Recurrent generation for each product with the inspector at ``inspector`` (None: the shipped RFNet)."""
    from adcreative.inspect.base import load_scorer

    scorer, mid = load_scorer(inspector, onnx=False)
    results = []
    for pid in product_ids:
        r = recurrent_generate(store, generator, scorer, store.get_product(pid), k=k, max_attempts=max_attempts,
                               aspects=aspects, seed=seed, threshold=threshold, model_id=mid)
        if on_result is not None:
            on_result(r)
        results.append(r)
    return results
