"""Tiny random Stable Diffusion + ControlNet folders, laid out exactly like real local weights.

They are NOT a model: random weights produce noise. They exist so the real loading, inpainting and RFFT
code paths run end to end on a CPU in well under a second (tests, CI, smoke runs of the commands) on a
machine that cannot reach a model hub. The CLIP tokenizer is built from a byte-level BPE vocabulary
written here, since no hub tokenizer can be downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Byte-level BPE alphabet of CLIP (GPT-2's bytes_to_unicode), so any text tokenizes.
_BPE_BYTES = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))


def _byte_alphabet() -> list[str]:
    bs = list(_BPE_BYTES)
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tiny_clip_tokenizer(directory: str | Path, *, extra_merges: tuple[str, ...] = ("p r", "pr o", "o d",
                                                                                          "u c", "c t</w>")) -> Path:
    """Write vocab.json + merges.txt + tokenizer config for a ``CLIPTokenizer``: the byte alphabet, its
    end-of-word forms, a few merges and the special tokens. Returns the folder."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_alphabet()
    vocab_list = ["<|startoftext|>", "<|endoftext|>", *alphabet, *[a + "</w>" for a in alphabet]]
    for m in extra_merges:
        merged = m.replace(" ", "")  # "c t</w>" → "ct</w>"
        if merged not in vocab_list:
            vocab_list.append(merged)
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    (d / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(extra_merges) + "\n", encoding="utf-8")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }))
    return d


def build_tiny_sd_folders(root: str | Path, *, seed: int = 0, in_channels: int = 9,
                          randomize_zero_convs: bool = True) -> tuple[Path, Path]:
    """Save a tiny random SD inpainting pipeline to ``root/base`` and a tiny canny-style ControlNet to
    ``root/controlnet`` (diffusers layouts, safetensors). ``in_channels`` 9 = an inpainting UNet,
    4 = a plain text-to-image UNet. Returns ``(base_dir, controlnet_dir)``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        StableDiffusionControlNetInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = Path(root)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=in_channels, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=8,
        attention_head_dim=4,
    )
    controlnet: Any = ControlNetModel(
        block_out_channels=(32, 64), layers_per_block=2, in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=32,
        conditioning_embedding_out_channels=(16, 32), norm_num_groups=8, attention_head_dim=4,
    )
    if randomize_zero_convs:
        # A trained ControlNet's zero convolutions are no longer zero; random ones make the control
        # image actually steer the tiny UNet, as it does with real weights.
        with torch.no_grad():
            for m in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
                torch.nn.init.normal_(m.weight, std=0.02)
    vae = AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, norm_num_groups=8,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    tok_dir = write_tiny_clip_tokenizer(root / "_tokenizer_src")
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
        projection_dim=32,
    ))
    pipe: Any = StableDiffusionControlNetInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, controlnet=controlnet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False,
    )
    base = root / "base"
    cn = root / "controlnet"
    # The base folder holds only the SD components (as a downloaded SD 1.5 inpainting snapshot would);
    # the ControlNet lives in its own folder.
    pipe.save_pretrained(str(base), safe_serialization=True)
    import shutil

    shutil.rmtree(base / "controlnet", ignore_errors=True)
    index = json.loads((base / "model_index.json").read_text())
    index.pop("controlnet", None)
    index["_class_name"] = "StableDiffusionInpaintPipeline"
    (base / "model_index.json").write_text(json.dumps(index, indent=2))
    controlnet.save_pretrained(str(cn), safe_serialization=True)
    shutil.rmtree(tok_dir, ignore_errors=True)
    return base, cn
