"""The inspector registry and loaders (no torch at import)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adcreative.core.errors import InputError
from adcreative.core.registry import Registry

if TYPE_CHECKING:
    from adcreative.inspect.model import RFNet

INSPECTORS: Registry[Any] = Registry("inspector")
INSPECTORS.register("rfnet", "adcreative.inspect.model:RFNet")
INSPECTORS.register("image-only", "adcreative.inspect.model:image_only", returns="adcreative.inspect.model:RFNet")


def create_inspector(name: str, **cfg: Any) -> RFNet:
    """A fresh (untrained) inspector of a registered family, built from its config."""
    return INSPECTORS.create(name, **cfg)  # type: ignore[no-any-return]


def default_model_dir() -> Path:
    return Path(str(resources.files("adcreative") / "assets" / "rfnet"))


def load_inspector(path: str | Path | None = None) -> RFNet:
    """Load a saved inspector folder (config.json + model.safetensors); None → the shipped default."""
    d = Path(path) if path is not None else default_model_dir()
    if not (d / "config.json").exists() or not (d / "model.safetensors").exists():
        raise InputError("not an inspector folder (needs config.json and model.safetensors)", source=d)
    return INSPECTORS.load(d)  # type: ignore[no-any-return]


def default_inspector() -> RFNet:
    """The RFNet shipped with the package (trained on synthesised data, see docs/inspect.md)."""
    return load_inspector(None)


def model_id(path: str | Path | None) -> str:
    """A short id for verdicts: the folder name and the weights' hash prefix."""
    import hashlib

    d = Path(path) if path is not None else default_model_dir()
    h = hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()[:10]
    return f"rfnet:{d.name}@{h}"


def load_scorer(model: str | Path | None = None, onnx: bool = False) -> tuple[Any, str]:
    """An RFNet (torch) or its ONNX export, and the model id verdicts are written under.
    ``model`` None → the shipped default. Both have ``predict_proba(items) -> (N, 6)``."""
    d = Path(model) if model is not None else default_model_dir()
    net = load_inspector(d)  # checks the folder and fails with a clear error
    mid = model_id(d)
    if onnx:
        from adcreative.inspect.export import ONNX_NAME, OnnxInspector, export_onnx

        if not (d / ONNX_NAME).exists():
            if model is None:
                raise InputError("the default model has no ONNX export here; run 'adcreative inspect export "
                                 "--out DIR' and pass --model DIR")
            export_onnx(net, d)
        return OnnxInspector(d), mid + "/onnx"
    return net, mid
