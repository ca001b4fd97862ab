"""No-reference quality metrics: our own architectures plus every pyiqa NR metric.

Names are looked up in our registry first (``linearity``, ``spaq``), then in pyiqa
(``niqe``, ``brisque``, ``metaiqa``, ``musiq``, ...). A pyiqa metric the paper uses may
have its own wrapper with presets (:data:`PYIQA_VARIANTS`: ``metaiqa`` scores as MSU's
wrapper does). Every ``weights=FILE`` is loaded strictly
(:mod:`engine.metrics.checkpoints`). :func:`metric_info` and
:func:`list_metrics` never build a model or touch the network.

Example:
    >>> from engine.metrics import create_metric, metric_info
    >>> metric_info("niqe")["availability"].state      # doctest: +SKIP
    'ready'
    >>> m = create_metric("metaiqa", pretrained=False)   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import torch

from engine.metrics import linearity as _linearity  # noqa: F401 - registers "linearity"
from engine.metrics import metaiqa as _metaiqa
from engine.metrics import pyiqa_catalog
from engine.metrics import spaq as _spaq  # noqa: F401 - registers "spaq"
from engine.metrics.base import (
    METRICS,
    Availability,
    Metric,
    MetricError,
    attack_loss,
    check_image_batch,
)
from engine.metrics.checkpoints import WeightsMismatch
from engine.metrics.options import MetricParams
from engine.metrics.weights import (
    WeightsUnavailable,
    ensure_weights,
    weights_dir,
    weights_present,
)
from engine.spec.params import ParamSpec, make_params, param_specs, params_to_dict

__all__ = [
    "METRICS",
    "Availability",
    "Metric",
    "MetricError",
    "WeightsMismatch",
    "WeightsUnavailable",
    "attack_loss",
    "check_image_batch",
    "create_metric",
    "ensure_weights",
    "list_metrics",
    "metric_info",
    "metric_params",
    "weights_dir",
    "weights_present",
]

#: pyiqa metrics with their own wrapper (presets, MSU's scoring); others use PyiqaMetric
PYIQA_VARIANTS: dict[str, type] = {"metaiqa": _metaiqa.MetaIqa}

#: seed of the weights of a metric built with ``pretrained=False``
RANDOM_WEIGHTS_SEED = 0

ALIASES = {"meta-iqa": "metaiqa", "hyper-iqa": "hyperiqa", "clip-iqa": "clipiqa",
           "clip-iqa+": "clipiqa+"}


def canonical_name(name: str) -> str:
    """Registry name for ``name`` (case-insensitive; the paper's spellings are accepted)."""
    key = name.strip()
    if key in METRICS or key in pyiqa_catalog.nr_names():
        return key
    key = key.lower()
    return ALIASES.get(key, key)


def list_metrics() -> list[str]:
    """Every selectable metric name: our own first, then pyiqa's NR metrics (sorted)."""
    return METRICS.names() + sorted(pyiqa_catalog.nr_names())


def _unknown(name: str) -> MetricError:
    from engine.spec.registry import did_you_mean

    known = list_metrics()
    return MetricError(f"unknown metric {name!r}{did_you_mean(name, known)}; known: {', '.join(known)} "
                       "(details: `python main.py list`)")


def _params_class(name: str) -> type:
    if name in METRICS:
        return getattr(METRICS.get(name), "Params", None) or MetricParams
    if name in pyiqa_catalog.nr_names():
        return getattr(PYIQA_VARIANTS.get(name), "Params", None) or MetricParams
    raise _unknown(name)


def metric_params(name: str) -> list[ParamSpec]:
    """The parameters ``create_metric(name, ...)`` accepts (at least pretrained, weights)."""
    return param_specs(_params_class(canonical_name(name)))


def create_metric(name: str, device: str = "cpu", **params: Any) -> Metric:
    """Build a metric by name and move it to ``device``.

    Args:
        name: a name from :func:`list_metrics` (``meta-iqa`` style spellings accepted).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        **params: see :func:`metric_params`; strings are converted ("false" → False).

    Raises:
        MetricError: unknown name, bad parameters, or the metric cannot be built.
        WeightsUnavailable: weights missing and not downloadable (a MetricError).
    """
    from engine.spec.params import ParamError

    key = canonical_name(name)
    cls = _params_class(key)
    try:
        values = params_to_dict(make_params(cls, params))
    except ParamError as exc:
        raise MetricError(f"{key}: {exc}") from None
    # Random weights (pretrained=False) are drawn from a fixed seed, so such a metric is
    # the same function in every build (CPU or CUDA, this run or the next) and its
    # numbers can be reproduced; the caller's random stream is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        if key in METRICS:
            metric: Metric = METRICS.get(key)(**values)
        else:
            from engine.metrics.pyiqa_metric import PyiqaMetric
            metric = PYIQA_VARIANTS.get(key, PyiqaMetric)(key, **values)
    return metric.to(device)


def metric_info(name: str) -> dict[str, Any]:
    """What a metric is and whether it can run here, without building it (fast, offline).

    Returns:
        dict with ``name``, ``lower_better``, ``bounds`` ``(worst, best)``,
        ``bounds_source`` (msu | pyiqa | default), ``differentiable``, ``source``
        (``native`` | ``pyiqa``), ``availability`` (:class:`Availability`), ``files``
        (what it needs: filename, url, folder, present), ``description`` and
        ``batch_safe`` (whether images may share a batch; see :class:`Metric`).
    """
    key = canonical_name(name)
    if key in METRICS:
        cls = METRICS.get(key)
        present = bool(weights_present(cls.checkpoint_name))
        files = [{"filename": cls.checkpoint_name, "url": cls.checkpoint_url,
                  "folder": str(weights_dir()), "present": present}]
        av = Availability("ready") if present else Availability(
            "needs-download",
            f"missing: {cls.checkpoint_name} ({cls.checkpoint_url} → {weights_dir()})")
        doc = (cls.__doc__ or "").strip().splitlines()
        return {"name": key, "lower_better": cls.lower_better, "bounds": tuple(cls.bounds),
                "bounds_source": "msu", "differentiable": cls.differentiable,
                "source": "native", "availability": av, "files": files,
                "description": doc[0] if doc else "", "batch_safe": cls.batch_safe}
    if key in pyiqa_catalog.nr_names():
        e = pyiqa_catalog.entry(key)
        return {"name": key, "lower_better": e.lower_better, "bounds": e.bounds,
                "bounds_source": e.bounds_source, "differentiable": e.differentiable,
                "source": "pyiqa", "availability": pyiqa_catalog.availability(key),
                "files": [{"filename": f.filename, "url": f.url, "folder": f.folder,
                           "present": f.present()} for f in e.files],
                "description": f"pyiqa {e.arch} ({key}); pyiqa score range {e.score_range}",
                "batch_safe": e.batch_safe}
    raise _unknown(name)
