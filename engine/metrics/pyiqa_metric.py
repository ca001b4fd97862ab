"""Any pyiqa no-reference metric behind our :class:`Metric` interface.

pyiqa's ``InferenceModel`` either disables gradients or (``as_loss=True``) reduces the
batch to one mean, so we keep only its network (``.net``) and call it ourselves: the
result is one differentiable score per image.

Example:
    >>> m = PyiqaMetric("niqe")                      # doctest: +SKIP
    >>> m.score(x, grad=True).shape                  # doctest: +SKIP
    torch.Size([2])
"""
from __future__ import annotations

import inspect
import urllib.error
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.metrics import pyiqa_catalog as catalog
from engine.metrics.base import Metric, MetricError
from engine.metrics.checkpoints import load_file_strict
from engine.metrics.intercept import random_init, record_downloads
from engine.metrics.weights import WeightFile, WeightsUnavailable, network_reachable


LAYOUT_RENAMES: dict[str, tuple[tuple[str, str], ...]] = {
    # MSU's and the authors' MetaIQA files name the head ``net.*`` (their ``Net``/``MetaIQA``
    # module: ``resnet_layer`` + ``net``); pyiqa's arch calls it ``head`` and renames only
    # on its own download path, so a user's file would otherwise leave the head random.
    "MetaIQA": (("net.", "head."),),
}
"""pyiqa arch → key-prefix renames applied to a ``weights=FILE`` before the strict load."""


#: classical metrics whose feature statistics (means, variances, fits) are reductions in
#: the input's dtype: in float32 their value depends on how the reduction is split across
#: threads; in float64 the rows are the same at any thread count (and closer to MATLAB).
FLOAT64_METRICS = frozenset({"niqe", "niqe_matlab", "brisque", "brisque_matlab", "ilniqe", "piqe"})


class PyiqaMetric(Metric):
    """A pyiqa NR metric with per-image, optionally differentiable scores.

    Args:
        name: pyiqa metric name (``pyiqa.list_models(metric_mode='NR')``).
        pretrained: load the published weights (downloading them if missing and the
            network is up). ``False`` builds the same architecture with random weights and
            never touches the network (classical metrics such as NIQE still read their
            parameter files, which are their definition, not learned weights).
        weights: a local checkpoint file in pyiqa's layout (or a known other one, see
            :data:`LAYOUT_RENAMES`); no download happens. Loaded strictly where the arch
            loads through pyiqa's ``load_pretrained_network`` (nearly all learned ones): a
            missing, unexpected or misshapen tensor is a
            :class:`~engine.metrics.checkpoints.WeightsMismatch`.
        download: allow downloading missing files.

    Shape:
        - Input: :math:`(B, 3, H, W)` in [0, 1].
        - Output: :math:`(B,)` float32. The metrics of :data:`FLOAT64_METRICS` compute in
          float64 inside (gradients flow back to a float32 input).
    """

    def __init__(self, name: str, *, pretrained: bool = True, weights: str | None = None,
                 download: bool = True) -> None:
        super().__init__()
        try:
            entry = catalog.entry(name)
        except KeyError:
            raise MetricError(f"{name!r} is not a pyiqa no-reference metric") from None
        if entry.disabled_reason:
            raise MetricError(f"{name}: {entry.disabled_reason}")
        missing = catalog.missing_packages(entry.packages)
        if missing:
            raise MetricError(f"{name}: missing Python package(s) {', '.join(missing)}")
        self.name = name  # type: ignore[misc]  # instance name: one class serves all metrics
        self.lower_better = entry.lower_better
        self.bounds = entry.bounds
        self.differentiable = entry.differentiable
        self.batch_safe = entry.batch_safe
        self.split_batch = entry.split_batch
        self.pretrained = bool(pretrained) or weights is not None
        self.net = _build_net(entry, pretrained=pretrained, weights=weights, download=download)
        self.net.eval()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if self.name in FLOAT64_METRICS and x.device.type != "mps":  # MPS has no float64
            x = x.double()
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
            out = self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = out.reshape(x.shape[0], -1)
        if out.shape[1] != 1:
            raise MetricError(f"{self.name}: expected one score per image, got {out.shape[1]}")
        # pyiqa computes NIQE in float64 (MATLAB parity); keep one dtype for all metrics.
        return out[:, 0].float()

    def score(self, x: torch.Tensor, *, grad: bool = False) -> torch.Tensor:
        if grad and not self.differentiable:
            raise MetricError(f"{self.name}: this metric is not differentiable "
                              "(no useful gradient w.r.t. the image); gradient attacks "
                              "cannot target it")
        scores = super().score(x, grad=grad)
        if grad and x.requires_grad and not scores.requires_grad:
            raise MetricError(f"{self.name}: this metric is not differentiable "
                              "(its score has no gradient w.r.t. the image)")
        return scores

    def extra_repr(self) -> str:
        return f"name={self.name!r}, pretrained={self.pretrained}"


def _arch_class(arch: str) -> type:
    # Import the arch module before any patching so the helpers it imports by name are
    # the ones intercept.py replaces (pyiqa imports arch modules lazily).
    import pyiqa.archs as pa
    from pyiqa.utils.registry import ARCH_REGISTRY

    lazy = getattr(pa, "_lazy_import_arch", None)
    if lazy is not None:
        lazy(arch)
    return ARCH_REGISTRY.get(arch)


def _build_net(entry: catalog.PyiqaEntry, *, pretrained: bool, weights: str | None,
               download: bool) -> nn.Module:
    import pyiqa  # noqa: F401 - slow (seconds) the first time; only when building

    try:
        cls = _arch_class(entry.arch)
    except ImportError as exc:
        raise MetricError(f"{entry.name}: cannot import pyiqa's {entry.arch}: {exc}") from exc
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    log: list[WeightFile] = []

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MetricError(f"{entry.name}: weights file {str(path)!r} does not exist")
        if "pretrained_model_path" not in params:
            raise MetricError(f"{entry.name}: pyiqa's {entry.arch} cannot load a checkpoint "
                              "from a path; leave 'weights' empty")
        kwargs["pretrained_model_path"] = str(path)
        # pyiqa checkpoints hold the whole network, so backbones need not be fetched; the
        # file must then fill every learned tensor (checked by the strict loader).
        return _create(entry, kwargs, random=True, log=log, load_local=_strict_loader(entry))

    if not pretrained:
        # A string 'pretrained' picks the architecture variant (e.g. MUSIQ's AVA head);
        # keep it and let random_init skip the load instead.
        if "pretrained" in params and not isinstance(entry.opts.get("pretrained"), str):
            kwargs["pretrained"] = False
        return _create(entry, kwargs, random=True, log=log)

    missing = [f for f in entry.files if not f.present()]
    if missing and (not download or not network_reachable(missing[0].url)):
        first = missing[0]
        why = "downloads disabled" if not download else "no network"
        more = "; also missing: " + ", ".join(f"{f.filename} ({f.url} → {f.folder})"
                                                for f in missing[1:]) if missing[1:] else ""
        raise WeightsUnavailable(first.filename, first.url, first.folder, why + more,
                                 entry.name)
    return _create(entry, kwargs, random=False, log=log)


def _strict_loader(entry: catalog.PyiqaEntry) -> Any:
    """Stands in for pyiqa's ``load_pretrained_network`` on a user's file: strict always
    (pyiqa passes ``strict=False`` for some archs, e.g. MetaIQA), known layouts mapped."""
    renames = LAYOUT_RENAMES.get(entry.arch, ())

    def load(net: nn.Module, model_path: str, strict: bool = True,
             weight_keys: str | None = None) -> None:
        load_file_strict(net, model_path, who=entry.name, what=f"pyiqa's {type(net).__name__}",
                         renames=renames, prefer=weight_keys)
    return load


def _create(entry: catalog.PyiqaEntry, kwargs: dict[str, Any], *, random: bool,
            log: list[WeightFile], load_local: Any = None) -> nn.Module:
    import pyiqa

    guard = random_init(log, load_local) if random else record_downloads(log)
    try:
        with guard:
            inner = pyiqa.create_metric(entry.name, as_loss=False, device=torch.device("cpu"),
                                        **kwargs)
    except WeightsUnavailable as exc:
        raise WeightsUnavailable(exc.filename, exc.url, exc.folder, exc.reason,
                                 entry.name) from None
    except MetricError:
        raise  # e.g. WeightsMismatch from the strict loader: already one clear line
    except (OSError, urllib.error.URLError, RuntimeError, KeyError, TypeError,
            ValueError, AssertionError) as exc:
        wanted = [f for f in log if not f.present()]
        if wanted and (random or _looks_like_network(exc)):
            f = wanted[-1]
            raise WeightsUnavailable(f.filename, f.url, f.folder, _short(exc),
                                     entry.name) from exc
        how = "with random weights" if random else "with pretrained weights"
        raise MetricError(f"{entry.name}: could not build pyiqa's {entry.arch} {how}: "
                          f"{_short(exc)}") from exc
    return inner.net


def _looks_like_network(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError)) or any(
        k in text for k in ("connect", "resolve", "network", "timed out", "offline",
                            "local cache", "name or service"))


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:240]
