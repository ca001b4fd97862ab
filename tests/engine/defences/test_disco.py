"""DISCO on tiny LIIF models saved the way the DISCO/LIIF training script saves them.

The checkpoints are ``{'model': {'name': 'liif', 'args': spec, 'sd': state_dict},
'optimizer': ..., 'epoch': ...}`` so the real loading path runs. Besides shape, range,
determinism and gradients, a hand-built model whose encoder copies the image and whose
decoder reads one tap of the unfolded features shows that coordinates, cells, unfolding
and the local ensemble are wired as in LIIF, and a small independent re-implementation
of LIIF's query (unfold the whole map, ``grid_sample`` nearest) checks the rest.
"""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from engine.defences import DEFENCES, DefenceError
from engine.defences._liif import LIIF, RDNEncoder, liif_from_spec, pixel_centres
from tests.conftest import photo_tensor

SIZE = (48, 64)  # non-square: an H/W swap cannot pass


def _spec(feats: int = 8, blocks: int = 2, hidden=(16, 16), **liif_args) -> dict:
    """The authors' model spec (their config's ``model:`` block), scaled down."""
    return {"name": "liif", "args": {
        "encoder_spec": {"name": "edsr-baseline",
                         "args": {"n_resblocks": blocks, "n_feats": feats, "no_upsampling": True}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": list(hidden)}},
        **liif_args}}


def _tiny(seed: int = 0, **kw) -> LIIF:
    torch.manual_seed(seed)
    return liif_from_spec(_spec(**kw)).eval()


def _save(net: LIIF, spec: dict, path) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    torch.save({"model": {**spec, "sd": net.state_dict()},
                "optimizer": {"name": "adam", "args": {"lr": 1e-4}, "sd": opt.state_dict()},
                "epoch": 3}, path)


def _copy_tap(tap: tuple[int, int], feats: int = 8) -> LIIF:
    """Encoder output = the normalised image in channels 0-2; decoder output = those
    channels at unfolding tap (row, col) of the 3×3 window, whatever the offset/cell."""
    net = _tiny(feats=feats, hidden=(6, 6))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        head = net.encoder.head[0].weight
        for c in range(3):
            head[c, c, 1, 1] = 1.0  # body's last conv is zero, so features = head(x)
        lin0, lin1, lin2 = net.imnet.layers[0], net.imnet.layers[2], net.imnet.layers[4]
        for c in range(3):
            src = c * 9 + tap[0] * 3 + tap[1]  # F.unfold's channel order
            lin0.weight[c, src], lin0.weight[3 + c, src] = 1.0, -1.0  # ReLU keeps both signs
            lin2.weight[c, c], lin2.weight[c, 3 + c] = 1.0, -1.0
        lin1.weight.copy_(torch.eye(6))
    return net


def _reference(net: LIIF, x: torch.Tensor) -> torch.Tensor:
    """LIIF's query written the plain way: unfold the whole feature map, sample it and the
    feature-centre grid with ``grid_sample(mode='nearest')`` at the shifted points."""
    feat = net.encoder((x - 0.5) / 0.5)
    b, c, h, w = feat.shape
    k = net.unfold_kernel
    feat = F.unfold(feat, k, padding=k // 2).view(b, c * k * k, h, w)
    centres = pixel_centres(h, w).view(h, w, 2).permute(2, 0, 1).expand(b, 2, h, w)
    coord = pixel_centres(h, w).expand(b, -1, -1)
    scale = torch.tensor([h, w], dtype=torch.float32)
    cell = torch.tensor([2 / h, 2 / w]).expand_as(coord)
    ens = net.local_ensemble
    preds, areas = [], []
    for dy, dx in ([(-1, -1), (-1, 1), (1, -1), (1, 1)] if ens else [(0, 0)]):
        pts = (coord + torch.tensor([dy / h, dx / w]) + (1e-6 if ens else 0)).clamp(-1 + 1e-6, 1 - 1e-6)
        grid = pts.flip(-1).unsqueeze(1)  # grid_sample wants (x, y)
        q = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0].transpose(1, 2)
        qc = F.grid_sample(centres, grid, mode="nearest", align_corners=False)[:, :, 0].transpose(1, 2)
        rel = (coord - qc) * scale
        parts = [q, rel] + ([cell * scale] if net.cell_decode else [])
        preds.append(net.imnet(torch.cat(parts, -1)))
        areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
    total = sum(areas)
    if ens:
        areas = [areas[3], areas[2], areas[1], areas[0]]
    rgb = sum(p * (a / total).unsqueeze(-1) for p, a in zip(preds, areas)) * 0.5 + 0.5
    return rgb.transpose(1, 2).reshape(b, 3, h, w)


# --- format ----------------------------------------------------------------------------

def test_parameter_names_are_the_liif_checkpoint_names():
    keys = set(_tiny(blocks=2).state_dict())
    for k in ("encoder.sub_mean.weight", "encoder.add_mean.bias", "encoder.head.0.weight",
              "encoder.body.0.body.0.weight", "encoder.body.1.body.2.bias", "encoder.body.2.weight",
              "imnet.layers.0.weight", "imnet.layers.2.bias", "imnet.layers.4.weight"):
        assert k in keys
    assert _tiny().imnet.layers[0].in_features == 8 * 9 + 2 + 2  # unfolded feats + offset + cell


# --- the defence on the authors' file format -------------------------------------------

def test_disco_keeps_size_and_range_and_is_deterministic(weights):
    net = _tiny(1)
    _save(net, _spec(), weights / "disco_pgd.pth")
    cls = DEFENCES.get("disco")
    assert cls.availability().ok and cls.differentiable and not cls.random
    x = torch.cat([photo_tensor("astronaut", SIZE), photo_tensor("chelsea", SIZE)])
    d = cls()
    y = d(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert torch.equal(y, cls()(x))
    with torch.no_grad():
        assert torch.allclose(y, _reference(net, x).clamp(0, 1), atol=1e-5)
    assert torch.allclose(cls(query_batch=1024)(x), y, atol=1e-6)  # 3 batches of queries
    assert torch.equal(d(x[1:]), y[1:])  # images are purified independently


@pytest.mark.parametrize("opts", [{"local_ensemble": False}, {"feat_unfold_kernel": 5},
                                  {"cell_decode": False, "feat_unfold": False}])
def test_saved_spec_options_are_honoured(weights, opts):
    spec = _spec(**opts)
    torch.manual_seed(2)
    net = liif_from_spec(spec).eval()
    _save(net, spec, weights / "disco_pgd.pth")
    x = photo_tensor("coffee", (40, 56))
    y = DEFENCES.get("disco")()(x)
    with torch.no_grad():
        assert torch.allclose(y, _reference(net, x).clamp(0, 1), atol=1e-5)
        other = _tiny(2)  # the default spec on the same seed gives a different model
        assert not torch.allclose(y, _reference(other, x).clamp(0, 1), atol=1e-3)


def test_copying_decoder_reconstructs_the_image(weights):
    """Centre tap: every pixel decodes its own feature (weight 1 in the local ensemble),
    except the last row/column, where the clamped corners split the weight between the
    pixel and its right/lower neighbour, as LIIF does at the border."""
    _save(_copy_tap((1, 1)), _spec(hidden=(6, 6)), weights / "disco_pgd.pth")
    x = photo_tensor("rocket", SIZE)
    y = DEFENCES.get("disco")()(x)
    assert torch.allclose(y[..., :-1, :-1], x[..., :-1, :-1], atol=1e-5)
    assert torch.allclose(y[..., -1, :-1], (x[..., -1, :-1] + x[..., -1, 1:]) / 2, atol=1e-5)
    assert torch.allclose(y[..., :-1, -1], (x[..., :-1, -1] + x[..., 1:, -1]) / 2, atol=1e-5)
    assert torch.allclose(y[..., -1, -1], x[..., -1, -1], atol=1e-5)


def test_copying_the_upper_tap_shifts_the_image_down(weights):
    _save(_copy_tap((0, 1)), _spec(hidden=(6, 6)), weights / "disco_pgd.pth")
    x = photo_tensor("chelsea", SIZE)
    y = DEFENCES.get("disco")()(x)
    assert torch.allclose(y[..., 1:-1, :-1], x[..., :-2, :-1], atol=1e-5)
    assert torch.allclose(y[..., 0, :-1], torch.full_like(y[..., 0, :-1], 0.5), atol=1e-5)  # zero padding


def test_disco_is_differentiable(weights):
    net = _tiny(3)
    _save(net, _spec(), weights / "disco_pgd.pth")
    x = photo_tensor("coffee", (24, 40)).requires_grad_(True)
    DEFENCES.get("disco")(query_batch=1024)(x).sum().backward()  # checkpointed query batches
    assert x.grad is not None and x.grad.abs().sum() > 0
    x2 = x.detach().clone().requires_grad_(True)
    _reference(net, x2).clamp(0, 1).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)


def test_bare_state_dicts_load_too(weights, tmp_path):
    net = _tiny(4)
    torch.save(net.state_dict(), tmp_path / "bare.pth")
    x = photo_tensor("astronaut", (32, 40))
    with torch.no_grad():
        expected = _reference(net, x).clamp(0, 1)
    assert torch.allclose(DEFENCES.get("disco")(weights=str(tmp_path / "bare.pth"))(x), expected, atol=1e-5)
    torch.manual_seed(5)
    rdn = LIIF(RDNEncoder(G0=4, D=2, C=2, G=4), [8]).eval()
    torch.save({"model": rdn.state_dict()}, weights / "rdn.pth")
    with torch.no_grad():
        expected = _reference(rdn, x).clamp(0, 1)
    assert torch.allclose(DEFENCES.get("disco")(weights="rdn.pth")(x), expected, atol=1e-5)


# --- failures ---------------------------------------------------------------------------

def test_missing_weights_are_reported_not_crashed(weights):
    cls = DEFENCES.get("disco")
    av = cls.availability()
    assert av.state == "unavailable"
    for text in ("disco_pgd.pth", "https://drive.google.com/file/d/1kMjqPVmu1xNhmZdPf25BN9JQ0j9LBar5",
                 str(weights)):
        assert text in av.reason
    assert "other.pth" in cls.availability({"weights": "other.pth"}).reason
    t0 = time.perf_counter()
    with pytest.raises(DefenceError, match="disco_pgd.pth"):
        cls()(photo_tensor("coffee", (32, 32)))
    assert time.perf_counter() - t0 < 5


def test_corrupt_and_foreign_files_are_clear_errors(weights):
    x = photo_tensor("coffee", (32, 32))
    path = weights / "disco_pgd.pth"
    path.write_bytes(b"not a checkpoint" * 64)
    with pytest.raises(DefenceError, match="cannot read"):
        DEFENCES.get("disco")()(x)
    torch.save({"state_dict": {"conv.weight": torch.zeros(3)}}, path)
    with pytest.raises(DefenceError, match="not a DISCO/LIIF checkpoint"):
        DEFENCES.get("disco")()(x)
    _save(_tiny(feats=16), _spec(feats=8), path)  # spec and weights disagree
    with pytest.raises(DefenceError, match="do not fit"):
        DEFENCES.get("disco")()(x)
    _save(_tiny(), _spec(imnet_spec=None), path)
    with pytest.raises(DefenceError, match="no decoder"):
        DEFENCES.get("disco")()(x)
