"""Fixtures of the attack tests: small batches of real photos and a learned metric."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import photo_tensor

#: four photos, small crops: attacks run batched, one metric call per iteration
BATCH_NAMES = ("astronaut", "coffee", "chelsea", "rocket")
SIDE = 128


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """One intra-op thread while these tests run: on the shared 2-core machine two threads
    contend with the other jobs and one metric call gets 5-40× slower (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def batch() -> torch.Tensor:
    """4×3×128×128 real photos in [0, 1]."""
    return torch.cat([photo_tensor(n, (SIDE, SIDE)) for n in BATCH_NAMES])


@pytest.fixture(scope="session")
def metaiqa():
    """MetaIQA's real architecture (ResNet-18 + head) with random weights."""
    from engine.metrics import create_metric

    return create_metric("metaiqa", device="cpu", pretrained=False)
