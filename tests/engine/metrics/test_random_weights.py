"""Metrics built with ``pretrained=False`` are one fixed function: the same random
weights in every build (so CPU and CUDA runs, or a rerun, agree), drawn without
disturbing the caller's random stream."""
from __future__ import annotations

import pytest
import torch

from engine.metrics import create_metric
from tests.conftest import photo_tensor


@pytest.mark.parametrize("name", ["linearity", "spaq", "metaiqa"])
def test_random_weight_metric_is_the_same_in_every_build(name):
    x = photo_tensor("astronaut", (96, 96))
    torch.manual_seed(123)
    a = create_metric(name, pretrained=False)
    torch.manual_seed(456)  # whatever the caller's stream is
    b = create_metric(name, pretrained=False)
    wa = torch.cat([p.detach().flatten() for p in a.parameters()])
    wb = torch.cat([p.detach().flatten() for p in b.parameters()])
    assert wa.numel() > 1000 and torch.equal(wa, wb)
    assert torch.equal(a.score(x), b.score(x))


def test_building_a_metric_leaves_the_callers_random_stream_alone():
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    create_metric("linearity", pretrained=False)
    assert torch.equal(torch.rand(4), expected)
