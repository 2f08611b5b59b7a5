"""``adcreative demo``: the main job end to end on embedded defaults.

Steps, each a function below that adds a section to the report:
catalogue → generate (several aspect ratios) → … → HTML report. The demo keeps its own store under
``OUT/store`` unless ``--home`` is given, so it can be re-run and inspected afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adcreative.core.store import Store
from adcreative.core.types import Creative, Product
from adcreative.report.html import Report, Tile

ASPECTS = ["1:1", "4:5", "16:9", "9:16"]


@dataclass
class DemoState:
    store: Store
    report: Report
    fast: bool
    run_id: str
    products: list[Product] = field(default_factory=list)
    creatives: dict[str, list[Creative]] = field(default_factory=dict)  # product id → creatives shown
    timings: list[tuple[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def run_demo(*, out: Path, home: Path | None = None, fast: bool = False,
             log: Callable[[str], None] = print) -> Path:
    """Run every step into ``out`` (the store under ``out/store`` unless ``home``); returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(home=home or out / "store")
    state = DemoState(store=store, report=Report(out, "adcreative demo"), fast=fast,
                      run_id=f"demo-{uuid.uuid4().hex[:8]}")
    steps = [step_catalogue, step_generate, step_represent, step_select, step_explain]
    for step in steps:
        t = time.perf_counter()
        step(state)
        state.timings.append((step.__name__.removeprefix("step_"), time.perf_counter() - t))
        log(f"[green]✓[/] {step.__name__.removeprefix('step_')}  ({state.timings[-1][1]:.1f} s)")
    sec = state.report.section("Run", f"Store: {store.home.resolve()} · run id {state.run_id}")
    sec.tables.append(("Step timings", ["step", "seconds"], [[k, round(v, 2)] for k, v in state.timings]))
    return state.report.write()


def step_catalogue(state: DemoState) -> None:
    """Import the built-in sample catalogue (once per store)."""
    from adcreative.catalogue.sample import sample_catalogue

    have = set(state.store.product_ids())
    products = sample_catalogue()
    new = [p for p in products if p.id not in have]
    if new:
        state.store.add_products(new)
    state.products = [state.store.get_product(p.id) for p in products]
    if state.fast:
        state.products = state.products[:3]
    sec = state.report.section("Catalogue", f"{len(state.products)} products across "
                                            f"{len({p.category for p in state.products})} categories.")
    tiles = []
    for p in state.products:
        small, full = state.report.add_image(f"product-{p.id}", p.image)
        tiles.append(Tile(small, full, f"{p.title}", p.category, "neutral",
                          {"id": p.id, "title": p.title, "category": p.category, "copy": p.copy, "price": p.price,
                           **p.attrs}))
    sec.galleries.append(("Products", tiles))


def step_generate(state: DemoState) -> None:
    """Recurrent generation: the compositor generates, RFNet judges, until K available per product."""
    from adcreative.generate.provenance import build_generator
    from adcreative.inspect.base import load_scorer
    from adcreative.pipelines.recurrent import recurrent_generate

    gen = build_generator("compositor")
    scorer, mid = load_scorer()
    k = 2 if state.fast else 4
    budget = 6 * k
    sec = state.report.section(
        "Recurrent generation",
        f"Compositor {gen.version} generates, RFNet ({mid}) judges each attempt; regeneration stops at K = {k} "
        f"available creatives per product or after {budget} attempts. Aspect ratios cycle through "
        f"{', '.join(ASPECTS)}. Every attempt is stored with its verdict; click a creative for its provenance "
        "(regenerate it with `adcreative creatives regenerate ID`).")
    rows = []
    n_att = n_av = 0
    secs = 0.0
    for p in state.products:
        r = recurrent_generate(state.store, gen, scorer, p, k=k, max_attempts=budget, aspects=ASPECTS, seed=1000,
                               model_id=mid, run_id=state.run_id)
        state.creatives[p.id] = [a.creative for a in r.delivered]
        state.extra.setdefault("p_available", {}).update({a.creative.id: a.p_available for a in r.attempts})
        tiles = [_tile(state, a.creative, f"available · P={a.p_available:.2f}", "ok") for a in r.delivered]
        tiles += [_tile(state, a.creative, f"rejected: {a.defect.replace('_', ' ')} · P(avail)={a.p_available:.2f}",
                        "bad") for a in r.rejected]
        sec.galleries.append((f"{p.title} — {len(r.delivered)}/{k} delivered in {len(r.attempts)} attempts", tiles))
        rows.append([p.id, f"{len(r.delivered)}/{k}", len(r.attempts), round(r.available_rate, 3),
                     round(r.attempts_per_available, 2), round(r.seconds_per_available, 2)])
        n_att += len(r.attempts)
        n_av += r.n_available
        secs += r.seconds
    rows.append(["total", f"{sum(len(v) for v in state.creatives.values())}/{k * len(state.products)}", n_att,
                 round(n_av / max(1, n_att), 3), round(n_att / max(1, n_av), 2), round(secs / max(1, n_av), 2)])
    sec.tables.insert(0, ("Available rate, attempts and seconds per available image",
                          ["product", "delivered", "attempts", "available rate", "attempts / available",
                           "seconds / available"], rows))


def step_represent(state: DemoState) -> None:
    """Explicit features of the delivered creatives (colours, product area, contrast, OCR'd copy, promo)."""
    from adcreative.represent.features import features_for_creatives

    cs = [c for v in state.creatives.values() for c in v]
    feats = features_for_creatives(state.store, cs, show_progress=True)
    state.extra["features"] = feats
    sec = state.report.section("Creative features", "Explicit features of every delivered creative, cached in "
                                                    "the store (`adcreative represent features`).")
    rows = []
    for c in cs:
        f = feats[c.id]
        promo = [k.removeprefix("has_").replace("_", " ") for k in ("has_sale", "has_new", "has_free_shipping",
                                                                    "has_limited", "has_bundle") if f.get(k)]
        rows.append([c.id, c.product_id, c.aspect, f"{100 * float(f.get('product_area', 0)):.0f}%",
                     round(float(f.get("contrast_de", 0)), 1), int(f.get("n_words", 0)),
                     ", ".join(promo) or "-", "yes" if f.get("has_price") else "no",
                     round(float(f.get("colorfulness", 0)), 1), round(float(f.get("sharpness", 0)), 0),
                     str(f.get("text", ""))[:60]])
    sec.tables.append(("Features", ["creative", "product", "aspect", "product area", "contrast ΔE", "words",
                                    "promo", "price", "colourfulness", "sharpness", "copy read by OCR"], rows))


def step_select(state: DemoState) -> None:
    """A simulated campaign over the delivered creatives: our selector vs uniform random and the best fixed."""
    from adcreative.generate.provenance import placement_mask
    from adcreative.select.simulator import demo_campaign

    cs = [c for v in state.creatives.values() for c in v]
    images = [state.store.creative_image(c) for c in cs]
    n = 4000 if state.fast else 20000
    res, png = demo_campaign(images, state.report.out / "images", n_impressions=n, seed=0,
                             masks=[placement_mask(state.store, c) for c in cs])
    sec = state.report.section(
        "Simulated campaign",
        f"A synthetic market (users with latent tastes, a hidden click model over the creatives' visual "
        f"features) shown {n} impressions; every policy sees the same users and the same click draws.")
    sec.tables.append(("Cumulative CTR", ["policy", "clicks", "CTR", "vs oracle", "vs uniform random"],
                       [[r["policy"], r["clicks"], round(r["ctr"], 4), f"{r['vs_oracle']:.1%}",
                         f"{r['vs_uniform']:.2f}×"] for r in res.table()]))
    sec.images.append(("Cumulative CTR per policy", f"images/{png.name}"))
    state.extra["campaign"] = res


def step_explain(state: DemoState) -> None:
    """Why one delivered creative differs from another, grounded in the measured features."""
    from adcreative.explain.pairwise import explain_pair

    feats = state.extra.get("features", {})
    pav = state.extra.get("p_available", {})
    sec = state.report.section("Explanations", "For each product, its two most auditor-confident creatives "
                                               "compared on measured features (differences ranked by how "
                                               "unusual they are across all delivered creatives).")
    ref = list(feats.values())
    tiles = []
    for pid, cs in state.creatives.items():
        if len(cs) < 2:
            continue
        a, b = sorted(cs, key=lambda c: -pav.get(c.id, 0.0))[:2]
        ex = explain_pair(feats[a.id], feats[b.id], id_a=a.id, id_b=b.id, reference=ref)
        tiles.append([pid, a.id, b.id, ex.text])
    sec.tables.append(("A vs B", ["product", "A", "B", "explanation"], tiles))


def _tile(state: DemoState, c: Creative, badge: str = "", tone: str = "neutral") -> Tile:
    small, full = state.report.add_image(f"creative-{c.id}", state.store.creative_image(c))
    return Tile(small, full, f"{c.aspect} · seed {c.seed} · {c.id}", badge, tone, c.manifest())
