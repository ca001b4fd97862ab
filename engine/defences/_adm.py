"""OpenAI guided-diffusion (ADM) UNet checkpoints as diffusers ``UNet2DModel``s.

DiffPure's ImageNet model is ADM's ``256x256_diffusion_uncond.pt`` (Dhariwal & Nichol
2021): a plain state dict of guided-diffusion's ``UNetModel``. This module reads such a
file, infers the architecture from the tensors (channels, levels, residual blocks per
level, where attention is, scale-shift norm, learned variance, up/down-sampling kind),
renames and reshapes every tensor onto diffusers' ``UNet2DModel`` and loads it strictly:
every key of the file is used and every shape is checked, so a foreign file is a
:class:`DefenceError`, never a half-loaded model.

ADM ↔ diffusers:

- ``input_blocks.k`` (ResBlock [+ attention], or a down-sampling ResBlock / strided
  conv) → ``down_blocks.i.{resnets,attentions,downsamplers}.j``; ``middle_block.0/1/2``
  → ``mid_block.resnets.0 / attentions.0 / resnets.1``; ``output_blocks.k`` →
  ``up_blocks.u.{resnets,attentions,upsamplers}.j``.
- ResBlock ``in_layers.0/2, emb_layers.1, out_layers.0/3, skip_connection`` →
  ``norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut``.
- Attention: ``norm`` → ``group_norm``; the 1×1 ``qkv`` conv → ``to_q/to_k/to_v``
  linear layers; ``proj_out`` → ``to_out.0``. The qkv rows are ordered per head
  (``[head, q|k|v, channel]``, ADM's ``QKVAttentionLegacy``, used by every released
  guided-diffusion model) or per q/k/v (``[q|k|v, head, channel]``,
  ``use_new_attention_order=True``); diffusers wants ``[head, channel]`` in each of
  q, k, v. The head count is not stored in the file: ``num_head_channels`` (64 for the
  released models) sets it.
- ``time_embed.0/2`` → ``time_embedding.linear_1/2`` (ADM's sinusoid is cos-then-sin
  with ``freq_shift`` 0: diffusers' ``flip_sin_to_cos=True``); ``input_blocks.0.0`` →
  ``conv_in``; ``out.0/2`` → ``conv_norm_out / conv_out``.

With ``learn_sigma`` the model has 6 output channels: ε, then the interpolation
coefficient of the log-variance (guided-diffusion's ``LEARNED_RANGE``; diffusers'
``DDPMScheduler(variance_type="learned_range")`` reads it the same way).

Example:
    >>> unet = load_adm_unet("256x256_diffusion_uncond.pt")     # doctest: +SKIP
    >>> unet.config.out_channels, unet.config.sample_size
    (6, 256)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.defences.base import DefenceError

ADM_UNCOND_256 = "256x256_diffusion_uncond.pt"
ADM_UNCOND_256_URL = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt"
ADM_GROUPS = 32  # guided-diffusion's normalization() is always GroupNorm(32, ·)


@dataclass(frozen=True)
class ADMConfig:
    """The architecture options of guided-diffusion's ``create_model`` that shape the UNet.

    ``attention_resolutions`` are in pixels (ADM's ``"32,16,8"``), as in its scripts.
    The defaults are the unconditional ImageNet 256×256 model DiffPure uses.
    """

    image_size: int = 256
    in_channels: int = 3
    num_channels: int = 256
    learn_sigma: bool = True
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    attention_resolutions: tuple[int, ...] = (32, 16, 8)
    num_head_channels: int = 64
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    use_new_attention_order: bool = False

    @property
    def out_channels(self) -> int:
        return self.in_channels * (2 if self.learn_sigma else 1)

    @property
    def channels(self) -> list[int]:
        """Channels of each level."""
        return [self.num_channels * m for m in self.channel_mult]

    @property
    def attention(self) -> list[bool]:
        """Whether each level has attention (ADM: down-sampling rate ds ∈ size // res)."""
        rates = {self.image_size // int(r) for r in self.attention_resolutions}
        return [2 ** i in rates for i in range(len(self.channel_mult))]


def adm_config(**overrides: Any) -> ADMConfig:
    """An :class:`ADMConfig`: the 256×256 unconditional model's options with ``overrides``.

    ``attention_resolutions`` may be ADM's string form (``"32,16,8"``).

    Example:
        >>> adm_config(image_size=32, num_channels=32, channel_mult=(1, 2)).channels
        [32, 64]
    """
    res = overrides.get("attention_resolutions")
    if isinstance(res, str):
        overrides["attention_resolutions"] = tuple(int(r) for r in res.split(",") if r.strip())
    if "channel_mult" in overrides:
        overrides["channel_mult"] = tuple(int(m) for m in overrides["channel_mult"])
    cfg = ADMConfig(**overrides)
    for c, attn in zip(cfg.channels, cfg.attention):
        if c % ADM_GROUPS:
            raise DefenceError(f"ADM: {c} channels are not divisible into {ADM_GROUPS} norm groups")
        if attn and c % cfg.num_head_channels:
            raise DefenceError(f"ADM: {c} attention channels are not a multiple of "
                               f"num_head_channels={cfg.num_head_channels}")
    if cfg.channels[-1] % cfg.num_head_channels:
        raise DefenceError(f"ADM: the middle block's {cfg.channels[-1]} channels are not a multiple of "
                           f"num_head_channels={cfg.num_head_channels}")
    return cfg


def diffusers_unet_config(cfg: ADMConfig) -> dict[str, Any]:
    """``UNet2DModel`` keyword arguments for the same network."""
    if cfg.channel_mult[0] != 1:
        # diffusers sizes the sinusoid by the first level's channels, ADM by num_channels
        raise DefenceError(f"ADM: channel_mult starting at {cfg.channel_mult[0]} (not 1) has no diffusers equivalent")
    plain_down = "ResnetDownsampleBlock2D" if cfg.resblock_updown else "DownBlock2D"
    plain_up = "ResnetUpsampleBlock2D" if cfg.resblock_updown else "UpBlock2D"
    attn = cfg.attention
    return {
        "sample_size": cfg.image_size,
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "layers_per_block": cfg.num_res_blocks,
        "block_out_channels": tuple(cfg.channels),
        "down_block_types": tuple("AttnDownBlock2D" if a else plain_down for a in attn),
        "up_block_types": tuple("AttnUpBlock2D" if a else plain_up for a in reversed(attn)),
        "downsample_type": "resnet" if cfg.resblock_updown else "conv",
        "upsample_type": "resnet" if cfg.resblock_updown else "conv",
        "downsample_padding": 1,
        "attention_head_dim": cfg.num_head_channels,
        "norm_num_groups": ADM_GROUPS,
        "attn_norm_num_groups": ADM_GROUPS,  # diffusers drops the mid-block norm with scale_shift otherwise
        "norm_eps": 1e-5,
        "resnet_time_scale_shift": "scale_shift" if cfg.use_scale_shift_norm else "default",
        "time_embedding_type": "positional",
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "act_fn": "silu",
        "add_attention": True,
        "mid_block_scale_factor": 1,
        "dropout": 0.0,
    }


class _Mapper:
    """Moves tensors from an ADM state dict to diffusers names, remembering what it used."""

    def __init__(self, sd: dict[str, torch.Tensor], cfg: ADMConfig) -> None:
        self.sd, self.cfg = sd, cfg
        self.used: set[str] = set()
        self.out: dict[str, torch.Tensor] = {}

    def take(self, key: str) -> torch.Tensor:
        if key not in self.sd:
            raise DefenceError(f"not a guided-diffusion (ADM) UNet of the inferred layout: no {key!r}")
        self.used.add(key)
        return self.sd[key]

    def copy(self, src: str, dst: str) -> None:
        for p in ("weight", "bias"):
            self.out[f"{dst}.{p}"] = self.take(f"{src}.{p}")

    def resblock(self, src: str, dst: str) -> None:
        for a, b in (("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("emb_layers.1", "time_emb_proj"),
                     ("out_layers.0", "norm2"), ("out_layers.3", "conv2")):
            self.copy(f"{src}.{a}", f"{dst}.{b}")
        if f"{src}.skip_connection.weight" in self.sd:
            self.copy(f"{src}.skip_connection", f"{dst}.conv_shortcut")

    def attention(self, src: str, dst: str) -> None:
        self.copy(f"{src}.norm", f"{dst}.group_norm")
        w = self.take(f"{src}.qkv.weight")
        b = self.take(f"{src}.qkv.bias")
        c = w.shape[1]
        hc = self.cfg.num_head_channels
        if w.shape != (3 * c, c, 1) or c % hc:
            raise DefenceError(f"ADM: {src}.qkv has shape {tuple(w.shape)}; expected (3·C, C, 1) with C a "
                               f"multiple of num_head_channels={hc}")
        heads = c // hc
        # rows of the 1x1 conv, as ADM splits them into heads and q/k/v
        order = (3, heads, hc) if self.cfg.use_new_attention_order else (heads, 3, hc)
        w = w[:, :, 0].reshape(*order, c)
        b = b.reshape(*order)
        for i, name in enumerate(("to_q", "to_k", "to_v")):
            wi = w[i] if self.cfg.use_new_attention_order else w[:, i]
            bi = b[i] if self.cfg.use_new_attention_order else b[:, i]
            self.out[f"{dst}.{name}.weight"] = wi.reshape(c, c).contiguous()
            self.out[f"{dst}.{name}.bias"] = bi.reshape(c).contiguous()
        pw = self.take(f"{src}.proj_out.weight")
        self.out[f"{dst}.to_out.0.weight"] = pw.reshape(pw.shape[0], -1)
        self.out[f"{dst}.to_out.0.bias"] = self.take(f"{src}.proj_out.bias")

    def resample(self, src: str, dst: str, conv_name: str) -> None:
        if self.cfg.resblock_updown:
            self.resblock(src, dst)
        else:
            self.copy(f"{src}.{conv_name}", f"{dst}.conv")


def convert_adm_state_dict(sd: dict[str, torch.Tensor], cfg: ADMConfig) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Map an ADM UNet state dict onto ``UNet2DModel``.

    Args:
        sd: guided-diffusion ``UNetModel.state_dict()``.
        cfg: its architecture (see :func:`infer_adm_config`).

    Returns:
        (``UNet2DModel`` config dict, diffusers state dict).

    Raises:
        DefenceError: a key the layout needs is absent, or the file has keys it does not use.
    """
    if "label_emb.weight" in sd:
        raise DefenceError("ADM: class-conditional checkpoints need a class label; use the unconditional "
                           f"{ADM_UNCOND_256}")
    m = _Mapper(sd, cfg)
    m.copy("time_embed.0", "time_embedding.linear_1")
    m.copy("time_embed.2", "time_embedding.linear_2")
    m.copy("input_blocks.0.0", "conv_in")
    n, levels, attn = cfg.num_res_blocks, len(cfg.channel_mult), cfg.attention
    k = 1
    for i in range(levels):
        for j in range(n):
            m.resblock(f"input_blocks.{k}.0", f"down_blocks.{i}.resnets.{j}")
            if attn[i]:
                m.attention(f"input_blocks.{k}.1", f"down_blocks.{i}.attentions.{j}")
            k += 1
        if i != levels - 1:
            m.resample(f"input_blocks.{k}.0", f"down_blocks.{i}.downsamplers.0", "op")
            k += 1
    m.resblock("middle_block.0", "mid_block.resnets.0")
    m.attention("middle_block.1", "mid_block.attentions.0")
    m.resblock("middle_block.2", "mid_block.resnets.1")
    k = 0
    for u in range(levels):
        i = levels - 1 - u
        for j in range(n + 1):
            m.resblock(f"output_blocks.{k}.0", f"up_blocks.{u}.resnets.{j}")
            if attn[i]:
                m.attention(f"output_blocks.{k}.1", f"up_blocks.{u}.attentions.{j}")
            if j == n and i > 0:
                m.resample(f"output_blocks.{k}.{2 if attn[i] else 1}", f"up_blocks.{u}.upsamplers.0", "conv")
            k += 1
    m.copy("out.0", "conv_norm_out")
    m.copy("out.2", "conv_out")
    unused = sorted(set(sd) - m.used)
    if unused:
        more = f" (+{len(unused) - 5} more)" if len(unused) > 5 else ""
        raise DefenceError(f"ADM: the file has keys the inferred UNet does not use: {unused[:5]}{more}")
    return diffusers_unet_config(cfg), m.out


def _indices(sd: dict[str, torch.Tensor], prefix: str) -> int:
    found = [int(k.split(".")[1]) for k in sd if k.startswith(prefix + ".") and k.split(".")[1].isdigit()]
    return max(found) + 1 if found else 0


def infer_adm_config(sd: dict[str, torch.Tensor], *, image_size: int = 256, num_head_channels: int = 64,
                     use_new_attention_order: bool = False) -> ADMConfig:
    """Read an ADM UNet's architecture off its state dict.

    The image size, head width and attention order are not stored in the tensors and
    come from the arguments (the released models: 64 channels per head, legacy order).

    Raises:
        DefenceError: the dict is not an ADM UNet.
    """
    need = ("time_embed.0.weight", "input_blocks.0.0.weight", "out.2.weight", "middle_block.1.qkv.weight")
    absent = [k for k in need if k not in sd]
    if absent:
        raise DefenceError(f"not a guided-diffusion (ADM) UNet checkpoint: no {', '.join(absent)}")
    try:
        num_channels = int(sd["time_embed.0.weight"].shape[1])
        in_channels = int(sd["input_blocks.0.0.weight"].shape[1])
        out_channels = int(sd["out.2.weight"].shape[0])
        n_in, n_out = _indices(sd, "input_blocks"), _indices(sd, "output_blocks")
        # an output block that ends a level carries its up-sampler as an extra child
        ups = [k for k in range(n_out)
               if f"output_blocks.{k}.2.in_layers.0.weight" in sd or f"output_blocks.{k}.2.conv.weight" in sd
               or f"output_blocks.{k}.1.conv.weight" in sd
               or (f"output_blocks.{k}.1.in_layers.0.weight" in sd and f"output_blocks.{k}.1.qkv.weight" not in sd)]
        per_level = ups[0] + 1 if ups else n_out
        n = per_level - 1
        levels = n_out // per_level if per_level else 0
        if n < 1 or levels < 1 or n_out != levels * per_level or n_in != levels * per_level:
            raise DefenceError(f"ADM: {n_in} input / {n_out} output blocks fit no UNet layout")
        first = [1 + i * per_level for i in range(levels)]
        chans = [int(sd[f"input_blocks.{k}.0.out_layers.3.weight"].shape[0]) for k in first]
        if any(c % num_channels for c in chans):
            raise DefenceError(f"ADM: level channels {chans} are not multiples of {num_channels}")
        attn = [f"input_blocks.{k}.1.qkv.weight" in sd for k in first]
        updown = levels > 1 and f"input_blocks.{per_level}.0.in_layers.0.weight" in sd
        scale_shift = int(sd["input_blocks.1.0.emb_layers.1.weight"].shape[0]) == 2 * chans[0]
    except KeyError as exc:
        raise DefenceError(f"not a guided-diffusion (ADM) UNet checkpoint: no {exc.args[0]!r}") from None
    if out_channels not in (in_channels, 2 * in_channels):
        raise DefenceError(f"ADM: {out_channels} output channels for {in_channels} input channels "
                           "(expected ε, or ε and the variance)")
    return adm_config(
        image_size=image_size, in_channels=in_channels, num_channels=num_channels,
        learn_sigma=out_channels == 2 * in_channels, num_res_blocks=n,
        channel_mult=tuple(c // num_channels for c in chans),
        attention_resolutions=tuple(image_size // 2 ** i for i, a in enumerate(attn) if a),
        num_head_channels=num_head_channels, use_scale_shift_norm=scale_shift,
        resblock_updown=updown, use_new_attention_order=use_new_attention_order)


def image_size_from_name(path: str | Path, default: int = 256) -> int:
    """OpenAI names its checkpoints ``{N}x{N}_diffusion*.pt``; N is the training size."""
    hit = re.match(r"(\d+)x(\d+)_", Path(path).name)
    return int(hit.group(1)) if hit and hit.group(1) == hit.group(2) else default


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pt`` file (a plain state dict, or one under a ``state_dict`` key)."""
    from engine.metrics.base import MetricError
    from engine.metrics.weights import read_checkpoint

    try:
        obj = read_checkpoint(path)
    except MetricError as exc:
        raise DefenceError(str(exc)) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DefenceError(f"{path} is not a state dict of tensors")
    return obj


def load_adm_unet(source: str | Path | dict[str, torch.Tensor], *, image_size: int | None = None,
                  num_head_channels: int = 64, use_new_attention_order: bool = False) -> Any:
    """Build a diffusers ``UNet2DModel`` (float32, CPU, eval) from an ADM checkpoint.

    Args:
        source: the ``.pt`` file or its state dict.
        image_size: the training size (sets ``sample_size``); default from the file name
            (``256x256_…`` → 256), else 256.
        num_head_channels: channels per attention head (64 in the released models).
        use_new_attention_order: the checkpoint was trained with ADM's
            ``use_new_attention_order=True`` (not the released models).

    Raises:
        DefenceError: unreadable file, not an ADM UNet, or a tensor of the wrong shape.
    """
    from diffusers import UNet2DModel

    where = "the state dict" if isinstance(source, dict) else str(source)
    sd = source if isinstance(source, dict) else read_state_dict(source)
    if image_size is None:
        image_size = 256 if isinstance(source, dict) else image_size_from_name(source)
    try:
        cfg = infer_adm_config(sd, image_size=image_size, num_head_channels=num_head_channels,
                               use_new_attention_order=use_new_attention_order)
        unet_cfg, new_sd = convert_adm_state_dict(sd, cfg)
    except DefenceError as exc:
        raise DefenceError(f"{where}: {exc}") from None
    with torch.device("meta"):  # no time or memory spent on weights that get replaced
        unet = UNet2DModel(**unet_cfg)
    expected = unet.state_dict()
    missing = sorted(set(expected) - set(new_sd))
    extra = sorted(set(new_sd) - set(expected))
    wrong = [f"{k} {tuple(new_sd[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in new_sd and new_sd[k].shape != v.shape]
    if missing or extra or wrong:
        detail = "; ".join(f"{what}: {items[:3]}" for what, items in
                           (("missing", missing), ("unexpected", extra), ("shape", wrong)) if items)
        raise DefenceError(f"{where}: ADM tensors do not fit the inferred UNet ({detail})")
    unet.load_state_dict({k: v.float() for k, v in new_sd.items()}, strict=True, assign=True)
    return unet.eval().requires_grad_(False)
