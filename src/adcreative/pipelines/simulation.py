"""The simulator on real creatives: generated and inspected creatives in the store → represent's features
(cached) → select's market, campaigns over several seeds, and the cold-start measurement.

The market's hidden click model reads the creatives' *provenance* — what the compositor decided when it drew
each one (:func:`provenance_attributes`) — while every policy sees only represent's measurements of the
pixels. Creatives without compositor provenance (a folder of images, quick creatives from cutouts) fall back
to their measured features as the hidden attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adcreative.core.errors import InputError

if TYPE_CHECKING:
    from adcreative.core.store import Store
    from adcreative.core.types import Creative, Product
    from adcreative.select.coldstart import ColdStartReport
    from adcreative.select.simulator import CampaignResult

# compositor provenance read by the hidden click model: categorical choices and numbers
_CATEGORICAL = ("bg_kind", "light", "palette_mode", "support", "prop_kind", "template")
EMBEDDING_PREFIX = "embedding_pc"


@dataclass
class SimCreatives:
    """Creatives as the simulator uses them."""

    ids: list[str]
    features: np.ndarray            # [C, D] what policies see (represent's explicit features [+ embeddings])
    feature_names: list[str]
    attributes: np.ndarray | None   # [C, m] what the hidden click model reads (None: the features)
    groups: list[str]               # product id per creative
    notes: list[str] = field(default_factory=list)

    def subset(self, idx: np.ndarray) -> SimCreatives:
        return SimCreatives([self.ids[i] for i in idx], self.features[idx], self.feature_names,
                            None if self.attributes is None else self.attributes[idx], [self.groups[i] for i in idx],
                            self.notes)

    def columns(self, embedding: bool) -> np.ndarray:
        """The explicit (``embedding=False``) or embedding columns of the features."""
        keep = [j for j, n in enumerate(self.feature_names) if n.startswith(EMBEDDING_PREFIX) == embedding]
        return self.features[:, keep]


def provenance_attributes(creatives: Sequence[Creative], products: dict[str, Product]) -> np.ndarray | None:
    """``[C, m]`` hidden attributes from the compositor's recorded choices (one-hot categoricals, product
    scale and placement, contrast, props, palette colours) and the product's copy (category, badge, discount,
    price, copy length). ``None`` when a creative has no compositor provenance."""
    rows: list[dict[str, float]] = []
    for c in creatives:
        r = (c.params or {}).get("render")
        if not isinstance(r, dict) or "choice" not in r:
            return None
        ch, meas = r.get("choice", {}), r.get("measured", {})
        p = products[c.product_id]
        badge = str(p.attrs.get("badge") or "")
        row = {f"{k}={ch.get(k, r.get(k))}": 1.0 for k in _CATEGORICAL}
        row.update({f"aspect={c.aspect}": 1.0, f"category={p.category}": 1.0,
                    "scale": float(meas.get("scale", 0.0)), "x_offset": float(ch.get("x_offset", 0.0)),
                    "contrast": float(meas.get("contrast_de", 0.0)) / 100.0, "n_props": float(meas.get("n_props", 0)),
                    "has_badge": float(bool(badge)), "discount": float("%" in badge),
                    "has_price": float(p.price is not None), "log_price": float(np.log1p(p.price or 0.0)),
                    "copy_words": float(len((p.copy or "").split()))})
        for j, col in enumerate(r.get("palette", [])[:2]):
            row.update({f"wall{j}_{ch_}": float(v) / 255.0 for ch_, v in zip("rgb", col, strict=False)})
        rows.append(row)
    cols = sorted({k for row in rows for k in row})
    return np.array([[row.get(k, 0.0) for k in cols] for row in rows], np.float64)


def store_creatives(store: Store, *, encoder: str | Path | None = None, embed_dims: int = 16,
                    show_progress: bool = False) -> SimCreatives:
    """The store's available creatives (audited and accepted) with represent's features, cached in the store;
    embeddings too when an ``encoder`` folder is given."""
    from adcreative.select.features import store_features

    # generate → inspect → select: only creatives an auditor accepted compete; unaudited ones never do
    crs = store.available_creatives()
    if len(crs) < 2:
        raise InputError("the store has fewer than 2 available creatives: run `adcreative generate "
                         "--until-available K` (or `adcreative inspect run` on what is stored) first")
    enc = None
    if encoder is not None:
        from adcreative.represent.encoder import ENCODERS

        enc = ENCODERS.load(encoder)
    x, names = store_features(store, crs, encoder=enc, embed_dims=embed_dims, show_progress=show_progress)
    products = {pid: store.get_product(pid) for pid in {c.product_id for c in crs}}
    return SimCreatives([c.id for c in crs], x, names, provenance_attributes(crs, products),
                        [c.product_id for c in crs],
                        [f"{len(crs)} of {len(store.creatives())} creatives are available (audited and accepted)"])


def image_creatives(folder: Path, *, ocr: bool = True) -> SimCreatives:
    """A folder of creative images (PNG/JPG), described by represent's explicit features (not cached)."""
    from adcreative.core.imageio import open_image
    from adcreative.select.features import image_features

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")) if folder.is_dir() else []
    if len(files) < 2:
        raise InputError("needs at least 2 images", source=folder)
    x, names = image_features([open_image(p) for p in files], ocr=ocr)
    return SimCreatives([p.stem for p in files], x, names, None, [p.stem for p in files])


def cutout_creatives(folder: Path, n: int, seed: int = 0) -> SimCreatives:
    """``n`` quick creatives from a folder of RGBA cutouts (no copy on them, so no OCR)."""
    from adcreative.core.imageio import load_cutout
    from adcreative.select.features import image_features
    from adcreative.select.simulator import quick_creatives

    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not files:
        raise InputError("no PNG cutouts", source=folder)
    # checked like every image a user gives (a decompression bomb, a truncated file: one line naming the file)
    ims, masks = quick_creatives([load_cutout(p) for p in files], n, seed=seed)
    x, names = image_features(ims, masks, ocr=False)
    return SimCreatives([f"q{j}" for j in range(n)], x, names, None, [files[j % len(files)].stem for j in range(n)])


@dataclass
class Source:
    """Where the simulator's creatives come from (the CLI's options): exactly one of ``store``, ``images``,
    ``cutouts``."""

    store: Store | None = None
    images: Path | None = None
    cutouts: Path | None = None
    n_quick: int = 16               # quick creatives to make from the cutouts
    encoder: Path | None = None     # with the store: add the encoder's embeddings
    ocr: bool = True                # with images: read their copy (slow: ~0.5 s per image)

    def load(self, *, show_progress: bool = False) -> SimCreatives:
        if sum(x is not None for x in (self.store, self.images, self.cutouts)) != 1:
            raise InputError("give creatives: --from-store, --images DIR or --products DIR (one of them)")
        if self.store is not None:
            return store_creatives(self.store, encoder=self.encoder, show_progress=show_progress)
        if self.images is not None:
            return image_creatives(self.images, ocr=self.ocr)
        assert self.cutouts is not None
        return cutout_creatives(self.cutouts, self.n_quick)


# ------------------------------------------------------------------------------------- campaigns ------
@dataclass
class SimulationReport:
    seeds: list[int]
    n_impressions: int
    n_creatives: int
    results: list[CampaignResult]
    notes: list[str] = field(default_factory=list)

    def ratios(self) -> dict[str, list[float]]:
        """Policy → share of the oracle's clicks on each seed."""
        out: dict[str, list[float]] = {}
        for r in self.results:
            for name in r.clicks:
                out.setdefault(name, []).append(r.ctr(name) / r.ctr("oracle"))
        return out

    def to_markdown(self) -> str:
        if len(self.results) == 1:
            return self.results[0].to_markdown() + "".join(f"\n- {n}" for n in self.notes)
        ratios = self.ratios()
        order = sorted(ratios, key=lambda k: -float(np.median(ratios[k])))
        lines = [f"Simulated campaigns: N = {self.n_impressions} impressions, {self.n_creatives} creatives per seed; "
                 f"share of the oracle's clicks per seed, median [min, max].", "",
                 "| policy | " + " | ".join(f"seed {s}" for s in self.seeds) + " | median [min, max] |",
                 "|---|" + "---|" * (len(self.seeds) + 1)]
        for k in order:
            v = ratios[k]
            lines.append(f"| {k} | " + " | ".join(f"{x:.1%}" for x in v) +
                         f" | {np.median(v):.1%} [{min(v):.1%}, {max(v):.1%}] |")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def simulate(sim: SimCreatives, *, n: int = 20000, seeds: Sequence[int] = (0,), policies: Sequence[str] = (),
             n_creatives: int | None = None, png: str | Path | None = None, ours: dict[str, Any] | None = None,
             progress: bool = False) -> SimulationReport:
    """A campaign per seed; each seed draws its own ``n_creatives`` (all by default) and its own hidden market."""
    from adcreative.select.simulator import run_campaign

    results = []
    for seed in seeds:
        idx = np.arange(len(sim.ids))
        if n_creatives is not None and n_creatives < len(idx):
            idx = np.sort(np.random.default_rng(seed).choice(idx, n_creatives, replace=False))
        s = sim.subset(idx)
        out = Path(png).with_name(f"{Path(png).stem}-seed{seed}{Path(png).suffix}") if png and len(seeds) > 1 else png
        results.append(run_campaign(s.features, n, seed, attributes=s.attributes, policies=policies or
                                    ("oracle", "ours", "uniform", "best_fixed", "vw_squarecb"), png=out, ours=ours,
                                    progress=progress))
    notes = [*sim.notes, "hidden click model reads " + ("the compositor's provenance; policies see represent's features"
                                                        if sim.attributes is not None else "the measured features themselves")]
    return SimulationReport(list(seeds), n, results[0].n_creatives, results, notes)


def cold_start(sim: SimCreatives, *, seeds: Sequence[int] = (0, 1, 2, 3, 4), n_train: int = 20000,
               n_test: int = 20000, epochs: int = 4, progress: bool = False) -> ColdStartReport:
    """Cold-start click AUC on held-out products' creatives: ids only vs represent's explicit features, its
    embeddings and both (the embeddings only when the store's creatives were embedded)."""
    from adcreative.select.coldstart import cold_start_auc

    if sim.attributes is None:
        raise InputError("cold start needs creatives with compositor provenance (the hidden attributes): "
                         "use --from-store with generated creatives")
    desc = {"represent explicit features": sim.columns(embedding=False)}
    emb = sim.columns(embedding=True)
    if emb.shape[1]:
        desc["represent embedding (PCA)"] = emb
        desc["represent explicit + embedding"] = sim.features
    rep = cold_start_auc(desc, sim.attributes, groups=sim.groups, seeds=seeds, n_train=n_train, n_test=n_test,
                         epochs=epochs, progress=progress)
    rep.notes.append(f"{len(set(sim.groups))} products; the hidden click model reads the compositor's provenance, "
                     "the models see only the description named in each row")
    return rep


def simulate_source(src: Source, **kw: Any) -> SimulationReport:
    """``adcreative select simulate``: check the policy names, load the creatives, run the campaigns."""
    from adcreative.select.simulator import check_policies

    if kw.get("policies"):
        check_policies(kw["policies"])  # before any image work
    sim = src.load(show_progress=bool(kw.get("progress")))
    return simulate(sim, **kw)


def cold_start_source(src: Source, **kw: Any) -> ColdStartReport:
    """``adcreative select coldstart``: load the creatives, measure cold start."""
    return cold_start(src.load(show_progress=bool(kw.get("progress"))), **kw)
