"""Leave-one-renderer-out folds never train on a test product or on the held-out family."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.inspect.loro import IN_DIST, LORO, REAL, check_fold, make_folds


def layout(seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """30 products (3 real) × 3 renderer families × 4 images, products split 60/20/20 by hashing."""
    rng = np.random.default_rng(seed)
    pids = [f"real-{i}" if i < 3 else f"proc-{i}" for i in range(30)]
    split = {p: ["train", "train", "train", "val", "test"][i % 5] for i, p in enumerate(rng.permutation(pids))}
    r, s, p = [], [], []
    for pid in pids:
        for fam in ("compositor", "photo", "noise"):
            for _ in range(4):
                r.append(fam)
                s.append(split[pid])
                p.append(pid)
    return r, s, p


def test_folds_split_by_product_and_renderer() -> None:
    r, s, p = layout()
    real = {"real-0", "real-1", "real-2"}
    folds = make_folds(r, s, p, real=real)
    assert [f.kind for f in folds] == [LORO] * 3 + [REAL, IN_DIST]
    R, P = np.asarray(r), np.asarray(p)
    for f in folds:
        trained = set(P[f.train]) | set(P[f.val])
        assert not trained & set(P[f.test]), f.name  # no test product trains or validates
        assert len(f.train) and len(f.val) and len(f.test)
        if f.kind == LORO:
            assert f.held_out not in set(R[f.train]) | set(R[f.val])
            assert set(R[f.test]) == {f.held_out}
        if f.kind == REAL:
            assert not trained & real and set(P[f.test]) == real
            assert set(R[f.test]) == {"compositor", "photo", "noise"}
    # one family only
    assert [f.held_out for f in make_folds(r, s, p, families=["photo"])] == ["photo", None]


def test_leaks_and_bad_families_are_refused() -> None:
    r, s, p = layout()
    folds = make_folds(r, s, p)
    leaky = folds[0]
    leaky.train = np.concatenate([leaky.train, leaky.test[:1]])
    with pytest.raises(InputError, match="also train or validate"):
        check_fold(leaky, np.asarray(r), np.asarray(p))
    with pytest.raises(InputError, match="at least two renderer families"):
        make_folds(["compositor"] * len(r), s, p)
    with pytest.raises(InputError, match="no images of renderer family"):
        make_folds(r, s, p, families=["diffusion"])


def test_a_family_kept_out_of_training_is_test_only() -> None:
    r, s, p = layout()
    real = {"real-0", "real-1", "real-2"}
    folds = make_folds(r, s, p, real=real, train_families=["compositor", "photo"])
    R, P = np.asarray(r), np.asarray(p)
    by_name = {f.name: f for f in folds}
    # the test-only family is judged by a model trained on every training family; it never trains or validates
    kept = by_name[f"{LORO}: noise"]
    assert set(R[kept.train]) | set(R[kept.val]) == {"compositor", "photo"} and set(R[kept.test]) == {"noise"}
    # a training family held out trains on the others that may train, never on the test-only one
    assert set(R[by_name[f"{LORO}: compositor"].train]) == {"photo"}
    for f in folds:
        assert "noise" not in set(R[f.train]) | set(R[f.val])
        assert not (set(P[f.train]) | set(P[f.val])) & set(P[f.test])
    # the real-products and in-distribution rows stay on the training families
    assert set(R[by_name[REAL].test]) == {"compositor", "photo"} and set(P[by_name[REAL].test]) == real
    assert set(R[by_name[IN_DIST].test]) == {"compositor", "photo"}
    # without train_families every family trains, as before
    assert [len(f.train) for f in make_folds(r, s, p, real=real)] == \
        [len(f.train) for f in make_folds(r, s, p, real=real, train_families=["compositor", "photo", "noise"])]
    with pytest.raises(InputError, match="leaves no training family"):
        make_folds(r, s, p, train_families=["photo"], families=["photo"])
    with pytest.raises(InputError, match="no images of renderer family diffusion"):
        make_folds(r, s, p, train_families=["photo", "diffusion"])


def test_the_report_lists_each_folds_worst_drawn_kinds_as_the_median_over_seeds() -> None:
    from adcreative.inspect.loro import LoroReport, Result, format_kind_table

    def kinds(share_a: float, share_b: float) -> list[dict[str, object]]:
        return [{"family": "poster", "label": "unsuitable", "kind": "posterise (bad source)", "n": 48,
                 "above_available_median": share_a, "mean_p_available": 0.4},
                {"family": "poster", "label": "size_mismatch", "kind": "giant", "n": 63,
                 "above_available_median": share_b, "mean_p_available": 0.3}]

    fold = "held-out renderer: poster"
    report = LoroReport(folds=[fold], seeds=[7, 8, 9], results=[
        Result(fold, LORO, "RFNet", 7, {"ap_available": 0.5, "by_kind": kinds(0.38, 0.10)}, 1.0),
        Result(fold, LORO, "RFNet", 8, {"ap_available": 0.5, "by_kind": kinds(0.30, 0.20)}, 1.0),
        Result(fold, LORO, "RFNet", 9, {"ap_available": 0.5, "by_kind": kinds(0.40, 0.16)}, 1.0),
        Result(fold, LORO, "linear probe", 7, {"ap_available": 0.3}, 1.0)])
    table = format_kind_table(report).splitlines()
    assert table[2] == "| held-out renderer: poster | poster | unsuitable | posterise (bad source) | 48 | 38% [30%–40%] |"
    assert table[3].endswith("| giant | 63 | 16% [10%–20%] |") and len(table) == 4
    assert len(format_kind_table(report, top=1).splitlines()) == 3
    assert format_kind_table(LoroReport(folds=[fold], results=[Result(fold, LORO, "RFNet", 0, {}, 1.0)])) == ""
