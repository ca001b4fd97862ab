"""Fine-tuning a learned metric to be robust: AT, free AT, AT with corrected labels, NT.

:func:`train_robust` is a generator yielding one :class:`RobustTrainStep` per epoch and
returning the path of the best weights::

    run = train_robust("koniq10k/", metric="linearity", method="at", epochs=10,
                       checkpoint_path="robust.pt")
    for step in run:                 # closing the generator stops; nothing is lost
        print(step.epoch, step.train_loss, step.val_srocc, step.val_gain)

Methods (``method=``):

* ``none`` — plain fine-tuning on the subjective scores (the baseline of the others);
* ``at`` — each batch is the attacked images (made on the fly by one of the lab's attacks
  against the current weights; PGD ε 4/255 by default) and the clean ones, both trained
  to the clean image's score;
* ``at-corrected`` — as ``at``, but the target of an attacked image is lowered by
  ``penalty·(1 − SSIM(x_a, x))`` (or ``penalty·LPIPS``) of the score range, clipped to the
  range (Chistyakova et al., 2024, as in ``wianluna/metrics_at``);
* ``free-at`` — Shafahi et al. (2019): each batch replayed ``replays`` times; one backward
  pass gives the weights' gradient (one optimiser step) and the perturbation's, which
  ascends the training loss by ``eps·sign`` and is clipped to ``±eps``; the perturbation
  carries over to the next batch of the same shape and starts at zero each epoch;
* ``nt`` — Liu et al. (CVPR 2024): the loss adds ``λ/2·mean(((M(x + h·s) − M(x))/h)²)``
  with ``s = sign(∇ₓM(x))`` (detached), the finite-difference estimate of
  ``‖∇ₓM(x)‖₁`` their code uses (``YangiD/DefenseIQA-NT``: λ 1e-3 on a 0–100 MOS scale,
  h 1e-2); scores are divided by the metric's range here, so the default λ is 0.1.

Targets: subjective scores are mapped linearly from the training images' range onto the
metric's ``(worst, best)`` bounds, so the fine-tuned metric keeps its scale (and the
MSU-normalised gains stay comparable with the original metric's). The loss is L1 (NT's
code) or MSE on ``score / range``. BatchNorm statistics stay frozen (the lab's metrics
are always in eval mode, so training and scoring are the same function).

Per epoch: the training loss, validation SROCC/PLCC of the clean validation images
(whole images, one at a time) and the normalised gain ``|M(x_a) − M(x)| / range`` of a
fixed attack (I-FGSM ε 4/255 by default, white-box against the current weights) on the
first ``val_attack_images`` validation images. The best epoch (highest SROCC, or lowest
gain with ``best_by="gain"``) is written to ``X.pt`` in the layout ``NAME:weights=X.pt``
loads (checked by loading it back before training starts), with ``X.recipe.json`` beside
it; ``X.last.pt`` holds the resumable state. Everything random derives from ``seed``
(split, per-epoch crops and order, attack starts), so a stopped and resumed run follows
the same path as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.core.seeds import derive_seed
from engine.spec.experiment import ComponentSpec
from engine.training.options import DEFAULT_TRAIN_ATTACK, DEFAULT_VAL_ATTACK, METHODS
from engine.training.fcn_trainer import (
    _cpu_state,
    _resolve_device,
    _save,
    _versions,
    last_checkpoint_path,
)
from engine.training import resume as resume_from
from engine.training.mos_formats import SubjectiveSet, read_subjective
from engine.training.pairs import TrainingError, build_attack
from engine.spec.recipes import (
    RECIPE_KEY,
    file_sha256,
    recipe_label,
    recipe_path,
)

CHECKPOINT_FORMAT = "iqa-lab-robust-metric-v1"
#: settings that must match for a run to be resumed
_RESUME_KEYS = ("metric", "data_fingerprint", "seed", "val_split", "recipe")


@dataclass(frozen=True)
class RobustTrainStep:
    """One finished epoch.

    Attributes:
        epoch: 1-based; continues across resumes.
        train_loss: mean training loss over the epoch's batches.
        val_srocc, val_plcc: clean validation images against their subjective scores.
        val_gain: mean normalised gain of the validation attack (lower = more robust).
        best: this epoch was saved as the best weights.
        epochs: the target number of epochs.
        seconds: wall time of the epoch (training and validation).
        train_seconds: wall time of the training batches alone.
    """

    epoch: int
    train_loss: float
    val_srocc: float
    val_plcc: float
    val_gain: float
    best: bool
    epochs: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "train_loss": self.train_loss, "val_srocc": self.val_srocc,
                "val_plcc": self.val_plcc, "val_gain": self.val_gain, "best": self.best}


# ---- data -----------------------------------------------------------------------------

class _Images:
    """The data set's images as CPU tensors, decoded once (small sets) or on demand."""

    def __init__(self, data: SubjectiveSet, cache_pixels: int = 64_000_000) -> None:
        self.data = data
        self._cache: dict[int, torch.Tensor] = {}
        self._budget = cache_pixels

    def get(self, i: int) -> torch.Tensor:
        from engine.io.images import ImageLoadError, load_image

        hit = self._cache.get(i)
        if hit is not None:
            return hit
        try:
            x = load_image(self.data.paths[i]).tensor
        except ImageLoadError as exc:
            raise TrainingError(str(exc)) from None
        if x.numel() // 3 <= self._budget:
            self._budget -= x.numel() // 3
            self._cache[i] = x
        return x


def split_indices(n: int, val_split: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/validation split of ``n`` images (at least 2 in training, 3 in
    validation, so that a correlation can be computed)."""
    if not 0.0 < val_split < 1.0:
        raise TrainingError(f"val_split must be between 0 and 1 (exclusive), got {val_split}")
    if n < 5:
        raise TrainingError(f"need at least 5 images with subjective scores, got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "robust-split"))).tolist()
    n_val = min(n - 2, max(3, round(val_split * n)))
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def _fingerprint(data: SubjectiveSet) -> str:
    import hashlib

    ident = [[n, round(s, 6), p.stat().st_size] for n, s, p in zip(data.names, data.scores, data.paths)]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]


def _batches(images: _Images, train: list[int], crop: int, batch_size: int, seed: int,
             epoch: int) -> list[tuple[list[int], torch.Tensor]]:
    """One epoch's batches: shuffled training images, one random crop each."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "robust-epoch", epoch))
    order = [train[i] for i in torch.randperm(len(train), generator=gen).tolist()]
    out = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        crops = []
        for i in idx:
            x = images.get(i)
            h, w = x.shape[-2:]
            top = int(torch.randint(0, h - crop + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - crop + 1, (1,), generator=gen))
            crops.append(x[..., top:top + crop, left:left + crop])
        out.append((idx, torch.cat(crops)))
    return out


# ---- saving in the metric's own layout ------------------------------------------------

def _net(metric: torch.nn.Module) -> torch.nn.Module:
    net = getattr(metric, "net", None)
    return net if isinstance(net, torch.nn.Module) else metric


def _layouts(metric: torch.nn.Module) -> dict[str, Any]:
    """Candidate checkpoint layouts: name → function(state of the net) → payload."""
    def k_b(state: dict) -> dict:
        return {"model": state, "k": [float(metric.k)], "b": [float(metric.b)]}

    cands: dict[str, Any] = {}
    if isinstance(getattr(metric, "k", None), torch.Tensor) and isinstance(getattr(metric, "b", None), torch.Tensor):
        cands["model+k+b"] = k_b
    cands["state_dict"] = lambda s: {"state_dict": s}
    cands["params"] = lambda s: {"params": s}
    cands["raw"] = lambda s: dict(s)
    return cands


def _payload(layout: str, metric: torch.nn.Module, recipe_info: dict[str, Any] | None) -> dict[str, Any]:
    state = _cpu_state(_net(metric))
    payload = _layouts(metric)[layout](state)
    if recipe_info is not None and layout != "raw":  # a raw state dict must hold tensors only
        payload[RECIPE_KEY] = recipe_info
    return payload


def find_layout(metric: torch.nn.Module, name: str, params: dict[str, Any]) -> str:
    """The checkpoint layout that ``create_metric(name, weights=FILE)`` loads, found by
    writing each candidate with altered weights and loading it back.

    Raises:
        TrainingError: no layout loads (the metric takes no ``weights`` file this way).
    """
    from engine.metrics import create_metric

    net = _net(metric)
    altered = {k: (v.detach().cpu() + 0.5 if v.is_floating_point() else v.detach().cpu())
               for k, v in net.state_dict().items()}
    errors = []
    with tempfile.TemporaryDirectory(prefix="robust-layout-") as tmp:
        for layout, make in _layouts(metric).items():
            path = Path(tmp) / f"{layout}.pt"
            payload = make(altered)
            if layout != "raw":
                payload[RECIPE_KEY] = {"probe": True}
            torch.save(payload, path)
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # pyiqa prints each load
                    loaded = create_metric(name, device="cpu", **{**params, "weights": str(path)})
            except Exception as exc:  # noqa: BLE001 - any failure means: not this layout
                errors.append(f"{layout}: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}")
                continue
            got = _net(loaded).state_dict()
            if set(got) == set(altered) and all(torch.equal(got[k].cpu(), altered[k]) for k in altered):
                return layout
            errors.append(f"{layout}: loaded but the weights differ")
    raise TrainingError(f"{name}: cannot save weights that `{name}:weights=FILE` loads back "
                        f"({'; '.join(errors)})")


# ---- the losses -----------------------------------------------------------------------

def _fit_loss(pred: torch.Tensor, target: torch.Tensor, rng: float, kind: str) -> torch.Tensor:
    d = (pred - target) / rng
    return d.abs().mean() if kind == "l1" else d.pow(2).mean()


def nt_penalty(metric: Any, x: torch.Tensor, pred: torch.Tensor, h: float) -> torch.Tensor:
    """Liu et al.'s finite-difference term ``mean(((M(x + h·s) − M(x)) / h / range)²) / 2``
    with ``s = sign(∇ₓM(x))``; ``pred = M(x)`` must have been computed from ``x`` with
    ``x.requires_grad``.

    Shape:
        - x: :math:`(B, 3, H, W)`; pred: :math:`(B,)`.
    """
    (g,) = torch.autograd.grad(pred.sum(), x, retain_graph=True)
    s = torch.sign(g).detach()
    pred2 = metric.score(x.detach() + h * s, grad=True)
    dl = (pred2 - pred) / h / metric.range
    return dl.pow(2).mean() / 2


def corrected_targets(t_norm: torch.Tensor, x_adv: torch.Tensor, x: torch.Tensor, measure: str,
                      penalty: float, lpips: Any = None) -> torch.Tensor:
    """Targets of attacked images in normalised [0, 1] units: ``t − penalty·(1 − SSIM)``
    or ``t − penalty·LPIPS``, clipped to [0, 1] (Chistyakova et al., 2024)."""
    from engine.evaluation.pairs import ssim

    with torch.no_grad():
        if measure == "ssim":
            drop = 1.0 - ssim(x_adv, x)
        else:
            drop = lpips(x_adv, x).reshape(-1)
    return (t_norm - penalty * drop.to(t_norm)).clamp(0.0, 1.0)


# ---- validation -----------------------------------------------------------------------

@torch.no_grad()
def _val_scores(metric: Any, images: _Images, val: list[int], dev: torch.device) -> list[float]:
    return [float(metric.score(images.get(i).to(dev))[0]) for i in val]


def _val_gain(metric: Any, images: _Images, subset: list[int], attack: Any, seed: int,
              dev: torch.device, clean: dict[int, float]) -> float:
    from engine.attacks.base import run_to_end

    gains = []
    for i in subset:
        x = images.get(i).to(dev)
        gen = torch.Generator().manual_seed(derive_seed(seed, "robust-val-attack", i))
        out = run_to_end(attack.run(x, metric, generator=gen))
        with torch.no_grad():
            s = float(metric.score(out.image)[0])
        gains.append(abs(s - clean[i]) / metric.range)
    return sum(gains) / len(gains) if gains else float("nan")


# ---- the trainer ----------------------------------------------------------------------

def _recipe(method: str, attack: Any, eps: float, replays: int, label_measure: str, penalty: float,
            nt_weight: float, nt_h: float, loss: str, lr: float, batch_size: int, crop: int,
            epochs: int) -> dict[str, Any]:
    r: dict[str, Any] = {"method": method, "loss": loss, "lr": lr, "batch_size": batch_size,
                         "crop_size": crop, "optimizer": "adam", "epochs": epochs}
    if method in ("at", "at-corrected"):
        from engine.spec.params import params_to_dict

        inst, spec_dict = build_attack(attack or DEFAULT_TRAIN_ATTACK)
        r["attack"] = {"name": spec_dict["name"], "params": params_to_dict(inst.params)}
    if method == "at-corrected":
        r.update(label_measure=label_measure, penalty=penalty)
    if method == "free-at":
        r.update(eps=eps, replays=replays)
    if method == "nt":
        r.update(nt_weight=nt_weight, nt_h=nt_h)
    return r


def _lpips_measure(dev: torch.device) -> Any:
    try:
        import pyiqa

        m = pyiqa.create_metric("lpips", as_loss=False, device=dev)
    except Exception as exc:  # noqa: BLE001
        raise TrainingError(f"at-corrected with LPIPS needs pyiqa's lpips weights: {exc}") from None
    return lambda a, b: m(a, b)


def train_robust(
    source: str | os.PathLike,
    *,
    metric: Any,
    method: str = "none",
    mos_format: str = "auto",
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-4,
    loss: str = "l1",
    val_split: float = 0.2,
    seed: int = 0,
    crop_size: int = 224,
    attack: Any = None,
    eps: float = 4 / 255,
    replays: int = 4,
    label_measure: str = "ssim",
    penalty: float = 1.0,
    nt_weight: float = 0.1,
    nt_h: float = 1e-2,
    val_attack: Any = DEFAULT_VAL_ATTACK,
    val_attack_images: int = 8,
    best_by: str = "srocc",
    checkpoint_path: str | os.PathLike = "robust.pt",
    resume: bool = True,
    device: str | torch.device = "auto",
) -> Generator[RobustTrainStep, None, Path]:
    """Fine-tune ``metric`` on ``source``'s subjective scores, one step per epoch.

    Args:
        source: a data set folder (see :mod:`engine.training.mos_formats`).
        metric: metric name or CLI string (``"cnniqa:pretrained=false"``): the start.
        method: one of :data:`METHODS` (see the module docstring).
        mos_format: ``auto`` or a format name.
        epochs: target number of epochs (a resumed run continues to it).
        batch_size, lr, loss: Adam's batch and learning rate; ``l1`` or ``mse``.
        val_split: validation share (seeded split, stored with the weights).
        seed: derives the split, each epoch's order and crops, the attacks' random starts.
        crop_size: side of the random training crops (smaller images shrink it).
        attack: the training attack of ``at``/``at-corrected`` (default PGD ε 4/255,
            α 1/255, 5 steps); any lab attack string.
        eps, replays: ``free-at``'s budget and number of replays per batch.
        label_measure, penalty: ``at-corrected``'s measure (``ssim``/``lpips``) and weight.
        nt_weight, nt_h: ``nt``'s λ and finite-difference step.
        val_attack, val_attack_images: the fixed validation attack and how many
            validation images it attacks (0: none).
        best_by: ``srocc`` (highest) or ``gain`` (lowest validation attack gain).
        checkpoint_path: best weights ``X.pt``; ``X.last.pt`` resumable, ``X.recipe.json``.
        resume: continue from ``X.last.pt`` when it exists (the settings must match).
        device: ``auto``, ``cpu`` or ``cuda``.

    Raises:
        TrainingError: bad settings, unreadable scores, a metric that cannot be trained or
            saved, a foreign resume file.
    """
    from engine.evaluation.correlation import plcc, srocc
    from engine.metrics import create_metric

    if method not in METHODS:
        raise TrainingError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if epochs < 1 or batch_size < 1 or crop_size < 8 or not lr > 0 or replays < 1:
        raise TrainingError("epochs, batch_size and replays must be ≥ 1, crop_size ≥ 8, lr > 0")
    if loss not in ("l1", "mse") or best_by not in ("srocc", "gain") or label_measure not in ("ssim", "lpips"):
        raise TrainingError("loss must be l1 or mse, best_by srocc or gain, label_measure ssim or lpips")
    if not eps > 0 or not nt_h > 0 or nt_weight < 0 or penalty < 0:
        raise TrainingError("eps and nt_h must be > 0, nt_weight and penalty ≥ 0")
    dev = _resolve_device(device)
    ckpt = Path(checkpoint_path)
    last_path = last_checkpoint_path(ckpt)

    data = read_subjective(source, mos_format)
    images = _Images(data)
    train, val = split_indices(len(data), val_split, seed)
    crop = min(crop_size, *(min(images.get(i).shape[-2:]) for i in train))
    mspec = ComponentSpec.from_any(metric)
    metric_spec = mspec.to_dict()
    recipe = _recipe(method, attack, eps, replays, label_measure, penalty, nt_weight, nt_h, loss, lr,
                     batch_size, crop, epochs)
    settings = {"metric": metric_spec, "data_fingerprint": _fingerprint(data), "seed": seed,
                "val_split": val_split, "recipe": {k: v for k, v in recipe.items() if k != "epochs"}}

    m = create_metric(mspec.name, device=str(dev), **mspec.params)
    if not getattr(m, "differentiable", True) or not any(p.is_floating_point() for p in m.parameters()):
        raise TrainingError(f"{mspec.name}: not a differentiable learned metric (nothing to train)")
    layout = find_layout(m, mspec.name, {k: v for k, v in mspec.params.items() if k != "weights"})
    params = [p for p in m.parameters() if p.is_floating_point()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    train_attack = build_attack(attack or DEFAULT_TRAIN_ATTACK)[0] if method in ("at", "at-corrected") else None
    val_att = build_attack(val_attack)[0] if val_attack and val_attack_images > 0 else None
    lpips = _lpips_measure(dev) if method == "at-corrected" and label_measure == "lpips" else None

    scores = torch.tensor(data.scores, dtype=torch.float32)
    lo, hi = float(scores[train].min()), float(scores[train].max())
    if hi <= lo:
        raise TrainingError("all training images have the same subjective score; nothing to learn")
    worst, best = (float(b) for b in m.bounds)

    def t_norm(idx: list[int]) -> torch.Tensor:
        return ((scores[idx] - lo) / (hi - lo)).to(dev)

    def to_metric(tn: torch.Tensor) -> torch.Tensor:
        return worst + tn * (best - worst)

    state = resume_from.load_last(last_path, settings, fmt=CHECKPOINT_FORMAT, keys=_RESUME_KEYS,
                                  kind="a robust-training run") if resume else None
    point = resume_from.resume(state, m, opt, "best_value")
    history, best_value, best_epoch, start, created = (point.history, point.best, point.best_epoch, point.start,
                                                       point.created)
    subset = val[:max(0, val_attack_images)] if val_att is not None else []

    def manifest(epoch: int) -> dict[str, Any]:
        return {**settings, "format": data.format, "folder": str(Path(source).resolve()),
                "training_recipe": recipe, "recipe_label": recipe_label(recipe), "layout": layout,
                "mos_range": [lo, hi], "train_images": [data.names[i] for i in train],
                "val_images": [data.names[i] for i in val], "val_attack": _spec_dict(val_attack),
                "val_attack_images": [data.names[i] for i in subset], "best_by": best_by,
                "epochs": epoch, "epochs_target": epochs, "best_epoch": best_epoch,
                "best_value": best_value, "history": history, "device": str(dev),
                "versions": _versions(), "created": created, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}

    for epoch in range(start, epochs + 1):
        t0 = time.perf_counter()
        total, count = 0.0, 0
        delta: torch.Tensor | None = None
        for b, (idx, x) in enumerate(_batches(images, train, crop, batch_size, seed, epoch)):
            x = x.to(dev)
            tn = t_norm(idx)
            if method == "free-at":
                for _ in range(replays):
                    if delta is None or delta.shape != x.shape:
                        delta = torch.zeros_like(x)
                    delta.requires_grad_(True)
                    pred = m.score((x + delta).clamp(0.0, 1.0), grad=True)
                    loss_v = _fit_loss(pred, to_metric(tn), m.range, loss)
                    opt.zero_grad(set_to_none=True)
                    loss_v.backward()
                    opt.step()
                    delta = (delta.detach() + eps * delta.grad.sign()).clamp(-eps, eps)
                    total += float(loss_v.detach()) * x.shape[0] / replays
                count += x.shape[0]
                continue
            if method in ("at", "at-corrected"):
                from engine.attacks.base import run_to_end

                gen = torch.Generator().manual_seed(derive_seed(seed, "robust-at", epoch, b))
                x_adv = run_to_end(train_attack.run(x, m, generator=gen)).image.detach()
                t_adv = tn if method == "at" else corrected_targets(tn, x_adv, x, label_measure, penalty, lpips)
                xb, tb = torch.cat([x_adv, x]), torch.cat([t_adv, tn])
            else:
                xb, tb = x, tn
            if method == "nt":
                xb = xb.detach().requires_grad_(True)
            pred = m.score(xb, grad=True)
            loss_v = _fit_loss(pred, to_metric(tb), m.range, loss)
            if method == "nt":
                loss_v = loss_v + nt_weight * nt_penalty(m, xb, pred, nt_h)
            opt.zero_grad(set_to_none=True)
            loss_v.backward()
            opt.step()
            total += float(loss_v.detach()) * x.shape[0]
            count += x.shape[0]
        train_seconds = time.perf_counter() - t0
        train_loss = total / max(count, 1)
        if not math.isfinite(train_loss):
            raise TrainingError(f"epoch {epoch}: the training loss is {train_loss}; lower the learning rate")
        clean = _val_scores(m, images, val, dev)
        v_srocc = srocc(clean, [data.scores[i] for i in val])
        v_plcc = plcc(clean, [data.scores[i] for i in val])
        v_gain = _val_gain(m, images, subset, val_att, seed, dev, dict(zip(val, clean))) if subset else float("nan")
        value = (v_srocc if best_by == "srocc" else -v_gain)
        value = -math.inf if math.isnan(value) else value
        is_best = value > best_value or best_epoch == 0
        if is_best:
            best_value, best_epoch = value, epoch
        history.append({"epoch": epoch, "train_loss": train_loss, "val_srocc": v_srocc, "val_plcc": v_plcc,
                        "val_gain": v_gain})
        if is_best:
            _write_best(ckpt, m, layout, manifest(epoch), recipe, metric_spec)
        _save(last_path, {"format": CHECKPOINT_FORMAT, "state_dict": _cpu_state(m), "optimizer": _cpu_state(opt),
                          "epoch": epoch, "manifest": manifest(epoch)})
        yield RobustTrainStep(epoch, train_loss, v_srocc, v_plcc, v_gain, is_best, epochs, time.perf_counter() - t0,
                              train_seconds)
    if not ckpt.is_file():
        raise TrainingError(f"{ckpt} is missing although {last_path} says training finished; "
                            "start over with resume=False (--no-resume)")
    return ckpt


def _spec_dict(spec: Any) -> dict[str, Any] | None:
    return None if not spec else ComponentSpec.from_any(spec).to_dict() if not hasattr(spec, "run") \
        else {"name": getattr(spec, "name", type(spec).__name__)}


def _write_best(ckpt: Path, metric: Any, layout: str, manifest: dict[str, Any], recipe: dict[str, Any],
                metric_spec: dict[str, Any]) -> None:
    """The best weights in the metric's layout, then the sidecar with their hash."""
    info = {"format": CHECKPOINT_FORMAT, "base_metric": metric_spec, "recipe": recipe,
            "recipe_label": recipe_label(recipe), "best_epoch": manifest["best_epoch"],
            "train_images": manifest["train_images"], "val_images": manifest["val_images"],
            "mos_range": manifest["mos_range"], "seed": manifest["seed"], "val_split": manifest["val_split"]}
    _save(ckpt, _payload(layout, metric, info))
    side = {**info, "weights": ckpt.name, "weights_sha256": file_sha256(ckpt), "layout": layout,
            "history": manifest["history"], "data_format": manifest["format"], "folder": manifest["folder"],
            "val_attack": manifest["val_attack"], "versions": manifest["versions"], "updated": manifest["updated"]}
    tmp = recipe_path(ckpt).with_name(recipe_path(ckpt).name + ".tmp")
    tmp.write_text(json.dumps(side, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, recipe_path(ckpt))


def previous_history(checkpoint_path: str | os.PathLike) -> list[dict[str, Any]]:
    """The epochs a resumable run writing ``checkpoint_path`` has already trained."""
    return resume_from.previous_history(last_checkpoint_path(checkpoint_path), CHECKPOINT_FORMAT)
