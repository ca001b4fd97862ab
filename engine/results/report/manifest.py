"""The experiment manifest as report tables: setup, versions and every component parameter."""
from __future__ import annotations

from typing import Any

from engine.results.report.data import ReportData
from engine.core.labels import component_label


def resolved_params(kind: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
    """Every parameter of an attack/defence (defaults, then preset, then overrides).

    Args:
        kind: ``attacks`` or ``defences`` (metrics: the given parameters only).
        spec: a component dict (``name``, ``params``, ``preset``).

    Returns:
        ``(params, units, note)``: values, display units by parameter (``×255`` …) and a
        note saying why only the stored parameters are shown, if so.
    """
    given = dict(spec.get("params") or {})
    if kind not in ("attacks", "defences"):
        return given, {}, ""
    try:
        from engine.spec.experiment import ComponentSpec
        from engine.spec.params import make_params, param_specs, params_to_dict
        from engine.run.runtime import merged_params

        if kind == "attacks":
            from engine.attacks import ATTACKS as registry
        else:
            from engine.defences import DEFENCES as registry
        cls = registry.get(spec["name"])
        if not getattr(cls, "Params", None):
            return given, {}, ""
        values = params_to_dict(make_params(cls.Params, merged_params(cls, ComponentSpec.from_any(spec))))
        return values, {p.name: p.unit for p in param_specs(cls.Params) if p.unit}, ""
    except Exception as exc:  # noqa: BLE001 - a report of an old run must still build
        return given, {}, f"only the stored parameters ({type(exc).__name__}: {exc})"


def component_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric, attack and defence: kind, label, parameters, units, note."""
    from engine.spec.experiment import ComponentSpec

    out = []
    for kind, title in (("metrics", "metric"), ("attacks", "attack"), ("defences", "defence")):
        for c in spec.get(kind) or []:
            cs = ComponentSpec.from_any(c)
            params, units, note = resolved_params(kind, cs.to_dict())
            out.append({"kind": title, "label": component_label(cs.name, cs.preset_label), "spec": cs.label,
                        "preset": cs.preset or "", "params": params, "units": units,
                        "given": dict(cs.params), "note": note})
    return out


def setup_rows(data: ReportData) -> list[tuple[str, Any]]:
    """Key/value pairs describing the run (spec fields first, then where it ran)."""
    s, m = data.spec, data.manifest
    gpu = m.get("gpu") or "none (CPU)"
    rows: list[tuple[str, Any]] = [
        ("experiment id", data.experiment_id),
        ("created", data.created or "–"),
        ("seed", s.get("seed", m.get("seed"))),
        ("images", len(s.get("images") or [])),
        ("work items", f"{data.total} expected, {data.done} done, {data.failed} failed, {data.missing} missing"),
        ("adaptive (attack M∘D)", s.get("adaptive")),
        ("protocol", s.get("protocol", "lab")),
        ("EOT draws", s.get("eot_draws")),
        ("images saved", s.get("save_images")),
        ("attacked images kept (exact float copies)", bool(s.get("keep_attacked"))),
        ("MOS file", s.get("mos_file") or "–"),
        ("max pixels", s.get("max_pixels")),
        ("device requested", m.get("device_requested", s.get("device"))),
        ("device used", m.get("device", "–")),
        ("GPU", gpu),
        ("CUDA", m.get("cuda") or "–"),
        ("platform", m.get("platform", "–")),
        ("torch threads", m.get("torch_threads", "–")),
        ("runs (sessions)", len(m.get("runs") or []) or "–"),
    ]
    for w in m.get("metric_weights") or []:  # robust variants: training-based defences
        recipe = f"trained with {w['recipe_label']}; " if w.get("recipe_label") else ""
        rows.append((f"weights of {w.get('metric')}",
                     f"{recipe}SHA-256 {str(w.get('sha256'))[:16]}…; attacks are white-box against "
                     "these weights (adaptive evaluation)"))
    return rows + plugin_rows(m)


def plugin_rows(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """One row per plug-in the run used: its components, and its file with the file's
    hash, or its package with the version (which code made the numbers)."""
    rows = []
    for p in manifest.get("plugins") or []:
        made_by = (f"package {p['source']} {p.get('version') or ''}".strip() if p.get("way") == "entry-point"
                   else f"{p.get('way', 'file')} {p['source']} (sha256 {str(p.get('sha256'))[:16]})")
        rows.append((f"plug-in: {', '.join(p.get('components') or [])}", made_by))
    return rows


def version_rows(data: ReportData) -> list[tuple[str, Any]]:
    versions = data.manifest.get("versions") or {}
    return [(k, v if v is not None else "not installed") for k, v in versions.items()]
