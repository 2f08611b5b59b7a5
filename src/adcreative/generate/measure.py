"""The one labeller of rendered ad images: an RF1M class from measurements, the same whichever renderer drew it.

A renderer reports what it drew (:class:`SceneReport`: where the whole clean cutout was placed, the support line
the product should rest on, props with their real-world heights, the solid objects it drew besides the product,
where the contact shadow lies) and the pixels it produced; :func:`measure` turns them into numbers against the
product's mask and its support, and :func:`classify` applies one set of rules to the numbers:

* **unsuitable**: part of the product is cut off by the canvas edge (``cut``), missing from the image (holes,
  tears, a wrong crop: ``missing``, measured against the clean cutout), or its detail is lost (pixelated or
  blurred: ``detail_loss``, the error against the clean pixels in units of the product's own detail);
* **space mismatch**: a gap between the product's base and its support (``gap_rel``), the base below the
  support line (sunk into it, ``sink_rel``), the base beside the support in mid-air (``overhang``), or the contact
  shadow away from the base (``shadow_offset``);
* **size mismatch**: the product's scale (pixels per cm) against recognisable props at real-world scale
  (``scale_ratio``), or a product lost in its canvas (``long_frac``);
* **indistinctiveness**: the share of the product's rim (sectors around it, weighed by product area) where the
  median colours just inside and just outside differ by less than ``LOW_DE`` CIE76 ΔE (``edge_low_frac``), or
  the median colour of the whole band just inside against the whole band just outside (``rim_de``: a product
  whose shaded side happens to stand out still melts into a backdrop of its own colour);
* **shape hallucination**: solid objects in the product's own colours touching its silhouette and growing out of
  it (``touch_px``, ``own_frac``): a pedestal, legs or an extension continuing the product, a duplicated part,
  a prop in its colours merged with it. A support of a contrasting material is not one, and neither is a
  surface reaching well past the product on both sides (a tabletop or shelf of its colour is a contrast
  problem, measured as such).

Each rule has a *defect* threshold and, below it, a *doubt* band: an available image must be clear of every
doubt band (plainly acceptable), and a defective one must cross its own class's threshold and no other.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from adcreative.core.types import CLASSES
from adcreative.generate.cutout import OPAQUE, silhouette

DEFECT_ORDER = ("unsuitable", "space_mismatch", "size_mismatch", "indistinctiveness", "shape_hallucination")
LOW_DE = 12.0  # ΔE (sector medians across the outline) under which product and surroundings blend
OWN_DE = 10.0  # ΔE to the product's nearest palette colour under which a pixel is "in the product's colours"

# (defect threshold, doubt threshold) per measurement
CUT = (0.03, 0.002)
MISSING = (0.03, 0.006)
DETAIL_LOSS = (0.45, 0.08)
GAP_REL = (0.04, 0.012)  # and at least GAP_PX pixels
GAP_PX = (4, 2)
OVERHANG = (0.5, 0.08)
SHADOW_OFFSET = (0.35, 0.15)
SCALE_RATIO = (1.8, 1.3)  # either way: product 1.8× too large or too small for its props
LONG_FRAC = (0.13, 0.22)  # product's longer side / canvas's shorter side, under which it is lost in the canvas
EDGE_LOW = (0.5, 0.2)
RIM_DE = (12.0, 18.0)  # ΔE between the whole inner band's median colour and the whole outer band's (under it)
TOUCH_PX = (10, 3)
OWN_FRAC = (0.015, 0.004)


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (…×3, 0–255) → CIELAB via OpenCV (float32 input expects 0–1)."""
    a = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return np.asarray(cv2.cvtColor(a, cv2.COLOR_RGB2LAB).reshape(np.shape(rgb)))


def delta_e(c1: np.ndarray, c2: np.ndarray) -> float:
    return float(np.linalg.norm(lab(np.asarray(c1, np.float32)) - lab(np.asarray(c2, np.float32))))


@functools.lru_cache(maxsize=128)
def _palette_cached(key: str, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    arr = np.frombuffer(data, np.uint8).reshape(shape)
    opaque = arr[..., :3][arr[..., 3] >= OPAQUE]
    pix = opaque if len(opaque) else arr[..., :3].reshape(-1, 3)
    sub = pix[:: max(1, len(pix) // 4000)].astype(np.float32)
    k = min(4, len(sub))
    cv2.setRNGSeed(0)  # k-means picks its start with OpenCV's RNG: fix it so the palette is reproducible
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centers = cv2.kmeans(sub, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    cols = np.concatenate([centers, np.median(pix, axis=0)[None].astype(np.float32)], axis=0)
    cols = np.concatenate([cols, cols * 0.8], axis=0)  # shapes "in the product's colours" may be drawn shaded
    out = lab(np.clip(cols, 0, 255)).astype(np.float32)
    out.setflags(write=False)
    return out


def product_palette(rgba: np.ndarray) -> np.ndarray:
    """The product's main colours and their shaded variants, in Lab ((k, 3), cached per cutout)."""
    arr = np.ascontiguousarray(rgba)
    data = arr.tobytes()
    return _palette_cached(hashlib.md5(data).hexdigest(), data, arr.shape)  # type: ignore[arg-type]


def inner_band(mask: np.ndarray, size: int) -> np.ndarray:
    """The band just inside a silhouette that a viewer compares with what surrounds it: it skips only the
    anti-aliased edge and is a few % of the product deep, so a thin contrasting outline (a phone's bezel, a
    printed rim) counts, and a highlight deep inside does not."""
    k3 = np.ones((3, 3), np.uint8)
    m = mask.astype(np.uint8)
    skip, band = max(1, round(0.004 * size)), max(3, round(0.025 * size))
    return np.asarray(cv2.erode(m, k3, iterations=skip).astype(bool)
                      & ~cv2.erode(m, k3, iterations=skip + band).astype(bool))


@functools.lru_cache(maxsize=128)
def _rim_cached(key: str, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    arr = np.frombuffer(data, np.uint8).reshape(shape)
    a = arr[..., 3] >= OPAQUE
    ring = inner_band(a, max(shape[:2]))
    pix = arr[..., :3][ring] if ring.any() else arr[..., :3][a]
    sub = lab(pix[:: max(1, len(pix) // 3000)].astype(np.float32)).astype(np.float32)
    k = min(3, len(sub))
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 15, 0.5)
    _, labels, centers = cv2.kmeans(sub, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    out = np.asarray(centers[int(np.bincount(labels.ravel(), minlength=k).argmax())], np.float32)
    out.setflags(write=False)
    return out


def rim_colour(rgba: np.ndarray) -> np.ndarray:
    """Lab of the colour covering most of the band just inside the product's outline: what the contrast rule
    compares a backdrop against (a renderer drawing *indistinctiveness* aims its set at it)."""
    arr = np.ascontiguousarray(rgba)
    data = arr.tobytes()
    return _rim_cached(hashlib.md5(data).hexdigest(), data, arr.shape)  # type: ignore[arg-type]


def rim_samples(rgba: np.ndarray, *, n: int = 400, band: str = "inner") -> np.ndarray:
    """Lab samples (about ``n``, evenly strided) of a cutout along its outline: what a backdrop or a room around
    the product must stand off. ``band``: ``"inner"`` is :func:`inner_band` (past the anti-aliased edge, a few %
    of the product deep); ``"edge"`` the outermost 4 px of the opaque silhouette, its edge pixels included. An
    empty band falls back to all opaque pixels, and no opaque pixel to all pixels."""
    a = rgba[..., 3] >= OPAQUE
    if band == "inner":
        ring = inner_band(a, max(rgba.shape[:2]))
    elif band == "edge":
        ring = a & ~cv2.erode(a.astype(np.uint8), np.ones((5, 5), np.uint8), iterations=2).astype(bool)
    else:
        raise ValueError(f"band must be 'inner' or 'edge', got {band!r}")
    px = rgba[..., :3][ring if ring.any() else a]
    if not len(px):
        px = rgba[..., :3].reshape(-1, 3)
    return lab(px[:: max(1, len(px) // n)].astype(np.float32))


def rim_median(rgb: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Median Lab colour of :func:`inner_band` (``mask``, ``size``) in ``rgb`` (…×3 or …×4), or of the whole
    mask when the band is empty: the product's rim as placed, as the contrast rule compares it."""
    ring = inner_band(mask, size)
    return np.asarray(np.median(lab(rgb[..., :3][ring if ring.any() else mask].astype(np.float32)), axis=0))


def nearest_palette_de(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Per colour (N×3 RGB): ΔE to the nearest palette colour."""
    if len(rgb) == 0:
        return np.zeros(0, np.float32)
    d = np.linalg.norm(lab(np.asarray(rgb, np.float32))[:, None, :] - palette[None], axis=-1)
    return np.asarray(d.min(axis=1), np.float32)


@dataclass
class Support:
    """The line the product should rest on (its contact line, canvas rows) and the support's extent there."""

    y: int
    x0: int
    x1: int
    kind: str = "floor"  # floor, table, podium, shelf, pedestal, ...


@dataclass
class Prop:
    """A prop standing in the scene: its box and its real-world height. ``cue``: a recognisable everyday object
    (a mug, a book, a potted plant) whose size a viewer knows, so it sets the scene's scale; decorative shapes
    (spheres, blocks) do not."""

    box: tuple[int, int, int, int]
    cm: float
    kind: str = ""
    cue: bool = True


@dataclass
class SceneReport:
    """What a renderer drew, in canvas pixels, for the labeller."""

    box: tuple[int, int, int, int]  # where the whole clean cutout was scaled to (may reach past the canvas)
    reference: np.ndarray  # the clean cutout at that size, RGBA: what the product should look like there
    product_cm: float  # the product's real height (catalogue.sizes)
    support: Support | None = None
    props: list[Prop] = field(default_factory=list)
    # H×W labels of the solid things drawn besides the product, one id per object (supports, props, grown parts;
    # 0 = none); a bool mask counts as one object
    objects: np.ndarray | None = None
    shadow: tuple[float, float] | None = None  # centre of the product's contact shadow, if it casts one
    palette: np.ndarray | None = None  # Lab palette of the catalogue cutout; from ``reference`` when None

    def geometry(self) -> dict[str, Any]:
        """The report as plain JSON, for ``GeneratedImage.params["geometry"]``."""
        s = self.support
        return {"product_box": [int(v) for v in self.box], "product_cm": round(float(self.product_cm), 2),
                "support": None if s is None else {"y": int(s.y), "x0": int(s.x0), "x1": int(s.x1), "kind": s.kind},
                "props": [{"box": [int(v) for v in p.box], "cm": round(float(p.cm), 2), "kind": p.kind, "cue": p.cue}
                          for p in self.props],
                "shadow": None if self.shadow is None else [round(float(v), 1) for v in self.shadow]}


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(cv2.GaussianBlur(a, (0, 0), sigma))


def measure(image: np.ndarray, visible: np.ndarray, rep: SceneReport) -> dict[str, Any]:
    """The measurements behind the label of a rendered image (H×W×3 uint8, before any degradation), given the
    mask of the product's own pixels in it (``visible``) and the renderer's report."""
    H, W = image.shape[:2]
    ref = rep.reference
    x0, y0 = int(rep.box[0]), int(rep.box[1])
    a = ref[..., 3] >= OPAQUE
    full_area = max(1, int(a.sum()))
    rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
    if not len(rows):
        raise ValueError("the reference cutout has no opaque pixels")
    ph = int(rows.max() - rows.min() + 1)
    pw = int(cols.max() - cols.min() + 1)
    bottom = y0 + int(rows.max())
    band = max(2, round(0.04 * ph))
    foot = np.nonzero(a[int(rows.max()) - band + 1 : int(rows.max()) + 1].any(axis=0))[0]
    fx0, fx1 = x0 + int(foot.min()), x0 + int(foot.max()) + 1

    vis = np.asarray(visible, bool)
    sil = silhouette(ref, rep.box, (H, W))
    cut = 1.0 - float(sil.sum()) / full_area
    hidden = sil & ~vis
    sup = rep.support
    below = np.zeros((H, 1), bool)
    if sup is not None:
        below[min(H, max(0, sup.y + 1)) :] = True
    missing = float((hidden & ~below).sum()) / full_area
    m: dict[str, Any] = {"cut": round(cut, 4), "missing": round(missing, 4), "product_h": ph,
                         "long_frac": round(max(ph, pw) / min(H, W), 4)}

    # -- the product against its support ---------------------------------------------------------------
    if sup is not None:
        gap = int(sup.y - bottom)
        overlap = max(0, min(fx1, sup.x1) - max(fx0, sup.x0))
        m.update(gap_px=gap, gap_rel=round(gap / ph, 4),
                 overhang=round(1.0 - overlap / max(1, fx1 - fx0), 4))
        if rep.shadow is not None:
            contact = ((fx0 + fx1) / 2, min(bottom, sup.y))
            m["shadow_offset"] = round(math.hypot(rep.shadow[0] - contact[0], rep.shadow[1] - contact[1]) / ph, 4)

    # -- scale against recognisable props ------------------------------------------------------------------
    logs = [math.log((ph / rep.product_cm) / ((p.box[3] - p.box[1]) / p.cm)) for p in rep.props
            if p.cue and p.box[3] > p.box[1] and p.cm > 0]
    m["scale_ratio"] = round(math.exp(float(np.median(logs))), 4) if logs else None
    m["n_cues"] = len(logs)

    # -- pixels around the product (a window around its box) ---------------------------------------------
    margin = max(16, int(0.35 * max(ph, pw)))
    wx0, wy0 = max(0, x0 - margin), max(0, y0 - margin)
    wx1, wy1 = min(W, x0 + ref.shape[1] + margin), min(H, y0 + ref.shape[0] + margin)
    if wx1 <= wx0 or wy1 <= wy0 or not vis[wy0:wy1, wx0:wx1].any():
        m.update(edge_low_frac=0.0, edge_de=None, touch_px=0, own_frac=0.0, detail_loss=0.0)
        return m
    img = image[wy0:wy1, wx0:wx1].astype(np.float32)
    V = vis[wy0:wy1, wx0:wx1]
    soft = np.zeros((H, W), bool)  # anything of the cutout, soft edge included: neither inside nor outside
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x0 + ref.shape[1]), min(H, y0 + ref.shape[0])
    if sx1 > sx0 and sy1 > sy0:
        soft[sy0:sy1, sx0:sx1] = ref[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0, 3] > 8
    soft_w = soft[wy0:wy1, wx0:wx1] & ~hidden[wy0:wy1, wx0:wx1]  # a hole shows the scene: that is outside
    k3 = np.ones((3, 3), np.uint8)

    # contrast across the outline, sector by sector around the product: the median colour of a band just inside
    # against a band just outside; both bands skip the outline's own pixels (cutout rims, anti-aliasing), and
    # medians ignore rim light and small print. Sectors weigh by how much product lies along them, so a thin
    # handle in a contrasting colour does not save a body that melts into its backdrop.
    inner = inner_band(V, max(ph, pw))
    band = max(3, round(0.025 * max(ph, pw)))
    out_u = (V | soft_w).astype(np.uint8)
    outer = cv2.dilate(out_u, k3, iterations=2 + band).astype(bool) & ~cv2.dilate(out_u, k3, iterations=2).astype(bool)
    outer &= ~_near_border(outer.shape, (wx0, wy0), (W, H))
    m["edge_low_frac"], m["edge_de"] = sector_contrast(img, V, inner, outer)
    if inner.any() and outer.any():
        m["rim_de"] = round(float(np.linalg.norm(np.median(lab(img[inner]), axis=0)
                                                 - np.median(lab(img[outer]), axis=0))), 3)

    # solid objects in the product's colours growing out of its silhouette
    touch_px, own_area = 0, 0
    if rep.objects is not None:
        pal = rep.palette if rep.palette is not None else product_palette(ref)
        labels = np.asarray(rep.objects).astype(np.int32)
        win = labels[wy0:wy1, wx0:wx1] * ~(V | soft_w)
        near = cv2.dilate(V.astype(np.uint8), k3, iterations=3).astype(bool) & ~V
        vcols = np.nonzero(V.any(axis=0))[0]
        vx0, vx1 = int(vcols.min()) + wx0, int(vcols.max()) + 1 + wx0
        reach = 0.25 * (vx1 - vx0)
        smooth = _blur(img, 1.0)
        for oid in np.unique(win[near]):
            if oid == 0:
                continue
            obj = labels == oid
            ocols = np.nonzero(obj.any(axis=0))[0]
            if ocols.min() < vx0 - reach and ocols.max() + 1 > vx1 + reach:
                continue  # reaching well past the product on both sides: a surface it stands on, not a grown part
            mine = win == oid
            own = np.zeros_like(mine)
            own[mine] = nearest_palette_de(smooth[mine], pal) < OWN_DE
            t = int((own & near).sum())
            if t and t >= 0.5 * int((mine & near).sum()):  # in the product's colours where it meets the product
                touch_px += t
                own_area += int(own.sum())
    m["touch_px"] = touch_px
    m["own_frac"] = round(own_area / full_area, 4)

    # detail of the product's visible pixels against the clean cutout
    core = cv2.erode(V.astype(np.uint8), k3, iterations=2).astype(bool)
    cy, cx = np.nonzero(core)
    ry, rx = cy + wy0 - y0, cx + wx0 - x0
    ok = (ry >= 0) & (ry < ref.shape[0]) & (rx >= 0) & (rx < ref.shape[1])
    cy, cx, ry, rx = cy[ok], cx[ok], ry[ok], rx[ok]
    if len(cy) >= 16:
        ref_rgb = ref[..., :3].astype(np.float32)
        detail = np.abs(ref_rgb - _blur(ref_rgb, max(1.0, ph / 80)))
        err = float(np.abs(img[cy, cx] - ref_rgb[ry, rx]).mean())
        m["detail_loss"] = round(err / (float(detail[ry, rx].mean()) + 2.0), 4)
    else:
        m["detail_loss"] = 0.0
    return m


SECTORS = 32


def _near_border(shape: tuple[int, ...], origin: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """Pixels of a window within 2 px of the canvas border (a cut edge is not an outline against a backdrop)."""
    h, w = shape[:2]
    ys = np.arange(h)[:, None] + origin[1]
    xs = np.arange(w)[None, :] + origin[0]
    return np.asarray((xs <= 1) | (xs >= canvas[0] - 2) | (ys <= 1) | (ys >= canvas[1] - 2))


def sector_contrast(img: np.ndarray, V: np.ndarray, inner: np.ndarray, outer: np.ndarray
                     ) -> tuple[float, float | None]:
    """(share of the product's rim, by inner-band area, whose sector ΔE is under LOW_DE; weighted median ΔE)."""
    ys, xs = np.nonzero(V)
    cy, cx = float(ys.mean()), float(xs.mean())

    def sectors(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, x = np.nonzero(mask)
        return y, x, (((np.arctan2(y - cy, x - cx) + np.pi) / (2 * np.pi) * SECTORS).astype(np.int64) % SECTORS)

    iy, ix, isec = sectors(inner)
    oy, ox, osec = sectors(outer)
    if not len(iy) or not len(oy):
        return 0.0, None
    lin, lout = lab(img[iy, ix]), lab(img[oy, ox])
    des, ws = [], []
    for k in range(SECTORS):
        a, o = lin[isec == k], lout[osec == k]
        if len(a) >= 5 and len(o) >= 5:
            des.append(float(np.linalg.norm(np.median(a, axis=0) - np.median(o, axis=0))))
            ws.append(float(len(a)))
    if not des:
        return 0.0, None
    d, w = np.asarray(des), np.asarray(ws)
    order = np.argsort(d)
    med = float(d[order][np.searchsorted(np.cumsum(w[order]), w.sum() / 2)])
    return round(float(w[d < LOW_DE].sum() / w.sum()), 4), round(med, 3)


def _ratio_off(r: float | None, limit: float) -> bool:
    return r is not None and abs(math.log(r)) > math.log(limit)


def classify(m: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(defects found, classes in doubt) for a measurement dict; a class is never in both."""
    found: list[str] = []
    doubt: list[str] = []

    def rule(cls: str, i: int) -> bool:
        if cls == "unsuitable":
            return m["cut"] > CUT[i] or m["missing"] > MISSING[i] or m.get("detail_loss", 0.0) > DETAIL_LOSS[i]
        if cls == "space_mismatch":
            if "gap_px" not in m:
                return False
            g, s = m["gap_px"], -m["gap_px"]
            return ((g >= GAP_PX[i] and m["gap_rel"] > GAP_REL[i]) or (s >= GAP_PX[i] and -m["gap_rel"] > GAP_REL[i])
                    or m["overhang"] > OVERHANG[i] or m.get("shadow_offset", 0.0) > SHADOW_OFFSET[i])
        if cls == "size_mismatch":
            return _ratio_off(m.get("scale_ratio"), SCALE_RATIO[i]) or m["long_frac"] < LONG_FRAC[i]
        if cls == "indistinctiveness":
            return m.get("edge_low_frac", 0.0) > EDGE_LOW[i] or m.get("rim_de", 99.0) < RIM_DE[i]
        return m.get("touch_px", 0) >= TOUCH_PX[i] and m.get("own_frac", 0.0) >= OWN_FRAC[i] if i == 0 else (
            m.get("touch_px", 0) >= TOUCH_PX[i] or m.get("own_frac", 0.0) >= OWN_FRAC[i])

    for cls in DEFECT_ORDER:
        if rule(cls, 0):
            found.append(cls)
        elif rule(cls, 1):
            doubt.append(cls)
    return found, doubt


def decide(requested: str | None, found: list[str]) -> str:
    """The label of a render: the requested defect when it was found, else the first defect found (in
    ``DEFECT_ORDER``), else available."""
    if requested is not None and requested != "available" and requested in found:
        return requested
    return found[0] if found else "available"


def agrees(requested: str, found: list[str], doubt: list[str]) -> bool:
    """A render shows what was asked: available is clear of every rule and doubt band; a defect is found and
    no other class is found."""
    if requested not in CLASSES:
        raise ValueError(f"unknown class {requested!r}")
    if requested == "available":
        return not found and not doubt
    return found == [requested]


def label_render(image: np.ndarray, visible: np.ndarray, rep: SceneReport, requested: str | None
                 ) -> dict[str, Any]:
    """Measure, classify and decide in one go: the ``params`` entries every renderer records
    (``measured``, ``defects``, ``doubtful``, ``label``, ``agrees``, ``geometry``)."""
    m = measure(image, visible, rep)
    found, doubt = classify(m)
    label = decide(requested, found)
    return {"measured": m, "defects": found, "doubtful": doubt, "label": label,
            "agrees": agrees(requested, found, doubt) if requested is not None else None,
            "geometry": rep.geometry()}
