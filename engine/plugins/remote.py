"""Plug-ins on a Ray worker: the driver sends each plug-in file's source with the job;
installed plug-in packages must be on every node.

Choice: the source travels as text (:func:`engine.plugins.records.ray_payload`) and the
worker writes it to a temporary folder and loads it with the same loader, rather than
Ray's ``runtime_env`` ``py_modules``: the pool is started before a GUI user loads a
file, ``py_modules`` wants a package folder, and sending text works the same on a
local instance, a cluster and through Ray Client. A component the worker still lacks
(a package not installed there, a file that does not load there) fails its items with
a message naming the plug-in; the worker adds its host.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from engine.plugins.errors import PluginError
from engine.plugins.loader import load_entry_points, load_path, unload

#: where workers write the plug-in files they are sent
CACHE = Path(tempfile.gettempdir()) / "iqa-lab-plugins"


class WorkerPlugins:
    """The plug-ins of one worker process: installed packages (loaded once) and the files
    each run sends."""

    def __init__(self) -> None:
        self._entry_points = False
        self.problems: list[str] = []   # files or packages that did not load here
        self.needed: dict[tuple[str, str], str] = {}  # (kind, name) → which plug-in provides it
        self._files: dict[str, tuple[str, list[Any]]] = {}  # driver's path → (sha256, records here)

    def load(self, payload: dict[str, Any]) -> list[str]:
        """Load what ``payload`` (:func:`~engine.plugins.records.ray_payload`) names; the
        problems (also kept for :meth:`item_error`)."""
        self.problems = []
        if not self._entry_points:
            self._entry_points = True
            _, errors = load_entry_points()
            self.problems += [str(e) for e in errors]
        for f in payload.get("files", []):
            old = self._files.get(f["source"])
            if old is not None and old[0] == f["sha256"]:
                continue
            if old is not None:  # edited on the driver since: its new version replaces it
                for rec in old[1]:
                    unload(rec)
                del self._files[f["source"]]
            try:
                self._files[f["source"]] = (f["sha256"], load_path(_materialise(f)))
            except PluginError as exc:
                self.problems.append(f"plug-in file {f['source']} does not load here: {exc}")
        for pkg in payload.get("packages", []):
            for comp in pkg.get("components", []):
                kind, name = comp.split(":", 1)
                self.needed[(kind, name)] = (f"plug-in package {pkg['name']} {pkg.get('version') or ''}".strip()
                                             + f" (provides {kind} {name!r})")
        return self.problems

    def item_error(self, item: Any) -> str | None:
        """Why ``item`` cannot run here (a component no plug-in provided), or None."""
        from engine.api import ATTACKS, DEFENCES
        from engine.metrics import list_metrics

        wanted = [("metric", item.metric.name, item.metric.name in list_metrics()),
                  ("attack", item.attack.name, item.attack.name in ATTACKS)]
        wanted += [("defence", d.name, d.name in DEFENCES) for d in item.defences]
        for kind, name, present in wanted:
            if present:
                continue
            who = self.needed.get((kind, name))
            if who:
                return f"{who} is not installed on this Ray worker; install it on every node"
            why = "; ".join(self.problems) or "no plug-in provides it here"
            return f"{kind} {name!r} is not available on this Ray worker: {why}"
        return None


def _materialise(f: dict[str, Any]) -> Path:
    """Write a sent plug-in's source under :data:`CACHE` (by its hash); the path to load."""
    base = CACHE / str(f["sha256"])[:16]
    name = Path(f["source"]).name
    root = base / name if f.get("package") else base
    for rel, text in f["texts"].items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    return root if f.get("package") else base / name
