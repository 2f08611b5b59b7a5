"""Represent → select: the creative tower's input is represent's description of each creative.

* explicit features (``represent.features``: colours, product area and position, contrast, OCR'd copy,
  promo, price, faces, logo, sharpness, … — :data:`~adcreative.represent.features.NUMERIC_FEATURES`),
  computed once per creative and cached in the store (explicit features with OCR run at ~2 creatives/s);
* the contrastive image + text embedding (``represent.encoder``), cached in the store under the encoder's
  fingerprint, reduced by PCA to ``embed_dims`` (a few hundred creatives cannot fit 256 raw dimensions).

Selection computes no image statistics of its own. Standardisation happens where the table is built
(``standardise``), and the standardised table ships in the serving bundle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from adcreative.core.errors import InputError

if TYPE_CHECKING:
    from adcreative.core.store import Store
    from adcreative.core.types import Creative
    from adcreative.represent.encoder import CreativeEncoder


def explicit_matrix(features: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, list[str]]:
    """``[N, len(NUMERIC_FEATURES)]`` from represent's feature dicts, and the column names."""
    from adcreative.represent.features import NUMERIC_FEATURES, to_vector

    if not features:
        raise InputError("no creatives to describe")
    return np.stack([to_vector(f) for f in features]), list(NUMERIC_FEATURES)


def image_features(images: Sequence[Image.Image], masks: Sequence[Image.Image | None] | None = None, *,
                   ocr: bool = True) -> tuple[np.ndarray, list[str]]:
    """Explicit features of images that are not in a store (``--images``, quick creatives): not cached."""
    from adcreative.represent.features import extract

    return explicit_matrix(extract(list(images), list(masks) if masks is not None else None, ocr=ocr))


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """The first ``dims`` principal components of the rows of ``x`` (fewer when there are fewer rows)."""
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[: min(dims, len(vt))].T  # type: ignore[no-any-return]


def store_features(store: Store, creatives: Sequence[Creative], *, encoder: CreativeEncoder | None = None,
                   embed_dims: int = 16, show_progress: bool = False) -> tuple[np.ndarray, list[str]]:
    """Explicit features (+ PCA'd embeddings when an ``encoder`` is given) of stored creatives, each computed
    once per creative and cached in the store (``represent features`` / ``represent embed`` share the cache)."""
    from adcreative.represent.features import features_for_creatives

    feats = features_for_creatives(store, creatives, show_progress=show_progress)
    x, names = explicit_matrix([feats[c.id] for c in creatives])
    if encoder is None:
        return x, names
    from adcreative.represent.encoder import embed_creatives

    e = pca(embed_creatives(store, creatives, encoder, show_progress=show_progress).astype(np.float64), embed_dims)
    return np.hstack([x, e]).astype(np.float32), [*names, *(f"embedding_pc{j}" for j in range(e.shape[1]))]


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance (constant columns stay 0)."""
    x = np.asarray(x, np.float64)
    sd = x.std(0)
    return ((x - x.mean(0)) / np.where(sd > 1e-9, sd, 1.0)).astype(np.float32)  # type: ignore[no-any-return]
