"""(attacked, clean) training pairs for the FCN filter, made by attacking a folder.

Each image is attacked once against the chosen metric with a generator seeded from
(seed, image name), so the pairs are a pure function of (folder, attack, metric, seed).
The attacked image is rounded to 8 bits, as it would be when saved as PNG. Pairs are
cached next to the checkpoint so that resuming a training run does not attack again.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.core.errors import ExpectedError
from engine.core.seeds import derive_seed
from engine.spec.experiment import ComponentSpec
from engine.spec.folders import find_images

PairProgress = Callable[[int, int, str], None]

#: the paper trains the filter on AdvCF images; I-FGSM when AdvCF is not available
PAPER_ATTACK = "advcf"
FALLBACK_ATTACK = "ifgsm"


class TrainingError(ExpectedError, RuntimeError):
    """Training cannot start or go on (message is user-facing)."""


@dataclass
class PairSet:
    """Attacked/clean image pairs (each 1×3×H×W in [0, 1], on the CPU) with their names."""

    attacked: list[torch.Tensor]
    clean: list[torch.Tensor]
    names: list[str]
    skipped: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.names)

    def fingerprint(self) -> str:
        """A hash of the 8-bit pixels of every pair (identifies the training data)."""
        h = hashlib.sha256()
        for a, c in zip(self.attacked, self.clean):
            for t in (a, c):
                h.update(str(tuple(t.shape)).encode())
                h.update(quantise(t).mul(255).round().to(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:16]


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid (what saving as PNG does)."""
    return x.detach().float().cpu().clamp(0, 1).mul(255).round().div(255)


def pairs_from_tensors(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> PairSet:
    """Wrap user-given ``(attacked, clean)`` pairs (each (3,H,W) or (1,3,H,W))."""
    attacked, clean = [], []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise TrainingError(f"pair {i}: expected (attacked, clean), got {len(pair)} items")
        a, c = (t if t.dim() == 4 else t.unsqueeze(0) for t in pair)
        if a.shape != c.shape or a.shape[0] != 1 or a.shape[1] != 3:
            raise TrainingError(f"pair {i}: attacked {tuple(a.shape)} and clean {tuple(c.shape)} "
                                "must be the same 3×H×W size")
        attacked.append(a.detach().float().cpu().clamp(0, 1))
        clean.append(c.detach().float().cpu().clamp(0, 1))
    return PairSet(attacked, clean, [f"pair-{i:04d}" for i in range(len(attacked))], [])


def default_attack() -> str:
    from engine.attacks import ATTACKS

    return PAPER_ATTACK if PAPER_ATTACK in ATTACKS else FALLBACK_ATTACK


def build_attack(attack: Any) -> tuple[Any, dict[str, Any]]:
    """An Attack instance and its spec dict from a name, CLI string, ComponentSpec or
    instance (``None`` → the paper's default)."""
    from engine.attacks import ATTACKS, Attack
    from engine.spec.params import params_to_dict

    if isinstance(attack, Attack):
        return attack, {"name": attack.name, "params": params_to_dict(attack.params)}
    spec = ComponentSpec.from_any(attack if attack is not None else default_attack())
    cls = ATTACKS.get(spec.name)
    if spec.preset and spec.preset not in cls.presets:
        raise TrainingError(f"attack {spec.name}: unknown preset {spec.preset!r}; "
                            f"known: {', '.join(cls.presets) or 'none'}")
    params = dict(cls.presets[spec.preset]) if spec.preset else {}
    params.update(spec.params)
    return cls(params), spec.to_dict()


def build_metric(metric: Any, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """A Metric instance and its spec dict from a name, CLI string, ComponentSpec or instance."""
    from engine.metrics.base import Metric

    if metric is None:
        raise TrainingError("choose the metric to attack when making training pairs")
    if isinstance(metric, Metric):
        return metric, {"name": getattr(metric, "name", type(metric).__name__)}
    from engine.metrics import create_metric

    spec = ComponentSpec.from_any(metric)
    return create_metric(spec.name, device=str(device), **spec.params), spec.to_dict()


def _cache_key(files: list[str], attack_spec: dict, metric_spec: dict, seed: int) -> str:
    ident = [[Path(f).name, os.path.getsize(f), int(os.path.getmtime(f))] for f in files]
    return hashlib.sha256(repr((ident, attack_spec, metric_spec, seed)).encode()).hexdigest()[:16]


def attack_folder(folder: str | os.PathLike, attack: Any, metric: Any, *, seed: int,
                  device: torch.device, cache: Path | None = None,
                  progress: PairProgress | None = None) -> tuple[PairSet, dict[str, Any], dict[str, Any]]:
    """Attack every image of ``folder`` once and return the pairs.

    Args:
        folder: images (searched recursively, as for experiments).
        attack, metric: names/specs/instances (see :func:`build_attack`, :func:`build_metric`).
        seed: master seed; image k's attack uses ``derive_seed(seed, "fcn-pairs", name)``.
        device: where the attack runs; pairs come back on the CPU.
        cache: a file to reuse pairs from (same images, attack, metric and seed) and to
            write them to.
        progress: called as ``progress(done, total, image_name)`` after each image.

    Returns:
        (pairs, attack spec dict, metric spec dict).
    """
    from engine.attacks import run_to_end
    from engine.io.images import ImageLoadError, load_image

    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"training folder {str(folder)!r} does not exist or is not a folder")
    files = find_images(folder)
    if not files:
        raise TrainingError(f"no images in {str(folder)!r}")
    attack_obj, attack_spec = build_attack(attack)
    metric_spec = (ComponentSpec.from_any(metric).to_dict() if isinstance(metric, (str, ComponentSpec))
                   else None)
    if cache is not None and metric_spec is not None:
        key = _cache_key(files, attack_spec, metric_spec, seed)
        cached = _read_cache(cache, key)
        if cached is not None:
            return cached, attack_spec, metric_spec
    metric_obj, metric_spec = build_metric(metric, device)
    attacked, clean, names, skipped = [], [], [], []
    for k, f in enumerate(files, 1):
        name = Path(f).relative_to(folder).as_posix()
        try:
            x = load_image(f).tensor
        except ImageLoadError as exc:
            skipped.append({"image": name, "reason": str(exc)})
            continue
        gen = torch.Generator().manual_seed(derive_seed(seed, "fcn-pairs", name))
        try:
            outcome = run_to_end(attack_obj.run(x.to(device), metric_obj, generator=gen))
        except Exception as exc:
            raise TrainingError(f"{attack_spec['name']} failed on {name}: {type(exc).__name__}: {exc}") from exc
        attacked.append(quantise(outcome.image))
        clean.append(x.float().cpu())
        names.append(name)
        if progress is not None:
            progress(k, len(files), name)
    pairs = PairSet(attacked, clean, names, skipped)
    if cache is not None:
        _write_cache(cache, _cache_key(files, attack_spec, metric_spec, seed), pairs)
    return pairs, attack_spec, metric_spec


def _read_cache(path: Path, key: str) -> PairSet | None:
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a broken cache is just recomputed
        return None
    if not isinstance(d, dict) or d.get("key") != key:
        return None
    to_f = lambda t: t.float().div(255)
    return PairSet([to_f(t) for t in d["attacked"]], [to_f(t) for t in d["clean"]],
                   list(d["names"]), list(d.get("skipped", [])))


def _write_cache(path: Path, key: str, pairs: PairSet) -> None:
    to_u8 = lambda t: t.mul(255).round().to(torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"key": key, "attacked": [to_u8(t) for t in pairs.attacked],
                "clean": [to_u8(t) for t in pairs.clean], "names": pairs.names,
                "skipped": pairs.skipped}, tmp)
    os.replace(tmp, path)
