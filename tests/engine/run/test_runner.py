"""The run path from folder to rows: events, store, resume, determinism, bad input."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.core.events import (AttackDone, AttackStep, CleanScored, DefenceDone, ItemFailed, ItemFinished,
                           ItemStarted, RunFinished, RunStarted)
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.metrics.base import METRICS, Metric
from engine.run.driver import run_experiment
from engine.run.units import CancelToken
from engine.store.db import ResultStore

FAST_ATTACK = "ifgsm:iters=3:alpha=0.0039215686"
TIMING = {"attack_time", "defence_time"}


def _exp(folder: Path, **kw) -> Experiment:
    base = dict(images=find_images(folder), root=str(folder), metrics=["niqe"], attacks=[FAST_ATTACK],
                defences=["jpeg", "median-blur"], seed=7, device="cpu")
    base.update(kw)
    return Experiment(**base)


def _run(exp: Experiment, store: ResultStore, cancel: CancelToken | None = None) -> list:
    return list(run_experiment(exp, store, cancel=cancel))


def test_event_stream_and_rows(tmp_path, photo_folder):
    exp = _exp(photo_folder)
    store = ResultStore(tmp_path / "r.sqlite")
    events = _run(exp, store)
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    assert kinds.count(ItemStarted) == kinds.count(ItemFinished) == 3
    assert kinds.count(CleanScored) == 3 and kinds.count(AttackDone) == 3
    assert kinds.count(AttackStep) == 3 * 4  # iterations 0..3
    assert kinds.count(DefenceDone) == 3 * 3  # none + jpeg + median-blur
    rows = store.rows(exp.id)
    assert len(rows) == 9
    assert {r["defence"] for r in rows} == {"none", "jpeg", "median-blur"}
    for r in rows:
        assert r["error"] is None
        for k in ("clear", "attacked", "defended-clear", "defended-attacked", "robust_abs_gain", "quality_score"):
            assert isinstance(r[k], float) and math.isfinite(r[k])
        assert r["l_inf_clear_attacked"] <= 3 / 255 + 1e-6
    none = [r for r in rows if r["defence"] == "none"]
    for r in none:  # the identity defence changes nothing
        assert r["defended-attacked"] == pytest.approx(r["attacked"])
        assert r["robust_abs_gain"] == pytest.approx(r["nonpurified_abs_gain"])
    finished = [e for e in events if isinstance(e, ItemFinished)]
    assert finished[0].images.clean.shape == (160, 160, 3) and len(finished[0].steps) == 4
    items = store.items(exp.id)
    assert all(it["status"] == "done" for it in items) and len(items[0]["steps"]) == 4


def test_same_seed_same_numbers(tmp_path, photo_folder):
    exp = _exp(photo_folder, attacks=["pgd:iters=2"], defences=["random-crop:size=96"])
    a, b = ResultStore(tmp_path / "a.sqlite"), ResultStore(tmp_path / "b.sqlite")
    _run(exp, a)
    _run(Experiment.from_json(exp.to_json()), b)
    ra, rb = a.rows(exp.id), b.rows(exp.id)
    assert len(ra) == len(rb) == 6
    for x, y in zip(ra, rb):
        assert {k: v for k, v in x.items() if k not in TIMING} == {k: v for k, v in y.items() if k not in TIMING}


def test_resume_skips_done_items(tmp_path, photo_folder):
    exp = _exp(photo_folder)
    store = ResultStore(tmp_path / "r.sqlite")
    cancel = CancelToken()
    seen = 0
    for ev in run_experiment(exp, store, cancel=cancel):
        if isinstance(ev, ItemFinished):
            seen += 1
            cancel.cancel()
    assert seen == 1 and len(store.done_item_ids(exp.id)) == 1
    events = _run(exp, store)
    assert events[0].pending == 2
    assert sum(isinstance(e, ItemFinished) for e in events) == 2
    rows = store.rows(exp.id)
    assert len(rows) == 9 and len({(r["item_id"], r["defence"]) for r in rows}) == 9
    assert len(store.manifest(exp.id)["runs"]) == 2


def test_cancel_between_steps_drops_only_the_item_in_flight(tmp_path, photo_folder):
    exp = _exp(photo_folder, attacks=["ifgsm:iters=50"])
    store = ResultStore(tmp_path / "r.sqlite")
    cancel = CancelToken()
    steps_after_cancel = 0
    for ev in run_experiment(exp, store, cancel=cancel):
        if isinstance(ev, AttackStep):
            if cancel.cancelled:
                steps_after_cancel += 1
            if ev.step.iteration == 2:
                cancel.cancel()
        last = ev
    assert isinstance(last, RunFinished) and last.cancelled and last.finished == 0
    assert steps_after_cancel == 0
    assert store.rows(exp.id) == []


def test_bad_files_fail_per_item_and_run_goes_on(tmp_path, photo_folder):
    (photo_folder / "empty.png").write_bytes(b"")
    (photo_folder / "text.jpg").write_text("not an image")
    Image.new("RGB", (2, 2)).save(photo_folder / "tiny.png")
    exp = _exp(photo_folder, defences=[])
    store = ResultStore(tmp_path / "r.sqlite")
    events = _run(exp, store)
    failed = {e.item.image_name: e for e in events if isinstance(e, ItemFailed)}
    assert set(failed) == {"empty.png", "text.jpg", "tiny.png"}
    assert all(f.stage == "load" for f in failed.values())
    assert "empty file" in failed["empty.png"].error and "too small" in failed["tiny.png"].error
    assert sum(isinstance(e, ItemFinished) for e in events) == 3
    statuses = {it["image_name"]: it["status"] for it in store.items(exp.id)}
    assert statuses["astronaut.png"] == "done" and statuses["empty.png"] == "failed"


class NanMetric(Metric):
    """Scores NaN on any image that is not the clean one (for the NaN-handling test)."""

    bounds = (0.0, 1.0)

    def __init__(self, pretrained: bool = True, **_):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return (x.mean(dim=(1, 2, 3)) * self.w) * float("nan")


@pytest.fixture
def nan_metric():
    METRICS.register("test-nan")(NanMetric)
    yield "test-nan"
    METRICS.unregister("test-nan")


def test_nan_score_is_an_error_not_a_number(tmp_path, photo_folder, nan_metric):
    exp = _exp(photo_folder, metrics=["test-nan"], defences=[])
    store = ResultStore(tmp_path / "r.sqlite")
    events = _run(exp, store)
    failed = [e for e in events if isinstance(e, ItemFailed)]
    assert len(failed) == 3 and all("not a finite number" in f.error for f in failed)
    assert store.rows(exp.id) == []


def test_saved_images_are_lossless(tmp_path, photo_folder):
    exp = _exp(photo_folder, save_images=True, defences=["jpeg"])
    store = ResultStore(tmp_path / "r.sqlite")
    events = _run(exp, store)
    fin = next(e for e in events if isinstance(e, ItemFinished))
    p = store.image_path(exp.id, fin.item.id, "attacked")
    import numpy as np

    assert np.array_equal(np.asarray(Image.open(p)), fin.images.attacked)
    assert store.image_path(exp.id, fin.item.id, "defended-attacked", "jpeg").exists()


def test_eot_draws_give_mean_and_spread_for_random_defences(tmp_path, photo_folder):
    exp = _exp(photo_folder, eot_draws=4, defences=["random-noise:sigma=0.05", "jpeg"])
    store = ResultStore(tmp_path / "r.sqlite")
    _run(exp, store)
    rows = store.rows(exp.id)
    noisy = [r for r in rows if r["defence"] == "random-noise"]
    assert len(noisy) == 3
    for r in noisy:
        assert r["eot_draws"] == 4 and r["defended-attacked_std"] > 0
    assert all("eot_draws" not in r for r in rows if r["defence"] == "jpeg")
    # draw 0 of the EOT is the ordinary evaluation's draw
    single = ResultStore(tmp_path / "s.sqlite")
    exp1 = _exp(photo_folder, defences=["random-noise:sigma=0.05", "jpeg"])
    _run(exp1, single)
    one = {r["image_name"]: r for r in single.rows(exp1.id) if r["defence"] == "random-noise"}
    for r in noisy:
        assert r["psnr_clear_defended-attacked"] == pytest.approx(one[r["image_name"]]["psnr_clear_defended-attacked"])
