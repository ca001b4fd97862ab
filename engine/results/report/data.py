"""Everything a report shows, read from a result store (never from a live run)."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.core.labels import component_label

# (item_id, kind, defence_label) -> an existing image file, or None
ImageLookup = Callable[[str, str, str | None], "Path | None"]


@dataclass
class ReportData:
    """The numbers of one experiment, as stored.

    Attributes:
        experiment_id: the store's experiment id.
        spec: the experiment spec as a dict (``Experiment.to_dict`` form).
        manifest: what the run recorded about itself (versions, device, GPU, …).
        rows: raw rows (one per image × metric × attack × defence).
        items: work items with status, error and attack steps.
        summary: long-format means from :func:`engine.evaluation.tables.summarise`.
        total, done, failed: expected work items and how many finished / failed.
        image_lookup: finds saved PNGs, or None when the run saved none.
        paired: paired defence comparisons (:func:`engine.evaluation.paired.paired_rows`).
        leaderboard: :func:`engine.evaluation.leaderboard.leaderboard` rows.
        ci_method: how the intervals were computed (``bootstrap`` or ``t``).
        study: the study comparison (:func:`engine.spec.studies.compare`), when the run was one.
    """

    experiment_id: str
    spec: dict[str, Any]
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]
    items: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    total: int
    done: int
    failed: int
    created: str | None = None
    image_lookup: ImageLookup | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    paired: list[dict[str, Any]] = field(default_factory=list)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    ci_method: str = "bootstrap"
    study: dict[str, Any] | None = None

    @property
    def missing(self) -> int:
        return max(0, self.total - self.done - self.failed)

    @property
    def complete(self) -> bool:
        return self.missing == 0 and self.failed == 0

    @property
    def save_images(self) -> bool:
        return bool(self.spec.get("save_images"))


def _as_dict(v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return {"value": v}
    if hasattr(v, "to_dict"):
        v = v.to_dict()
    return dict(v)


def _display_labels(spec: dict[str, Any]) -> dict[str, str]:
    """Store label (``ifgsm(iters=3)``) → the rows' ``name[preset]`` label used everywhere."""
    from engine.spec.experiment import ComponentSpec

    out: dict[str, str] = {}
    for key in ("metrics", "attacks", "defences"):
        for c in spec.get(key) or []:
            try:
                cs = ComponentSpec.from_any(c)
            except (KeyError, TypeError, ValueError):
                continue
            out[cs.label] = component_label(cs.name, cs.preset_label)
    return out


def load_report_data(store: Any, experiment_id: str | None = None, ci_method: str = "bootstrap") -> ReportData:
    """Read one experiment's numbers from an open ``ResultStore``.

    Args:
        store: an ``engine.store.db.ResultStore``.
        experiment_id: which experiment (a unique prefix is enough); the latest when None.
        ci_method: ``bootstrap`` (default) or ``t`` intervals.

    Returns:
        A :class:`ReportData`.

    Raises:
        engine.store.db.StoreError: the store holds no experiment, or not the one asked for.
    """
    from engine.evaluation.tables import tables

    exp_id = store.resolve(experiment_id)
    info = next(e for e in store.experiments() if e["id"] == exp_id)
    spec = _as_dict(info.get("spec"))
    manifest = _as_dict(info.get("manifest"))
    rows = list(store.rows(exp_id))
    items = list(store.items(exp_id))
    labels = _display_labels(spec)
    for it in items:
        it["attack_display"] = labels.get(str(it.get("attack")), str(it.get("attack")))
    done = sum(1 for it in items if it.get("status") == "done")
    failed = sum(1 for it in items if it.get("status") == "failed")
    total = int(info.get("total") or len(items))
    created = info.get("created")
    if isinstance(created, (int, float)):
        created = datetime.fromtimestamp(created, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    def lookup(item_id: str, kind: str, defence_label: str | None) -> Path | None:
        p = Path(store.image_path(exp_id, item_id, kind, defence_label))
        return p if p.is_file() else None

    t = tables(rows, ci_method)
    study = None
    if spec.get("study"):
        from engine.evaluation.study_compare import compare_study

        study = compare_study(str(spec["study"]), t["summary"])
    return ReportData(
        experiment_id=exp_id, spec=spec, manifest=manifest, rows=rows, items=items,
        summary=t["summary"], paired=t["paired"], leaderboard=t["leaderboard"], ci_method=ci_method,
        study=study, total=total, done=done, failed=failed,
        created=str(created) if created else None,
        image_lookup=lookup if spec.get("save_images") else None,
    )
