"""Leave-one-renderer-out folds never train on a test product or on the held-out family."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.inspect.loro import IN_DIST, LORO, REAL, check_fold, make_folds


def layout(seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """30 products (3 real) × 3 renderer families × 4 images, products split 60/20/20 by hashing."""
    rng = np.random.default_rng(seed)
    pids = [f"real-{i}" if i < 3 else f"proc-{i}" for i in range(30)]
    split = {p: ["train", "train", "train", "val", "test"][i % 5] for i, p in enumerate(rng.permutation(pids))}
    r, s, p = [], [], []
    for pid in pids:
        for fam in ("compositor", "photo", "noise"):
            for _ in range(4):
                r.append(fam)
                s.append(split[pid])
                p.append(pid)
    return r, s, p


def test_folds_split_by_product_and_renderer() -> None:
    r, s, p = layout()
    real = {"real-0", "real-1", "real-2"}
    folds = make_folds(r, s, p, real=real)
    assert [f.kind for f in folds] == [LORO] * 3 + [REAL, IN_DIST]
    R, P = np.asarray(r), np.asarray(p)
    for f in folds:
        trained = set(P[f.train]) | set(P[f.val])
        assert not trained & set(P[f.test]), f.name  # no test product trains or validates
        assert len(f.train) and len(f.val) and len(f.test)
        if f.kind == LORO:
            assert f.held_out not in set(R[f.train]) | set(R[f.val])
            assert set(R[f.test]) == {f.held_out}
        if f.kind == REAL:
            assert not trained & real and set(P[f.test]) == real
            assert set(R[f.test]) == {"compositor", "photo", "noise"}
    # one family only
    assert [f.held_out for f in make_folds(r, s, p, families=["photo"])] == ["photo", None]


def test_leaks_and_bad_families_are_refused() -> None:
    r, s, p = layout()
    folds = make_folds(r, s, p)
    leaky = folds[0]
    leaky.train = np.concatenate([leaky.train, leaky.test[:1]])
    with pytest.raises(InputError, match="also train or validate"):
        check_fold(leaky, np.asarray(r), np.asarray(p))
    with pytest.raises(InputError, match="at least two renderer families"):
        make_folds(["compositor"] * len(r), s, p)
    with pytest.raises(InputError, match="no images of renderer family"):
        make_folds(r, s, p, families=["diffusion"])
