"""What an experiment owes to plug-ins: for its spec, the store's manifest and Ray workers."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.plugins.loader import LoadedPlugin, file_hash, origin_of
from engine.spec.experiment import ComponentSpec, Experiment


def components(exp: Experiment) -> list[tuple[str, ComponentSpec]]:
    """``(kind, spec)`` of every metric, attack and defence of ``exp``."""
    return ([("metric", m) for m in exp.metrics] + [("attack", a) for a in exp.attacks]
            + [("defence", d) for d in exp.all_defences])


def used(exp: Experiment) -> list[LoadedPlugin]:
    """The loaded plug-ins whose components ``exp`` names (each once, in order)."""
    out: list[LoadedPlugin] = []
    for kind, spec in components(exp):
        rec = origin_of(kind, spec.name)
        if rec is not None and rec not in out:
            out.append(rec)
    return out


def spec_files(exp: Experiment) -> list[str]:
    """``exp.plugins`` and the files of the plug-ins it uses (what its spec records)."""
    files = list(exp.plugins)
    for rec in used(exp):
        if rec.way == "file" and rec.source not in files:
            files.append(rec.source)
    return files


def code(exp: Experiment) -> dict[str, str]:
    """``kind:label`` → the sha256 of the plug-in file (or TorchScript model) computing it,
    or ``package VERSION`` of an installed plug-in: what ``exp.plugin_code`` records."""
    out: dict[str, str] = {}
    for kind, spec in components(exp):
        rec = origin_of(kind, spec.name)
        if rec is not None:
            out[f"{kind}:{spec.label}"] = rec.sha256 or f"{rec.source} {rec.version or ''}".strip()
        path = str(spec.params.get("path") or "") if kind == "metric" and spec.name == "torchscript" else ""
        if path and Path(path).expanduser().is_file():
            out[f"{kind}:{spec.label}"] = file_hash(Path(path).expanduser())
    return out


def recorded(exp: Experiment) -> Experiment:
    """``exp`` with the plug-in files it uses in ``plugins`` and their code in
    ``plugin_code`` (``exp`` itself when nothing changes)."""
    from dataclasses import replace

    files, versions = spec_files(exp), code(exp)
    if files == exp.plugins and versions == exp.plugin_code:
        return exp
    return replace(exp, plugins=files, plugin_code=versions)


def manifest(exp: Experiment) -> list[dict[str, Any]]:
    """The manifest's ``plugins``: each plug-in ``exp`` uses (name, version or file hash)
    and each TorchScript model file it scores with (its hash)."""
    out = [rec.to_manifest() for rec in used(exp)]
    for m in exp.metrics:
        path = str(m.params.get("path") or "")
        if m.name == "torchscript" and path and Path(path).expanduser().is_file():
            out.append({"source": str(Path(path).expanduser().resolve()), "way": "torchscript",
                        "sha256": file_hash(Path(path).expanduser()), "components": [f"metric:{m.label}"]})
    return out


def ray_payload(exp: Experiment) -> dict[str, Any]:
    """What a Ray worker needs to have the plug-ins ``exp`` uses: every plug-in file's
    source (a folder's ``.py`` files), and the installed packages it must have itself.

    Returns:
        ``{"files": [{"source", "sha256", "package", "texts": {relative name: text}}],
        "packages": [{"name", "version", "components": ["kind:name", …]}]}``
    """
    files, packages = [], []
    for rec in used(exp):
        if rec.way == "file":
            src = Path(rec.source)
            texts = ({f.relative_to(src).as_posix(): f.read_text(encoding="utf-8") for f in sorted(src.rglob("*.py"))}
                     if src.is_dir() else {src.name: src.read_text(encoding="utf-8")})
            files.append({"source": rec.source, "sha256": rec.sha256, "package": src.is_dir(), "texts": texts})
        else:
            packages.append({"name": rec.source, "version": rec.version,
                             "components": [f"{k}:{n}" for k, n in rec.components]})
    return {"files": files, "packages": packages}
