"""The chain defence: steps in order, flags from its steps, per-step seeds, bad specs."""
from __future__ import annotations

import pytest
import torch

from engine.defences import DEFENCES
from engine.spec.params import ParamError
from tests.conftest import photo_tensor

Chain = DEFENCES.get("chain")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return photo_tensor("astronaut", (40, 48))


def test_steps_are_applied_in_the_given_order(x):
    quant = DEFENCES.get("color-quantization")(levels=4)
    blur = DEFENCES.get("gaussian-blur")(kernel_size=5)
    y = Chain(steps="color-quantization:levels=4,gaussian-blur:kernel_size=5")(x)
    assert torch.allclose(y, blur(quant(x)))
    assert not torch.allclose(y, quant(blur(x)), atol=1e-3)
    assert [s.name for s in Chain(steps="flip, jpeg:q=30 ,unsharp").steps] == ["flip", "jpeg", "unsharp"]


def test_preset_syntax_inside_steps(x):
    d = Chain(steps="gaussian-blur[kernel_size=7],jpeg[q=10]")
    assert d.steps[0].params.kernel_size == 7 and d.steps[1].params.q == 10
    assert torch.allclose(d(x), DEFENCES.get("jpeg")(q=10)(DEFENCES.get("gaussian-blur")(kernel_size=7)(x)))


@pytest.mark.parametrize("steps,differentiable,random,geometric", [
    ("gaussian-blur,unsharp", True, False, False),
    ("jpeg,unsharp", False, False, False),
    ("median-blur,random-noise", True, True, False),
    ("flip,color-quantization", False, False, True),
    ("random-crop:size=16,nlm", False, True, True),
])
def test_flags_follow_the_steps(steps, differentiable, random, geometric):
    d = Chain(steps=steps)
    assert (d.differentiable, d.random, d.geometric) == (differentiable, random, geometric)


def test_random_chain_is_reproducible_and_steps_get_distinct_seeds(x):
    d = Chain(steps="random-noise:sigma=0.05,random-noise:sigma=0.05")
    a, b = d(x, seed=1), d(x, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, d(x, seed=2))
    # if both steps had the chain's seed, the noise would be the same draw twice (2n)
    single = DEFENCES.get("random-noise")(sigma=0.05)
    mid = torch.full_like(x, 0.5)
    twice = d(mid, seed=3) - mid
    assert twice.std().item() == pytest.approx(0.05 * 2 ** 0.5, rel=0.1)
    assert not torch.allclose(twice, 2 * (single(mid, seed=3) - mid), atol=1e-3)


def test_gradients_flow_through_a_differentiable_chain(x):
    xi = x.clone().requires_grad_(True)
    Chain(steps="gaussian-blur,unsharp,resize")(xi).mul(torch.linspace(0, 1, 48)).sum().backward()
    assert xi.grad is not None and torch.isfinite(xi.grad).all() and xi.grad.abs().sum() > 0


@pytest.mark.parametrize("steps", ["", "gaussian-blur,,unsharp", "no-such-defence", "chain",
                                   "gaussian-blur:kernel_size=4", "jpeg:q=0", "jpeg[q=11]",
                                   "jpeg:q", "unsharp:radius=3"])
def test_bad_steps_raise_param_error(steps):
    with pytest.raises(ParamError):
        Chain(steps=steps)


def test_a_step_that_cannot_run_makes_the_chain_unavailable_with_its_reason():
    from engine.defences.base import DefenceError

    class Missing(DEFENCES.get("none")):
        @classmethod
        def availability(cls, params=None):
            from engine.metrics.base import Availability
            return Availability("unavailable", "weights file w.pth missing")

    DEFENCES._items["test-missing"] = Missing  # registered only for this test
    try:
        avail = Chain.availability({"steps": "gaussian-blur,test-missing"})
        assert avail.state == "unavailable" and "w.pth" in avail.reason
        with pytest.raises(DefenceError, match="w.pth"):
            Chain(steps="test-missing")
    finally:
        del DEFENCES._items["test-missing"]
    assert Chain.availability({"steps": "gaussian-blur,unsharp"}).state == "ready"
    assert Chain.availability({"steps": "no-such-defence"}).state == "unavailable"
