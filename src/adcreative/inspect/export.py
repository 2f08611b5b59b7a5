"""Export RFNet for fast CPU scoring: ONNX (run by onnxruntime), with the same preprocessing.

``export_onnx(model, dir)`` writes ``dir/model.onnx`` beside the model's ``config.json``; :class:`OnnxInspector`
loads such a folder and scores :class:`InspectItem` lists without building the torch model. The graph outputs
the calibrated probabilities and the out-of-distribution score; the three-way decision's thresholds are read from
the same ``config.json``. The title's MiniLM token embeddings stay outside the graph (computed once per title and
cached).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.backbones import TEXT_DIM
from adcreative.core.errors import InputError
from adcreative.inspect.calibrate import with_real_bias_probs, with_renderer_calibration_probs
from adcreative.inspect.decision import Judgements, decision_of, real_mask
from adcreative.inspect.preprocess import InspectItem, prepare_arrays

ONNX_NAME = "model.onnx"
INPUTS = ("image", "product", "aux", "local", "local_aux", "text", "text_valid", "cues")


def _wrapper(model: Any) -> Any:
    import torch

    class Probs(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, image: torch.Tensor, product: torch.Tensor, aux: torch.Tensor, local: torch.Tensor,
                    local_aux: torch.Tensor, text: torch.Tensor, text_valid: torch.Tensor,
                    cues: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mid, fin = self.m._trunk(image)
            local_mid, local_fin = self.m._trunk(local) if self.m.use_mask else (mid, fin)
            enc = {"image": fin, "image_mid": mid, "aux": aux, "local_mid": local_mid, "local_aux": local_aux,
                   "local": local_fin}
            if self.m.use_product:
                enc["product"] = self.m._trunk(product)[1]
            if self.m.use_text:
                enc["text"], enc["text_valid"] = text, text_valid
            if self.m.use_cues:
                enc["cues"] = cues
            z, f = self.m.outputs(enc)
            return torch.softmax(z, -1), self.m.ood_score(f)

    return Probs(model).eval()


def example_inputs(model: Any, batch: int = 2) -> tuple[Any, ...]:
    import torch

    from adcreative.inspect.model import AUX_CHANNELS

    S, A, T = model.image_size, model.aux_size, model.max_text_tokens
    g = torch.Generator().manual_seed(0)
    valid = torch.ones(batch, T, dtype=torch.bool)
    valid[:, T // 2:] = False
    return (torch.randn(batch, 3, S, S, generator=g), torch.randn(batch, 3, S, S, generator=g),
            torch.rand(batch, AUX_CHANNELS, A, A, generator=g), torch.randn(batch, 3, S, S, generator=g),
            torch.rand(batch, AUX_CHANNELS, A, A, generator=g), torch.randn(batch, T, 384, generator=g), valid,
            torch.rand(batch, model.n_cues, generator=g))


def export_onnx(model: Any, directory: str | Path, *, opset: int = 17) -> Path:
    """Write ``model.onnx`` (and the model's config/weights if absent) into ``directory``; verifies the
    exported graph against torch on random inputs before returning."""
    import io

    import torch

    from adcreative.core.imageio import atomic_write

    d = Path(directory)
    if not (d / "config.json").exists():
        model.save_pretrained(d)
    model.eval()
    wrapper = _wrapper(model)
    args = example_inputs(model)
    buf = io.BytesIO()
    dyn = {k: {0: "batch"} for k in INPUTS}
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder-layer kernel has no ONNX form
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter about constant folding and shape checks
            torch.onnx.export(wrapper, args, buf,  # type: ignore[arg-type]
                              input_names=list(INPUTS), output_names=["probs", "ood"],
                              dynamic_axes={**dyn, "probs": {0: "batch"}, "ood": {0: "batch"}},
                              opset_version=opset, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    path = d / ONNX_NAME
    atomic_write(path, buf.getvalue())
    # check: the exported graph computes what torch computes
    sess = OnnxInspector(d)
    with torch.no_grad():
        ref, ref_ood = (t.numpy() for t in wrapper(*args))
    got, got_ood = sess.run_outputs({k: a.numpy() for k, a in zip(INPUTS, args, strict=True)})
    if not np.allclose(ref, got, atol=1e-4):
        raise RuntimeError(f"ONNX export differs from torch (max abs diff {np.abs(ref - got).max():.2e})")
    if not np.allclose(ref_ood, got_ood, rtol=1e-3, atol=1e-3):
        raise RuntimeError(f"ONNX export's OOD score differs from torch (max abs diff "
                           f"{np.abs(ref_ood - got_ood).max():.2e})")
    return path


class OnnxInspector:
    """Scores items with onnxruntime from an exported folder (config.json + model.onnx)."""

    def __init__(self, directory: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        d = Path(directory)
        if not (d / ONNX_NAME).exists():
            raise InputError(f"no {ONNX_NAME} (run 'adcreative inspect export')", source=d)
        self.config = json.loads((d / "config.json").read_text())
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf

        try:
            self.session = ort.InferenceSession(str(d / ONNX_NAME), opts, providers=["CPUExecutionProvider"])
        except (InvalidProtobuf, InvalidGraph, Fail) as e:  # onnxruntime's own classes: a truncated or foreign file
            raise InputError(f"{ONNX_NAME} cannot be loaded ({type(e).__name__}: {str(e)[:200]}); export it again "
                             "with 'adcreative inspect export'", source=d) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.use_text = bool(self.config.get("use_text", True))
        self.decision = decision_of(self.config)
        self.real_bias = self.config.get("real_bias")  # added to real products' calibrated logits (judge)
        self.renderer_calibration = self.config.get("renderer_calibration")  # then each renderer's own (judge)
        self.has_ood = "ood" in [o.name for o in self.session.get_outputs()]  # exports before OOD had none

    def run_arrays(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Calibrated probabilities (B, 6) of prepared arrays."""
        return self.run_outputs(arrays)[0]

    def run_outputs(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities (B, 6) and out-of-distribution scores (B,) of prepared arrays."""
        feed = {k: arrays[k] for k in self.input_names}
        if not self.has_ood:
            probs = np.asarray(self.session.run(["probs"], feed)[0])
            return probs, np.zeros(len(probs), np.float32)
        probs, ood = self.session.run(["probs", "ood"], feed)
        return np.asarray(probs), np.asarray(ood)

    def prepare(self, items: Sequence[InspectItem]) -> dict[str, np.ndarray]:
        """RFNet's own preprocessing (sizes from the saved config), titles padded to the graph's fixed token
        count (a model without text gets one dummy valid token)."""
        out = prepare_arrays(items, self.config)
        T = int(self.config["max_text_tokens"])
        text = np.zeros((len(items), T, TEXT_DIM), np.float32)
        valid = np.zeros((len(items), T), bool)
        valid[:, 0] = True
        if self.use_text:
            n = out["text"].shape[1]
            text[:, :n], valid[:, :n] = out["text"], out["text_valid"]
        out["text"], out["text_valid"] = text, valid
        return out

    def predict_proba(self, items: Sequence[InspectItem], batch_size: int = 32) -> np.ndarray:
        return self.judge(items, batch_size).probs

    def judge(self, items: Sequence[InspectItem], batch_size: int = 32) -> Judgements:
        """Calibrated probabilities, OOD scores and the three-way decision (thresholds from config.json)."""
        probs, ood, placement = [], [], []
        for i in range(0, len(items), batch_size):
            arrays = self.prepare(items[i:i + batch_size])
            placement.append(arrays["placement"])
            p, o = self.run_outputs(arrays)
            probs.append(p)
            ood.append(o)
        if not probs:
            return Judgements.empty(6)
        sources = [it.product_source for it in items]
        renderers = [it.renderer for it in items]
        p = with_real_bias_probs(np.concatenate(probs), real_mask(sources), self.real_bias)
        p = with_renderer_calibration_probs(p, renderers, self.renderer_calibration)
        return Judgements.of(p, np.concatenate(ood), self.decision, np.concatenate(placement), renderers, sources)
