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
    return build_random_sd_folders(root, arch="tiny", seed=seed, in_channels=in_channels,
                                   randomize_zero_convs=randomize_zero_convs)


def random_sd_modules(arch: str = "tiny", *, seed: int = 0, in_channels: int = 9, randomize_zero_convs: bool = True,
                      vocab_size: int = 49408, device: str = "cpu") -> dict[str, Any]:
    """Random ``unet``, ``controlnet``, ``vae`` and ``text_encoder`` in the ``arch`` architectures (float32).

    ``arch="tiny"``: a few hundred thousand parameters (tests). ``arch="sd15"``: Stable Diffusion 1.5's exact
    architectures (inpainting UNet 859.5 M parameters, canny ControlNet 361.3 M, VAE 83.7 M, CLIP ViT-L text
    encoder 123.1 M), what a benchmark needs to measure memory and speed of the real code paths without the real
    weights. ``vocab_size``: the text encoder's (the tokenizer's length for the tiny one); ``device``: where the
    modules are initialised (on a GPU, in seconds)."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if arch not in ("tiny", "sd15"):
        raise ValueError(f"arch must be 'tiny' or 'sd15', got {arch!r}")
    torch.manual_seed(seed)
    # Built in the order the tiny test weights always were (UNet, ControlNet, its zero convolutions, VAE, text
    # encoder), so the same seed gives the same weights as before this function took ``arch``.
    with torch.device(device):
        if arch == "tiny":
            unet = UNet2DConditionModel(
                block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=in_channels,
                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=8,
                attention_head_dim=4,
            )
            controlnet: Any = ControlNetModel(
                block_out_channels=(32, 64), layers_per_block=2, in_channels=4,
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=32,
                conditioning_embedding_out_channels=(16, 32), norm_num_groups=8, attention_head_dim=4,
            )
        else:  # diffusers' defaults are SD 1.x's UNet and ControlNet
            unet = UNet2DConditionModel(sample_size=64, in_channels=in_channels, cross_attention_dim=768)
            controlnet = ControlNetModel(in_channels=4, cross_attention_dim=768)
        if randomize_zero_convs:
            # A trained ControlNet's zero convolutions are no longer zero; random ones make the control
            # image actually steer the UNet, as it does with real weights.
            with torch.no_grad():
                for m in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                          controlnet.controlnet_cond_embedding.conv_out]:
                    torch.nn.init.normal_(m.weight, std=0.02)
        if arch == "tiny":
            vae = AutoencoderKL(
                block_out_channels=(32, 64), in_channels=3, out_channels=3,
                down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, norm_num_groups=8,
            )
            text_config = CLIPTextConfig(
                bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size,
                projection_dim=32,
            )
        else:  # SD 1.5's VAE and CLIP ViT-L/14 text encoder
            vae = AutoencoderKL(
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=512,
            )
            text_config = CLIPTextConfig(
                bos_token_id=0, eos_token_id=1, pad_token_id=1, vocab_size=vocab_size, hidden_size=768,
                intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                hidden_act="quick_gelu", projection_dim=768,
            )
        text_encoder = CLIPTextModel(text_config)
    return {"unet": unet, "controlnet": controlnet, "vae": vae, "text_encoder": text_encoder}


def build_random_sd_folders(root: str | Path, *, arch: str = "tiny", seed: int = 0, in_channels: int = 9,
                            randomize_zero_convs: bool = True, dtype: str = "float32",
                            device: str = "cpu") -> tuple[Path, Path]:
    """:func:`random_sd_modules` saved as local folders (``root/base``, ``root/controlnet``), as downloaded weights
    are laid out, with the tiny byte-level tokenizer. ``dtype`` is the saved precision ("float16" halves the files;
    loading casts). Returns ``(base_dir, controlnet_dir)``."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionControlNetInpaintPipeline
    from transformers import CLIPTokenizer

    root = Path(root)
    tok_dir = write_tiny_clip_tokenizer(root / "_tokenizer_src")
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir))
    mods = random_sd_modules(arch, seed=seed, in_channels=in_channels, randomize_zero_convs=randomize_zero_convs,
                             vocab_size=len(tokenizer) if arch == "tiny" else 49408, device=device)
    unet, controlnet, vae, text_encoder = mods["unet"], mods["controlnet"], mods["vae"], mods["text_encoder"]
    if dtype != "float32":
        half = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
        for m in mods.values():
            m.to(half)  # nn.Module.to casts in place
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
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


# -- the same weights as one original-layout (A1111/civitai) checkpoint file ------------------------------------
_RESNET_TO_LDM = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                  ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_VAE_ATTN_TO_LDM = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                    ("to_out.0.", "proj_out."))


def _unet_key_to_ldm(key: str, layers: int, up_attention: list[bool]) -> str:
    """A diffusers UNet2DConditionModel key → its key in the original LDM ``model.diffusion_model``."""
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    parts = key.split(".")
    head = ".".join(parts[:2]) if parts[0] == "time_embedding" else parts[0]
    if head in fixed:
        return key.replace(head, fixed[head], 1)

    def resnet(rest: str) -> str:
        for new, old in _RESNET_TO_LDM:
            rest = rest.replace(new, old, 1) if rest.startswith(new) else rest
        return rest

    if parts[0] == "down_blocks":
        b, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "downsamplers":  # down_blocks.b.downsamplers.0.conv.w → input_blocks.N.0.op.w
            return f"input_blocks.{(b + 1) * (layers + 1)}.0.op.{'.'.join(parts[5:])}"
        n = 1 + b * (layers + 1) + j
        return f"input_blocks.{n}.0.{resnet(rest)}" if kind == "resnets" else f"input_blocks.{n}.1.{rest}"
    if parts[0] == "mid_block":
        kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        return f"middle_block.{2 * j}.{resnet(rest)}" if kind == "resnets" else f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        b, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "upsamplers":
            slot = 2 if up_attention[b] else 1
            return f"output_blocks.{b * (layers + 1) + layers}.{slot}.{'.'.join(parts[4:])}"
        n = b * (layers + 1) + j
        return f"output_blocks.{n}.0.{resnet(rest)}" if kind == "resnets" else f"output_blocks.{n}.1.{rest}"
    raise ValueError(f"no LDM name for UNet key {key!r}")


def _vae_key_to_ldm(key: str, n_up: int) -> str:
    fixed = {"encoder.conv_norm_out": "encoder.norm_out", "decoder.conv_norm_out": "decoder.norm_out"}
    for new, old in fixed.items():
        if key.startswith(new + "."):
            return key.replace(new, old, 1)
    parts = key.split(".")
    side = parts[0]
    if parts[1] == "down_blocks":
        i, kind = int(parts[2]), parts[3]
        if kind == "downsamplers":
            return f"{side}.down.{i}.downsample.{'.'.join(parts[5:])}"
        return f"{side}.down.{i}.block.{parts[4]}." + ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
    if parts[1] == "up_blocks":
        i, kind = n_up - 1 - int(parts[2]), parts[3]
        if kind == "upsamplers":
            return f"{side}.up.{i}.upsample.{'.'.join(parts[5:])}"
        return f"{side}.up.{i}.block.{parts[4]}." + ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
    if parts[1] == "mid_block":
        if parts[2] == "resnets":
            rest = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(parts[3]) + 1}.{rest}"
        rest = ".".join(parts[4:]) + "."
        for new, old in _VAE_ATTN_TO_LDM:
            rest = rest.replace(new, old, 1) if rest.startswith(new) else rest
        return f"{side}.mid.attn_1.{rest[:-1]}"
    return key  # conv_in, conv_out, quant_conv, post_quant_conv keep their names


def save_single_file(base: str | Path, path: str | Path) -> Path:
    """Write the UNet, VAE and CLIP text encoder of a diffusers SD 1.x folder as ONE safetensors file in the
    original LDM layout (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``),
    as A1111/civitai checkpoints are distributed: what ``from_single_file`` reads. Returns the file."""
    from safetensors.torch import load_file, save_file

    base = Path(base)

    def weights(comp: str) -> dict[str, Any]:
        return load_file(str(next(f for f in sorted((base / comp).glob("*.safetensors")) if f.name.count(".") == 1)))

    unet_cfg = json.loads((base / "unet" / "config.json").read_text())
    vae_cfg = json.loads((base / "vae" / "config.json").read_text())
    up_attention = ["CrossAttn" in t for t in unet_cfg["up_block_types"]]
    out: dict[str, Any] = {}
    for k, v in weights("unet").items():
        out["model.diffusion_model." + _unet_key_to_ldm(k, unet_cfg["layers_per_block"], up_attention)] = v
    for k, v in weights("vae").items():
        ldm = _vae_key_to_ldm(k, len(vae_cfg["up_block_types"]))
        if ".mid.attn_1." in ldm and v.dim() == 2:  # LDM's VAE attention projections are 1×1 convolutions
            v = v[:, :, None, None]
        out["first_stage_model." + ldm] = v
    for k, v in weights("text_encoder").items():  # transformers ≥ 5.6 saves CLIPTextModel without "text_model."
        out["cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k)] = v
    p = Path(path)
    save_file({k: v.contiguous() for k, v in out.items()}, str(p))
    return p
