"""The attack protocol (engine/attacks/base.py) and the sign-gradient loop
(engine/attacks/sign_gradient.py, FGSM, I-FGSM) on a linear metric whose gradient is known,
so every iterate has a known answer. Fast (milliseconds): these are the tests the mutation
run of the attack base uses (bench/mutation.py attacks)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from engine.attacks import ATTACKS, run_to_end
from engine.attacks.base import (Attack, AttackParams, IterateTracker, StepRecord, loss_and_grad,
                                 perturbation_stats, rand_per_image, straight_through_clamp, sweep)
from engine.attacks.fgsm import FGSM
from engine.attacks.ifgsm import IFGSM
from engine.attacks.sign_gradient import LINF_LEVELS, SignGradientAttack, l1_normalised, linf_presets, sign_into
from engine.metrics.base import Metric
from engine.spec.params import param

H, W = 6, 10  # non-square on purpose


class LinearMetric(Metric):
    """M(x) = 100·mean(w ⊙ x) per image, w a fixed ±1 pattern: ∇M = 100·w / (3HW)."""

    name = "linear"
    bounds = (0.0, 100.0)

    def __init__(self, lower_better: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.lower_better = lower_better
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.where(torch.rand(1, 3, H, W, generator=g) < 0.5, -1.0, 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 100.0 * (self.w * x).flatten(1).mean(1)


def images(n: int = 2) -> torch.Tensor:
    """n images in [0.3, 0.7] with a few pixels near the borders (0.004 and 0.996)."""
    g = torch.Generator().manual_seed(42)
    x = 0.3 + 0.4 * torch.rand(n, 3, H, W, generator=g)
    x[:, :, 0, :3] = 0.004
    x[:, :, -1, -3:] = 0.996
    return x


def expected_iterates(x0, metric, eps, alpha, iters):
    """The sign loop written out: the MSU loss 1 − sign·M/100 has gradient −sign·w/(3HW),
    so each step adds sign·α·sign(w) to δ, δ is clipped to ±ε and the image clamped."""
    step = metric.sign * torch.sign(metric.w)
    out, delta = [], torch.zeros_like(x0)
    for _ in range(iters):
        out.append((x0 + delta).clamp(0, 1))
        delta = (delta + alpha * step).clamp(-eps, eps)
    out.append((x0 + delta).clamp(0, 1))
    return out


@pytest.mark.parametrize("lower_better", [False, True])
def test_ifgsm_iterates_have_the_known_answer(lower_better):
    metric, x0 = LinearMetric(lower_better), images()
    eps, alpha, iters = 3 / 255, 1 / 255, 5
    steps, out = [], None
    gen = IFGSM(eps=eps, alpha=alpha, iters=iters).run(x0, metric)
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as stop:
        out = stop.value
    want = expected_iterates(x0, metric, eps, alpha, iters)
    assert torch.allclose(out.image, want[-1], atol=1e-7)
    assert [s.iteration for s in steps] == list(range(iters + 1))
    for k, s in enumerate(steps):
        score = metric.score(want[k])
        assert s.score == pytest.approx(float(score.mean()), abs=1e-5)
        assert s.loss == pytest.approx(float((1 - metric.sign * score / 100).mean()), abs=1e-6)
        d = (want[k] - x0).flatten(1).abs()
        assert s.linf == pytest.approx(float(d.amax(1).mean()), abs=1e-7)
        assert s.l2 == pytest.approx(float(d.norm(dim=1).mean()), rel=1e-5)
        mse = d.pow(2).mean(1)
        psnr = float((10 * torch.log10(1 / mse)).mean()) if k else math.inf
        assert s.psnr == pytest.approx(psnr, rel=1e-5)
        assert s.queries is None  # a gradient attack counts no queries
        for i in range(2):
            assert s.image(i).score == pytest.approx(float(score[i]), abs=1e-5)
    # the budget binds: ε = 3α, so the last three iterates are the same image
    assert steps[3].linf == pytest.approx(eps, abs=1e-7) and steps[5].linf == pytest.approx(eps, abs=1e-7)
    assert out.selection == "last" and out.iteration_used == [iters, iters]
    assert torch.allclose(out.scores, metric.score(out.image), atol=1e-6)
    # the clamped border pixels stayed in [0, 1]
    assert float(out.image.min()) >= 0.0 and float(out.image.max()) <= 1.0
    assert float(out.image.min()) == 0.0 or float(out.image.max()) == 1.0


def test_keep_best_returns_the_first_best_iterate():
    """On the linear metric the score rises until δ hits ε at iteration 3 and then stays:
    the best iterate is the first one reaching the top (3), not a later equal one."""
    metric, x0 = LinearMetric(), images()
    out = IFGSM(eps=3 / 255, alpha=1 / 255, iters=5, keep_best=True)(x0, metric)
    want = expected_iterates(x0, metric, 3 / 255, 1 / 255, 5)
    assert out.selection == "best" and out.iteration_used == [3, 3]
    assert torch.allclose(out.image, want[3], atol=1e-7)
    assert out.scores is None


def test_fgsm_is_one_step_of_eps():
    metric, x0 = LinearMetric(), images()
    out = FGSM(eps=4 / 255, alpha=1 / 255, iters=7)(x0, metric)
    want = (x0 + 4 / 255 * torch.sign(metric.w)).clamp(0, 1)
    assert torch.allclose(out.image, want, atol=1e-7)
    assert len(out.steps) == 2 and out.iteration_used == [1, 1]


def test_sign_attack_hooks_and_presets():
    a = SignGradientAttack(eps=0.1, alpha=0.01, iters=4)
    assert (a.step_size(), a.num_iters()) == (0.01, 4)
    g = torch.tensor([[-2.0, 0.0, 3.0]])
    assert torch.equal(a.direction(g, {}), g)
    assert torch.equal(a.init_delta(torch.ones(1, 3, 2, 2), None), torch.zeros(1, 3, 2, 2))
    assert (FGSM(eps=0.1, alpha=0.01, iters=4).step_size(), FGSM(iters=4).num_iters()) == (0.1, 1)
    assert LINF_LEVELS == [2 / 255, 4 / 255, 8 / 255, 16 / 255]
    presets = linf_presets(iters=3)
    assert list(presets) == ["eps=2/255", "eps=4/255", "eps=8/255", "eps=16/255"]
    assert presets["eps=8/255"] == {"eps": 8 / 255, "iters": 3}
    p = IFGSM().params
    assert (p.eps, p.alpha, p.iters, p.keep_best) == (10 / 255, 1 / 255, 10, False)
    assert IFGSM.from_preset("fine").params.alpha == 0.25 / 255
    assert IFGSM.from_preset("best-iterate").params.keep_best is True
    assert ATTACKS.get("ifgsm") is IFGSM and ATTACKS.get("fgsm") is FGSM


def test_l1_normalised_and_sign_into():
    g = torch.zeros(2, 3, 2, 2)
    g[0, 0, 0, 0] = 6.0  # mean |g| of image 0 = 6/12 = 0.5
    g[1] = -2.0          # mean |g| of image 1 = 2
    out = l1_normalised(g)
    assert out[0, 0, 0, 0].item() == pytest.approx(12.0) and float(out[0].abs().sum()) == pytest.approx(12.0)
    assert torch.allclose(out[1], torch.full((3, 2, 2), -1.0))
    assert torch.equal(l1_normalised(torch.zeros(1, 3, 2, 2)), torch.zeros(1, 3, 2, 2))  # no 0/0
    direction = torch.tensor([[-0.5, 0.0, 2.0, -3.0]])
    grad = torch.zeros(1, 4)
    s = sign_into(direction, grad)
    assert torch.equal(s, torch.tensor([[-1.0, 0.0, 1.0, -1.0]]))
    assert s.data_ptr() == grad.data_ptr()  # written over the spent gradient
    expanded = torch.zeros(1, 1).expand(1, 4)
    s2 = sign_into(direction, expanded)
    assert torch.equal(s2, torch.tensor([[-1.0, 0.0, 1.0, -1.0]])) and s2.data_ptr() != expanded.data_ptr()
    assert torch.equal(expanded, torch.zeros(1, 4))


def test_perturbation_stats_known_answer():
    x0 = torch.zeros(2, 3, 2, 2)
    x = x0.clone()
    x[0, 0, 0, 0] = 0.5            # image 0: L∞ 0.5, L2 0.5, MSE 0.25/12
    x[1] = 0.1                     # image 1: L∞ 0.1, L2 √(12·0.01), MSE 0.01
    linf, l2, p = perturbation_stats(x, x0)
    assert linf == pytest.approx(0.3)
    assert l2 == pytest.approx((0.5 + math.sqrt(0.12)) / 2)
    assert p == pytest.approx((10 * math.log10(12 / 0.25) + 20.0) / 2)
    assert perturbation_stats(x, x0, out=torch.empty_like(x0)) == pytest.approx((linf, l2, p))
    assert perturbation_stats(x0, x0) == (0.0, 0.0, float("inf"))
    # one unchanged image in the batch makes the mean PSNR infinite, not NaN
    assert perturbation_stats(torch.stack([x[0], x0[1]]), x0)[2] == float("inf")


def test_step_record_dict_and_images():
    r = StepRecord(2, 1.5, 0.3, 0.01, 0.2, 40.0)
    assert r.to_dict() == {"iteration": 2, "score": 1.5, "loss": 0.3, "linf": 0.01, "l2": 0.2, "psnr": 40.0}
    assert r.image(0) is r and r.image(5) is r
    q = StepRecord(2, 1.5, 0.3, 0.01, 0.2, 40.0, queries=7, per_image=(r, r))
    assert q.to_dict()["queries"] == 7 and q.image(1) is r
    assert StepRecord(0, 0, 0, 0, 0, 0, queries=0).to_dict()["queries"] == 0


def test_tracker_records_losses_per_image_and_the_best():
    metric = LinearMetric(lower_better=True)  # lower is better: goodness = −score
    x0 = images(3)
    t = IterateTracker(metric, x0)
    s0 = torch.tensor([10.0, 20.0, 30.0])
    r0 = t.record(0, x0, s0)  # loss from the scores: 1 + s/100
    assert r0.loss == pytest.approx(float((1 + s0 / 100).mean()))
    assert [p.loss for p in r0.per_image] == pytest.approx([1.1, 1.2, 1.3])
    assert [p.score for p in r0.per_image] == pytest.approx([10.0, 20.0, 30.0])
    assert torch.equal(t.clean_scores, s0)
    x1 = x0 + 0.01
    r1 = t.record(1, x1, torch.tensor([5.0, 25.0, 30.0]), loss=torch.tensor([0.5, 0.6, 0.7]))
    assert r1.loss == pytest.approx(0.6) and [p.loss for p in r1.per_image] == pytest.approx([0.5, 0.6, 0.7])
    assert r1.per_image[2].linf == pytest.approx(0.01, abs=1e-6)
    x2 = x0 + 0.02
    r2 = t.record(2, x2, torch.tensor([7.0, 15.0, 30.0]), loss=0.25)
    assert r2.loss == 0.25 and all(p.loss == 0.25 for p in r2.per_image)
    assert torch.equal(t.clean_scores, s0)  # only iteration 0 sets it
    # best per image: image 0 at 1 (5 < 7 < 10), image 1 at 2 (15), image 2 stays at 0 (a tie is no gain)
    assert t.best_iter == [1, 2, 0]
    best = t.outcome(x2, 2, keep_best=True)
    assert best.selection == "best" and best.iteration_used == [1, 2, 0]
    assert torch.equal(best.image[0], x1[0]) and torch.equal(best.image[1], x2[1]) and torch.equal(best.image[2], x0[2])
    best.image.zero_()
    assert torch.equal(t.best[2], x0[2])  # the outcome is a copy
    last = t.outcome(x2, 2, keep_best=False)
    assert last.selection == "last" and last.iteration_used == [2, 2, 2] and torch.equal(last.image, x2)
    assert torch.equal(last.scores, torch.tensor([7.0, 15.0, 30.0]))
    assert len(last.steps) == 3
    # an image the tracker did not score last carries no scores
    assert t.outcome(x2 + 0.01, 3, keep_best=False).scores is None


def test_tracker_on_one_image_has_no_per_image_records():
    metric = LinearMetric()
    x0 = images(1)
    t = IterateTracker(metric, x0)
    r = t.record(0, x0, torch.tensor([12.0]), loss=torch.tensor([0.88]))
    assert r.per_image == () and r.loss == pytest.approx(0.88)
    assert r.image(0) is r


def test_tracker_ignores_non_clean_first_records_for_clean_scores():
    t = IterateTracker(LinearMetric(), images(1))
    t.record(1, images(1), torch.tensor([3.0]))
    assert t.clean_scores is None


def test_loss_and_grad_with_and_without_an_extra_term():
    metric, x = LinearMetric(), images(2)
    n = 3 * H * W
    scores, loss, grad = loss_and_grad(metric, x)
    assert torch.allclose(scores, metric.score(x))
    assert torch.allclose(loss, 1 - scores / 100)
    assert torch.allclose(grad, (-metric.w / n).expand_as(x), atol=1e-9)
    assert not scores.requires_grad and not loss.requires_grad

    def extra(t: torch.Tensor) -> torch.Tensor:
        return t.pow(2).flatten(1).sum(1)

    _, loss2, grad2 = loss_and_grad(metric, x, extra)
    assert torch.allclose(loss2, 1 - scores / 100 + x.pow(2).flatten(1).sum(1))
    assert torch.allclose(grad2, -metric.w / n + 2 * x, atol=1e-6)


def test_straight_through_clamp():
    x = torch.tensor([-0.5, 0.2, 1.5], requires_grad=True)
    y = straight_through_clamp(x)
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.2, 1.0]))
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 2.0, 3.0]))


def test_rand_per_image():
    shape = (3, 1, 2, 2)
    assert torch.equal(rand_per_image(shape, torch.Generator().manual_seed(4)),
                       torch.rand(shape, generator=torch.Generator().manual_seed(4)))
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    one = rand_per_image(shape, torch.Generator().manual_seed(4), dtype=torch.float64)
    assert one.dtype == torch.float64
    assert torch.equal(one, torch.rand(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64))
    got = rand_per_image(shape, gens, dtype=torch.float64)
    assert got.dtype == torch.float64 and got.shape == shape
    for i, s in enumerate((1, 2, 3)):
        assert torch.equal(got[i:i + 1], torch.rand((1, 1, 2, 2), generator=torch.Generator().manual_seed(s),
                                                    dtype=torch.float64))
    torch.manual_seed(9)
    a = rand_per_image(shape, None)
    torch.manual_seed(9)
    assert torch.equal(a, torch.rand(shape))
    with pytest.raises(ValueError, match="2 generators for a batch of 3 images"):
        rand_per_image(shape, gens[:2])


@dataclass
class _Params(AttackParams):
    size: int = param(3, min=1, max=9, help="a size")


class _Toy(Attack):
    Params = _Params
    presets = {"big": {"size": 9}, "small": {"size": 1}}


def test_attack_parameters_presets_and_protocol():
    assert _Toy().params.size == 3 and _Toy().params.keep_best is False
    assert _Toy({"size": 5}).params.size == 5
    assert _Toy({"size": 5}, size=6).params.size == 6
    p = _Toy(size=4).params
    assert _Toy(p).params is p
    both = _Toy(p, keep_best=True).params
    assert (both.size, both.keep_best) == (4, True) and p.keep_best is False
    assert _Toy.from_preset("big").params.size == 9
    assert _Toy.from_preset("big", keep_best=True).params.keep_best is True
    with pytest.raises(KeyError, match=r"unknown preset 'huge'; known: big, small"):
        _Toy.from_preset("huge")
    assert [s.name for s in _Toy.param_specs()] == ["keep_best", "size"]
    with pytest.raises(NotImplementedError):
        _Toy().run(images(1), LinearMetric())
    assert sweep("eps", [0.5, 2], fmt="{:g}", iters=3) == {"eps=0.5": {"eps": 0.5, "iters": 3},
                                                           "eps=2": {"eps": 2, "iters": 3}}
    assert sweep("k", [1]) == {"k=1": {"k": 1}}


def test_run_to_end_returns_the_generators_value():
    def gen():
        yield 1
        yield 2
        return "done"

    assert run_to_end(gen()) == "done"
    out = IFGSM(iters=2)(images(1), LinearMetric())  # __call__ runs the generator to its end
    assert len(out.steps) == 3


class _RandomStart(SignGradientAttack):
    """A random start drawn from the attack's generator (as PGD's)."""

    def init_delta(self, x0, generator):
        return (2 * rand_per_image(x0.shape, generator) - 1) * self.params.eps


class _Alternating(SignGradientAttack):
    """Steps forward on even iterations and back on odd ones: the hook's state persists."""

    def direction(self, grad, state):
        state["k"] = state.get("k", -1) + 1
        return grad if state["k"] % 2 == 0 else -grad


def test_the_loop_passes_the_generator_to_the_start_and_keeps_the_hook_state():
    metric, x0 = LinearMetric(), images()
    eps, alpha = 4 / 255, 1 / 255
    a = _RandomStart(eps=eps, alpha=alpha, iters=2)
    out = a(x0, metric, generator=torch.Generator().manual_seed(3))  # __call__ hands it on
    start = (2 * torch.rand(x0.shape, generator=torch.Generator().manual_seed(3)) - 1) * eps
    want = (x0 + (start + 2 * alpha * torch.sign(metric.w)).clamp(-eps, eps)).clamp(0, 1)
    assert torch.allclose(out.image, want, atol=1e-6)
    other = a(x0, metric, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(other.image, want, atol=1e-3)

    out = _Alternating(eps=eps, alpha=alpha, iters=3)(x0, metric)
    # +α, −α, +α: one step forward in all
    assert torch.allclose(out.image, (x0 + alpha * torch.sign(metric.w)).clamp(0, 1), atol=1e-7)
    assert [round(s.linf * 255, 4) for s in out.steps] == [0.0, 1.0, 0.0, 1.0]


def test_per_image_records_of_a_batch_of_two():
    """Each image's own record: its iteration, score, loss, L∞/L2/PSNR of its perturbation
    alone, the queries; a loss that is not per image (a scalar tensor) is shared."""
    metric = LinearMetric()
    x0 = images(2)
    x = x0.clone()
    x[0, 0, 2, 2] += 0.1   # image 0: one pixel by 0.1
    x[1] += 0.02           # image 1: every pixel by 0.02
    n = 3 * H * W
    t = IterateTracker(metric, x0)
    r = t.record(4, x, torch.tensor([1.0, 2.0]), loss=torch.tensor([0.3, 0.4]), queries=9)
    assert len(r.per_image) == 2 and r.queries == 9
    a, b = r.per_image
    assert (a.iteration, a.score, a.queries, b.iteration, b.score, b.queries) == (4, 1.0, 9, 4, 2.0, 9)
    assert (a.loss, b.loss) == pytest.approx((0.3, 0.4))
    assert (a.linf, a.l2) == pytest.approx((0.1, 0.1), rel=1e-5)
    assert (b.linf, b.l2) == pytest.approx((0.02, 0.02 * math.sqrt(n)), rel=1e-5)
    assert a.psnr == pytest.approx(10 * math.log10(n / 0.01), rel=1e-5)
    assert b.psnr == pytest.approx(10 * math.log10(1 / 0.0004), rel=1e-5)
    shared = t.record(5, x, torch.tensor([1.0, 2.0]), loss=torch.tensor(0.7))
    assert [p.loss for p in shared.per_image] == pytest.approx([0.7, 0.7])
    # a loss of another length (say per pixel) is averaged for each image's record
    other = t.record(6, x, torch.tensor([1.0, 2.0]), loss=torch.tensor([0.2, 0.4, 0.6]))
    assert [p.loss for p in other.per_image] == pytest.approx([0.4, 0.4])
    best = t.outcome(x, 5, keep_best=True)
    assert best.steps == t.steps and len(best.steps) == 3


def test_tracker_before_and_without_a_usable_score():
    metric = LinearMetric()
    x0 = images(1)
    t = IterateTracker(metric, x0)
    assert t.outcome(x0, 0, keep_best=False).scores is None  # nothing recorded yet: no crash
    # a metric answering NaN never beats the clean image: keep-best returns x itself, iterate 0
    t.record(0, x0, torch.tensor([float("nan")]))
    t.record(1, x0 + 0.01, torch.tensor([float("nan")]))
    out = t.outcome(x0 + 0.01, 1, keep_best=True)
    assert out.iteration_used == [0] and torch.equal(out.image, x0)
