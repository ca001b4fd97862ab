"""The one plug-in loader: files and folders, installed entry points, rollback on failure.

Loading imports the plug-in's module; its ``@METRICS.register``/``@ATTACKS.register``/
``@DEFENCES.register`` decorators add its classes to the registries (an entry point may
also name a class, registered under the entry point's name). What it registered is
then checked (:func:`engine.plugins.checks.check_component`). Any failure — the import
raises, a name already exists, a check fails — removes everything the plug-in
registered and raises :class:`PluginError` naming the file and line.

Registries are process-global; :func:`isolated` restores them (and this loader's
records) on exit, for tests and for a GUI that reloads a file.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.plugins.checks import check_component
from engine.plugins.errors import PluginError

#: the environment variable listing plug-in files or folders (``os.pathsep``-separated)
ENV_VAR = "IQA_LAB_PLUGINS"
#: component kind → the entry-point group an installed package declares it in
ENTRY_POINT_GROUPS = {"metric": "iqa_lab.metrics", "attack": "iqa_lab.attacks", "defence": "iqa_lab.defences"}


@dataclass
class LoadedPlugin:
    """A loaded plug-in and what it registered.

    Attributes:
        source: the file or folder (absolute), or the distribution's name.
        way: ``file`` (a file or folder) or ``entry-point`` (an installed package).
        version: the distribution's version (entry points).
        sha256: the hash of the file (of a folder: its ``.py`` files), so a result says
            which code made it.
        components: ``(kind, name)`` of every component it registered.
        module: the module name it was imported as.
    """

    source: str
    way: str
    version: str | None = None
    sha256: str | None = None
    components: list[tuple[str, str]] = field(default_factory=list)
    module: str | None = None

    @property
    def label(self) -> str:
        """``package NAME VERSION`` or ``file PATH``: what ``list`` and the GUI show."""
        if self.way == "entry-point":
            return f"package {self.source} {self.version or ''}".strip()
        return f"file {self.source}"

    def to_manifest(self) -> dict[str, Any]:
        """What the store's manifest records about it."""
        d: dict[str, Any] = {"source": self.source, "way": self.way,
                             "components": [f"{k}:{n}" for k, n in self.components]}
        if self.version:
            d["version"] = self.version
        if self.sha256:
            d["sha256"] = self.sha256
        return d


_loaded: dict[str, LoadedPlugin] = {}  # key: resolved path, or "ep:group:name"


def _registries() -> dict[str, Any]:
    from engine.api import ATTACKS, DEFENCES, METRICS

    return {"metric": METRICS, "attack": ATTACKS, "defence": DEFENCES}


def loaded() -> list[LoadedPlugin]:
    """Every plug-in loaded in this process, in load order."""
    return list(_loaded.values())


def origin_of(kind: str, name: str) -> LoadedPlugin | None:
    """The plug-in that registered component ``name`` of ``kind``, or None (built-in)."""
    for rec in _loaded.values():
        if (kind, name) in rec.components:
            return rec
    return None


def _snapshot() -> dict[str, dict[str, type]]:
    return {k: r.snapshot() for k, r in _registries().items()}


def _added(before: dict[str, dict[str, type]]) -> list[tuple[str, str, type]]:
    out = []
    for kind, reg in _registries().items():
        for name in reg.names():
            if name not in before[kind]:
                out.append((kind, name, reg.get(name)))
    return out


def _rollback(before: dict[str, dict[str, type]]) -> None:
    for kind, reg in _registries().items():
        reg.restore(before[kind])


def where(exc: BaseException, inside: Path | None) -> str:
    """``file:line`` of the innermost frame of ``exc`` inside ``inside`` (a plug-in's file or
    folder; any file when None), or ``""``."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        f = Path(fr.filename)
        if inside is None or f == inside or inside in f.parents:
            return f"{fr.filename}:{fr.lineno}"
    return ""


def _text(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, SyntaxError):
        msg = exc.msg
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def file_hash(path: Path) -> str:
    """sha256 of a file, or of a folder's ``.py`` files (relative names and contents)."""
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(path.rglob("*.py")):
            h.update(f.relative_to(path).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def _finish(before: dict, rec: LoadedPlugin, inside: Path | None) -> LoadedPlugin:
    """Check what the plug-in registered, mark its classes; roll back on a failure."""
    added = _added(before)
    try:
        for kind, name, cls in added:
            check_component(kind, name, cls)
    except PluginError:
        _rollback(before)
        raise
    for kind, name, cls in added:
        cls.plugin = rec.label  # its outputs are checked at run time (engine.api base classes)
        rec.components.append((kind, name))
    return rec


def load_path(path: str | os.PathLike[str]) -> list[LoadedPlugin]:
    """Load a plug-in file, a package folder (with ``__init__.py``) or every ``.py`` file
    of a plain folder. A file loaded before is loaded again only when it changed.

    Raises:
        PluginError: the path is missing, the import fails, or a component is refused.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise PluginError(f"plug-in {path}: no such file or folder", str(path))
    p = p.resolve()
    if p.is_dir() and not (p / "__init__.py").is_file():
        files = sorted(f for f in p.glob("*.py") if not f.name.startswith("_"))
        if not files:
            raise PluginError(f"plug-in folder {p}: no .py files in it", str(p))
        return [_load_module(f) for f in files]
    if p.is_file() and p.suffix != ".py":
        raise PluginError(f"plug-in {p}: not a Python file (.py) or folder", str(p))
    return [_load_module(p)]


def _load_module(p: Path) -> LoadedPlugin:
    digest = file_hash(p)
    old = _loaded.get(str(p))
    if old is not None:
        if old.sha256 == digest:
            return old
        unload(old)
    package = p.is_dir()
    stem = re.sub(r"\W", "_", p.name if package else p.stem)
    modname = f"iqa_lab_plugin_{stem}_{digest[:8]}"
    entry = p / "__init__.py" if package else p
    spec = importlib.util.spec_from_file_location(
        modname, entry, submodule_search_locations=[str(p)] if package else None)
    if spec is None or spec.loader is None:
        raise PluginError(f"plug-in {p}: cannot be imported", str(p))
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module  # dataclasses and type hints look their module up here
    before = _snapshot()
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a plug-in's failure is its message, not ours
        _rollback(before)
        sys.modules.pop(modname, None)
        at = where(exc, p) or str(p)
        raise PluginError(f"plug-in {at}: {_text(exc)}", str(p)) from None
    rec = LoadedPlugin(str(p), "file", sha256=digest, module=modname)
    try:
        _finish(before, rec, p)
    except PluginError:
        sys.modules.pop(modname, None)
        raise
    if not rec.components:
        sys.modules.pop(modname, None)
        raise PluginError(f"plug-in {p}: registers nothing (decorate a class with "
                          "@METRICS.register(name), @ATTACKS.register(name) or @DEFENCES.register(name))", str(p))
    _loaded[str(p)] = rec
    return rec


def load_paths(paths: list[str]) -> list[LoadedPlugin]:
    """:func:`load_path` of each (the first failure raises)."""
    out: list[LoadedPlugin] = []
    for path in paths:
        out += load_path(path)
    return out


def env_paths(environ: dict[str, str] | None = None) -> list[str]:
    """The paths in :data:`ENV_VAR` (empty entries skipped)."""
    value = (environ if environ is not None else os.environ).get(ENV_VAR, "")
    return [p for p in value.split(os.pathsep) if p.strip()]


def _dist_of(ep: importlib.metadata.EntryPoint) -> tuple[str, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ep.value.split(":")[0].split(".")[0], None
    return dist.metadata["Name"] or dist.name, dist.version


def load_entry_points() -> tuple[list[LoadedPlugin], list[PluginError]]:
    """Load every installed package's entry points in :data:`ENTRY_POINT_GROUPS`.

    An entry point names a module (its decorators register) or a class (registered
    under the entry point's name). A broken one does not stop the others.

    Returns:
        (the plug-ins loaded, the errors of those refused).
    """
    done: list[LoadedPlugin] = []
    errors: list[PluginError] = []
    for kind, group in ENTRY_POINT_GROUPS.items():
        for ep in importlib.metadata.entry_points(group=group):
            key = f"ep:{group}:{ep.name}"
            if key in _loaded:
                continue
            dist, version = _dist_of(ep)
            before = _snapshot()
            what = f"plug-in package {dist} {version or ''} (entry point {group}: {ep.name} = {ep.value})"
            try:
                obj = ep.load()
                registry = _registries()[kind]
                if isinstance(obj, type) and ep.name not in registry:
                    registry.register(ep.name)(obj)
                rec = _finish(before, LoadedPlugin(dist, "entry-point", version=version, module=ep.module), None)
            except PluginError as exc:
                errors.append(PluginError(f"{what}: {exc}", dist))
                continue
            except Exception as exc:  # noqa: BLE001 - a broken package must not take the lab down
                _rollback(before)
                at = where(exc, None)
                errors.append(PluginError(f"{what}: {at + ': ' if at else ''}{_text(exc)}", dist))
                continue
            _loaded[key] = rec
            done.append(rec)
    return done, errors


def unload(rec: LoadedPlugin) -> None:
    """Remove a plug-in's components from the registries and forget it."""
    regs = _registries()
    for kind, name in rec.components:
        regs[kind].unregister(name)
    if rec.module and rec.way == "file":
        for mod in [m for m in sys.modules if m == rec.module or m.startswith(rec.module + ".")]:
            del sys.modules[mod]
    for key, value in list(_loaded.items()):
        if value is rec:
            del _loaded[key]


@contextmanager
def isolated() -> Iterator[None]:
    """Restore the registries and this loader's records on exit (what was loaded inside
    is forgotten): tests, and anything that loads plug-ins for a while."""
    before = _snapshot()
    records = dict(_loaded)
    modules = set(sys.modules)
    try:
        yield
    finally:
        _rollback(before)
        _loaded.clear()
        _loaded.update(records)
        for mod in set(sys.modules) - modules:
            if mod.startswith("iqa_lab_plugin_"):
                del sys.modules[mod]
