"""Linearity IQA: the authors' architecture, checkpoint layout and scoring."""
from __future__ import annotations

import time

import pytest
import torch
import torchvision

from engine.metrics import create_metric, metric_info
from engine.metrics.linearity import CHECKPOINT, Linearity, linearity_preprocess
from engine.metrics.weights import OFFLINE_ENV, WEIGHTS_ENV, WeightsUnavailable, network_reachable


@pytest.fixture(scope="module")
def model() -> Linearity:
    torch.manual_seed(0)
    return create_metric("linearity", pretrained=False)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(2, 3, 64, 64)


def test_head_layout_matches_the_authors_iqamodel(model):
    sd = model.net.state_dict()
    expected_heads = {}
    for head, width in (("dr6", 1024), ("dr7", 2048)):
        # Linear(width→1024), BN(1024), Linear(1024→256), BN(256), Linear(256→64), BN(64), ReLU
        for idx, shape in ((0, (1024, width)), (2, (256, 1024)), (4, (64, 256))):
            expected_heads[f"{head}.{idx}.weight"] = shape
        for idx, n in ((1, 1024), (3, 256), (5, 64)):
            for p in ("weight", "bias", "running_mean", "running_var"):
                expected_heads[f"{head}.{idx}.{p}"] = (n,)
    expected_heads.update({"regr6.weight": (1, 64), "regr7.weight": (1, 64),
                           "regression.weight": (1, 128), "regression.bias": (1,)})
    for key, shape in expected_heads.items():
        assert tuple(sd[key].shape) == shape, key
    head_keys = {k for k in sd if not k.startswith("features.")}
    assert head_keys - {k for k in head_keys if k.endswith("num_batches_tracked")} == set(expected_heads) | {
        "dr6.0.bias", "dr6.2.bias", "dr6.4.bias", "dr7.0.bias", "dr7.2.bias", "dr7.4.bias",
        "regr6.bias", "regr7.bias"}


def test_backbone_is_resnext101_32x8d_without_fc(model):
    ref = torchvision.models.resnext101_32x8d(weights=None)
    ref_sd = {k: v.shape for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    # The authors' Sequential(children()[:-2]) renumbers: conv1→0, bn1→1, layer1..4→4..7.
    rename = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    mine = {k.removeprefix("features."): v.shape for k, v in model.net.state_dict().items()
            if k.startswith("features.")}
    assert mine == {rename[k.split(".")[0]] + k[len(k.split(".")[0]):]: s for k, s in ref_sd.items()}
    n_backbone = sum(p.numel() for p in model.net.features.parameters())
    n_full = sum(p.numel() for p in ref.parameters())
    assert n_full == pytest.approx(88.8e6, rel=2e-3)  # the published 88.8M (incl. fc)
    assert n_backbone == n_full - (2048 * 1000 + 1000)


def test_scores_shape_grad_and_batch_of_one(model, x):
    xi = x.clone().requires_grad_(True)
    s = model.score(xi, grad=True)
    assert s.shape == (2,) and torch.isfinite(s).all()
    s.sum().backward()
    assert torch.isfinite(xi.grad).all() and xi.grad.abs().flatten(1).sum(1).gt(0).all()
    one = model.score(x[:1])  # BatchNorm1d on a batch of one: eval mode makes it work
    torch.testing.assert_close(one, s[:1].detach(), rtol=1e-4, atol=1e-5)
    model.train()
    assert not model.net.training  # a metric never leaves eval mode


K, B = [1.5, 2.0, 7.25], [0.0, -1.0, 30.5]
"""Distinct per index: index 0 belongs to the final output (authors' IQAperformance.py)."""


@pytest.fixture(scope="module")
def authors_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("lin") / "p1q2_random.pth"
    # DataParallel's "module." prefix, as saved from a multi-GPU run, is accepted too.
    state = {f"module.{n}": v for n, v in model.net.state_dict().items()}
    torch.save({"model": state, "k": K, "b": B, "min": 3.0, "max": 90.0}, path)
    return path


@pytest.mark.parametrize("preset, resize, index", [
    ("msu", False, 0),                    # MSU's MetricModel: native size, k[0], b[0]
    ("authors-train-resize", True, 0),    # main.py --resize; IQAperformance fits k[0] to y[-1]
    ("authors-demo", False, -1),          # test_demo.py: y[-1]·k[-1] + b[-1]
    ("authors-demo-resize", True, -1),    # test_demo.py --resize (498×664)
])
def test_presets_map_the_final_output_as_their_source_does(model, x, authors_file, preset,
                                                            resize, index):
    loaded = create_metric("linearity", weights=str(authors_file), preset=preset)
    raw = model.net(linearity_preprocess(x, resize=resize))[-1].reshape(-1)
    torch.testing.assert_close(loaded.score(x), raw * K[index] + B[index], rtol=1e-6, atol=1e-5)
    assert preset in repr(loaded) and f"k[{index}]" in repr(loaded)


def test_default_is_msus_wrapper():
    from engine.metrics import metric_params

    assert {s.name: s.default for s in metric_params("linearity")}["preset"] == "msu"


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": {"fc.weight": torch.zeros(1)}, "k": [1], "b": [0]}, path)
    with pytest.raises(Exception, match="does not fit") as info:
        Linearity(weights=str(path))
    assert "fc.weight" in str(info.value) and str(path) in str(info.value)


def test_resize_matches_the_koniq_setting():
    x = torch.rand(1, 3, 100, 80)
    assert linearity_preprocess(x).shape == (1, 3, 498, 664)
    assert linearity_preprocess(x, resize=False).shape == (1, 3, 100, 80)


def test_missing_checkpoint_offline(monkeypatch, tmp_path):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    assert metric_info("linearity")["availability"].state == "needs-download"
    t = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        create_metric("linearity")
    assert time.monotonic() - t < 3.0
    msg = str(info.value)
    assert CHECKPOINT in msg and Linearity.checkpoint_url in msg and str(tmp_path) in msg
    (tmp_path / CHECKPOINT).write_bytes(b"x")
    assert metric_info("linearity")["availability"].state == "ready"


def test_missing_checkpoint_real_no_network(monkeypatch, tmp_path):
    if network_reachable(Linearity.checkpoint_url):
        pytest.skip("network reachable: this test checks the offline path and would download the real checkpoint")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    t = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        create_metric("linearity")
    assert time.monotonic() - t < 3.0
    assert CHECKPOINT in str(info.value) and str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []
