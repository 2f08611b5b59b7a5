"""The ONNX export scores what torch scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.inspect.helpers import TINY, sample_items


def test_onnx_export_matches_torch(tmp_path: Path, dataset: Path) -> None:
    pytest.importorskip("onnxruntime")
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY).eval()
    export_onnx(model, tmp_path / "m")  # verifies torch vs onnxruntime itself
    items = sample_items(dataset, 3)
    np.testing.assert_allclose(OnnxInspector(tmp_path / "m").predict_proba(items), model.predict_proba(items),
                               atol=1e-4)
    # a truncated export was onnxruntime's InvalidProtobuf traceback in `inspect run --onnx`
    from adcreative.core.errors import InputError

    onnx = tmp_path / "m" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000])
    with pytest.raises(InputError, match=r"model\.onnx cannot be loaded \(InvalidProtobuf"):
        OnnxInspector(tmp_path / "m")
