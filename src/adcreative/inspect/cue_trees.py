"""The cue expert as boosted trees: fitted by scikit-learn's histogram gradient boosting, kept and evaluated in torch.

The cue expert reads a few dozen measured numbers (inspect.cues). On a renderer no training run saw, shallow
boosted trees of those numbers judged better than the small MLP (docs/inspect.md, tenth round): a tree only asks
whether a cue is past a threshold, and a cue's scale drifts less across renderers than the exact combinations an
MLP can fit. Fitting uses scikit-learn (class-weighted, the number of rounds chosen on validation NLL); the fitted
trees are copied into this module's buffers, so the model saves to safetensors like every other part (no pickle),
and evaluation is a fixed number of gathers, which ONNX exports.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from adcreative.core.errors import InputError

MAX_DEPTH = 3  # split levels per tree: at most 2^(MAX_DEPTH+1) - 1 nodes
N_NODES = 2 ** (MAX_DEPTH + 1) - 1
ABSENT = -30.0  # raw score of a class no training row had: never predicted


class CueTrees(nn.Module):
    """Boosted trees over the standardised cues → raw class scores (softmax gives the probabilities). Sized when
    fitted (:meth:`set_trees`) or loaded (:meth:`resize_like`); with no trees every class scores its base."""

    feature: Tensor  # (trees, N_NODES) the cue a node splits on
    threshold: Tensor  # (trees, N_NODES) left when the cue is at most this
    left: Tensor  # (trees, N_NODES) child nodes
    right: Tensor
    value: Tensor  # (trees, N_NODES) a leaf's score (learning rate applied)
    leaf: Tensor  # (trees, N_NODES) bool
    assign: Tensor  # (trees, n_classes) one-hot: the class a tree scores
    base: Tensor  # (n_classes,) the score before any tree

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self._allocate(0)
        self.register_buffer("base", torch.zeros(n_classes))

    def _allocate(self, n_trees: int) -> None:
        for name, dtype in (("feature", torch.int64), ("left", torch.int64), ("right", torch.int64),
                            ("threshold", torch.float32), ("value", torch.float32), ("leaf", torch.bool)):
            self.register_buffer(name, torch.zeros(n_trees, N_NODES, dtype=dtype))
        self.register_buffer("assign", torch.zeros(n_trees, self.n_classes))  # one-hot: the class a tree scores

    @property
    def n_trees(self) -> int:
        return int(self.feature.shape[0])

    def resize_like(self, arrays: dict[str, Tensor], prefix: str) -> None:
        """Re-allocate the buffers to the tree count saved in ``arrays`` (keys ``prefix + name``), before loading."""
        key = prefix + "feature"
        if key in arrays:
            self._allocate(int(arrays[key].shape[0]))

    def forward(self, x: Tensor) -> Tensor:
        """(B, n_cues) standardised cues → (B, n_classes) raw scores. A node sends a row left when its cue is at
        most the threshold (a NaN cue goes right)."""
        b, t = x.shape[0], self.n_trees
        out = self.base.unsqueeze(0).expand(b, -1)
        if t == 0:
            return out
        offset = (torch.arange(t, device=x.device) * N_NODES).unsqueeze(0)  # row of each tree in the flat tables
        node = torch.zeros(b, t, dtype=torch.int64, device=x.device)
        feature, threshold = self.feature.reshape(-1), self.threshold.reshape(-1)
        left, right, leaf = self.left.reshape(-1), self.right.reshape(-1), self.leaf.reshape(-1)
        for _ in range(MAX_DEPTH):
            at = node + offset
            go_left = x.gather(1, feature[at]) <= threshold[at]
            node = torch.where(leaf[at], node, torch.where(go_left, left[at], right[at]))
        return out + self.value.reshape(-1)[node + offset] @ self.assign

    @torch.no_grad()
    def set_trees(self, est: Any, n_iter: int) -> None:
        """Copy the first ``n_iter`` boosting rounds of a fitted ``HistGradientBoostingClassifier`` (max_depth ≤
        MAX_DEPTH, numeric features) into the buffers."""
        classes = [int(c) for c in est.classes_]
        per_iter = int(est.n_trees_per_iteration_)
        # a two-class fit keeps one tree per round, scoring the second class against the first (fixed at 0)
        scored = classes[1:] if per_iter == 1 else classes
        trees = [p for it in est._predictors[:n_iter] for p in it]
        self._allocate(len(trees))
        base = torch.full((self.n_classes,), ABSENT)
        base[classes[0]] = 0.0
        for c, v in zip(scored, np.asarray(est._baseline_prediction, np.float64).reshape(-1), strict=True):
            base[c] = float(v)
        self.base.copy_(base)
        for i, tree in enumerate(trees):
            nodes = tree.nodes
            if len(nodes) > N_NODES:
                raise ValueError(f"a tree has {len(nodes)} nodes, more than depth {MAX_DEPTH} allows")
            n = len(nodes)
            self.feature[i, :n] = torch.from_numpy(nodes["feature_idx"].astype(np.int64))
            self.threshold[i, :n] = torch.from_numpy(nodes["num_threshold"].astype(np.float32))
            self.left[i, :n] = torch.from_numpy(nodes["left"].astype(np.int64))
            self.right[i, :n] = torch.from_numpy(nodes["right"].astype(np.int64))
            self.value[i, :n] = torch.from_numpy(nodes["value"].astype(np.float32))
            self.leaf[i, :n] = torch.from_numpy(nodes["is_leaf"].astype(bool))
            self.leaf[i, n:] = True  # padding: unreachable
            self.assign[i, scored[i % per_iter]] = 1.0


def fit_cue_trees(trees: CueTrees, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                  x_val: np.ndarray | None, y_val: np.ndarray | None, *, seed: int, max_iter: int = 400,
                  learning_rate: float = 0.05) -> dict[str, Any]:
    """Fit boosted trees on standardised cues ``x`` and labels ``y`` (``weights``: per-class sample weights), keep
    the number of rounds with the lowest validation NLL (all of them without validation), and load them into
    ``trees``. Returns the rounds fitted and kept and the validation NLL."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(np.unique(y)) < 2:
        raise InputError("the cue expert needs training images of at least two classes")
    est = HistGradientBoostingClassifier(max_depth=MAX_DEPTH, learning_rate=learning_rate, max_iter=max_iter,
                                         early_stopping=False, random_state=seed)
    est.fit(x, y, sample_weight=None if weights is None else weights[y])
    best, keep = math.inf, est.n_iter_
    if x_val is not None and y_val is not None and len(y_val):
        cols = {int(c): i for i, c in enumerate(est.classes_)}
        col = np.array([cols.get(int(c), -1) for c in y_val])  # each row's column in predict_proba, -1: absent
        rows = np.arange(len(y_val))
        for k, p in enumerate(est.staged_predict_proba(x_val), 1):
            # a validation class the training rows lack has probability 0 here: floored, so NLL stays finite
            pick = np.where(col >= 0, p[rows, np.maximum(col, 0)], 0.0)
            nll = float(-np.log(np.maximum(pick, 1e-9)).mean())
            if nll < best - 1e-6:
                best, keep = nll, k
    trees.set_trees(est, keep)
    return {"rounds": int(est.n_iter_), "kept": int(keep), "val_nll": None if math.isinf(best) else best}
