"""Creative selection: joint ad/creative ranking models, visual-prior bandits, off-policy evaluation,
a market simulator and the HTTP service. See docs/select.md.

Registries (lazy, so importing this package imports neither torch nor FastAPI):
``SELECT_MODELS`` (``ad_ctr``, ``creative_listwise``) and ``BANDITS`` (``beta_visual``, ``hybrid_linear``).
"""

from __future__ import annotations

from typing import Any

from adcreative.core.registry import Registry

SELECT_MODELS: Registry[Any] = Registry("selection model")
SELECT_MODELS.register("ad_ctr", "adcreative.select.models:AdCTRModel")
SELECT_MODELS.register("creative_listwise", "adcreative.select.models:CreativeListwiseModel")

BANDITS: Registry[Any] = Registry("bandit")
BANDITS.register("beta_visual", "adcreative.select.bandit:BetaVisualTS")
BANDITS.register("hybrid_linear", "adcreative.select.bandit:HybridLinearTS")


def create_select_model(name: str, **cfg: Any) -> Any:
    """``create_select_model("creative_listwise", user_cat_fields=[...], creative_dim=16)``."""
    return SELECT_MODELS.create(name, **cfg)


def create_bandit(name: str, **cfg: Any) -> Any:
    """``create_bandit("beta_visual", n_features=16, exploration_share=0.1)``."""
    return BANDITS.create(name, **cfg)
