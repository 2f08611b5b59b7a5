"""Registries: one per model family, with lazy entries so ``--help`` never imports torch or diffusers."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, str | Callable[..., T]] = {}

    def register(self, name: str, target: str | Callable[..., T] | None = None) -> Any:
        """``register("x", "pkg.mod:Class")`` lazily, or use ``@register("x")`` as a class decorator."""
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
            raise KeyError(f"unknown {self.family} {name!r}; registered: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            mod, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(mod), attr)
            self._entries[name] = entry
        return entry

    def create(self, name: str, **cfg: Any) -> T:
        return self.get(name)(**cfg)
