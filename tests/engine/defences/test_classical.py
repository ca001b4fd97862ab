"""Classical defences: shapes, range, dtype/device, identity-like settings, the MSU preset
sweeps, honest differentiability flags and parameter checks."""
from __future__ import annotations

import math

import pytest
import torch

from engine.defences import DEFENCES
from engine.spec.params import ParamError
from tests.conftest import photo_tensor

CLASSICAL = ["jpeg", "diffjpeg", "gaussian-blur", "median-blur", "unsharp", "bilateral", "nlm",
             "color-quantization", "random-noise", "flip", "resize", "upscale", "random-crop",
             "random-rotate", "chain"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# science.md: main parameter, MSU default, the five presets
SWEEPS = {
    "jpeg": ("q", 50, [10, 30, 50, 70, 90]),
    "diffjpeg": ("q", 50, [10, 30, 50, 70, 90]),
    "gaussian-blur": ("kernel_size", 3, [3, 5, 7, 9, 11]),
    "median-blur": ("kernel_size", 3, [3, 5, 7, 9, 11]),
    "unsharp": ("kernel_size", 3, [3, 5, 7, 9, 11]),
    "random-crop": ("size", 128, [32, 64, 128, 256, 288]),
    "random-rotate": ("angle_limit", 15, [10, 15, 20, 30, 50]),
    "resize": ("scale", 0.5, [0.1, 0.25, 0.5, 0.75, 0.9]),
    "upscale": ("scale", 0.5, [0.1, 0.25, 0.5, 0.75, 0.9]),
    "color-quantization": ("levels", 16, [2, 5, 16, 20, 25]),
    "random-noise": ("sigma", 0.01, [0.01, 0.025, 0.05, 0.075, 0.1]),
}
# not in MSU's table: our own five-value sweeps of the main parameter
OWN_SWEEPS = {"bilateral": "kernel_size", "nlm": "h"}


@pytest.fixture(scope="module")
def pair() -> torch.Tensor:
    """Two real photos; odd-ish size (not a multiple of 8 or 16)."""
    return torch.cat([photo_tensor("astronaut", (40, 56)), photo_tensor("coffee", (40, 56))])


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def test_every_classical_defence_is_registered():
    missing = [n for n in CLASSICAL if n not in DEFENCES]
    assert not missing


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", CLASSICAL)
def test_shape_range_dtype_device(name, dtype, device, pair):
    x = pair.to(device=device, dtype=dtype)
    params = {"size": 32} if name == "random-crop" else {}  # the default 128 > 40×56
    y = DEFENCES.get(name)(params).to(device)(x, seed=7)
    assert tuple(y.shape) == ((2, 3, 32, 32) if name == "random-crop" else tuple(x.shape))
    assert y.dtype == dtype and y.device.type == device
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    if name != "random-crop":
        assert not torch.equal(y, x)  # the default setting does something


def test_crop_keeps_a_side_shorter_than_the_size_whole(pair):
    d = DEFENCES.get("random-crop")(size=48)  # 40×56 image: 40 < 48 ≤ 56
    y = d(pair, seed=1)
    assert tuple(y.shape[-2:]) == (40, 48)
    assert torch.equal(DEFENCES.get("random-crop")()(pair, seed=1), pair)  # 128 > both sides


IDENTITY_LIKE = [
    ("gaussian-blur", {"kernel_size": 1}, math.inf),
    ("median-blur", {"kernel_size": 1}, math.inf),
    ("unsharp", {"amount": 0.0}, math.inf),
    ("unsharp", {"kernel_size": 1}, math.inf),
    ("bilateral", {"kernel_size": 1}, math.inf),
    ("random-noise", {"sigma": 0.0}, math.inf),
    ("resize", {"scale": 1.0}, math.inf),
    ("upscale", {"scale": 1.0}, math.inf),
    ("random-crop", {"size": 4096}, math.inf),
    ("random-rotate", {"angle_limit": 0.0}, math.inf),
    ("chain", {"steps": "flip,flip"}, math.inf),
    ("jpeg", {"q": 100}, 38.0),
    ("diffjpeg", {"q": 100}, 38.0),
    ("nlm", {"h": 0.5}, 42.0),
    ("color-quantization", {"levels": 256}, 55.0),
    ("random-rotate", {"angle_limit": 0.5}, 33.0),
    ("resize", {"scale": 0.98}, 33.0),
]


@pytest.mark.parametrize("name,params,min_psnr", IDENTITY_LIKE)
def test_identity_like_settings_leave_the_image_nearly_unchanged(name, params, min_psnr, pair):
    y = DEFENCES.get(name)(params)(pair, seed=3)
    assert y.shape == pair.shape
    if min_psnr == math.inf:
        assert torch.allclose(y, pair, atol=1e-6)
    else:
        assert psnr(y, pair) >= min_psnr


def test_flip_mirrors_both_axes(pair):
    y = DEFENCES.get("flip")()(pair)
    assert torch.equal(y[..., 0, 0], pair[..., -1, -1])
    assert torch.equal(y[..., 5, 9], pair[..., -6, -10])
    h = DEFENCES.get("flip")(axes="horizontal")(pair)
    assert torch.equal(h[..., 5, 0], pair[..., 5, -1])


def test_color_quantization_uses_exactly_the_levels(pair):
    y = DEFENCES.get("color-quantization")(levels=5)(pair)
    assert set(torch.unique(y * 4).round().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert torch.allclose(y * 4, (y * 4).round(), atol=1e-6)
    assert (y - pair).abs().max() <= 0.125 + 1e-6  # half a step


def test_jpeg_is_a_real_codec_matching_pillow(pair):
    """Same libjpeg, same quality, same 4:2:0: OpenCV's result ≈ Pillow's file round trip."""
    import io

    import numpy as np
    from PIL import Image

    q = 30
    y = DEFENCES.get("jpeg")(q=q)(pair[:1])
    arr = (pair[0].permute(1, 2, 0) * 255).round().byte().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=q)
    ref = torch.from_numpy(np.asarray(Image.open(buf).convert("RGB"))).permute(2, 0, 1).float() / 255
    assert (y[0] - ref).abs().mean() < 1.5 / 255  # same codec up to IDCT/upsampling rounding
    assert psnr(y[0], pair[0]) < psnr(ref, ref + 0.5 / 255)  # and it really compressed


# weak → strong, for the deterministic size-keeping defences
ORDERED = {
    "jpeg": ("q", [90, 50, 10]),
    "diffjpeg": ("q", [90, 50, 10]),
    "gaussian-blur": ("kernel_size", [3, 7, 11]),
    "median-blur": ("kernel_size", [3, 7, 11]),
    "bilateral": ("kernel_size", [3, 7, 11]),
    "nlm": ("h", [3.0, 10.0, 20.0]),
    "color-quantization": ("levels", [25, 16, 2]),
    "resize": ("scale", [0.9, 0.5, 0.1]),
    "upscale": ("scale", [0.9, 0.5, 0.1]),
}


@pytest.mark.parametrize("name", sorted(ORDERED))
def test_stronger_settings_change_the_image_more(name, pair):
    key, values = ORDERED[name]
    scores = [psnr(DEFENCES.get(name)({key: v})(pair), pair) for v in values]
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_presets_are_the_documented_msu_sweep(name):
    key, default, values = SWEEPS[name]
    cls = DEFENCES.get(name)
    assert getattr(cls().params, key) == pytest.approx(default)
    own = {label: o for label, o in cls.presets.items() if label not in cls.literal_presets}
    literal = {label: o for label, o in cls.presets.items() if label in cls.literal_presets}
    assert len(own) == 5 and len(literal) in (0, 5)  # MSU's five values, once more as MSU's code
    assert sorted(p[key] for p in own.values()) == pytest.approx(values)
    for label, overrides in own.items():
        assert set(overrides) == {key}
        assert label.startswith(f"{key}=")
        assert getattr(cls.from_preset(label).params, key) == overrides[key]
    if literal:
        assert sorted(p[key] for p in literal.values()) == pytest.approx(values)
        for label, overrides in literal.items():
            assert label.startswith(f"msu-literal {key}=")
            assert getattr(cls.from_preset(label).params, key) == overrides[key]


@pytest.mark.parametrize("name", sorted(OWN_SWEEPS))
def test_own_presets_sweep_the_main_parameter_around_the_default(name):
    key = OWN_SWEEPS[name]
    cls = DEFENCES.get(name)
    values = sorted(p[key] for p in cls.presets.values())
    assert len(set(values)) == 5 and all(set(p) == {key} for p in cls.presets.values())
    assert getattr(cls().params, key) in values


def test_flip_has_no_sweep_and_upscale_offers_three_modes():
    assert DEFENCES.get("flip").presets == {}
    spec = {s.name: s for s in DEFENCES.get("upscale").param_specs()}
    assert set(spec["mode"].choices) == {"nearest", "bilinear", "bicubic"}
    x = photo_tensor("chelsea", (32, 32))
    outs = [DEFENCES.get("upscale")(mode=m, scale=0.25)(x) for m in ("nearest", "bilinear", "bicubic")]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


def test_gaussian_sigma_follows_the_opencv_rule():
    """k = 5 → σ = 0.3·(2 − 1) + 0.8 = 1.1: compare with an explicit separable kernel."""
    x = torch.zeros(1, 3, 15, 15)
    x[..., 7, 7] = 1.0
    y = DEFENCES.get("gaussian-blur")(kernel_size=5)(x)
    g = torch.exp(-torch.arange(-2, 3, dtype=torch.float64) ** 2 / (2 * 1.1 ** 2))
    g = g / g.sum()
    assert torch.allclose(y[0, 0, 5:10, 5:10].double(), torch.outer(g, g), atol=1e-6)


def test_median_matches_opencv_inside_the_border(pair):
    import cv2

    arr = (pair[0].permute(1, 2, 0) * 255).round().byte().numpy()
    ref = torch.from_numpy(cv2.medianBlur(arr, 5)).permute(2, 0, 1).float() / 255
    y = DEFENCES.get("median-blur")(kernel_size=5)(pair[:1].mul(255).round().div(255))[0]
    assert torch.allclose(y[:, 2:-2, 2:-2], ref[:, 2:-2, 2:-2], atol=1e-6)


def test_unsharp_adds_back_the_detail(pair):
    from engine.defences.gaussian_blur import gaussian_blur

    y = DEFENCES.get("unsharp")(kernel_size=5)(pair)
    expected = (2 * pair - gaussian_blur(pair, 5, 1.0)).clamp(0, 1)
    assert torch.allclose(y, expected, atol=1e-6)


def test_median_and_bilateral_are_the_same_in_memory_bands(pair):
    """The banded sliding-window helper must not change the result."""
    from kornia.filters import bilateral_blur, median_blur

    from engine.defences._common import local_filter, median_filter

    ours = local_filter(pair, 3, lambda b: median_filter(b, 7), budget=2000)  # many bands
    assert torch.allclose(ours, median_blur(pair, 7))
    f = lambda b: bilateral_blur(b, (5, 5), 0.1, (1.1, 1.1))
    assert torch.allclose(local_filter(pair, 2, f, budget=2000), f(pair), atol=1e-6)


def test_tiny_images_do_not_crash():
    x = torch.rand(1, 3, 3, 2, generator=torch.Generator().manual_seed(0))
    for name in CLASSICAL:
        d = DEFENCES.get(name)({"kernel_size": 11} if name in ("gaussian-blur", "median-blur",
                                                              "unsharp", "bilateral") else {})
        y = d(x, seed=1)
        assert y.shape[0] == 1 and torch.isfinite(y).all()


@pytest.mark.parametrize("name", CLASSICAL)
def test_differentiable_flag_is_honest(name, pair):
    d = DEFENCES.get(name)()
    x = pair[:1].clone().requires_grad_(True)
    y = d(x, seed=2)
    w = torch.rand(y.shape, generator=torch.Generator().manual_seed(0))
    if d.differentiable:
        (y * w).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert x.grad.abs().sum() > 0
    else:
        # no gradient path, or a gradient that is zero everywhere (rounding)
        if y.requires_grad:
            (y * w).sum().backward()
            assert x.grad is None or x.grad.abs().sum() == 0


def test_declared_flags():
    flags = {n: (DEFENCES.get(n).differentiable, DEFENCES.get(n).random, DEFENCES.get(n).geometric)
             for n in CLASSICAL}
    assert flags["jpeg"] == (False, False, False)
    assert flags["nlm"][0] is False and flags["color-quantization"][0] is False
    assert flags["diffjpeg"][0] is True
    assert {n for n, f in flags.items() if f[1]} == {"random-noise", "random-crop", "random-rotate"}
    assert {n for n, f in flags.items() if f[2]} == {"flip", "random-crop", "random-rotate"}


BAD = [
    ("jpeg", {"q": 0}), ("jpeg", {"q": 101}), ("diffjpeg", {"q": 0}),
    ("gaussian-blur", {"kernel_size": 4}), ("gaussian-blur", {"kernel_size": 0}),
    ("median-blur", {"kernel_size": 2}), ("unsharp", {"kernel_size": 6}),
    ("unsharp", {"sigma": 0}), ("bilateral", {"kernel_size": 4}),
    ("nlm", {"template_window": 4}), ("nlm", {"h": -1}),
    ("color-quantization", {"levels": 1}), ("random-noise", {"sigma": -0.1}),
    ("flip", {"axes": "diagonal"}), ("resize", {"scale": 0}), ("resize", {"scale": 1.5}),
    ("upscale", {"mode": "area"}), ("random-crop", {"size": 0}),
    ("random-rotate", {"angle_limit": -5}), ("jpeg", {"quality": 50}),
    ("gaussian-blur", {"kernel_size": "big"}),
]


@pytest.mark.parametrize("name,params", BAD)
def test_bad_params_raise_param_error(name, params):
    with pytest.raises(ParamError):
        DEFENCES.get(name)(params)
