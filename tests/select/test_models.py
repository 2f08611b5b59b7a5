"""Joint ad/creative models: the list-wise loss by hand, training, save/load, NumPy serving parity."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adcreative.select.data import CreativeTable, ImpressionLog  # noqa: E402
from adcreative.select.models import (  # noqa: E402
    AdCTRModel,
    CreativeListwiseModel,
    TrainConfig,
    listwise_loss,
    predict_logits,
    train_joint,
)
from adcreative.select.scoring import AdScorer, CreativeScorer  # noqa: E402


def test_listwise_loss_matches_hand_computation() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, 7.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])
    shown = torch.tensor([2, 0, 1])
    click = torch.tensor([1.0, 1.0, 0.0])  # the unclicked impression must not count
    # row 0: -log(e^3 / (e^1 + e^2 + e^3)); row 1: the masked 7.0 is excluded: -log(e^.5 / (e^.5 + e^0))
    r0 = -(3 - math.log(math.e + math.e**2 + math.e**3))
    r1 = -(0.5 - math.log(math.exp(0.5) + 1.0))
    got = float(listwise_loss(logits, mask, shown, click))
    assert got == pytest.approx((r0 + r1) / 2, abs=1e-6)
    assert r0 == pytest.approx(0.40760596, abs=1e-7)
    # inverse-propensity weights: weighted mean over clicked rows
    w = torch.tensor([2.0, 1.0, 5.0])
    assert float(listwise_loss(logits, mask, shown, click, w)) == pytest.approx((2 * r0 + r1) / 3, abs=1e-6)
    # no clicks → 0 (and still differentiable)
    z = listwise_loss(logits.requires_grad_(), mask, shown, torch.zeros(3))
    assert float(z.detach()) == 0.0
    z.backward()


def _tiny_log(n: int = 1500, c: int = 6, seed: int = 0) -> tuple[ImpressionLog, CreativeTable]:
    """A log where segment s prefers creative s (a learnable interaction), uniform logging."""
    rng = np.random.default_rng(seed)
    feats = np.eye(c, dtype=np.float32) + 0.05 * rng.standard_normal((c, c)).astype(np.float32)
    seg = rng.integers(0, 3, n)
    shown = rng.integers(0, c, n)
    p = np.where(shown == seg, 0.5, 0.05)
    click = (rng.random(n) < p).astype(np.float32)
    log = ImpressionLog(
        user_cat=seg[:, None].astype(np.int64), user_num=rng.standard_normal((n, 2)).astype(np.float32),
        ad=np.zeros(n, np.int64), context=np.zeros(n, np.int64),
        candidates=np.tile(np.arange(c), (n, 1)), pair=np.zeros((n, c, 1), np.float32), shown=shown,
        click=click, propensity=np.full(n, 1 / c, np.float32), group=seg, ad_id=np.zeros(n, np.int64))
    return log, CreativeTable([f"c{j}" for j in range(c)], feats)


def test_joint_training_learns_user_creative_interaction(tmp_path: Path) -> None:
    log, table = _tiny_log()
    res = train_joint(log, table, ["seg"], user_num_fields=["a", "b"], n_buckets=8,
                      cfg=TrainConfig(epochs=25, lr=1e-2, seed=0, n_creative_buckets=8))
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    _, s = predict_logits(res, log, table)
    # each segment's favourite creative ranks first for most of its impressions
    top = s.argmax(1)
    assert (top == log.user_cat[:, 0]).mean() > 0.8


def test_models_save_load_and_numpy_scorer_parity(tmp_path: Path) -> None:
    log, table = _tiny_log(n=400)
    res = train_joint(log, table, ["seg"], user_num_fields=["a", "b"], n_buckets=8,
                      cfg=TrainConfig(epochs=2, seed=1, n_creative_buckets=8))
    res.ad_model.save_pretrained(tmp_path / "ad")
    res.creative_model.save_pretrained(tmp_path / "cr")
    from adcreative.select import SELECT_MODELS

    ad2, cr2 = SELECT_MODELS.load(tmp_path / "ad"), SELECT_MODELS.load(tmp_path / "cr")
    assert isinstance(ad2, AdCTRModel) and isinstance(cr2, CreativeListwiseModel)
    assert cr2.config == res.creative_model.config
    a_ref, s_ref = predict_logits(res, log, table)
    from adcreative.select.models import TrainResult

    a2, s2 = predict_logits(TrainResult(ad2, cr2), log, table)
    np.testing.assert_allclose(s2, s_ref, atol=1e-6)
    np.testing.assert_allclose(a2, a_ref, atol=1e-6)
    # the served NumPy path gives the torch logits
    scorer = CreativeScorer.load(tmp_path / "cr", table)
    for i in range(5):
        got = scorer.score(log.user_cat[i], np.arange(len(table)), log.user_num[i], log.pair[i])
        np.testing.assert_allclose(got, s_ref[i], atol=1e-5)
    batch = scorer.score_batch(log.user_cat[:7], log.user_num[:7], log.candidates[:7], log.pair[:7])
    np.testing.assert_allclose(batch, s_ref[:7], atol=1e-5)
    ad = AdScorer(tmp_path / "ad")
    np.testing.assert_allclose(ad.logits(log.user_cat[:7], log.user_num[:7], log.ad[:7], log.context[:7]),
                               a_ref[:7], atol=1e-5)


def test_padding_candidates_are_masked() -> None:
    log, table = _tiny_log(n=50)
    log.candidates[:, -2:] = -1                     # two padding slots per impression
    log.shown = np.minimum(log.shown, len(table) - 3)
    res = train_joint(log, table, ["seg"], user_num_fields=["a", "b"], n_buckets=8, cfg=TrainConfig(epochs=1))
    _, s = predict_logits(res, log, table)
    assert (s[:, -2:] < -1e8).all() and (s[:, :-2] > -1e8).all()


def test_model_registry_builds_both_models() -> None:
    from adcreative.select import create_select_model

    m = create_select_model("creative_listwise", user_cat_fields=["a"], creative_dim=4, hidden=8)
    assert isinstance(m, CreativeListwiseModel)
    out = m(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 0), torch.zeros(2, 3, 4), None,
            torch.zeros(2, 3, 0), torch.tensor([[True, True, False]] * 2))
    assert out.shape == (2, 3) and bool((out[:, 2] < -1e8).all())
    assert isinstance(create_select_model("ad_ctr", user_cat_fields=["a"]), AdCTRModel)
