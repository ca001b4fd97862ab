"""Every ``msu-literal`` defence preset against MSU's code re-derived in
:mod:`tests.engine.defences.msu_defence_reference`, on real photos at a square and a
non-square size: the same output size, and the same pixels within 1/255.

Neural defences run tiny random-weight models of the real architectures, saved in the
authors' (and MSU's) file layouts so the real loading paths run.
"""
from __future__ import annotations

import pytest
import torch

from engine.defences import DEFENCES
from tests.conftest import photo_tensor
from tests.engine.defences import msu_defence_reference as ref

SIZES = [(256, 256), (240, 320)]  # (H, W): an H/W swap cannot pass the non-square one
PHOTOS = ["astronaut", "coffee", "chelsea"]
TOL = 1 / 255 + 1e-6


def _inputs():
    return [pytest.param(name, size, id=f"{name}-{size[0]}x{size[1]}") for size in SIZES for name in PHOTOS]


def _literal(name: str) -> dict[str, dict]:
    cls = DEFENCES.get(name)
    return {label: cls.presets[label] for label in cls.literal_presets}


@pytest.mark.parametrize("name,size", _inputs())
def test_resize_returns_msus_small_image(name, size):
    x = photo_tensor(name, size)
    presets = _literal("resize")
    assert len(presets) == 5
    for label, p in presets.items():
        y, want = DEFENCES.get("resize").from_preset(label)(x), ref.resize(x, p["scale"])
        assert y.shape == want.shape, label  # int(scale·side), not H×W
        assert (y - want).abs().max() <= TOL, label


@pytest.mark.parametrize("name,size", _inputs())
def test_upscale_returns_msus_fixed_384x512(name, size):
    x = photo_tensor(name, size)
    for label, p in _literal("upscale").items():
        y, want = DEFENCES.get("upscale").from_preset(label)(x), ref.upscale(x, p["scale"])
        assert y.shape[-2:] == want.shape[-2:] == (384, 512), label
        assert (y - want.clamp(0, 1)).abs().max() <= TOL, label


@pytest.mark.parametrize("name,size", _inputs())
def test_jpeg_truncates_off_grid_floats_as_msu(name, size):
    # an attacked-looking float image: off the 8-bit grid, where rounding and truncation differ
    x = (photo_tensor(name, size) + 0.4 / 255 + torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
         * 0.5 / 255).clamp(0, 1)
    for label, p in _literal("jpeg").items():
        y, want = DEFENCES.get("jpeg").from_preset(label)(x), ref.jpeg(x, p["q"])
        assert (y - want).abs().max() <= TOL, label
    rounded = DEFENCES.get("jpeg")(q=50)(x)  # the project's default rounds: a different image
    assert (rounded - ref.jpeg(x, 50)).abs().max() > 2 / 255


@pytest.mark.parametrize("name,size", _inputs())
def test_diffjpeg_is_reichs_straight_through_codec(name, size):
    x = photo_tensor(name, size)
    for label, p in _literal("diffjpeg").items():
        y, want = DEFENCES.get("diffjpeg").from_preset(label)(x), ref.diffjpeg(x, p["q"])
        assert y.shape == x.shape
        diff = (y - want).abs()
        # float32 in both: a DCT coefficient at a rounding tie (to float precision) may
        # round the other way and move its 8×8 block by about one level
        assert (diff > TOL).float().mean() < 5e-4, label
        assert diff.max() <= 2 / 255, label
        assert diff.mean() < 1e-2 / 255, label
    kornia = DEFENCES.get("diffjpeg")(q=50)(x)  # soft rounding in the forward pass
    assert (kornia - ref.diffjpeg(x, 50)).abs().max() > 2 / 255


def test_diffjpeg_literal_is_differentiable():
    x = photo_tensor("rocket", (48, 64)).requires_grad_(True)
    DEFENCES.get("diffjpeg").from_preset("msu-literal q=50")(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name,size", _inputs())
def test_random_rotate_draws_and_samples_as_msu(name, size):
    x = photo_tensor(name, size)
    for i, (label, p) in enumerate(_literal("random-rotate").items()):
        seed = 3 + 123457 * i
        y = DEFENCES.get("random-rotate").from_preset(label)(x, seed=seed)
        want = ref.random_rotate(x, p["angle_limit"], seed)
        assert (y - want).abs().max() <= TOL, (label, seed)
    if size == SIZES[-1] and name == PHOTOS[0]:  # the default differs (bilinear, float64 draw)
        default = DEFENCES.get("random-rotate")(angle_limit=30)(x, seed=3)
        assert (default - ref.random_rotate(x, 30, 3)).abs().max() > 2 / 255


def test_fcn_loads_msus_checkpoint_layout(weights):
    torch.manual_seed(0)
    sd = {"conv1.weight": torch.randn(64, 3, 3, 3) * 0.2, "conv1.bias": torch.randn(64) * 0.1,
          "conv2.weight": torch.randn(16, 64, 3, 3) * 0.05, "conv2.bias": torch.randn(16) * 0.1,
          "conv3.weight": torch.randn(3, 16, 3, 3) * 0.2, "conv3.bias": torch.randn(3) * 0.1 + 0.5}
    torch.save({"model": sd}, weights / "fcn_mse.pth")  # MSU's fcn_mse.pth layout
    d = DEFENCES.get("fcn")(checkpoint="fcn_mse.pth")
    for size in SIZES:
        x = photo_tensor("astronaut", size)
        y = d(x)
        assert (y - ref.fcn(sd, x)).abs().max() <= 1e-5


def test_fcn_refuses_an_msu_layout_with_foreign_keys(weights):
    from engine.defences import DefenceError

    torch.save({"model": {"conv1.weight": torch.zeros(64, 3, 3, 3), "conv4.weight": torch.zeros(1)}},
               weights / "odd.pth")
    with pytest.raises(DefenceError, match="conv4"):
        DEFENCES.get("fcn")(checkpoint="odd.pth")(photo_tensor("coffee", (32, 32)))


def _compact(seed: int):
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))  # large enough that the raw output leaves [0, 1]
    return net.eval()


def test_realesrgan_literal_returns_the_raw_x4_output(weights):
    pytest.importorskip("spandrel")
    strong, weak = _compact(0), _compact(1)
    torch.save({"params": strong.state_dict()}, weights / "realesr-general-x4v3.pth")
    torch.save({"params": weak.state_dict()}, weights / "realesr-general-wdn-x4v3.pth")
    d = DEFENCES.get("realesrgan").from_preset("msu-literal")
    for size in [(32, 32), (24, 40)]:
        x = photo_tensor("chelsea", size)
        y = d(x)
        want = ref.realesrgan(strong.state_dict(), weak.state_dict(), lambda: _compact(2), x)
        assert y.shape[-2:] == (4 * size[0], 4 * size[1])
        assert (y - want).abs().max() <= 1e-5
    assert y.min() < 0 or y.max() > 1  # not clamped, as MSU


def test_disco_literal_queries_msus_299_grid(weights):
    from tests.engine.defences.test_disco import _save, _spec, _tiny

    net = _tiny(3)
    _save(net, _spec(), weights / "disco_pgd.pth")
    d = DEFENCES.get("disco").from_preset("msu-literal")
    for size in [(36, 52)]:  # non-square, and not 299×299 either way
        x = photo_tensor("astronaut", size)
        y = d(x)
        with torch.no_grad():
            want = ref.disco(net, x)
        assert y.shape[-2:] == (299, 299)
        assert (y - want).abs().max() <= 1e-4
