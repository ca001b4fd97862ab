"""The session model without Qt: folder, store, experiment shown and the run's bookkeeping."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.attacks.base import StepRecord
from engine.core.events import (
    AttackStep,
    CleanScored,
    ItemFailed,
    ItemFinished,
    ItemStarted,
    RunFinished,
    RunStarted,
)
from engine.spec.experiment import Experiment
from gui.session import Session
from tests.gui.conftest import fake_row, fake_store
from engine.run.identity import content_items

ROOT = Path(__file__).resolve().parents[2]


def test_the_session_model_imports_no_qt():
    code = "import sys, gui.session, gui.plan, gui.columns, gui.flags; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class Recorder:
    """Collects what a session notifies."""

    def __init__(self, session: Session) -> None:
        self.calls: list[tuple[str, tuple]] = []
        for name in ("folder_changed", "output_changed", "experiment_changed", "rows_reset", "rows_added",
                     "image_changed", "item_done", "run_finished", "message", "running_changed"):
            getattr(session, name).connect(lambda *a, n=name: self.calls.append((n, a)))

    def of(self, name: str) -> list[tuple]:
        return [a for n, a in self.calls if n == name]


def _session(tmp_path: Path) -> Session:
    return Session(lambda folder: str(tmp_path / "runs" / (Path(folder).name if folder else "untitled")))


def _folder(tmp_path: Path, name: str, n: int = 2) -> Path:
    from PIL import Image

    folder = tmp_path / name
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"im{i}.png")
    return folder


def _experiment(folder: Path, metrics=("niqe",)) -> Experiment:
    images = sorted(str(p) for p in folder.glob("*.png"))
    return Experiment(images=images, root=str(folder), metrics=list(metrics), attacks=["ifgsm"], seed=1)


def _store(path: Path, exp: Experiment, done: int) -> None:
    fake_store(path, exp, done)


def test_output_follows_the_folder_unless_chosen(tmp_path):
    s = _session(tmp_path)
    a, b = _folder(tmp_path, "a"), _folder(tmp_path, "b")
    rec = Recorder(s)
    s.open_folder(str(a))
    assert s.output_dir == str(tmp_path / "runs" / "a") and len(s.images) == 2
    assert rec.of("folder_changed")[-1] == (str(a.resolve()), s.images)
    # a store opened elsewhere: its folder is the output for its images...
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _store(elsewhere / "results.sqlite", _experiment(a), done=1)
    assert s.open_store(elsewhere / "results.sqlite")
    assert s.folder == str(a.resolve()) and s.output_dir == str(elsewhere)
    # ...but another folder writes to its own output, never into the old folder's store
    s.open_folder(str(b))
    assert s.output_dir == str(tmp_path / "runs" / "b") and s.store_path is None and s.rows == []
    assert rec.of("rows_reset")[-1] == ([],)
    s.choose_output(str(tmp_path / "mine"))
    s.open_folder(str(a))
    assert s.output_dir == str(tmp_path / "mine")
    s.choose_output("")
    assert s.output_dir == str(tmp_path / "runs" / "a")


def test_opening_a_folder_shows_its_stored_results(tmp_path):
    s = _session(tmp_path)
    a = _folder(tmp_path, "a")
    exp = _experiment(a)
    out = tmp_path / "runs" / "a"
    out.mkdir(parents=True)
    _store(out / "results.sqlite", exp, done=1)
    s.open_folder(str(a))
    assert s.exp_id == exp.id and s.store_path == out / "results.sqlite"
    assert len(s.rows) == 1 and s.rows[0]["flag"] == ""
    first, second = exp.images
    assert s.image_status(first).state == "done" and s.image_status(second).state == "pending"
    assert s.steps[content_items(exp)[0].id] == {"ifgsm": [(0, 10.0), (1, 5.0)]}
    assert [i for i, _ in s.experiments()] == [exp.id]
    assert s.experiment_state() == "incomplete"


def test_choosing_an_experiment_switches_rows_and_the_current_entry(tmp_path):
    s = _session(tmp_path)
    a = _folder(tmp_path, "a")
    one, two = _experiment(a), _experiment(a, metrics=("brisque",))
    path = tmp_path / "store" / "results.sqlite"
    path.parent.mkdir()
    _store(path, one, done=2)
    _store(path, two, done=1)
    s.open_store(path, one.id)
    assert s.exp_id == one.id and len(s.rows) == 2
    assert s.choose_experiment(two.id)
    assert s.exp_id == two.id and {r["metric"] for r in s.rows} == {"brisque"} and len(s.rows) == 1
    assert {i for i, _ in s.experiments()} == {one.id, two.id}


def test_a_run_is_tracked_from_events(tmp_path):
    s = _session(tmp_path)
    a = _folder(tmp_path, "a")
    s.open_folder(str(a))
    rec = Recorder(s)
    exp = _experiment(a, metrics=("niqe", "brisque"))
    store_path = s.begin_run(exp)
    assert store_path == tmp_path / "runs" / "a" / "results.sqlite" and s.running
    assert s.experiments()[0][0] == exp.id  # the combo shows the new experiment at once
    items = content_items(exp)  # image 0: niqe, brisque; image 1: niqe, brisque
    ok, bad = [it for it in items if it.image == exp.images[0]]
    s.handle(RunStarted(exp.id, len(items), len(items), "cpu"))
    s.handle(ItemStarted(ok, 1, 4))
    assert s.image_status(ok.image).state == "running"
    s.handle(CleanScored(ok.id, 10.0))
    s.handle(AttackStep(ok.id, "ifgsm", StepRecord(0, 10.0, 0, 0, 0, 0), 10.0))
    s.handle(AttackStep(ok.id, "ifgsm", StepRecord(1, 12.0, 0, 0, 0, 0), 10.0))
    s.handle(ItemFinished(ok, [fake_row(ok, attacked=12.0, attack_gained=False)], []))
    long_error = "metric brisque unavailable: " + "x" * 200
    s.handle(ItemStarted(bad, 2, 4))
    s.handle(ItemFailed(bad, long_error, "metric"))
    st = s.image_status(ok.image)
    assert st.state == "partial" and (st.done, st.failed, st.total) == (1, 1, 2)
    assert long_error in st.message and "1/2 done · 1 failed" in st.summary
    assert s.steps[ok.id] == {"ifgsm": [(0, 10.0), (1, 12.0)]} and s.clean_scores[ok.id] == 10.0
    assert s.followed == ok.id and rec.of("item_done") == [(ok.id,)]
    assert [r["flag"] for r in s.rows] == ["no gain", ""]
    assert s.rows[1]["error"] == f"[metric] {long_error}"
    s.handle(RunFinished(exp.id, 1, 1, False, 3.0))
    s.end_run()
    assert not s.running and rec.of("running_changed")[-1] == (False,)
    assert any("run finished" in a[1] for a in rec.of("message"))
    # a second run on another experiment forgets the first one's item
    exp2 = _experiment(a, metrics=("niqe",))
    s.begin_run(exp2)
    assert s.followed is None and s.rows == [] and len(s.items) == len(exp2.items())
    assert {i.status for i in s.items.values()} == {"pending"}


def test_a_batch_follows_the_item_whose_events_arrive(tmp_path):
    """A batched unit starts all its items at once; its first item streams live."""
    s = _session(tmp_path)
    a = _folder(tmp_path, "a")
    s.open_folder(str(a))
    rec = Recorder(s)
    started: list[str] = []
    s.item_started.connect(lambda ev: started.append(ev.item.id))
    exp = _experiment(a)
    s.begin_run(exp)
    first, second = content_items(exp)
    s.handle(RunStarted(exp.id, 2, 2, "cpu"))
    s.handle(ItemStarted(first, 1, 2))
    s.handle(ItemStarted(second, 2, 2))
    assert s.current_item == second.id
    s.handle(CleanScored(first.id, 10.0))
    s.handle(AttackStep(first.id, "ifgsm", StepRecord(0, 10.0, 0, 0, 0, 0), 10.0))
    assert s.current_item == first.id and started == [first.id, second.id, first.id]
    s.handle(AttackStep(first.id, "ifgsm", StepRecord(1, 9.0, 0, 0, 0, 0), 10.0))
    assert started == [first.id, second.id, first.id]  # no re-begin while it stays the same
    s.handle(CleanScored(second.id, 8.0))  # the held events of the rest, after the batch
    assert s.current_item == second.id and started[-1] == second.id
    assert rec.of("running_changed")[-1] == (True,)


def test_open_is_refused_during_a_run(tmp_path):
    s = _session(tmp_path)
    a, b = _folder(tmp_path, "a"), _folder(tmp_path, "b")
    s.open_folder(str(a))
    s.begin_run(_experiment(a))
    rec = Recorder(s)
    assert not s.open_folder(str(b))
    assert s.folder == str(a.resolve()) and rec.of("message")[0][0] == "warning"
    with pytest.raises(RuntimeError):
        s.begin_run(_experiment(a))


def test_certified_rows_are_summarised_and_have_a_column_preset():
    from gui.columns import PRESETS, certified_summary

    rows = [{"certified_holds": True, "certified_width": 0.2}, {"certified_holds": False, "certified_width": 0.4},
            {"certified_holds": True, "certified_width": 0.3, "error": "x"}, {"defence": "jpeg"}]
    assert certified_summary(rows) == "certificate holds on 1 of 2 certified rows · mean certified width 0.3"
    assert certified_summary([{"defence": "jpeg"}]) == ""
    assert {"certified_holds", "defended-clear_certified_low"} <= set(PRESETS["certified"])
    assert {"budget", "budget_reached", "budget_met"} <= set(PRESETS["budget"])
