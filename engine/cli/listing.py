"""``python main.py list [--json] [--refresh]``: every metric, attack and defence, its
parameters and defaults, and whether it can run here. It reads the registries and
catalogues; no model is built and nothing is downloaded. The result is kept between runs
(:mod:`engine.cli.catalogue_cache`), so a second ``list`` does not import torch."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.cli.catalogue_cache import cached_catalogue
from engine.core.errors import EXIT_OK
from engine.spec.params import ParamSpec


def _spec_dict(s: ParamSpec) -> dict[str, Any]:
    d = {"name": s.name, "type": s.type.__name__, "default": s.default, "help": s.help}
    for k in ("min", "max", "choices", "unit"):
        v = getattr(s, k)
        if v not in (None, "", ()):
            d[k] = list(v) if isinstance(v, tuple) else v
    return d


def _origin(kind: str, name: str) -> str | None:
    """``file PATH`` or ``package NAME VERSION`` of a plug-in's component, else None."""
    from engine.plugins import origin_of

    rec = origin_of(kind, name)
    return rec.label if rec is not None else None


def catalogue() -> dict[str, list[dict[str, Any]]]:
    from engine.attacks import ATTACKS
    from engine.defences import DEFENCES
    from engine.metrics import list_metrics, metric_info, metric_params
    from engine.metrics.base import Availability

    metrics = []
    for name in list_metrics():
        info = metric_info(name)
        av = info["availability"]
        metrics.append({"name": name, "lower_better": info.get("lower_better"), "bounds": info.get("bounds"),
                        "differentiable": info.get("differentiable"), "source": info.get("source"),
                        "status": av.state, "reason": av.reason, "plugin": _origin("metric", name),
                        "folders": sorted({str(f["folder"]) for f in info.get("files", ()) if f.get("folder")}),
                        "params": [_spec_dict(s) for s in metric_params(name)]})
    attacks = []
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        av = cls.availability() if callable(getattr(cls, "availability", None)) else Availability("ready")
        attacks.append({"name": name, "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                        "params": [_spec_dict(s) for s in cls.param_specs()],
                        "presets": list(cls.presets), "universal": cls.universal,
                        "strength_param": getattr(cls, "strength_param", None), "status": av.state,
                        "reason": av.reason, "plugin": _origin("attack", name)})
    defences = []
    for name in DEFENCES.names():
        cls = DEFENCES.get(name)
        av = cls.availability()
        defences.append({"name": name, "params": [_spec_dict(s) for s in cls.param_specs()],
                         "presets": list(cls.presets), "differentiable": cls.differentiable,
                         "random": cls.random, "status": av.state, "reason": av.reason,
                         "plugin": _origin("defence", name)})
    return {"metrics": metrics, "attacks": attacks, "defences": defences}


def weights_folders(cat: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """Every folder whose files decide an availability in ``cat`` (from :func:`catalogue`)."""
    from engine.defences.diffpure import hub_cache_dir
    from engine.metrics.weights import hf_hub_cache_dir, pyiqa_weights_dir, torch_hub_checkpoints_dir, weights_dir

    folders = {weights_dir(), torch_hub_checkpoints_dir(), pyiqa_weights_dir(), hf_hub_cache_dir(), hub_cache_dir()}
    folders.update(Path(f) for m in cat["metrics"] for f in m.get("folders", ()))
    return sorted(folders)


def _fmt_default(v: Any) -> str:
    if isinstance(v, float):
        n = v * 255
        if v and abs(n - round(n)) < 1e-6 and v < 1:
            return f"{round(n)}/255"
        return f"{v:.6g}"
    return repr(v)


def describe_all(as_json: bool = False, cat: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """The listing as text (or JSON) of ``cat`` (default: built now)."""
    cat = catalogue() if cat is None else cat
    if as_json:
        return json.dumps(cat, indent=2, default=str)
    lines: list[str] = []
    for kind in ("metrics", "attacks", "defences"):
        lines.append(f"== {kind} ({len(cat[kind])}) ==")
        for c in cat[kind]:
            status = c.get("status", "ready")
            extra = []
            if kind == "metrics":
                extra.append("lower is better" if c["lower_better"] else "higher is better")
                if c.get("bounds"):
                    extra.append(f"bounds {c['bounds'][0]}→{c['bounds'][1]}")
            if kind == "attacks" and c.get("strength_param"):
                extra.append(f"budget calibrates {c['strength_param']}")
            if kind == "defences":
                extra += [x for x, on in (("differentiable", c["differentiable"]), ("random", c["random"])) if on]
            head = f"{c['name']:<22} [{status}]"
            lines.append(head + (f"  ({', '.join(extra)})" if extra else ""))
            if c.get("plugin"):
                lines.append(f"    plug-in: {c['plugin']}")
            if c.get("reason"):
                lines.append(f"    {status}: {c['reason']}")
            if c["params"]:
                lines.append("    " + "; ".join(f"{p['name']}={_fmt_default(p['default'])}" for p in c["params"]))
            if c.get("presets"):
                lines.append("    presets: " + ", ".join(c["presets"]))
        lines.append("")
    return "\n".join(lines)


def add_parser(sub) -> argparse.ArgumentParser:
    ls = sub.add_parser("list", help="list metrics, attacks and defences with their parameters")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--refresh", action="store_true",
                    help="rebuild the catalogue even when the kept one is fresh (see docs/architecture.md)")
    ls.set_defaults(func=cmd_list)
    return ls


def cmd_list(args: argparse.Namespace) -> int:
    from engine.plugins import loaded

    cat, _ = cached_catalogue(catalogue, weights_folders, refresh=args.refresh, live=bool(loaded()))
    print(describe_all(as_json=args.json, cat=cat))
    return EXIT_OK
