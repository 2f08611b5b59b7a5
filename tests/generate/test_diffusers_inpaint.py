"""The diffusers inpainting generator, run end to end on tiny random SD + ControlNet folders (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

torch = pytest.importorskip("torch")

pytest.importorskip("diffusers")

from adcreative.core.errors import InputError  # noqa: E402
from adcreative.core.types import Product, canvas_size  # noqa: E402
from adcreative.generate.base import create_generator  # noqa: E402
from adcreative.generate.diffusers_inpaint import DiffusersInpaintGenerator, place_product  # noqa: E402
from adcreative.generate.diffusers_tiny import build_tiny_sd_folders  # noqa: E402
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


def gen_for(base: Path, cn: Path, **kw: object) -> DiffusersInpaintGenerator:
    cfg: dict[str, object] = {"steps": 3, "canvas_scale": 0.125, "size_multiple": 16, "device": "cpu"}
    cfg.update(kw)
    g = create_generator("diffusers-inpaint", base=str(base), controlnet=str(cn), **cfg)
    assert isinstance(g, DiffusersInpaintGenerator)
    return g


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
        got = np.asarray(g.image)[inside]
        want = np.asarray(placement.layer)[..., :3][inside]
        assert np.array_equal(got, want), "product pixels altered inside the mask"
        # independent of our own placement code: the solid red body's interior is pure red
        assert (np.all(got == RED, axis=1)).sum() > 100
        # the background was generated, not left as the grey init image
        outside = ~inside & (np.asarray(placement.layer)[..., 3] == 0)
        assert np.abs(np.asarray(g.image)[outside].astype(int) - 127).mean() > 1.0
        assert g.layout["product"].inside(64, 64)
        assert g.params["prompt"] == params["prompt"] and "marble" in g.params["prompt"]
        assert g.generator == "diffusers-inpaint" and g.label is None
        json.dumps(g.params), json.dumps(g.config)
    assert not np.array_equal(np.asarray(imgs[0].image), np.asarray(imgs[1].image))


def test_same_seed_same_image_and_config_rebuilds(tiny_sd: tuple[Path, Path]) -> None:
    base, cn = tiny_sd
    gen = gen_for(base, cn)
    a = gen(make_product(), seed=7, aspect="1:1")[0]
    again = create_generator("diffusers-inpaint", **json.loads(json.dumps(gen.config)))
    b = again(make_product(), seed=7, aspect="1:1")[0]
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_non_square_canvas(tiny_sd: tuple[Path, Path]) -> None:
    base, cn = tiny_sd
    g = gen_for(base, cn)(make_product(), seed=1, aspect="16:9")[0]
    assert g.image.size == canvas_size("16:9", 0.125)
    assert g.params["work_size"][0] % 16 == 0 and g.params["work_size"][1] % 16 == 0


def test_placement_scale_mask_and_control() -> None:
    import random

    prod = make_product()
    for s in (0.7, 0.78):
        p = place_product(prod.image, (512, 512), s, rng=random.Random(0), jitter=0.0, dilate=4)
        # the product's bbox fills the scale fraction of the canvas along its long side (here the height)
        assert abs(p.box.h - s * 512) <= 1.0
        hard = np.asarray(p.paste_mask) > 0
        gen_region = np.asarray(p.inpaint_mask) > 0
        assert gen_region[~hard].all(), "the whole background must be inpainted"
        ring = gen_region & hard
        assert ring.any(), "the inpaint mask is dilated into the product's edge"
        assert not gen_region[p.box.y0 + p.box.h // 2, p.box.x0 + p.box.w // 2]
        edges = np.asarray(p.control_image)[..., 0] > 0
        assert edges.any() and not edges[~np.pad(np.ones((p.box.h, p.box.w), bool),
                                                 ((p.box.y0, 512 - p.box.y1), (p.box.x0, 512 - p.box.x1)))].any()


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


def test_defect_request_is_refused(tiny_sd: tuple[Path, Path]) -> None:
    base, cn = tiny_sd
    with pytest.raises(InputError, match="compositor only"):
        gen_for(base, cn)(make_product(), seed=0, defect="space_mismatch")


def test_lora_from_local_file_changes_the_background(tiny_sd: tuple[Path, Path], tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    base, cn = tiny_sd
    unet = UNet2DConditionModel.from_pretrained(str(base / "unet"))
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:  # peft starts B at zero (a no-op LoRA); a trained one is not
                p.normal_(std=0.3)
    sd = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(str(tmp_path / "lora"), unet_lora_layers=sd, safe_serialization=True)
    prod = make_product()
    plain = gen_for(base, cn)(prod, seed=5)[0]
    tuned = gen_for(base, cn, lora=str(tmp_path / "lora"))(prod, seed=5)[0]
    assert not np.array_equal(np.asarray(plain.image), np.asarray(tuned.image))
    inside = np.asarray(tuned.mask) > 0
    assert np.array_equal(np.asarray(plain.image)[inside], np.asarray(tuned.image)[inside])


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
    assert np.array_equal(np.asarray(g.image)[inside], np.asarray(placement.layer)[..., :3][inside])
