"""The ray back end on a local Ray instance: same rows as local, faults, cancel, bad input."""
from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.run.backends import BackendError
from engine.run.backends.ray_backend import RayBackend
from engine.run.backends.ray_connect import connect
from engine.run.backends.ray_worker import RayWorker
from engine.cli import main
from engine.core.errors import EXIT_USAGE
from engine.core.events import AttackStep, DefenceDone, ItemFailed, ItemFinished, ItemStarted, RunFinished
from engine.run.driver import run_experiment
from engine.run.units import CancelToken, ItemOutcome
from engine.store.db import ResultStore
from tests.conftest import photo
from tests.engine.run.backends.conftest import LONG_ATTACK, comparable as _comparable, ray_exp as _exp

ray = pytest.importorskip("ray", reason="the ray back end's tests need Ray: pip install -e '.[cluster]'")


def test_same_rows_and_events_as_local(ray_backend, ray_folder, local_rows, tmp_path):
    exp = _exp(ray_folder)
    store = ResultStore(tmp_path / "r.sqlite")
    events = list(run_experiment(exp, store, backend=ray_backend))
    assert _comparable(store.rows(exp.id)) == _comparable(local_rows)
    assert len(local_rows) == 9 and all(r["error"] is None for r in local_rows)
    kinds = [type(e) for e in events]
    assert kinds.count(ItemStarted) == kinds.count(ItemFinished) == 3
    assert kinds.count(DefenceDone) == 9 and isinstance(events[-1], RunFinished)
    per_item: dict[str, list[int]] = {}
    for e in events:
        if isinstance(e, AttackStep):
            per_item.setdefault(e.item_id, []).append(e.step.iteration)
    assert sorted(per_item.values()) == [[0, 1, 2, 3]] * 3  # each item's steps, in order
    finished = [e for e in events if isinstance(e, ItemFinished)]
    assert finished[0].images.clean.shape == (96, 128, 3)
    manifest = store.manifest(exp.id)
    assert manifest["backend"] == "ray" and manifest["workers"] == 2 and manifest["device"] == "cpu"


def test_a_defence_added_later_replays_copies_kept_from_ray_workers(ray_backend, ray_folder, local_rows, tmp_path):
    """The workers send x_a back, the driver keeps the copies; the grown grid's new rows
    come from them (sent to the workers with the images) without attacking again."""
    store = ResultStore(tmp_path / "r.sqlite")
    list(run_experiment(_exp(ray_folder, defences=["jpeg"], keep_attacked=True), store, backend=ray_backend))
    assert len(list((tmp_path / "attacked").glob("*.npy"))) == 3
    grown = _exp(ray_folder)
    events = list(run_experiment(grown, store, backend=ray_backend))
    assert not any(isinstance(e, AttackStep) for e in events)  # no attack ran
    assert store.manifest(grown.id)["runs"][-1]["identity"]["attacks_reused_from_stored"] == 3
    assert _comparable(store.rows(grown.id)) == _comparable(local_rows)


def test_killed_actor_has_its_item_retried(ray_backend, ray_folder, local_rows_long, tmp_path):
    exp = _exp(ray_folder, attacks=LONG_ATTACK)
    store = ResultStore(tmp_path / "r.sqlite")
    killed: list[str] = []
    events = []
    for ev in run_experiment(exp, store, backend=ray_backend):
        events.append(ev)
        if isinstance(ev, AttackStep) and not killed:  # its first step: the item is far from done
            actor = ray_backend.in_flight.get(ev.item_id)
            if actor is not None:
                killed.append(ev.item_id)
                ray.kill(actor)
    assert killed, "no item was in flight to kill"
    started = [e.item.id for e in events if isinstance(e, ItemStarted)]
    assert started.count(killed[0]) == 2  # dispatched again after the kill
    assert sum(isinstance(e, ItemFinished) for e in events) == 3
    assert not any(isinstance(e, ItemFailed) for e in events)
    assert _comparable(store.rows(exp.id)) == _comparable(local_rows_long)  # no row lost or doubled
    assert len(ray_backend.actors) == 2  # the pool was refilled


@pytest.mark.slow  # waits for fresh actors to start
def test_actor_dying_past_the_retries_fails_the_item_and_resume_completes_it(ray_backend, ray_folder,
                                                                           local_rows_long, tmp_path):
    exp = _exp(ray_folder, attacks=LONG_ATTACK)
    store = ResultStore(tmp_path / "r.sqlite")
    ray_backend.max_retries = 0
    killed: list[str] = []
    try:
        for ev in run_experiment(exp, store, backend=ray_backend):
            if isinstance(ev, AttackStep) and not killed:
                killed.append(ev.item_id)
                ray.kill(ray_backend.in_flight[ev.item_id])
            last = ev
    finally:
        ray_backend.max_retries = 2
    assert last.finished == 2 and last.failed == 1
    failed = [it for it in store.items(exp.id) if it["status"] == "failed"]
    assert [f["item_id"] for f in failed] == killed
    assert "lost 1×" in failed[0]["error"] and "Ray worker computing it died" in failed[0]["error"]
    list(run_experiment(exp, store, backend=ray_backend))  # resume: the failed item again
    assert _comparable(store.rows(exp.id)) == _comparable(local_rows_long)


@pytest.mark.slow  # waits for a fresh actor to start
def test_a_unit_queued_behind_a_dying_one_is_retried_without_charge(ray_backend, tmp_path):
    """Each actor holds two units; when it dies only the one running (the last heard
    from) counts an attempt. The other, queued behind it or finished with its outcome
    not yet delivered (polled), runs elsewhere even with no retries left."""
    folder = tmp_path / "four"
    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(photo(name, (96, 128))).save(folder / f"{name}.png")
    exp = _exp(folder, defences=[], attacks=LONG_ATTACK)
    store = ResultStore(tmp_path / "r.sqlite")
    ray_backend.max_retries = 0
    killed: list[str] = []
    queued_behind: list[str] = []
    try:
        for ev in run_experiment(exp, store, backend=ray_backend):
            if isinstance(ev, AttackStep) and not killed:
                actor = ray_backend.in_flight[ev.item_id]
                queued_behind = [i for i, a in ray_backend.in_flight.items() if a is actor and i != ev.item_id]
                killed.append(ev.item_id)
                ray.kill(actor)
            last = ev
    finally:
        ray_backend.max_retries = 2
    assert len(queued_behind) == 1  # DEPTH: a second unit of that actor was in flight
    assert last.finished == 3 and last.failed == 1
    status = {it["item_id"]: it["status"] for it in store.items(exp.id)}
    assert status[killed[0]] == "failed" and status[queued_behind[0]] == "done"


def test_cancel_stops_every_worker(ray_backend, ray_folder, tmp_path):
    exp = _exp(ray_folder, attacks=["ifgsm:iters=400"])
    store = ResultStore(tmp_path / "r.sqlite")
    cancel = CancelToken()
    after: dict[str, int] = {}
    running: set[str] = set()
    for ev in run_experiment(exp, store, cancel=cancel, backend=ray_backend):
        if isinstance(ev, AttackStep):
            if cancel.cancelled:
                after[ev.item_id] = after.get(ev.item_id, 0) + 1
            running.add(ev.item_id)
            if len(running) == 2 and not cancel.cancelled:  # both workers mid-attack
                cancel.cancel()
        last = ev
    assert isinstance(last, RunFinished) and last.cancelled and last.finished == 0
    assert store.rows(exp.id) == []
    assert all(n < 100 for n in after.values())  # stopped long before the 400 steps
    # info() waits for the actor's running unit: both answer, so neither is still attacking.
    infos = ray.get([a.info.remote() for a in ray_backend.actors], timeout=30)
    assert len(infos) == 2


def test_worker_stops_at_the_next_step_and_names_its_host(ray_folder):
    """The actor class itself, in process: cancel between steps; errors name the host."""
    threads = torch.get_num_threads()
    try:
        worker = RayWorker("cpu", threads=1)
    finally:
        torch.set_num_threads(threads)
    exp = _exp(ray_folder, attacks=["ifgsm:iters=50"])
    item = exp.items()[0]
    stream = worker.run("r1", [item], exp, {}, {item.image: Path(item.image).read_bytes()})
    steps = 0
    for out in stream:
        if isinstance(out, AttackStep):
            steps += 1
            if steps == 2:
                worker.cancel("r1")
        assert not isinstance(out, ItemOutcome)
    assert steps == 2
    missing = dataclasses.replace(exp.items()[0], image=str(ray_folder / "gone.png"))
    outs = [o for o in worker.run("r2", [missing], exp, {}, {}) if isinstance(o, ItemOutcome)]
    assert len(outs) == 1 and not outs[0].ok and outs[0].stage == "load"
    assert "gone.png" in outs[0].error and f"on Ray worker host {socket.gethostname()}" in outs[0].error


def _poll_all(worker: RayWorker, unit_id: str) -> list:
    outs, ended = [], False
    deadline = time.monotonic() + 120
    while not ended and time.monotonic() < deadline:
        got, ended = worker.poll(unit_id, 0.05)
        outs += got
    assert ended
    return outs


def test_a_polled_unit_gives_the_streamed_outputs_in_order(ray_folder):
    """Ray Client's carrier, in process: submit + poll yields what run() streams; a unit
    that fails outside run_unit's guards raises from poll with the error."""
    threads = torch.get_num_threads()
    try:
        worker = RayWorker("cpu", threads=1)
        exp = _exp(ray_folder)
        item = exp.items()[0]
        data = {item.image: Path(item.image).read_bytes()}
        streamed = list(worker.run("a", [item], exp, {}, data))
        worker.submit("u1", "b", [item], exp, {}, data)
        polled = _poll_all(worker, "u1")
        worker.submit("u2", "c", None, exp, {}, data)  # not a list of items: fails in the worker
        with pytest.raises(RuntimeError, match="TypeError"):
            _poll_all(worker, "u2")
        worker.submit("u3", "d", [item], exp, {}, data)
        worker.cancel("d")  # its driver stopped early and never polls "u3" again
        worker.submit("u4", "e", [item], exp, {}, data)
        assert "u3" not in worker._outboxes  # the abandoned outbox does not pile up
        after = _poll_all(worker, "u4")
    finally:
        torch.set_num_threads(threads)
    assert [type(o).__name__ for o in polled] == [type(o).__name__ for o in streamed]
    assert sum(isinstance(o, AttackStep) for o in polled) == 4
    assert [type(o).__name__ for o in after] == [type(o).__name__ for o in streamed]
    [a], [b] = [o for o in streamed if isinstance(o, ItemOutcome)], [o for o in polled if isinstance(o, ItemOutcome)]
    assert a.ok and repr(_comparable(a.result.rows)) == repr(_comparable(b.result.rows))  # NaN-safe


def test_missing_weights_on_a_worker_is_a_per_item_error_naming_the_host(ray_backend, ray_folder, tmp_path):
    gone = tmp_path / "not-on-the-workers.mat"
    exp = _exp(ray_folder, metrics=[f"niqe:weights={gone}"], defences=[])
    store = ResultStore(tmp_path / "r.sqlite")
    last = list(run_experiment(exp, store, backend=ray_backend))[-1]
    assert last.failed == 3 and last.finished == 0
    err = store.items(exp.id)[0]["error"]
    assert "not-on-the-workers.mat" in err and f"on Ray worker host {socket.gethostname()}" in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_is_a_clear_error_in_bounded_time(ray_session, ray_folder, tmp_path, capsys):
    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}.*ray start --head"):
        RayBackend("cpu", address=f"127.0.0.1:{port}", connect_timeout=3)
    with pytest.raises(BackendError, match=f"ray://127.0.0.1:{port} within 3 s"):
        RayBackend("cpu", address=f"ray://127.0.0.1:{port}", connect_timeout=3)
    with pytest.raises(BackendError, match="bad Ray address"):
        RayBackend("cpu", address="no-port-here")
    assert time.monotonic() - t0 < 20
    rc = main(["run", str(ray_folder), "--metric", "niqe", "--attack", "ifgsm:iters=1", "--out", str(tmp_path / "o"),
               "--backend", "ray", "--ray-address", f"127.0.0.1:{port}", "-q"])
    assert rc == EXIT_USAGE
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_a_port_that_is_no_ray_head_times_out(ray_session):
    """Something listens, but the Ray handshake never completes: bounded, not a hang."""

    class NeverJoins:  # stands in for the ray module: its init blocks like Ray's retries
        @staticmethod
        def is_initialized() -> bool:
            return False

        @staticmethod
        def init(**kwargs) -> None:
            time.sleep(30)

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        address = f"127.0.0.1:{srv.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(BackendError, match="no Ray handshake completed within 0.5 s"):
            connect(NeverJoins, address, num_cpus=None, timeout=2, join_timeout=0.5)
        assert time.monotonic() - t0 < 5


def test_a_ray_client_connection_that_times_out_once_is_tried_again(ray_session):
    class FlakyClient:  # stands in for the ray module: Ray Client's first session fails
        calls = 0
        failures = 1

        @staticmethod
        def is_initialized() -> bool:
            return False

        @classmethod
        def init(cls, **kwargs) -> None:
            cls.calls += 1
            if cls.calls <= cls.failures:
                raise ConnectionError("ray client connection timeout")

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        address = f"ray://127.0.0.1:{srv.getsockname()[1]}"
        assert connect(FlakyClient, address, num_cpus=None, timeout=2) is True
        assert FlakyClient.calls == 2
        FlakyClient.calls, FlakyClient.failures = 0, 99  # keeps failing: clear error after 2 tries
        with pytest.raises(BackendError, match="cannot join the Ray cluster at ray://.*connection timeout"):
            connect(FlakyClient, address, num_cpus=None, timeout=2)
        assert FlakyClient.calls == 2


def test_bad_device_or_workers_for_ray(ray_session):
    with pytest.raises(BackendError, match="cuda:1 picks one GPU"):
        RayBackend("cuda:1")
    with pytest.raises(BackendError, match="at least 1"):
        RayBackend("cpu", workers=0)
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="no GPU"):
            RayBackend("cuda")
