"""Studies: the data files expand to their grids; the comparison marks differences."""
import pytest

from engine.cli import make_parser
from engine.cli.run import build_experiment
from engine.core.errors import UsageError
from engine.spec.experiment import ComponentSpec
from engine.evaluation.study_compare import compare_study
from engine.spec.studies import StudyError, list_studies, load_study, study_experiment_fields

# science.md: the paper's attacks (UAP needs a trained file) and the defences of its plots
PAPER_ATTACKS = {"fgsm", "ifgsm", "mifgsm", "amifgsm", "korhonen", "madc", "zhang", "ssah", "advcf"}
PAPER_DEFENCES = {("resize", "scale", 0.5), ("jpeg", "q", 50), ("gaussian-blur", "kernel_size", 3),
                  ("median-blur", "kernel_size", 3), ("flip", None, None), ("random-crop", "size", 256),
                  ("random-rotate", "angle_limit", 5)}


def _resolved(spec: ComponentSpec, registry) -> dict:
    from engine.spec.params import make_params, params_to_dict
    from engine.run.runtime import merged_params

    cls = registry.get(spec.name)
    return params_to_dict(make_params(cls.Params, merged_params(cls, spec))) if cls.Params else {}


def test_paper_study_expands_to_the_papers_grid():
    from engine.defences import DEFENCES

    f = study_experiment_fields("paper")
    assert f["study"] == "paper" and [m.name for m in f["metrics"]] == ["linearity"]
    assert {a.name for a in f["attacks"]} == PAPER_ATTACKS and all(not a.params for a in f["attacks"])
    got = set()
    for d in f["defences"]:
        p = _resolved(d, DEFENCES)
        key = next(((k, v) for k, v in p.items() if (d.name, k, v) in PAPER_DEFENCES), (None, None))
        got.add((d.name, *key))
    assert got == PAPER_DEFENCES
    reported = {r["defence"] for r in load_study("paper")["reported"]}
    assert reported - {"none", "fcn"} == set(load_study("paper")["defences"])


def test_every_study_file_is_valid_and_cli_builds_it(tmp_path, photo_folder):
    assert {"paper", "guardians-lite"} <= set(list_studies())
    args = make_parser().parse_args(["run", str(photo_folder), "--study", "guardians-lite", "--metric", "niqe",
                                     "--out", str(tmp_path)])
    exp = build_experiment(args)  # validates every name, preset and parameter
    lite = load_study("guardians-lite")
    assert exp.study == "guardians-lite" and exp.budget == lite["budget"] == "linf-8"
    assert [a.label for a in exp.attacks] == lite["attacks"] and len(exp.defences) == len(lite["defences"])
    paper = build_experiment(make_parser().parse_args(["run", str(photo_folder), "--study", "paper",
                                                       "--metric", "niqe", "--out", str(tmp_path)]))
    assert [m.name for m in paper.metrics] == ["niqe"] and paper.budget is None
    assert exp.protocol == paper.protocol == "msu"  # MSU's defence_evaluate.py protocol
    lab = build_experiment(make_parser().parse_args(["run", str(photo_folder), "--study", "paper", "--protocol",
                                                     "lab", "--metric", "niqe", "--out", str(tmp_path)]))
    assert lab.protocol == "lab" and lab.id != paper.id
    training = build_experiment(make_parser().parse_args(["run", str(photo_folder), "--study", "guardians-training",
                                                          "--metric", "niqe", "--out", str(tmp_path)]))
    assert [a.label for a in training.attacks] == load_study("guardians-training")["attacks"]
    with pytest.raises(StudyError, match="known: guardians-lite, guardians-training, paper"):
        load_study("nope")
    with pytest.raises(UsageError, match="no attack"):
        build_experiment(make_parser().parse_args(["run", str(photo_folder), "--metric", "niqe",
                                                   "--out", str(tmp_path)]))


def _s(defence, preset, score, value):
    return {"metric": "niqe", "attack": "total", "attack_preset": "all", "defence": defence,
            "defence_preset": preset, "score": score, "value": value, "ci_low": value - 0.01,
            "ci_high": value + 0.01}


def test_comparison_marks_differences_beyond_the_tolerance():
    summary = [_s("none", "default", "quality_score", 0.70), _s("none", "default", "robust_abs_gain", 0.5),
               _s("jpeg", "q=50", "quality_score", 0.62), _s("jpeg", "q=50", "robust_abs_gain", 0.10),
               _s("flip", "default", "quality_score", 0.2), _s("flip", "default", "robust_abs_gain", 0.08)]
    c = compare_study("paper", summary)
    rows = {r["defence"]: r for r in c["rows"]}
    assert rows["none"]["d_gain"] == pytest.approx(0.5 - 0.81) and rows["none"]["gain_cls"] == "diff-big"
    assert rows["jpeg[q=50]"]["quality_cls"] == "diff-ok" and rows["jpeg[q=50]"]["gain_cls"] == "diff-ok"
    assert rows["fcn"]["gain"] is None and rows["fcn"]["gain_cls"] == ""
    assert "3 defences in common" in c["shape"]
    assert compare_study("guardians-lite", summary) is None  # it reports nothing
