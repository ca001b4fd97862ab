"""The catalogue ``list`` prints, kept between runs so that ``list`` answers without torch.

Building the catalogue imports torch and every component (about 2.5 s on a 2-core
machine); the catalogue itself is plain JSON. It is kept in ``catalogue.json`` in the
cache folder (``$IQA_LAB_CACHE``, else ``$XDG_CACHE_HOME/iqa-lab``, else
``~/.cache/iqa-lab``) and reused while nothing it depends on has changed:

- the lab's code (path, size and modification time of every ``engine/**/*.py``),
- the installed packages (modification time of every ``sys.path`` folder: an install or
  uninstall changes it) and the Python that runs,
- the environment variables that move weights or caches (``IQA_LAB_*``, ``TORCH_HOME``,
  ``HF_*``, ``XDG_CACHE_HOME``, ``HOME``),
- every weights folder that availability reads, recorded when the catalogue was built
  (a file added or removed changes the folder's time; for Hugging Face caches, each
  repository's ``refs/main`` and snapshot folders too).

Anything else (a file replaced in a nested folder the lab does not know about) is what
``list --refresh`` is for. With a plug-in loaded the catalogue is built live and not
kept: a plug-in's components are imported anyway, and its code is not in the key.
A cache that cannot be read or written is ignored: ``list`` then builds, as it always did.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import engine

FORMAT = 1
CACHE_ENV = "IQA_LAB_CACHE"
_ENV_PREFIXES = ("IQA_LAB_", "HF_")
_ENV_NAMES = ("TORCH_HOME", "XDG_CACHE_HOME", "HOME", "HUGGINGFACE_HUB_CACHE")

Catalogue = dict[str, list[dict[str, Any]]]


def cache_file() -> Path:
    """Where the catalogue is kept."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser() / "catalogue.json"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "iqa-lab" / "catalogue.json"


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def code_key(root: Path | None = None) -> str:
    """A hash of the lab's code files (relative path, size, modification time)."""
    root = root if root is not None else Path(engine.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def environment_key(environ: dict[str, str] | None = None) -> str:
    """A hash of the interpreter, the installed packages' folders and the relevant variables."""
    env = environ if environ is not None else os.environ
    h = hashlib.sha256(f"{FORMAT}\0{sys.executable}\0{sys.version}\n".encode())
    # the lab's own folder is covered by code_key; its time changes whenever a run makes a
    # folder beside main.py, which says nothing about the catalogue
    lab = Path(engine.__file__).resolve().parent.parent
    for entry in sys.path:
        if entry and os.path.isdir(entry) and Path(entry).resolve() != lab:
            h.update(f"{entry}\0{_mtime(Path(entry))}\n".encode())
    for name in sorted(env):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            h.update(f"{name}={env[name]}\n".encode())
    return h.hexdigest()


def folder_state(folder: Path) -> list[int]:
    """What changes when a file is added to or removed from a weights folder.

    The folder's own time; in a Hugging Face cache, also each repository's ``refs/main``
    and snapshot folders (files land two levels down there)."""
    state = [_mtime(folder)]
    try:
        repos = sorted(p for p in folder.iterdir() if p.name.startswith(("models--", "datasets--")))
    except OSError:
        return state
    for repo in repos:
        state.append(_mtime(repo / "refs" / "main"))
        snapshots = repo / "snapshots"
        state.append(_mtime(snapshots))
        try:
            state.extend(_mtime(s) for s in sorted(snapshots.iterdir()))
        except OSError:
            pass
    return state


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def _fresh(data: dict[str, Any], key: str) -> bool:
    watched = data.get("watched")
    if data.get("key") != key or not isinstance(watched, dict) or not isinstance(data.get("catalogue"), dict):
        return False
    return all(folder_state(Path(folder)) == state for folder, state in watched.items())


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".catalogue-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, default=str)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only or full cache folder only costs the next `list` a rebuild


def cached_catalogue(build: Callable[[], Catalogue], watched: Callable[[Catalogue], list[Path]], *,
                     refresh: bool = False, live: bool = False) -> tuple[Catalogue, bool]:
    """The catalogue, from the cache when it is fresh, else built (and kept).

    Args:
        build: builds the catalogue (imports the components).
        watched: the weights folders availability read, given the built catalogue.
        refresh: build even when the cache is fresh.
        live: build and keep nothing (a plug-in is loaded).

    Returns:
        (the catalogue, whether it came from the cache).
    """
    if live:
        return build(), False
    path = cache_file()
    key = hashlib.sha256(f"{code_key()}\0{environment_key()}".encode()).hexdigest()
    data = None if refresh else _read(path)
    if data is not None and _fresh(data, key):
        return data["catalogue"], True
    catalogue = build()
    folders = {str(p): folder_state(Path(p)) for p in sorted({str(Path(f)) for f in watched(catalogue)})}
    # JSON round trip: the cached and the live catalogue print the same.
    catalogue = json.loads(json.dumps(catalogue, default=str))
    _write(path, {"format": FORMAT, "key": key, "watched": folders, "catalogue": catalogue})
    return catalogue, False
