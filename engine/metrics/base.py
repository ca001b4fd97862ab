"""The one interface every no-reference quality metric has."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from engine.core.errors import ExpectedError
from engine.spec.registry import Registry

AvailabilityState = Literal["ready", "needs-download", "unavailable"]


@dataclass(frozen=True)
class Availability:
    """Whether a component can run on this machine now.

    ``ready``: everything is present. ``needs-download``: weights are missing locally but
    will be fetched on first use (needs network). ``unavailable``: cannot run here; the
    reason says why (e.g. a missing package).
    """

    state: AvailabilityState
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ready"


class MetricError(ExpectedError, RuntimeError):
    """A metric could not be built or could not score an input (message is user-facing)."""


class Metric(nn.Module):
    """A no-reference image-quality metric.

    Subclasses set the class attributes and implement :meth:`forward`.

    Attributes:
        name: registry name (pyiqa's where the metric comes from pyiqa).
        lower_better: True when a lower score means better quality (NIQE, BRISQUE).
        bounds: ``(worst, best)`` scores used to normalise (MSU bounds where known).
        differentiable: whether gradients w.r.t. the input are meaningful.
        batch_safe: an image's score does not depend on the other images of its batch
            (no batch statistics, random crops shared by the batch, size dependence);
            ``False`` makes the runner score this metric one image at a time.
        split_batch: per image inside a batch, but its batched arithmetic rounds
            differently from one image; :meth:`score` then runs the images one by one,
            so a batched run's numbers equal batch 1's bit for bit.

    Shape:
        - Input: :math:`(B, 3, H, W)` float in [0, 1], RGB.
        - Output: :math:`(B,)` float scores.
    """

    name: ClassVar[str] = "metric"
    lower_better: bool = False
    bounds: tuple[float, float] = (0.0, 100.0)
    differentiable: bool = True
    batch_safe: bool = True
    split_batch: bool = False
    #: set by the plug-in loader (``file PATH`` or ``package NAME VERSION``): the scores
    #: of a plug-in's metric are checked (shape, finite, gradient) as they are computed
    plugin: ClassVar[str | None] = None

    @property
    def range(self) -> float:
        """``|best − worst|``: the normaliser in the MSU loss and gains (100 if unknown)."""
        r = abs(self.bounds[1] - self.bounds[0])
        return r if r > 0 else 100.0

    @property
    def sign(self) -> float:
        """+1 when higher is better, −1 when lower is better."""
        return -1.0 if self.lower_better else 1.0

    def to(self, *args, **kwargs) -> Metric:  # type: ignore[override]
        """``nn.Module.to`` that also remembers the device (for metrics with no tensors)."""
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None:
            self._device = torch.device(device)
        return super().to(*args, **kwargs)

    def train(self, mode: bool = True) -> Metric:
        """Metrics are frozen scorers: always stay in eval mode (BatchNorm, dropout)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return getattr(self, "_device", torch.device("cpu"))

    def score(self, x: torch.Tensor, *, grad: bool = False) -> torch.Tensor:
        """Score a batch. With ``grad=False`` no autograd graph is built.

        Args:
            x: :math:`(B, 3, H, W)` in [0, 1].
            grad: keep the graph so that ``score.sum().backward()`` reaches ``x``.

        Returns:
            :math:`(B,)` scores.
        """
        check_image_batch(x)
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            if self.split_batch and x.shape[0] > 1:
                return torch.cat([self._forward_checked(x[i:i + 1], grad).reshape(1) for i in range(x.shape[0])])
            return self._forward_checked(x, grad).reshape(x.shape[0])

    def _forward_checked(self, x: torch.Tensor, grad: bool) -> torch.Tensor:
        out = self.forward(x)
        if self.plugin is not None:
            check_plugin_scores(self, x, out, grad)
        return out

    def normalised(self, scores: torch.Tensor) -> torch.Tensor:
        """Min-max scale scores with :attr:`bounds` so that 0 = worst and 1 = best."""
        worst, best = self.bounds
        return (scores - worst) / (best - worst)


class PluginOutputError(ExpectedError, RuntimeError):
    """A plug-in's component returned something it must not (wrong shape, NaN, no
    gradient); the message names the file and line of the method that returned it."""


def defined_at(obj: Any) -> str:
    """``file:line`` where a class or function is defined (its module when unknown)."""
    try:
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except (OSError, TypeError):
        return getattr(obj, "__module__", "?")


def check_plugin_scores(metric: Metric, x: torch.Tensor, out: Any, grad: bool) -> None:
    """A plug-in metric's ``forward`` output: a tensor of B finite scores that, when a
    gradient was asked for and the metric is differentiable, depends on ``x``.

    Raises:
        PluginOutputError: naming the metric's ``forward`` (file and line).
    """
    where = f"{defined_at(type(metric).forward)}: metric {metric.name!r} ({metric.plugin})"
    b = x.shape[0]
    if not isinstance(out, torch.Tensor) or out.numel() != b:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise PluginOutputError(f"{where} returned {shape} for a batch of {b} images; "
                                f"forward must return one score per image, shape ({b},)")
    if not bool(torch.isfinite(out.detach()).all()):
        raise PluginOutputError(f"{where} returned a score that is not finite "
                                f"({out.detach().reshape(-1).tolist()})")
    if grad and metric.differentiable and torch.is_grad_enabled() and x.requires_grad and not out.requires_grad:
        raise PluginOutputError(f"{where} returned a score with no gradient w.r.t. the image (does forward "
                                "detach, use numpy or .item()?); keep it in torch, or set differentiable = False")


def check_image_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a B×3×H×W batch, got shape {tuple(x.shape)}")


def attack_loss(metric: Metric, scores: torch.Tensor) -> torch.Tensor:
    """MSU attack loss, minimised by every attack: ``1 − sign·M(x)/range`` (per image)."""
    return 1.0 - metric.sign * scores / metric.range


METRICS: Registry[Metric] = Registry("metric")
