"""The CLI on the ray back end. It builds a pool of its own, so it runs in a module after
test_ray_backend's pool is closed (the session's Ray instance has 2 CPUs)."""
from __future__ import annotations

import pytest

from engine.cli import main
from engine.core.errors import EXIT_OK
from engine.store.db import ResultStore
from tests.engine.run.backends.conftest import comparable as _comparable

ray = pytest.importorskip("ray", reason="the ray back end's tests need Ray: pip install -e '.[cluster]'")


@pytest.mark.slow  # starts two actors of its own
def test_cli_runs_on_ray(ray_session, ray_folder, local_rows, tmp_path):
    out = tmp_path / "out"
    rc = main(["run", str(ray_folder), "--metric", "niqe", "--attack", "ifgsm:iters=3", "--defence", "jpeg,median-blur",
               "--seed", "11", "--device", "cpu", "--out", str(out), "--backend", "ray", "--workers", "2", "-q"])
    assert rc == EXIT_OK
    with ResultStore(out / "results.sqlite") as store:
        assert _comparable(store.rows()) == _comparable(local_rows)
        assert store.manifest()["backend"] == "ray"
