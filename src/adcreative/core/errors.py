"""Errors users can act on: they name the thing and the problem; the CLI turns them into exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input: a corrupt or huge image, a wrong mode, a missing file, an empty title, a duplicate id."""

    def __init__(self, problem: str, *, source: str | Path | None = None) -> None:
        self.problem = problem
        self.source = str(source) if source is not None else None
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


class ConfigError(InputError):
    """A model's constructor arguments are wrong: a required one is missing, an unknown one was given, or the
    constructor refused a value. Raised by ``Registry.create``; the CLI says which option carries them."""


class NotFoundError(InputError):
    """The input names something the store does not have (a product or creative id): a 404 to a service."""
