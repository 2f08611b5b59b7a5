"""The user-aware Bradley–Terry preference model: tiny, seeded, real training on planted preferences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.explain import PREFERENCE_MODELS, create_preference_model, load_preference_model
from adcreative.explain.preference import PairSet, PreferenceTrainConfig, train_preference

BASE = {"contrast_de": 20.0, "product_area": 0.2, "brightness": 0.5, "sharpness": 300.0, "has_sale": False}


def _planted(n: int, seed: int) -> tuple[PairSet, np.random.Generator]:
    """Users with taste t ∈ {−1, +1} ("segment"): everyone likes contrast; t decides on brightness."""
    rng = np.random.default_rng(seed)
    users, a, b, y = [], [], [], []
    for _ in range(n):
        t = int(rng.integers(0, 2))
        fa = {**BASE, "contrast_de": float(rng.uniform(5, 60)), "brightness": float(rng.uniform(0.2, 0.9))}
        fb = {**BASE, "contrast_de": float(rng.uniform(5, 60)), "brightness": float(rng.uniform(0.2, 0.9))}
        util = lambda f, t=t: 0.05 * f["contrast_de"] + (6.0 if t else -6.0) * f["brightness"]  # noqa: E731
        p = 1 / (1 + np.exp(-(util(fa) - util(fb))))
        users.append({"segment": "bright" if t else "dark", "age": float(rng.normal(40, 10))})
        a.append(fa)
        b.append(fb)
        y.append(float(rng.random() < p))
    return PairSet(users, a, b, np.array(y), np.ones(n)), rng


def _model() -> object:
    return create_preference_model("bradley_terry", user_cat_fields=["segment"], user_num_fields=["age"],
                                   n_buckets=8, rank=2)


def test_learns_a_user_dependent_preference_and_round_trips(tmp_path: Path) -> None:
    train, _ = _planted(1500, seed=0)
    test, _ = _planted(400, seed=1)
    model = _model()
    losses = train_preference(model, train, PreferenceTrainConfig(steps=300, seed=0))  # type: ignore[arg-type]
    assert losses[-1] < losses[0] - 0.1
    z = model.pair_logits(model.user_matrix(test.users), model.creative_matrix(test.a), model.creative_matrix(test.b))  # type: ignore[attr-defined]
    acc = float(((z > 0) == (test.target > 0.5)).mean())
    assert acc > 0.75, acc
    # the same two creatives swap winners between the two tastes, as planted
    bright, dark = {**BASE, "brightness": 0.85}, {**BASE, "brightness": 0.25}
    assert model.prob({"segment": "bright", "age": 40.0}, bright, dark) > 0.8  # type: ignore[attr-defined]
    assert model.prob({"segment": "dark", "age": 40.0}, bright, dark) < 0.2  # type: ignore[attr-defined]
    # antisymmetric, and identical creatives are a coin flip exactly
    u = {"segment": "bright", "age": 30.0}
    assert model.prob(u, bright, dark) == pytest.approx(1 - model.prob(u, dark, bright))  # type: ignore[attr-defined]
    assert model.prob(u, bright, dict(bright)) == 0.5  # type: ignore[attr-defined]
    # saved and loaded through the registry, same answers
    model.save_pretrained(tmp_path / "m")  # type: ignore[attr-defined]
    again = load_preference_model(tmp_path / "m")
    assert again.prob(u, bright, dark) == pytest.approx(model.prob(u, bright, dark), abs=1e-6)  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="preference model"):
        from adcreative.select import SELECT_MODELS

        SELECT_MODELS.load(tmp_path / "m")


def test_training_is_deterministic_per_seed() -> None:
    train, _ = _planted(300, seed=2)
    m1, m2 = _model(), _model()
    train_preference(m1, train, PreferenceTrainConfig(steps=50, seed=3))  # type: ignore[arg-type]
    train_preference(m2, train, PreferenceTrainConfig(steps=50, seed=3))  # type: ignore[arg-type]
    assert np.array_equal(m1.w, m2.w) and np.array_equal(m1.A, m2.A)  # type: ignore[attr-defined]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InputError):
        PairSet([{}], [BASE], [BASE, BASE], np.array([1.0]), np.ones(1))
    with pytest.raises(InputError):
        PairSet([{}], [BASE], [BASE], np.array([1.5]), np.ones(1))
    with pytest.raises(InputError):
        create_preference_model("bradley_terry", embedding_in=4, embedding_dim=8)
    m = _model()
    with pytest.raises(InputError, match="numeric"):
        m.user_matrix([{"segment": "x", "age": "old"}])  # type: ignore[attr-defined]
    assert "bradley_terry" in PREFERENCE_MODELS.names()


def test_embeddings_enter_as_principal_components() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 6))
    feats = [{**BASE, "embedding": e.tolist()} for e in emb]
    # the planted preference lives in the embedding only
    pairs_a, pairs_b, y = [], [], []
    for _ in range(600):
        i, j = rng.integers(0, 40, 2)
        pairs_a.append(feats[i])
        pairs_b.append(feats[j])
        y.append(float(emb[i, 0] > emb[j, 0]))
    m = create_preference_model("bradley_terry", rank=0, embedding_in=6, embedding_dim=6)
    train_preference(m, PairSet([None] * 600, pairs_a, pairs_b, np.array(y), np.ones(600)),  # type: ignore[arg-type]
                     PreferenceTrainConfig(steps=200, seed=0))
    hi, lo = int(np.argmax(emb[:, 0])), int(np.argmin(emb[:, 0]))
    assert m.prob(None, feats[hi], feats[lo]) > 0.9  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="embeddings"):
        m.prob(None, BASE, BASE)  # type: ignore[attr-defined]


def test_an_anchored_serving_logit_is_trusted_then_corrected(tmp_path: Path) -> None:
    """Stacked on a serving model: its logit enters unshrunk (weight starting at 1) and the explicit features
    learn what it misses; a creative without the logit is refused, never read as 0."""
    train, _ = _planted(1500, seed=2)
    # a serving model that knows the contrast part of the planted utility but not the users' brightness taste
    for fs in (train.a, train.b):
        for i, f in enumerate(fs):
            fs[i] = {**f, "selection_logit": 0.05 * f["contrast_de"]}
    model = create_preference_model("bradley_terry", user_cat_fields=["segment"], user_num_fields=["age"],
                                    n_buckets=8, rank=2, anchor="selection_logit")
    train_preference(model, train, PreferenceTrainConfig(steps=300, l2=1e-1, seed=0))  # type: ignore[arg-type]
    j = model.names.index("selection_logit")  # type: ignore[attr-defined]
    assert model.c_std[j] == 1.0 and model.c_mean[j] == 0.0  # type: ignore[attr-defined]
    assert 0.6 < model.w[j] < 1.6, model.w[j]  # type: ignore[attr-defined]  # trusted, not shrunk away by l2
    bright = {**BASE, "brightness": 0.85, "selection_logit": 1.0}
    dark = {**BASE, "brightness": 0.25, "selection_logit": 1.0}
    assert model.prob({"segment": "bright", "age": 40.0}, bright, dark) > 0.7  # type: ignore[attr-defined]
    assert model.prob({"segment": "dark", "age": 40.0}, bright, dark) < 0.3  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="selection_logit"):
        model.prob({"segment": "dark"}, BASE, dark)  # type: ignore[attr-defined]
    model.save_pretrained(tmp_path / "m")  # type: ignore[attr-defined]
    again = load_preference_model(tmp_path / "m")
    assert again.anchor == "selection_logit"
    u = {"segment": "bright", "age": 30.0}
    assert again.prob(u, bright, dark) == pytest.approx(model.prob(u, bright, dark), abs=1e-6)  # type: ignore[attr-defined]
    # the serving model's opinion is an aspect like the others: quoted with both values, its swap exact
    ex = model.explain(u, {**bright, "selection_logit": 2.0}, dark)  # type: ignore[attr-defined]
    r = next(r for r in [*ex.reasons, *ex.counter] if r.aspect == "serving model")
    assert "2.00" in r.sentence and "1.00" in r.sentence and r.check.passed
