"""``adcreative demo``: the main job end to end on embedded defaults.

Steps, each a function below that adds a section to the report:
catalogue → generate (several aspect ratios) → … → HTML report. The demo keeps its own store under
``OUT/store`` unless ``--home`` is given, so it can be re-run and inspected afterwards.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from adcreative.core.imageio import check_folder_path
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
    check_folder_path(out, what=f"the demo report into {out}")  # a file there: one line, not mkdir's error
    out.mkdir(parents=True, exist_ok=True)
    store = Store(home=home or out / "store")
    state = DemoState(store=store, report=Report(out, "adcreative demo"), fast=fast,
                      run_id=f"demo-{uuid.uuid4().hex[:8]}")
    steps = [step_catalogue, step_generate, step_represent, step_select, step_explain]
    for step in steps:
        t = time.perf_counter()
        step(state)
        state.timings.append((step.__name__.removeprefix("step_"), time.perf_counter() - t))
        log(f"✓ {step.__name__.removeprefix('step_')}  ({state.timings[-1][1]:.1f} s)")
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
    matted = matted_gallery(state.store, state.report)
    if matted:
        sec.galleries.append(("Imported photos and their mattes (photo → cutout on a checkerboard)", matted))


def matted_gallery(store: Store, report: Report, limit: int = 24) -> list[Tile]:
    """Photo and cutout tiles for the store's products that were matted or masked from a photo."""
    from adcreative.catalogue.matting import QUALITY_THRESHOLD
    from adcreative.catalogue.review import on_checkerboard, original_photo

    tiles: list[Tile] = []
    for pid in store.product_ids():
        if len(tiles) >= 2 * limit:
            break
        p = store.get_product(pid)
        photo = original_photo(store, p)
        if photo is None:
            continue
        info = dict(p.attrs.get("matte", {}))
        q = info.get("quality")
        small, full = report.add_image(f"photo-{p.id}", photo)
        tiles.append(Tile(small, full, f"{p.title}: photo", "photo", "neutral", {"id": p.id, "matte": info}))
        small, full = report.add_image(f"matte-{p.id}", on_checkerboard(p.image))
        badge = f"matte {q:.2f}" if isinstance(q, int | float) else str(info.get("method", "cutout"))
        tone = "neutral" if q is None else "ok" if q >= QUALITY_THRESHOLD else "bad"
        tiles.append(Tile(small, full, f"{p.title}: cutout", badge, tone, {"id": p.id, "matte": info}))
    return tiles


def step_generate(state: DemoState) -> None:
    """Recurrent generation: the compositor generates, RFNet judges (accept / human / reject), until K
    auto-accepted per product."""
    from adcreative.generate.provenance import build_generator
    from adcreative.inspect.base import load_scorer
    from adcreative.inspect.preprocess import generator_family
    from adcreative.pipelines.recurrent import recurrent_generate

    gen = build_generator("compositor")
    scorer, mid = load_scorer()
    k = 2 if state.fast else 4
    budget = 6 * k
    # the decision the compositor's images meet: its renderer family's own accept threshold when validation knew it
    # (under the rule "floor", never below the one for all images)
    d = scorer.decision.for_family(generator_family(gen.name)) if scorer.decision is not None else None
    adapt = d is not None and d.adaptable
    whose = "the threshold its validation set for this renderer's images" + (
        ", never below the one for all images" if d is not None and d.floor is not None else "")
    rule = (f"auto-accepts at calibrated P(available) ≥ {d.accept:.3f} (precision target {d.target_accept}; "
            f"{whose}), auto-rejects at ≤ {d.reject:.3f} and sends the rest, and any image unlike its training data, "
            "to a human" if d is not None else "accepts at P(available) ≥ 0.5")
    if adapt:
        assert d is not None and d.prior is not None
        rule += (f". That accept threshold holds at validation's share of available images ({d.prior:.0%}); as a "
                 "product's attempts come in, the share of them that is available is estimated (label shift, EM "
                 "with 8 pseudo-images at validation's share) and the accept threshold moves to keep the "
                 "precision target at that share (the reject threshold never moves)")
    real = []  # what the auditor does differently for an imported (real) product's images
    if getattr(scorer, "real_bias", None) is not None:
        real.append("their probabilities carry a per-class correction fitted on real products' validation images "
                    "(the real-product bias)")
    if d is not None and d.real_accept is not None:
        real.append(f"they are never auto-accepted below {d.real_accept:.3f}, a threshold chosen on real products")
    if real:
        rule += (f". For an imported (real) product's images, {' and '.join(real)}; the sample products here are "
                 "drawn ones, so " + ("neither applies" if len(real) > 1 else "it does not apply"))
    sec = state.report.section(
        "Recurrent generation",
        f"Compositor {gen.version} generates, RFNet ({mid}) judges each attempt: it {rule}. Regeneration stops at "
        f"K = {k} auto-accepted creatives per product or after {budget} attempts. Aspect ratios cycle through "
        f"{', '.join(ASPECTS)}. Every attempt is stored with its verdict and band (those sent to a human head the "
        "review queue of `adcreative console`); click a creative for its provenance "
        "(regenerate it with `adcreative creatives regenerate ID`).")
    rows = []
    n_att = n_av = 0
    secs = 0.0
    bands = {"accept": 0, "human": 0, "reject": 0}
    n_delivered = 0
    for p in state.products:
        r = recurrent_generate(state.store, gen, scorer, p, k=k, max_attempts=budget, aspects=ASPECTS, seed=1000,
                               model_id=mid, run_id=state.run_id, adapt_prior=adapt)
        pool = [a.creative for a in r.delivered]
        if len(pool) < k:  # the demo has no reviewer: the campaign takes stand-ins from the human band
            waiting = sorted(r.to_human, key=lambda a: -a.p_available)[:k - len(pool)]
            pool += [a.creative for a in waiting]
            state.extra.setdefault("awaiting_review", []).extend(a.creative.id for a in waiting)
        state.creatives[p.id] = pool
        n_delivered += len(r.delivered)
        state.extra.setdefault("p_available", {}).update({a.creative.id: a.p_available for a in r.attempts})
        tiles = [_tile(state, a.creative, f"accepted · P={a.p_available:.2f}", "ok") for a in r.delivered]
        tiles += [_tile(state, a.creative, f"to a human (likely {a.defect.replace('_', ' ')}?) · "
                        f"P(avail)={a.p_available:.2f}", "neutral") for a in r.to_human]
        tiles += [_tile(state, a.creative, f"rejected: {a.defect.replace('_', ' ')} · P(avail)={a.p_available:.2f}",
                        "bad") for a in r.rejected if a.band == "reject"]
        b = r.band_counts()
        for key in bands:
            bands[key] += b[key]
        sec.galleries.append((f"{p.title} — {len(r.delivered)}/{k} delivered in {len(r.attempts)} attempts "
                              f"({b['human']} to a human, {b['reject']} rejected)", tiles))
        rows.append([p.id, f"{len(r.delivered)}/{k}", len(r.attempts), b["accept"], b["human"], b["reject"],
                     round(r.available_rate, 3), round(r.attempts_per_available, 2),
                     round(r.seconds_per_available, 2), "–" if r.prior is None else f"{r.prior:.2f}",
                     round(r.threshold, 3)])
        n_att += len(r.attempts)
        n_av += r.n_available
        secs += r.seconds
    rows.append(["total", f"{n_delivered}/{k * len(state.products)}", n_att,
                 bands["accept"], bands["human"], bands["reject"], round(n_av / max(1, n_att), 3),
                 round(n_att / max(1, n_av), 2), round(secs / max(1, n_av), 2), "", ""])
    state.extra["bands"] = bands
    n_wait = len(state.extra.get("awaiting_review", []))
    if n_wait:
        sec.intro += (f" Fewer than K creatives were auto-accepted for some products, so the sections below also use "
                     f"{n_wait} creative(s) sent to a human (the most likely available first), as if a reviewer had "
                     "approved them: the demo has no reviewer.")
    sec.tables.insert(0, ("Bands, available rate, attempts and seconds per available image",
                          ["product", "delivered", "attempts", "accepted", "to a human", "rejected", "available rate",
                           "attempts / available", "seconds / available", "est. available share",
                           "accept threshold (last batch)"], rows))


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
    """A simulated campaign over the delivered creatives, described by represent's features: our selector vs
    uniform random and the best fixed creative."""
    from adcreative.pipelines.simulation import provenance_attributes
    from adcreative.select.features import explicit_matrix, store_features
    from adcreative.select.simulator import demo_campaign

    cs = [c for v in state.creatives.values() for c in v]
    feats = state.extra.get("features")
    x = explicit_matrix([feats[c.id] for c in cs])[0] if feats else store_features(state.store, cs)[0]
    attrs = provenance_attributes(cs, {p.id: p for p in state.products})
    n = 4000 if state.fast else 20000
    res, png = demo_campaign(x, state.report.out / "images", attributes=attrs, n_impressions=n, seed=0)
    sec = state.report.section(
        "Simulated campaign",
        f"A synthetic market (user segments with different tastes, position bias, fatigue; a hidden click model "
        f"over what the generator drew) shown {n} impressions; policies see only represent's features of the "
        "creatives, and every policy sees the same users and the same click draws.")
    sec.tables.append(("Cumulative CTR", ["policy", "clicks", "CTR", "vs oracle", "vs uniform random"],
                       [[r["policy"], r["clicks"], round(r["ctr"], 4), f"{r['vs_oracle']:.1%}",
                         f"{r['vs_uniform']:.2f}×"] for r in res.table()]))
    sec.images.append(("Cumulative CTR per policy", f"images/{png.name}"))
    state.extra["campaign"] = res


def step_explain(state: DemoState) -> None:
    """Per product, the creative the preference model picks for two simulated users of opposite taste, why
    (its probability and checked reasons), and whether the hidden click model agrees — side by side."""
    from adcreative.explain.evaluate import demo_choices

    feats = state.extra.get("features", {})
    product_of = {c.id: pid for pid, cs in state.creatives.items() for c in cs if c.id in feats}
    if len(product_of) < 2:
        return
    n = 20_000 if state.fast else 60_000
    dc = demo_choices({c: feats[c] for c in product_of}, product_of, n_log=n, seed=0)
    who = [f"user {k + 1} (segment {u['segment']}; {t})" for k, (u, t) in enumerate(zip(dc.users, dc.tastes, strict=True))]
    sec = state.report.section(
        "Which creative for whom, and why",
        "A user-aware Bradley–Terry preference model (docs/explain.md)"
        + (" stacked on the serving (selection) model's logit, which enters as one more aspect of the explanation,"
           if dc.stacked else "")
        + f" trained on {dc.n_pairs:,} logged pairs "
        f"from {dc.n_impressions:,} simulated impressions (a hidden click model over the creatives' explicit "
        f"features). Two simulated users with opposite hidden tastes: {who[0]}; {who[1]}. For every product, the "
        "creative each one is shown, P(it beats the other user's pick, or the runner-up) and the reasons; each "
        "reason's amount is checked by swapping that aspect between the two creatives. The hidden model's own pick "
        f"is shown for comparison: it agrees with {dc.agree} of the {2 * len(dc.choices)} choices.")
    by_id = {c.id: c for cs in state.creatives.values() for c in cs}
    rows = []
    for pid, (c1, c2) in dc.choices.items():
        tiles = []
        for k, ch in enumerate((c1, c2)):
            ex = ch.explanation
            agree = "hidden model agrees" if ch.truth == ch.creative else f"hidden model prefers {ch.truth}"
            small, full = _add_creative(state, by_id[ch.creative])
            tiles.append(Tile(small, full, f"user {k + 1}: {ch.creative} (P = {ex.p_winner:.2f} vs {ch.other})", agree,
                              "ok" if ch.truth == ch.creative else "bad", {"explanation": ex.facts()}))
        sec.galleries.append((f"{pid}: user 1 sees {c1.creative} · user 2 sees {c2.creative}", tiles))
        rows.append([pid, c1.creative, c1.explanation.text, c2.creative, c2.explanation.text])
    sec.tables.append(("Side by side", ["product", "user 1 sees", "why (user 1)", "user 2 sees", "why (user 2)"], rows))


def _tile(state: DemoState, c: Creative, badge: str = "", tone: str = "neutral") -> Tile:
    small, full = _add_creative(state, c)
    return Tile(small, full, f"{c.aspect} · seed {c.seed} · {c.id}", badge, tone, c.manifest())


def _add_creative(state: DemoState, c: Creative) -> tuple[str, str]:
    """The creative's stored PNG copied into the report (not decoded and encoded again) and its thumbnail."""
    data = state.store.blobs.get_bytes(c.image_sha)
    with Image.open(io.BytesIO(data)) as im:
        return state.report.add_image(f"creative-{c.id}", im, png=data)
