"""The cue expert as boosted trees: the torch evaluation reproduces scikit-learn's probabilities (several classes,
two classes, a class no training row had), the rounds kept are those of lowest validation NLL, and an RFNet with
it trains, is saved (no pickle), reloaded and exported to ONNX with the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.inspect.helpers import TINY, sample_items


def _data(seed: int, n: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 7)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + 0.3 * rng.normal(size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return x, y


@pytest.mark.parametrize("labels", [(0, 1, 2, 3, 4, 5), (0, 3), (0, 2, 3, 5)])
def test_trees_reproduce_sklearn(labels: tuple[int, ...]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from adcreative.inspect.cue_trees import CueTrees

    x, yi = _data(0, 600, len(labels))
    y = np.asarray(labels)[yi]
    est = HistGradientBoostingClassifier(max_depth=3, learning_rate=0.1, max_iter=30, early_stopping=False,
                                         random_state=0).fit(x, y)
    trees = CueTrees(6)
    trees.set_trees(est, 30)
    xt = _data(1, 200, len(labels))[0]
    with torch.no_grad():
        p = torch.softmax(trees(torch.from_numpy(xt)), -1).numpy()
    np.testing.assert_allclose(p[:, list(labels)], est.predict_proba(xt), atol=1e-5)
    absent = [c for c in range(6) if c not in labels]
    assert (p[:, absent] < 1e-9).all()  # a class never seen is never predicted
    trees.set_trees(est, 10)  # the first rounds only: what staged prediction gives
    assert trees.n_trees == 10 * est.n_trees_per_iteration_
    staged = list(est.staged_predict_proba(xt))[9]
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(trees(torch.from_numpy(xt)), -1).numpy()[:, list(labels)], staged,
                                   atol=1e-5)


def test_rounds_are_chosen_on_validation_nll() -> None:
    from adcreative.inspect.cue_trees import CueTrees, fit_cue_trees

    x, y = _data(2, 300, 6)
    xv, yv = _data(3, 300, 6)
    trees = CueTrees(6)
    fit = fit_cue_trees(trees, x, y, None, xv, yv, seed=0, max_iter=200, learning_rate=0.3)
    assert fit["rounds"] == 200 and 1 <= fit["kept"] < 200  # at this rate it overfits: stopped early
    with torch.no_grad():
        p = torch.softmax(trees(torch.from_numpy(xv)), -1).numpy()
    assert float(-np.log(p[np.arange(len(yv)), yv]).mean()) == pytest.approx(fit["val_nll"], rel=1e-4)
    with pytest.raises(Exception, match="at least two classes"):
        fit_cue_trees(CueTrees(6), x, np.zeros(len(x), np.int64), None, None, None, seed=0)


def test_rfnet_with_a_tree_expert_trains_saves_and_exports(encoded, dataset: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, split_sets, train_model

    tr, va, _ = split_sets(encoded)
    torch.manual_seed(0)
    model = RFNet(**TINY, use_cues=True, cue_expert=0.5, cue_expert_kind="trees")
    res = train_model(model, tr, va, TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=0), progress=False)
    assert res.cue_expert is not None and res.cue_expert["kept"] >= 1
    assert model.cue_head.n_trees == res.cue_expert["kept"] * len(set(tr.labels.tolist()))
    assert not list(model.cue_head.parameters())  # nothing of it trains with the fused model
    items = sample_items(dataset, 6)
    model.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.joblib"))
    loaded = load_inspector(tmp_path)
    assert loaded.config["cue_expert_kind"] == "trees" and loaded.cue_head.n_trees == model.cue_head.n_trees
    np.testing.assert_allclose(loaded.predict_proba(items), model.predict_proba(items), atol=1e-6)
    export_onnx(model, tmp_path)
    np.testing.assert_allclose(OnnxInspector(tmp_path).predict_proba(items), model.predict_proba(items), atol=1e-4)


def test_unknown_expert_kind_is_refused() -> None:
    from adcreative.inspect.model import RFNet

    with pytest.raises(ValueError, match="cue_expert_kind"):
        RFNet(**TINY, use_cues=True, cue_expert=0.5, cue_expert_kind="forest")
