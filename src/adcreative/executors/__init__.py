"""Executors run a stage class over batches: in this process by default, on a Ray cluster when a
catalogue outgrows one machine. A stage keeps its heavy state in ``__init__`` and does its work in
``__call__(batch) -> list``, so the same class runs in both."""

from adcreative.core.errors import InputError
from adcreative.executors.local import batched, run_local

__all__ = ["EXECUTORS", "batched", "check_executor", "run_local", "run_stage"]

EXECUTORS = ("local", "ray")


def check_executor(executor: str, workers: int) -> None:
    """Refuse an unknown executor, or a worker count that would leave Ray's actor pool waiting forever."""
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; choose {' or '.join(EXECUTORS)}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")


def run_stage(executor: str, stage_cls: type, kwargs: dict, items: list, *, batch_size: int = 8,
              workers: int = 2, address: str | None = None, progress: bool = True) -> list:
    """Run ``stage_cls(**kwargs)`` over ``items`` with the named executor; results keep the input order."""
    check_executor(executor, workers)
    if executor == "local":
        return run_local(stage_cls, kwargs, items, batch_size=batch_size, progress=progress)
    if executor == "ray":
        from adcreative.executors.ray import run_ray

        return run_ray(stage_cls, kwargs, items, batch_size=batch_size, workers=workers, address=address,
                       progress=progress)
    raise AssertionError(executor)  # check_executor allows only the two above
