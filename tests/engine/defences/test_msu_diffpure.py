"""DiffPure's ``msu-literal`` presets against MSU's ``diffpure/run.py`` re-derived in
:func:`tests.engine.defences.msu_defence_reference.diffpure`.

The network is the same on both sides: a tiny guided-diffusion UNet with learned σ
(written independently in ``_adm_reference.py``), its seeded random weights saved as an
OpenAI ``.pt`` and loaded through the project's converter. What is compared is the
algorithm around it (resizing, value mapping, schedule, noising to t*, the sampler, the
draw order and the final clamp), at MSU's five t* on real photos, square and non-square.
"""
from __future__ import annotations

import pytest
import torch

from engine.defences import DEFENCES
from engine.defences._adm import adm_config
from tests.conftest import photo_tensor
from tests.engine.defences import msu_defence_reference as ref
from tests.engine.defences._adm_reference import ReferenceADM, randomise

TOL = 1 / 255 + 1e-6
MODEL_SIZE = 32
TINY = {"image_size": MODEL_SIZE, "num_channels": 64, "channel_mult": (1, 2), "num_res_blocks": 1,
        "attention_resolutions": "16", "num_head_channels": 64}


@pytest.fixture(scope="module")
def tiny_adm(tmp_path_factory):
    """(path of a tiny learned-σ ADM .pt, the independent reference network with its weights)."""
    net = randomise(ReferenceADM(adm_config(**TINY)), 11).eval()
    with torch.no_grad():  # a calmer output layer, like a trained model's small ε and ν
        net.out[2].weight.mul_(0.2)
    path = tmp_path_factory.mktemp("adm") / f"{MODEL_SIZE}x{MODEL_SIZE}_tiny_uncond.pt"
    torch.save(net.state_dict(), path)
    return str(path), net


def _literal() -> dict[str, dict]:
    cls = DEFENCES.get("diffpure")
    return {label: cls.presets[label] for label in cls.literal_presets}


def test_literal_presets_are_msus_five():
    presets = _literal()
    assert sorted(p["t"] for p in presets.values()) == [5, 10, 20, 30, 50]
    assert all(p["resample"] == "bilinear" and p["draw"] == "device" for p in presets.values())


# all five t* on the non-square photo; the square one at the two cheapest (CPU time)
CASES = [("coffee", (48, 64), t) for t in (5, 10, 20, 30, 50)] + [("chelsea", (40, 40), t) for t in (5, 10)]


@pytest.mark.parametrize("name,size,t", CASES, ids=[f"{n}-{s[0]}x{s[1]}-t{t}" for n, s, t in CASES])
def test_literal_presets_run_msus_diffpure(tiny_adm, name, size, t):
    path, net = tiny_adm
    p = _literal()[f"msu-literal t={t}"]
    x = photo_tensor(name, size)
    y = DEFENCES.get("diffpure")(**{**p, "model": path})(x, seed=7)
    want = ref.diffpure(net, x, t, seed=7, size=MODEL_SIZE)
    assert y.shape == want.shape == x.shape
    assert (y - want).abs().max() <= TOL
    if t == 20:  # the draw is the recipe too: another seed is far off
        assert (y - ref.diffpure(net, x, t, seed=8, size=MODEL_SIZE)).abs().max() > 10 / 255


def test_project_default_resizes_differently(tiny_adm):
    """The default (anti-aliased bicubic) is another image than MSU's bilinear one."""
    path, net = tiny_adm
    x = photo_tensor("coffee", (48, 64))
    own = DEFENCES.get("diffpure")(t=5, model=path)(x, seed=7)
    assert (own - ref.diffpure(net, x, 5, seed=7, size=MODEL_SIZE)).abs().max() > 2 / 255


def test_device_draw_is_the_cpu_draw_on_the_cpu(tiny_adm):
    path, _ = tiny_adm
    x = photo_tensor("chelsea", (40, 40))
    cls = DEFENCES.get("diffpure")
    a = cls(t=5, model=path, resample="bilinear", draw="device")(x, seed=3)
    b = cls(t=5, model=path, resample="bilinear", draw="cpu")(x, seed=3)
    assert torch.equal(a, b)
