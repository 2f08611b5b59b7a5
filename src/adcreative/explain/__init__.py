"""Explain: which creative wins for this user, with what probability, and why.

* :mod:`~adcreative.explain.preference` — P(A beats B | user), a user-aware Bradley–Terry model over
  represent's features (registry ``PREFERENCE_MODELS``: ``bradley_terry``);
* :mod:`~adcreative.explain.pairwise` — the grounded reasons with their counterfactual check;
* :mod:`~adcreative.explain.pairs` — CreativePair files and pairs from the event log;
* :mod:`~adcreative.explain.llm` — the optional OpenAI-compatible MLLM (Creative4U's comparative prompt);
* :mod:`~adcreative.explain.evaluate` — held-out measurements (``adcreative explain eval``).

This package stays import-light so ``--help`` is instant. See docs/explain.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adcreative.core.registry import Registry

PREFERENCE_MODELS: Registry[Any] = Registry("preference model")
PREFERENCE_MODELS.register("bradley_terry", "adcreative.explain.preference:PreferenceModel")


def create_preference_model(name: str = "bradley_terry", **cfg: Any) -> Any:
    """``create_preference_model("bradley_terry", user_num_fields=["x0"], rank=4)``."""
    return PREFERENCE_MODELS.create(name, **cfg)


def load_preference_model(directory: str | Path) -> Any:
    return PREFERENCE_MODELS.load(directory)
