"""Hypothesis strategies for hostile request values: non-finite and huge numbers, unstorable and oversized text,
markup. Bodies are serialised with ``json.dumps(allow_nan=True)``, so NaN and Infinity reach the app as the raw
JSON tokens Python's parser (and FastAPI's) accepts, and lone surrogates as ``\\udXXX`` escapes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# bounded for CI: a fixed number of examples per route, the same ones on every run
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

# schemathesis adds its own coverage phase of schema-edge cases on top of the examples: fewer random ones
SCHEMA_FUZZ = settings(FUZZ, max_examples=25)

numbers: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e39, -1e39, 2.8e123, 1.7976931348623157e308,
                     5e-324, -0.0, 1e12, -1e12, 1e12 + 1, 3.4028235e38, 10**19, -(2**63), 2**64, 10**40, 10**300])
    , st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**45), max_value=10**45),
    st.integers(min_value=-100, max_value=100))

_markup = st.sampled_from(['<img src=x onerror="alert(1)">', "<script>alert(1)</script>", "{{7*7}}", "'; DROP TABLE x;--",
                           "../../etc/passwd", "%00", "\\u0000", "null", "NaN", "inf", "-inf", "1e39", "1e999", ""])
texts: st.SearchStrategy[str] = st.one_of(
    _markup, st.text(max_size=40),
    st.text(alphabet=st.sampled_from(["\x00", "\ud800", "\udfff", "é", "中", "\u202e", "\n", "a", "\U0001f600"]),
            max_size=12),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "中"]), st.integers(min_value=60, max_value=300)))

scalars: st.SearchStrategy[Any] = st.one_of(numbers, texts, st.booleans(), st.none())
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(texts, kids, max_size=4)),
    max_leaves=12)


def dumps(body: Any) -> bytes:
    """JSON with NaN/Infinity tokens and escaped surrogates, as a hostile client would send."""
    return json.dumps(body, allow_nan=True).encode()


def strict_json(text: str) -> Any:
    """Parse a response as strict JSON: NaN or Infinity in a 2xx answer is a bug too."""
    def refuse(token: str) -> Any:
        raise ValueError(f"response holds {token}")

    return json.loads(text, parse_constant=refuse)


def one_hostile(valid: dict[str, Any], hostile: dict[str, st.SearchStrategy[Any]],
                weights: dict[str, int] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with at most one field made hostile (``weights``: how often each field is picked, default
    1; the valid body itself comes once). Hostile values then meet the code behind the field checks, instead of
    every request failing at its first bad id."""
    keys: list[str | None] = [None]
    for k in hostile:
        keys += [k] * (weights or {}).get(k, 1)
    return st.sampled_from(keys).flatmap(
        lambda k: st.just(dict(valid)) if k is None else hostile[k].map(lambda v: {**valid, k: v}))
