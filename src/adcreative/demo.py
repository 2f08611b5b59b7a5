"""``adcreative demo``: the main job end to end on embedded defaults.

Steps, each a function below that adds a section to the report:
catalogue → generate (several aspect ratios) → … → HTML report. The demo keeps its own store under
``OUT/store`` unless ``--home`` is given, so it can be re-run and inspected afterwards.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from adcreative.cli_common import console
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


def run_demo(ctx: typer.Context, *, out: Path, fast: bool = False) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = ctx.find_root()
    home = (root.obj or {}).get("home") if isinstance(root.obj, dict) else None
    store = Store(home=home or out / "store")
    state = DemoState(store=store, report=Report(out, "adcreative demo"), fast=fast,
                      run_id=f"demo-{uuid.uuid4().hex[:8]}")
    steps = [step_catalogue, step_generate]
    for step in steps:
        t = time.perf_counter()
        step(state)
        state.timings.append((step.__name__.removeprefix("step_"), time.perf_counter() - t))
        console.print(f"[green]✓[/] {step.__name__.removeprefix('step_')}  ({state.timings[-1][1]:.1f} s)")
    sec = state.report.section("Run", f"Store: {store.home.resolve()} · run id {state.run_id}")
    sec.tables.append(("Step timings", ["step", "seconds"], [[k, round(v, 2)] for k, v in state.timings]))
    return state.report.write()


def step_catalogue(state: DemoState) -> None:
    """Import the built-in sample catalogue (once per store)."""
    from adcreative.generate.catalogue import sample_catalogue

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
    """Creatives in every aspect ratio for every product, with their provenance."""
    from adcreative.generate.pipeline import build_generator, generate_and_store

    gen = build_generator("compositor")
    n = 1 if state.fast else 2
    sec = state.report.section("Generated creatives",
                               f"Compositor {gen.version}: {n} per aspect ratio ({', '.join(ASPECTS)}). "
                               "Click a creative for its provenance manifest (regenerate it with "
                               "`adcreative creatives regenerate ID`).")
    t = time.perf_counter()
    total = 0
    for p in state.products:
        cs = generate_and_store(state.store, gen, p, n=n, aspects=ASPECTS, seed=1000, run_id=state.run_id)
        total += len(cs)
        state.creatives[p.id] = cs
        sec.galleries.append((p.title, [_tile(state, c) for c in cs]))
    dt = time.perf_counter() - t
    sec.tables.append(("Throughput", ["creatives", "seconds", "creatives/s (incl. storing)"],
                       [[total, round(dt, 2), round(total / dt, 2)]]))


def _tile(state: DemoState, c: Creative, badge: str = "", tone: str = "neutral") -> Tile:
    small, full = state.report.add_image(f"creative-{c.id}", state.store.creative_image(c))
    return Tile(small, full, f"{c.aspect} · seed {c.seed} · {c.id}", badge, tone, c.manifest())
