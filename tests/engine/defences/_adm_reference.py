"""A small, independent ADM (guided-diffusion) UNet forward pass for the converter's tests.

Written from the architecture, not from diffusers: its module names give exactly ADM's
state-dict layout (``input_blocks.N.0.in_layers.0``, ``time_embed.0``, ``middle_block.1.qkv``,
``output_blocks.N.2.out_layers.3``, ``out.2`` …), so its state dict is what an OpenAI
checkpoint of the same options holds, and its output is what ADM computes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """ADM's timestep features: cos of every frequency, then sin (10000^(−i/half))."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angle = t.float()[:, None] * freq[None]
    return torch.cat([angle.cos(), angle.sin()], dim=1)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, c)


class Res(nn.Module):
    """Residual block; ``resample`` "down"/"up" makes it ADM's resampling ResBlock."""

    def __init__(self, cin: int, cout: int, emb: int, scale_shift: bool, resample: str | None = None) -> None:
        super().__init__()
        self.scale_shift, self.resample = scale_shift, resample
        self.in_layers = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout * (2 if scale_shift else 1)))
        self.out_layers = nn.Sequential(_norm(cout), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers[1](self.in_layers[0](x))
        h = self.in_layers[2](self._resample(h))
        x = self._resample(x)
        e = self.emb_layers(emb)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1.0 + scale) + shift
            for layer in self.out_layers[1:]:
                h = layer(h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class Attn(nn.Module):
    """Self-attention over pixels; ``new_order`` picks how the qkv rows split into heads."""

    def __init__(self, c: int, head_channels: int, new_order: bool) -> None:
        super().__init__()
        self.heads, self.hc, self.new_order = c // head_channels, head_channels, new_order
        self.norm = _norm(c)
        self.qkv = nn.Conv1d(c, 3 * c, 1)
        self.proj_out = nn.Conv1d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        flat = x.reshape(b, c, hh * ww)
        qkv = self.qkv(self.norm(flat))
        n = hh * ww
        if self.new_order:  # rows: [q|k|v][head][channel]
            q, k, v = (part.reshape(b * self.heads, self.hc, n) for part in qkv.chunk(3, dim=1))
        else:  # rows: [head][q|k|v][channel]
            q, k, v = qkv.reshape(b * self.heads, 3 * self.hc, n).split(self.hc, dim=1)
        weights = torch.softmax(torch.einsum("zct,zcs->zts", q, k) / math.sqrt(self.hc), dim=-1)
        mixed = torch.einsum("zts,zcs->zct", weights, v).reshape(b, c, n)
        return (flat + self.proj_out(mixed)).reshape(b, c, hh, ww)


class Step(nn.Sequential):
    """A sequence of layers; residual blocks also get the timestep embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, Res) else layer(x)
        return x


class Upsample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ReferenceADM(nn.Module):
    """ADM's UNetModel (unconditional, 2-D) for the options of an :class:`ADMConfig`."""

    def __init__(self, cfg) -> None:
        super().__init__()
        mc, emb = cfg.num_channels, 4 * cfg.num_channels
        ss, hc, new = cfg.use_scale_shift_norm, cfg.num_head_channels, cfg.use_new_attention_order
        self.model_channels = mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = cfg.channels[0]
        self.input_blocks = nn.ModuleList([Step(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        skips = [ch]
        last = len(cfg.channel_mult) - 1
        for level, (c, attn) in enumerate(zip(cfg.channels, cfg.attention)):
            for _ in range(cfg.num_res_blocks):
                layers = [Res(ch, c, emb, ss)] + ([Attn(c, hc, new)] if attn else [])
                ch = c
                self.input_blocks.append(Step(*layers))
                skips.append(ch)
            if level != last:
                self.input_blocks.append(Step(Res(ch, ch, emb, ss, "down") if cfg.resblock_updown else Downsample(ch)))
                skips.append(ch)
        self.middle_block = Step(Res(ch, ch, emb, ss), Attn(ch, hc, new), Res(ch, ch, emb, ss))
        self.output_blocks = nn.ModuleList()
        for level in range(last, -1, -1):
            c, attn = cfg.channels[level], cfg.attention[level]
            for i in range(cfg.num_res_blocks + 1):
                layers = [Res(ch + skips.pop(), c, emb, ss)] + ([Attn(c, hc, new)] if attn else [])
                ch = c
                if level and i == cfg.num_res_blocks:
                    layers.append(Res(ch, ch, emb, ss, "up") if cfg.resblock_updown else Upsample(ch))
                self.output_blocks.append(Step(*layers))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, cfg.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(sinusoid(t, self.model_channels))
        kept = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb)
            kept.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, kept.pop()], dim=1), emb)
        return self.out(h)


@torch.no_grad()
def randomise(net: nn.Module, seed: int, spread: float = 0.1) -> nn.Module:
    """Move every parameter away from its initial value (ADM zero-initialises the last conv
    of each block and ``proj_out``; norms start at 1/0), so no tensor is left untested."""
    g = torch.Generator().manual_seed(seed)
    for name, p in net.named_parameters():
        noise = torch.randn(p.shape, generator=g)
        if "norm" in name or (p.dim() == 1 and name.endswith("weight")):
            p.copy_((1.0 if name.endswith("weight") else 0.0) + spread * noise)
        else:
            fan_in = p[0].numel() if p.dim() > 1 else p.shape[0]
            p.copy_(noise / math.sqrt(fan_in))
    return net.eval()
