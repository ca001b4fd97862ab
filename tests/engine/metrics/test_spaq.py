"""SPAQ baseline: the authors' patching, checkpoint layout and scoring."""
from __future__ import annotations

import time

import pytest
import torch
import torchvision

from engine.metrics import create_metric, metric_info
from engine.metrics.spaq import CHECKPOINT, Spaq, patch_starts, spaq_patches
from engine.metrics.weights import OFFLINE_ENV, WEIGHTS_ENV, WeightsUnavailable


def _authors_starts(length: int, input_size: int = 224) -> list[int]:
    """Straight from the description of Image_load.generate_patches (stride = size/2)."""
    stride = int(input_size / 2)
    idx = [i * stride for i in range(int((length - input_size) / stride) + 1)]
    if length - input_size != idx[-1]:
        idx.append(length - input_size)
    return idx


@pytest.mark.parametrize("length", [224, 300, 336, 512, 683, 768, 1000])
def test_patch_offsets_match_the_authors(length):
    assert patch_starts(length) == _authors_starts(length)


def test_default_patches_are_cut_at_the_native_size():
    """MSU's MetricModel: no resize; 300 → columns [0, 76], 260 → rows [0, 36]."""
    x = torch.rand(2, 3, 260, 300)
    p = spaq_patches(x)
    assert p.shape == (2, 4, 3, 224, 224)
    torch.testing.assert_close(p[:, 3], x[:, :, 36:260, 76:300])


def test_authors_demo_resizes_only_images_with_both_sides_at_least_size():
    """BL_demo.py's Image_load(size=512): adaptive_resize skips images under 512."""
    small = torch.rand(1, 3, 300, 400)
    torch.testing.assert_close(spaq_patches(small, 512), spaq_patches(small))
    big = torch.rand(1, 3, 600, 900)  # → 512 × 768: rows [0,112,224,288], cols 6 offsets
    assert spaq_patches(big, 512).shape == (1, 4 * 6, 3, 224, 224)


def test_images_under_224_are_resized_up_to_one_patch():
    x = torch.rand(2, 3, 60, 90)  # neither recipe can score it: shorter side → 224
    assert spaq_patches(x).shape == (2, 2, 3, 224, 224)  # 224 × 336: columns [0, 112]


@pytest.fixture(scope="module")
def model() -> Spaq:
    torch.manual_seed(0)
    return create_metric("spaq", pretrained=False)


def test_architecture_is_resnet50_with_one_output(model):
    ref = torchvision.models.resnet50(weights=None).state_dict()
    sd = model.net.state_dict()
    assert set(sd) == {f"backbone.{k}" for k in ref}
    assert sd["backbone.fc.weight"].shape == (1, 2048) and sd["backbone.fc.bias"].shape == (1,)
    assert model.bounds == (21.75, 77.76) and model.lower_better is False


def test_score_is_the_mean_of_patch_scores(model):
    x = torch.rand(1, 3, 224, 300)  # columns 0 and 76 at the native size
    patches = spaq_patches(x)[0]
    assert patches.shape[0] == 2
    torch.testing.assert_close(model.score(x), model.net(patches).mean().reshape(1),
                               rtol=1e-5, atol=1e-5)


def test_gradient_flows_end_to_end(model):
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    s = model.score(x, grad=True)
    assert s.shape == (2,)
    s.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().flatten(1).sum(1).gt(0).all()


@pytest.fixture(scope="module")
def reference(model):
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    return x, model.score(x)


@pytest.mark.parametrize("layout", ["state_dict", "module_prefix", "bare"])
def test_checkpoint_layouts_reproduce_outputs(model, reference, tmp_path, layout):
    sd = model.net.state_dict()
    obj = {"state_dict": sd} if layout == "state_dict" else \
        {"state_dict": {f"module.{k}": v for k, v in sd.items()}} if layout == "module_prefix" else sd
    path = tmp_path / "BL_random.pt"
    torch.save(obj, path)
    loaded = create_metric("spaq", weights=str(path))
    x, expected = reference
    torch.testing.assert_close(loaded.score(x), expected, rtol=0, atol=0)


def test_authors_demo_preset_scores_the_resized_patches(model, tmp_path):
    path = tmp_path / "BL_random.pt"
    torch.save({"state_dict": model.net.state_dict()}, path)
    demo = create_metric("spaq", weights=str(path), preset="authors-demo", size=256)
    x = torch.rand(1, 3, 256, 320, generator=torch.Generator().manual_seed(4))  # already 256
    expected = model.net(spaq_patches(x)[0]).mean().reshape(1)
    torch.testing.assert_close(demo.score(x), expected, rtol=1e-5, atol=1e-5)
    x2 = torch.rand(1, 3, 300, 400, generator=torch.Generator().manual_seed(5))
    shrunk = torch.nn.functional.interpolate(x2, size=(256, 341), mode="bilinear",
                                             antialias=True)  # 400·256/300 = 341.3 → 341
    torch.testing.assert_close(demo.score(x2), model.net(spaq_patches(shrunk)[0]).mean().reshape(1),
                               rtol=1e-5, atol=1e-5)


def test_too_small_size_is_rejected():
    with pytest.raises(Exception, match="size"):
        create_metric("spaq", pretrained=False, size=100)


def test_missing_checkpoint_offline(monkeypatch, tmp_path):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    assert metric_info("spaq")["availability"].state == "needs-download"
    t = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        create_metric("spaq")
    assert time.monotonic() - t < 3.0
    msg = str(info.value)
    assert CHECKPOINT in msg and Spaq.checkpoint_url in msg and str(tmp_path) in msg
