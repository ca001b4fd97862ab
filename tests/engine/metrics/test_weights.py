"""Weights folder resolution and downloads that never hang."""
from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest

from engine.metrics import weights as W
from engine.metrics.base import MetricError

URL = "https://example.invalid/models/some-net.pth"


def test_weights_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv(W.WEIGHTS_ENV, str(tmp_path / "w"))
    assert W.weights_dir() == tmp_path / "w"
    monkeypatch.delenv(W.WEIGHTS_ENV)
    import torch.hub
    assert W.weights_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_local_file_is_used_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv(W.OFFLINE_ENV, "1")
    (tmp_path / "some-net.pth").write_bytes(b"abc")
    assert W.weights_present("some-net.pth", tmp_path)
    assert W.ensure_weights("some-net.pth", URL, folder=tmp_path) == tmp_path / "some-net.pth"


def test_empty_file_counts_as_missing(tmp_path):
    (tmp_path / "some-net.pth").write_bytes(b"")
    assert not W.weights_present("some-net.pth", tmp_path)


@pytest.mark.parametrize("how", ["offline-env", "download-disabled"])
def test_missing_file_error_names_file_url_and_folder(monkeypatch, tmp_path, how):
    kwargs = {}
    if how == "offline-env":
        monkeypatch.setenv(W.OFFLINE_ENV, "1")
    else:
        kwargs["download"] = False
    monkeypatch.setenv(W.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(W.WeightsUnavailable) as info:
        W.ensure_weights("some-net.pth", URL, metric="mynet", **kwargs)
    msg = str(info.value)
    assert "some-net.pth" in msg and URL in msg and str(tmp_path) in msg and "mynet" in msg
    assert isinstance(info.value, MetricError)
    assert not (tmp_path / "some-net.pth").exists()


def test_real_download_failure_is_fast_and_clear(tmp_path):
    """No monkeypatching: an unresolvable host fails in well under a few seconds."""
    url = "https://weights.iqa-lab.invalid/p1q2.pth"  # .invalid never resolves (RFC 2606)
    t = time.monotonic()
    with pytest.raises(W.WeightsUnavailable) as info:
        W.ensure_weights("p1q2.pth", url, folder=tmp_path)
    assert time.monotonic() - t < 3.0
    assert "p1q2.pth" in str(info.value) and url in str(info.value)
    assert str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("page"):
            body, ctype = b"<!DOCTYPE html><html>virus scan warning</html>", "text/html"
        elif self.path.endswith("stall"):
            time.sleep(3)
            body, ctype = b"late", "application/octet-stream"
        else:
            body, ctype = bytes(range(256)) * 40, "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_download_writes_the_file(server, tmp_path, monkeypatch):
    monkeypatch.delenv(W.OFFLINE_ENV, raising=False)
    path = W.ensure_weights("net.pth", f"{server}/net.pth", folder=tmp_path)
    assert path.read_bytes() == bytes(range(256)) * 40
    assert [p.name for p in tmp_path.iterdir()] == ["net.pth"]


def test_web_page_instead_of_file_is_rejected(server, tmp_path, monkeypatch):
    monkeypatch.delenv(W.OFFLINE_ENV, raising=False)
    with pytest.raises(W.WeightsUnavailable, match="web page"):
        W.ensure_weights("net.pth", f"{server}/page", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_stalled_server_times_out(server, tmp_path, monkeypatch):
    monkeypatch.delenv(W.OFFLINE_ENV, raising=False)
    t = time.monotonic()
    with pytest.raises(W.WeightsUnavailable):
        W.ensure_weights("net.pth", f"{server}/stall", folder=tmp_path, timeout=0.5)
    assert time.monotonic() - t < 2.5


def test_read_checkpoint_reports_bad_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(MetricError, match="bad.pth"):
        W.read_checkpoint(bad, metric="x")


# --------------------------------------------------------------------------- the hub cache, read without huggingface_hub

def _hub_repo(root, repo_id: str, commit: str, files: dict[str, str]) -> None:
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for name, text in files.items():
        path = repo / "snapshots" / commit / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize("filename", ["config.json", "unet/config.json", "missing.json", "unet/missing.json"])
def test_hf_cached_file_answers_as_huggingface_hub_does(tmp_path, filename):
    from huggingface_hub import try_to_load_from_cache

    from engine.metrics.weights import hf_cached_file

    _hub_repo(tmp_path, "org/net", "0123abcd", {"config.json": "{}", "unet/config.json": "{}"})
    theirs = try_to_load_from_cache("org/net", filename, cache_dir=str(tmp_path))
    ours = hf_cached_file("org/net", filename, tmp_path)
    assert ours == (theirs if isinstance(theirs, str) else None)
    assert hf_cached_file("org/other", filename, tmp_path) is None


def test_hf_cached_file_follows_the_hub_environment(tmp_path, monkeypatch):
    from engine.metrics.weights import hf_cached_file, hf_hub_cache_dir

    _hub_repo(tmp_path / "hub", "org/net", "c0ffee", {"model.safetensors": "x"})
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert hf_hub_cache_dir() == tmp_path / "hub"
    assert hf_cached_file("org/net", "model.safetensors") == str(
        tmp_path / "hub" / "models--org--net" / "snapshots" / "c0ffee" / "model.safetensors")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hf_cached_file("org/net", "model.safetensors") is None


def test_availability_imports_neither_diffusers_nor_the_hub_client():
    """`list` and the GUI's first window read every availability: those imports take seconds
    (``huggingface_hub.constants``, which only reads the environment, is allowed)."""
    import subprocess
    import sys

    probe = ("import sys; from engine.defences import DEFENCES; from engine.metrics import list_metrics, metric_info; "
             "[DEFENCES.get(n).availability() for n in DEFENCES.names()]; [metric_info(n) for n in list_metrics()]; "
             "print(sorted(m for m in ('diffusers', 'huggingface_hub.file_download') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         cwd=str(Path(__file__).resolve().parents[3]))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
