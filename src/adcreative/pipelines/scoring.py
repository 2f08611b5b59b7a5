"""Batch scoring: every stored creative without a verdict (or all, with ``rescore``) judged by an inspector
in batches, a verdict written per creative with its band of the three-way decision (accept / human / reject)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from adcreative.core.errors import InputError
from adcreative.core.types import CLASSES, Product, Verdict

if TYPE_CHECKING:
    from adcreative.core.store import Store


def score_store(store: Store, *, model: str | Path | None = None, product: str | None = None,
                run_id: str | None = None, rescore: bool = False, batch_size: int = 64, onnx: bool = False,
                progress: bool = True) -> tuple[str, Counter[str], Counter[str]]:
    """Score the selected creatives; returns the model id the verdicts were written under, the count of
    verdicts per predicted class and per band (both empty when there was nothing to score)."""
    from tqdm.auto import tqdm

    from adcreative.inspect.base import load_scorer
    from adcreative.inspect.data import creative_item

    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if product is not None:
        store.get_product(product)  # an unknown id is an InputError, not "nothing to score"
    creatives = store.creatives(product_id=product, run_id=run_id)
    if run_id is not None and not creatives and not store.creatives(run_id=run_id):
        raise InputError(f"no creatives of generation run {run_id!r} in the store (a run's id is printed by "
                         "'generate --until-available' and in 'creatives show')")
    if not rescore:
        judged = store.latest_verdicts([c.id for c in creatives])
        creatives = [c for c in creatives if c.id not in judged]
    counts: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    if not creatives:
        return "", counts, bands
    scorer, mid = load_scorer(model, onnx)
    products: dict[str, Product] = {}
    with tqdm(total=len(creatives), desc="inspect", unit="img", disable=not progress) as bar:
        for i in range(0, len(creatives), batch_size):
            chunk = creatives[i:i + batch_size]
            items = []
            for c in chunk:
                if c.product_id not in products:
                    products[c.product_id] = store.get_product(c.product_id)
                items.append(creative_item(store, c, products[c.product_id]))
            j = scorer.judge(items, batch_size=batch_size)
            verdicts = [Verdict(c.id, mid, {k: float(v) for k, v in zip(CLASSES, p, strict=True)}, band=b,
                                ood=float(o)) for c, p, o, b in zip(chunk, j.probs, j.ood, j.bands, strict=True)]
            store.add_verdicts(verdicts)
            counts.update(v.label for v in verdicts)
            bands.update(j.bands)
            bar.update(len(chunk))
    return mid, counts, bands
