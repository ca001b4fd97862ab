"""What can be chosen: metrics (with availability), attacks, defences.

The metric scan imports pyiqa and checks weight files, which takes seconds, so it runs in
a background thread (:func:`scan_metrics` is a plain function returning plain dicts).
"""
from __future__ import annotations

from typing import Any

STATE_TEXT = {"ready": "ready", "needs-download": "needs download", "unavailable": "unavailable"}
STATE_ORDER = {"ready": 0, "needs-download": 1, "unavailable": 2}


def scan_metrics() -> list[dict[str, Any]]:
    """Every selectable metric: name, state, reason, lower_better, source (ready first).

    ``torchscript`` is not listed bare: it needs its file, so Tools → Plug-ins… adds it
    with its parameters (:meth:`gui.experiment_panel.ExperimentPanel.add_metric_entry`)."""
    from engine.metrics import list_metrics, metric_info

    out = []
    for name in list_metrics():
        if name == "torchscript":
            continue
        try:
            info = metric_info(name)
            av = info.get("availability")
            state = getattr(av, "state", "ready")
            reason = getattr(av, "reason", "")
            out.append({"name": name, "state": state, "reason": reason,
                        "lower_better": info.get("lower_better"), "source": info.get("source", ""),
                        "bounds": info.get("bounds"), "plugin": info.get("plugin")})
        except Exception as exc:  # noqa: BLE001 - one broken entry must not hide the rest
            out.append({"name": name, "state": "unavailable", "reason": f"{type(exc).__name__}: {exc}",
                        "lower_better": None, "source": "", "bounds": None})
    out.sort(key=lambda d: (STATE_ORDER.get(d["state"], 3), d["name"]))
    return out


def attack_classes() -> dict[str, type]:
    from engine.attacks import ATTACKS

    return {n: ATTACKS.get(n) for n in ATTACKS.names()}


def defence_classes() -> dict[str, type]:
    from engine.defences import DEFENCES

    return {n: DEFENCES.get(n) for n in DEFENCES.names()}
