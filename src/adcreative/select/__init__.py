"""Creative selection: joint ad/creative ranking models, selection policies, off-policy evaluation,
a market simulator and the HTTP service. See docs/select.md.

Registries (lazy, so importing this package imports neither torch nor FastAPI); every caller goes
through them — training (``models.train_joint``), the OBD export, the serving bundle and the simulator:

* ``SELECT_MODELS`` (family ``selection model``): ``ad_ctr``, ``creative_listwise``;
* ``POLICIES`` (family ``policy``): ``beta_visual``, ``hybrid_linear``, ``hybrid_online``, ``uniform``.
"""

from __future__ import annotations

from typing import Any

from adcreative.core.registry import Registry

SELECT_MODELS: Registry[Any] = Registry("selection model")
SELECT_MODELS.register("ad_ctr", "adcreative.select.models:AdCTRModel")
SELECT_MODELS.register("creative_listwise", "adcreative.select.models:CreativeListwiseModel")

POLICIES: Registry[Any] = Registry("policy")
POLICIES.register("beta_visual", "adcreative.select.bandit:BetaVisualTS")
POLICIES.register("hybrid_linear", "adcreative.select.bandit:HybridLinearTS")
POLICIES.register("hybrid_online", "adcreative.select.bandit:OnlineHybridTS")
POLICIES.register("uniform", "adcreative.select.bandit:UniformPolicy")


def create_select_model(name: str, **cfg: Any) -> Any:
    """``create_select_model("creative_listwise", user_cat_fields=[...], creative_dim=16)``."""
    return SELECT_MODELS.create(name, **cfg)


def create_policy(name: str, **cfg: Any) -> Any:
    """``create_policy("beta_visual", n_features=16, exploration_share=0.1)``: every policy takes
    ``n_features`` (creative features) and ``n_context`` (numeric user context), see ``select.bandit``."""
    return POLICIES.create(name, **cfg)
