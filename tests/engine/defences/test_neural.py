"""Neural purifiers on tiny random-weight models of the real architectures.

The models are written the way their authors ship them (a Real-ESRGAN .pth with a
``params`` key, a diffusers folder / hub-cache snapshot) so the real loading path runs.
"""
from __future__ import annotations

import shutil
import time

import pytest
import torch

from engine.defences import DEFENCES, DefenceError
from engine.defences._neural import resize
from tests.conftest import photo_tensor
from tests.engine.defences._diffpure_checks import (
    assert_same_draw_on_clean_and_attacked,
    assert_small_t_is_nearly_the_resize_round_trip,
)

# --- Real-ESRGAN -------------------------------------------------------------------------

def _compact(seed: int):
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4)
    with torch.no_grad():  # PReLU slopes start equal; make the two models differ everywhere
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _save_release(net, path) -> None:
    torch.save({"params": net.state_dict()}, path)  # the authors' file layout


def _down_up(net, x):
    h, w = x.shape[-2:]
    return resize(net(resize(x, (round(h / 4), round(w / 4)))).clamp(0, 1), (h, w))


def test_realesrgan_missing_weights_is_reported_not_crashed(weights):
    cls = DEFENCES.get("realesrgan")
    av = cls.availability()
    assert av.state == "unavailable"
    for text in ("realesr-general-x4v3.pth", "realesr-general-wdn-x4v3.pth",
                 "https://github.com/xinntao/Real-ESRGAN/releases", str(weights)):
        assert text in av.reason
    only_strong = cls.availability({"denoise_strength": 1.0}).reason
    assert "x4v3.pth" in only_strong and "wdn" not in only_strong
    assert cls.availability({"allow_download": True}).state == "needs-download"
    t0 = time.perf_counter()
    with pytest.raises(DefenceError, match="realesr-general"):
        cls()(photo_tensor("coffee", (32, 32)))
    assert time.perf_counter() - t0 < 5


def test_realesrgan_full_strength_runs_the_loaded_model(weights):
    net = _compact(0)
    _save_release(net, weights / "realesr-general-x4v3.pth")
    d = DEFENCES.get("realesrgan")(denoise_strength=1.0)
    assert d.availability({"denoise_strength": 1.0}).ok
    x = photo_tensor("astronaut", (50, 66))
    y = d(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    with torch.no_grad():
        assert torch.allclose(y, _down_up(net, x), atol=1e-5)
    up_down = DEFENCES.get("realesrgan")(denoise_strength=1.0, mode="up-down")(x)
    assert up_down.shape == x.shape and not torch.allclose(up_down, y, atol=1e-3)


def test_realesrgan_denoise_strength_interpolates_the_two_models(weights):
    strong, weak = _compact(0), _compact(1)
    _save_release(strong, weights / "realesr-general-x4v3.pth")
    _save_release(weak, weights / "realesr-general-wdn-x4v3.pth")
    s = 0.3
    mixed = _compact(2)
    sd_s, sd_w = strong.state_dict(), weak.state_dict()
    mixed.load_state_dict({k: s * sd_s[k] + (1 - s) * sd_w[k] for k in sd_s})
    x = photo_tensor("chelsea", (48, 48))
    y = DEFENCES.get("realesrgan")(denoise_strength=s)(x)
    with torch.no_grad():
        assert torch.allclose(y, _down_up(mixed, x), atol=1e-5)
        assert not torch.allclose(y, _down_up(strong, x), atol=1e-3)
    cls = DEFENCES.get("realesrgan")
    own = [p["denoise_strength"] for label, p in cls.presets.items() if label not in cls.literal_presets]
    assert own == [0.0, 0.2, 0.5, 0.8, 1.0]


def test_realesrgan_is_differentiable(weights):
    _save_release(_compact(0), weights / "realesr-general-x4v3.pth")
    d = DEFENCES.get("realesrgan")(denoise_strength=1.0)
    x = photo_tensor("rocket", (32, 32)).requires_grad_(True)
    d(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_realesrgan_foreign_file_is_a_clear_error(weights):
    torch.save({"foo.weight": torch.zeros(3)}, weights / "realesr-general-x4v3.pth")
    with pytest.raises(DefenceError, match="cannot load"):
        DEFENCES.get("realesrgan")(denoise_strength=1.0)(photo_tensor("coffee", (32, 32)))


# --- MPRNet ------------------------------------------------------------------------------

def test_mprnet_unavailable_names_what_is_missing(weights):
    import importlib.util

    cls = DEFENCES.get("mprnet")
    av = cls.availability()
    assert av.state == "unavailable"
    assert "model_denoising.pth" in av.reason and "drive.google.com" in av.reason and str(weights) in av.reason
    if importlib.util.find_spec("spandrel_extra_arches") is None:
        assert "spandrel-extra-arches" in av.reason
    t0 = time.perf_counter()
    with pytest.raises(DefenceError, match="mprnet"):
        cls()(photo_tensor("coffee", (32, 32)))
    assert time.perf_counter() - t0 < 5


# --- DiffPure ----------------------------------------------------------------------------

def _tiny_ddpm(folder, steps: int = 100):
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    unet.save_pretrained(folder / "unet")
    DDPMScheduler(num_train_timesteps=steps).save_pretrained(folder / "scheduler")
    return folder


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory):
    return _tiny_ddpm(tmp_path_factory.mktemp("ddpm"))


def test_diffpure_keeps_size_and_range(ddpm):
    cls = DEFENCES.get("diffpure")
    assert cls.availability({"model": str(ddpm)}).ok
    assert cls.random and not cls.differentiable
    x = photo_tensor("coffee", (40, 56))
    y = cls(model=str(ddpm), t=5)(x, seed=1)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_diffpure_same_seed_same_draw_on_clean_and_attacked(ddpm):
    assert_same_draw_on_clean_and_attacked(str(ddpm))


def test_diffpure_small_t_is_nearly_the_resize_round_trip(ddpm):
    assert_small_t_is_nearly_the_resize_round_trip(str(ddpm))
    assert [p["t"] for p in DEFENCES.get("diffpure").presets.values()] == [5, 10, 20, 30, 50]


def test_diffpure_loads_a_hub_model_from_the_weights_folder_offline(ddpm, weights):
    snap = weights / "huggingface" / "models--tiny--ddpm"
    shutil.copytree(ddpm, snap / "snapshots" / "0123456789abcdef0123456789abcdef01234567")
    (snap / "refs").mkdir()
    (snap / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    cls = DEFENCES.get("diffpure")
    assert cls.availability({"model": "tiny/ddpm"}).ok
    x = photo_tensor("rocket", (32, 32))
    assert torch.equal(cls(model="tiny/ddpm", t=3)(x, seed=4), cls(model=str(ddpm), t=3)(x, seed=4))


def test_diffpure_missing_model_is_reported_quickly(weights, tmp_path):
    cls = DEFENCES.get("diffpure")
    av = cls.availability({"model": "nobody-here/no-such-ddpm"})
    assert av.state == "unavailable"
    assert "https://huggingface.co/nobody-here/no-such-ddpm" in av.reason and str(weights) in av.reason
    # the default is the ADM .pt (test_diffpure_adm.py); hub ids are named explicitly
    assert "ddpm-ema-church-256" in cls.availability({"model": "google/ddpm-ema-church-256"}).reason
    t0 = time.perf_counter()
    with pytest.raises(DefenceError, match="not in the local cache"):
        cls(model="nobody-here/no-such-ddpm")(photo_tensor("coffee", (32, 32)), seed=0)
    assert time.perf_counter() - t0 < 5
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    assert "not a diffusers" in cls.availability({"model": str(not_a_model)}).reason
