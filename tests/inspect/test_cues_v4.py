"""Cue set version 4: version 3's cues unchanged bit for bit, then the scale against props from a stricter prop
finder, which keeps a prop standing at the base and drops specks, a line of copy and a shadow beside it."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.inspect.cues import CUE_NAMES_V3, CUE_NAMES_V4, CUE_SETS, n_cues, observe
from tests.inspect.test_cues import _scene
from tests.inspect.test_cues_v3 import _textured


def _cue(v: np.ndarray, name: str) -> float:
    return float(v[CUE_NAMES_V4.index(name)])


def _cluttered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_textured's scene with a 50 px prop at the base, plus two 5 px specks, a wide 8 px bar (a line of copy)
    and a shadow (the backdrop darkened, its hue kept), all standing on the table top at row 134."""
    img, mask, cut = _textured(prop=50)
    img = img.copy()
    img[129:134, 60:65] = (60, 60, 60)
    img[129:134, 160:165] = (60, 60, 60)
    img[126:134, 195:235] = (40, 40, 120)
    img[110:134, 170:188] = (img[110:134, 170:188].astype(np.float32) * 0.6).astype(np.uint8)
    return img, mask, cut


def test_version_4_starts_with_version_3() -> None:
    assert CUE_SETS["4"] == CUE_NAMES_V4 and CUE_NAMES_V4[: len(CUE_NAMES_V3)] == CUE_NAMES_V3
    assert len(set(CUE_NAMES_V4)) == len(CUE_NAMES_V4) == n_cues("4") == n_cues("3") + 3
    for scene in (_textured(), _textured(prop=50), _cluttered(), _scene(pedestal=True, hole=True)):
        v3, v4 = observe(*scene, version="3"), observe(*scene, version="4")
        assert v4.shape == (n_cues("4"),) and v4.dtype == np.float32 and np.isfinite(v4).all()
        np.testing.assert_array_equal(v4[: len(CUE_NAMES_V3)], v3)  # bit for bit
    img, mask, cut = _textured(prop=50)
    assert (observe(img, np.zeros_like(mask), cut, version="4") == 0).all()


def test_a_prop_at_the_base_is_measured() -> None:
    assert _cue(observe(*_textured(), version="4"), "prop2_n") == 0.0
    v = observe(*_textured(prop=50), version="4")
    assert _cue(v, "prop2_n") == 1.0
    assert _cue(v, "prop2_log_med") == pytest.approx(np.log(92 / 50), abs=0.15)  # the opaque body: 92 px
    assert _cue(v, "prop2_log_big") == pytest.approx(_cue(v, "prop2_log_med"))
    giant = observe(*_textured(prop=50, size=1.25), version="4")
    assert _cue(giant, "prop2_log_med") > _cue(v, "prop2_log_med") + 0.2


def test_specks_copy_and_shadow_are_not_props() -> None:
    v = observe(*_cluttered(), version="4")
    # version 3 counts the clutter and its median height is a speck's; version 4 keeps the prop alone
    assert _cue(v, "prop_n") >= 4 and _cue(v, "prop_log_med") > np.log(92 / 50) + 0.5
    assert _cue(v, "prop2_n") == 1.0
    assert _cue(v, "prop2_log_med") == pytest.approx(np.log(92 / 50), abs=0.15)
