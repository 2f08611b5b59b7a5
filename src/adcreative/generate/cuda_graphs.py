"""A module's no-grad forward replayed as CUDA graphs: one denoising step's kernels launched at once.

At batch 1 an SD 1.5 ControlNet + UNet step under CFG is some 1,800 small kernels (18,418 in a 10-step call,
text encoder and VAE included); launched one by one from Python they cost the CPU 56-67 ms per step on an H200
while the GPU's own work is ~17 ms, so the GPU mostly waits (``bench/diffusion_profile.py``). A CUDA graph
records the step's kernels once per input signature (shapes, strides, dtypes, the non-tensor arguments) and
replays them with one launch: the same kernels on the same data, so the images are bit for bit the eager ones
(checked on an H200 at batch 1 and 4).

Only for inference: a call with gradients enabled, or off CUDA, runs the module's own forward. The inputs are
copied into the graph's static buffers, the outputs cloned out of them, so callers keep plain tensors. The
graphs read the module's weights where they were when captured: :meth:`GraphedForward.invalidate_if_moved` drops
them when a parameter was replaced (``.to()``, a reload) rather than updated in place.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Graphs kept per module: one per (batch, aspect) signature; past this, new signatures run eagerly (an unbounded
# stream of new shapes would otherwise hold an activation pool each).
MAX_GRAPHS = 8
DEVICE_TYPE = "cuda"  # the tensors' device type that is graphed (the tests fake CUDA graphs on the CPU)


def _weights_key(module: Any) -> tuple[Any, ...]:
    return tuple((p.data_ptr(), p.dtype, str(p.device)) for p in module.parameters())


class GraphedForward:
    """Stands in for ``module.forward`` (see :func:`cuda_graphed`): replays a CUDA graph per input signature."""

    def __init__(self, module: Any, *, pool: Any = None, max_graphs: int = MAX_GRAPHS) -> None:
        self.module = module
        self.fwd = module.forward  # the module's own (bound) forward
        self.pool = pool
        self.max_graphs = max_graphs
        self.graphs: dict[Any, tuple[Any, list[Any], Any]] = {}
        self.weights = _weights_key(module)
        self.failed = False

    def invalidate_if_moved(self) -> None:
        """Drop the graphs when a parameter is no longer the tensor they read (in-place updates are seen)."""
        now = _weights_key(self.module)
        if now != self.weights:
            self.graphs.clear()
            self.weights = now

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch
        from torch.utils import _pytree as pytree

        if self.failed or torch.is_grad_enabled():
            return self.fwd(*args, **kwargs)
        flat, spec = pytree.tree_flatten((args, kwargs))
        tensors = [x for x in flat if isinstance(x, torch.Tensor)]
        if not tensors or any(x.device.type != DEVICE_TYPE for x in tensors):
            return self.fwd(*args, **kwargs)
        # the layout too: a kernel can take another path (another summation order) on other strides
        key = (repr(spec), tuple((tuple(x.shape), x.stride(), x.dtype, str(x.device))
                                 if isinstance(x, torch.Tensor) else x for x in flat))
        with torch.cuda.device(tensors[0].device):
            if key not in self.graphs:
                if len(self.graphs) >= self.max_graphs:
                    return self.fwd(*args, **kwargs)
                try:
                    self.graphs[key] = self._capture(flat, spec)
                except Exception as e:  # a module that cannot be captured runs eagerly from now on
                    self.failed = True
                    warnings.warn(f"CUDA graph capture of {type(self.module).__name__} failed ({type(e).__name__}: "
                                  f"{e}); running it eagerly", RuntimeWarning, stacklevel=2)
                    return self.fwd(*args, **kwargs)
            graph, static, out = self.graphs[key]
            for dst, src in zip(static, flat, strict=True):
                if isinstance(dst, torch.Tensor):
                    dst.copy_(src)
            graph.replay()
            return pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, out)

    def _capture(self, flat: list[Any], spec: Any) -> tuple[Any, list[Any], Any]:
        import torch
        from torch.utils import _pytree as pytree

        static = [torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device).copy_(x)
                  if isinstance(x, torch.Tensor) else x for x in flat]

        def run() -> Any:
            a, k = pytree.tree_unflatten(static, spec)
            return self.fwd(*a, **k)

        side = torch.cuda.Stream()  # warm up off the capturing stream, as torch.cuda.graph's documentation does
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = run()
        return graph, static, out


@contextmanager
def cuda_graphed(modules: dict[str, Any], cache: dict[str, GraphedForward]) -> Iterator[None]:
    """Within the block each of ``modules`` (name → ``nn.Module``) runs its no-grad CUDA forwards as graphs kept
    in ``cache`` (name → :class:`GraphedForward`, filled here; keep it to reuse the graphs across calls). The
    graphs of one cache share one memory pool: they are replayed one at a time, and what outlives a replay (the
    static inputs and outputs) is never handed back to the pool."""
    import torch

    before = {name: m.__dict__.get("forward") for name, m in modules.items()}  # e.g. an accelerate hook's
    for name, m in modules.items():
        g = cache.get(name)
        if g is None or g.module is not m or g.fwd != m.forward:
            pool = next((c.pool for c in cache.values()), None) or torch.cuda.graph_pool_handle()
            cache[name] = GraphedForward(m, pool=pool)
        else:
            g.invalidate_if_moved()
        m.forward = cache[name]
    try:
        yield
    finally:
        for name, m in modules.items():
            if before[name] is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = before[name]
