"""CUDA-graph replay of the denoising step (adcreative.generate.cuda_graphs).

On the CPU, CUDA graphs are faked: a captured "graph" re-runs the module on its static inputs into its static
outputs when replayed, which checks the plumbing (signatures, static buffers, cloned outputs, restoring the
modules, invalidation, fallbacks). The real graphs are checked against eager images where CUDA is available."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from adcreative.generate import cuda_graphs  # noqa: E402
from adcreative.generate.cuda_graphs import GraphedForward, cuda_graphed  # noqa: E402


class FakeGraph:
    def __init__(self) -> None:
        self.replay_fn: Any = None
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1
        if self.replay_fn is not None:
            self.replay_fn()


class FakeStream:
    def wait_stream(self, _other: Any) -> None:
        pass


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graph CPU tensors; a capture records a replay that recomputes the outputs in place."""
    monkeypatch.setattr(cuda_graphs, "DEVICE_TYPE", "cpu")
    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g, pool=None: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: ("pool",))
    real = GraphedForward._capture

    def capture(self: GraphedForward, flat: list[Any], spec: Any) -> tuple[Any, list[Any], Any]:
        from torch.utils import _pytree as pytree

        graph, static, out = real(self, flat, spec)

        def replay() -> None:
            a, k = pytree.tree_unflatten(static, spec)
            for dst, src in zip(pytree.tree_leaves(out), pytree.tree_leaves(self.fwd(*a, **k)), strict=True):
                dst.copy_(src)

        graph.replay_fn = replay
        return graph, static, out

    monkeypatch.setattr(GraphedForward, "_capture", capture)


class Net(torch.nn.Module):
    """Positional and keyword tensors, a float argument, and a (list, tensor) output like a ControlNet's."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.calls = 0

    def forward(self, x: Any, t: Any, *, cond: Any, scale: float = 1.0) -> Any:
        self.calls += 1
        h = self.conv(x) * scale + t + cond.mean()
        return [h, h * 2], h.sum()


def test_replays_match_eager_per_signature(fake_cuda: None) -> None:
    torch.manual_seed(0)
    net = Net()
    cache: dict[str, GraphedForward] = {}
    xs = [torch.randn(2, 3, 8, 8) for _ in range(3)]
    with torch.no_grad():
        eager = [net(x, torch.tensor(float(i)), cond=x[:, :1], scale=0.5) for i, x in enumerate(xs)]
        with cuda_graphed({"net": net}, cache):
            graphed = [net(x, torch.tensor(float(i)), cond=x[:, :1], scale=0.5) for i, x in enumerate(xs)]
            other = net(torch.randn(1, 3, 8, 8), torch.tensor(0.0), cond=xs[0][:1, :1], scale=0.5)  # new shape
            net(xs[0], torch.tensor(0.0), cond=xs[0][:, :1], scale=1.0)  # new non-tensor argument
    for (e_list, e_sum), (g_list, g_sum) in zip(eager, graphed, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(e_list, g_list, strict=True)) and torch.equal(e_sum, g_sum)
    assert len(cache["net"].graphs) == 3 and other[0][0].shape[0] == 1
    # the outputs are the caller's own tensors, not the graph's static buffers
    static_out = next(iter(cache["net"].graphs.values()))[2]
    assert all(g.data_ptr() != s.data_ptr() for g, s in zip(graphed[-1][0], static_out[0], strict=True))
    assert "forward" not in net.__dict__  # the module is restored after the block


def test_gradients_run_eagerly_and_hooks_are_restored(fake_cuda: None) -> None:
    net = Net()
    hooked = net.forward
    net.forward = hooked  # an instance-level forward (as accelerate's hooks install) survives the block
    cache: dict[str, GraphedForward] = {}
    x = torch.randn(1, 3, 8, 8)
    with cuda_graphed({"net": net}, cache):
        net(x, torch.tensor(0.0), cond=x)
    assert cache["net"].graphs == {}
    assert net.__dict__["forward"] is hooked


def test_replaced_weights_drop_the_graphs_and_the_count_is_capped(fake_cuda: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net()
    cache: dict[str, GraphedForward] = {}
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        with cuda_graphed({"net": net}, cache):
            net(x, torch.tensor(0.0), cond=x)
        net.conv.weight = torch.nn.Parameter(net.conv.weight.detach() + 1)  # replaced, not updated in place
        with cuda_graphed({"net": net}, cache):
            assert cache["net"].graphs == {}
            out = net(x, torch.tensor(0.0), cond=x)
        assert torch.equal(out[1], Net.forward(net, x, torch.tensor(0.0), cond=x)[1])
        cache["net"].max_graphs = 1
        with cuda_graphed({"net": net}, cache):
            net(torch.randn(3, 3, 8, 8), torch.tensor(0.0), cond=x)
        assert len(cache["net"].graphs) == 1


def test_a_failed_capture_warns_and_runs_eagerly(fake_cuda: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any) -> Any:
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(GraphedForward, "_capture", broken)
    net = Net()
    cache: dict[str, GraphedForward] = {}
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad(), cuda_graphed({"net": net}, cache):
        with pytest.warns(RuntimeWarning, match="running it eagerly"):
            out = net(x, torch.tensor(0.0), cond=x)
        again = net(x, torch.tensor(0.0), cond=x)
    assert torch.equal(out[1], again[1]) and cache["net"].failed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphed_generator_is_bit_identical_on_cuda(tmp_path: Path) -> None:
    import numpy as np

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.generate.base import create_generator
    from adcreative.generate.diffusers_tiny import build_tiny_sd_folders

    base, cn = build_tiny_sd_folders(tmp_path)
    product = sample_catalogue()[0]
    made = {}
    for graphs in (False, True):
        gen: Any = create_generator("diffusers-inpaint", base=str(base), controlnet=str(cn), steps=3,
                                    canvas_scale=0.25, device="cuda", batch_size=2)
        gen.cuda_graphs = graphs
        made[graphs] = [g.image for a in ("1:1", "4:5", "1:1") for g in gen(product, seed=4 * len(a), aspect=a, n=2)]
        assert bool(gen._graphs) == graphs
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(made[False], made[True], strict=True))
