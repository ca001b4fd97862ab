"""DiffPure with OpenAI's guided-diffusion (ADM) checkpoints.

A small ADM UNet written independently (tests/engine/defences/_adm_reference.py) has
ADM's state-dict layout; its random weights are saved as a ``.pt`` the way OpenAI ships
``256x256_diffusion_uncond.pt`` and loaded through the real converter. The converted
diffusers ``UNet2DModel`` must compute what the reference computes: that proves the key
mapping and the qkv head order.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from engine.defences import DEFENCES, DefenceError
from engine.defences._adm import (
    ADM_UNCOND_256,
    ADM_UNCOND_256_URL,
    adm_config,
    infer_adm_config,
    load_adm_unet,
)
from engine.defences._neural import resize
from tests.conftest import photo_tensor
from tests.engine.defences._adm_reference import ReferenceADM, randomise
from tests.engine.defences._diffpure_checks import (
    assert_same_draw_on_clean_and_attacked,
    assert_small_t_is_nearly_the_resize_round_trip,
)

TINY = {"image_size": 32, "num_channels": 32, "channel_mult": (1, 2, 2), "num_res_blocks": 2,
        "attention_resolutions": "16,8", "num_head_channels": 16}
# for DiffPure, which uses the released models' 64 channels per attention head
TINY_64 = {"image_size": 32, "num_channels": 64, "channel_mult": (1, 2), "num_res_blocks": 1,
           "attention_resolutions": "16", "num_head_channels": 64}


def _reference(seed: int = 0, **options):
    cfg = adm_config(**{**TINY, **options})
    return cfg, randomise(ReferenceADM(cfg), seed)


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 32, 32, generator=g), torch.tensor([0, 613])


# --- the converter -----------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {},  # the paper's model's layout: resblock up/down, scale-shift norm, legacy heads, learned σ
    {"resblock_updown": False, "use_scale_shift_norm": False, "use_new_attention_order": True, "learn_sigma": False},
], ids=["adm-256-layout", "conv-resample-new-order"])
def test_converted_unet_computes_what_adm_computes(options, tmp_path):
    cfg, ref = _reference(**options)
    path = tmp_path / "32x32_tiny_adm.pt"
    torch.save(ref.state_dict(), path)
    unet = load_adm_unet(path, num_head_channels=16, use_new_attention_order=cfg.use_new_attention_order)
    assert unet.config.sample_size == 32 and unet.config.out_channels == cfg.out_channels
    x, t = _inputs()
    with torch.no_grad():
        want, got = ref(x, t), unet(x, t).sample
    assert want.abs().mean() > 0.1  # the comparison is not between two near-zero outputs
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    # the timestep reaches the network: another t gives another output
    with torch.no_grad():
        assert not torch.allclose(unet(x, t.flip(0)).sample, got, atol=1e-2)


def test_qkv_head_order_matters_and_legacy_is_the_default(tmp_path):
    _, ref = _reference()
    sd = ref.state_dict()
    x, t = _inputs(1)
    with torch.no_grad():
        want = ref(x, t)
        legacy = load_adm_unet(sd, image_size=32, num_head_channels=16)(x, t).sample
        new = load_adm_unet(sd, image_size=32, num_head_channels=16, use_new_attention_order=True)(x, t).sample
        wrong_heads = load_adm_unet(sd, image_size=32, num_head_channels=32)(x, t).sample
    assert torch.allclose(legacy, want, atol=1e-4, rtol=1e-4)
    assert (new - want).abs().max() > 1e-2
    assert (wrong_heads - want).abs().max() > 1e-2


@pytest.mark.parametrize("options", [
    {},
    {"channel_mult": (1, 1, 2), "attention_resolutions": "32", "resblock_updown": False, "learn_sigma": False},
])
def test_config_is_read_off_the_tensors(options):
    cfg, ref = _reference(**options)
    assert infer_adm_config(ref.state_dict(), image_size=32, num_head_channels=16) == cfg


def test_the_papers_256_model_layout_converts_completely():
    cfg = adm_config()  # 256x256_diffusion_uncond.pt
    assert cfg.attention == [False, False, False, True, True, True]  # 32, 16 and 8 px
    with torch.device("meta"):  # shapes only: no 2 GB of weights
        sd = ReferenceADM(cfg).state_dict()
    assert infer_adm_config(sd) == cfg
    unet = load_adm_unet(sd)
    assert sum(p.numel() for p in unet.parameters()) == sum(v.numel() for v in sd.values())
    assert unet.config.sample_size == 256 and unet.config.out_channels == 6
    assert unet.config.down_block_types[3:] == ("AttnDownBlock2D",) * 3
    assert unet.mid_block.attentions[0].heads == 1024 // 64


def test_foreign_or_broken_files_are_clear_errors(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"foo.weight": torch.zeros(3)}, foreign)
    with pytest.raises(DefenceError, match="not a guided-diffusion"):
        load_adm_unet(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DefenceError, match="cannot read"):
        load_adm_unet(garbage)
    _, ref = _reference()
    sd = ref.state_dict()
    with pytest.raises(DefenceError, match="does not use"):
        load_adm_unet({**sd, "extra.weight": torch.zeros(1)}, num_head_channels=16)
    with pytest.raises(DefenceError, match="class-conditional"):
        load_adm_unet({**sd, "label_emb.weight": torch.zeros(1000, 128)}, num_head_channels=16)
    bad = dict(sd)
    bad["output_blocks.1.0.out_layers.3.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(DefenceError, match="do not fit"):
        load_adm_unet(bad, num_head_channels=16)
    with pytest.raises(DefenceError, match="num_head_channels"):
        load_adm_unet(sd, num_head_channels=48)


# --- DiffPure on an ADM checkpoint -------------------------------------------------------

def _save_tiny_adm(folder: Path) -> tuple[Path, ReferenceADM]:
    """A tiny learned-σ ADM saved in ``folder`` under an OpenAI-style name: (path, reference network)."""
    ref = randomise(ReferenceADM(adm_config(**TINY_64)), 3)
    with torch.no_grad():  # a calmer output layer, like a trained model's small ε and ν
        ref.out[2].weight.mul_(0.2)
    path = folder / "32x32_tiny_uncond.pt"
    torch.save(ref.state_dict(), path)
    return path, ref


@pytest.fixture(scope="module")
def adm_file(tmp_path_factory):
    return _save_tiny_adm(tmp_path_factory.mktemp("adm"))


def _guided_diffusion_sample(ref, x: torch.Tensor, t_star: int, seed: int) -> torch.Tensor:
    """DiffPure's runners/diffpure_guided.py: noise to t*, then guided-diffusion's p_sample
    (learned-range variance, x̂₀ clipped) down to 0, written from the formulas in float64."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    ac = torch.cumprod(1 - betas, 0)
    ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    post_var = betas * (1 - ac_prev) / (1 - ac)
    post_log_var = torch.log(torch.cat([post_var[1:2], post_var[1:]]))
    coef_x0 = betas * ac_prev.sqrt() / (1 - ac)
    coef_xt = (1 - ac_prev) * (1 - betas).sqrt() / (1 - ac)
    g = torch.Generator().manual_seed(seed)
    h, w = x.shape[-2:]
    z0 = resize(x, (32, 32)) * 2 - 1
    noise = torch.randn(z0.shape, generator=g)
    a = ac[t_star - 1]
    z = (a.sqrt() * z0 + (1 - a).sqrt() * noise).float()
    with torch.no_grad():
        for t in range(t_star - 1, -1, -1):
            eps, nu = ref(z, torch.tensor([t])).double().chunk(2, dim=1)
            frac = (nu + 1) / 2
            log_var = frac * math.log(betas[t]) + (1 - frac) * post_log_var[t]
            x0 = ((z.double() - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()).clamp(-1, 1)
            mean = coef_x0[t] * x0 + coef_xt[t] * z.double()
            if t > 0:
                mean = mean + (0.5 * log_var).exp() * torch.randn(z.shape, generator=g).double()
            z = mean.float()
    return resize(((z + 1) / 2).clamp(0, 1), (h, w))


def test_diffpure_with_adm_runs_diffpures_guided_sampler(adm_file, weights):
    path, ref = adm_file
    (weights / path.name).write_bytes(path.read_bytes())
    cls = DEFENCES.get("diffpure")
    assert cls.availability({"model": path.name}).ok  # found by name in the weights folder
    d = cls(model=path.name, t=4)
    x = photo_tensor("coffee", (40, 56))
    y = d(x, seed=3)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    scheduler = d.model[1]
    assert scheduler.config.variance_type == "learned_range" and scheduler.config.clip_sample
    assert torch.allclose(y, _guided_diffusion_sample(ref, x, 4, seed=3), atol=2e-4)


def test_diffpure_with_adm_same_seed_same_draw_on_clean_and_attacked(adm_file):
    assert_same_draw_on_clean_and_attacked(str(adm_file[0]))


def test_diffpure_with_adm_small_t_is_nearly_the_resize_round_trip(adm_file):
    assert_small_t_is_nearly_the_resize_round_trip(str(adm_file[0]))


def test_the_default_is_the_papers_checkpoint_and_its_absence_is_reported(weights):
    cls = DEFENCES.get("diffpure")
    assert cls.Params().model == ADM_UNCOND_256
    av = cls.availability()
    assert av.state == "unavailable"
    for text in (ADM_UNCOND_256, ADM_UNCOND_256_URL, str(weights)):
        assert text in av.reason
    assert cls.availability({"allow_download": True}).state == "needs-download"
    other = cls.availability({"model": "my_adm.pt", "allow_download": True})
    assert other.state == "unavailable" and "my_adm.pt" in other.reason  # no known URL to fetch it from
    t0 = time.perf_counter()
    with pytest.raises(DefenceError, match=ADM_UNCOND_256):
        cls()(photo_tensor("coffee", (32, 32)), seed=0)
    assert time.perf_counter() - t0 < 5


def test_diffpure_with_a_foreign_pt_is_a_clear_error(weights):
    torch.save({"foo.weight": torch.zeros(3)}, weights / ADM_UNCOND_256)
    cls = DEFENCES.get("diffpure")
    assert cls.availability().ok  # the file is there; what it holds shows when it is loaded
    with pytest.raises(DefenceError, match="cannot load model.*not a guided-diffusion"):
        cls()(photo_tensor("coffee", (32, 32)), seed=0)
