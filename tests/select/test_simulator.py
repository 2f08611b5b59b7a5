"""Simulator: image features on known images, the market, a short campaign and its artefacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from adcreative.core.errors import InputError
from adcreative.select.simulator import (
    FEATURE_NAMES,
    SyntheticMarket,
    image_features,
    quick_creatives,
    run_campaign,
)
from tests.paths import SHARED as SHARED_DATA

SHARED = SHARED_DATA


def _cutouts() -> list[Image.Image]:
    out = []
    for j, col in enumerate([(220, 30, 30), (30, 160, 40), (40, 60, 220)]):
        im = Image.new("RGBA", (120, 160), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        (d.ellipse if j % 2 else d.rectangle)((10, 10, 110, 150), fill=(*col, 255))
        out.append(im)
    return out


def test_image_features_measure_known_content() -> None:
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    black = Image.new("RGB", (64, 64), (0, 0, 0))
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    box = Image.new("RGB", (100, 100), (255, 255, 255))
    ImageDraw.Draw(box).rectangle((10, 10, 59, 89), fill=(0, 0, 255))   # a 50×80 product left of centre
    f = image_features([white, black, red, box])
    col = {n: i for i, n in enumerate(FEATURE_NAMES)}
    assert f[0, col["brightness"]] == pytest.approx(1.0, abs=1e-3) and f[1, col["brightness"]] == pytest.approx(0.0)
    assert f[2, col["colourfulness"]] > 0.3 > f[0, col["colourfulness"]]
    assert f[2, col["hue_0"]] == pytest.approx(1.0)                       # red → first hue bin
    assert f[3, col["product_area"]] == pytest.approx(0.4, abs=0.03)
    assert f[3, col["product_cx"]] == pytest.approx(0.35, abs=0.03)
    # an explicit mask wins over the border heuristic
    mask = Image.new("L", (100, 100), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 99, 24), fill=255)
    assert image_features([box], [mask])[0, col["product_area"]] == pytest.approx(0.25, abs=0.02)
    with pytest.raises(InputError):
        image_features([])


def test_market_is_seeded_and_rejects_bad_features() -> None:
    f = np.random.default_rng(0).standard_normal((6, 4))
    a, b = SyntheticMarket(f, seed=3), SyntheticMarket(f, seed=3)
    np.testing.assert_array_equal(a.logits(np.ones((2, 4))), b.logits(np.ones((2, 4))))
    with pytest.raises(InputError):
        SyntheticMarket(f[:1])
    with pytest.raises(InputError):
        SyntheticMarket(np.full((3, 2), np.nan))


def test_short_campaign_ours_beats_uniform_and_writes_png(tmp_path: Path) -> None:
    ims, masks = quick_creatives(_cutouts(), 8, seed=0, size=96)
    feats = image_features(ims, masks)
    pols = ["oracle", "ours", "uniform", "best_fixed"]
    try:
        import vowpalwabbit  # noqa: F401

        pols.append("vw")
    except ImportError:
        pass
    res = run_campaign(feats, 2500, seed=0, policies=pols, png=tmp_path / "c.png")
    ours = res.ctr("ours: hybrid Thompson (visual prior)")
    assert res.ctr("oracle") >= max(res.ctr(k) for k in res.clicks)
    assert ours > 1.5 * res.ctr("uniform random")
    assert ours > res.ctr("best fixed creative")
    assert (tmp_path / "c.png").stat().st_size > 5000
    assert "N = 2500" in res.to_markdown() and "<table>" in res.to_html("c.png")
    assert len(res.curves["oracle"]) == 2500
    with pytest.raises(InputError):
        run_campaign(feats, 10, policies=["nope"])


@pytest.mark.shared
def test_campaign_on_real_product_cutouts() -> None:
    folder = SHARED / "products"
    if not folder.is_dir():
        pytest.skip(f"real product cutouts not available ({folder} is absent)")
    cuts = [Image.open(p) for p in sorted(folder.glob("*.png"))]
    ims, masks = quick_creatives(cuts, 10, seed=1, size=128)
    res = run_campaign(image_features(ims, masks), 1500, seed=1, policies=["ours", "uniform"])
    assert res.ctr("ours: hybrid Thompson (visual prior)") > res.ctr("uniform random")


def test_cli_simulate_from_store_keeps_only_available_creatives(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """generate → inspect → select: creatives in the store, one judged unsuitable and one never judged (what a
    crash between its commit and its verdict's used to leave): a campaign over the ones judged available."""
    from adcreative.cli import main
    from adcreative.core.store import Store
    from adcreative.core.types import Creative, Product, Verdict

    store = Store(home=tmp_path / "h")
    cut = _cutouts()[0]
    store.add_products([Product(id="p1", title="Red box", category="toys", image=cut)])
    ims, _ = quick_creatives(_cutouts(), 5, seed=2, size=96)
    for j, im in enumerate(ims):
        store.add_creative(Creative(id=f"c{j}", product_id="p1", image_sha="", generator="test",
                                    generator_version="0", seed=j, aspect="1:1", width=96, height=96), im)
    store.add_verdicts([Verdict("c0", "rfnet-test", {"available": 0.1, "unsuitable": 0.9})]
                       + [Verdict(f"c{j}", "rfnet-test", {"available": 0.8, "unsuitable": 0.2}) for j in (1, 2, 3)])
    assert main(["--home", str(tmp_path / "h"), "select", "simulate", "--from-store", "--n", "400",
                 "--policies", "ours,uniform"]) == 0
    out = capsys.readouterr().out
    assert "3 of 5 creatives are available" in out and "3 creatives" in out
