"""The one strict weights check: layouts mapped, anything that does not fit refused.

Covers the helper itself, pyiqa metrics given ``weights=FILE`` (any arch that loads
through pyiqa's ``load_pretrained_network``), MetaIQA's presets, and the purifiers'
loaders that share the check (FCN, spandrel).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.metrics import WeightsMismatch, create_metric
from engine.metrics.checkpoints import (
    compare,
    load_strict,
    rename_prefixes,
    state_dict_of,
)
from tests.conftest import photo_tensor


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 1)
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]))  # an architecture constant


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"state_dict": s},
    lambda s: {"model": s, "k": [1.0], "b": [0.0]},
    lambda s: {"params": {f"module.{k}": v for k, v in s.items()}},
    lambda s: {"model": {"state_dict": s}},
])
def test_known_layouts_unwrap_to_the_same_state(wrap):
    s = _state(_Tiny())
    got = state_dict_of(wrap(s), path="f.pth")
    assert got.keys() == s.keys() and all(torch.equal(got[k], s[k]) for k in s)


def test_constants_and_counters_may_be_absent_but_bn_statistics_may_not():
    net = _Tiny()
    s = _state(net)
    for k in ("mean", "bn.num_batches_tracked"):
        s.pop(k)
    assert not compare(net, s)
    s.pop("bn.running_var")
    m = compare(net, s)
    assert m.missing == ["bn.running_var"] and not m.unexpected and not m.shapes


def test_refusal_loads_nothing_and_names_file_and_keys():
    net, other = _Tiny(), _Tiny()
    s = _state(other)
    s["fc.weight"] = torch.zeros(1, 5)
    s["extra.weight"] = torch.zeros(2)
    before = _state(net)
    with pytest.raises(WeightsMismatch) as info:
        load_strict(net, s, source="/x/w.pth", who="demo")
    msg = str(info.value)
    assert msg.startswith("demo: weights file '/x/w.pth' does not fit")
    assert "1 unexpected (extra.weight)" in msg and "fc.weight: file (1, 5) vs network (1, 4)" in msg
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert info.value.unexpected == ["extra.weight"] and info.value.shapes[0][0] == "fc.weight"


def test_a_fitting_state_replaces_every_tensor():
    net, other = _Tiny(), _Tiny()
    with torch.no_grad():
        other.bn.running_mean.uniform_()
    load_strict(net, rename_prefixes({"old." + k: v for k, v in _state(other).items()},
                                     [("old.", "")]), source="f")
    assert all(torch.equal(net.state_dict()[k], v) for k, v in other.state_dict().items())


# --- pyiqa metrics with weights=FILE ----------------------------------------------------


@pytest.fixture(scope="module")
def cnniqa_source():
    torch.manual_seed(3)
    source = create_metric("cnniqa", pretrained=False)
    with torch.no_grad():
        for p in source.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return source


def test_pyiqa_file_in_pyiqas_layout_loads_exactly(cnniqa_source, tmp_path):
    path = tmp_path / "cnniqa.pth"
    torch.save({"params": cnniqa_source.net.state_dict()}, path)  # pyiqa's release layout
    loaded = create_metric("cnniqa", weights=str(path))
    x = photo_tensor("coffee", (64, 80))
    torch.testing.assert_close(loaded.score(x), cnniqa_source.score(x), rtol=0, atol=0)


def test_pyiqa_file_with_a_missing_tensor_is_refused(cnniqa_source, tmp_path):
    """pyiqa's own loader would raise a multi-line torch error; for strict=False archs it
    would keep random values silently. Here: one line naming the file and the key."""
    state = cnniqa_source.net.state_dict()
    dropped = next(iter(state))
    path = tmp_path / "cnniqa_broken.pth"
    torch.save({"params": {k: v for k, v in state.items() if k != dropped}}, path)
    with pytest.raises(WeightsMismatch) as info:
        create_metric("cnniqa", weights=str(path))
    msg = str(info.value)
    assert str(path) in msg and dropped in msg and "1 missing" in msg and "\n" not in msg


def test_metaiqa_pyiqa_layout_loads_and_presets_differ_as_documented(tmp_path):
    source = create_metric("metaiqa", pretrained=False)
    path = tmp_path / "metaiqa_pyiqa_layout.pth"
    torch.save({k: v for k, v in source.net.state_dict().items()
                if k not in ("mean", "std")}, path)  # pyiqa's names, constants left out
    native = create_metric("metaiqa", weights=str(path))
    resized = create_metric("metaiqa", weights=str(path), preset="pyiqa-224")
    x = photo_tensor("rocket", (240, 320))
    with torch.no_grad():
        # pyiqa-224 is pyiqa's own forward (bilinear resize to 224×224, then normalise)
        torch.testing.assert_close(resized.score(x), source.net(x).reshape(1), rtol=0, atol=0)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        expected = source.net.head(source.net.resnet_layer((x - mean) / std)).reshape(1)
    torch.testing.assert_close(native.score(x), expected, rtol=0, atol=0)
    assert not torch.allclose(native.score(x), resized.score(x))


def test_unknown_preset_is_a_clear_error():
    for name in ("metaiqa", "linearity", "spaq"):
        with pytest.raises(Exception, match="preset"):
            create_metric(name, pretrained=False, preset="nope")


# --- the purifiers' loaders share the check ---------------------------------------------


def test_fcn_checkpoint_with_a_missing_tensor_is_refused(tmp_path):
    from engine.defences import DefenceError
    from engine.defences.fcn import CHECKPOINT_FORMAT, FCNFilter, load_fcn_checkpoint

    state = FCNFilter().state_dict()
    dropped = max(state)
    path = tmp_path / "fcn_broken.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "arch": {"residual": False},
                "state_dict": {k: v for k, v in state.items() if k != dropped}}, path)
    with pytest.raises(DefenceError) as info:
        load_fcn_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith("fcn: weights file") and str(path) in msg and dropped in msg


def test_spandrel_file_loads_and_a_foreign_tensor_is_refused(tmp_path):
    pytest.importorskip("spandrel")
    from spandrel.architectures.Compact import Compact

    from engine.defences import DefenceError
    from engine.defences._neural import load_spandrel

    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4).eval()
    good = tmp_path / "compact.pth"
    torch.save({"params": net.state_dict()}, good)
    desc = load_spandrel(str(good), ("Compact",), "realesrgan")
    assert all(torch.equal(desc.model.state_dict()[k], v) for k, v in net.state_dict().items())
    bad = tmp_path / "compact_extra.pth"
    torch.save({"params": {**net.state_dict(), "extra.weight": torch.zeros(2)}}, bad)
    with pytest.raises(DefenceError) as info:
        load_spandrel(str(bad), ("Compact",), "realesrgan")
    msg = str(info.value)
    assert str(bad) in msg and "extra.weight" in msg and "\n" not in msg
