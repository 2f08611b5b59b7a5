"""The learned prop finder and cue set 6: candidates, the trees evaluated in NumPy exactly as fitted, saving and
loading through the registry, the pinned shipped finder, and set 6 = set 5 bit for bit + the finder's scale."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from adcreative.cli import main
from adcreative.core.errors import InputError
from adcreative.inspect.cues import (
    CUE_NAMES_V5,
    CUE_NAMES_V6,
    CUE_SETS,
    TYPICAL_PROP_CM,
    image_prop_candidates,
    n_cues,
    observe,
)
from adcreative.inspect.prop_finder import (
    ASSET_DIR,
    FEATURE_NAMES,
    N_FEATURES,
    PROP_FINDERS,
    SHIPPED_SHA256,
    PropFinder,
    candidate_table,
    finder_digest,
    fit_prop_finder,
    match_props,
    shipped_prop_finder,
)
from tests.inspect.test_cues import _scene
from tests.inspect.test_cues_v3 import _textured


def _cue(v: np.ndarray, name: str) -> float:
    return float(v[CUE_NAMES_V6.index(name)])


def _always(p_raw: float) -> PropFinder:
    """A finder with no trees: every candidate gets sigmoid(p_raw)."""
    f = PropFinder()
    f.baseline[0] = p_raw
    return f


def test_the_trees_are_evaluated_as_fitted() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 5] * x[:, 2] + 0.3 * rng.normal(size=600)) > 0.2
    est = HistGradientBoostingClassifier(max_depth=4, learning_rate=0.1, max_iter=40, early_stopping=False,
                                         random_state=0).fit(x, y)
    finder = PropFinder.from_estimator(est)
    assert finder.n_trees == 40 and finder.max_depth <= 4
    test = rng.normal(size=(300, N_FEATURES)).astype(np.float32)
    np.testing.assert_allclose(finder.predict_proba(test), est.predict_proba(test)[:, 1], atol=1e-12)
    assert np.array_equal(finder.find(test), est.predict_proba(test)[:, 1] >= 0.5)
    # non-finite features are read as 0, never an error or a NaN probability
    bad = test[:3].copy()
    bad[0, 0], bad[1, 3], bad[2, 7] = np.nan, np.inf, -np.inf
    assert np.isfinite(finder.predict_proba(bad)).all()
    assert finder.predict_proba(np.zeros((0, N_FEATURES))).shape == (0,)


def test_fitting_is_seeded_and_refuses_one_class() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, N_FEATURES)).astype(np.float32)
    y = x[:, 1] > 0.3
    a, b = fit_prop_finder(x, y, max_iter=20), fit_prop_finder(x, y, max_iter=20)
    assert all(np.array_equal(u, v) for u, v in zip(a.state_arrays().values(), b.state_arrays().values(), strict=True))
    assert (a.find(x) == y).mean() > 0.9
    with pytest.raises(InputError, match="props and candidates that are not"):
        fit_prop_finder(x, np.zeros(len(x), bool))


def test_saved_and_loaded_through_the_registry(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, N_FEATURES)).astype(np.float32)
    finder = fit_prop_finder(x, x[:, 4] > 0, max_iter=10)
    finder.save_pretrained(tmp_path / "f")
    cfg = json.loads((tmp_path / "f" / "config.json").read_text())
    assert cfg["_registry"] == {"family": "prop finder", "name": "candidate-trees"}
    assert cfg["features"] == list(FEATURE_NAMES)
    back = PROP_FINDERS.load(tmp_path / "f")
    np.testing.assert_array_equal(back.predict_proba(x), finder.predict_proba(x))
    # weights of another finder beside this config: refused with the file named
    other = fit_prop_finder(x, x[:, 4] > 0, max_iter=5)
    other.save_pretrained(tmp_path / "g")
    (tmp_path / "f" / "model.safetensors").write_bytes((tmp_path / "g" / "model.safetensors").read_bytes())
    with pytest.raises(InputError, match=r"does not fit config\.json"):
        PROP_FINDERS.load(tmp_path / "f")
    (tmp_path / "f" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="not a readable safetensors"):
        PROP_FINDERS.load(tmp_path / "f")
    with pytest.raises(ValueError, match="other features"):
        PropFinder(features=["height_frac"])


def test_the_shipped_finder_is_pinned() -> None:
    assert finder_digest(ASSET_DIR) == SHIPPED_SHA256  # a refitted finder is a new cue set, not set 6
    finder = shipped_prop_finder()
    assert finder.n_trees > 0 and finder.threshold_p == 0.5
    assert (ASSET_DIR / "README.md").is_file()


def test_candidates_find_a_prop_beside_the_product() -> None:
    img, mask, _ = _textured(prop=50)  # a red block 50 px tall on the table, at x 30-50
    scale, feats, boxes = image_prop_candidates(img, mask)
    assert scale == 1.0 and feats.shape == (len(boxes), N_FEATURES) and feats.dtype == np.float32
    hit = [b for b in boxes if b[0] >= 28 and b[0] + b[2] <= 52]
    assert hit and max(b[3] for b in hit) >= 45
    # nothing without a product, and nothing on a plain canvas but the product
    assert len(image_prop_candidates(img, np.zeros_like(mask))[1]) == 0
    plain = np.full_like(img, 200)
    assert len(image_prop_candidates(plain, mask)[1]) == 0


def test_recorded_boxes_label_the_candidates() -> None:
    boxes = np.array([[10, 20, 10, 30], [100, 20, 10, 30], [10, 20, 10, 8]])  # x, y, w, h (work px)
    props = [[20, 40, 40, 100]]  # x0, y0, x1, y1 in image px: at scale 0.5 the first box exactly
    assert match_props(boxes, props, 0.5).tolist() == [True, False, False]  # apart; too short
    assert match_props(boxes, [], 0.5).tolist() == [False] * 3


def test_version_6_starts_with_version_5() -> None:
    assert CUE_SETS["6"] == CUE_NAMES_V6 and CUE_NAMES_V6[: len(CUE_NAMES_V5)] == CUE_NAMES_V5
    assert len(set(CUE_NAMES_V6)) == len(CUE_NAMES_V6) == n_cues("5") + 5
    for scene in (_textured(), _textured(prop=50), _scene(pedestal=True, hole=True)):
        for h in (None, 22.0):
            v5 = observe(*scene, version="5", height_cm=h)
            v6 = observe(*scene, version="6", height_cm=h)
            assert v6.shape == (n_cues("6"),) and v6.dtype == np.float32 and np.isfinite(v6).all()
            np.testing.assert_array_equal(v6[: len(CUE_NAMES_V5)], v5)  # bit for bit


def test_version_6_reads_the_props_its_finder_keeps() -> None:
    scene = _textured(prop=50)
    _, feats, _ = image_prop_candidates(scene[0], scene[1])
    none = observe(*scene, version="6", height_cm=22.0, prop_finder=_always(-10.0))
    assert all(_cue(none, k) == 0.0 for k in CUE_NAMES_V6[len(CUE_NAMES_V5) :])
    every = observe(*scene, version="6", height_cm=22.0, prop_finder=_always(10.0))
    assert _cue(every, "prop3_n") == len(feats)
    big = feats[int(np.argmax(feats[:, FEATURE_NAMES.index("area_frac")]))]
    assert _cue(every, "prop3_log_big") == pytest.approx(float(big[FEATURE_NAMES.index("log_product_over_height")]))
    shift = math.log(TYPICAL_PROP_CM) - math.log(22.0)
    assert _cue(every, "prop3_scale_med") == pytest.approx(_cue(every, "prop3_log_med") + shift, abs=1e-5)
    assert _cue(every, "prop3_scale_big") == pytest.approx(_cue(every, "prop3_log_big") + shift, abs=1e-5)
    # an unknown height leaves the scale at 0, as set 5 does
    unknown = observe(*scene, version="6", prop_finder=_always(10.0))
    assert _cue(unknown, "prop3_n") == len(feats) and _cue(unknown, "prop3_scale_med") == 0.0
    # the shipped finder keeps the 50 px block beside the 100 px product: a ratio near log 2
    shipped = observe(*scene, version="6", height_cm=22.0)
    assert _cue(shipped, "prop3_n") >= 1 and abs(_cue(shipped, "prop3_log_big") - math.log(100 / 50)) < 0.25


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.inspect.datasets.synth import synth_dataset

    out = tmp_path_factory.mktemp("props") / "set"
    synth_dataset(sample_catalogue()[:3], out, per_class=1, seed=5, scale=0.5, renderers=("compositor", "photoset"))
    return out


def test_candidates_of_a_synthetic_set_are_labelled_by_its_boxes(synth_set: Path) -> None:
    from adcreative.inspect.datasets.formats import read_dataset

    samples = read_dataset(synth_set)
    table = candidate_table(samples)
    assert len(table["features"]) == len(table["labels"]) == len(table["row"]) > 0
    assert table["labels"].any() and not table["labels"].all()
    assert set(np.unique(table["row"])) <= set(range(len(samples)))
    for s in samples[:1]:  # a sample without recorded geometry: its props are unknown, not none
        s.params = {}
        with pytest.raises(InputError, match="record its props"):
            candidate_table([s])


def test_the_cli_fits_a_finder(synth_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "finder"
    assert main(["inspect", "fit-prop-finder", "--data", str(synth_set), "--out", str(out), "--rounds", "20",
                 "--renderers", "compositor,photoset"]) == 0
    printed = capsys.readouterr().out
    assert "in-sample precision" in printed and "prop finder:" in printed
    finder = PROP_FINDERS.load(out)
    cfg = json.loads((out / "config.json").read_text())
    assert finder.n_trees == 20 and cfg["_extra"]["images"] > 0 and cfg["_extra"]["props"] > 0
    # observe reads a finder it is given
    img, mask, cut = _textured(prop=50)
    assert np.isfinite(observe(img, mask, cut, version="6", prop_finder=finder)).all()


@pytest.mark.parametrize(("args", "says"), [
    (["--splits", "train,dev"], "--splits takes train, val and test"),
    (["--renderers", "poster"], "no images of those splits and renderers"),
])
def test_cli_usage_errors(synth_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                          says: str) -> None:
    code = main(["inspect", "fit-prop-finder", "--data", str(synth_set), "--out", str(tmp_path / "f"), *args])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err and not (tmp_path / "f").exists()


def test_cli_refuses_a_set_without_recorded_props(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.inspect.helpers import make_dataset

    d = make_dataset(tmp_path / "plain", per_class=1)
    code = main(["inspect", "fit-prop-finder", "--data", str(d), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and "record no props" in err and not (tmp_path / "f").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_cli_names_a_corrupt_image_and_writes_nothing(synth_set: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str], workers: int) -> None:
    import shutil

    d = tmp_path / "set"
    shutil.copytree(synth_set, d)
    bad = sorted((d / "images").glob("*.png"))[3]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code = main(["inspect", "fit-prop-finder", "--data", str(d), "--out", str(tmp_path / "f"), "--workers",
                 str(workers)])
    err = capsys.readouterr().err
    assert code == 2 and bad.name in err and "Traceback" not in err and not (tmp_path / "f").exists()
