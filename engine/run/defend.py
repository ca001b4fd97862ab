"""The defence stage's numbers: apply a defence to x and x_a and score both.

Plain defences are scored once per defended batch; a random defence with EOT draws gets
means and spreads; a smoothing (certified) defence gets its certified intervals.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from engine.run.scoring import failure_text, finite, finite_each, metric_scores, per_image, sync
from engine.run.units import ItemError
from engine.spec.experiment import Experiment


def defend(metric, defence, x: torch.Tensor, x_adv: torch.Tensor, xs: list[torch.Tensor],
            xas: list[torch.Tensor], clean: list[float], attacked: list[float], seeds: list[int],
            exp: Experiment, label: str, dev: torch.device):
    """Apply one defence to the clean and attacked batch and score both.

    Returns the per-image defended views (``none``: the very x and x_a views, so their
    pairs count as identical), the scores from :func:`score_defended` and the seconds the
    two applies took.
    """
    if getattr(defence, "identity", False):
        return xs, xas, {"defended-clear": clean, "defended-attacked": attacked}, 0.0
    seed = per_image(seeds)
    sync(dev)
    t1 = time.perf_counter()
    with torch.no_grad():
        dx = defence(x, seed=seed)
        dxa = defence(x_adv, seed=seed)
    sync(dev)
    seconds = (time.perf_counter() - t1) / 2
    scored = score_defended(metric, defence, x, x_adv, dx, dxa, seed, exp, label)
    n = x.shape[0]
    return [dx[i:i + 1] for i in range(n)], [dxa[i:i + 1] for i in range(n)], scored, seconds


def score_defended(metric, defence, x: torch.Tensor, x_adv: torch.Tensor, dx: torch.Tensor,
                   dxa: torch.Tensor, seed: int | list[int], exp: Experiment,
                   label: str) -> dict[str, Any]:
    """The scores of one defence for every image of the batch: M(D(x)) and M(D(x_a)).

    Plain: the metric's scores of the defended batches. A random defence with
    ``eot_draws`` > 1: means over the draws (the row's scores) with their spreads
    (``*_std`` columns); image comparisons still use draw 0. This is the one place where
    a defence's scores are computed: another kind of defended score (e.g. certified
    smoothing) is a branch here.

    Returns:
        ``defended-clear`` and ``defended-attacked``: per-image float lists; with EOT
        also ``eot_draws`` and the per-image ``*_std`` lists.
    """
    if getattr(defence, "smooths_metric", False):
        return _certify(metric, defence, x, x_adv, seed)
    if exp.eot_draws > 1 and defence.random:
        from engine.evaluation.eot import eot_scores

        r = eot_scores(metric, defence, x, x_adv, seed, exp.eot_draws)
        out: dict[str, Any] = {"eot_draws": int(r["draws"])}
        for key in ("defended-clear", "defended-attacked", "both_defended_abs_gain"):
            out[f"{key}_std"] = [float(v) for v in r[f"{key}_std"]]
        out["defended-clear"] = finite_each(r["defended-clear_mean"], "EOT mean of M(D(x))", "defence")
        out["defended-attacked"] = finite_each(r["defended-attacked_mean"], "EOT mean of M(D(x_a))",
                                                "defence")
        return out
    return {"defended-clear": metric_scores(metric, dx, f"{label}-defended clean image", "defence"),
            "defended-attacked": metric_scores(metric, dxa, f"{label}-defended attacked image", "defence")}


def eot_or_plain(row: dict[str, Any], scored: dict[str, Any], i: int) -> tuple[float, float]:
    """Image ``i``'s M(D(x)), M(D(x_a)); EOT draws and spreads, or a certified defence's
    intervals, go into its row."""
    if "certified" in scored:
        row.update(scored["certified"][i])
    if "eot_draws" in scored:
        row["eot_draws"] = scored["eot_draws"]
        for key in ("defended-clear", "defended-attacked", "both_defended_abs_gain"):
            row[f"{key}_std"] = scored[f"{key}_std"][i]
    return scored["defended-clear"][i], scored["defended-attacked"][i]


def _certify(metric, defence, x: torch.Tensor, x_adv: torch.Tensor,
             seed: int | list[int]) -> dict[str, Any]:
    """A smoothing (certified) defence: each image's smoothed scores of x and x_a, both from
    that image's seed (the same noise draws; the same as when it runs alone), become its
    defended scores; the intervals and whether the certificate holds go to its
    ``certified_*`` columns, with ``defence_time`` the time per smoothed score. (EOT does
    not apply: the smoothing is itself the expectation.)"""
    from engine.evaluation.certified import certified_columns

    n = x.shape[0]
    seeds = seed if isinstance(seed, list) else [seed] * n
    out: dict[str, Any] = {"defended-clear": [], "defended-attacked": [], "certified": []}
    for i in range(n):
        xi, xai = x[i:i + 1], x_adv[i:i + 1]
        t0 = time.perf_counter()
        try:
            clean_c, attacked_c = defence.certify(metric, xi, seeds[i]), defence.certify(metric, xai, seeds[i])
        except Exception as exc:  # noqa: BLE001 - the metric or the denoiser failing on noisy samples
            raise ItemError("defence", f"{defence.name} could not smooth {metric.name}: {failure_text(exc)}") from exc
        sync(x.device)
        cols = certified_columns(clean_c, attacked_c, xi, xai, metric.range)
        cols["defence_time"] = (time.perf_counter() - t0) / 2
        out["certified"].append(cols)
        out["defended-clear"].append(finite(float(clean_c.score[0]), "smoothed score of the clean image", "defence"))
        out["defended-attacked"].append(finite(float(attacked_c.score[0]), "smoothed score of the attacked image",
                                                "defence"))
    return out
