"""The preference-model contract, for every registered entry and for a toy one added with one registry line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.explain import PREFERENCE_MODELS
from adcreative.explain.pairwise import Explanation, explain_pair
from adcreative.explain.preference import PairSet, PreferenceTrainConfig, sigmoid, train_preference
from tests.contracts import check_preference_model, registered

TINY_CONFIGS = {"bradley_terry": {"user_cat_fields": ["segment"], "user_num_fields": ["age"], "rank": 2}}


def _fit_bt(model: Any) -> None:
    rng = np.random.default_rng(0)
    feats = [{"contrast_de": float(rng.uniform(5, 60)), "product_area": float(rng.uniform(0.05, 0.5)),
              "brightness": float(rng.uniform(0.2, 0.9)), "sharpness": float(rng.uniform(100, 900))} for _ in range(40)]
    i, j = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    users = [{"segment": "ab"[k % 2], "age": float(20 + k % 50)} for k in range(300)]
    y = np.array([float(feats[x]["contrast_de"] > feats[z]["contrast_de"]) for x, z in zip(i, j, strict=True)])
    train_preference(model, PairSet(users, [feats[x] for x in i], [feats[z] for z in j], y, np.ones(300)),  # type: ignore[arg-type]
                     PreferenceTrainConfig(steps=60, seed=0))


@pytest.mark.parametrize("name", PREFERENCE_MODELS.names())
def test_every_registered_preference_model_honours_the_contract(name: str, tmp_path: Path) -> None:
    assert name in TINY_CONFIGS, f"add a tiny config for preference model {name!r} to this test"
    check_preference_model(PREFERENCE_MODELS, name, TINY_CONFIGS[name], tmp_path, fit=_fit_bt)


class ContrastLover(ConfigMixin):
    """Everyone prefers more contrast, a fixed amount per ΔE: a NumPy-state, user-agnostic preference."""

    registry_family = "preference model"
    registry_name = "contrast_lover"

    @register_to_config
    def __init__(self, per_de: float = 0.05, tie_margin: float = 0.02) -> None:
        self.w = np.array([per_de])
        self.tie_margin = tie_margin

    def state_arrays(self) -> dict[str, Any]:
        return {"w": self.w}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        self.w = np.asarray(arrays["w"], np.float64)

    def scorer(self, user: Mapping[str, Any] | None) -> Any:
        return lambda feats: np.array([float(f.get("contrast_de", 0)) * self.w[0] for f in feats])

    def prob(self, user: Mapping[str, Any] | None, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
        s = self.scorer(user)([a, b])
        return float(sigmoid(s[0] - s[1]))

    def explain(self, user: Mapping[str, Any] | None, a: Mapping[str, Any], b: Mapping[str, Any], *,
                id_a: str = "A", id_b: str = "B", **_: Sequence[Any]) -> Explanation:
        return explain_pair(a, b, id_a=id_a, id_b=id_b, scorer=self.scorer(user), tie_margin=self.tie_margin)


def test_a_toy_preference_model_takes_one_registry_entry(tmp_path: Path) -> None:
    with registered(PREFERENCE_MODELS, "contrast_lover", ContrastLover):
        check_preference_model(PREFERENCE_MODELS, "contrast_lover", {"per_de": 0.1}, tmp_path)
