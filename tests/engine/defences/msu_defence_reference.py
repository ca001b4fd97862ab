"""MSU's defence code re-derived the plain way, for the ``msu-literal`` presets' tests.

Each function follows one ``metrics/defences/<name>/run.py`` of
github.com/msu-video-group/adversarial-defenses-for-iqa, written from its description and
numerics (not its text), with the library calls MSU makes where those *are* the recipe
(torchvision's ``Resize``/``RandomRotation``/``encode_jpeg``, ``nn.Upsample``) and
explicit arithmetic elsewhere (the differentiable JPEG, DISCO's query grid, the FCN).
Inputs are :math:`(1, 3, H, W)` float32 in [0, 1], as MSU's data loader gives them.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def msu_small_size(x: torch.Tensor, scale: float) -> tuple[int, int]:
    """``int`` of the size tensor times the scale (an int64 tensor times a Python float
    gives float32)."""
    s = torch.tensor(x.shape[-2:]) * scale
    return int(s[0]), int(s[1])


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``resize/run.py``: torchvision ``Resize`` to ``int(scale·side)``; the small image."""
    from torchvision import transforms

    return transforms.Resize(msu_small_size(x, scale), antialias=True)(x)


def upscale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``upscale/run.py``: the same shrink, then ``nn.Upsample((384, 512), 'bilinear')``."""
    return torch.nn.Upsample(size=(384, 512), mode="bilinear")(resize(x, scale))


def jpeg(x: torch.Tensor, q: int) -> torch.Tensor:
    """``jpeg/run.py``: ``(x·255).to(uint8)`` (truncation), torchvision's libjpeg, /255."""
    from torchvision.io import decode_jpeg, encode_jpeg

    out = [decode_jpeg(encode_jpeg((img * 255).type(torch.uint8), q))[None] for img in x]
    return (torch.cat(out) / 255).float()


def random_rotate(x: torch.Tensor, angle_limit: float, seed: int) -> torch.Tensor:
    """``random-rotate/run.py`` after ``defence_evaluate.py``'s ``torch.manual_seed(seed)``:
    torchvision's ``RandomRotation(int(limit))`` on the global generator (nearest, zeros)."""
    from torchvision import transforms

    torch.manual_seed(seed)
    return transforms.RandomRotation(int(angle_limit))(x)


# --- Reich et al.'s differentiable JPEG (forward pass), as MSU's diffjpeg pads and calls it -----

_QY = np.array([[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
                [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
                [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
                [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float64)
_QC = np.full((8, 8), 99.0)
_QC[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]


def _table(base: np.ndarray, q: int) -> np.ndarray:
    s = math.floor(5000 / q) if q < 50 else 200 - 2 * q
    return np.clip(np.floor((base * s + 50) / 100), 1, 255)


def _dct_coeffs() -> np.ndarray:
    """cos((2x+1)uπ/16) · α(u)/2 as a matrix [u, x]."""
    out = np.zeros((8, 8))
    for u in range(8):
        for x in range(8):
            out[u, x] = (1 / math.sqrt(2) if u == 0 else 1.0) / 2 * math.cos((2 * x + 1) * u * math.pi / 16)
    return out


def _code(plane: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Every 8×8 block: DCT of v − 128, round(coef / table)·table, inverse DCT + 128."""
    c = _dct_coeffs().astype(np.float32)
    h, w = plane.shape
    blocks = plane.reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2)  # [row, col, 8, 8]
    coef = c @ (blocks - np.float32(128)) @ c.T
    coef = np.round(coef / table) * table
    return (c.T @ coef @ c + 128).swapaxes(1, 2).reshape(h, w)


def _subsample(plane: np.ndarray) -> np.ndarray:
    """3×3 Gaussian (σ 0.5, reflected border), then the mean of each 2×2 block."""
    k = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * 0.25))
    k = (k / k.sum()).astype(np.float32)
    p = np.pad(plane, 1, mode="reflect")
    rows = k[0] * p[:-2] + k[1] * p[1:-1] + k[2] * p[2:]
    blur = k[0] * rows[:, :-2] + k[1] * rows[:, 1:-1] + k[2] * rows[:, 2:]
    return (blur[0::2, 0::2] + blur[1::2, 0::2] + blur[0::2, 1::2] + blur[1::2, 1::2]) / 4


def _upsample2(plane: np.ndarray) -> np.ndarray:
    """×2 bilinear with half-pixel centres: 3/4 of the nearer sample + 1/4 of the next one
    (edges repeated)."""
    def along(a: np.ndarray) -> np.ndarray:
        prev = np.concatenate([a[:1], a[:-1]])
        nxt = np.concatenate([a[1:], a[-1:]])
        out = np.empty((a.shape[0] * 2,) + a.shape[1:], a.dtype)
        out[0::2] = 0.75 * a + 0.25 * prev
        out[1::2] = 0.75 * a + 0.25 * nxt
        return out
    return along(along(plane).T).T


def diffjpeg(x: torch.Tensor, q: int) -> torch.Tensor:
    """``diffjpeg/run.py``: reflect-pad right/bottom by ``16 − side mod 16``, code ×255 with
    Reich et al.'s codec (straight-through: exact rounding forward), crop, /255."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (0, 16 - w % 16, 0, 16 - h % 16), mode="reflect")[0].numpy().astype(np.float32) * 255
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
    ycc = np.einsum("ij,jhw->ihw", m, padded) + np.array([0, 128, 128], np.float32)[:, None, None]
    y = _code(ycc[0], _table(_QY, q).astype(np.float32))
    cb, cr = (_upsample2(_code(_subsample(ycc[i]), _table(_QC, q).astype(np.float32))) for i in (1, 2))
    back = np.stack([y, cb - 128, cr - 128])
    rgb = np.einsum("ij,jhw->ihw", np.linalg.inv(m.astype(np.float64)).astype(np.float32), back)
    return torch.from_numpy(np.clip(rgb, 0, 255)[:, :h, :w] / 255).float()[None]


# --- neural defences ---------------------------------------------------------------------

def fcn(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fcn/run.py``'s FCN on MSU's key names: conv1 → LeakyReLU(0.2) → conv2 → instance
    norm → LeakyReLU(0.2) → conv3 → tanh, clamped to [0, 1]."""
    e1 = F.conv2d(x, state["conv1.weight"], state["conv1.bias"], padding=1)
    e2 = F.instance_norm(F.conv2d(F.leaky_relu(e1, 0.2), state["conv2.weight"], state["conv2.bias"], padding=1))
    e3 = F.conv2d(F.leaky_relu(e2, 0.2), state["conv3.weight"], state["conv3.bias"], padding=1)
    return torch.tanh(e3).clamp(0, 1)


def realesrgan(strong: dict[str, torch.Tensor], weak: dict[str, torch.Tensor], build, x: torch.Tensor,
               strength: float = 0.2) -> torch.Tensor:
    """``realesrgan/run.py``: the network with weights ``strength·x4v3 + (1 − strength)·wdn``
    applied to x in fp32, no pre-pad, its ×4 output returned as it is (no clamp)."""
    net = build()
    net.load_state_dict({k: strength * strong[k] + (1 - strength) * weak[k] for k in strong})
    with torch.no_grad():
        return net.eval()(x.float())


def disco(net, x: torch.Tensor, out: tuple[int, int] = (299, 299)) -> torch.Tensor:
    """``disco/run.py`` (robustbench ``INR`` with height = width = 299): encode (x − 0.5)/0.5,
    query LIIF at the pixel centres of a fixed ``out`` grid with cell 2/out (whole feature
    map unfolded, nearest features sampled with ``grid_sample``), ·0.5 + 0.5, clamp."""
    feat = net.encoder((x - 0.5) / 0.5)
    b, c, h, w = feat.shape
    k = net.unfold_kernel
    feat = F.unfold(feat, k, padding=k // 2).view(b, c * k * k, h, w)
    oh, ow = out
    rows = -1 + (2 * torch.arange(oh, dtype=torch.float32) + 1) / oh
    cols = -1 + (2 * torch.arange(ow, dtype=torch.float32) + 1) / ow
    coord = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1).reshape(1, -1, 2)
    fr = -1 + (2 * torch.arange(h, dtype=torch.float32) + 1) / h
    fc = -1 + (2 * torch.arange(w, dtype=torch.float32) + 1) / w
    centres = torch.stack(torch.meshgrid(fr, fc, indexing="ij"), 0)[None]
    size = torch.tensor([h, w], dtype=torch.float32)
    cell = torch.tensor([2 / oh, 2 / ow]).expand_as(coord)
    preds, areas = [], []
    for dy, dx in [(-1, -1), (-1, 1), (1, -1), (1, 1)]:
        pts = (coord + torch.tensor([dy / h, dx / w]) + 1e-6).clamp(-1 + 1e-6, 1 - 1e-6)
        grid = pts.flip(-1).unsqueeze(1)
        qf = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0].transpose(1, 2)
        qc = F.grid_sample(centres, grid, mode="nearest", align_corners=False)[:, :, 0].transpose(1, 2)
        rel = (coord - qc) * size
        preds.append(net.imnet(torch.cat([qf, rel, cell * size], -1)))
        areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
    total = sum(areas)
    areas = areas[::-1]
    rgb = sum(p * (a / total).unsqueeze(-1) for p, a in zip(preds, areas)) * 0.5 + 0.5
    return rgb.clamp(0, 1).transpose(1, 2).reshape(b, 3, oh, ow)
