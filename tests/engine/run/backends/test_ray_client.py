"""Ray Client (``ray://``): a real head started with ``ray start --head`` and a driver
process that joins it through the head's client server (outputs polled: Ray Client has
no streaming generators). The polled carrier's faults and cancel are tested in process
by ``test_ray_backend`` (its back end runs every test with both carriers)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core.errors import EXIT_INTERRUPTED
from engine.store.db import ResultStore
from tests.engine.run.backends.conftest import RAY_MISSING, comparable

pytest.importorskip("ray", reason=RAY_MISSING)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[4]
RUN = ["--metric", "niqe", "--defence", "jpeg", "--defence", "median-blur", "--seed", "11", "--device", "cpu",
       "--backend", "ray", "--workers", "2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client_head(tmp_path_factory):
    """A Ray head on this machine with its client server; the address ``ray://…``."""
    gcs, client = _free_port(), _free_port()
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    with open(log, "w") as sink:
        head = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={gcs}",
             f"--ray-client-server-port={client}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats", "--node-ip-address=127.0.0.1"],
            start_new_session=True, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if head.poll() is not None:
                pytest.fail(f"`ray start --head` exited: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", client), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ray Client server did not open port {client}: {log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield f"ray://127.0.0.1:{client}"
    finally:
        # SIGTERM would drain for 30 s; the group holds only this head's processes.
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(30)


def _cli(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "run", *args]


def test_a_ray_client_address_gives_the_local_rows(client_head, ray_folder, local_rows, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(_cli(str(ray_folder), "--attack", "ifgsm:iters=3", *RUN, "--ray-address", client_head,
                               "--out", str(out), "-q"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    store = ResultStore(out / "results.sqlite")
    [exp] = store.experiments()
    assert exp["manifest"]["ray_address"] == client_head and exp["manifest"]["ray_transport"] == "polled"
    assert exp["manifest"]["workers"] == 2
    assert comparable(store.rows(exp["id"])) == comparable(local_rows)


def test_ctrl_c_stops_a_ray_client_run_in_bounded_time(client_head, ray_folder, tmp_path):
    out = tmp_path / "out"
    run = subprocess.Popen(_cli(str(ray_folder), "--attack", "ifgsm:iters=10000", *RUN, "--ray-address",
                                client_head, "--out", str(out), "-q"),
                           cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in run.stderr:  # "experiment …" is printed once the workers are up
            seen.append(line)
            if line.startswith("experiment "):
                break
        assert seen and seen[-1].startswith("experiment "), "".join(seen)[-3000:]
        time.sleep(3)  # both workers are mid-attack
        run.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rc = run.wait(timeout=120)
        rest = run.stderr.read()
    finally:
        if run.poll() is None:
            run.kill()
    assert rc == EXIT_INTERRUPTED, rest[-3000:]
    assert time.monotonic() - t0 < 60
    store = ResultStore(out / "results.sqlite")
    [exp] = store.experiments()
    assert exp["done"] == 0 and store.rows(exp["id"]) == []
