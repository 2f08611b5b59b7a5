"""OBD: any campaign folder (name and item count from the files), nested-CV evaluation, the deployment gate,
and the real sample in ../shared/data/obd (skipped only when that folder is absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.select.data import load_obd
from adcreative.select.obd import deployment_gate, evaluate_obd
from tests.paths import SHARED as SHARED_DATA

OBD = SHARED_DATA / "obd" / "men"
needs_obd = pytest.mark.skipif(not (OBD / "random").is_dir(), reason=f"OBD sample not available ({OBD} is absent)")


def write_campaign(root: Path, name: str, n_items: int, n: int, seed: int, *, best: int | None = None) -> Path:
    """An OBD-format campaign ``root/{random,bts}/<name>.csv`` + item_context.csv. Clicks are rare; with
    ``best``, users with user_feature_0 == "a" click item ``best`` far more often (a learnable effect)."""
    rng = np.random.default_rng(seed)
    for policy in ("random", "bts"):
        d = root / policy
        d.mkdir(parents=True, exist_ok=True)
        with (d / "item_context.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["", "item_id", "item_feature_0", "item_feature_1", "item_feature_2", "item_feature_3"])
            for i in range(n_items):
                w.writerow([i, i, rng.normal(), f"c{i % 3}", f"d{i % 2}", "e0"])
        with (d / f"{name}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["", "timestamp", "item_id", "position", "click", "propensity_score",
                        *[f"user_feature_{j}" for j in range(4)], *[f"user-item_affinity_{j}" for j in range(n_items)]])
            for r in range(n):
                item = int(rng.integers(n_items))
                u0 = "a" if rng.random() < 0.5 else "b"
                p = 0.5 if (best is not None and item == best and u0 == "a") else 0.01
                prop = 1 / n_items if policy == "random" else float(rng.uniform(0.01, 0.5))
                w.writerow([r, r, item, int(rng.integers(1, 4)), int(rng.random() < p), prop, u0, "x", "y",
                            f"z{r % 3}", *rng.integers(0, 3, n_items)])
    return root


def test_campaign_name_and_item_count_come_from_the_files(tmp_path: Path) -> None:
    d = load_obd(write_campaign(tmp_path / "folder-name-is-not-used", "kids", 5, 200, 0), "random")
    assert d.campaign == "kids" and d.n_items == 5 and len(d.log) == 200
    assert d.log.candidates.shape == (200, 5) and d.log.pair.shape == (200, 5, 1)
    assert d.creatives.ids == [f"item_{i}" for i in range(5)]
    bts = load_obd(tmp_path / "folder-name-is-not-used", "bts")
    assert bts.campaign == "kids" and not np.allclose(bts.log.propensity, 1 / 5)


def test_obd_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no OBD log CSV"):
        load_obd(tmp_path, "random")
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "x.csv").write_text("a,b\n1,2\n")
    (tmp_path / "random" / "item_context.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not an OBD item_context"):
        load_obd(tmp_path, "random")
    # affinity columns must match the item count
    root = write_campaign(tmp_path / "c", "kids", 4, 20, 1)
    ctx = root / "random" / "item_context.csv"
    ctx.write_text("\n".join(ctx.read_text().splitlines()[:-1]) + "\n")  # drop the last item
    with pytest.raises(InputError, match=r"4 user-item affinity columns but item_context\.csv lists 3 items"):
        load_obd(root, "random")
    (root / "bts" / "other.csv").write_text("a\n1\n")
    with pytest.raises(InputError, match="more than one log CSV"):
        load_obd(root, "bts")


def _edit_log(root: Path, column: str, row: int, value: str) -> None:
    log = root / "random" / "kids.csv"
    rows = list(csv.reader(log.open(newline="")))
    rows[row + 1][rows[0].index(column)] = value
    with log.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


@pytest.mark.parametrize(("column", "value", "needle"), [
    ("click", "2", r"click must be 0 or 1 \(data row 4 has 2\)"),       # was taken as a reward of 2
    ("user-item_affinity_1", "nan", "affinity values must be finite"),  # was a NaN pair feature
    ("position", "1000", "position 1000 is over 65"),
])
def test_obd_bad_values(tmp_path: Path, column: str, value: str, needle: str) -> None:
    root = write_campaign(tmp_path / "c", "kids", 4, 20, 1)
    _edit_log(root, column, 3, value)
    with pytest.raises(InputError, match=needle):
        load_obd(root, "random")


def test_obd_refuses_a_log_too_small_for_nested_cross_fitting(tmp_path: Path) -> None:
    # no clicks (or a handful): sklearn's "needs samples of at least 2 classes" traceback mid-run
    root = write_campaign(tmp_path / "c", "kids", 4, 300, 1)
    clicks = int(load_obd(root, "random").log.click.sum())
    assert 0 < clicks < 15
    with pytest.raises(InputError, match=f"the random log has {clicks} clicks in 300 rows: nested cross-validation "
                                         r"\(5 × 3 folds\) needs at least 15 clicks"):
        evaluate_obd(root, seeds=[0])


def test_deployment_gate_refuses_a_lower_bound_below_logging() -> None:
    """On a seeded synthetic log where the learned policy is no better than logging, the gate refuses; where it is
    clearly better, it exports."""
    from adcreative.select.ope import off_policy

    rng = np.random.default_rng(0)
    n, k = 5000, 10
    shown = rng.integers(0, k, n)
    click = (rng.random(n) < 0.01).astype(float)           # every item 1%: nothing to learn
    top = rng.integers(0, k, n)                              # a "learned" greedy policy
    est = off_policy(click, (top == shown).astype(float), np.full(n, 1 / k), np.zeros(n), np.zeros(n), n_boot=200)
    logging = {"random (logged)": float(click.mean()), "BTS (logged)": 0.012}
    d = deployment_gate([est["SNIPS"].lo], logging)
    assert not d.export and "CONSERVATIVE" in d.reason and "BTS (logged) CTR 0.0120" in d.reason
    # a policy whose lower bound clears both logged CTRs on every seed is exported; one failing seed refuses
    assert deployment_gate([0.02, 0.03], logging).export
    assert not deployment_gate([0.02, 0.011], logging).export


@pytest.mark.slow
def test_evaluate_and_export_on_a_campaign_it_was_not_built_on(tmp_path: Path) -> None:
    """A synthetic 'kids' campaign with a strong learnable effect: the report is about 'kids', hyperparameters are
    chosen inside the training folds, the learned policy passes the gate and the bundle serves ad 'kids'."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from adcreative.select.bundle import Bundle
    from adcreative.select.obd import LEARNED
    from adcreative.select.selector import RankRequest, Selector

    root = write_campaign(tmp_path / "data", "kids", 4, 3000, 2, best=2)
    r = evaluate_obd(root, seeds=[0, 1], folds=2, inner_folds=2, n_boot=100, save_to=tmp_path / "b")
    md = r.to_markdown()
    assert "`kids` (4 items)" in md and "`men`" not in md and "seeds [0, 1]" in md
    assert r.per_seed[0].rows[(LEARNED, "SNIPS")].ess > 0 and len(r.per_seed[0].chosen[LEARNED]) == 2
    assert r.per_seed[0].metrics[LEARNED]["AUC"] > 0.6
    assert r.decision.export, r.decision.reason
    assert "**Deployment decision**: EXPORT" in md
    b = Bundle.load(tmp_path / "b")
    assert b.ad_id == "kids" and b.serves_model and b.manifest["decision"]["export"]
    out = Selector(b).rank(RankRequest(user_id="u", ad_id="kids", candidates=b.creatives.ids,
                                       user={"user_feature_0": "a"}, explore=False))
    assert out.ranked[0] == "item_2"


@pytest.mark.shared
@needs_obd
def test_obd_mapping() -> None:
    d = load_obd(OBD, "random")
    log = d.log
    assert d.campaign == "men" and len(log) == 10000 and d.n_items == 34
    assert log.candidates.shape == (10000, 34) and log.pair.shape == (10000, 34, 1)
    assert set(np.unique(log.context)) == {0, 1, 2}
    np.testing.assert_allclose(log.propensity, 1 / 34, rtol=1e-5)   # uniform logging
    assert 0 < log.click.sum() < 200
    assert d.creatives.features.shape[1] > 1 and d.creatives.ids[0] == "item_0"


@pytest.mark.slow
@pytest.mark.shared
@needs_obd
def test_obd_report_and_conservative_bundle(tmp_path: Path) -> None:
    """The real sample: the gate refuses (46 clicks cannot show a win), the bundle serves the conservative policy
    for ad 'men' and says why."""
    pytest.importorskip("torch")
    from adcreative.select.bundle import Bundle
    from adcreative.select.obd import evaluate_obd
    from adcreative.select.selector import RankRequest, Selector

    r = evaluate_obd(OBD, seeds=[0], folds=2, inner_folds=2, n_boot=200, save_to=tmp_path / "b")
    rows = {(p, e): x for (p, e), x in r.per_seed[0].rows.items()}
    rnd = r.logged["random (logged)"]
    assert rnd.value == pytest.approx(r.clicks_random / r.n_random) and rnd.lo < rnd.value < rnd.hi
    # OPE of the uniform policy on uniformly logged data reproduces the logged CTR exactly
    assert rows[("uniform (OPE sanity check)", "SNIPS")].value == pytest.approx(rnd.value)
    for x in rows.values():
        assert x.lo <= x.value <= x.hi and x.hi > x.lo and np.isfinite(x.value)
    assert not r.decision.export
    b = Bundle.load(tmp_path / "b")
    assert b.ad_id == "men" and not b.serves_model and "CONSERVATIVE" in b.manifest["decision"]["reason"]
    out = Selector(b).rank(RankRequest(user_id="u", ad_id="men", candidates=b.creatives.ids[:10],
                                       user={"user_feature_0": "cef3390ed299c09874189c387777674a"}))
    assert sorted(out.ranked) == sorted(b.creatives.ids[:10]) and out.explored and 0 < out.propensity <= 1
