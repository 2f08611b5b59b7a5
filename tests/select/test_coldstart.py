"""Cold start: a description that carries what drives clicks ranks never-seen creatives; ids alone cannot."""

from __future__ import annotations

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.select.coldstart import IDS_ONLY, cold_start_auc


@pytest.mark.slow
def test_features_rank_new_creatives_ids_cannot() -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    attrs = rng.standard_normal((30, 6))
    groups = [f"p{j % 10}" for j in range(30)]
    r = cold_start_auc({"measured": attrs + 0.2 * rng.standard_normal(attrs.shape)}, attrs, groups=groups, seeds=[0],
                       n_train=4000, n_test=3000, epochs=3)
    assert r.held_out == [9]                                         # 3 of 10 products, 3 creatives each
    assert r.rank_auc[IDS_ONLY][0] == pytest.approx(0.5)             # every new creative looks the same
    assert r.rank_auc["measured"][0] > 0.65
    assert 0.4 < r.click_auc[IDS_ONLY][0] < 1 and "click AUC" in r.to_markdown()
    with pytest.raises(InputError, match="one row per creative"):
        cold_start_auc({"x": attrs[:3]}, attrs)
