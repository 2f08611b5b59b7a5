"""Explain: "why A over B" in plain language, grounded in the creatives' explicit features and, when a
scorer is given, in what the ranking model actually does with them (counterfactual feature swaps).
An OpenAI-compatible multimodal LLM can rewrite the grounded facts into prose (``explain.llm``).

Import from ``adcreative.explain.pairwise``; this package stays import-light so ``--help`` is instant.
"""
