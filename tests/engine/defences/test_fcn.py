"""The paper's FCN filter: architecture, output range, checkpoint loading as a defence."""
from __future__ import annotations

import time

import pytest
import torch

from engine.defences import DEFENCES, DefenceError
from engine.defences.fcn import (
    CHECKPOINT_FORMAT,
    FCNFilter,
    load_fcn_checkpoint,
    param_count,
)
from tests.conftest import photo_tensor


def _conv_params(cin: int, cout: int, k: int = 3) -> int:
    return cin * cout * k * k + cout


def _save(path, model: FCNFilter, manifest=None) -> None:
    torch.save({"format": CHECKPOINT_FORMAT, "arch": {"residual": model.residual},
                "state_dict": model.state_dict(), "manifest": manifest or {"seed": 3}}, path)


def test_parameter_count_is_the_papers_three_convolutions():
    n = param_count(FCNFilter())
    assert n == _conv_params(3, 64) + _conv_params(64, 16) + _conv_params(16, 3)
    assert 11_000 < n < 12_000  # "about 11.5k"
    assert param_count(FCNFilter(residual=True)) == n


def test_keeps_size_and_range_even_with_huge_weights():
    torch.manual_seed(0)
    net = FCNFilter()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(50)
    x = photo_tensor("coffee", (37, 53))
    y = net(x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1
    assert (y == 0).any() or (y == 1).any()  # the clamp is actually exercised
    raw = net.raw(x)
    assert raw.min() < 0  # tanh output is clamped, not rescaled


def test_residual_form_with_zero_last_layer_is_identity():
    net = FCNFilter(residual=True)
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
    x = photo_tensor("chelsea", (48, 48))
    assert torch.allclose(net(x), x)


def test_checkpoint_loads_as_defence_with_same_output(tmp_path):
    torch.manual_seed(1)
    net = FCNFilter().eval()
    path = tmp_path / "my.pt"
    _save(path, net, {"seed": 3, "attack": {"name": "ifgsm"}})
    d = DEFENCES.get("fcn")(checkpoint=str(path))
    assert d.availability({"checkpoint": str(path)}).ok
    x = photo_tensor("astronaut", (64, 64))
    assert torch.allclose(d(x), net(x), atol=1e-6)
    assert d.manifest["attack"]["name"] == "ifgsm"
    model, manifest = load_fcn_checkpoint(path)
    assert manifest["seed"] == 3 and not any(p.requires_grad for p in model.parameters())


def test_defence_is_differentiable(tmp_path):
    torch.manual_seed(2)
    path = tmp_path / "f.pt"
    _save(path, FCNFilter())
    d = DEFENCES.get("fcn")(checkpoint=str(path))
    assert d.differentiable and not d.random
    x = photo_tensor("rocket", (32, 32)).requires_grad_(True)
    d(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_default_checkpoint_comes_from_the_weights_folder(weights):
    cls = DEFENCES.get("fcn")
    av = cls.availability()
    assert av.state == "unavailable" and "fcn.pt" in av.reason and str(weights) in av.reason
    t0 = time.perf_counter()
    with pytest.raises(DefenceError, match="fcn.pt"):
        cls()(photo_tensor("coffee", (32, 32)))
    assert time.perf_counter() - t0 < 5
    torch.manual_seed(4)
    net = FCNFilter().eval()
    _save(weights / "fcn.pt", net)
    assert cls.availability().ok
    x = photo_tensor("coffee", (32, 32))
    assert torch.allclose(cls()(x), net(x), atol=1e-6)


def test_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(DefenceError, match="not an FCN checkpoint"):
        DEFENCES.get("fcn")(checkpoint=str(bad))(photo_tensor("coffee", (32, 32)))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(DefenceError, match="cannot read"):
        load_fcn_checkpoint(junk)
