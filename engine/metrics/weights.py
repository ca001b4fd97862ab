"""Where metric weights live, and fetching them without ever hanging.

Our own architectures (linearity, spaq) keep their checkpoints in one folder:
``$IQA_LAB_WEIGHTS`` when set, otherwise torch hub's checkpoint folder
(``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``). pyiqa keeps
its own files in ``$TORCH_HOME/hub/pyiqa`` (fixed when pyiqa is imported).

A missing file is downloaded with a short socket timeout; with no network that fails in
well under a second and :class:`WeightsUnavailable` says which file is needed, where to
get it and where to put it.

Example:
    >>> path = ensure_weights("p1q2.pth", LINEARITY_URL)  # doctest: +SKIP
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.errors import EXIT_WEIGHTS
from engine.metrics.base import MetricError

WEIGHTS_ENV = "IQA_LAB_WEIGHTS"
OFFLINE_ENV = "IQA_LAB_OFFLINE"
"""Set to 1 to never try the network (every missing file fails at once)."""

CONNECT_TIMEOUT_S = 5.0
"""Per socket operation: a stalled connection fails instead of hanging."""


class WeightsUnavailable(MetricError):
    """A weights file is missing locally and could not be downloaded.

    The message names the file, the URL to get it from and the folder to place it in.
    """

    exit_code = EXIT_WEIGHTS

    def __init__(self, filename: str, url: str, folder: Path | str, reason: str = "",
                 metric: str = "") -> None:
        self.filename = filename
        self.url = url
        self.folder = str(folder)
        self.reason = reason
        who = f"{metric}: " if metric else ""
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"{who}weights file {filename!r} is missing and could not be downloaded{why}. "
            f"Download it from {url} and place it in {self.folder} "
            f"(full path: {Path(self.folder) / filename}), or pass weights=<path>.")


@dataclass(frozen=True)
class WeightFile:
    """One file a metric needs: its name, where it comes from and where it must lie.

    ``folder`` is where the loader looks; for Hugging Face files (``hf_repo`` set) it is
    the hub cache and presence is checked through ``huggingface_hub``.
    """

    filename: str
    url: str
    folder: str
    hf_repo: str = ""

    @property
    def path(self) -> Path:
        return Path(self.folder) / self.filename

    def present(self) -> bool:
        if self.hf_repo:
            return _hf_cached(self.hf_repo, self.filename)
        return self.path.is_file() and self.path.stat().st_size > 0


def weights_dir() -> Path:
    """The folder for our own checkpoints (``$IQA_LAB_WEIGHTS`` or torch hub checkpoints)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    import torch.hub
    return Path(torch.hub.get_dir()) / "checkpoints"


def torch_hub_checkpoints_dir() -> Path:
    """Where torchvision and ``torch.hub.load_state_dict_from_url`` cache backbones."""
    import torch.hub
    return Path(torch.hub.get_dir()) / "checkpoints"


def pyiqa_weights_dir() -> Path:
    """pyiqa's cache folder; pyiqa fixes it at import, so ask it when it is loaded."""
    mod = sys.modules.get("pyiqa.utils.download_util")
    if mod is not None:
        return Path(mod.DEFAULT_CACHE_DIR)
    import torch.hub
    return Path(torch.hub.get_dir()) / "pyiqa"


def weights_present(filename: str, folder: Path | str | None = None) -> bool:
    """Whether ``filename`` exists (non-empty) in ``folder`` (default :func:`weights_dir`)."""
    path = Path(folder if folder is not None else weights_dir()) / filename
    return path.is_file() and path.stat().st_size > 0


def offline_forced() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


_REACH_CACHE: dict[str, tuple[float, bool]] = {}


def network_reachable(url: str, timeout: float = 3.0) -> bool:
    """Can we open a TCP connection to ``url``'s host? Cached for a minute per host.

    With no network, name resolution fails immediately, so this returns in milliseconds.
    """
    if offline_forced():
        return False
    parts = urllib.parse.urlparse(url)
    host = parts.hostname or ""
    if not host:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    now = time.monotonic()
    hit = _REACH_CACHE.get(host)
    if hit is not None and now - hit[0] < 60.0:
        return hit[1]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _REACH_CACHE[host] = (now, ok)
    return ok


def ensure_weights(filename: str, url: str, *, download: bool = True,
                   folder: Path | str | None = None, timeout: float = CONNECT_TIMEOUT_S,
                   metric: str = "") -> Path:
    """Return the local path of a weights file, downloading it if it is missing.

    Args:
        filename: the file name in ``folder``.
        url: where to download it from.
        download: when False, a missing file raises at once.
        folder: default :func:`weights_dir`.
        timeout: seconds per socket operation (connect, each read).
        metric: name used in the error message.

    Returns:
        The path of the (now) present file.

    Raises:
        WeightsUnavailable: the file is missing and could not be fetched; the message
            names the file, the URL and the folder.
    """
    folder = Path(folder if folder is not None else weights_dir())
    path = folder / filename
    if path.is_file() and path.stat().st_size > 0:
        return path
    if not download:
        raise WeightsUnavailable(filename, url, folder, "downloads disabled", metric)
    if offline_forced():
        raise WeightsUnavailable(filename, url, folder, f"{OFFLINE_ENV} is set", metric)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsUnavailable(filename, url, folder, f"cannot create folder: {exc}",
                                 metric) from exc
    try:
        _download(url, path, timeout)
    except WeightsUnavailable:
        raise
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise WeightsUnavailable(filename, url, folder, _short(exc), metric) from exc
    return path


def _download(url: str, dest: Path, timeout: float) -> None:
    """Stream ``url`` to a temporary file next to ``dest``, check it, then rename."""
    req = urllib.request.Request(url, headers={"User-Agent": "iqa-purification-lab"})
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            ctype = resp.headers.get("Content-Type", "")
            first = True
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                if first and ("text/html" in ctype or chunk.lstrip()[:15].lower().startswith(
                        (b"<!doctype html", b"<html"))):
                    # Google Drive and similar answer with a web page instead of the file.
                    raise OSError("the server returned a web page instead of the file "
                                  "(download it manually in a browser)")
                first = False
                out.write(chunk)
        if os.path.getsize(tmp) == 0:
            raise OSError("downloaded an empty file")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache as ``huggingface_hub`` resolves it (``HF_HUB_CACHE``,
    ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME``/hub, ``XDG_CACHE_HOME``/huggingface/hub)."""
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache",
                                                     "huggingface")
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(hub).expanduser()


def hf_cached_file(repo_id: str, filename: str, cache_dir: str | Path | None = None) -> str | None:
    """The path of ``filename`` of the ``main`` revision of ``repo_id`` in the hub cache, or None.

    The same answer as ``huggingface_hub.try_to_load_from_cache`` for a model repo, read from
    the cache's layout (``models--ORG--NAME/refs/main`` → ``snapshots/COMMIT/FILE``) without
    importing ``huggingface_hub``, which takes a quarter of a second: availability is read
    by ``list`` and the GUI's first window.
    """
    if not repo_id or repo_id.count("/") > 1 or ".." in repo_id:
        return None
    root = Path(cache_dir).expanduser() if cache_dir is not None else hf_hub_cache_dir()
    repo = root / ("models--" + repo_id.replace("/", "--"))
    try:
        commit = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    if not commit or "/" in commit or ".." in commit:
        return None
    path = repo / "snapshots" / commit / filename
    return str(path) if path.is_file() else None


def _hf_cached(repo_id: str, filename: str) -> bool:
    # timm reads model.safetensors, or pytorch_model.bin when a repo has no safetensors.
    names = [filename] + (["pytorch_model.bin"] if filename == "model.safetensors" else [])
    return any(hf_cached_file(repo_id, name) is not None for name in names)


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc)
    return f"{type(exc).__name__}: {text}"[:200]


def read_checkpoint(path: Path | str, *, metric: str = "") -> Any:
    """``torch.load`` a checkpoint on the CPU with a clear error for unreadable files.

    Tensors-only loading is tried first; the authors' files also pickle plain Python and
    NumPy numbers (e.g. LinearityIQA's ``k``/``b``), which need the full unpickler. Only
    load files you trust.
    """
    import pickle

    import torch

    who = f"{metric}: " if metric else ""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise MetricError(f"{who}cannot read checkpoint {str(path)!r}: {_short(exc)}") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise MetricError(f"{who}cannot read checkpoint {str(path)!r}: {_short(exc)}") from exc
