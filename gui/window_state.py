"""The main window's persistent state: geometry, splitters, folders, experiment, store."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "resources" / "samples"


def default_output_dir(folder: str | None) -> str:
    """``<user data>/iqa-lab/runs/<folder name>`` (never inside the image folder)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation) \
        or str(Path.home() / ".local" / "share")
    name = Path(folder).name if folder else "untitled"
    return str(Path(base) / "iqa-lab" / "runs" / name)


def _settings_json(settings: QSettings, key: str) -> Any:
    raw = settings.value(key)
    if not raw:
        return None
    try:
        return json.loads(str(raw))
    except ValueError:
        return None


def restore_window(w: Any) -> None:
    """Restore ``w`` (a MainWindow) from ``w.settings``: folder and store go through the session."""
    s = w.settings
    w.images.recent = [str(f) for f in (_settings_json(s, "recentFolders") or []) if Path(str(f)).is_dir()]
    w.images._update_recent_menu()
    state = _settings_json(s, "lastExperiment")
    if isinstance(state, dict):
        output = state.pop("output", None)
        w.panel.set_state(state)
        if str(s.value("outputChosen", "false")).lower() == "true" and output:
            w.session.choose_output(output)
    geo = s.value("geometry")
    if isinstance(geo, (QByteArray, bytes)) and geo:
        w.restoreGeometry(geo)
    else:
        w.resize(1280, 800)
        w._needs_default_splits = True
    st = s.value("windowState")
    if isinstance(st, (QByteArray, bytes)) and st:
        w.restoreState(st)
    for key, splitter in (("topSplitter", w.top_splitter), ("centralSplitter", w.central_splitter)):
        v = s.value(key)
        if isinstance(v, (QByteArray, bytes)) and v:
            splitter.restoreState(v)
    last, store = s.value("lastFolder"), s.value("lastStore")
    if store and Path(str(store)).exists():
        w.session.open_store(str(store), s.value("lastExperimentId") or None)
    if last and Path(str(last)).is_dir() and w.session.folder != str(Path(str(last)).resolve()):
        w.open_folder(str(last))
    first_done = str(s.value("firstLaunchDone", "false")).lower() == "true"
    w.images.show_banner(not first_done and SAMPLES_DIR.is_dir())


def save_window(w: Any) -> None:
    """Write ``w``'s state to ``w.settings``."""
    s, ses = w.settings, w.session
    s.setValue("geometry", w.saveGeometry())
    s.setValue("windowState", w.saveState())
    s.setValue("topSplitter", w.top_splitter.saveState())
    s.setValue("centralSplitter", w.central_splitter.saveState())
    if ses.folder:
        s.setValue("lastFolder", ses.folder)
    s.setValue("recentFolders", json.dumps(w.images.recent))
    s.setValue("lastExperiment", json.dumps(w.panel.state()))
    s.setValue("outputChosen", "true" if ses.output_choice else "false")
    stored = ses.store_path is not None and ses.store_path.exists() and ses.experiment_state() != "new"
    s.setValue("lastStore", str(ses.store_path) if stored else "")
    s.setValue("lastExperimentId", ses.exp_id if stored else "")
    s.sync()
