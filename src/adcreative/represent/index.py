"""FAISS index over creative embeddings: nearest creatives, near-duplicates, retrieval-based quality.

* :class:`Index` — cosine similarity (inner product on L2-normalised rows) with string ids. ``flat`` is exact
  (best up to ~10⁵ rows), ``ivf`` (IVF-Flat, ``nlist`` lists, ``nprobe`` probed) and ``hnsw`` are approximate
  and scale further. Saved as a FAISS index file + ``ids.json`` + ``meta.json``, each written atomically;
  nothing is pickled.
* :func:`calibrate_threshold` — the near-duplicate similarity threshold from labelled pairs, with the
  precision/recall it achieves.
* :class:`KnnQuality` — a kNN estimate of P(available) and of CTR from labelled neighbours, shrunk
  to a prior when the neighbours are few or far, exposed as features for selection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adcreative.core.durable import atomic_dir
from adcreative.core.errors import InputError

if TYPE_CHECKING:
    from adcreative.core.store import Store

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
META_FILE = "meta.json"
KINDS = ("flat", "ivf", "hnsw")


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim != 2:
        raise InputError(f"vectors must be a 2-d array (n, dim), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("vectors contain NaN or infinity")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class Index:
    """Cosine-similarity index with string ids. ``threshold`` is the calibrated near-duplicate similarity."""

    def __init__(self, dim: int, kind: str = "flat", *, nlist: int = 0, nprobe: int = 16, hnsw_m: int = 32,
                 ef_search: int = 128, threshold: float | None = None) -> None:
        import faiss

        if kind not in KINDS:
            raise InputError(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
        if dim <= 0:
            raise InputError(f"dimension must be positive, got {dim}")
        self.dim, self.kind = int(dim), kind
        self.nlist, self.nprobe, self.hnsw_m, self.ef_search = int(nlist), int(nprobe), int(hnsw_m), int(ef_search)
        self.threshold = threshold
        self.ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._pending: np.ndarray | None = None  # IVF rows held until there are enough to train
        self.index: Any
        if kind == "flat":
            self.index = faiss.IndexFlatIP(self.dim)
        elif kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = 80
            self.index.hnsw.efSearch = self.ef_search
        else:
            self.index = None  # built at the first add, when nlist can be sized to the data

    def __len__(self) -> int:
        return len(self.ids)

    def _build_ivf(self, x: np.ndarray) -> None:
        import faiss

        nlist = self.nlist or max(1, min(4096, int(4 * np.sqrt(len(x)))))
        if len(x) < nlist:
            raise InputError(f"IVF with {nlist} lists needs at least {nlist} vectors in the first add "
                             f"(got {len(x)}); use kind='flat' for small collections")
        self.nlist = nlist
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        # train on a sample: k-means cost grows with n, and 64 points per list are plenty
        rng = np.random.default_rng(0)
        sample = x if len(x) <= 64 * nlist else x[rng.choice(len(x), 64 * nlist, replace=False)]
        index.train(sample)
        index.nprobe = min(self.nprobe, nlist)
        self.index = index

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        x = normalize(vectors)
        if x.shape[1] != self.dim:
            raise InputError(f"vectors have dimension {x.shape[1]}, the index has {self.dim}")
        if len(ids) != len(x):
            raise InputError(f"{len(ids)} ids for {len(x)} vectors")
        ids = [str(i) for i in ids]
        seen: set[str] = set()
        dup: set[str] = set()
        for i in ids:
            if i in self._pos or i in seen:
                dup.add(i)
            seen.add(i)
        if dup:
            raise InputError(f"id(s) already in the index or repeated: {', '.join(sorted(dup)[:5])}")
        if self.index is None:
            self._build_ivf(x)
        self.index.add(x)
        for i in ids:
            self._pos[i] = len(self.ids)
            self.ids.append(i)

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors of ``ids`` (flat and HNSW store them exactly; IVF-Flat too)."""
        missing = [i for i in ids if i not in self._pos]
        if missing:
            raise InputError(f"id(s) not in the index: {', '.join(missing[:5])}")
        if self.kind == "ivf":
            self.index.make_direct_map()
        return np.stack([self.index.reconstruct(self._pos[i]) for i in ids]) if ids else np.zeros((0, self.dim), np.float32)

    def search(self, vectors: np.ndarray, k: int = 10) -> tuple[list[list[str]], np.ndarray]:
        """The ``k`` most similar stored items per query: (ids per query, cosine similarities (n, k)).
        Fewer than ``k`` stored items → the lists are shorter and the missing scores are −inf."""
        q = normalize(vectors)
        if q.shape[1] != self.dim:
            raise InputError(f"query dimension {q.shape[1]} ≠ index dimension {self.dim}")
        if len(self) == 0:
            return [[] for _ in range(len(q))], np.full((len(q), k), -np.inf, np.float32)
        kk = min(k, len(self))
        scores, idx = self.index.search(q, kk)
        out_ids = [[self.ids[j] for j in row if j >= 0] for row in idx]
        scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
        if kk < k:
            scores = np.concatenate([scores, np.full((len(q), k - kk), -np.inf, np.float32)], axis=1)
        return out_ids, scores

    def near_duplicates(self, vectors: np.ndarray, *, threshold: float | None = None, k: int = 10,
                        exclude: Sequence[str | None] | None = None) -> list[list[tuple[str, float]]]:
        """Stored items at least ``threshold`` similar to each query (the calibrated one by default)."""
        thr = self.threshold if threshold is None else threshold
        if thr is None:
            raise InputError("no near-duplicate threshold: calibrate one (represent index --calibrate) or pass it")
        ids, scores = self.search(vectors, k)
        out = []
        for r, (row, sc) in enumerate(zip(ids, scores, strict=True)):
            skip = exclude[r] if exclude is not None else None
            out.append([(i, float(s)) for i, s in zip(row, sc, strict=False) if s >= thr and i != skip])
        return out

    # -- persistence --------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        import faiss

        d = Path(directory)
        if self.index is None:
            raise InputError("cannot save an empty IVF index (add vectors first)")
        meta = {"dim": self.dim, "kind": self.kind, "nlist": self.nlist, "nprobe": self.nprobe, "hnsw_m": self.hnsw_m,
                "ef_search": self.ef_search, "threshold": self.threshold, "count": len(self), "metric": "cosine"}
        with atomic_dir(d) as tmp:  # the three files appear together: never ids of one save beside vectors of another
            (tmp / INDEX_FILE).write_bytes(faiss.serialize_index(self.index).tobytes())
            (tmp / IDS_FILE).write_text(json.dumps(self.ids))
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Index:
        import faiss

        d = Path(directory)
        for name in (META_FILE, INDEX_FILE, IDS_FILE):
            if not (d / name).is_file():
                raise InputError(f"not a saved index: {name} is missing", source=d)
        try:  # a half-copied or foreign folder: name it, not a JSON or FAISS (C++ RuntimeError) traceback
            meta = json.loads((d / META_FILE).read_text())
            ids = json.loads((d / IDS_FILE).read_text())
            index: Any = faiss.deserialize_index(np.frombuffer((d / INDEX_FILE).read_bytes(), dtype=np.uint8))
        except (ValueError, RuntimeError) as e:  # JSONDecodeError is a ValueError
            raise InputError(f"damaged index ({type(e).__name__}: {str(e)[:200]}); build it again with "
                             "'adcreative represent index'", source=d) from None
        missing = [k for k in ("dim", "kind", "nlist", "nprobe", "hnsw_m", "ef_search") if k not in meta]
        if missing:
            raise InputError(f"damaged index: {META_FILE} lacks {', '.join(missing)}; build it again with "
                             "'adcreative represent index'", source=d)
        if index.ntotal != len(ids) or index.d != meta["dim"]:
            raise InputError(f"index file has {index.ntotal} vectors of dim {index.d} but ids.json lists {len(ids)} "
                             f"(dim {meta['dim']}): the folder is inconsistent", source=d)
        obj = cls(meta["dim"], "flat", threshold=meta.get("threshold"))
        obj.kind, obj.nlist, obj.nprobe = meta["kind"], meta["nlist"], meta["nprobe"]
        obj.hnsw_m, obj.ef_search = meta["hnsw_m"], meta["ef_search"]
        obj.index = index
        if obj.kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = obj.nprobe
        elif obj.kind == "hnsw":
            index.hnsw.efSearch = obj.ef_search  # type: ignore[attr-defined]
        obj.ids = list(ids)
        obj._pos = {i: n for n, i in enumerate(obj.ids)}
        return obj


# -- near-duplicate threshold ---------------------------------------------------------------------------
@dataclass
class Calibration:
    threshold: float
    precision: float
    recall: float
    f1: float
    n_pos: int
    n_neg: int
    curve: list[tuple[float, float, float]]  # (threshold, precision, recall)


def calibrate_threshold(similarities: np.ndarray, is_duplicate: np.ndarray, *, min_precision: float = 0.99
                        ) -> Calibration:
    """The lowest similarity threshold whose precision is ≥ ``min_precision`` (the highest recall at that
    precision); if none reaches it, the F1-maximising threshold. Flagging a genuinely different creative as a
    copy hides it from selection, so precision comes first."""
    s = np.asarray(similarities, dtype=np.float64)
    y = np.asarray(is_duplicate, dtype=bool)
    if len(s) != len(y) or y.all() or not y.any():
        raise InputError("calibration needs both duplicate and non-duplicate pairs, aligned with the similarities")
    order = np.argsort(-s)
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    # only cut where the similarity changes (ties go together)
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    prec = tp / (tp + fp)
    rec = tp / y.sum()
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    cand = np.nonzero(last)[0]
    ok = cand[prec[cand] >= min_precision]
    j = int(ok[np.argmax(rec[ok])]) if len(ok) else int(cand[np.argmax(f1[cand])])
    # place the threshold half-way to the next lower similarity: margin on both sides
    thr = float(s_sorted[j] if j + 1 >= len(s_sorted) else (s_sorted[j] + s_sorted[j + 1]) / 2)
    pred = s >= thr
    tp_, fp_ = int((pred & y).sum()), int((pred & ~y).sum())
    p = tp_ / max(1, tp_ + fp_)
    r = tp_ / int(y.sum())
    step = max(1, len(cand) // 200)
    curve = [(float(s_sorted[c]), float(prec[c]), float(rec[c])) for c in cand[::step]]
    return Calibration(thr, p, r, 2 * p * r / max(p + r, 1e-12), int(y.sum()), int((~y).sum()), curve)


# -- retrieval-based quality ----------------------------------------------------------------------------
@dataclass
class Outcome:
    """What is known about a labelled creative: availability (human label or inspector probability) and traffic."""

    available: float | None = None  # 1/0 from a human label, or P(available) from the inspector
    impressions: int = 0
    clicks: int = 0


class KnnQuality:
    """kNN estimates from labelled neighbours in an :class:`Index`:

    ``knn_p_available = (Σ wᵢ·aᵢ + α·p₀) / (Σ wᵢ + α)`` and ``knn_ctr = (Σ wᵢ·clicksᵢ + β·c₀) / (Σ wᵢ·impᵢ + β)``,
    with weights ``wᵢ = exp((simᵢ − 1)/τ)`` (1 for an identical creative, → 0 for far ones) and priors p₀, c₀
    from all labelled items, so a creative with no close labelled neighbour gets the prior."""

    def __init__(self, index: Index, outcomes: Mapping[str, Outcome], *, k: int = 20, tau: float = 0.1,
                 alpha: float = 1.0, beta: float = 50.0) -> None:
        self.index, self.k, self.tau, self.alpha, self.beta = index, k, tau, alpha, beta
        self.outcomes = dict(outcomes)
        av = [o.available for o in self.outcomes.values() if o.available is not None]
        self.p0 = float(np.mean(av)) if av else 0.5
        imp = sum(o.impressions for o in self.outcomes.values())
        self.c0 = sum(o.clicks for o in self.outcomes.values()) / imp if imp else 0.0

    def features(self, vectors: np.ndarray, exclude: Sequence[str | None] | None = None) -> list[dict[str, float]]:
        """Per query: ``knn_p_available``, ``knn_ctr``, ``knn_max_sim``, ``knn_weight`` (evidence mass).
        ``exclude[i]`` is the query's own id when it is in the index (leave-one-out)."""
        ids, scores = self.index.search(vectors, self.k + 1)
        out = []
        for r, (row, sc) in enumerate(zip(ids, scores, strict=True)):
            skip = exclude[r] if exclude is not None else None
            wa = sa = wi = sc_ = 0.0
            max_sim = -1.0
            for i, s in zip(row, sc, strict=False):
                if i == skip or i not in self.outcomes:
                    continue
                max_sim = max(max_sim, float(s))
                w = float(np.exp((float(s) - 1.0) / self.tau))
                o = self.outcomes[i]
                if o.available is not None:
                    wa += w
                    sa += w * float(o.available)
                if o.impressions:
                    wi += w * o.impressions
                    sc_ += w * o.clicks
            out.append({"knn_p_available": (sa + self.alpha * self.p0) / (wa + self.alpha),
                        "knn_ctr": (sc_ + self.beta * self.c0) / (wi + self.beta),
                        "knn_max_sim": max_sim, "knn_weight": wa})
        return out


def outcomes_from_store(store: Store, creative_ids: Sequence[str] | None = None) -> dict[str, Outcome]:
    """Labelled outcomes in the store: the latest human label (else the latest inspector verdict's
    P(available)), and impression/click counts from the event log."""
    out: dict[str, Outcome] = {}
    wanted = set(creative_ids) if creative_ids is not None else None
    for lab in store.labels():  # later labels override earlier ones
        if wanted is None or lab.creative_id in wanted:
            out.setdefault(lab.creative_id, Outcome()).available = 1.0 if lab.label == "available" else 0.0
    ids = list(wanted) if wanted is not None else [c.id for c in store.creatives()]
    verdicts = store.latest_verdicts([cid for cid in ids if cid not in out or out[cid].available is None])
    for cid, v in verdicts.items():
        out.setdefault(cid, Outcome()).available = v.p_available
    for e in store.events():
        if wanted is not None and e.creative_id not in wanted:
            continue
        o = out.setdefault(e.creative_id, Outcome())
        if e.kind == "impression":
            o.impressions += 1
        elif e.kind == "click":
            o.clicks += 1
    return out


def index_store(store: Store, creatives: Sequence[Any], encoder: Any, *, kind: str = "flat", calibrate: bool = True,
                min_precision: float = 0.99) -> tuple[Index, Calibration | None]:
    """An index of stored creatives' embeddings; with ``calibrate``, its near-duplicate threshold set on
    crops/recompressions/jitters of the indexed creatives vs other creatives of the same product."""
    from adcreative.represent.encoder import embed_creatives

    vecs = embed_creatives(store, creatives, encoder, show_progress=True)
    idx = Index(vecs.shape[1], kind)
    idx.add([c.id for c in creatives], vecs)
    cal = None
    if calibrate:
        from adcreative.represent.evaluate import SetItem, near_duplicate_pairs_scores

        items = [SetItem(store.creative_image(c), c.product_id, "") for c in creatives]
        cal, _ = near_duplicate_pairs_scores(encoder, items, min_precision=min_precision)
        idx.threshold = cal.threshold
    return idx, cal


def search_store(store: Store, idx: Index, encoder: Any, *, creative: str | None = None, image: Any = None,
                 text: str = "", k: int = 10) -> tuple[list[tuple[str, float, bool]], dict[str, float]]:
    """The ``k`` nearest indexed creatives of a stored creative or an image (id, similarity, near-duplicate)
    and the kNN quality estimate (P(available), CTR) of the query."""
    from adcreative.represent.encoder import embed_creatives

    if (creative is None) == (image is None):
        raise InputError("give exactly one of a stored creative or an image")
    if creative is not None:
        q = embed_creatives(store, [store.get_creative(creative)], encoder)
    else:
        q = encoder.embed([image.convert("RGB")], [text] if encoder.use_text and text else None)
    ids, scores = idx.search(q, k + 1)
    thr = idx.threshold
    rows = [(i, float(s), thr is not None and float(s) >= thr)
            for i, s in zip(ids[0], scores[0], strict=False) if i != creative][:k]
    knn = KnnQuality(idx, outcomes_from_store(store, idx.ids), k=k).features(q, exclude=[creative])[0]
    return rows, knn
