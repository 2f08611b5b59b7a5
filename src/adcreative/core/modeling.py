"""The config is the constructor: a model's typed ``__init__`` arguments are saved to ``config.json``
beside its weights in ``model.safetensors``, and loading calls the constructor with them again.

Works for torch modules (``state_dict``) and for NumPy-parameter models (``state_arrays``). Never pickles.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from adcreative.core.durable import atomic_dir
from adcreative.core.errors import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
F = TypeVar("F", bound=Callable[..., None])
T = TypeVar("T", bound="ConfigMixin")


def register_to_config(init: F) -> F:
    """Decorate ``__init__`` so its bound arguments (defaults included) are kept as ``self.config``."""
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        cfg = {k: v for k, v in bound.arguments.items() if k != "self"}
        for k, v in cfg.items():
            try:
                json.dumps(v)
            except TypeError as e:
                raise TypeError(f"{type(self).__name__}.{k} must be JSON-serialisable to live in config.json") from e
        init(self, *args, **kwargs)
        # set after init so torch's Module.__setattr__ has run its own setup
        object.__setattr__(self, "config", cfg)

    return wrapper  # type: ignore[return-value]


class ConfigMixin:
    """Save/load ``config.json`` + ``model.safetensors``. Subclasses decorate ``__init__`` with
    :func:`register_to_config`, and are torch modules or implement ``state_arrays``/``load_state_arrays``."""

    config: dict[str, Any]
    config_name: str = CONFIG_NAME
    # the registry this class is built through (``core.registry``); saved as ``_registry`` so that
    # ``Registry.load`` dispatches on it. An instance made by ``Registry.create``/``load`` records its own entry.
    registry_family: ClassVar[str | None] = None
    registry_name: ClassVar[str | None] = None
    # files in a model folder computed from its weights (an ONNX export): a new save removes them
    stale_on_save: ClassVar[tuple[str, ...]] = ()

    def state_arrays(self) -> dict[str, Any]:
        sd = self.state_dict()  # type: ignore[attr-defined]
        return {k: v.detach().cpu().contiguous() for k, v in sd.items()}

    def load_state_arrays(self, arrays: dict[str, Any]) -> None:
        missing, unexpected = self.load_state_dict(arrays, strict=False)  # type: ignore[attr-defined]
        # buffers that are rebuilt by __init__ (e.g. packaged pretrained weights) may legitimately be absent
        if unexpected:
            raise ValueError(f"unexpected weights in checkpoint: {unexpected[:5]}")
        if missing:
            raise ValueError(f"weights missing from checkpoint: {missing[:5]}")

    def save_pretrained(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` as one unit: both are built in a temporary folder
        beside ``directory``, fsync'd and swapped in with one rename, so a crash never leaves a config of one
        save beside the weights of another. Other files already in ``directory`` are kept, except
        ``stale_on_save`` (files derived from the old weights)."""
        d = Path(directory)
        arrays = self.state_arrays()
        meta = {"class": f"{type(self).__module__}.{type(self).__qualname__}"}
        if arrays and _is_torch(next(iter(arrays.values()))):
            from safetensors.torch import save

            blob = save(arrays, metadata=meta)
        else:
            from safetensors.numpy import save as np_save

            blob = np_save(arrays, metadata=meta)
        cfg = {"_class": meta["class"], **self.config, **({"_extra": extra} if extra else {})}
        family, name = getattr(self, "registry_entry", None) or (self.registry_family, self.registry_name)
        if family is not None:
            cfg["_registry"] = {"family": family, "name": name}
        with atomic_dir(d, drop=self.stale_on_save) as tmp:
            (tmp / WEIGHTS_NAME).write_bytes(blob)
            (tmp / self.config_name).write_text(json.dumps(cfg, indent=2, sort_keys=True))
        return d

    @classmethod
    def load_config(cls, directory: str | Path) -> dict[str, Any]:
        p = Path(directory) / cls.config_name
        if not p.exists():
            # a folder the user named: their input, one line in the CLI (a FileNotFoundError was a traceback)
            raise InputError(f"no {cls.config_name}: not a saved model folder", source=directory)
        return dict(json.loads(p.read_text()))

    @classmethod
    def from_pretrained(cls: type[T], directory: str | Path, **overrides: Any) -> T:
        d = Path(directory)
        cfg = cls.load_config(d)
        for k in ("_class", "_extra", "_registry"):
            cfg.pop(k, None)
        cfg.update(overrides)
        obj = cls(**cfg)
        wp = d / WEIGHTS_NAME
        if not wp.exists():
            raise InputError(f"no {WEIGHTS_NAME}: the model folder is incomplete", source=d)
        from safetensors import SafetensorError

        # check the model first: a NumPy-state model must load without importing torch (light services)
        arrays: dict[str, Any]
        try:
            if hasattr(obj, "state_dict") and _torch_available():
                from safetensors.torch import load_file

                arrays = load_file(str(wp))
            else:
                from safetensors.numpy import load_file as np_load_file

                arrays = np_load_file(str(wp))
        except SafetensorError as e:  # truncated or not safetensors at all: the user's file, not a bug here
            raise InputError(f"{WEIGHTS_NAME} is not a readable safetensors file ({e})", source=d) from None
        try:
            obj.load_state_arrays(arrays)
        except (ValueError, RuntimeError) as e:  # weights of another config (sizes, ablations): the folder is mixed up
            raise InputError(f"{WEIGHTS_NAME} does not fit config.json ({e})", source=d) from None
        if hasattr(obj, "eval"):
            obj.eval()
        return obj


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
