"""random_init: skips pretrained loads on its own thread only, and undoes its patches."""
from __future__ import annotations

import threading

import torch.hub
from torchvision.models import ResNet18_Weights

from engine.metrics.intercept import random_init


def test_skips_and_logs_torchvision_weights_then_restores():
    import torchvision

    log = []
    original = torch.hub.load_state_dict_from_url
    with random_init(log):
        model = torchvision.models.resnet18(weights="IMAGENET1K_V1")  # would download
        assert ResNet18_Weights.verify("IMAGENET1K_V1") is None
    assert [w.filename for w in log][0] == "resnet18-f37072fd.pth"
    assert log[0].url == ResNet18_Weights.IMAGENET1K_V1.url
    assert sum(p.numel() for p in model.parameters()) > 11_000_000
    assert ResNet18_Weights.verify("IMAGENET1K_V1") is ResNet18_Weights.IMAGENET1K_V1
    assert torch.hub.load_state_dict_from_url is original


def test_other_threads_are_not_affected():
    seen = {}

    def other():
        seen["verify"] = ResNet18_Weights.verify("IMAGENET1K_V1")

    with random_init([]):
        th = threading.Thread(target=other)
        th.start()
        th.join()
    assert seen["verify"] is ResNet18_Weights.IMAGENET1K_V1
