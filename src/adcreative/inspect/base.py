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


# fitted after training from the training / validation rows, never carried over by a warm start
_REFITTED = ("ood_", "match_", "style_", "cue_head.")


def warm_start(net: Any, path: str | Path | None) -> dict[str, list[str]]:
    """Start ``net`` (a fresh inspector of its own config) from a saved one's weights (``path``; None → the shipped
    default): every trainable weight whose name and shape match is copied, the rest keep ``net``'s
    initialisation. Unlike fine-tuning (``--init``), the architecture is ``net``'s, so a model can move to another
    cue set or gain a cue expert and still start from what the saved one learned. The cue statistics are copied
    only when the cue set is the same (their meaning changes with it); what is fitted after training (the OOD
    model, the cue expert, calibration) never is. Returns the names copied, kept fresh, and left out."""
    d = Path(path) if path is not None else default_model_dir()
    src_net = load_inspector(d)  # checks the folder and that its weights fit its own config
    arrays = src_net.state_arrays()  # what it saved (the packaged trunk stays out), read once
    same_cues = src_net.config.get("cue_set") == net.config.get("cue_set")
    own = net.state_arrays()
    copied: list[str] = []
    fresh: list[str] = []
    state = {}
    for k, v in own.items():
        w = arrays.get(k)
        ok = (w is not None and tuple(w.shape) == tuple(v.shape) and not k.startswith(_REFITTED)
              and (same_cues or k not in ("cue_mean", "cue_std")))
        state[k] = w if ok else v
        (copied if ok else fresh).append(k)
    # a start from a few stray layers is no warm start: most of the saved weights must carry over
    share = sum(own[k].numel() for k in copied) / max(1, sum(v.numel() for v in own.values()))
    if share < 0.5:
        raise InputError(f"no weight of the saved inspector fits this one, apart from {share:.0%} of its size "
                         "(another architecture?)", source=d)
    net.load_state_dict(state, strict=False)
    return {"copied": copied, "fresh": fresh, "dropped": sorted(set(arrays) - set(own))}


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
