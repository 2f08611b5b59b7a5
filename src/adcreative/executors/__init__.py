"""Executors run a stage class over batches: in this process by default, on a Ray cluster when a
catalogue outgrows one machine. A stage keeps its heavy state in ``__init__`` and does its work in
``__call__(batch) -> list``, so the same class runs in both."""

from adcreative.executors.local import batched, run_local

__all__ = ["batched", "run_local", "run_stage"]


def run_stage(executor: str, stage_cls: type, kwargs: dict, items: list, *, batch_size: int = 8,
              workers: int = 2, address: str | None = None, progress: bool = True) -> list:
    """Run ``stage_cls(**kwargs)`` over ``items`` with the named executor; results keep the input order."""
    if executor == "local":
        return run_local(stage_cls, kwargs, items, batch_size=batch_size, progress=progress)
    if executor == "ray":
        from adcreative.executors.ray import run_ray

        return run_ray(stage_cls, kwargs, items, batch_size=batch_size, workers=workers, address=address,
                       progress=progress)
    raise ValueError(f"unknown executor {executor!r}; choose local or ray")
