"""The default executor: one process, one stage instance, batches in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> Iterator[list[T]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def run_local(stage_cls: type, kwargs: dict[str, Any], items: Sequence[Any], *, batch_size: int = 8,
              progress: bool = True) -> list[Any]:
    stage = stage_cls(**kwargs)
    out: list[Any] = []
    with tqdm(total=len(items), desc=stage_cls.__name__, disable=not progress) as bar:
        for batch in batched(items, batch_size):
            res = stage(batch)
            if len(res) != len(batch):
                raise RuntimeError(f"{stage_cls.__name__} returned {len(res)} results for {len(batch)} items")
            out.extend(res)
            bar.update(len(batch))
    return out
