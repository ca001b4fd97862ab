"""One local Ray instance (CI has 2 CPUs), shared by all the
ray back end's tests in this folder (each module skips with a reason when Ray is missing)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.run.driver import run_experiment
from engine.store.db import ResultStore
from tests.conftest import photo

RAY_MISSING = "the ray back end's tests need Ray: pip install -e '.[cluster]'"
TIMING = {"attack_time", "defence_time"}


def ray_exp(folder: Path, **kw) -> Experiment:
    base = dict(images=find_images(folder), root=str(folder), metrics=["niqe"], attacks=["ifgsm:iters=3"],
                defences=["jpeg", "median-blur"], seed=11, device="cpu")
    base.update(kw)
    return Experiment(**base)


def comparable(rows: list[dict]) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in rows),
                  key=lambda r: (r["item_id"], r["defence"]))


@pytest.fixture(scope="session")
def ray_folder(tmp_path_factory) -> Path:
    """Three small real photos (NIQE needs 96 px per side)."""
    d = tmp_path_factory.mktemp("ray-photos")
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(photo(name, (96, 128))).save(d / f"{name}.png")
    return d


def rows_at_one_thread(exp: Experiment, folder: Path) -> list[dict]:
    """The local back end's rows, at the workers' torch thread count (CPU reductions are
    bit-identical only at equal thread counts)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = ResultStore(folder / "r.sqlite")
        list(run_experiment(exp, store))
        return store.rows(exp.id)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def local_rows(ray_folder, tmp_path_factory) -> list[dict]:
    return rows_at_one_thread(ray_exp(ray_folder), tmp_path_factory.mktemp("local"))


#: long enough that an item's first attack step arrives well before its outcome, even
#: when the polled carrier groups 50 ms of outputs: the fault tests kill a worker there.
LONG_ATTACK = ["ifgsm:iters=40"]


@pytest.fixture(scope="session")
def local_rows_long(ray_folder, tmp_path_factory) -> list[dict]:
    return rows_at_one_thread(ray_exp(ray_folder, attacks=LONG_ATTACK), tmp_path_factory.mktemp("local-long"))


@pytest.fixture(scope="package")
def ray_session():
    """Started once for this folder's tests and shut down after them: a Ray driver left
    running would keep its background garbage-collection thread alive in the GUI tests,
    where collecting Qt objects off the GUI thread can deadlock."""
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module", params=["streamed", "polled"])
def ray_backend(ray_session, request):
    """Two CPU workers (one core each), reused by the tests of a module; every test runs
    with both carriers of the outputs (Ray Client's polling, tested here on a normal
    connection, and streaming generators)."""
    from engine.run.backends.ray_backend import RayBackend

    backend = RayBackend("cpu", workers=2, poll=request.param == "polled")
    yield backend
    backend.close()
