"""The diffusers inpainting generator, run end to end on tiny random SD + ControlNet folders (CPU)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

pytest.importorskip("diffusers")

from adcreative.core.errors import InputError  # noqa: E402
from adcreative.core.types import ASPECTS, Product, canvas_size  # noqa: E402
from adcreative.generate.base import create_generator  # noqa: E402
from adcreative.generate.diffusers_inpaint import (  # noqa: E402
    DiffusersInpaintGenerator,
    place_product,
    work_size,
)
from adcreative.generate.diffusers_tiny import build_tiny_sd_folders, save_single_file  # noqa: E402
from adcreative.generate.prompts import load_presets  # noqa: E402
from tests.paths import SHARED as SHARED_DATA  # noqa: E402

SHARED = SHARED_DATA / "products"


RED = (230, 20, 30)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    return build_tiny_sd_folders(tmp_path_factory.mktemp("sd"))


def make_product(category: str = "beverage") -> Product:
    """A bottle-like cutout: a solid red body (big enough that its interior survives resizing unblended)
    with a blue label and anti-aliased edges."""
    im = Image.new("RGBA", (240, 400), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((40, 60, 200, 390), radius=30, fill=(*RED, 255))
    d.rectangle((95, 10, 145, 60), fill=(40, 40, 40, 255))
    d.rectangle((40, 200, 200, 260), fill=(20, 40, 200, 255))
    im = im.resize((120, 200), Image.Resampling.LANCZOS)  # soft alpha fringe, as real cutouts have
    return Product(id="p1", title="Sparkling water 500ml", category=category, image=im)


def gen_for(base: Path | str, cn: Path | str, **kw: object) -> DiffusersInpaintGenerator:
    cfg: dict[str, object] = {"steps": 3, "canvas_scale": 0.125, "device": "cpu", "batch_size": 2}
    cfg.update(kw)
    g = create_generator("diffusers-inpaint", base=str(base), controlnet=str(cn), **cfg)
    assert isinstance(g, DiffusersInpaintGenerator)
    return g


def pixels(g: object) -> np.ndarray:
    return np.asarray(g.image)  # type: ignore[attr-defined]


def test_generates_with_product_pixels_unaltered(tiny_sd: tuple[Path, Path]) -> None:
    base, cn = tiny_sd
    gen = gen_for(base, cn)
    prod = make_product()
    imgs = gen(prod, seed=3, aspect="1:1", n=2)
    assert [g.seed for g in imgs] == [3, 4]
    for g in imgs:
        assert g.image.size == canvas_size("1:1", 0.125) == (64, 64)
        assert g.image.mode == "RGB" and g.mask.mode == "L"
        placement, params = gen.prepare(prod, seed=g.seed, aspect="1:1")
        inside = np.asarray(g.mask) > 0
        assert inside.sum() > 300
        got = pixels(g)[inside]
        want = np.asarray(placement.layer)[..., :3][inside]
        assert np.array_equal(got, want), "product pixels altered inside the mask"
        # independent of our own placement code: the solid red body's interior is pure red
        assert (np.all(got == RED, axis=1)).sum() > 100
        # the background was generated, not left as the black init image
        outside = ~inside & (np.asarray(placement.layer)[..., 3] == 0)
        assert pixels(g)[outside].astype(int).mean() > 5.0
        assert g.layout["product"].inside(64, 64)
        assert g.params["prompt"] == params["prompt"] and "marble" in g.params["prompt"]
        assert g.generator == "diffusers-inpaint" and g.label is None
        json.dumps(g.params), json.dumps(g.config)
    assert not np.array_equal(pixels(imgs[0]), pixels(imgs[1]))


def test_jd_defaults() -> None:
    """JD's Reliable_AD settings are the defaults (sample.py: ControlNet scale 1.0, 40 DDIM steps)."""
    import inspect

    d = {k: v.default for k, v in inspect.signature(DiffusersInpaintGenerator.__init__).parameters.items()}
    assert (d["controlnet_scale"], d["steps"], d["guidance"], d["scheduler"]) == (1.0, 40, 7.5, "ddim")
    assert (d["canny_source"], d["canny_low"], d["canny_high"]) == ("colour-on-black", 100, 200)
    assert (d["mask_dilate"], d["box_alpha"], d["scale_range"], d["size_multiple"]) == (10, 0.5, None, 8)


def test_batched_generation_is_byte_identical_to_one_at_a_time(tiny_sd: tuple[Path, Path]) -> None:
    """Several images per pipeline call, each with its own seeded generator: the same bytes whether asked for
    in one call, one at a time, from another starting seed, or after the generator is rebuilt from its config
    (as ``creatives regenerate`` does)."""
    base, cn = tiny_sd
    prod = make_product()
    for aspect in ("1:1", "16:9"):
        batched = gen_for(base, cn, batch_size=2)(prod, seed=4, aspect=aspect, n=2)
        assert {tuple(g.params["block"]) for g in batched} == {(4, 2)}, "one pipeline call"
        single = [gen_for(base, cn, batch_size=2)(prod, seed=s, aspect=aspect)[0] for s in (5, 4)]
        offset = gen_for(base, cn, batch_size=2)(prod, seed=5, aspect=aspect, n=2)  # spans two blocks
        rebuilt = create_generator("diffusers-inpaint", **json.loads(json.dumps(batched[0].config)))
        by_seed = {g.seed: pixels(g) for g in batched}
        for g in [*single, offset[0], rebuilt(prod, seed=5, aspect=aspect)[0]]:
            assert np.array_equal(pixels(g), by_seed[g.seed]), (aspect, g.seed)
        assert [g.seed for g in offset] == [5, 6] and offset[1].params["block"] == [6, 2]
        assert not np.array_equal(*by_seed.values()), "each seed its own image"


def test_canvas_sizes_are_not_stretched(tiny_sd: tuple[Path, Path]) -> None:
    """Work sizes are multiples of 8 (the VAE's factor), so every standard canvas is generated at its own
    size; 16:9 (768×432) was stretched to 768×448 when rounding to 64."""
    for aspect in ASPECTS:
        size = canvas_size(aspect)
        assert work_size(size, 8) == size, aspect
    assert work_size(canvas_size("16:9"), 64) == (768, 448)
    base, cn = tiny_sd
    g = gen_for(base, cn)(make_product(), seed=1, aspect="16:9")[0]
    assert g.image.size == canvas_size("16:9", 0.125) == (96, 54) and g.params["work_size"] == [96, 56]
    with pytest.raises(InputError, match="multiple of 8"):
        gen_for(base, cn, size_multiple=12)


def test_placement_scale_mask_and_control() -> None:
    prod = make_product()
    for s in (0.7, 0.78):
        p = place_product(prod.image, (512, 512), s, rng=random.Random(0), jitter=0.0)
        # the product's box fills the scale fraction of the canvas along its long side (here the height)
        assert abs(p.box.h - s * 512) <= 1.0
        hard = np.asarray(p.paste_mask) > 0
        gen_region = np.asarray(p.inpaint_mask) > 0
        assert gen_region[~hard].all(), "the whole background must be inpainted"
        # dilated ~10 px into the product (JD: a 20×20 kernel): the ring reaches 10 px in, not 11
        dist = _inside_distance(hard)
        ring = gen_region & hard
        assert ring.any() and dist[ring].max() == 10 and not (gen_region & (dist > 10)).any()
        assert not gen_region[p.box.y0 + p.box.h // 2, p.box.x0 + p.box.w // 2]
        edges = np.asarray(p.control_image)[..., 0] > 0
        box = np.zeros_like(edges)
        box[p.box.y0 - 1:p.box.y1 + 1, p.box.x0 - 1:p.box.x1 + 1] = True  # the silhouette's edge may lie 1 px out
        assert edges.any() and not edges[~box].any()
        assert np.asarray(p.init_image)[~box].max() == 0, "JD's init image: the product over black"


def _inside_distance(hard: np.ndarray) -> np.ndarray:
    """Chebyshev distance (px) of product pixels to the nearest background pixel (0 outside)."""
    import cv2

    return np.asarray(cv2.distanceTransform(hard.astype(np.uint8), cv2.DIST_C, 3)).astype(int)


def test_box_from_alpha_half_ignores_a_faint_halo() -> None:
    """JD crops the cutout at alpha ≥ 0.5: a faint shadow or halo left in the cutout does not shrink the
    product; ``box_alpha=0`` (any alpha, the earlier behaviour) does."""
    im = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((0, 150, 199, 199), fill=(0, 0, 0, 40))  # a soft floor shadow
    ImageDraw.Draw(im).rectangle((60, 20, 140, 160), fill=(*RED, 255))
    jd = place_product(im, (256, 256), 0.75, rng=random.Random(0))
    old = place_product(im, (256, 256), 0.75, rng=random.Random(0), box_alpha=0.0)
    assert abs(jd.box.h - 0.75 * 256) <= 1 and abs(jd.box.w - 81 / 141 * 0.75 * 256) <= 1
    assert old.box.w == round(0.75 * 256) and old.box.h < jd.box.h
    with pytest.raises(InputError, match=r"alpha ≥ 0\.5"):
        place_product(Image.new("RGBA", (50, 50), (9, 9, 9, 100)), (64, 64), 0.7, rng=random.Random(0))


def test_scale_follows_the_prompt_preset(tiny_sd: tuple[Path, Path]) -> None:
    """JD draws the product's size from the prompt preset (``image_scale``); a range is an option."""
    base, cn = tiny_sd
    gen = gen_for(base, cn)
    presets = load_presets(None)
    seen = set()
    for seed in range(12):
        _, params = gen.prepare(make_product(), seed=seed, aspect="1:1")
        assert params["scale"] == presets[params["preset"]]["image_scale"]
        seen.add(params["scale"])
    assert seen == {0.7, 0.74, 0.78}
    ranged = gen_for(base, cn, scale_range=[0.5, 0.6])
    assert all(0.5 <= ranged.prepare(make_product(), seed=s, aspect="1:1")[1]["scale"] <= 0.6 for s in range(5))


def test_colour_canny_sees_an_edge_grey_misses() -> None:
    """Canny on the colour product over black (JD) finds a red/green boundary of equal luminance that the
    grey image cannot, and the silhouette against black."""
    im = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((0, 0, 99, 199), fill=(200, 60, 60, 255))  # grey ≈ 102
    ImageDraw.Draw(im).rectangle((100, 0, 199, 199), fill=(40, 120, 60, 255))  # grey ≈ 89
    col = place_product(im, (256, 256), 0.75, rng=random.Random(0))
    grey = place_product(im, (256, 256), 0.75, rng=random.Random(0), canny_source="grey-on-grey")
    mid = col.box.x0 + col.box.w // 2
    inner = slice(col.box.y0 + 10, col.box.y1 - 10)
    c_edges, g_edges = (np.asarray(p.control_image)[..., 0] > 0 for p in (col, grey))
    assert c_edges[inner, mid - 2:mid + 2].any(axis=1).mean() > 0.9
    assert not g_edges[inner, mid - 2:mid + 2].any()


def _outline_coverage(placement: object, tol: int = 1) -> tuple[int, int]:
    """(outline pixels with a canny edge within ``tol`` px, outline pixels) of a placement's product."""
    import cv2

    hard = (np.asarray(placement.paste_mask) > 0).astype(np.uint8)  # type: ignore[attr-defined]
    outline = hard.astype(bool) & ~cv2.erode(hard, np.ones((3, 3), np.uint8)).astype(bool)
    edges = (np.asarray(placement.control_image)[..., 0] > 0).astype(np.uint8)  # type: ignore[attr-defined]
    near = cv2.dilate(edges, np.ones((2 * tol + 1,) * 2, np.uint8)) > 0
    return int((near & outline).sum()), int(outline.sum())


@pytest.mark.shared
def test_jd_canny_covers_the_outline_of_real_cutouts() -> None:
    """On the real JD cutouts, canny on the colour product over black covers ≥ 95 % of the product outline
    (an outline pixel counts when an edge lies within 1 px), more than the grey-on-grey convention; the
    ``canny_outline`` option closes what remains (a dark phone bezel on black)."""
    files = sorted(SHARED.glob("*.png"))
    if not files:
        pytest.skip(f"{SHARED} absent (shared data not mounted)")
    from adcreative.core.imageio import load_cutout

    totals = {"colour-on-black": [0, 0], "grey-on-grey": [0, 0], "outline": [0, 0]}
    for f in files:
        im = load_cutout(f)
        row = []
        for name, kw in (("colour-on-black", {}), ("grey-on-grey", {"canny_source": "grey-on-grey"}),
                         ("outline", {"canny_outline": True})):
            cov, n = _outline_coverage(place_product(im, (512, 512), 0.74, rng=random.Random(0), **kw))
            totals[name][0] += cov
            totals[name][1] += n
            row.append(f"{name} {cov / n:.1%}")
        print(f"{f.name}: " + ", ".join(row))
    share = {k: c / n for k, (c, n) in totals.items()}
    print("all cutouts: " + ", ".join(f"{k} {v:.1%}" for k, v in share.items()))
    assert share["colour-on-black"] >= 0.95 and share["colour-on-black"] > share["grey-on-grey"]
    assert share["outline"] >= 0.99


# -- loading ------------------------------------------------------------------------------------------------
def test_missing_local_weights_are_named(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    base, cn = tiny_sd
    with pytest.raises(InputError, match="base folder does not exist") as e:
        DiffusersInpaintGenerator(base=str(tmp_path / "nope"), controlnet=str(cn))
    assert str(tmp_path / "nope") in str(e.value)
    with pytest.raises(InputError, match="ControlNet folder does not exist"):
        DiffusersInpaintGenerator(base=str(base), controlnet=str(tmp_path / "cn"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")
    with pytest.raises(InputError, match="'unet/'") as e:
        DiffusersInpaintGenerator(base=str(broken), controlnet=str(cn))
    assert "broken/unet" in str(e.value)
    with pytest.raises(InputError, match="LoRA"):
        DiffusersInpaintGenerator(base=str(base), controlnet=str(cn), lora=str(tmp_path / "lora"))
    (tmp_path / "model.ckpt").write_bytes(b"pickle")
    with pytest.raises(InputError, match="pickles"):
        DiffusersInpaintGenerator(base=str(tmp_path / "model.ckpt"), controlnet=str(cn), base_config=str(base))
    with pytest.raises(InputError, match="base_config"):
        DiffusersInpaintGenerator(base=str(next((base / "unet").glob("*.safetensors"))), controlnet=str(cn))
    with pytest.raises(InputError, match=r"fp16\.safetensors"):
        DiffusersInpaintGenerator(base=str(base), controlnet=str(cn), variant="fp16")


def test_single_file_checkpoints_load_offline(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    """An A1111/civitai-layout checkpoint (JD's base, majicMIX, is distributed so) and a single-file ControlNet
    load with ``from_single_file`` from local config folders, and give the folder's exact images."""
    base, cn = tiny_sd
    ckpt = save_single_file(base, tmp_path / "sd15-tiny.safetensors")
    configs = tmp_path / "sd15-configs"  # the component configs and tokenizer, no weights
    shutil.copytree(base, configs, ignore=shutil.ignore_patterns("*.safetensors"))
    cn_file = tmp_path / "canny.safetensors"
    shutil.copy(next(cn.glob("*.safetensors")), cn_file)
    folder = gen_for(base, cn)(make_product(), seed=1)[0]
    single = gen_for(ckpt, cn_file, base_config=str(configs), controlnet_config=str(cn))(make_product(), seed=1)[0]
    assert np.array_equal(pixels(folder), pixels(single))
    # a file that is not a whole SD checkpoint is a clear error naming it, not a traceback
    with pytest.raises(InputError, match="cannot load the diffusion weights"):
        _ = gen_for(cn_file, cn, base_config=str(configs)).pipeline


def test_fp16_variant_weights_are_loaded(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    from diffusers import UNet2DConditionModel

    base, cn = tiny_sd
    fp16 = tmp_path / "base-fp16"
    shutil.copytree(base, fp16)
    for comp in ("unet", "vae", "text_encoder"):
        cls = UNet2DConditionModel if comp == "unet" else None
        if cls is None:
            from diffusers import AutoencoderKL
            from transformers import CLIPTextModel

            cls = AutoencoderKL if comp == "vae" else CLIPTextModel  # type: ignore[assignment]
        model = cls.from_pretrained(str(base / comp))  # type: ignore[union-attr]
        with torch.no_grad():  # a marker only the fp16 files carry
            next(model.parameters()).add_(1.0)
        model.half().save_pretrained(str(fp16 / comp), variant="fp16", safe_serialization=True)
    gen = gen_for(fp16, cn, variant="fp16")
    unet = gen.pipeline.unet
    ref = UNet2DConditionModel.from_pretrained(str(base / "unet"))
    p, q = next(unet.parameters()), next(ref.parameters())
    assert p.dtype == torch.float32 and torch.equal(p, (q + 1.0).half().float()), "read from the .fp16 files"
    assert gen(make_product(), seed=0)[0].image.size == (64, 64)


def _lora_unet(base: Path) -> object:
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    unet = UNet2DConditionModel.from_pretrained(str(base / "unet"))
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:  # peft starts B at zero (a no-op LoRA); a trained one is not
                p.normal_(std=0.3)
    return unet


def test_lora_diffusers_and_kohya_formats(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    """One LoRA saved in diffusers format and in kohya's (``lora_unet_…lora_down/lora_up/alpha``, what
    civitai LoRAs use): both load from a local file, change the background only, and give the same image."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers, convert_state_dict_to_kohya
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    base, cn = tiny_sd
    peft_sd = get_peft_model_state_dict(_lora_unet(base))
    StableDiffusionPipeline.save_lora_weights(str(tmp_path / "lora"), safe_serialization=True,
                                              unet_lora_layers=convert_state_dict_to_diffusers(peft_sd))
    kohya = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in peft_sd.items()})
    assert any(k.startswith("lora_unet_") and k.endswith("lora_down.weight") for k in kohya)
    save_file({k: v.contiguous() for k, v in kohya.items()}, str(tmp_path / "kohya_style.safetensors"))
    prod = make_product()
    plain = gen_for(base, cn)(prod, seed=5)[0]
    tuned = gen_for(base, cn, lora=str(tmp_path / "lora"))(prod, seed=5)[0]
    k_tuned = gen_for(base, cn, lora=str(tmp_path / "kohya_style.safetensors"))(prod, seed=5)[0]
    assert not np.array_equal(pixels(plain), pixels(tuned))
    inside = np.asarray(tuned.mask) > 0
    assert np.array_equal(pixels(plain)[inside], pixels(tuned)[inside])
    assert np.abs(pixels(tuned).astype(int) - pixels(k_tuned)).max() <= 1


def test_defect_request_is_refused(tiny_sd: tuple[Path, Path]) -> None:
    base, cn = tiny_sd
    with pytest.raises(InputError, match="compositor only"):
        gen_for(base, cn)(make_product(), seed=0, defect="space_mismatch")


@pytest.mark.shared
def test_real_jd_cutout(tiny_sd: tuple[Path, Path]) -> None:
    f = SHARED / "0.png"
    if not f.exists():
        pytest.skip(f"{f} absent (shared data not mounted)")
    from adcreative.core.imageio import load_cutout

    base, cn = tiny_sd
    prod = Product(id="jd0", title="JD product", category="home", image=load_cutout(f))
    g = gen_for(base, cn)(prod, seed=0, aspect="4:5")[0]
    placement, _ = gen_for(base, cn).prepare(prod, seed=0, aspect="4:5")
    inside = np.asarray(g.mask) > 0
    assert inside.sum() > 100
    assert np.array_equal(pixels(g)[inside], np.asarray(placement.layer)[..., :3][inside])
