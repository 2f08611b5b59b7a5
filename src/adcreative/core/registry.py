"""Registries: one per model family, with lazy entries so ``--help`` never imports torch or diffusers.

Every way in goes through a family's registry: ``create(name, **config)`` builds a fresh model and
``load(directory)`` loads a saved one by what its ``config.json`` records (``_registry``: family and name;
``_class``: the class), so a folder of one family is never loaded as another, and no class is imported
because a file named it: only the family's own entries are candidates.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from adcreative.core.errors import ConfigError, InputError

T = TypeVar("T")


def class_path(cls: type) -> str:
    """``module.QualName``: how ``config.json`` names a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _resolve(target: str) -> Any:
    mod, _, attr = target.partition(":")
    return getattr(importlib.import_module(mod), attr)


class Registry(Generic[T]):
    """Named constructors of one family. An entry is a class, or a factory with the class it ``returns``."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, str | Callable[..., T]] = {}
        self._returns: dict[str, str] = {}

    def register(self, name: str, target: str | Callable[..., T] | None = None, *, returns: str | None = None) -> Any:
        """``register("x", "pkg.mod:Class")`` lazily, or ``@register("x")`` as a class decorator. A factory
        function names the class it builds with ``returns="pkg.mod:Class"`` so saved folders load."""
        if returns is not None:
            self._returns[name] = returns
        if target is not None:
            self._entries[name] = target
            return target

        def deco(cls: Callable[..., T]) -> Callable[..., T]:
            self._entries[name] = cls
            return cls

        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            raise InputError(f"unknown {self.family} {name!r}; registered: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = _resolve(entry)
            self._entries[name] = entry
        return entry

    def create(self, name: str, **cfg: Any) -> T:
        """A fresh model of entry ``name`` built from its config; it remembers its registry name.

        Arguments are checked against the constructor's signature first, and a constructor that refuses a
        value (``TypeError``/``ValueError``/``OSError``) is reported as a :class:`ConfigError` naming the
        entry: the config comes from users (``--gen-config``, config.json), so a wrong one is their error."""
        factory = self.get(name)
        what = f"{self.family} {name!r}"
        try:
            sig = inspect.signature(factory)
        except (TypeError, ValueError):  # builtins without a signature: let the call itself decide
            sig = None
        if sig is not None:
            try:
                sig.bind(**cfg)
            except TypeError as e:
                raise ConfigError(f"{what}: {e} ({_describe(sig)})") from None
        try:
            obj = factory(**cfg)
        except InputError:
            raise
        except (TypeError, ValueError, OSError) as e:
            raise ConfigError(f"{what} refused its arguments: {type(e).__name__}: {e}") from e
        _tag(obj, self.family, name)
        return obj

    def model_class(self, name: str) -> type:
        """The class an entry builds (the entry itself, or what a factory ``returns``)."""
        entry = self.get(name)
        if isinstance(entry, type):
            return entry
        if name not in self._returns:
            raise InputError(f"{self.family} {name!r} is a factory that names no class: it cannot be loaded")
        cls = _resolve(self._returns[name])
        assert isinstance(cls, type)
        return cls

    def name_of(self, class_name: str) -> str | None:
        """The first entry whose class is ``class_name`` (``module.QualName``), without importing others."""
        for name, entry in sorted(self._entries.items()):
            target = entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"
            for t in (target, self._returns.get(name)):
                if t and t.replace(":", ".") == class_name:
                    return name
        return None

    def entry_of(self, directory: str | Path) -> tuple[str, dict[str, Any]]:
        """The entry name a saved folder of this family records, and its config (nothing is built), for
        callers that serve the saved weights another way (e.g. a NumPy forward pass without torch)."""
        d = Path(directory)
        p = d / "config.json"
        if not p.is_file():
            raise InputError(f"no config.json: not a saved {self.family} folder", source=d)
        try:
            cfg = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"config.json is not valid JSON ({e})", source=p) from None
        if not isinstance(cfg, dict):
            raise InputError("config.json is not a JSON object", source=p)
        reg = cfg.get("_registry") or {}
        saved_class = cfg.get("_class")
        if reg and reg.get("family") != self.family:
            raise InputError(f"this folder holds a {reg.get('family')!r} model ({reg.get('name')}), not a {self.family!r} one",
                             source=d)
        name = reg.get("name") if reg else (self.name_of(saved_class) if isinstance(saved_class, str) else None)
        if not name or name not in self._entries:
            raise InputError(f"config.json names no registered {self.family} (saw {reg.get('name') or saved_class!r}; "
                             f"registered: {', '.join(self.names())})", source=p)
        return name, cfg

    def load(self, directory: str | Path, **overrides: Any) -> T:
        """A saved model folder of this family, loaded by the entry its config.json records."""
        d = Path(directory)
        name, cfg = self.entry_of(d)
        cls = self.model_class(name)
        saved_class = cfg.get("_class")
        if saved_class and saved_class != class_path(cls):
            raise InputError(f"config.json says class {saved_class}, but {self.family} {name!r} is "
                             f"{class_path(cls)}", source=d / "config.json")
        obj = cls.from_pretrained(d, **overrides)  # type: ignore[attr-defined]
        _tag(obj, self.family, name)
        return obj  # type: ignore[no-any-return]


def _describe(sig: inspect.Signature) -> str:
    """``required: base, controlnet; optional: steps, ...``: what a constructor takes, for error messages."""
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [p.name for p in params if p.default is p.empty]
    optional = [p.name for p in params if p.default is not p.empty]
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in (("required", required), ("optional", optional)) if v) or "none"


def _tag(obj: Any, family: str, name: str) -> None:
    """Remember where a model came from, so ``save_pretrained`` records it."""
    with contextlib.suppress(AttributeError, TypeError):  # slotted or frozen objects save no config anyway
        object.__setattr__(obj, "registry_entry", (family, name))
