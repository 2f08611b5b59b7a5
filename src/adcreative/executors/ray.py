"""Ray executor: a pool of stage actors (heavy state loaded once per actor), batches spread over them.

Starts a local cluster when no ``address`` is given; the driver keeps the store (one writer), actors only
compute. Workers import adcreative from the same place as the driver.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from adcreative.executors.local import batched


def run_ray(stage_cls: type, kwargs: dict[str, Any], items: Sequence[Any], *, batch_size: int = 8, workers: int = 2,
            address: str | None = None, progress: bool = True) -> list[Any]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise RuntimeError("the ray executor needs the [scale] extra: pip install 'adcreative[scale]'") from e
    started = False
    if not ray.is_initialized():
        src = str(Path(__file__).resolve().parents[2])
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": src}})
        started = True
    try:
        actor_cls: Any = ray.remote(num_cpus=1)(stage_cls)
        pool = ActorPool([actor_cls.remote(**kwargs) for _ in range(max(1, workers))])  # type: ignore[attr-defined]
        batches = list(batched(items, batch_size))
        out: list[Any] = []
        with tqdm(total=len(items), desc=f"{stage_cls.__name__} (ray × {workers})", disable=not progress) as bar:
            for res, batch in zip(pool.map(lambda a, b: a.__call__.remote(b), batches), batches, strict=True):
                if len(res) != len(batch):
                    raise RuntimeError(f"{stage_cls.__name__} returned {len(res)} results for {len(batch)} items")
                out.extend(res)
                bar.update(len(batch))
        return out
    finally:
        if started:
            ray.shutdown()
