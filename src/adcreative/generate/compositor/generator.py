"""The embedded CPU generator: product cutout + title + category + copy → laid-out ad images.

Per image: draw every choice from the :class:`CompositorPolicy` with a seeded generator, plan the layout,
render the category's background, props, contact and cast shadows, paste the product (its opaque pixels
copied exactly), and set the copy in real fonts. ``defect=`` forces one RF1M defect at a given severity,
for training data; without it the policy's own failure regions decide, and the rule that labels them is
applied to what was actually rendered (``params["label"]``).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from adcreative.catalogue.sizes import real_height_cm
from adcreative.core.fonts import font, has_cjk
from adcreative.core.modeling import register_to_config
from adcreative.core.types import CLASSES, Box, Product, canvas_size
from adcreative.generate.base import GeneratedImage
from adcreative.generate.compositor.layout import Layout, plan_layout
from adcreative.generate.compositor.policy import CATEGORICAL, Choice, CompositorPolicy, derived
from adcreative.generate.compositor.styles import (
    CATEGORY_PROPS,
    PALETTES,
    PROP_KINDS,
    Palette,
    apply_light,
    category_key,
    draw_prop,
    render_background,
    to_image,
)
from adcreative.generate.cutout import OPAQUE, crop_rgba, paste, source_image
from adcreative.generate.measure import (
    Prop,
    SceneReport,
    Support,
    delta_e,
    lab,
    label_render,
    rim_colour,
)

VERSION = "1.1"  # 1.1: labels from the shared labeller (generate.measure); scale-cue props at real-world size
SIZE_BAND = (0.46, 0.92)  # plausible product height / product-region height
SET_SCALE = 0.68  # the set is dressed for a product this share of the product region tall
SAFE_DE = 30.0  # available scenes keep at least this much contrast (palette against the product colour)
# Real heights (cm) of the compositor's props; only recognisable objects are scale cues to a viewer
PROP_CM: dict[str, tuple[float, bool]] = {"plant": (30.0, True), "book": (9.0, True), "sphere": (10.0, False),
                                          "block": (10.0, False), "cylinder": (14.0, False), "leaf": (25.0, False)}


@dataclass
class PreparedProduct:
    rgba: np.ndarray  # cropped to the alpha bbox, uint8 H×W×4
    dominant: np.ndarray  # median colour of opaque pixels, float32 (3,)
    aspect: float  # width / height
    palette: np.ndarray  # (k, 3) main colours of the product and their shaded variants, in Lab
    rim: np.ndarray  # sRGB of the colour along its outline (what a tone-on-tone set is toned from)


@functools.lru_cache(maxsize=64)
def _prepare_cached(key: str, data: bytes, size: tuple[int, int]) -> PreparedProduct:
    crop = crop_rgba(Image.frombytes("RGBA", size, data))
    opaque = crop[..., :3][crop[..., 3] >= OPAQUE]
    pix = opaque if len(opaque) else crop[..., :3].reshape(-1, 3)
    dom = np.median(pix, axis=0).astype(np.float32)
    sub = pix[:: max(1, len(pix) // 4000)].astype(np.float32)
    k = min(4, len(sub))
    cv2.setRNGSeed(0)  # k-means picks its start with OpenCV's RNG: fix it so the palette is reproducible
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centers = cv2.kmeans(sub, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    cols = np.concatenate([centers, dom[None]], axis=0)
    cols = np.concatenate([cols, cols * 0.8], axis=0)  # shapes "in the product's colours" may be drawn shaded
    rim = cv2.cvtColor(rim_colour(crop).reshape(1, 1, 3), cv2.COLOR_LAB2RGB).reshape(3) * 255
    return PreparedProduct(crop, dom, crop.shape[1] / crop.shape[0], lab(np.clip(cols, 0, 255)).astype(np.float32),
                           np.clip(rim, 0, 255).astype(np.float32))


def prepare(product: Product) -> PreparedProduct:
    im = product.image if product.image.mode == "RGBA" else product.image.convert("RGBA")
    data = im.tobytes()
    return _prepare_cached(hashlib.md5(data).hexdigest(), data, im.size)


def _format_price(product: Product) -> str | None:
    if product.price is None:
        return None
    cur = str(product.attrs.get("currency", "$"))
    return f"{cur}{product.price:,.2f}" if product.price < 1000 else f"{cur}{product.price:,.0f}"


class Compositor:
    """Embedded CPU generator, registered as ``compositor``."""

    name = "compositor"
    version = VERSION

    @register_to_config
    def __init__(self, policy: str | None = None, scale: float = 1.0, shadows: bool = True) -> None:
        self.policy = CompositorPolicy.from_pretrained(policy) if policy else CompositorPolicy()
        self.scale = scale
        self.shadows = shadows
        self.config: dict[str, Any]

    def __call__(self, product: Product, *, seed: int, aspect: str = "1:1", n: int = 1,
                 defect: str | None = None, severity: float = 0.5) -> list[GeneratedImage]:
        if defect is not None and defect not in CLASSES:
            raise ValueError(f"unknown defect {defect!r}; choose from {', '.join(CLASSES)}")
        if not 0.0 <= severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {severity}")
        return [self.generate_one(product, seed=seed + i, aspect=aspect, defect=defect, severity=severity)
                for i in range(n)]

    # ------------------------------------------------------------------------------------------------
    def generate_one(self, product: Product, *, seed: int, aspect: str, defect: str | None = None,
                     severity: float = 0.5, _contrast_palette: bool = False) -> GeneratedImage:
        rng = np.random.default_rng(seed)
        W, H = canvas_size(aspect, self.scale)
        cat = category_key(product.category)
        choice = self.policy.sample(rng, cat)
        d = derived(choice)
        prep = prepare(product)
        forced: dict[str, Any] = {}
        if defect is not None:
            forced = _force(choice, d, defect, severity, rng, real_height_cm(product))
        if _contrast_palette:
            forced["contrast_palette"] = True

        badge = product.attrs.get("badge")
        layout = plan_layout(W, H, rng, headline=str(product.attrs.get("headline") or product.title),
                             copy=product.copy, price=_format_price(product), badge=str(badge) if badge else None)
        region = layout.product_region

        # -- palette: the category's, or tone-on-tone from the product's own colour ------------------------
        pal = self._palette(choice, d, cat, prep, forced)

        # -- product size and position ---------------------------------------------------------------------
        n_props = int(CATEGORICAL["n_props"][choice.cat["n_props"]])
        scale = d["scale"]
        if n_props == 0 and "scale" not in forced:
            scale = float(np.clip(scale, *SIZE_BAND))  # without props there is no scale cue to get wrong
        lifted = CATEGORICAL["support"][choice.cat["support"]] == "lifted"
        lift = d["lift"] if lifted else 0.0
        halluc = forced.get("hallucination")
        raise_frac = forced.get("raise", 0.0)  # pedestal / legs lift the product onto a fake support
        max_h_frac = 0.96 / (1 + lift + raise_frac)
        ph = int(region.h * min(scale, max_h_frac))
        pw = int(ph * prep.aspect)
        max_w = region.w * (1.0 if forced.get("scale_large") else 0.9)
        if pw > max_w:
            pw = int(max_w)
            ph = int(pw / prep.aspect)
        if forced.get("scale_large") and (region.w - pw) < 0.35 * region.h:
            # no room left for the small props that make a giant read as a giant: a toy instead (or, for a product
            # too small for the set's real-size plant and books to stand beside, a product lost in its canvas)
            if real_height_cm(product) >= 40:
                forced.update(scale="small", scale_large=False, prop_size=0.28)
                ph = int(region.h * (0.3 - 0.14 * severity))
                pw = int(ph * prep.aspect)
            else:
                forced.update(scale="tiny", scale_large=False)
        if forced.get("scale") == "tiny":
            f = (0.11 - 0.06 * severity) * min(W, H) / max(ph, pw)
            ph, pw = int(ph * f), int(pw * f)
        ph, pw = max(ph, 8), max(pw, 8)
        y_ground = region.y1 - max(2, int(0.03 * region.h))
        free = region.w - pw
        cx = region.x0 + region.w / 2 + d["x_offset"] * free / 2 * 0.8
        px0 = round(cx - pw / 2)
        gap_px = round(lift * ph)
        raise_px = round(raise_frac * ph)
        prod = cv2.resize(prep.rgba, (pw, ph), interpolation=cv2.INTER_AREA)
        clean = prod
        opaque_rows = np.nonzero((prod[..., 3] >= OPAQUE).any(axis=1))[0]
        base_off = int(opaque_rows.max()) if len(opaque_rows) else ph - 1  # the lowest opaque row stands on the line
        py0 = y_ground - gap_px - raise_px - base_off
        py1 = py0 + ph
        if forced.get("truncate"):
            # unsuitable: a product cut by the canvas edge on the side away from the copy
            out = forced["truncate"]
            side = -1 if layout.template == "wide-left" else 1 if layout.template == "wide-right" else (
                -1 if rng.random() < 0.5 else 1)
            px0 = int(-pw * out) if side < 0 else int(W - pw * (1 - out))
        # the set's scale (px per cm) for props that a viewer knows the size of
        cm = real_height_cm(product)
        if defect is None:
            set_ppc = SET_SCALE * region.h / cm
        elif forced.get("scale") == "small":
            set_ppc = SET_SCALE * region.h / cm  # dressed for a normal product: this one is a toy beside it
        elif forced.get("scale") == "large":
            set_ppc = ph / cm / (2.0 + 2.0 * severity)
        elif forced.get("scale") == "tiny":
            set_ppc = ph / cm  # its props to its own scale: it is the canvas it is lost in
        else:
            set_ppc = ph / cm
        damage = forced.get("damage")
        if damage:
            prod = _damage(prod, damage, forced["amount"], rng)

        # -- background -----------------------------------------------------------------------------------
        horizon = int(y_ground - (0.24 + 0.08 * d["horizon"]) * region.h)
        bg_kind = CATEGORICAL["bg_kind"][choice.cat["bg_kind"]]
        texture = forced.get("texture", d["texture"])
        bg = render_background(rng, W, H, bg_kind, pal, horizon, texture)
        light = CATEGORICAL["light"][choice.cat["light"]]
        bg = apply_light(bg, light, cx, (py0 + py1) / 2)
        if self.shadows:
            bg = _shadows(bg, prod[..., 3], px0, py0, y_ground, pw, ph, lifted or raise_px > 0)
        canvas = to_image(bg)

        # -- props (beside the product, inside its region) and hallucinated shapes (behind it) ------------------
        props, objects = self._props(canvas, rng, choice, d, cat, region, y_ground, px0, pw, n_props, pal,
                                     prep, forced, set_ppc)
        if halluc:
            before = np.asarray(canvas).copy()
            _hallucinate(canvas, halluc, forced["amount"], prod, prep, px0, py0, y_ground, rng)
            objects[np.any(np.asarray(canvas) != before, axis=-1)] = 100

        # -- the product: opaque pixels copied exactly, soft edge blended -----------------------------------------
        arr = np.asarray(canvas).copy()
        mask = paste(arr, prod, px0, py0)
        canvas = Image.fromarray(arr, "RGB")

        # -- copy ------------------------------------------------------------------------------------------
        _draw_text(canvas, layout, pal)

        # -- what was rendered, measured by the shared labeller ----------------------------------------------------
        ys, xs = np.nonzero(mask)
        pbox = Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else Box(0, 0, 0, 0)
        boxes = {"product": pbox, **layout.boxes()}
        contact = py0 + base_off
        grown_support = halluc in ("legs", "pedestal")
        if grown_support:  # the product stands on the grown shape; its own shadow is the shape's, on the ground
            a = clean[max(0, base_off - 2) : base_off + 1, :, 3] >= OPAQUE
            cols = np.nonzero(a.any(axis=0))[0]
            support = Support(contact, px0 + int(cols.min()), px0 + int(cols.max()) + 1, str(halluc))
        else:
            support = Support(y_ground, 0, W, bg_kind)
        rep = SceneReport(box=(px0, py0, px0 + pw, py0 + ph), reference=clean, product_cm=cm, support=support,
                          props=props, objects=objects,
                          shadow=(px0 + pw // 2, y_ground) if self.shadows and not grown_support else None,
                          palette=prep.palette)
        labelled = label_render(np.asarray(canvas), mask, rep, defect)
        if (forced.get("safe_contrast") and not _contrast_palette
                and "indistinctiveness" in labelled["defects"] + labelled["doubtful"]):
            # lighting and shadows can eat a palette's margin: re-render the same draw on a contrasting set, so
            # no scene that claims to be clean sits in the indistinct range
            return self.generate_one(product, seed=seed, aspect=aspect, defect=defect, severity=severity,
                                     _contrast_palette=True)
        params = {"category": cat, "choice": choice.values, "forced": forced, "template": layout.template,
                  "bg_kind": bg_kind, "light": light, "product_box": [px0, py0, px0 + pw, py0 + ph],
                  "props": [list(pr.box) for pr in props], "scale": round(ph / region.h, 4),
                  "severity": severity if defect else 0.0, "requested": defect,
                  "palette": [list(pal.wall), list(pal.wall2), list(pal.surface), list(pal.accent)], **labelled}
        return GeneratedImage(image=canvas, mask=Image.fromarray(mask.astype(np.uint8) * 255, "L"), layout=boxes,
                              seed=seed, aspect=aspect, generator=self.name, generator_version=self.version,
                              params=params, config=dict(self.config), label=labelled["label"],
                              source=source_image(prod) if damage else None)

    # ------------------------------------------------------------------------------------------------
    def _palette(self, choice: Choice, d: dict[str, float], cat: str, prep: PreparedProduct,
                 forced: dict[str, Any]) -> Palette:
        mode = CATEGORICAL["palette_mode"][choice.cat["palette_mode"]]
        dom = prep.dominant
        if mode == "tone_on_tone":
            dom = prep.rim  # toned from the colour along its outline, where it meets the set
            tone = float(forced.get("tone", d["tone"]))
            lum = float(lab(dom)[0])
            target = np.array([248, 248, 246] if lum < 60 else [40, 40, 44], np.float32)
            wall = dom + (target - dom) * tone * 0.85
            wall2 = dom + (target - dom) * min(1.0, tone * 0.85 + 0.08)
            surf = dom + (target - dom) * tone * 0.7
            accent = np.array([30, 30, 30] if lum > 60 else [245, 245, 245], np.float32)
            return Palette(*(tuple(int(v) for v in np.clip(c, 0, 255)) for c in (wall, wall2, surf, accent)))  # type: ignore[arg-type]
        pals = PALETTES[cat]
        pal = pals[choice.cat["palette"] % len(pals)]
        if forced.get("contrast_palette"):
            return _contrast_palette(dom, pals[choice.cat["palette"] % len(pals)])
        if forced.get("safe_contrast"):
            # an available scene: take the sampled palette unless the product would blend into it
            des = [min(delta_e(dom, np.asarray(c, np.float32)) for c in (p.wall, p.wall2, p.surface, tuple(v * 0.75 for v in p.surface),
                                                 tuple(v * 0.75 for v in p.wall))) for p in pals]
            if des[choice.cat["palette"] % len(pals)] < SAFE_DE:
                pal = pals[int(np.argmax(des))]
                if max(des) < SAFE_DE:  # every set of the category is close to the product: go light or dark
                    pal = _contrast_palette(dom, pal)
        return pal

    def _props(self, canvas: Image.Image, rng: np.random.Generator, choice: Choice, d: dict[str, float],
               cat: str, region: Box, y_ground: int, px0: int, pw: int, n_props: int, pal: Palette,
               prep: PreparedProduct, forced: dict[str, Any], set_ppc: float) -> tuple[list[Prop], np.ndarray]:
        """Props standing beside the product: recognisable ones (a potted plant, a stack of books) at the set's
        real-world scale ``set_ppc`` (px per cm), decorative shapes at any size. Returns them and the label map
        of their pixels (id 10 + k), so a prop in the product's colours touching it is measured as a grown part."""
        draw = ImageDraw.Draw(canvas)
        objects = np.zeros((canvas.height, canvas.width), np.int32)
        if forced.get("min_props"):
            n_props = max(n_props, forced["min_props"])
        kinds = CATEGORY_PROPS[cat]
        base_kind = kinds[choice.cat["prop_kind"] % len(kinds)] if choice.cat["prop_kind"] < len(PROP_KINDS) else kinds[0]
        product_coloured = CATEGORICAL["prop_colour"][choice.cat["prop_colour"]] == "product"
        gap = float(forced.get("prop_gap", d["prop_gap"]))
        if forced.get("prop_colour") == "palette":
            product_coloured = False
        colour = tuple(int(v) for v in prep.dominant) if product_coloured else pal.accent
        props: list[Prop] = []
        left_edge, right_edge = px0, px0 + pw
        for k in range(n_props):
            kind = base_kind if k == 0 else kinds[int(rng.integers(len(kinds)))]
            if forced.get("cue_props"):
                kind = ("plant", "book")[(k + int(rng.integers(2))) % 2]
            cm, cue = PROP_CM[kind]
            size = int(region.h * forced.get("prop_size", 0.2 + 0.12 * rng.random()))
            if cue:  # a book stack is drawn half as tall as its size argument
                size = int(cm * set_ppc * (2 if kind == "book" else 1))
                if not 10 <= size < region.h * 0.95:
                    if forced.get("cue_props"):
                        continue
                    kind, size = "sphere", int(region.h * (0.2 + 0.12 * rng.random()))
                    cm, cue = PROP_CM[kind]
            w = size if kind not in ("leaf",) else size // 2
            g = int(gap * w) if k == 0 else int((0.25 + 0.5 * rng.random()) * w)
            side_right = (k % 2 == 1) if rng.random() < 0.5 else (k % 2 == 0)
            x0 = right_edge + g if side_right else left_edge - g - w
            if x0 < region.x0 or x0 + w * 1.25 > region.x1 or size >= region.h:
                side_right = not side_right
                x0 = right_edge + g if side_right else left_edge - g - w
                if x0 < region.x0 or x0 + w * 1.25 > region.x1:
                    continue
            c = colour if k == 0 else (pal.accent if not product_coloured else colour)
            before = np.asarray(canvas).copy()
            box = draw_prop(draw, kind, int(x0), y_ground, size, c)  # type: ignore[arg-type]
            objects[np.any(np.asarray(canvas) != before, axis=-1)] = 10 + k
            props.append(Prop(box, cm, kind, cue))
            if side_right:
                right_edge = box[2]
            else:
                left_edge = box[0]
        return props, objects


def _contrast_palette(dom: np.ndarray, base: Palette) -> Palette:
    """A set in the category's accent colour, dark behind a light product and light behind a dark one."""
    acc = np.asarray(base.accent, np.float32)
    if float(lab(dom)[0]) > 55:
        cols = [acc * 0.5, acc * 0.62, acc * 0.4, np.array([245, 245, 240], np.float32)]
    else:
        cols = [acc * 0.15 + 215, acc * 0.1 + 230, acc * 0.2 + 190, acc]
    return Palette(*(tuple(int(v) for v in np.clip(c, 0, 255)) for c in cols))  # type: ignore[arg-type]


# -- forcing a defect ---------------------------------------------------------------------------------------
def _force(ch: Choice, d: dict[str, float], defect: str, severity: float, rng: np.random.Generator,
           cm: float = 20.0) -> dict[str, Any]:
    """Put every variable in its safe region, then the defect's variable in its failure region (``cm``: the
    product's real height, which decides whether a toy-sized version can stand beside real-size props)."""
    s = float(severity)
    f: dict[str, Any] = {"defect": defect, "safe_contrast": True, "prop_colour": "palette"}
    ch.cat["support"] = CATEGORICAL["support"].index("surface")
    ch.cat["palette_mode"] = CATEGORICAL["palette_mode"].index("category")
    d["scale"] = float(np.clip(d["scale"], 0.55, 0.85))
    d["prop_gap"] = max(d["prop_gap"], 0.3)
    if defect == "space_mismatch":
        ch.cat["support"] = CATEGORICAL["support"].index("lifted")
        d["lift"] = 0.1 + 0.35 * s
        f["lift"] = d["lift"]
    elif defect == "size_mismatch":
        f["min_props"] = 2
        f["cue_props"] = True  # a plant and books at real-world size: what makes a toy or a giant read as one
        if cm < 15 and rng.random() < 0.5:  # a small product lost in a big canvas
            f["scale"] = "tiny"
        elif rng.random() < 0.5 and cm >= 40:  # a smaller product's real-size plant and books would not fit the set
            d["scale"] = 0.3 - 0.14 * s  # a toy-sized product beside full-size props
            f["scale"] = "small"
            f["prop_size"] = 0.28
        else:
            d["scale"] = 0.92 + 0.06 * s  # a giant overflowing its set, with small props
            f["scale"] = "large"
            f["scale_large"] = True
            f["prop_size"] = 0.12
    elif defect == "indistinctiveness":
        ch.cat["palette_mode"] = CATEGORICAL["palette_mode"].index("tone_on_tone")
        f["tone"] = 0.12 * (1 - s)
        f["texture"] = 0.2
        f.pop("safe_contrast")
    elif defect == "shape_hallucination":
        kind = ["pedestal", "extension", "legs", "prop"][int(rng.integers(4))]
        f["hallucination"] = kind
        f["amount"] = 0.3 + 0.4 * s
        if kind in ("pedestal", "legs"):
            f["raise"] = f["amount"] * 0.6  # at least 18% of the product's height: no mistaking it for a plinth
        if kind == "prop":
            f.pop("hallucination")
            f["prop_colour"] = "product-touch"
            ch.cat["prop_colour"] = CATEGORICAL["prop_colour"].index("product")
            d["prop_gap"] = -0.45 - 0.3 * s  # overlapping the silhouette, not merely near it
            f["prop_gap"] = d["prop_gap"]
            f["min_props"] = 1
    elif defect == "unsuitable":
        kind = ["truncate", "hole", "pixelate"][int(rng.integers(3))]
        if kind == "truncate":
            f["truncate"] = 0.3 + 0.3 * s
        else:
            f["damage"] = kind
            f["amount"] = 0.3 + 0.5 * s
    return f


def _damage(prod: np.ndarray, kind: str, amount: float, rng: np.random.Generator) -> np.ndarray:
    """A bad source product: a chunk torn out of it, or a low-resolution blow-up."""
    out = prod.copy()
    h, w = out.shape[:2]
    if kind == "hole":
        ys, xs = np.nonzero(out[..., 3] > 128)
        k = int(rng.integers(len(xs)))
        r = amount * 0.35 * min(h, w) + 4
        pts = [(xs[k] + r * np.cos(a) * (0.6 + 0.6 * rng.random()), ys[k] + r * np.sin(a) * (0.6 + 0.6 * rng.random()))
               for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.array(pts, np.int32)], 255)
        out[..., 3][m > 0] = 0
    else:  # pixelate
        f = max(6, int(min(h, w) * (0.12 - 0.09 * amount)))
        small = cv2.resize(out, (max(2, w * f // max(h, w)), max(2, h * f // max(h, w))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    return out


def _hallucinate(canvas: Image.Image, kind: str, amount: float, prod: np.ndarray, prep: PreparedProduct,
                 px0: int, py0: int, y_ground: int, rng: np.random.Generator) -> None:
    """Shapes in the product's colours that continue its silhouette, drawn behind it."""
    draw = ImageDraw.Draw(canvas)
    ph, pw = prod.shape[:2]
    dom = tuple(int(v) for v in prep.dominant)
    dark = tuple(int(v * 0.8) for v in prep.dominant)
    alpha = prod[..., 3] > 128
    rows = np.nonzero(alpha.any(axis=1))[0]
    bottom = py0 + int(rows.max()) if len(rows) else py0 + ph
    cols = np.nonzero(alpha[rows.max()])[0] if len(rows) else np.array([0, pw - 1])
    bx0, bx1 = px0 + int(cols.min()), px0 + int(cols.max())
    if kind == "pedestal":
        inset = int((bx1 - bx0) * 0.05)
        draw.rectangle((bx0 + inset, bottom - 2, bx1 - inset, y_ground), fill=dom)
        draw.rectangle((bx0 + inset, bottom - 2, bx1 - inset, bottom + max(2, (y_ground - bottom) // 6)), fill=dark)
    elif kind == "legs":
        n = 2 + int(rng.integers(3))
        lw = max(3, int(pw * 0.05))
        for x in np.linspace(bx0 + lw, bx1 - lw, n):
            draw.rectangle((int(x - lw / 2), bottom - 2, int(x + lw / 2), y_ground), fill=dark)
    else:  # extension: the product's edge columns stretched outward, as if the shape went on
        arr = np.asarray(canvas).copy()
        ext = max(4, int(pw * amount * 0.6))
        side = 1 if rng.random() < 0.5 else -1
        col_idx = np.nonzero(alpha.any(axis=0))[0]
        c = int(col_idx.max() - 2) if side > 0 else int(col_idx.min() + 2)
        strip = prod[:, c : c + 1, :3].astype(np.float32)
        a = (prod[:, c : c + 1, 3:4].astype(np.float32) / 255.0)
        x_start = px0 + c + 1 if side > 0 else px0 + c - ext
        for j in range(ext):
            x = x_start + j
            if 0 <= x < arr.shape[1]:
                y0, y1 = max(0, py0), min(arr.shape[0], py0 + ph)
                sy0 = y0 - py0
                col = arr[y0:y1, x].astype(np.float32)
                taper = 1.0 - 0.5 * (j / ext) if side > 0 else 0.5 + 0.5 * (j / ext)
                aa = a[sy0 : sy0 + (y1 - y0), 0] * taper
                arr[y0:y1, x] = np.clip(col * (1 - aa) + strip[sy0 : sy0 + (y1 - y0), 0] * aa, 0, 255).astype(np.uint8)
        canvas.paste(Image.fromarray(arr, "RGB"))


def _shadows(bg: np.ndarray, alpha: np.ndarray, px0: int, py0: int, y_ground: int, pw: int, ph: int,
             detached: bool) -> np.ndarray:
    """Contact shadow (blurred ellipse on the ground) and a cast shadow (the silhouette squashed onto the floor).
    Both stay on the ground, so a lifted product shows its gap."""
    H, W = bg.shape[:2]
    sh: np.ndarray = np.zeros((H, W), np.float32)
    cx = px0 + pw // 2
    ew, eh = int(pw * 0.48), max(2, int(ph * 0.045))
    cv2.ellipse(sh, (cx, y_ground), (ew, eh), 0, 0, 360, 1.0 if not detached else 0.6, -1)
    k = max(3, (eh * 2) | 1)
    sh = cv2.GaussianBlur(sh, (k * 2 + 1, k * 2 + 1), 0)
    # cast shadow: silhouette squashed to a fifth of its height and sheared away from the light
    small_h = max(2, ph // 5)
    sil: np.ndarray = cv2.resize((alpha > 128).astype(np.float32), (pw, small_h), interpolation=cv2.INTER_AREA)
    shear = np.array([[1, 0.6, 0], [0, 1, 0]], np.float32)
    sil = np.asarray(cv2.warpAffine(sil, shear, (pw + small_h, small_h)))
    cast: np.ndarray = np.zeros((H, W), np.float32)
    y0 = y_ground - small_h
    x0 = px0
    ys0, ys1 = max(0, y0), min(H, y0 + small_h)
    xs0, xs1 = max(0, x0), min(W, x0 + sil.shape[1])
    if ys1 > ys0 and xs1 > xs0:
        cast[ys0:ys1, xs0:xs1] = sil[ys0 - y0 : ys1 - y0, xs0 - x0 : xs1 - x0]
        cast = cv2.GaussianBlur(cast, (0, 0), max(1.0, ph / 40))
    dark = 1 - np.clip(0.45 * sh + 0.22 * cast, 0, 0.7)
    return np.asarray(bg * dark[..., None], np.float32)


def _draw_text(canvas: Image.Image, layout: Layout, pal: Palette) -> None:
    draw = ImageDraw.Draw(canvas)
    arr = np.asarray(canvas)
    for key, block in layout.blocks.items():
        b = block.box
        if key == "price" and layout.badge_box is not None:
            bb = layout.badge_box
            draw.rounded_rectangle(bb.as_list(), radius=max(2, bb.h // 4), fill=pal.accent)
            under = np.asarray(pal.accent, np.float32)
        else:
            under = arr[b.y0 : max(b.y0 + 1, b.y1), b.x0 : max(b.x0 + 1, b.x1)].reshape(-1, 3).mean(axis=0)
        lum = 0.299 * under[0] + 0.587 * under[1] + 0.114 * under[2]
        fill = (20, 20, 24) if lum > 140 else (250, 250, 250)
        f = font(block.font_size, block.bold, has_cjk(block.text))
        y = b.y0
        for line in block.lines:
            lx0, ly0, lx1, _ = draw.textbbox((0, 0), line, font=f)
            x = b.x0 if block.align == "left" else b.x0 + (b.w - (lx1 - lx0)) // 2
            draw.text((x - lx0, y - ly0 if y == b.y0 else y), line, font=f, fill=fill)
            y += block.line_height


def policy_path(p: str | Path | None) -> str | None:
    return str(Path(p).resolve()) if p else None
