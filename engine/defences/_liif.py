"""Local implicit image function (LIIF) with the encoders DISCO uses.

A LIIF (Chen et al., "Learning Continuous Image Representation with Local Implicit Image
Function", CVPR 2021) encodes an image into a feature map of the same size (EDSR or RDN
without its upsampler) and decodes any continuous coordinate with a small MLP ("imnet")
that sees the nearest feature vector (optionally its k×k neighbourhood: *feature
unfolding*), the query's offset from that feature's centre, and optionally the size of
the queried pixel (*cell decoding*). With *local ensemble* the four features around the
query are decoded and blended, each weighted by the area of the rectangle between the
query and the diagonally opposite feature.

DISCO (Ho & Vasconcelos, NeurIPS 2022) trains exactly this model to map adversarial
images to clean ones, so the modules here keep the parameter names of the LIIF/DISCO
code (``encoder.head.0.weight``, ``encoder.body.3.body.2.bias``, ``imnet.layers.4.weight``,
...) and load their state dicts strictly. Coordinates follow LIIF: ``(row, col)`` of pixel
centres in [-1, 1]; the decoder's input is ``[features, rel_row, rel_col, cell_h, cell_w]``
with offsets and cell measured in feature cells.

The query gathers the k×k neighbourhoods per query point instead of unfolding the whole
feature map first (which needs k² times the feature memory); the result is the same.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class SpecError(ValueError):
    """A model spec or state dict that does not describe a supported LIIF."""


# --- encoders ----------------------------------------------------------------------------

class _ResBlock(nn.Module):
    def __init__(self, feats: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(feats, feats, 3, padding=1), nn.ReLU(True),
                                  nn.Conv2d(feats, feats, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class EDSREncoder(nn.Module):
    """EDSR (Lim et al., 2017) without the upsampler: head conv, residual blocks, a conv,
    a global skip. ``out_dim = n_feats``.

    ``sub_mean``/``add_mean`` exist only because the LIIF/DISCO state dicts hold them (EDSR's
    mean-shift layers); as in LIIF, the encoder does not apply them.
    """

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.sub_mean = nn.Conv2d(3, 3, 1)
        self.add_mean = nn.Conv2d(3, 3, 1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1))
        self.body = nn.Sequential(*[_ResBlock(n_feats, res_scale) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.out_dim = n_feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return x + self.body(x)


class _RDBConv(nn.Module):
    def __init__(self, cin: int, grow: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, grow, k, padding=k // 2), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(x)], 1)


class _RDB(nn.Module):
    def __init__(self, g0: int, grow: int, n_convs: int, k: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[_RDBConv(g0 + i * grow, grow, k) for i in range(n_convs)])
        self.LFF = nn.Conv2d(g0 + n_convs * grow, g0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.LFF(self.convs(x))


#: RDN's named configurations: (blocks D, convs per block C, growth G)
RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}


class RDNEncoder(nn.Module):
    """RDN (Zhang et al., 2018) without the upsampler. ``out_dim = G0``."""

    def __init__(self, G0: int = 64, D: int = 16, C: int = 8, G: int = 64, k: int = 3) -> None:
        super().__init__()
        self.SFENet1 = nn.Conv2d(3, G0, k, padding=k // 2)
        self.SFENet2 = nn.Conv2d(G0, G0, k, padding=k // 2)
        self.RDBs = nn.ModuleList([_RDB(G0, G, C, k) for _ in range(D)])
        self.GFF = nn.Sequential(nn.Conv2d(D * G0, G0, 1), nn.Conv2d(G0, G0, k, padding=k // 2))
        self.out_dim = G0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.SFENet1(x)
        h = self.SFENet2(shallow)
        outs = []
        for block in self.RDBs:
            h = block(h)
            outs.append(h)
        return self.GFF(torch.cat(outs, 1)) + shallow


class MLP(nn.Module):
    """Linear → ReLU → ... → Linear on the last dimension (LIIF's ``mlp``)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_list: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden_list:
            layers += [nn.Linear(last, width), nn.ReLU()]
            last = width
        layers.append(nn.Linear(last, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# --- the implicit function -------------------------------------------------------------

def pixel_centres(h: int, w: int, device: Any = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """LIIF's coordinates of an ``h×w`` grid's pixel centres, ``(h·w, 2)`` as (row, col)
    in [-1, 1], row-major."""
    rows = -1 + (2 * torch.arange(h, device=device, dtype=dtype) + 1) / h
    cols = -1 + (2 * torch.arange(w, device=device, dtype=dtype) + 1) / w
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)


class LIIF(nn.Module):
    """Encoder + implicit decoder.

    Args:
        encoder: a module mapping :math:`(B, 3, H, W)` to :math:`(B, C, H, W)` with ``out_dim = C``.
        imnet_hidden: hidden widths of the decoder MLP.
        out_dim: decoder outputs (3: RGB).
        local_ensemble, feat_unfold, cell_decode: LIIF's three options.
        unfold_kernel: neighbourhood size k of feature unfolding (LIIF 3; DISCO also 5, 7).

    Example:
        >>> net = LIIF(EDSREncoder(2, 8), [16, 16])
        >>> net.render(torch.rand(1, 3, 24, 32)).shape
        torch.Size([1, 3, 24, 32])
    """

    def __init__(self, encoder: nn.Module, imnet_hidden: list[int], out_dim: int = 3, *,
                 local_ensemble: bool = True, feat_unfold: bool = True, cell_decode: bool = True,
                 unfold_kernel: int = 3) -> None:
        super().__init__()
        if unfold_kernel < 1 or unfold_kernel % 2 == 0:
            raise SpecError(f"feature unfolding needs an odd kernel, got {unfold_kernel}")
        self.encoder = encoder
        self.local_ensemble = local_ensemble
        self.feat_unfold = feat_unfold
        self.cell_decode = cell_decode
        self.unfold_kernel = unfold_kernel if feat_unfold else 1
        in_dim = encoder.out_dim * self.unfold_kernel ** 2 + 2 + (2 if cell_decode else 0)
        self.imnet = MLP(in_dim, out_dim, list(imnet_hidden))

    def query(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the feature map at continuous coordinates.

        Args:
            feat: :math:`(B, C, h, w)` encoder features.
            coord: :math:`(B, Q, 2)` query points (row, col) in [-1, 1].
            cell: :math:`(B, Q, 2)` size of each queried pixel in the same units (needed
                with cell decoding).

        Returns:
            :math:`(B, Q, out)` decoder output (for DISCO: RGB normalised to [-1, 1]).
        """
        b, c, h, w = feat.shape
        if self.cell_decode and cell is None:
            raise ValueError("this LIIF decodes the cell size: pass `cell`")
        k = self.unfold_kernel
        pad = k // 2
        padded = F.pad(feat, (pad, pad, pad, pad)).flatten(2)  # (B, C, (h+2p)(w+2p))
        pw = w + 2 * pad
        # flat offsets of the k×k window from its top-left corner, in F.unfold's order
        dy, dx = torch.meshgrid(torch.arange(k, device=feat.device), torch.arange(k, device=feat.device),
                                indexing="ij")
        window = (dy * pw + dx).reshape(-1)
        size = coord.new_tensor([h, w])
        if self.local_ensemble:
            shifts, eps = [(-1, -1), (-1, 1), (1, -1), (1, 1)], 1e-6
        else:
            shifts, eps = [(0, 0)], 0.0
        preds, areas = [], []
        for sy, sx in shifts:
            # step half a feature cell towards the corner; eps breaks ties at cell borders
            shifted = coord + coord.new_tensor([sy / h + eps, sx / w + eps])
            shifted = shifted.clamp(-1 + 1e-6, 1 - 1e-6)
            idx = torch.minimum(((shifted + 1) / 2 * size).floor(), size - 1).long()  # (B, Q, 2)
            centre = -1 + (2 * idx.to(coord.dtype) + 1) / size
            rel = (coord - centre) * size
            flat = (idx[..., 0] * pw + idx[..., 1]).unsqueeze(-1) + window  # (B, Q, k²) top-left = (iy, ix)
            q_feat = torch.stack([padded[i].index_select(1, flat[i].reshape(-1)) for i in range(b)])
            q_feat = q_feat.view(b, c, -1, k * k).permute(0, 2, 1, 3).reshape(b, -1, c * k * k)
            parts = [q_feat, rel]
            if self.cell_decode:
                parts.append(cell * size)
            preds.append(self.imnet(torch.cat(parts, -1)))
            areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
        total = torch.stack(areas).sum(0)
        if self.local_ensemble:
            areas = areas[::-1]  # each corner is weighted by the area opposite it
        return sum(p * (a / total).unsqueeze(-1) for p, a in zip(preds, areas))

    def render(self, x: torch.Tensor, size: tuple[int, int] | None = None, query_batch: int = 90000) -> torch.Tensor:
        """DISCO's inference: encode ``x`` (normalised to [-1, 1]) and query every pixel
        centre of an ``size`` grid (default: the input's own), ``query_batch`` at a time.

        Under autograd each batch of queries is checkpointed (recomputed in the backward
        pass), so the memory held for the gradient is the feature map, not every
        decoder activation of the whole image.

        Args:
            x: :math:`(B, 3, H, W)` in [0, 1].
            size: output ``(H', W')``.
            query_batch: query points per decoder call (memory only; same result).

        Returns:
            :math:`(B, 3, H', W')`, not clamped.
        """
        from torch.utils.checkpoint import checkpoint

        b = x.shape[0]
        oh, ow = size or tuple(x.shape[-2:])
        feat = self.encoder((x - 0.5) / 0.5)
        coord = pixel_centres(oh, ow, feat.device, feat.dtype).unsqueeze(0).expand(b, -1, -1)
        cell = coord.new_tensor([2 / oh, 2 / ow]).expand_as(coord)
        keep_graph = torch.is_grad_enabled() and feat.requires_grad
        outs = []
        for start in range(0, oh * ow, max(1, int(query_batch))):
            sl = slice(start, start + max(1, int(query_batch)))
            if keep_graph:
                outs.append(checkpoint(self.query, feat, coord[:, sl], cell[:, sl], use_reentrant=False))
            else:
                outs.append(self.query(feat, coord[:, sl], cell[:, sl]))
        rgb = torch.cat(outs, 1) * 0.5 + 0.5
        return rgb.transpose(1, 2).reshape(b, -1, oh, ow)


# --- building from the authors' spec ------------------------------------------------------

def _encoder_from_spec(spec: dict[str, Any]) -> nn.Module:
    name, args = spec.get("name"), dict(spec.get("args") or {})
    if name in ("edsr-baseline", "edsr", "rdn") and not args.get("no_upsampling", False):
        raise SpecError(f"encoder {name!r} keeps its upsampler (no_upsampling is not set); "
                        "LIIF/DISCO encoders drop it")
    if name in ("edsr-baseline", "edsr"):
        defaults = (16, 64, 1.0) if name == "edsr-baseline" else (32, 256, 0.1)
        return EDSREncoder(int(args.get("n_resblocks", defaults[0])), int(args.get("n_feats", defaults[1])),
                           float(args.get("res_scale", defaults[2])))
    if name == "rdn":
        config = args.get("RDNconfig", "B")
        if config not in RDN_CONFIGS:
            raise SpecError(f"unknown RDN config {config!r}")
        d, c, g = RDN_CONFIGS[config]
        return RDNEncoder(int(args.get("G0", 64)), d, c, g, int(args.get("RDNkSize", 3)))
    raise SpecError(f"unsupported encoder {name!r} (supported: edsr-baseline, edsr, rdn)")


def liif_from_spec(spec: dict[str, Any]) -> LIIF:
    """Build a LIIF from the ``{'name': 'liif', 'args': {...}}`` spec the LIIF/DISCO
    training scripts save beside the state dict."""
    if spec.get("name") != "liif":
        raise SpecError(f"model {spec.get('name')!r} is not a LIIF")
    args = dict(spec.get("args") or {})
    if "encoder_spec" not in args:
        raise SpecError("the LIIF spec has no encoder_spec")
    imnet = args.get("imnet_spec")
    if not imnet:
        raise SpecError("the LIIF has no decoder (imnet_spec is empty)")
    if imnet.get("name") != "mlp":
        raise SpecError(f"unsupported decoder {imnet.get('name')!r} (supported: mlp)")
    iargs = dict(imnet.get("args") or {})
    return LIIF(_encoder_from_spec(args["encoder_spec"]), [int(v) for v in iargs.get("hidden_list", [])],
                int(iargs.get("out_dim", 3)), local_ensemble=bool(args.get("local_ensemble", True)),
                feat_unfold=bool(args.get("feat_unfold", True)), cell_decode=bool(args.get("cell_decode", True)),
                unfold_kernel=int(args.get("feat_unfold_kernel") or 3))


def _count(sd: dict[str, Any], prefix: str, suffix: str) -> int:
    n = 0
    while f"{prefix}{n}{suffix}" in sd:
        n += 1
    return n


def liif_from_state_dict(sd: dict[str, torch.Tensor]) -> LIIF:
    """Build a LIIF whose shapes match a bare state dict (no saved spec).

    Sizes, the unfolding kernel and cell decoding are read off the tensors; what they
    cannot show takes LIIF's defaults: local ensemble on, EDSR residual scale 1 (0.1 for
    the 256-feature EDSR).
    """
    if "encoder.head.0.weight" in sd:
        feats = int(sd["encoder.head.0.weight"].shape[0])
        blocks = _count(sd, "encoder.body.", ".body.0.weight")
        encoder: nn.Module = EDSREncoder(blocks, feats, 0.1 if feats == 256 else 1.0)
    elif "encoder.SFENet1.weight" in sd:
        w = sd["encoder.SFENet1.weight"]
        d = _count(sd, "encoder.RDBs.", ".LFF.weight")
        c = _count(sd, "encoder.RDBs.0.convs.", ".conv.0.weight")
        if d == 0 or c == 0:
            raise SpecError("an RDN encoder without residual dense blocks")
        g = int(sd["encoder.RDBs.0.convs.0.conv.0.weight"].shape[0])
        encoder = RDNEncoder(int(w.shape[0]), d, c, g, int(w.shape[-1]))
    else:
        raise SpecError("no EDSR or RDN encoder weights (encoder.head.* / encoder.SFENet1.*)")
    linears = []
    while f"imnet.layers.{2 * len(linears)}.weight" in sd:  # Linear, ReLU, Linear, ...
        linears.append(sd[f"imnet.layers.{2 * len(linears)}.weight"])
    if not linears:
        raise SpecError("no decoder weights (imnet.layers.*)")
    in_dim, hidden, out_dim = int(linears[0].shape[1]), [int(t.shape[0]) for t in linears[:-1]], int(linears[-1].shape[0])
    ch = encoder.out_dim
    for unfold, k in ((True, 3), (True, 5), (True, 7), (False, 1)):
        for cell in (True, False):
            if ch * k * k + 2 + (2 if cell else 0) == in_dim:
                return LIIF(encoder, hidden, out_dim, feat_unfold=unfold, cell_decode=cell, unfold_kernel=k)
    raise SpecError(f"decoder input {in_dim} does not fit {ch} encoder features")

