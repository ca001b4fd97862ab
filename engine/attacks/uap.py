"""Universal adversarial perturbation (UAP): one perturbation for every image.

S.-M. Moosavi-Dezfooli, A. Fawzi, O. Fawzi, P. Frossard, "Universal adversarial
perturbations", CVPR 2017; for IQA metrics as in MSU's benchmark (Shumitskaya et al.,
"Universal Perturbation Attack on Differentiable No-Reference Image- and Video-Quality
Metrics", BMVC 2022).

Two parts:

* :func:`train_uap` trains one perturbation δ of a fixed resolution (``size``×``size``)
  over a set of images (a folder or tensors, resized to ``size``): mini-batch sign steps
  on the mean MSU loss, δ clipped to ±ε after each step. It is a generator of
  :class:`UAPTrainStep` (one per batch; the last of an epoch has ``epoch_done``) that
  returns δ, so a GUI can plot it and stop it between batches.
  :func:`save_uap`/:func:`load_uap` keep δ and a manifest (metric, ε, epochs, ...) in a
  small ``.pt`` file.
* the ``uap`` attack loads such a file and applies it to any image: δ is resized
  (bilinear) to the image size, clipped to ±ε, added, and the image clamped to [0, 1].

Constrains: L∞ ≤ amplitude·ε (ε the smaller of the attack's ``eps`` and what δ holds),
image in [0, 1].

Differences from MSU's code (``metrics/methods/uap/train.py`` and
``metrics/methods/utils/uap_evaluate.py`` of adversarial-defenses-for-iqa):

* applying δ: MSU tiles it over the image from the top-left corner (``np.tile``, cropped)
  instead of resizing it, multiplies it by an ``amplitude`` (0.2 by default in its
  evaluation; its presets sweep 0.005–0.9) and clips nothing but the image to [0, 1]. The
  preset ``msu-literal`` (``fit="tile"``, ``amplitude=0.2``, ``eps=1``) applies a file that
  way (checked against a numpy loop in the tests);
* training (not reproduced, :func:`train_uap` keeps its sign steps): MSU runs Adam
  (lr 0.001) on a 256×256 δ initialised to 1e-4, clipped to ±0.1 after each step, 5 epochs
  of ``len(loader)`` batches of 8 each drawn afresh from a shuffled loader (so with
  replacement), NaN gradients zeroed, loss ``1 − sign·mean(M)/range``.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Iterable

import torch
import torch.nn.functional as F

from engine.attacks.base import ATTACKS, Attack, AttackParams, AttackRun, IterateTracker
from engine.attacks.sign_gradient import LINF_LEVELS
from engine.metrics.base import Metric, attack_loss, check_image_batch
from engine.spec.params import param

UAP_FORMAT = "uap-v1"


@dataclass(frozen=True)
class UAPTrainStep:
    """Progress of UAP training after one mini-batch.

    Attributes:
        epoch: 0-based epoch.
        mean_score: mean metric score of the perturbed training images seen so far in this
            epoch (scored with the perturbation before the batch's update).
        loss: mean MSU loss over the same images.
        batch: 0-based index of the batch within the epoch.
        batches: number of batches per epoch.
        epoch_done: True for the last batch of an epoch (the epoch's summary).
    """

    epoch: int
    mean_score: float
    loss: float
    batch: int = 0
    batches: int = 1
    epoch_done: bool = True


UAPTraining = Generator[UAPTrainStep, None, torch.Tensor]


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a :math:`(B, C, H, W)` tensor to ``size = (H', W')`` (no-op if equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def apply_uap(x: torch.Tensor, perturbation: torch.Tensor, eps: float) -> torch.Tensor:
    """Add a universal perturbation to a batch.

    Args:
        x: :math:`(B, 3, H, W)` in [0, 1].
        perturbation: :math:`(1, 3, h, w)` (any size; resized bilinearly to H×W).
        eps: L∞ clip applied after resizing.

    Returns:
        :math:`(B, 3, H, W)` in [0, 1] with ``|out − x| ≤ eps``.
    """
    check_image_batch(x)
    return (x + fit_uap(perturbation, x, eps)).clamp(0.0, 1.0)


def fit_uap(perturbation: torch.Tensor, like: torch.Tensor, eps: float) -> torch.Tensor:
    """δ on ``like``'s device and dtype, resized (bilinear) to its H×W and clipped to ±eps."""
    return resize_to(perturbation.to(device=like.device, dtype=like.dtype),
                     tuple(like.shape[-2:])).clamp(-eps, eps)


def _training_source(images: Iterable[torch.Tensor] | str | os.PathLike) -> list[Any]:
    """A list of tensors (3×H×W) or file paths."""
    if isinstance(images, (str, os.PathLike)):
        from engine.spec.folders import find_images

        folder = Path(images)
        if not folder.is_dir():
            raise FileNotFoundError(f"uap: training folder {str(folder)!r} does not exist")
        paths = find_images(folder)
        if not paths:
            raise ValueError(f"uap: no images found in {str(folder)!r}")
        return paths
    out: list[Any] = []
    for t in images:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"uap: training images must be tensors or a folder, got {type(t).__name__}")
        if t.dim() == 3:
            t = t.unsqueeze(0)
        check_image_batch(t)
        out.extend(t.unbind(0))
    if not out:
        raise ValueError("uap: no training images given")
    return out


def _load_batch(items: list[Any], size: int, device: torch.device) -> torch.Tensor:
    from engine.io.images import ImageLoadError, load_image

    ims = []
    for it in items:
        if isinstance(it, torch.Tensor):
            t = it.unsqueeze(0)
        else:
            try:
                t = load_image(it).tensor
            except ImageLoadError as exc:
                warnings.warn(f"uap: skipping training image: {exc}", stacklevel=3)
                continue
        t = t.to(device=device, dtype=torch.float32)
        ims.append(F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=True).clamp(0.0, 1.0))
    if not ims:
        return torch.empty(0, 3, size, size, device=device)
    return torch.cat(ims)


def train_uap(
    images: Iterable[torch.Tensor] | str | os.PathLike,
    metric: Metric,
    eps: float = 10 / 255,
    epochs: int = 5,
    batch_size: int = 4,
    step: float = 1 / 255,
    seed: int = 0,
    *,
    size: int = 256,
    device: torch.device | str | None = None,
) -> UAPTraining:
    """Train one universal perturbation that raises ``metric`` on every image.

    Each epoch visits the images in an order drawn from ``seed``; for each mini-batch
    (images resized to ``size``×``size``) it takes one sign step
    ``δ ← clip_ε(δ − step·sign(∇_δ mean loss))``. δ starts at 0.

    Args:
        images: a folder (searched recursively) or an iterable of :math:`(3, H, W)` /
            :math:`(B, 3, H, W)` tensors in [0, 1].
        metric: the metric to raise.
        eps: L∞ budget of δ.
        epochs: passes over the images.
        batch_size: images per update.
        step: sign-step size.
        seed: seeds the shuffling (same seed and data → same δ).
        size: side of δ and of the training images.
        device: where to train (default: the metric's device).

    Yields:
        :class:`UAPTrainStep` after every batch.

    Returns:
        δ, :math:`(1, 3, size, size)` on the CPU, ``|δ| ≤ eps``.

    Example:
        >>> gen = train_uap("photos/", metric, eps=8/255, epochs=2)
        >>> for step in gen: print(step.epoch, step.mean_score)   # doctest: +SKIP
    """
    dev = torch.device(device) if device is not None else metric.device
    state = {"delta": torch.zeros(1, 3, size, size, device=dev)}

    def update(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = state["delta"].detach().requires_grad_(True)
        scores = metric.score((batch + d).clamp(0.0, 1.0), grad=True)
        losses = attack_loss(metric, scores)
        (grad,) = torch.autograd.grad(losses.mean(), d)
        state["delta"] = (state["delta"] - step * grad.sign()).clamp(-eps, eps)
        return scores, losses

    yield from train_epochs(images, update, epochs=epochs, batch_size=batch_size, seed=seed, size=size,
                            device=dev)
    return state["delta"].detach().cpu()


def train_epochs(images: Iterable[torch.Tensor] | str | os.PathLike,
                 update: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], *,
                 epochs: int, batch_size: int, seed: int, size: int, device: torch.device,
                 ) -> Generator[UAPTrainStep, None, None]:
    """The epoch and mini-batch loop every universal-perturbation trainer shares.

    Each epoch visits the images in an order drawn from ``seed``, loads each mini-batch
    resized to ``size``×``size`` on ``device`` and calls ``update(batch)``, which updates
    the trainer's own state and returns the batch's (scores, per-image losses) measured
    before the update. Yields a :class:`UAPTrainStep` after every batch.
    """
    if epochs < 1 or batch_size < 1 or size < 8:
        raise ValueError("uap: epochs and batch_size must be ≥ 1 and size ≥ 8")
    items = _training_source(images)
    n_batches = (len(items) + batch_size - 1) // batch_size
    gen = torch.Generator().manual_seed(int(seed))
    for epoch in range(epochs):
        order = torch.randperm(len(items), generator=gen).tolist()
        score_sum, loss_sum, seen = 0.0, 0.0, 0
        for b in range(n_batches):
            batch = _load_batch([items[j] for j in order[b * batch_size:(b + 1) * batch_size]], size, device)
            if batch.shape[0] > 0:
                scores, losses = update(batch)
                score_sum += float(scores.detach().sum())
                loss_sum += float(losses.detach().sum())
                seen += batch.shape[0]
            if seen == 0 and b == n_batches - 1:
                raise ValueError("uap: none of the training images could be read")
            yield UAPTrainStep(epoch, score_sum / max(seen, 1), loss_sum / max(seen, 1), b, n_batches,
                               b == n_batches - 1)


def save_uap(path: str | os.PathLike, perturbation: torch.Tensor, manifest: dict[str, Any] | None = None) -> Path:
    """Save δ and its manifest (plain JSON-like values) to ``path`` (a ``.pt`` file)."""
    if perturbation.dim() == 3:
        perturbation = perturbation.unsqueeze(0)
    if perturbation.dim() != 4 or perturbation.shape[:2] != (1, 3):
        raise ValueError(f"uap: expected a 1×3×H×W perturbation, got {tuple(perturbation.shape)}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save({"format": UAP_FORMAT, "perturbation": perturbation.detach().cpu().float().contiguous(),
                "manifest": dict(manifest or {})}, tmp)
    os.replace(tmp, p)
    return p


def load_uap(path: str | os.PathLike) -> tuple[torch.Tensor, dict[str, Any]]:
    """Load ``(δ of shape 1×3×H×W, manifest)`` saved by :func:`save_uap`.

    Raises:
        FileNotFoundError: no such file (the message says how to make one).
        ValueError: the file is not a UAP file.
    """
    p = Path(path) if path else None
    if p is None or not str(path).strip():
        raise FileNotFoundError("uap: no perturbation file given; train one with "
                                "engine.attacks.uap.train_uap and save it with save_uap, then set "
                                "the 'perturbation' parameter to its path")
    if not p.is_file():
        raise FileNotFoundError(f"uap: perturbation file {str(p)!r} not found; train one with "
                                "engine.attacks.uap.train_uap (save_uap) or fix the path")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"uap: {p.name} is not a readable perturbation file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != UAP_FORMAT or "perturbation" not in data:
        raise ValueError(f"uap: {p.name} is not a UAP file saved by save_uap (format {UAP_FORMAT})")
    delta = data["perturbation"]
    if not isinstance(delta, torch.Tensor) or delta.dim() != 4 or tuple(delta.shape[:2]) != (1, 3):
        raise ValueError(f"uap: {p.name} holds no 1×3×H×W perturbation")
    return delta, dict(data.get("manifest") or {})


MSU_UAP = "adversarial-defenses-for-iqa/metrics/methods/utils/uap_evaluate.py"
UAP_FITS = ("resize", "tile")


def tile_to(perturbation: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """δ repeated over ``like``'s H×W from the top-left corner (and cropped), on its device."""
    h, w = like.shape[-2:]
    ph, pw = perturbation.shape[-2:]
    d = perturbation.to(device=like.device, dtype=like.dtype)
    return d.repeat(1, 1, h // ph + 1, w // pw + 1)[..., :h, :w]


@dataclass
class UAPParams(AttackParams):
    perturbation: str = param("", help="path of the trained perturbation file (.pt, from train_uap)")
    eps: float = param(10 / 255, min=0.0, max=1.0, help="L∞ clip applied to the resized perturbation",
                       unit="×255", step=1 / 255)
    fit: str = param("resize", choices=UAP_FITS,
                     help="fit δ to the image: 'resize' (bilinear) or 'tile' (repeat from the top-left, MSU)")
    amplitude: float = param(1.0, min=0.0, max=10.0, help="δ is multiplied by this before it is added "
                                                            "(MSU's evaluation: 0.2)", step=0.05)


@ATTACKS.register("uap")
class UAP(Attack):
    """Apply a trained universal perturbation (no per-image optimisation).

    Yields two step records: iteration 0 (clean) and 1 (perturbed).

    Example:
        >>> out = UAP(perturbation="uap_niqe.pt")(x, metric)
    """

    Params = UAPParams
    strength_param = "eps"
    universal = True
    presets = {"paper": {}, "msu-literal": {"fit": "tile", "amplitude": 0.2, "eps": 1.0},
               **{f"eps={round(e * 255)}/255": {"eps": e} for e in LINF_LEVELS}}
    literal_presets = {"msu-literal": MSU_UAP}

    def _fitted(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`fit_uap` of the file's δ for ``x``, cached per file version and size (a
        run over a folder of same-size images loads and resizes the file once)."""
        path = self.params.perturbation
        stamp = None
        try:
            st = Path(path).stat()
            stamp = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size, st.st_ino)
        except (OSError, ValueError):
            pass  # load_uap below reports the missing file
        key = (stamp, tuple(x.shape[-2:]), str(x.device), x.dtype, self.params.eps, self.params.fit)
        cache = self.__dict__.setdefault("_cache", {})
        if stamp is None or key not in cache:
            delta, _ = load_uap(path)
            cache.clear()
            cache[key] = (tile_to(delta, x).clamp(-self.params.eps, self.params.eps)
                          if self.params.fit == "tile" else fit_uap(delta, x, self.params.eps))
        return cache[key]

    def run(self, x: torch.Tensor, metric: Metric, *,
            generator: torch.Generator | None = None) -> AttackRun:
        p = self.params
        check_image_batch(x)
        d = self._fitted(x)
        x0 = x.detach()
        tracker = IterateTracker(metric, x0)
        yield tracker.record(0, x0, metric.score(x0))
        x_adv = (x0 + p.amplitude * d).clamp_(0.0, 1.0)
        yield tracker.record(1, x_adv, metric.score(x_adv))
        return tracker.outcome(x_adv, 1, p.keep_best)
