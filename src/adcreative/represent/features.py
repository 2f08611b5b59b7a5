"""Explicit, human-readable features of a creative image.

Every feature is something an ad reviewer or a selection model can reason about ("the background is
mostly beige", "the copy says 30% OFF", "the product covers 22% of the canvas"), and the explanation
stage cites them. Extraction is deterministic: the same pixels give the same features.

Entry points:

* :func:`extract` — ``extract(images, masks=None, layouts=None, logos=None) -> list[dict]`` (cheap to
  call from the demo; the OCR engine and Haar cascade are built once per process).
* :class:`FeatureExtractor` — the batched stage class (heavy state in ``__init__``, work in ``__call__``).
* :func:`features_for_creatives` — the store-cached path used by ``adcreative represent features``.
* :func:`to_vector` / :data:`NUMERIC_FEATURES` — the fixed numeric vector selection models consume.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.types import Box

if TYPE_CHECKING:
    from adcreative.core.store import Store
    from adcreative.core.types import Creative

# Bump when any feature's definition changes: the store cache is keyed by (name, version).
FEATURES_NAME = "explicit"
FEATURES_VERSION = "2"  # 2: the stored placement mask (was rebuilt from the layout)

# Work on images at most this large: features are then comparable across canvas sizes and cheap.
ANALYSIS_SIDE = 512

# Layout boxes that hold copy (the compositor's names); OCR reads these crops when they are known.
TEXT_BOXES = ("headline", "copy", "price", "badge", "cta", "title")

# The numeric features, in order, that :func:`to_vector` returns (selection models and the kNN index use it).
NUMERIC_FEATURES: tuple[str, ...] = (
    "aspect_ratio",
    "bg_L", "bg_a", "bg_b", "bg_share", "bg_n_colors",
    "product_area", "product_cx", "product_cy",
    "contrast_de", "luminance_contrast",
    "text_area", "n_text_boxes", "n_words",
    "has_sale", "has_new", "has_free_shipping", "percent_off", "has_price", "min_price",
    "n_faces", "face_area",
    "logo_score",
    "sharpness", "colorfulness", "brightness",
)


# -- colour helpers -------------------------------------------------------------------------------
def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (…, 3) → CIE Lab (L in [0, 100], a/b roughly [-128, 127]), D65."""
    import cv2

    a = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    lab = cv2.cvtColor(a, cv2.COLOR_RGB2Lab)
    return lab.reshape(np.shape(rgb))


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    import cv2

    a = np.asarray(lab, dtype=np.float32).reshape(-1, 1, 3)
    rgb = cv2.cvtColor(a, cv2.COLOR_Lab2RGB)
    return np.clip(np.round(rgb.reshape(np.shape(lab)) * 255), 0, 255).astype(np.uint8)


def relative_luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG 2 relative luminance of sRGB uint8 colours."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.asarray(lin @ np.array([0.2126, 0.7152, 0.0722]))


def contrast_ratio(rgb1: np.ndarray, rgb2: np.ndarray) -> float:
    """WCAG contrast ratio in [1, 21] between two sRGB colours (what legibility guidelines use)."""
    l1, l2 = float(relative_luminance(rgb1)), float(relative_luminance(rgb2))
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def kmeans(x: np.ndarray, k: int, *, iters: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means++ (centres, labels); small and dependency-free, for colour palettes."""
    rng = np.random.default_rng(seed)
    n = len(x)
    k = max(1, min(k, n))
    centres = [x[rng.integers(n)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        if d2.sum() <= 1e-12:
            break
        centres.append(x[rng.choice(n, p=d2 / d2.sum())])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.stack(centres)
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iters):
        dist = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        new = dist.argmin(1)
        if _ > 0 and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(c)):
            sel = labels == j
            if sel.any():
                c[j] = x[sel].mean(0)
    return c, labels


def dominant_colors(rgb: np.ndarray, where: np.ndarray | None = None, *, k: int = 3,
                    max_samples: int = 6000, merge_de: float = 8.0) -> list[dict[str, Any]]:
    """Dominant colours of the pixels ``where`` is true: k-means in Lab (perceptual distances), clusters
    closer than ``merge_de`` ΔE merged, sorted by share. Each: ``{"rgb", "lab", "share"}``."""
    px = rgb.reshape(-1, 3) if where is None else rgb[where]
    if len(px) == 0:
        return []
    rng = np.random.default_rng(0)
    if len(px) > max_samples:
        px = px[rng.choice(len(px), max_samples, replace=False)]
    lab = rgb_to_lab(px.astype(np.uint8)).astype(np.float64)
    centres, labels = kmeans(lab, k)
    shares = np.bincount(labels, minlength=len(centres)).astype(np.float64) / len(labels)
    # merge near-identical clusters (a flat background split in k pieces is one colour)
    order = list(np.argsort(-shares))
    merged: list[tuple[np.ndarray, float]] = []
    for j in order:
        if shares[j] <= 0:
            continue
        for i, (c, s) in enumerate(merged):
            if np.linalg.norm(c - centres[j]) < merge_de:
                merged[i] = ((c * s + centres[j] * shares[j]) / (s + shares[j]), s + shares[j])
                break
        else:
            merged.append((centres[j], float(shares[j])))
    merged.sort(key=lambda t: -t[1])
    out = []
    for c, s in merged:
        out.append({"rgb": [int(v) for v in lab_to_rgb(c[None].astype(np.float32))[0]],
                    "lab": [round(float(v), 2) for v in c], "share": round(float(s), 4)})
    return out


# -- image statistics -----------------------------------------------------------------------------
def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian (Pech-Pacheco et al.): low for blurry or heavily smoothed images."""
    import cv2

    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness metric M3: 0 for grey images, ~100+ for vivid ones."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def estimate_mask(rgb: np.ndarray, *, threshold: float = 18.0) -> np.ndarray:
    """Product mask when none is known: pixels far (ΔE) from the border's colours, largest component.

    A fallback for images from outside the pipeline; creatives from our generators carry their mask."""
    import cv2

    h, w = rgb.shape[:2]
    lab = rgb_to_lab(rgb).astype(np.float32)
    bw = max(2, min(h, w) // 40)
    border = np.concatenate([lab[:bw].reshape(-1, 3), lab[-bw:].reshape(-1, 3),
                             lab[:, :bw].reshape(-1, 3), lab[:, -bw:].reshape(-1, 3)])
    centres, _ = kmeans(border[:: max(1, len(border) // 2000)].astype(np.float64), 4)
    dist = np.min(np.linalg.norm(lab[:, :, None, :] - centres[None, None].astype(np.float32), axis=-1), axis=-1)
    fg = (dist > threshold).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, lbl, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)  # type: ignore[call-overload]
    if n <= 1:
        return np.zeros((h, w), dtype=bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    m = (lbl == biggest).astype(np.uint8)
    # fill holes so a product with a background-coloured label is still one object
    cnts, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(m)
    cv2.drawContours(filled, cnts, -1, 1, thickness=-1)
    return filled.astype(bool)


# -- copy text --------------------------------------------------------------------------------------
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "CNY", "￥": "CNY", "₹": "INR", "₩": "KRW",
             "usd": "USD", "eur": "EUR", "gbp": "GBP", "cny": "CNY", "rmb": "CNY", "元": "CNY"}
_PRICE_PREFIX = re.compile(r"(US\$|\$|€|£|¥|￥|₹|₩|USD|EUR|GBP|CNY|RMB)\s?(\d{1,3}(?:[,.\s]\d{3})*(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)",
                           re.IGNORECASE)
_PRICE_SUFFIX = re.compile(r"(\d+(?:[.,]\d{1,2})?)\s?(€|元|USD|EUR|GBP|CNY|RMB)", re.IGNORECASE)
_PERCENT = re.compile(r"(\d{1,2})\s?%")
# keyword → pattern; matched on the text and on its de-spaced form (OCR often drops spaces)
_PROMO_WORDS: dict[str, tuple[str, ...]] = {
    "sale": ("sale", "clearance", "deal", "discount", "促销", "特价", "折"),
    "new": ("new", "newarrival", "justlanded", "新品", "上新"),
    "free_shipping": ("freeshipping", "freedelivery", "包邮", "免运费"),
    "limited": ("limited", "onlytoday", "todayonly", "lastchance", "限时", "限量"),
    "bundle": ("buy1get1", "bogo", "2for1", "buyonegetone", "买一送一"),
}


def _parse_number(s: str) -> float:
    s = s.replace(" ", "")
    if "," in s and "." in s:  # 1,299.00 or 1.299,00
        s = s.replace(",", "") if s.rfind(".") > s.rfind(",") else s.replace(".", "").replace(",", ".")
    elif "," in s:
        head, _, tail = s.rpartition(",")
        s = f"{head.replace(',', '')}.{tail}" if len(tail) <= 2 else s.replace(",", "")
    return float(s)


def parse_promo(text: str) -> dict[str, Any]:
    """Promotional signals in copy text: promo words, the largest ``NN%`` and prices with currency."""
    low = text.lower()
    compact = re.sub(r"[\s\-_!.,:]+", "", low)
    words = set(re.findall(r"[a-z]+", low))
    found: dict[str, bool] = {}
    for key, pats in _PROMO_WORDS.items():
        hit = False
        for p in pats:
            # short latin words need word boundaries ("new" inside "renewal" is no promo); long ones
            # and CJK are matched inside the de-spaced text since OCR merges words
            if p.isascii() and len(p) <= 4:
                hit = p in words or bool(re.search(rf"(?:^|\d|%|sale|off|free){p}(?:$|arrival|in|\d)", compact))
            else:
                hit = p in compact
            if hit:
                break
        found[key] = hit
    percents = [int(m) for m in _PERCENT.findall(text) if 0 < int(m) < 100]
    prices: list[dict[str, Any]] = []
    for m in _PRICE_PREFIX.finditer(text):
        try:
            prices.append({"value": _parse_number(m.group(2)), "currency": _CURRENCY.get(m.group(1).lower().replace("us$", "$"), "USD")})
        except ValueError:
            continue
    for m in _PRICE_SUFFIX.finditer(text):
        try:
            prices.append({"value": _parse_number(m.group(1)), "currency": _CURRENCY.get(m.group(2).lower(), m.group(2).upper())})
        except ValueError:
            continue
    if percents and "off" in compact:
        found["sale"] = True
    return {**{f"has_{k}": v for k, v in found.items()}, "percent_off": max(percents) if percents else 0,
            "prices": prices}


_OCR_LOCK = threading.Lock()
_OCR_ENGINE: Any = None


def ocr_engine() -> Any:
    """The process-wide RapidOCR engine (PP-OCRv4 ONNX models shipped in the wheel), built on first use."""
    global _OCR_ENGINE
    with _OCR_LOCK:
        if _OCR_ENGINE is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as e:  # pragma: no cover - depends on the install
                raise RuntimeError("OCR needs rapidocr-onnxruntime: pip install adcreative[represent] and "
                                   "rapidocr-onnxruntime --no-deps (see docs/represent.md)") from e
            # one ONNX Runtime thread per session: its default spin-waiting pool is 2x slower on 2 shared cores,
            # and batch parallelism comes from the executors (processes), not from threads here
            _OCR_ENGINE = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
        return _OCR_ENGINE


def read_text(rgb: np.ndarray, *, min_score: float = 0.5) -> list[dict[str, Any]]:
    """OCR: ``[{"box": [x0, y0, x1, y1], "text", "score"}]`` in reading order (top to bottom, left to right)."""
    # RapidOCR expects OpenCV's BGR; ad copy is set upright, so the angle classifier is skipped
    result, _ = ocr_engine()(np.ascontiguousarray(rgb[..., ::-1]), use_cls=False)
    out: list[dict[str, Any]] = []
    for quad, text, score in result or []:
        q = np.asarray(quad, dtype=np.float64)
        if float(score) < min_score or not str(text).strip():
            continue
        out.append({"box": [int(q[:, 0].min()), int(q[:, 1].min()), int(np.ceil(q[:, 0].max())), int(np.ceil(q[:, 1].max()))],
                    "text": str(text).strip(), "score": round(float(score), 4)})
    out.sort(key=lambda r: (r["box"][1] // 16, r["box"][0]))
    return out


# -- faces and logos --------------------------------------------------------------------------------
_CASCADES: dict[str, Any] = {}


def detect_faces(gray: np.ndarray, *, min_frac: float = 0.06) -> list[list[int]]:
    """Frontal faces with OpenCV's Haar cascade (shipped in opencv-python-headless<5): boxes x0,y0,x1,y1."""
    import cv2

    with _OCR_LOCK:
        if "face" not in _CASCADES:
            path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
            casc = cv2.CascadeClassifier(path)
            if casc.empty():
                raise RuntimeError(f"Haar cascade missing at {path}: install opencv-python-headless<5")
            _CASCADES["face"] = casc
    side = max(20, int(min(gray.shape) * min_frac))
    faces = _CASCADES["face"].detectMultiScale(gray, scaleFactor=1.1, minNeighbors=6, minSize=(side, side))
    return [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h in (faces if len(faces) else [])]


def match_logo(rgb: np.ndarray, logo: Image.Image, *, scales: Sequence[float] = (0.08, 0.11, 0.15, 0.2, 0.27, 0.36, 0.5)
               ) -> dict[str, Any]:
    """Is the brand logo in the image? Two matchers, best score wins:

    * ORB keypoints + ratio test + RANSAC homography (scale/rotation invariant; needs texture), score =
      inliers / 25 capped at 1;
    * multi-scale masked normalised cross-correlation (robust for flat, small logos), score = NCC peak.

    Returns ``{"logo_score" in [0, 1], "logo_box" or None, "logo_method"}``."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    lg = logo.convert("RGBA")
    la = np.asarray(lg)
    lmask = la[..., 3] > 127
    if lmask.sum() < 16:
        raise InputError("the logo image is empty (no opaque pixels)")
    ys, xs = np.nonzero(lmask)
    la = la[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    lmask = lmask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    lgray = cv2.cvtColor(la[..., :3], cv2.COLOR_RGB2GRAY)
    best: dict[str, Any] = {"logo_score": 0.0, "logo_box": None, "logo_method": "none"}

    # ORB: resize the logo to a size comparable to the image's so both have enough keypoints
    orb = cv2.ORB_create(nfeatures=1500)  # type: ignore[attr-defined]
    kp1, d1 = orb.detectAndCompute(cv2.resize(lgray, _fit(lgray.shape, 256)), (cv2.resize(lmask.astype(np.uint8) * 255, _fit(lgray.shape, 256))))
    kp2, d2 = orb.detectAndCompute(gray, None)
    if d1 is not None and d2 is not None and len(kp1) >= 8 and len(kp2) >= 8:
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(d1, d2, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
        if len(good) >= 8:
            src = np.array([kp1[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
            dst = np.array([kp2[m.trainIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
            h_mat, inl = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
            if h_mat is not None and inl is not None:
                n_in = int(inl.sum())
                score = min(1.0, n_in / 25.0)
                if score > best["logo_score"]:
                    sh, sw = _fit(lgray.shape, 256)[::-1]
                    corners = cv2.perspectiveTransform(np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], dtype=np.float32).reshape(-1, 1, 2), h_mat)
                    c = corners.reshape(-1, 2)
                    best = {"logo_score": round(score, 4), "logo_method": "orb",
                            "logo_box": [int(c[:, 0].min()), int(c[:, 1].min()), int(c[:, 0].max()), int(c[:, 1].max())]}

    # masked NCC over scales of the image's short side
    side = min(gray.shape)
    lh, lw = lgray.shape
    for s in scales:
        tw = max(8, round(side * s * lw / max(lh, lw)))
        th = max(8, round(side * s * lh / max(lh, lw)))
        if tw >= gray.shape[1] or th >= gray.shape[0]:
            continue
        t = cv2.resize(lgray, (tw, th), interpolation=cv2.INTER_AREA)
        tm = cv2.resize(lmask.astype(np.uint8) * 255, (tw, th), interpolation=cv2.INTER_NEAREST)
        if t[tm > 0].std() < 2:  # a flat template correlates with anything flat
            continue
        res = cv2.matchTemplate(gray, t, cv2.TM_CCOEFF_NORMED, mask=tm)
        res = np.nan_to_num(res, nan=0.0, posinf=0.0, neginf=0.0)
        _, mx, _, loc = cv2.minMaxLoc(res)
        if mx > best["logo_score"]:
            best = {"logo_score": round(float(min(mx, 1.0)), 4), "logo_method": "ncc",
                    "logo_box": [int(loc[0]), int(loc[1]), int(loc[0] + tw), int(loc[1] + th)]}
    return best


def _fit(shape: tuple[int, ...], side: int) -> tuple[int, int]:
    h, w = shape[:2]
    s = side / max(h, w)
    return max(8, round(w * s)), max(8, round(h * s))


# -- the extractor ----------------------------------------------------------------------------------
@dataclass
class CreativeInput:
    """One image to describe, with what is known about it."""

    image: Image.Image
    mask: Image.Image | np.ndarray | None = None  # where the product's pixels are
    layout: Mapping[str, Box | Sequence[int]] | None = None  # layout boxes in image pixels
    logo: Image.Image | None = None  # the brand's logo, for the logo match


class FeatureExtractor:
    """Batched explicit-feature extraction. Heavy state (OCR engine, cascades) is built on first use and
    shared by every instance in the process, so local and Ray executors can both call ``__call__``."""

    name = FEATURES_NAME
    version = FEATURES_VERSION

    def __init__(self, *, ocr: bool = True, faces: bool = True, n_colors: int = 3,
                 logo_threshold: float = 0.6) -> None:
        self.ocr = ocr
        self.faces = faces
        self.n_colors = n_colors
        self.logo_threshold = logo_threshold

    def __call__(self, batch: Sequence[CreativeInput], progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            out.append(self.one(item))
            if progress is not None:
                progress(1)
        return out

    def one(self, item: CreativeInput) -> dict[str, Any]:
        import cv2

        if not isinstance(item.image, Image.Image):
            raise InputError(f"expected a PIL image, got {type(item.image).__name__}")
        w0, h0 = item.image.size
        rgb_full = np.asarray(item.image.convert("RGB"))
        s = min(1.0, ANALYSIS_SIDE / max(w0, h0))
        size = (max(1, round(w0 * s)), max(1, round(h0 * s)))
        rgb = np.asarray(item.image.convert("RGB").resize(size, Image.Resampling.BILINEAR)) if s < 1 else rgb_full
        h, w = rgb.shape[:2]

        if item.mask is not None:
            m = item.mask if isinstance(item.mask, np.ndarray) else np.asarray(item.mask.convert("L"))
            if m.shape[:2] != (h0, w0):
                raise InputError(f"mask is {m.shape[1]}×{m.shape[0]} but the image is {w0}×{h0}")
            on = m if m.dtype == bool else m > 127  # boolean masks, or 0–255 alpha/L masks
            mask = np.asarray(Image.fromarray(on.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127
            mask_source = "given"
        else:
            mask = estimate_mask(rgb)
            mask_source = "estimated"

        f: dict[str, Any] = {"version": FEATURES_VERSION, "width": w0, "height": h0,
                             "aspect_ratio": round(w0 / h0, 4), "mask_source": mask_source}

        # product geometry
        area = float(mask.mean())
        f["product_area"] = round(area, 4)
        if mask.any():
            ys, xs = np.nonzero(mask)
            f["product_cx"], f["product_cy"] = round(float(xs.mean()) / w, 4), round(float(ys.mean()) / h, 4)
            f["product_box"] = [round(int(xs.min()) / s), round(int(ys.min()) / s), round((int(xs.max()) + 1) / s),
                                round((int(ys.max()) + 1) / s)]
        else:
            f["product_cx"] = f["product_cy"] = 0.5
            f["product_box"] = None

        # background colours: k-means in Lab over non-product pixels (text boxes kept: copy colours are
        # part of the look; they rarely dominate)
        bg = ~mask
        colors = dominant_colors(rgb, bg if bg.any() else None, k=self.n_colors)
        f["bg_colors"] = colors
        top: dict[str, Any] = colors[0] if colors else {"lab": [0.0, 0.0, 0.0], "share": 0.0, "rgb": [0, 0, 0]}
        f["bg_L"], f["bg_a"], f["bg_b"] = top["lab"]
        f["bg_share"] = top["share"]
        f["bg_n_colors"] = sum(1 for c in colors if c["share"] >= 0.1)

        # product/background contrast, measured against the background that touches the product (a ring),
        # which is what the eye compares, not the far corners
        if mask.any() and bg.any():
            k = max(3, min(h, w) // 25)
            ring = cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool) & bg
            if not ring.any():
                ring = bg
            lab = rgb_to_lab(rgb).astype(np.float64)
            pl, rl = lab[mask].mean(0), lab[ring].mean(0)
            f["contrast_de"] = round(float(np.linalg.norm(pl - rl)), 3)
            f["luminance_contrast"] = round(contrast_ratio(rgb[mask].mean(0), rgb[ring].mean(0)), 4)
        else:
            f["contrast_de"] = 0.0
            f["luminance_contrast"] = 1.0

        # copy text
        text_boxes: list[dict[str, Any]] = []
        if self.ocr:
            text_boxes = self._ocr(rgb_full, item.layout)
        f["text_boxes"] = text_boxes
        # with a known layout, text outside the copy boxes is print on the product itself, not ad copy
        if item.layout and any(t.get("role") for t in text_boxes):
            f["product_text"] = " ".join(t["text"] for t in text_boxes if t.get("role") == "other")
            text_boxes = [t for t in text_boxes if t.get("role") != "other"]
        f["text"] = " ".join(t["text"] for t in text_boxes)
        f["n_text_boxes"] = len(text_boxes)
        f["n_words"] = len(re.findall(r"\w+", f["text"]))
        f["text_area"] = round(sum((b[2] - b[0]) * (b[3] - b[1]) for b in (t["box"] for t in text_boxes)) / (w0 * h0), 4)
        promo = parse_promo(f["text"])
        f.update({k: v for k, v in promo.items() if k != "prices"})
        f["prices"] = promo["prices"]
        f["has_price"] = bool(promo["prices"])
        f["min_price"] = min((p["value"] for p in promo["prices"]), default=0.0)

        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        faces = detect_faces(gray) if self.faces else []
        f["faces"] = [[round(v / s) for v in b] for b in faces]
        f["n_faces"] = len(faces)
        f["face_area"] = round(sum((b[2] - b[0]) * (b[3] - b[1]) for b in faces) / (w * h), 4)

        if item.logo is not None:
            lm = match_logo(rgb, item.logo)
            lm["logo_box"] = [round(v / s) for v in lm["logo_box"]] if lm["logo_box"] else None
            f.update(lm)
            f["logo_found"] = lm["logo_score"] >= self.logo_threshold
        else:
            f.update({"logo_score": 0.0, "logo_box": None, "logo_method": "no_logo", "logo_found": False})

        f["sharpness"] = round(sharpness(gray), 3)
        f["colorfulness"] = round(colorfulness(rgb), 3)
        f["brightness"] = round(float(gray.mean()) / 255.0, 4)
        return f

    def _ocr(self, rgb: np.ndarray, layout: Mapping[str, Box | Sequence[int]] | None) -> list[dict[str, Any]]:
        boxes = []
        for key, b in (layout or {}).items():
            if key in TEXT_BOXES:
                bb = b if isinstance(b, Box) else Box.from_list(list(b))
                boxes.append((key, bb))
        if not boxes:
            return read_text(rgb)
        # one pass over the whole canvas (the detector costs the same for a crop as for the canvas), then each
        # line is given the role of the layout box it overlaps most
        out = []
        for r in read_text(rgb):
            x0, y0, x1, y1 = r["box"]
            best, best_overlap = None, 0
            for key, b in boxes:
                ov = max(0, min(x1, b.x1) - max(x0, b.x0)) * max(0, min(y1, b.y1) - max(y0, b.y0))
                if ov > best_overlap:
                    best, best_overlap = key, ov
            out.append({**r, "role": best or "other"})
        out.sort(key=lambda r: (r["box"][1] // 16, r["box"][0]))
        return out


def extract(images: Sequence[Image.Image], masks: Sequence[Image.Image | np.ndarray | None] | None = None,
            layouts: Sequence[Mapping[str, Box | Sequence[int]] | None] | None = None,
            logos: Sequence[Image.Image | None] | None = None, *, ocr: bool = True, faces: bool = True) -> list[dict[str, Any]]:
    """Explicit features of each image (see the module docstring); masks/layouts/logos align with images."""
    n = len(images)
    for name, seq in (("masks", masks), ("layouts", layouts), ("logos", logos)):
        if seq is not None and len(seq) != n:
            raise InputError(f"{name} has {len(seq)} entries for {n} images")
    items = [CreativeInput(images[i], masks[i] if masks else None, layouts[i] if layouts else None,
                           logos[i] if logos else None) for i in range(n)]
    return FeatureExtractor(ocr=ocr, faces=faces)(items)


def to_vector(features: Mapping[str, Any]) -> np.ndarray:
    """The numeric features in :data:`NUMERIC_FEATURES` order, as float32 (booleans → 0/1)."""
    return np.array([float(features.get(k, 0.0) or 0.0) for k in NUMERIC_FEATURES], dtype=np.float32)


# -- the store-cached path --------------------------------------------------------------------------
def creative_mask(store: Store, creative: Creative) -> np.ndarray | None:
    """The product mask of a stored creative as booleans: the placement mask stored at generation (rebuilt
    from the layout for a creative stored before masks were kept). None when unknown."""
    from adcreative.generate.provenance import placement_mask

    try:
        m = placement_mask(store, creative)
    except InputError:  # its product is gone from the store
        return None
    if m is None or m.size != (creative.width, creative.height):
        return None
    return np.asarray(m) > 127


def features_for_creatives(store: Store, creatives: Sequence[Creative], *, refresh: bool = False,
                           extractor: FeatureExtractor | None = None, show_progress: bool = False
                           ) -> dict[str, dict[str, Any]]:
    """Features for stored creatives, computed once and cached in the store under (name, version)."""
    ids = [c.id for c in creatives]
    cached = {} if refresh else store.get_features(FEATURES_NAME, ids, version=FEATURES_VERSION)
    todo = [c for c in creatives if c.id not in cached]
    if todo:
        ex = extractor or FeatureExtractor()
        logos: dict[str, Image.Image | None] = {}
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="features", unit="img")
        for start in range(0, len(todo), 16):  # commit in chunks: an interrupted run keeps its progress
            chunk = todo[start: start + 16]
            items = []
            for c in chunk:
                if c.product_id not in logos:
                    try:
                        logos[c.product_id] = store.get_product(c.product_id).logo
                    except InputError:
                        logos[c.product_id] = None
                m = creative_mask(store, c)
                items.append(CreativeInput(store.creative_image(c), m, c.layout or None, logos[c.product_id]))
            vals = ex(items, progress=bar.update if bar is not None else None)
            new = {c.id: v for c, v in zip(chunk, vals, strict=True)}
            store.put_features(FEATURES_NAME, FEATURES_VERSION, new)
            cached.update(new)
        if bar is not None:
            bar.close()
    return {i: cached[i] for i in ids}
