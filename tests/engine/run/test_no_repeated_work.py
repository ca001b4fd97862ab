"""Each distinct quantity of an item is computed once, and the rows are those of the
straightforward formulas (every pair and score computed afresh per defence)."""
from __future__ import annotations

import pytest
import torch

from engine.attacks import ATTACKS
from engine.defences import DEFENCES
from engine.evaluation import row as row_module
from engine.evaluation.pairs import IDENTICAL, compare
from engine.evaluation.row import evaluate_pair
from engine.core.seeds import derive_seed
from engine.metrics.base import METRICS
from engine.run.driver import run_experiment
from engine.store.db import ResultStore
from tests.engine.run.test_batching import DarkNanMetric, _exp, same_size_folder  # noqa: F401
from engine.run.identity import content_items

TIMING = {"attack_time", "defence_time"}


def _reference_rows(item, metric, x):
    """The rows as computed before: re-score x_adv, apply and score ``none``, every pair."""
    gen = torch.Generator().manual_seed(item.seed)
    attack = ATTACKS.get(item.attack.name)(item.attack.params)
    x_adv = attack(x, metric, generator=gen).image
    clean, attacked = float(metric.score(x)[0]), float(metric.score(x_adv)[0])
    rows = {}
    for spec in item.defences:
        d = DEFENCES.get(spec.name)(spec.params)
        seed = derive_seed(item.seed, spec.key)
        dx, dxa = d(x, seed=seed), d(x_adv, seed=seed)
        rows[spec.label] = evaluate_pair(
            clean=clean, attacked=attacked, defended_clean=float(metric.score(dx)[0]),
            defended_attacked=float(metric.score(dxa)[0]),
            images={"x": x, "xa": x_adv, "dx": dx, "dxa": dxa}, bounds=metric.bounds,
            score_range=metric.range, geometric=d.geometric)
    return rows


def test_rows_equal_the_straightforward_formulas(tmp_path, same_size_folder, niqe):
    from engine.io.images import load_image

    exp = _exp(same_size_folder, attacks=["ifgsm:iters=3"],
               defences=["jpeg", "median-blur", "random-noise:sigma=0.03"])
    exp.images = exp.images[:2]
    store = ResultStore(tmp_path / "r.sqlite")
    list(run_experiment(exp, store))
    rows = store.rows(exp.id)
    assert len(rows) == 2 * 4
    for item in content_items(exp):
        ref = _reference_rows(item, niqe, load_image(item.image).tensor)
        for r in (r for r in rows if r["item_id"] == item.id):
            want = {k: None if v != v else v for k, v in ref[r["defence_label"]].items()}  # NaN is stored as NULL
            assert {k: r[k] for k in want} == want, r["defence_label"]


class CountingMetric(DarkNanMetric):
    """Mean brightness that counts the images it scores."""

    calls = 0

    def forward(self, x):
        CountingMetric.calls += x.shape[0]
        return x.mean(dim=(1, 2, 3)) * self.w


@pytest.fixture
def counting_metric():
    METRICS.register("test-counting")(CountingMetric)
    CountingMetric.calls = 0
    yield "test-counting"
    METRICS.unregister("test-counting")


def test_unavoidable_work_only(tmp_path, same_size_folder, counting_metric, monkeypatch):
    """I-FGSM (3 steps) with none + jpeg + median-blur: per image 1 clean score, 3 scored
    gradient passes, the final iterate's score, the attacked image's score on the 8-bit
    grid and 2 scored forwards per real defence (10 forwards; 13 before), and 9 distinct
    pair comparisons (15 before)."""
    compared = []
    monkeypatch.setattr(row_module, "compare", lambda a, b: compared.append(1) or compare(a, b))
    exp = _exp(same_size_folder, metrics=[counting_metric], attacks=["ifgsm:iters=3"])
    exp.images = exp.images[:1]
    list(run_experiment(exp, ResultStore(tmp_path / "r.sqlite")))
    assert CountingMetric.calls == 1 + 3 + 1 + 1 + 2 * 2
    assert len(compared) == 1 + 4 * 2


def test_identical_images_compare_exactly(photos):
    for x in photos.values():
        assert compare(x, x.clone()) == IDENTICAL  # kornia's eps alone would give ssim 1 − 1e-6


@pytest.mark.parametrize("name", ["jpeg", "nlm"])
def test_codec_defences_return_contiguous_tensors(name, photos):
    out = DEFENCES.get(name)()(photos["astronaut"][..., :64, :64])
    assert out.is_contiguous()


def test_attack_outcome_carries_its_final_score(niqe, photos):
    x = photos["coffee"][..., :96, :96]  # NIQE needs 96 px
    last = ATTACKS.get("ifgsm")({"iters": 2})(x, niqe)
    assert torch.equal(last.scores, niqe.score(last.image))
    best = ATTACKS.get("ifgsm")({"iters": 2, "keep_best": True})(x, niqe)
    assert best.scores is None  # the best iterate was scored in a gradient pass: re-scored
