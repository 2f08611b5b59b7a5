"""Contract tests of the select families: every registered selection model and policy at tiny size through
its interface (save → load through the registry → identical output), and a toy policy that takes one registry
entry and runs in the contract, the simulator and the serving bundle alike."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adcreative.core.modeling import register_to_config
from adcreative.select import POLICIES, SELECT_MODELS
from adcreative.select.bandit import ArmPolicy, Decision
from tests.contracts import check_policy, check_selection_model, registered


@pytest.mark.parametrize("name", POLICIES.names())
def test_every_registered_policy_honours_the_contract(name: str, tmp_path: Path) -> None:
    check_policy(POLICIES, name, tmp_path)


def _model_inputs(name: str) -> tuple[dict[str, Any], tuple[Any, ...], tuple[Any, ...]]:
    import torch

    cat, num = torch.tensor([[1, 3], [0, 2]]), torch.randn(2, 1, generator=torch.Generator().manual_seed(0))
    if name == "ad_ctr":
        return ({"user_cat_fields": ["a", "b"], "user_num_fields": ["x"], "n_buckets": 4, "dim": 4, "hidden": 8},
                (cat, num, torch.tensor([3, 5]), torch.tensor([0, 2])), ())
    feats = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(1))
    return ({"user_cat_fields": ["a", "b"], "user_num_fields": ["x"], "creative_dim": 5, "pair_dim": 1, "n_buckets": 4,
             "n_creative_buckets": 8, "dim": 4, "hidden": 8},
            (cat, num, feats, torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.ones(2, 3, 1)),
            (torch.tensor([[True, True, False], [True, True, True]]),))


@pytest.mark.parametrize("name", SELECT_MODELS.names())
def test_every_registered_selection_model_honours_the_contract(name: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    cfg, inputs, extra = _model_inputs(name)
    check_selection_model(SELECT_MODELS, name, cfg, inputs, extra, tmp_path)


class ToyGreedy(ArmPolicy):
    """ε-greedy on per-creative click counts: a complete policy in twenty lines."""

    registry_name = "toy_greedy"

    @register_to_config
    def __init__(self, n_features: int, n_context: int = 0, epsilon: float = 0.2, arm_ids: list[str] | None = None,
                 seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self._init_arms(arm_ids)
        self.counts = np.zeros((len(self.ids), 2))

    def state_arrays(self) -> dict[str, Any]:
        self._save_ids()
        return {"counts": self.counts}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        self.counts = np.asarray(arrays["counts"], np.float64).copy()

    def add_arms(self, ids: Sequence[str], features: np.ndarray) -> None:
        self.counts = np.vstack([self.counts, np.zeros((len(self._append_ids(ids)), 2))])

    def rank(self, ids: Sequence[str], context: np.ndarray | None = None, scores: np.ndarray | None = None, *,
             explore: bool | None = None, pair: np.ndarray | None = None) -> Decision:
        eps = float(self.config["epsilon"])
        explored = bool(self.rng.random() < eps) if explore is None else explore
        c = self.counts[self.rows(ids)]
        greedy = scores if scores is not None else (c[:, 1] + 1) / (c[:, 0] + 2)
        order = self.rng.permutation(len(ids)) if explored else np.argsort(-np.asarray(greedy))
        return Decision(order, explored, (1 - eps) * float(order[0] == np.argmax(greedy)) + eps / len(ids))

    def update(self, creative_id: str, reward: float, context: np.ndarray | None = None, *,
               pair: np.ndarray | None = None, impressions: float = 1.0) -> None:
        self.counts[self.rows([creative_id])[0]] += (impressions, reward)


def test_a_toy_policy_takes_one_registry_entry(tmp_path: Path) -> None:
    from adcreative.select.simulator import run_campaign

    with registered(POLICIES, "toy_greedy", ToyGreedy):
        check_policy(POLICIES, "toy_greedy", tmp_path)
        # the simulator builds it by name through the same registry
        feats = np.random.default_rng(0).standard_normal((6, 3))
        res = run_campaign(feats, 600, 0, policies=["oracle", "toy_greedy", "uniform"])
        assert res.clicks["toy_greedy"] > 0 and "uniform" in res.clicks
    with pytest.raises(Exception, match="unknown policy 'toy_greedy'"):
        POLICIES.create("toy_greedy", n_features=3)
