"""The recipe of a robustly trained metric: its label, its sidecar file, its weights' hash.

``train-robust`` writes ``robust.pt`` (weights in the layout the metric's ``weights=``
loads, with the recipe inside where that layout allows) and ``robust.recipe.json`` beside
it (the recipe, the weights' SHA-256, the split and the training summary). This module is
light (no torch) so the experiment's labels and the run manifest can use it:

* :func:`robust_metric_label` — ``linearity+AT(PGD 4/255)#1a2b3c`` for a metric spec whose
  ``weights`` file has a recipe sidecar (the short hash tells two trainings apart), so a
  robust variant is a row of its own beside the purification defences;
* :func:`weights_manifest` — per metric with a ``weights`` file: path, SHA-256 and the
  recipe, recorded in every run's manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

RECIPE_SUFFIX = ".recipe.json"
RECIPE_KEY = "robust_recipe"

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_LABEL_CACHE: dict[tuple[str, int], str | None] = {}


def recipe_path(weights_path: str | os.PathLike) -> Path:
    """``X.pt`` → ``X.recipe.json``."""
    p = Path(weights_path)
    return p.with_name(p.stem + RECIPE_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file (cached by path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def read_recipe(weights_path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar of a robust weights file (None when there is none or it is unreadable)."""
    p = recipe_path(weights_path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("recipe"), dict) else None


def _eps_text(eps: Any) -> str:
    try:
        v = float(eps) * 255
    except (TypeError, ValueError):
        return str(eps)
    return f"{v:g}/255"


def recipe_label(recipe: dict[str, Any]) -> str:
    """Short human label of a training recipe, e.g. ``AT(PGD 4/255)``, ``NT(λ=0.1)``.

    Example:
        >>> recipe_label({"method": "at", "attack": {"name": "pgd", "params": {"eps": 4/255}}})
        'AT(PGD 4/255)'
    """
    method = recipe.get("method", "none")
    attack = recipe.get("attack") or {}
    att = f"{str(attack.get('name', '?')).upper()} {_eps_text((attack.get('params') or {}).get('eps'))}"
    if method == "at":
        return f"AT({att})"
    if method == "at-corrected":
        return f"AT-{str(recipe.get('label_measure', 'ssim')).upper()}({att})"
    if method == "free-at":
        return f"FreeAT(m={recipe.get('replays')}, {_eps_text(recipe.get('eps'))})"
    if method == "nt":
        return f"NT(λ={recipe.get('nt_weight'):g})"
    return "FT"


def robust_metric_label(name: str, params: dict[str, Any]) -> str | None:
    """``name+RECIPE#hash6`` (other parameters appended) when ``params['weights']`` has a
    recipe sidecar; None otherwise."""
    weights = params.get("weights")
    if not isinstance(weights, str) or not weights:
        return None
    side = recipe_path(weights)
    try:
        mtime = side.stat().st_mtime_ns
    except OSError:
        return None
    key = (str(side.resolve()), mtime)
    if key not in _LABEL_CACHE:
        data = read_recipe(weights)
        _LABEL_CACHE[key] = None if data is None else (
            f"{recipe_label(data['recipe'])}#{str(data.get('weights_sha256', ''))[:6]}")
    tag = _LABEL_CACHE[key]
    if tag is None:
        return None
    rest = {k: v for k, v in params.items() if k not in ("weights", "pretrained")}
    extra = "(" + ",".join(f"{k}={v}" for k, v in sorted(rest.items())) + ")" if rest else ""
    return f"{name}+{tag}{extra}"


def weights_manifest(metric_specs: list[Any]) -> list[dict[str, Any]]:
    """Per metric spec with a ``weights`` file: ``{"metric", "weights", "sha256", "recipe"}``
    (recipe None for weights not made by ``train-robust``; sha256 None for a missing file)."""
    out = []
    for spec in metric_specs:
        params = getattr(spec, "params", None) or {}
        weights = params.get("weights")
        if not isinstance(weights, str) or not weights:
            continue
        try:
            digest: str | None = file_sha256(weights)
        except OSError:
            digest = None
        data = read_recipe(weights)
        out.append({"metric": getattr(spec, "label", str(spec)), "weights": str(Path(weights).resolve()),
                    "sha256": digest, "recipe": None if data is None else data.get("recipe"),
                    "recipe_label": None if data is None else recipe_label(data["recipe"])})
    return out
