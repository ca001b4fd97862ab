"""The paper's learned metrics reproduce MSU's wrappers for the same weights file (issue 26).

Each reference (``msu_reference.py``) is an independent plain-torch re-derivation of MSU's
``MetricModel`` with seeded random weights (BatchNorm statistics included), saved in the
layout MSU's wrapper loads (the authors' release layout). The same file is loaded through
``create_metric(name, weights=FILE)`` with default settings, and scores and input
gradients are compared on real photos of non-square sizes. A file with a renamed, missing
or misshapen tensor is refused with a message naming the file and the keys.
"""
from __future__ import annotations

import pytest
import torch

from engine.core.errors import EXIT_USAGE, describe
from engine.metrics import WeightsMismatch, create_metric
from tests.conftest import photo_tensor
from tests.engine.metrics import msu_reference as ref

TOL = 1e-4  # the goal: relative, in scores and in input gradients

#: Non-square photos, both orientations; every side ≥ 224 so that MSU's SPAQ can score
#: them (its patcher has no patch to cut below 224), and whose sides are not multiples of
#: the patch stride, so the last patch is the one flush with the edge.
SIZES = {"landscape": ("coffee", (224, 300)), "portrait": ("astronaut", (260, 224))}


def _photo(key: str) -> torch.Tensor:
    name, size = SIZES[key]
    return photo_tensor(name, size)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the reference's largest magnitude."""
    return ((a - b).abs().max() / a.abs().max()).item()


def _grad(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    s = fn(x)
    s.sum().backward()
    return s.detach(), x.grad


@pytest.fixture(scope="module", params=["linearity", "spaq", "metaiqa"])
def pair(request, tmp_path_factory):
    """(name, MSU reference, our metric loaded from the reference's file, the file)."""
    name = request.param
    reference = {"linearity": ref.MsuLinearity, "spaq": ref.MsuSpaq,
                 "metaiqa": ref.MsuMetaIqa}[name]()
    path = reference.save(tmp_path_factory.mktemp(name) / f"{name}_msu_layout.pth")
    ours = create_metric(name, weights=str(path))
    yield name, reference, ours, path
    del ours, reference


@pytest.mark.parametrize("key", sorted(SIZES))
def test_default_scores_match_msus_wrapper(pair, key):
    name, reference, ours, _ = pair
    x = _photo(key)
    with torch.no_grad():
        expected = reference(x)
    got = ours.score(x)
    assert torch.isfinite(expected).all() and expected.abs().max() > 0
    assert _rel(expected, got) <= TOL, (name, key, expected.tolist(), got.tolist())


def test_default_input_gradients_match_msus_wrapper(pair):
    name, reference, ours, _ = pair
    x = _photo("landscape")
    s_ref, g_ref = _grad(reference, x)
    s_ours, g_ours = _grad(lambda t: ours.score(t, grad=True), x)
    assert g_ref.abs().max() > 0
    assert _rel(s_ref, s_ours) <= TOL
    assert _rel(g_ref, g_ours) <= TOL, name
    cos = torch.nn.functional.cosine_similarity(g_ref.flatten(), g_ours.flatten(), dim=0)
    assert cos > 1 - 1e-6


# --- refusals --------------------------------------------------------------------------


def _mutations(state: dict[str, torch.Tensor]) -> dict[str, tuple[dict, str]]:
    """Three broken copies of ``state`` and the key each message must name."""
    keys = [k for k in state if not k.endswith("num_batches_tracked")]
    renamed_key = next(k for k in keys if k.endswith("running_var"))  # a BN statistic
    missing_key = keys[len(keys) // 2]
    shape_key = next(k for k in keys if k.endswith(".weight") and state[k].dim() == 2)
    renamed = {(k + "_renamed" if k == renamed_key else k): v for k, v in state.items()}
    missing = {k: v for k, v in state.items() if k != missing_key}
    reshaped = dict(state)
    reshaped[shape_key] = state[shape_key][:, :-1].clone()
    return {"renamed": (renamed, renamed_key), "missing": (missing, missing_key),
            "shape": (reshaped, shape_key)}


@pytest.mark.parametrize("kind", ["renamed", "missing", "shape"])
def test_a_file_that_does_not_fit_is_refused(pair, kind, tmp_path):
    name, reference, _, _ = pair
    broken, key = _mutations(reference.model.state_dict())[kind]
    path = reference.save(tmp_path / f"{name}_{kind}.pth", state=broken)
    with pytest.raises(WeightsMismatch) as info:
        create_metric(name, weights=str(path))
    msg = str(info.value)
    assert str(path) in msg and "does not fit" in msg
    # the message names the offending key in the network's naming (MetaIQA's MSU 'net.'
    # head is pyiqa's 'head.')
    shown = key.replace("net.", "head.", 1) if name == "metaiqa" and key.startswith("net.") else key
    assert shown in msg, msg
    assert {"renamed": "unexpected", "missing": "missing", "shape": "wrong shape"}[kind] in msg
    assert "\n" not in msg
    text, code = describe(info.value, save=False)
    assert code == EXIT_USAGE and str(path) in text


def test_metaiqa_msu_layout_fills_the_head():
    """Regression for pyiqa's silent skip: the 18 head tensors come from the file."""
    import tempfile
    from pathlib import Path

    reference = ref.MsuMetaIqa(seed=5)
    with tempfile.TemporaryDirectory() as d:
        ours = create_metric("metaiqa", weights=str(reference.save(Path(d) / "m.pth")))
    head = {k: v for k, v in reference.model.state_dict().items() if k.startswith("net.")}
    assert len(head) == 18
    mine = ours.net.state_dict()
    for k, v in head.items():
        assert torch.equal(mine["head." + k[len("net."):]], v), k
