"""The real Open Bandit Dataset sample in ../shared/data/obd (skipped only when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.select.data import load_obd
from tests.paths import SHARED as SHARED_DATA

OBD = SHARED_DATA / "obd" / "men"


needs_obd = pytest.mark.skipif(not (OBD / "random").is_dir(), reason=f"OBD sample not available ({OBD} is absent)")


@pytest.mark.shared
@needs_obd
def test_obd_mapping() -> None:
    d = load_obd(OBD, "random")
    log = d.log
    assert len(log) == 10000 and len(d.creatives) == 34
    assert log.candidates.shape == (10000, 34) and log.pair.shape == (10000, 34, 1)
    assert set(np.unique(log.context)) == {0, 1, 2}
    np.testing.assert_allclose(log.propensity, 1 / 34, rtol=1e-5)   # uniform logging
    assert 0 < log.click.sum() < 200
    assert d.creatives.features.shape[1] > 1 and d.creatives.ids[0] == "item_0"


def test_obd_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no OBD log CSV"):
        load_obd(tmp_path, "random")
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "x.csv").write_text("a,b\n1,2\n")
    (tmp_path / "random" / "item_context.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not an OBD item_context"):
        load_obd(tmp_path, "random")


@pytest.mark.slow
@pytest.mark.shared
@needs_obd
def test_obd_off_policy_table(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from adcreative.select.bundle import Bundle
    from adcreative.select.obd import evaluate_obd
    from adcreative.select.selector import RankRequest, Selector

    r = evaluate_obd(OBD, folds=2, epochs=1, with_vw=False, n_boot=200, save_to=tmp_path / "b")
    rows = {(x["policy"], x["estimator"]): x for x in r.rows}
    rnd = rows[("random (logged)", "on-policy")]
    assert rnd["value"] == pytest.approx(r.clicks_random / r.n_random)
    # OPE of the uniform policy on uniformly logged data reproduces the logged CTR exactly
    assert rows[("uniform (OPE sanity check)", "SNIPS")]["value"] == pytest.approx(rnd["value"])
    for e in ("IPS", "SNIPS", "DR"):
        x = rows[("ours, greedy", e)]
        assert x["lo"] <= x["value"] <= x["hi"] and np.isfinite(x["value"])
    assert 0.0 <= r.metrics["AUC (click model, cross-fitted)"] <= 1.0
    assert "BTS (logged)" in r.to_markdown()
    # the saved bundle serves OBD requests
    b = Bundle.load(tmp_path / "b")
    out = Selector(b).rank(RankRequest(user_id="u", ad_id="men", candidates=b.creatives.ids[:10],
                                       user={"user_feature_0": "cef3390ed299c09874189c387777674a"}))
    assert sorted(out.ranked) == sorted(b.creatives.ids[:10])
