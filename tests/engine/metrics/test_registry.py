"""create_metric / list_metrics / metric_info / metric_params."""
from __future__ import annotations

import socket
import time

import pytest
import torch

from engine.metrics import MetricError, create_metric, list_metrics, metric_info, metric_params
from engine.metrics import pyiqa_catalog as catalog


def _pyiqa_nr_names() -> set[str]:
    from pyiqa.default_model_configs import DEFAULT_CONFIGS
    return {n for n, c in DEFAULT_CONFIGS.items() if c.get("metric_mode") == "NR"}


def test_every_pyiqa_nr_quality_metric_is_listed():
    names = list_metrics()
    assert names[:3] == ["linearity", "spaq", "torchscript"]
    assert len(names) == len(set(names))
    assert set(names) == {"linearity", "spaq", "torchscript"} | (_pyiqa_nr_names() - set(catalog.EXCLUDED))
    for excluded in ("fid", "sfid", "fid_dinov2", "inception_score", "clipscore"):
        assert excluded not in names


def test_metric_info_is_fast_and_offline(monkeypatch):
    """No network, no model: every name is described from files on disk."""
    def boom(*a, **k):
        raise AssertionError("metric_info touched the network")

    monkeypatch.setattr(socket, "getaddrinfo", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    import pyiqa
    monkeypatch.setattr(pyiqa, "create_metric", boom)
    t = time.monotonic()
    infos = [metric_info(n) for n in list_metrics()]
    assert time.monotonic() - t < 2.0
    for info in infos:
        assert info["availability"].state in ("ready", "needs-download", "unavailable")
        assert info["source"] in ("native", "pyiqa")
        worst, best = info["bounds"]
        assert worst != best


@pytest.mark.parametrize("name,state", [("niqe", "ready"), ("brisque", "ready"),
                                        ("piqe", "ready"), ("musiq", "needs-download"),
                                        ("metaiqa", "needs-download"),
                                        ("qalign", "unavailable")])
def test_availability(name, state):
    info = metric_info(name)
    assert info["availability"].state == state, info["availability"].reason
    if state == "needs-download":
        f = next(f for f in info["files"] if not f["present"])
        assert f["filename"] in info["availability"].reason
        assert f["url"] in info["availability"].reason


def test_bounds_msu_where_on_the_same_scale():
    assert metric_info("metaiqa")["bounds"] == (0.0, 1.0)
    assert metric_info("linearity")["bounds"] == (25.78, 83.23)
    assert metric_info("spaq")["bounds"] == (21.75, 77.76)
    assert metric_info("musiq")["bounds"] == (22.76, 77.96)
    assert metric_info("niqe_matlab")["bounds"] == (28.74, 1.414)  # NIQE family
    # pyiqa's DBCNN and MUSIQ-AVA report 0–1 and 1–10: MSU's 0–100 bounds would be wrong
    assert metric_info("dbcnn")["bounds"] == (0.0, 1.0)
    assert metric_info("dbcnn")["bounds_source"] == "pyiqa"
    assert metric_info("musiq-ava")["bounds"] == (1.0, 10.0)
    # lower-better pyiqa ranges are oriented (worst, best)
    assert metric_info("piqe")["bounds"] == (100.0, 0.0)


def test_required_files_include_backbones():
    files = [f.filename for f in catalog.entry("dbcnn").files]
    assert files == ["vgg16-397923af.pth", "DBCNN_scnn-7ea73d75.pth", "DBCNN_KonIQ10k-2de81c0a.pth"]
    assert [f.filename for f in catalog.entry("musiq-spaq").files] == ["musiq_spaq_ckpt-358bb6af.pth"]
    assert [f.hf_repo for f in catalog.entry("topiq_nr").files][0] == "timm/resnet50.a1_in1k"


def test_params_include_pretrained_and_weights():
    for name in ("linearity", "spaq", "niqe", "metaiqa"):
        specs = {s.name: s for s in metric_params(name)}
        assert specs["pretrained"].default is True and specs["pretrained"].type is bool
        assert specs["weights"].default is None
    assert {s.name for s in metric_params("spaq")} >= {"size"}


def test_unknown_name_and_bad_params_are_clear_errors():
    with pytest.raises(MetricError, match="list"):
        create_metric("no-such-metric")
    with pytest.raises(MetricError, match="unknown parameter"):
        create_metric("niqe", colour="red")
    with pytest.raises(MetricError):
        metric_info("fid")


def test_aliases_and_string_params():
    m = create_metric("Meta-IQA", pretrained="false")
    assert m.name == "metaiqa" and not m.pretrained


def test_device_is_reported(niqe):
    assert niqe.device == torch.device("cpu")
    m = create_metric("entropy", device="cpu")  # a metric with no tensors at all
    assert m.device == torch.device("cpu")
