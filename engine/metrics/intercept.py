"""Build third-party architectures without fetching weights (random init), offline-safe.

pyiqa architectures load backbones even when asked for ``pretrained=False`` (torchvision
ImageNet weights, timm weights from the Hugging Face hub, pyiqa's own helper nets). Inside
:func:`random_init` every such load is skipped and recorded instead, so the real
architecture is built with random weights and without touching the network.

Inside :func:`record_downloads` (used for real, pretrained builds) loading works as usual
but every URL a download is attempted for is recorded, so a failure can name it.

Both patch library functions process-wide for the duration of the ``with`` block. The
patched functions only act on the thread that opened the block; other threads see the
original behaviour. Builds are serialised by a lock.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch.hub
from torch import nn
from torch.nn.modules.module import _IncompatibleKeys

from engine.metrics.weights import (
    WeightFile,
    WeightsUnavailable,
    pyiqa_weights_dir,
    torch_hub_checkpoints_dir,
)

_BUILD_LOCK = threading.RLock()


class _RandomStateDict(dict):
    """Stands in for a state dict that was not downloaded; loading it is a no-op."""

    def __getitem__(self, key: Any) -> _RandomStateDict:
        return _RandomStateDict()

    def get(self, key: Any, default: Any = None) -> _RandomStateDict:
        return _RandomStateDict()


def hf_weight_file(repo_id: str, filename: str = "model.safetensors") -> WeightFile:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
        folder = str(HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - huggingface_hub ships with timm
        folder = os.path.expanduser("~/.cache/huggingface/hub")
    return WeightFile(filename, f"https://huggingface.co/{repo_id}/resolve/main/{filename}",
                      folder, hf_repo=repo_id)


def url_weight_file(url: str, folder: Path | str | None = None) -> WeightFile:
    from urllib.parse import urlparse
    name = os.path.basename(urlparse(url).path)
    return WeightFile(name, url, str(folder if folder is not None else torch_hub_checkpoints_dir()))


class _Patcher:
    """Set attributes and put them back; patched callables act only on the owner thread."""

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.active = True
        self._undo: list[tuple[Any, str, Any]] = []

    def mine(self) -> bool:
        # A module imported inside the block may keep a reference to a patched function
        # after restore(); once inactive it behaves like the original everywhere.
        return self.active and threading.get_ident() == self.owner

    def set(self, obj: Any, name: str, value: Any) -> None:
        self._undo.append((obj, name, obj.__dict__.get(name, _MISSING)
                           if isinstance(obj, type) else getattr(obj, name, _MISSING)))
        setattr(obj, name, value)

    def wrap(self, obj: Any, name: str, make: Callable[[Any], Callable]) -> None:
        """Replace ``obj.name`` by ``make(original)``; other threads get the original."""
        original = getattr(obj, name, _MISSING)
        if original is _MISSING:
            return
        patched = make(original)

        def dispatch(*args: Any, **kwargs: Any) -> Any:
            return patched(*args, **kwargs) if self.mine() else original(*args, **kwargs)

        self.set(obj, name, dispatch)

    def restore(self) -> None:
        self.active = False
        for obj, name, old in reversed(self._undo):
            if old is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(obj, name)
            else:
                setattr(obj, name, old)
        self._undo.clear()


_MISSING = object()


def _pyiqa_modules() -> list[Any]:
    return [m for n, m in list(sys.modules.items())
            if m is not None and (n == "pyiqa.archs" or n.startswith("pyiqa.archs.")
                                  or n == "pyiqa.utils.download_util")]


def _modules_holding(func: Callable, name: str) -> list[Any]:
    """Loaded modules that imported ``func`` by name (e.g. facexlib, timm, pyiqa)."""
    out = []
    for mod in list(sys.modules.values()):
        try:
            if mod is not None and mod.__dict__.get(name) is func:
                out.append(mod)
        except (AttributeError, TypeError):
            continue
    return out


def _blocked(url: str, dst: str | os.PathLike | None = None, *_: Any, **__: Any) -> Any:
    folder = Path(dst).parent if dst else torch_hub_checkpoints_dir()
    raise WeightsUnavailable(os.path.basename(str(dst or url)), str(url), folder,
                             "downloads are blocked while building with random weights")


@contextlib.contextmanager
def random_init(log: list[WeightFile], load_local: Callable | None = None) -> Iterator[None]:
    """Build with random weights: skip (and log) every pretrained load, block the network.

    Args:
        log: receives a :class:`WeightFile` for each load that was skipped.
        load_local: replaces pyiqa's ``load_pretrained_network(net, path, strict,
            weight_keys)`` for local files (a ``weights=FILE`` build loads strictly
            through it); ``None`` keeps pyiqa's.

    Raises (inside the block):
        WeightsUnavailable: an architecture needs a file to even be built (e.g. OpenAI
            CLIP backbones read their shape from the checkpoint) and it is missing.
    """
    with _BUILD_LOCK:
        p = _Patcher()
        try:
            _patch_random(p, log, load_local)
            yield
        finally:
            p.restore()


def _patch_random(p: _Patcher, log: list[WeightFile], load_local: Callable | None = None) -> None:
    # torchvision builders load weights only when verify() returns an enum member.
    from torchvision.models._api import WeightsEnum
    orig_verify = WeightsEnum.__dict__["verify"].__func__

    def verify(cls: type, obj: Any) -> Any:
        res = orig_verify(cls, obj)
        if res is not None and p.mine():
            log.append(url_weight_file(res.url))
            return None
        return res

    p.set(WeightsEnum, "verify", classmethod(verify))

    # A skipped download yields a sentinel; loading the sentinel does nothing.
    orig_lsd = nn.Module.load_state_dict

    def load_state_dict(self: nn.Module, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(state_dict, _RandomStateDict):
            return _IncompatibleKeys([], [])
        return orig_lsd(self, state_dict, *args, **kwargs)

    p.set(nn.Module, "load_state_dict", load_state_dict)

    def make_sd_from_url(_orig: Callable) -> Callable:
        def sd_from_url(url: str, model_dir: str | None = None, *a: Any, **k: Any) -> Any:
            log.append(url_weight_file(url, model_dir))
            return _RandomStateDict()
        return sd_from_url

    for mod in _modules_holding(torch.hub.load_state_dict_from_url, "load_state_dict_from_url"):
        p.wrap(mod, "load_state_dict_from_url", make_sd_from_url)
    for mod in _modules_holding(torch.hub.download_url_to_file, "download_url_to_file"):
        p.wrap(mod, "download_url_to_file", lambda _o: _blocked)

    # timm: skip pretrained loads, note which hub repo or URL they would read.
    try:
        import timm.models._builder as tb
    except ImportError:
        tb = None
    if tb is not None:
        def make_timm(_orig: Callable) -> Callable:
            def skip(model: nn.Module, pretrained_cfg: Any = None, *a: Any, **k: Any) -> None:
                cfg = pretrained_cfg or getattr(model, "pretrained_cfg", None) or {}
                with contextlib.suppress(Exception):
                    src, loc = tb._resolve_pretrained_source(cfg)
                    if src == "hf-hub":
                        repo, fname = loc if isinstance(loc, tuple) else (loc, "model.safetensors")
                        log.append(hf_weight_file(repo, fname))
                    elif src == "url":
                        log.append(url_weight_file(loc))
            return skip
        p.wrap(tb, "load_pretrained", make_timm)
        p.wrap(tb, "load_custom_pretrained", make_timm)

    # pyiqa: its helper functions are imported by name into every arch module.
    def make_lpn(orig: Callable) -> Callable:
        def skip(net: nn.Module, model_path: str, *a: Any, **k: Any) -> None:
            if isinstance(model_path, str) and model_path.startswith(("http://", "https://")):
                log.append(url_weight_file(model_path, pyiqa_weights_dir()))
                return None
            # a local file the caller asked for
            return (load_local or orig)(net, model_path, *a, **k)
        return skip

    def make_lffu(orig: Callable) -> Callable:
        def local_only(url: str, model_dir: str | None = None, progress: bool = True,
                       file_name: str | None = None) -> str:
            wf = url_weight_file(url, model_dir or pyiqa_weights_dir())
            if file_name:
                wf = WeightFile(file_name, url, wf.folder)
            if wf.present():
                return str(wf.path)
            log.append(wf)
            raise WeightsUnavailable(wf.filename, url, wf.folder,
                                     "this architecture reads the file even for random weights")
        return local_only

    for mod in _pyiqa_modules():
        p.wrap(mod, "load_pretrained_network", make_lpn)
        p.wrap(mod, "load_file_from_url", make_lffu)

    for clip_name in ("pyiqa.archs.clip_model", "pyiqa.archs.afineclip_model", "clip.clip"):
        clip_mod = sys.modules.get(clip_name)
        if clip_mod is None:
            continue

        def make_clip(orig: Callable) -> Callable:
            def local_clip(url: str, root: str) -> str:
                wf = url_weight_file(url, root)
                if wf.present():
                    return orig(url, root)
                log.append(wf)
                raise WeightsUnavailable(
                    wf.filename, url, root,
                    "the CLIP backbone's shape is read from this file, so it is needed even "
                    "for random weights")
            return local_clip
        p.wrap(clip_mod, "_download", make_clip)

    # Anything else that asks the Hugging Face hub must fail at once, not retry for ~50 s.
    with contextlib.suppress(ImportError):
        import huggingface_hub.constants as hfc
        p.set(hfc, "HF_HUB_OFFLINE", True)


@contextlib.contextmanager
def record_downloads(log: list[WeightFile]) -> Iterator[None]:
    """Let a real build download as usual but log every URL it fetches (for messages)."""
    with _BUILD_LOCK:
        p = _Patcher()
        try:
            def make_rec(orig: Callable) -> Callable:
                def rec(url: str, dst: str, *a: Any, **k: Any) -> Any:
                    log.append(WeightFile(os.path.basename(str(dst)), str(url),
                                          str(Path(dst).parent)))
                    return orig(url, dst, *a, **k)
                return rec

            for mod in _modules_holding(torch.hub.download_url_to_file, "download_url_to_file"):
                p.wrap(mod, "download_url_to_file", make_rec)
            yield
        finally:
            p.restore()
