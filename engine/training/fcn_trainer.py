"""Training the paper's FCN filter: MSE from attacked to clean images, best by val SSIM.

The paper's recipe: Adam lr 1e-3, batch 4, 200 epochs, 80/20 split, the checkpoint with
the best validation SSIM kept, trained on AdvCF images. :func:`train_fcn` is a generator
that yields one :class:`FCNTrainStep` per epoch (for progress plots) and returns the path
of the best checkpoint::

    run = train_fcn("photos/", attack="advcf", metric="linearity", epochs=200,
                    checkpoint_path="fcn.pt")
    for step in run:            # closing the generator stops training; nothing is lost
        print(step.epoch, step.train_loss, step.val_ssim)

Two files are written: ``fcn.pt`` (the best weights + the training manifest; this is what
the ``fcn`` defence loads) and ``fcn.last.pt`` (the latest weights, the optimiser state
and the history; training resumes from it, the epoch counter continuing). Everything
random is derived from ``seed``: the split, the initial weights and, per epoch, the
batch order and the crop positions, so a stopped and resumed run follows the same path
as an uninterrupted one.
"""
from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine.defences.fcn import CHECKPOINT_FORMAT, FCNFilter, param_count
from engine.evaluation.pairs import ssim
from engine.core.seeds import derive_seed
from engine.training import resume as resume_from
from engine.training.pairs import (
    PairSet,
    TrainingError,
    attack_folder,
    pairs_from_tensors,
)

#: settings that must match for a run to be resumed
_RESUME_KEYS = ("data_fingerprint", "seed", "batch_size", "lr", "val_split", "crop_size", "residual")


@dataclass(frozen=True)
class FCNTrainStep:
    """One finished epoch.

    Attributes:
        epoch: 1-based; continues across resumes.
        train_loss: mean MSE over the epoch's training crops.
        val_ssim: mean SSIM between the clean validation images and the filtered attacked ones.
        best: this epoch set a new best validation SSIM (and was saved as the checkpoint).
        epochs: the target number of epochs.
        best_val_ssim: the best validation SSIM so far.
        seconds: wall time of the epoch.
    """

    epoch: int
    train_loss: float
    val_ssim: float
    best: bool
    epochs: int = 0
    best_val_ssim: float = float("nan")
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "train_loss": self.train_loss, "val_ssim": self.val_ssim,
                "best": self.best}


def last_checkpoint_path(checkpoint_path: str | Path) -> Path:
    """Where the resumable state of a run writing ``checkpoint_path`` lives."""
    p = Path(checkpoint_path)
    return p.with_name(f"{p.stem}.last{p.suffix or '.pt'}")


def pairs_cache_path(checkpoint_path: str | Path) -> Path:
    p = Path(checkpoint_path)
    return p.with_name(f"{p.stem}.pairs.pt")


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    device = (device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("CUDA was requested but no CUDA device is available")
    return torch.device(device)


def split_indices(n: int, val_split: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/validation split of ``n`` items (at least one of each)."""
    if not 0.0 < val_split < 1.0:
        raise TrainingError(f"val_split must be between 0 and 1 (exclusive), got {val_split}")
    if n < 2:
        raise TrainingError(f"need at least 2 images to split into training and validation, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "fcn-split"))).tolist()
    n_val = min(n - 1, max(1, round(val_split * n)))
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def _crop_batches(pairs: PairSet, train: list[int], crop: int, batch_size: int, seed: int,
                  epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch's batches: shuffled training pairs, one random crop each (same place in
    the attacked and the clean image)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "fcn-epoch", epoch))
    order = [train[i] for i in torch.randperm(len(train), generator=gen).tolist()]
    batches = []
    for start in range(0, len(order), batch_size):
        a_list, c_list = [], []
        for i in order[start:start + batch_size]:
            a, c = pairs.attacked[i], pairs.clean[i]
            h, w = a.shape[-2:]
            top = int(torch.randint(0, h - crop + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - crop + 1, (1,), generator=gen))
            a_list.append(a[..., top:top + crop, left:left + crop])
            c_list.append(c[..., top:top + crop, left:left + crop])
        batches.append((torch.cat(a_list), torch.cat(c_list)))
    return batches


@torch.no_grad()
def _val_ssim(model: FCNFilter | None, pairs: PairSet, val: list[int], device: torch.device) -> float:
    """Mean SSIM(clean, model(attacked)) over the validation images (``model=None``: the
    attacked images themselves, the baseline)."""
    values = []
    for i in val:
        a, c = pairs.attacked[i].to(device), pairs.clean[i].to(device)
        out = a if model is None else model(a)
        values.append(float(ssim(c, out)[0]))
    return sum(values) / len(values)


def _versions() -> dict[str, Any]:
    import engine

    return {"python": sys.version.split()[0], "torch": str(torch.__version__),
            "tool": getattr(engine, "__version__", None), "platform": platform.platform()}


def _cpu_state(module_or_opt: Any) -> dict[str, Any]:
    state = module_or_opt.state_dict()
    if isinstance(module_or_opt, torch.nn.Module):
        return {k: v.detach().cpu().clone() for k, v in state.items()}
    return state


def _save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically, so that stopping mid-write never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def previous_history(checkpoint_path: str | Path) -> list[dict[str, Any]]:
    """The epochs a resumable run writing ``checkpoint_path`` has already trained
    (``[{"epoch", "train_loss", "val_ssim"}, …]``); empty when there is none to resume."""
    return resume_from.previous_history(last_checkpoint_path(checkpoint_path), CHECKPOINT_FORMAT)


def train_fcn(
    source: Any,
    *,
    attack: Any = None,
    metric: Any = None,
    epochs: int = 200,
    batch_size: int = 4,
    lr: float = 1e-3,
    val_split: float = 0.2,
    seed: int = 0,
    checkpoint_path: str | os.PathLike = "fcn.pt",
    resume: bool = True,
    device: str | torch.device = "auto",
    crop_size: int = 128,
    residual: bool = False,
    on_pair: Callable[[int, int, str], None] | None = None,
) -> Generator[FCNTrainStep, None, Path]:
    """Train the FCN filter, yielding one step per epoch; returns the best checkpoint's path.

    Args:
        source: a folder of clean images (pairs are made by attacking each image with
            ``attack`` against ``metric``) or a sequence of ``(attacked, clean)`` tensors.
        attack: attack name / CLI string (``"ifgsm:eps=4/255"``) / ComponentSpec / Attack;
            default AdvCF (the paper's), I-FGSM when AdvCF is not installed.
        metric: metric name / spec / Metric instance (required with a folder).
        epochs: target number of epochs (the paper: 200); a resumed run continues to it.
        batch_size, lr, val_split: the paper's 4, 1e-3, 0.2.
        seed: derives the pairs' attacks, the split, the initial weights and each epoch's
            batch order and crops.
        checkpoint_path: the best checkpoint (``X.pt``); ``X.last.pt`` holds the resumable
            state and ``X.pairs.pt`` the cached pairs of a folder.
        resume: continue from ``X.last.pt`` when it exists (the settings must match).
        device: ``auto``, ``cpu`` or ``cuda``.
        crop_size: side of the random training crops (smaller images shrink it).
        residual: train the residual variant ``x + tanh(f(x))`` instead of the paper's form.
        on_pair: progress callback ``(done, total, image_name)`` while making pairs.

    Raises:
        TrainingError: bad settings, too few images, a failing attack, a foreign resume file.
    """
    if epochs < 1 or batch_size < 1 or crop_size < 8 or not lr > 0:
        raise TrainingError("epochs and batch_size must be ≥ 1, crop_size ≥ 8, lr > 0")
    dev = _resolve_device(device)
    ckpt = Path(checkpoint_path)
    last_path = last_checkpoint_path(ckpt)
    if isinstance(source, (str, os.PathLike)):
        pairs, attack_spec, metric_spec = attack_folder(source, attack, metric, seed=seed, device=dev,
                                                        cache=pairs_cache_path(ckpt), progress=on_pair)
        folder = str(Path(source).resolve())
    else:
        pairs, attack_spec, metric_spec, folder = pairs_from_tensors(source), None, None, None
    train, val = split_indices(len(pairs), val_split, seed)
    crop = min(crop_size, *(min(pairs.attacked[i].shape[-2:]) for i in train))
    settings = {"data_fingerprint": pairs.fingerprint(), "seed": seed, "batch_size": batch_size,
                "lr": lr, "val_split": val_split, "crop_size": crop, "residual": residual}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "fcn-init"))
        model = FCNFilter(residual=residual)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    state = resume_from.load_last(last_path, settings, fmt=CHECKPOINT_FORMAT, keys=_RESUME_KEYS,
                                  kind="an FCN run") if resume else None
    point = resume_from.resume(state, model, opt, "val_ssim")
    history, best_ssim, best_epoch, start, created = (point.history, point.best, point.best_epoch, point.start,
                                                      point.created)
    baseline = _val_ssim(None, pairs, val, dev)

    def manifest(epoch: int) -> dict[str, Any]:
        return {**settings, "folder": folder, "images": pairs.names, "skipped": pairs.skipped,
                "train_images": [pairs.names[i] for i in train], "val_images": [pairs.names[i] for i in val],
                "attack": attack_spec, "metric": metric_spec, "epochs": epoch, "epochs_target": epochs,
                "val_ssim": best_ssim, "best_epoch": best_epoch, "val_ssim_attacked": baseline,
                "history": history, "param_count": param_count(model), "device": str(dev),
                "versions": _versions(), "created": created,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}

    for epoch in range(start, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for a, c in _crop_batches(pairs, train, crop, batch_size, seed, epoch):
            a, c = a.to(dev), c.to(dev)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model.raw(a), c)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * a.shape[0]
            count += a.shape[0]
        model.eval()
        train_loss = total / count
        val_ssim = _val_ssim(model, pairs, val, dev)
        if not math.isfinite(train_loss):
            raise TrainingError(f"epoch {epoch}: the training loss is {train_loss}; lower the learning rate")
        is_best = val_ssim > best_ssim
        if is_best:
            best_ssim, best_epoch = val_ssim, epoch
        history.append({"epoch": epoch, "train_loss": train_loss, "val_ssim": val_ssim})
        weights = _cpu_state(model)
        arch = {"residual": residual}
        if is_best:
            _save(ckpt, {"format": CHECKPOINT_FORMAT, "arch": arch, "state_dict": weights,
                         "manifest": manifest(epoch)})
        _save(last_path, {"format": CHECKPOINT_FORMAT, "arch": arch, "state_dict": weights,
                          "optimizer": _cpu_state(opt), "epoch": epoch, "manifest": manifest(epoch)})
        yield FCNTrainStep(epoch, train_loss, val_ssim, is_best, epochs, best_ssim, time.perf_counter() - t0)
    if not ckpt.is_file():
        raise TrainingError(f"{ckpt} is missing although {last_path} says training finished; "
                            "start over with resume=False (--no-resume)")
    return ckpt
