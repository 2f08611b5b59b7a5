"""The learned prop finder of cue set 6: which regions of an ad image are props standing beside the product.

Sets 3-5 judge the product's scale against the objects a scene puts beside it, found by hand-written rules (a
region departing from its row's median colour, its bottom at the product's base). Those rules keep only 30-69 % of
the props a renderer drew: they drop short props, props whose bottom is off the base, props touching the canvas's
sides and props on rayed or striped backdrops (docs/inspect.md, twenty-ninth round). With the renderers' own prop
boxes in place of the rules, held-out AP rose by 0.05-0.1, and knowing each prop's kind added nothing: finding them
is what matters.

So this module learns to find them. :func:`prop_candidates` splits the work-size image into Felzenszwalb segments
and groups the compact ones clear of the product and of the canvas's edge into candidate regions, each described
by :data:`FEATURE_NAMES` (size and shape against the canvas and the product, colour contrast with its own
surroundings, where its bottom lies against the product's base). :class:`PropFinder` is a boosted-tree classifier
of those features, fitted by :func:`fit_prop_finder` on the boxes a synthetic dataset's renderers record
(``params.geometry.props``), kept as arrays in ``model.safetensors`` (no pickle) and evaluated in NumPy, so the
cues stay free of scikit-learn and torch. The finder cue set 6 reads ships with the package
(``assets/prop_finder``); a set's cues never change, so a refitted finder would be a new set.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from adcreative.core.errors import ConfigError, InputError
from adcreative.core.modeling import WEIGHTS_NAME, ConfigMixin, register_to_config
from adcreative.core.registry import Registry

FEATURE_NAMES = (
    "height_frac", "width_frac", "log_product_over_height", "aspect", "fill",  # size and shape
    "contrast", "contrast_light", "contrast_chroma",  # Lab against its own surroundings (the ring around it)
    "bottom_vs_base", "bottom_vs_base_canvas", "at_side", "at_top", "gap_x",  # where it stands
    "area_frac", "lightness", "product_height_frac", "ring_ratio",
)
N_FEATURES = len(FEATURE_NAMES)
PROP_P = 0.5  # a candidate is a prop when the finder's probability reaches this
SEGMENT_SCALE, SEGMENT_SIGMA, SEGMENT_MIN = 120.0, 0.8, 8  # Felzenszwalb's parameters on the work-size image
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "prop_finder"
# the shipped finder's weights, which cue set 6 reads (fitted by the command in its README)
SHIPPED_SHA256 = "324479953ff7b16b103dc9a5c605d37eeb1c33d6edc6f4a651561366c07afaa3"
_K3 = np.ones((3, 3), np.uint8)

PROP_FINDERS: Registry[Any] = Registry("prop finder")


def prop_candidates(img: np.ndarray, lab_img: np.ndarray, m: np.ndarray,
                    box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Candidate props of a work-size image: ``img`` h×w×3 uint8, ``lab_img`` its (blurred) Lab, ``m`` the product's
    mask (bool) with box ``box`` = (y0, y1, x0, x1). Returns ``(features, boxes)``: (n, N_FEATURES) float32 and
    (n, 4) int32 ``x, y, width, height`` in work pixels, in a fixed order (connected-component labels)."""
    from skimage.segmentation import felzenszwalb

    h, w = m.shape
    y0, y1, x0, x1 = box
    bh, bw = y1 - y0, x1 - x0
    empty = np.zeros((0, N_FEATURES), np.float32), np.zeros((0, 4), np.int32)
    seg = felzenszwalb(img, scale=SEGMENT_SCALE, sigma=SEGMENT_SIGMA, min_size=SEGMENT_MIN)
    n = int(seg.max()) + 1
    excl = cv2.dilate(m.astype(np.uint8), _K3, iterations=2).astype(bool)
    bad = np.zeros(n, bool)  # segments touching the product or the canvas's edge: not props
    bad[np.unique(seg[excl])] = True
    bad[np.unique(np.r_[seg[0], seg[-1], seg[:, 0], seg[:, -1]])] = True
    flat = seg.ravel()
    area = np.bincount(flat, minlength=n).astype(np.float64)
    yy, xx = np.divmod(np.arange(h * w), w)
    ymin, xmin = np.full(n, h), np.full(n, w)
    ymax, xmax = np.full(n, -1), np.full(n, -1)
    np.minimum.at(ymin, flat, yy)
    np.maximum.at(ymax, flat, yy)
    np.minimum.at(xmin, flat, xx)
    np.maximum.at(xmax, flat, xx)
    sh, sw = ymax - ymin + 1, xmax - xmin + 1
    # compact segments, neither specks nor a backdrop's sweep
    cand = ~bad & (area >= 4) & (area <= 0.2 * h * w) & (area >= 0.175 * sh * sw)
    if not cand.any():
        return empty
    cm = cand[seg]
    ncomp, labels, st, _ = cv2.connectedComponentsWithStats(cm.astype(np.uint8), connectivity=8)
    free = ~cm & ~excl
    feats, boxes = [], []
    for i in range(1, ncomp):
        px, py, pw, ph, ar = (int(v) for v in st[i, :5])
        if ph < 3 or ar > 0.2 * h * w:
            continue
        wy0, wy1, wx0, wx1 = max(0, py - 4), py + ph + 4, max(0, px - 4), px + pw + 4
        reg = labels[wy0:wy1, wx0:wx1] == i
        ring = cv2.dilate(reg.astype(np.uint8), _K3, iterations=3).astype(bool) & ~reg & free[wy0:wy1, wx0:wx1]
        win = lab_img[wy0:wy1, wx0:wx1]
        d = win[reg].mean(axis=0) - np.median(win[ring], axis=0) if ring.sum() >= 4 else np.zeros(3)
        gap = (px - x1) if px >= x1 else (x0 - (px + pw)) if px + pw <= x0 else 0
        feats.append([ph / h, pw / w, np.log(bh / ph), pw / ph, ar / (pw * ph),
                      float(np.linalg.norm(d)), d[0], float(np.linalg.norm(d[1:])),
                      (py + ph - y1) / bh, (py + ph - y1) / h, float(px <= 1 or px + pw >= w - 1), float(py <= 1),
                      gap / max(1, bw), ar / (h * w), float(win[reg][:, 0].mean()), bh / h,
                      ring.sum() / max(1, reg.sum())])
        boxes.append([px, py, pw, ph])
    if not feats:
        return empty
    return np.asarray(feats, np.float32), np.asarray(boxes, np.int32)


@PROP_FINDERS.register("candidate-trees")
class PropFinder(ConfigMixin):
    """Boosted trees over :data:`FEATURE_NAMES` → the probability that a candidate is a prop. NumPy state: each
    tree's nodes padded to ``n_nodes``; a node sends a candidate left when its feature is at most the threshold."""

    registry_family = "prop finder"
    registry_name = "candidate-trees"
    _ARRAYS = ("feature", "threshold", "left", "right", "value", "leaf", "baseline")  # model.safetensors' keys

    @register_to_config
    def __init__(self, n_trees: int = 0, n_nodes: int = 1, max_depth: int = 0, threshold_p: float = PROP_P,
                 features: Sequence[str] = FEATURE_NAMES) -> None:
        if list(features) != list(FEATURE_NAMES):
            raise ValueError(f"this finder reads other features ({len(features)}) than prop_candidates makes")
        if not 0.0 < threshold_p < 1.0:
            raise ValueError(f"threshold_p must be in (0, 1), got {threshold_p!r}")
        self.n_trees, self.n_nodes, self.max_depth, self.threshold_p = n_trees, n_nodes, max_depth, threshold_p
        self.feature = np.zeros((n_trees, n_nodes), np.int32)
        self.threshold = np.zeros((n_trees, n_nodes), np.float64)
        self.left = np.zeros((n_trees, n_nodes), np.int32)
        self.right = np.zeros((n_trees, n_nodes), np.int32)
        self.value = np.zeros((n_trees, n_nodes), np.float64)
        self.leaf = np.ones((n_trees, n_nodes), bool)
        self.baseline = np.zeros(1, np.float64)

    def state_arrays(self) -> dict[str, Any]:
        return {k: np.ascontiguousarray(getattr(self, k)) for k in self._ARRAYS}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        missing = [k for k in self._ARRAYS if k not in arrays]
        if missing or set(arrays) - set(self._ARRAYS):
            raise ValueError(f"a prop finder has the arrays {', '.join(self._ARRAYS)}; got {', '.join(sorted(arrays))}")
        for k in self._ARRAYS:
            want = getattr(self, k)
            got = np.asarray(arrays[k])
            if got.shape != want.shape:
                raise ValueError(f"{k} has shape {got.shape}, config.json says {want.shape}")
            setattr(self, k, got.astype(want.dtype))
        depth = self.max_depth
        if self.n_trees and (self.feature.min() < 0 or self.feature.max() >= N_FEATURES
                             or min(self.left.min(), self.right.min()) < 0
                             or max(self.left.max(), self.right.max()) >= self.n_nodes or depth < 0):
            raise ValueError("node indices out of range")

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, N_FEATURES) features → (n,) probabilities that each candidate is a prop."""
        x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        n = len(x)
        raw = np.full(n, float(self.baseline[0]))
        if n and self.n_trees:
            rows = np.arange(n)[:, None]
            trees = np.arange(self.n_trees)[None, :]
            node = np.zeros((n, self.n_trees), np.int64)
            for _ in range(self.max_depth):
                f = self.feature[trees, node]
                go_left = x[rows, f] <= self.threshold[trees, node]
                step = np.where(go_left, self.left[trees, node], self.right[trees, node])
                node = np.where(self.leaf[trees, node], node, step)
            raw += self.value[trees, node].sum(axis=1)
        return np.asarray(1.0 / (1.0 + np.exp(-raw)))

    def find(self, features: np.ndarray) -> np.ndarray:
        """Which candidates are props (bool, one per row of ``features``)."""
        return np.asarray(self.predict_proba(features) >= self.threshold_p)

    @classmethod
    def from_estimator(cls, est: Any, threshold_p: float = PROP_P) -> PropFinder:
        """Copy a fitted two-class ``HistGradientBoostingClassifier`` (numeric features) into a finder."""
        if int(est.n_trees_per_iteration_) != 1 or len(est.classes_) != 2:
            raise ValueError("a prop finder is a two-class fit (prop or not)")
        trees = [p[0].nodes for p in est._predictors]
        n_nodes = max((len(t) for t in trees), default=1)
        depth = 0
        for t in trees:  # the deepest leaf (nodes are stored parents first)
            d = np.zeros(len(t), np.int64)
            for i in range(len(t)):
                if not t["is_leaf"][i]:
                    d[t["left"][i]] = d[t["right"][i]] = d[i] + 1
            depth = max(depth, int(d.max()))
        finder = cls(n_trees=len(trees), n_nodes=n_nodes, max_depth=depth, threshold_p=threshold_p)
        for i, t in enumerate(trees):
            k = len(t)
            finder.feature[i, :k] = t["feature_idx"]
            finder.threshold[i, :k] = t["num_threshold"]
            finder.left[i, :k] = t["left"]
            finder.right[i, :k] = t["right"]
            finder.value[i, :k] = t["value"]
            finder.leaf[i, :k] = t["is_leaf"].astype(bool)
        finder.baseline[0] = float(np.asarray(est._baseline_prediction, np.float64).reshape(-1)[0])
        return finder


def finder_digest(directory: Path = ASSET_DIR) -> str:
    """SHA-256 of a saved finder's weights: what a cue set pins."""
    return hashlib.sha256((Path(directory) / WEIGHTS_NAME).read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def shipped_prop_finder() -> PropFinder:
    """The finder that ships with the package (``assets/prop_finder``), loaded once per process; refused when its
    weights are not the ones set 6 pinned (:data:`SHIPPED_SHA256`), since every set-6 model read that finder."""
    digest = finder_digest(ASSET_DIR)
    if digest != SHIPPED_SHA256:
        raise ConfigError(f"the shipped prop finder ({ASSET_DIR}) is not the one cue set 6 pinned (sha256 {digest[:12]}"
                          f", want {SHIPPED_SHA256[:12]}): a refitted finder is a new cue set")
    finder: PropFinder = PROP_FINDERS.load(ASSET_DIR)
    return finder


def match_props(boxes: np.ndarray, props: Sequence[Sequence[float]], scale: float) -> np.ndarray:
    """Which candidate boxes (work pixels ``x, y, width, height``) are a recorded prop (``[x0, y0, x1, y1]`` in
    the image's pixels, times ``scale`` to work pixels): at least half of the candidate's box inside the prop's and
    a height within a factor 1.5 of it."""
    out = np.zeros(len(boxes), bool)
    for k, (px, py, pw, ph) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        for p in props:
            bx0, by0, bx1, by1 = (float(v) * scale for v in p)
            ix = max(0.0, min(px + pw, bx1) - max(px, bx0))
            iy = max(0.0, min(py + ph, by1) - max(py, by0))
            if ix * iy >= 0.5 * pw * ph and 0.67 < ph / max(1e-6, by1 - by0) < 1.5:
                out[k] = True
                break
    return out


def fit_prop_finder(features: np.ndarray, labels: np.ndarray, *, seed: int = 0, max_iter: int = 300,
                    max_depth: int = 4, learning_rate: float = 0.05) -> PropFinder:
    """Fit the boosted trees on candidates' features and whether each is a recorded prop (no early stopping:
    the rounds are fixed, so the same candidates give the same finder)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = np.asarray(labels, bool)
    if len(y) == 0 or y.all() or not y.any():
        raise InputError(f"fitting a prop finder needs candidates that are props and candidates that are not "
                         f"(got {int(y.sum())} of {len(y)})")
    est = HistGradientBoostingClassifier(max_depth=max_depth, learning_rate=learning_rate, max_iter=max_iter,
                                         early_stopping=False, random_state=seed)
    est.fit(np.asarray(features, np.float32), y.astype(np.int64))
    return PropFinder.from_estimator(est)


def sample_candidates(sample: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """A dataset sample's candidates as cue set 6 sees them (its image and placement mask at work size):
    ``(work scale, features, boxes)``."""
    from adcreative.inspect.cues import image_prop_candidates
    from adcreative.inspect.data import load_sample
    from adcreative.inspect.preprocess import placement_mask

    item = load_sample(sample)
    im = item.image.convert("RGB")
    mask, _ = placement_mask(item, im)
    return image_prop_candidates(np.asarray(im), mask)


def recorded_props(sample: Any) -> list[list[float]] | None:
    """The prop boxes a renderer recorded for a sample (``params.geometry.props``), or None when it recorded no
    geometry (an RF1M line, a hand-made set): then which regions are props is unknown, not "none"."""
    geometry = sample.params.get("geometry") if isinstance(sample.params, dict) else None
    if not isinstance(geometry, dict) or not isinstance(geometry.get("props"), list):
        return None
    return [list(p["box"]) for p in geometry["props"] if isinstance(p, dict) and len(p.get("box") or ()) == 4]


def candidate_table(samples: Sequence[Any], *, workers: int = 1,
                    log: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Candidates of every sample (each must have recorded props), labelled by its renderer's prop boxes:
    ``features``, ``labels``, ``row`` (the sample each came from)."""
    boxes_of = [recorded_props(s) for s in samples]
    if any(b is None for b in boxes_of):
        raise InputError("every sample must record its props (params.geometry.props: a set from dataset synth)")
    feats, labs, rows = [], [], []
    step = max(1, len(samples) // 10)

    def take(i: int, got: tuple[float, np.ndarray, np.ndarray]) -> None:
        scale, f, boxes = got
        feats.append(f)
        labs.append(match_props(boxes, boxes_of[i] or [], scale))
        rows.append(np.full(len(f), i))
        if log is not None and ((i + 1) % step == 0 or i + 1 == len(samples)):
            log(f"candidates: {i + 1}/{len(samples)} images")

    if workers > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            for i, got in enumerate(pool.imap(sample_candidates, samples, chunksize=8)):
                take(i, got)
    else:
        for i, s in enumerate(samples):
            take(i, sample_candidates(s))
    return {"features": np.concatenate(feats) if feats else np.zeros((0, N_FEATURES), np.float32),
            "labels": np.concatenate(labs) if labs else np.zeros(0, bool),
            "row": np.concatenate(rows) if rows else np.zeros(0, np.int64)}


def precision_recall(found: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Precision and recall of ``found`` against ``labels`` (NaN when undefined)."""
    found, labels = np.asarray(found, bool), np.asarray(labels, bool)
    p = float(labels[found].mean()) if found.any() else math.nan
    r = float(found[labels].mean()) if labels.any() else math.nan
    return p, r
