"""pyiqa metrics: random-weight builds, local checkpoints, missing weights offline."""
from __future__ import annotations

import time

import pytest
import torch

from engine.metrics import create_metric, metric_info
from engine.metrics import pyiqa_catalog as catalog
from engine.metrics.base import MetricError
from engine.metrics.weights import OFFLINE_ENV, WeightsUnavailable, network_reachable
from tests.conftest import photo_tensor


@pytest.fixture(scope="module")
def metaiqa():
    return create_metric("metaiqa", pretrained=False)


@pytest.fixture(scope="module")
def two_photos() -> torch.Tensor:
    return torch.cat([photo_tensor("astronaut", (96, 96)), photo_tensor("coffee", (96, 96))])


def test_metaiqa_random_weights_real_architecture(metaiqa):
    import torchvision

    keys = metaiqa.net.state_dict().keys()
    # pyiqa's MetaIQA: torchvision ResNet-18 ('resnet_layer') + the authors' head.
    resnet = torchvision.models.resnet18(weights=None).state_dict()
    assert {f"resnet_layer.{k}" for k in resnet} <= set(keys)
    assert {"head.fc1.weight", "head.bn1.running_var", "head.fc2.weight", "head.fc3.bias"} <= set(keys)
    assert metaiqa.bounds == (0.0, 1.0) and metaiqa.lower_better is False
    assert not metaiqa.net.training


def test_metaiqa_scores_and_gradients(metaiqa, two_photos):
    x = two_photos.clone().requires_grad_(True)
    s = metaiqa.score(x, grad=True)
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()  # sigmoid output
    s.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().flatten(1).sum(1).gt(0).all()
    # batch size 1 works in eval mode (BatchNorm1d in the head)
    one = metaiqa.score(two_photos[:1])
    torch.testing.assert_close(one, s[:1].detach(), rtol=1e-4, atol=1e-5)


def test_metaiqa_loads_a_local_checkpoint_exactly(metaiqa, two_photos, tmp_path):
    torch.manual_seed(1)
    source = create_metric("metaiqa", pretrained=False)  # the fixed random weights, then moved away
    with torch.no_grad():
        for p in source.net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "metaiqa_random.pth"
    torch.save(source.net.state_dict(), path)
    loaded = create_metric("metaiqa", weights=str(path))
    torch.testing.assert_close(loaded.score(two_photos), source.score(two_photos), rtol=0, atol=0)
    assert not torch.equal(metaiqa.score(two_photos), source.score(two_photos))


def test_missing_weights_file_path_is_a_clear_error(tmp_path):
    with pytest.raises(MetricError, match="does not exist"):
        create_metric("metaiqa", weights=str(tmp_path / "nope.pth"))


def _assert_names_file_url_folder(err: WeightsUnavailable, filename: str) -> None:
    msg = str(err)
    assert filename in msg
    assert err.url.startswith("https://") and err.url in msg
    assert err.folder and err.folder in msg


def test_pretrained_offline_fails_fast_with_file_url_folder(monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, "1")
    t = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        create_metric("musiq")
    assert time.monotonic() - t < 3.0
    _assert_names_file_url_folder(info.value, "musiq_koniq_ckpt-e95806b9.pth")
    assert "musiq" in str(info.value)


def test_pretrained_real_no_network_path():
    """Not monkeypatched: with no network the real pre-check must answer at once."""
    url = catalog.entry("metaiqa").files[0].url
    if network_reachable(url):
        pytest.skip("network reachable: this test checks the offline path and would download the real weights")
    t = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        create_metric("metaiqa")
    assert time.monotonic() - t < 3.0
    _assert_names_file_url_folder(info.value, "Metaiqa_livec.pth")


def test_backbones_are_not_downloaded_for_random_weights(monkeypatch):
    """DBCNN loads an ImageNet VGG-16 and a pretrained SCNN even when asked for no weights;
    with pretrained=False those loads are skipped, and nothing is fetched."""
    import socket

    def no_network(*a, **k):
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    m = create_metric("dbcnn", pretrained=False)
    assert sum(p.numel() for p in m.parameters()) > 10_000_000
    s = m.score(torch.rand(1, 3, 64, 64))
    assert s.shape == (1,) and torch.isfinite(s).all()


def test_clip_backbone_needs_its_file_even_for_random_weights(monkeypatch):
    """CLIP's shape is read from its checkpoint; the error says which file, URL, folder."""
    t = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        create_metric("clipiqa", pretrained=False)
    assert time.monotonic() - t < 3.0
    _assert_names_file_url_folder(info.value, "RN50.pt")


@pytest.mark.parametrize("name", ["piqe", "entropy"])
def test_non_differentiable_metric_says_so(name):
    m = create_metric(name)
    assert m.differentiable is False and metric_info(name)["differentiable"] is False
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    assert torch.isfinite(m.score(x)).all()  # scoring works
    with pytest.raises(MetricError, match="not differentiable"):
        m.score(x, grad=True)


def test_llm_metrics_are_listed_but_off_by_default(monkeypatch):
    monkeypatch.delenv(catalog.LLM_ENV, raising=False)
    catalog._entry.cache_clear()
    try:
        info = metric_info("qalign")
        assert info["availability"].state == "unavailable"
        assert "language model" in info["availability"].reason
        with pytest.raises(MetricError, match="language model"):
            create_metric("qalign")
    finally:
        catalog._entry.cache_clear()
