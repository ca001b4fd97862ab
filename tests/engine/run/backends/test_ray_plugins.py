"""Plug-ins on a local Ray instance: a plug-in file travels to the workers as source and
gives the same rows as locally; a worker without an installed plug-in package fails the
items that need it, naming the host and the package."""
from __future__ import annotations

import socket

import pytest

from engine.core.events import ItemFailed
from engine.plugins import load_entry_points, load_path
from engine.run.driver import run_experiment
from engine.store.db import ResultStore
from tests.engine.plugins.conftest import entry_point_dist, plugin_isolation, write_plugin  # noqa: F401 - fixtures
from tests.engine.run.backends.conftest import comparable, ray_exp, rows_at_one_thread

ray = pytest.importorskip("ray", reason="the ray back end's tests need Ray: pip install -e '.[cluster]'")


@pytest.fixture(scope="module")
def plugin_backend(ray_session):
    from engine.run.backends.ray_backend import RayBackend

    backend = RayBackend("cpu", workers=2)
    yield backend
    backend.close()


def test_a_plugin_file_gives_the_same_rows_on_ray_as_locally(plugin_backend, ray_folder, tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    for kind, name in (("metric", "ray-sharp"), ("attack", "ray-ifgsm"), ("defence", "ray-tv")):
        load_path(write_plugin(folder, kind, name))
    exp = ray_exp(ray_folder, metrics=["ray-sharp", "niqe"], attacks=["ray-ifgsm:iters=2"],
                  defences=["ray-tv:steps=3", "jpeg"])
    local = rows_at_one_thread(exp, tmp_path)
    store = ResultStore(tmp_path / "ray.sqlite")
    events = list(run_experiment(exp, store, backend=plugin_backend))
    assert not [e for e in events if isinstance(e, ItemFailed)]
    assert len(local) == 3 * 2 * 3 and all(r["error"] is None for r in local)
    assert comparable(store.rows(exp.id)) == comparable(local)
    recorded = {p["source"] for p in store.manifest(exp.id)["plugins"]}
    assert recorded == {str(folder / f) for f in ("ray_sharp.py", "ray_ifgsm.py", "ray_tv.py")}


def test_a_worker_without_an_installed_plugin_fails_its_items_naming_host_and_package(
        plugin_backend, ray_folder, entry_point_dist, tmp_path):
    recs, errors = load_entry_points()  # installed here (on sys.path), not on the workers
    assert not errors and recs
    exp = ray_exp(ray_folder, metrics=["ep-sharp", "niqe"], attacks=["ifgsm:iters=1"], defences=["jpeg"])
    store = ResultStore(tmp_path / "r.sqlite")
    events = list(run_experiment(exp, store, backend=plugin_backend))
    failed = [e for e in events if isinstance(e, ItemFailed)]
    assert sorted(e.item.metric.name for e in failed) == ["ep-sharp"] * 3
    host = socket.gethostname()
    for e in failed:
        assert "plug-in package iqa-lab-test-pkg 1.2" in e.error and "ep-sharp" in e.error
        assert f"on Ray worker host {host}" in e.error and e.stage == "plugin"
    niqe = [r for r in store.rows(exp.id) if r["metric"] == "niqe"]
    assert len(niqe) == 3 * 2 and all(r["error"] is None for r in niqe)
