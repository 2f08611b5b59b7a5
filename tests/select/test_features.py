"""Represent → select: explicit features (and embeddings) of stored creatives, computed once and cached."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.store import Store
from adcreative.core.types import Creative, Product
from adcreative.select.features import explicit_matrix, pca, standardise, store_features


def test_store_features_are_represents_and_cached(store: Store) -> None:
    from adcreative.represent.features import FEATURES_NAME, NUMERIC_FEATURES

    cut = Image.new("RGBA", (60, 90), (0, 0, 0, 0))
    cut.paste((200, 30, 30, 255), (10, 10, 50, 80))
    store.add_products([Product(id="p", title="Red can", category="food", image=cut)])
    crs = []
    for j, bg in enumerate([(250, 250, 250), (20, 20, 20), (30, 120, 200)]):
        im = Image.new("RGB", (96, 96), bg)
        im.paste(cut, (20, 3), cut)
        crs.append(store.add_creative(Creative(id=f"c{j}", product_id="p", image_sha="", generator="t",
                                               generator_version="0", seed=j, aspect="1:1", width=96, height=96), im))
    x, names = store_features(store, crs)
    assert names == list(NUMERIC_FEATURES) and x.shape == (3, len(NUMERIC_FEATURES))
    b = names.index("brightness")
    assert x[0, b] > x[2, b] > x[1, b]                        # light, blue, dark backgrounds
    assert set(store.get_features(FEATURES_NAME, ["c0", "c1", "c2"])) == {"c0", "c1", "c2"}
    # a second call reads the cache (no extractor is even built)
    x2, _ = store_features(store, crs)
    np.testing.assert_array_equal(x, x2)
    with pytest.raises(InputError):
        explicit_matrix([])


def test_pca_and_standardise() -> None:
    x = np.random.default_rng(0).standard_normal((20, 8))
    p = pca(x, 3)
    assert p.shape == (20, 3) and np.allclose(p.mean(0), 0) and p.var(0)[0] >= p.var(0)[2]
    z = standardise(np.hstack([x, np.ones((20, 1))]))
    assert np.allclose(z[:, :8].std(0), 1, atol=1e-5) and (z[:, 8] == 0).all()
