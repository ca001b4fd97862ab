"""The ray back end with pools of its own (run after test_ray_backend's pool is closed:
the session's Ray instance has 2 CPUs): missing weights on a worker, the CLI on Ray."""
from __future__ import annotations

import socket

import pytest

from engine.backends.ray_backend import RayBackend
from engine.cli import EXIT_OK, main
from engine.runner import run_experiment
from engine.store import ResultStore
from tests.engine.backends.conftest import comparable as _comparable, ray_exp as _exp

ray = pytest.importorskip("ray", reason="the ray back end's tests need Ray: pip install -e '.[cluster]'")


def test_missing_weights_on_a_worker_is_a_per_item_error_naming_the_host(ray_session, ray_folder, tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    exp = _exp(ray_folder, defences=[])
    store = ResultStore(tmp_path / "r.sqlite")
    with RayBackend("cpu", workers=1, worker_env={"TORCH_HOME": str(empty)}) as backend:
        last = list(run_experiment(exp, store, backend=backend))[-1]
    assert last.failed == 3 and last.finished == 0
    err = store.items(exp.id)[0]["error"]
    assert "niqe_modelparameters.mat" in err and f"on Ray worker host {socket.gethostname()}" in err


def test_cli_runs_on_ray(ray_session, ray_folder, local_rows, tmp_path):
    out = tmp_path / "out"
    rc = main(["run", str(ray_folder), "--metric", "niqe", "--attack", "ifgsm:iters=3", "--defence", "jpeg,median-blur",
               "--seed", "11", "--device", "cpu", "--out", str(out), "--backend", "ray", "--workers", "2", "-q"])
    assert rc == EXIT_OK
    with ResultStore(out / "results.sqlite") as store:
        assert _comparable(store.rows()) == _comparable(local_rows)
