"""Metrics computed by hand agree with ours."""

from __future__ import annotations

import numpy as np
import pytest


def test_metrics_are_correct() -> None:
    from adcreative.inspect.metrics import compute_metrics

    y = np.array([0, 0, 1, 2, 3, 4, 5, 5])
    probs = np.eye(6)[[0, 1, 1, 2, 3, 4, 5, 0]] * 0.9 + 0.1 / 6
    m = compute_metrics(y, probs)
    assert m["per_class"]["available"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["available"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["space_mismatch"]["f1"] == pytest.approx(1.0)
    assert m["confusion"][0][1] == 1 and m["confusion"][5][0] == 1
    perfect = compute_metrics(y, np.eye(6)[y])
    assert perfect["macro_f1"] == 1.0 and perfect["ap_available"] == 1.0


def test_kind_misses_finds_the_drawn_kind_the_auditor_ranks_with_the_good_images() -> None:
    from adcreative.inspect.metrics import format_kind_misses, kind_misses

    rng = np.random.default_rng(0)
    y: list[int] = []
    p: list[float] = []
    kinds: list[str] = []
    fams: list[str] = []

    def add(label: int, score: float, kind: str, fam: str) -> None:
        y.append(label)
        p.append(min(1.0, score))
        kinds.append(kind)
        fams.append(fam)

    for fam, shift in (("studio", 0.0), ("photo", 0.2)):  # a family whose scores all sit higher
        for _ in range(40):
            add(0, rng.uniform(0.5, 0.8) + shift, "", fam)
        for kind, lo, hi in (("holes", 0.0, 0.2), ("posterise", 0.6, 0.9)):  # caught / missed
            for _ in range(10):
                add(1, rng.uniform(lo, hi) + shift, kind, fam)
        for _ in range(3):  # too few to report
            add(2, 0.9, "float", fam)
    rows = kind_misses(np.array(y), np.array(p), kinds, fams)
    assert {(r["family"], r["kind"]) for r in rows} == {(f, k) for f in ("studio", "photo") for k in ("holes", "posterise")}
    assert [r["kind"] for r in rows[:2]] == ["posterise", "posterise"]  # the worst first
    by = {(r["family"], r["kind"]): r for r in rows}
    # the median is each family's own: the shifted family's caught kind is still caught
    assert by[("photo", "holes")]["above_available_median"] == 0.0
    assert 0.4 < by[("studio", "posterise")]["above_available_median"] <= 1.0
    assert all(r["label"] == "unsuitable" and r["n"] == 10 for r in rows)
    assert "posterise" in format_kind_misses(rows) and len(format_kind_misses(rows, top=1).splitlines()) == 2
    assert kind_misses(np.array([1, 1]), np.array([0.5, 0.6]), ["a", "a"], ["x", "x"]) == []  # no available image


def test_drawn_kinds_read_the_manifest_and_name_a_damaged_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.datasets.formats import Sample
    from adcreative.inspect.evaluate import drawn_kinds

    def s(sid: str, label: str, params: dict, product: str = "p.png") -> Sample:  # type: ignore[type-arg]
        return Sample(id=sid, image=tmp_path / f"{sid}.png", mask=None, product=tmp_path / product, product_id="p",
                      title="t", category="c", label=label, split="test", params=params)

    samples = [s("a", "available", {"kind": "clean"}), s("b", "unsuitable", {"kind": "torn"}, product="b.png"),
               s("c", "unsuitable", {"kind": "torn", "bad_source": "catalogue"}), s("d", "space_mismatch", {}),
               s("e", "space_mismatch", {"kind": "float"})]
    assert drawn_kinds(samples, ["e", "a", "b", "c", "d", "zz"]) == \
        ["float", "", "torn (bad source)", "torn (bad source)", "", ""]


def test_the_kinds_chart_draws_any_name_a_manifest_gives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.evaluate import plot_kind_misses

    rows = [{"family": "poster", "label": "unsuitable", "kind": k, "n": 5, "above_available_median": 0.4,
             "mean_p_available": 0.3} for k in ("$\\frac{$", "$x^{$", "a_b^c", "[bold]", "ünï cödé " * 8)]
    assert plot_kind_misses(rows, tmp_path / "kinds.png").stat().st_size > 1000
    assert plot_kind_misses([], tmp_path / "empty.png").exists()


def test_a_family_name_with_dollar_signs_reaches_every_figure_as_text(encoded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from adcreative.inspect.evaluate import evaluate_model
    from adcreative.inspect.loro import LORO, LoroReport, Result, plot_report
    from adcreative.inspect.model import RFNet
    from tests.inspect.helpers import TINY

    torch.manual_seed(0)
    m = evaluate_model(RFNet(**TINY).eval(), encoded, out=tmp_path / "ev", title="$x^{$")  # a renderer family's name
    assert (tmp_path / "ev" / "pr_curves.png").stat().st_size > 1000 and (tmp_path / "ev" / "confusion.png").exists()
    assert 0 <= m["macro_f1"] <= 1
    fold = "held-out renderer: $\\frac{$"
    report = LoroReport(folds=[fold], seeds=[0], results=[Result(fold, LORO, "RFNet", 0, {"ap_available": 0.5}, 1.0)])
    assert plot_report(report, tmp_path / "loro.png").stat().st_size > 1000
