"""Device selection: auto, cpu, cuda and cuda:N (command line and Runtime)."""
from __future__ import annotations

import pytest
import torch

from engine.cli import make_parser
from engine.run.runtime import DeviceError, resolve_device


def test_cpu_and_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device("cuda:0")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")


def test_cuda_index_is_checked_against_the_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("CUDA") == torch.device("cuda")
    with pytest.raises(DeviceError, match="cuda:2 was requested but this machine has 2 CUDA"):
        resolve_device("cuda:2")


def test_run_accepts_cuda_n_and_rejects_other_devices(capsys):
    parser = make_parser()
    args = parser.parse_args(["run", "x", "--out", "o", "--device", "cuda:1", "--backend", "ray", "--workers", "3"])
    assert (args.device, args.backend, args.workers, args.ray_address) == ("cuda:1", "ray", 3, None)
    assert parser.parse_args(["run", "x", "--out", "o"]).backend == "local"
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["run", "x", "--out", "o", "--device", "gpu"])
    assert exc.value.code == 2 and "cuda:N" in capsys.readouterr().err
