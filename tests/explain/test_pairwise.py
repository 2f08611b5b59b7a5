"""Grounded pairwise explanations: reasons are what the scorer uses, values quoted, only real differences."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from adcreative.explain.pairwise import explain_pair

BASE = {"contrast_de": 20.0, "luminance_contrast": 1.5, "product_area": 0.2, "product_cx": 0.5, "product_cy": 0.55,
        "text_area": 0.1, "n_words": 8, "n_text_boxes": 3, "has_sale": False, "percent_off": 0, "has_new": False,
        "has_free_shipping": False, "has_price": True, "min_price": 24.9, "n_faces": 0, "face_area": 0.0,
        "logo_found": False, "logo_score": 0.0, "colorfulness": 30.0, "brightness": 0.6, "bg_L": 70.0,
        "sharpness": 300.0}


WEIGHTS = {"contrast_de": 0.02, "product_area": 2.0, "has_sale": 0.3, "colorfulness": 0.001}


def linear(feats: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.array([sum(w * float(f.get(k, 0) or 0) for k, w in WEIGHTS.items()) for f in feats])


def test_reasons_follow_the_model() -> None:
    a = {**BASE, "contrast_de": 50.0, "has_sale": True, "percent_off": 20}
    b = {**BASE, "product_area": 0.3}
    ex = explain_pair(b, a, id_a="B", id_b="A", scorer=linear)  # order given does not matter
    assert ex.winner == "A" and ex.score_winner is not None and ex.score_winner > (ex.score_loser or 0)
    # contrast: 30 × 0.02 = 0.6 ; sale: 0.3 ; product size favours B: 0.1 × 2 = 0.2
    assert [r.aspect for r in ex.reasons] == ["contrast", "discount"]
    assert ex.reasons[0].contribution == pytest.approx(0.6)
    assert [r.aspect for r in ex.counter] == ["product size"]
    assert "ΔE 50 vs ΔE 20" in ex.text and "20% off vs no discount" in ex.text
    assert "colourful" not in ex.text and "sharper" not in ex.text  # unchanged features never appear
    json.dumps(ex.facts())


def test_without_a_scorer_ranks_differences_by_rarity() -> None:
    ref = [{**BASE, "contrast_de": float(c)} for c in (18, 20, 22, 19, 21)]
    a = {**BASE, "contrast_de": 40.0, "brightness": 0.62}
    ex = explain_pair(a, BASE, reference=ref)
    assert ex.grounded_by == "features" and ex.reasons[0].aspect == "contrast"
    same = explain_pair(BASE, dict(BASE))
    assert same.reasons == [] and "look alike" in same.text
    assert ex.text.startswith("How A differs from B")
