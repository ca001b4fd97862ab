"""One small real run shared by the report tests: stopped after one item, reported,
then resumed to the end and reported again."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from tests.conftest import photo

PHOTOS = ("astronaut", "coffee", "chelsea")


@pytest.fixture(scope="package")
def report_run(tmp_path_factory) -> SimpleNamespace:
    """The photos of ``photo_folder`` (package-scoped so the run is computed once)."""
    from engine.core.events import ItemFinished
    from engine.spec.experiment import Experiment
    from engine.spec.folders import find_images
    from engine.results.report import build_report
    from engine.run.driver import run_experiment
    from engine.run.units import CancelToken
    from engine.store.db import ResultStore

    root = tmp_path_factory.mktemp("report_run")
    folder = root / "photos"
    folder.mkdir()
    for n in PHOTOS:
        Image.fromarray(photo(n, (160, 160))).save(folder / f"{n}.png")
    exp = Experiment(images=find_images(folder), root=str(folder), metrics=["niqe"],
                     attacks=["ifgsm:iters=2:alpha=0.25/255"], defences=["jpeg", "median-blur"],
                     seed=11, save_images=True, device="cpu")
    store_path = root / "out" / "results.sqlite"
    cancel = CancelToken()
    with ResultStore(store_path) as store:
        for ev in run_experiment(exp, store, cancel=cancel):
            if isinstance(ev, ItemFinished):
                cancel.cancel()
    partial = build_report(store_path, root / "partial")
    with ResultStore(store_path) as store:
        for _ in run_experiment(exp, store):
            pass
    report = build_report(store_path.parent, root / "report")
    return SimpleNamespace(exp=exp, store=store_path, partial=partial, report=report, root=root)
