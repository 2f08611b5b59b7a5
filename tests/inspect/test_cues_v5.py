"""Cue set version 5: version 4's cues unchanged bit for bit, then the product's real height (which the catalogue
knows) and the scale against props it gives; the height travels from the catalogue to the cues."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adcreative.catalogue.sizes import DEFAULT_HEIGHT_CM, real_height_cm, text_height_cm
from adcreative.core.errors import InputError
from adcreative.core.types import Product
from adcreative.inspect.cues import CUE_NAMES_V4, CUE_NAMES_V5, CUE_SETS, TYPICAL_PROP_CM, n_cues, observe
from adcreative.inspect.data import sample_height_cm
from adcreative.inspect.datasets.formats import Sample
from adcreative.inspect.preprocess import InspectItem, check_item, preprocess_item
from tests.inspect.test_cues import _scene
from tests.inspect.test_cues_v3 import _textured


def _cue(v: np.ndarray, name: str) -> float:
    return float(v[CUE_NAMES_V5.index(name)])


def test_version_5_starts_with_version_4() -> None:
    assert CUE_SETS["5"] == CUE_NAMES_V5 and CUE_NAMES_V5[: len(CUE_NAMES_V4)] == CUE_NAMES_V4
    assert len(set(CUE_NAMES_V5)) == len(CUE_NAMES_V5) == n_cues("5") == n_cues("4") + 4
    for scene in (_textured(), _textured(prop=50), _scene(pedestal=True, hole=True)):
        v4 = observe(*scene, version="4")
        for h in (None, 22.0):
            v5 = observe(*scene, version="5", height_cm=h)
            assert v5.shape == (n_cues("5"),) and v5.dtype == np.float32 and np.isfinite(v5).all()
            np.testing.assert_array_equal(v5[: len(CUE_NAMES_V4)], v4)  # bit for bit
        # the other sets do not read the height
        np.testing.assert_array_equal(observe(*scene, version="4", height_cm=80.0), v4)
    img, mask, cut = _textured(prop=50)
    assert (observe(img, np.zeros_like(mask), cut, version="5", height_cm=22.0) == 0).all()


def test_the_height_turns_the_prop_ratio_into_a_scale() -> None:
    scene = _textured(prop=50)  # a 92 px product beside a 50 px prop
    unknown = observe(*scene, version="5")
    assert _cue(unknown, "height_known") == 0.0 and _cue(unknown, "prop2_scale_med") == 0.0
    bottle, chair = observe(*scene, version="5", height_cm=22.0), observe(*scene, version="5", height_cm=88.0)
    for v, cm in ((bottle, 22.0), (chair, 88.0)):
        assert _cue(v, "height_known") == 1.0 and _cue(v, "height_log_cm") == pytest.approx(math.log(cm))
        want = _cue(v, "prop2_log_med") - math.log(cm) + math.log(TYPICAL_PROP_CM)
        assert _cue(v, "prop2_scale_med") == pytest.approx(want, abs=1e-5)
    # the same pixels: a 22 cm bottle drawn 1.8 times an 11 cm prop is about at scale, an 88 cm chair is far too
    # small beside it
    assert abs(_cue(bottle, "prop2_scale_med")) < 0.3 and _cue(chair, "prop2_scale_med") < -1.0
    no_prop = observe(*_textured(), version="5", height_cm=22.0)
    assert _cue(no_prop, "height_known") == 1.0 and _cue(no_prop, "prop2_scale_med") == 0.0


@pytest.mark.parametrize("bad", [0.0, -3.0, float("nan"), float("inf"), 5000.0])
def test_a_bad_height_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="height_cm"):
        observe(*_textured(), version="5", height_cm=bad)
    img, mask, cut = _textured()
    item = InspectItem(image=Image.fromarray(img), title="a bottle", mask=Image.fromarray((mask * 255).astype(np.uint8)),
                       product=Image.fromarray(cut, "RGBA"), height_cm=bad, source="x.png")
    with pytest.raises(InputError, match="product height"):
        check_item(item)


def test_the_height_reaches_the_cues_through_the_item() -> None:
    img, mask, cut = _textured(prop=50)
    for h in (None, 22.0):
        item = InspectItem(image=Image.fromarray(img), title="sparkling water bottle",
                           mask=Image.fromarray((mask * 255).astype(np.uint8)), product=Image.fromarray(cut, "RGBA"),
                           height_cm=h)
        got = preprocess_item(item, image_size=64, aux_size=16, cue_set="5")["cues"]
        np.testing.assert_array_equal(got, observe(img, mask, cut, version="5", height_cm=h))


def test_where_the_height_comes_from() -> None:
    prod = Product(id="p", title="Ceramic mug, 350 ml", category="kitchen", image=Image.new("RGBA", (8, 8)))
    assert real_height_cm(prod) == text_height_cm(prod.title, prod.category) == 10.0
    for bad in ("nan", "inf", "-2", "1e9"):  # a bad explicit figure is not evidence: the title decides
        prod.attrs["height_cm"] = bad
        assert real_height_cm(prod) == 10.0
    prod.attrs["height_cm"] = "31.5"
    assert real_height_cm(prod) == 31.5
    assert text_height_cm("", "") == DEFAULT_HEIGHT_CM
    s = Sample(id="a", image=Path("a.png"), mask=None, product=None, product_id="p", title="armchair", category="",
               label="available", split="train", params={"geometry": {"product_cm": 18.0}})
    assert sample_height_cm(s) == 18.0  # what the renderer was told, from the catalogue
    s.params = {}
    assert sample_height_cm(s) == 82.0  # an RF1M line: the title's prior
    s.params = {"geometry": {"product_cm": float("nan")}}
    assert sample_height_cm(s) == 82.0



def test_the_encodings_cache_key_follows_the_cue_names_and_the_height(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    from adcreative.inspect import cues
    from adcreative.inspect.data import _cache_file

    def samples(cm: float) -> list[Sample]:
        return [Sample(id="a", image=tmp_path / "a.png", mask=None, product=None, product_id="p", title="bottle",
                       category="", label="available", split="train", params={"geometry": {"product_cm": cm}})]

    cfg = {"image_size": 64, "cue_set": "5"}
    key, _ = _cache_file(samples(22.0), cfg, tmp_path)
    assert _cache_file(samples(22.0), cfg, tmp_path)[0] == key
    assert _cache_file(samples(30.0), cfg, tmp_path)[0] != key  # set 5 reads the height
    monkeypatch.setitem(cues.CUE_SETS, "5", (*CUE_NAMES_V4, "another_cue"))  # another definition of the same set
    assert _cache_file(samples(22.0), cfg, tmp_path)[0] != key
