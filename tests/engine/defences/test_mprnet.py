"""MPRNet on tiny random-weight models of the real architecture, saved the way the
authors ship ``model_denoising.pth`` (``{"state_dict": ...}``, keys with or without the
``module.`` prefix of a DataParallel checkpoint), loaded through spandrel."""
from __future__ import annotations

import pytest
import torch

from engine.defences import DEFENCES, DefenceError
from engine.defences._neural import pad_to_multiple
from tests.conftest import photo_tensor

pytest.importorskip("spandrel_extra_arches", reason="MPRNet's architecture comes from spandrel-extra-arches: pip install -e '.[neural]'")


def _tiny_mprnet(seed: int = 0, num_cab: int = 1):
    from spandrel_extra_arches.architectures.MPRNet import MPRNet

    torch.manual_seed(seed)
    net = MPRNet(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=num_cab)
    with torch.no_grad():  # random weights everywhere, so every stage shapes the output
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _save_like_authors(net, path, *, data_parallel: bool = False) -> None:
    sd = net.state_dict()
    if data_parallel:
        sd = {f"module.{k}": v for k, v in sd.items()}
    torch.save({"epoch": 80, "state_dict": sd, "optimizer": {}}, path)


def _reference(net, x):
    padded, (h, w) = pad_to_multiple(x, 8)
    with torch.no_grad():
        return net(padded)[0][..., :h, :w].clamp(0, 1)


@pytest.mark.parametrize("data_parallel", [False, True])
def test_mprnet_runs_the_authors_checkpoint_layout(weights, data_parallel):
    net = _tiny_mprnet(0)
    _save_like_authors(net, weights / "model_denoising.pth", data_parallel=data_parallel)
    cls = DEFENCES.get("mprnet")
    assert cls.availability().state == "ready"
    x = photo_tensor("astronaut", (44, 60))  # not a multiple of 8: padded and cropped back
    y = cls()(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert torch.allclose(y, _reference(net, x), atol=1e-5)
    other = _tiny_mprnet(1)
    assert not torch.allclose(y, _reference(other, x), atol=1e-3)


def test_mprnet_is_deterministic_and_differentiable(weights):
    _save_like_authors(_tiny_mprnet(0, num_cab=2), weights / "model_denoising.pth")
    d = DEFENCES.get("mprnet")()
    assert d.differentiable and not d.random
    x = photo_tensor("coffee", (32, 40))
    assert torch.equal(d(x, seed=1), d(x, seed=2))
    xg = x.clone().requires_grad_(True)
    d(xg).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


def test_mprnet_weights_can_be_named_by_path(tmp_path, weights):
    net = _tiny_mprnet(3)
    path = tmp_path / "elsewhere" / "my_mprnet.pth"
    path.parent.mkdir()
    _save_like_authors(net, path)
    cls = DEFENCES.get("mprnet")
    assert cls.availability().state == "unavailable"  # the default file is still missing
    assert cls.availability({"weights": str(path)}).state == "ready"
    x = photo_tensor("chelsea", (32, 32))
    assert torch.allclose(cls(weights=str(path))(x), _reference(net, x), atol=1e-5)


def test_mprnet_foreign_model_is_a_clear_error(weights):
    from spandrel.architectures.Compact import Compact

    torch.save({"params": Compact(num_feat=8, num_conv=2, upscale=4).state_dict()},
               weights / "model_denoising.pth")
    with pytest.raises(DefenceError, match="expected MPRNet"):
        DEFENCES.get("mprnet")()(photo_tensor("coffee", (32, 32)))
    (weights / "model_denoising.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DefenceError, match="cannot load"):
        DEFENCES.get("mprnet")()(photo_tensor("coffee", (32, 32)))
