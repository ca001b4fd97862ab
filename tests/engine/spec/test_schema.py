"""Every input is checked against one typed schema before the run (issue 23 §2).

A ``--config`` value, a command-line value and a component parameter: each bad one is
refused before anything starts with one line naming the key, the value and what is
expected (did-you-mean for keys), exit code 2; ``main.py schema`` publishes the schema.
"""
from __future__ import annotations

import json

import jsonschema
import pytest
from PIL import Image

from engine.cli import main
from engine.core.errors import EXIT_USAGE
from engine.run.prepare import check
from engine.spec.experiment import Experiment
from engine.spec.schema import check_config, json_schema
from tests.conftest import photo


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(photo("astronaut", (96, 96))).save(path)
    return path


def _run(tmp_path, image, capsys, config=None, *extra: str) -> tuple[int, str]:
    argv = ["run", str(image), "--out", str(tmp_path / "out"), "-q", *extra]
    if config is not None:
        path = tmp_path / "c.json"
        path.write_text(config)
        argv += ["--config", str(path)]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


@pytest.mark.parametrize("config, says", [
    ('[{"metrics": ["niqe"]}]', "expected a JSON object of experiment fields, got list"),
    ('{"metrcs": ["niqe"], "attacks": ["fgsm"]}', "unknown key 'metrcs' (did you mean 'metrics'?)"),
    ('{"metrics": 5, "attacks": ["fgsm"]}', "metrics = 5: input should be a valid list"),
    ('{"metrics": ["niqe"], "attacks": ["fgsm"], "seed": "abc"}', 'seed = "abc": input should be a valid integer'),
    ('{"metrics": ["niqe"], "attacks": ["fgsm"], "eot_draws": "two"}', 'eot_draws = "two": input should be a valid integer'),
    ('{"metrics": ["niqe"], "attacks": ["fgsm"], "adaptive": "yes"}', 'adaptive = "yes": input should be a valid boolean'),
    ('{"metrics": ["niqe"], "attacks": ["fgsm"], "keep_attacked": 1}', 'keep_attacked = 1: input should be a valid boolean'),
    ('{"metrics": ["niqe"], "attacks": [{"name": "ifgsm", "params": {"iters": "two"}}]}',
     "attack ifgsm(iters=two): parameter 'iters': cannot read 'two' as int"),
    ('{"metrics": ["niqe"], "attacks": [{"name": "ifgsm", "parms": {}}]}', "unknown key 'parms' (did you mean 'params'?)"),
    ('{"metrics": ["niqe"], "attacks": ["fgsm"], "seed": NaN}', "seed = nan: expected a finite number"),
    ('{"metrics": ["niqe"], "attacks": [{"name": "ifgsm", "params": {"eps": Infinity}}]}',
     "attacks[0].params.eps = inf: expected a finite number"),
    ('{"metrics": [{"name": "niqe", "params": {"foo": 1}}], "attacks": ["fgsm"]}',
     "metric niqe(foo=1): unknown parameter(s) foo"),
])
def test_a_bad_config_is_refused_in_one_line_before_the_run(tmp_path, image, capsys, config, says):
    code, line = _run(tmp_path, image, capsys, config)
    assert code == EXIT_USAGE
    assert line.startswith("error: ") and says in line
    assert not (tmp_path / "out" / "results.sqlite").exists()  # nothing started


@pytest.mark.parametrize("args, says", [
    (["--attack", "ifgsm:eps=nan"], "attack ifgsm(eps=nan): parameter 'eps' = nan: expected a finite number"),
    (["--attack", "ifgsm:eps=inf"], "parameter 'eps' = inf: expected a finite number"),
    (["--attack", "fgsm", "--eot-draws", "-1"], "--eot-draws (eot_draws = -1: input should be greater than or equal to 1)"),
    (["--attack", "fgsm", "--seed", "-3"], "--seed (seed = -3"),
    (["--attack", "fgsm", "--workers", "0"], "--workers 0: expected an integer ≥ 1"),
])
def test_bad_command_line_values_are_refused(tmp_path, image, capsys, args, says):
    code, line = _run(tmp_path, image, capsys, None, "--metric", "niqe", *args)
    assert code == EXIT_USAGE and says in line


def test_the_gui_and_ray_path_refuses_the_same_values():
    exp = Experiment(images=["a.png"], metrics=["niqe"], attacks=["fgsm"], eot_draws=0, device="cpu")
    problems = check(exp, {"niqe": {"state": "ready"}})
    assert [p.message for p in problems] == [
        "--eot-draws (eot_draws = 0: input should be greater than or equal to 1)"]


def test_the_published_schema_accepts_a_good_config_and_rejects_the_bad_ones(tmp_path, capsys):
    assert main(["schema", "--out", str(tmp_path / "s.json")]) == 0
    schema = json.loads((tmp_path / "s.json").read_text())
    assert schema == json_schema()
    good = {"metrics": ["niqe", {"name": "brisque"}], "attacks": [{"name": "ifgsm", "params": {"eps": 0.01}}],
            "seed": 3, "eot_draws": 2, "batch_size": "auto"}
    jsonschema.validate(good, schema)
    check_config(good)
    for bad in ({"metrcs": []}, {"seed": "abc"}, {"eot_draws": 0}, {"adaptive": "yes"}, [1]):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    every_field = set(Experiment.__dataclass_fields__)
    assert every_field <= set(schema["properties"])  # the schema covers the whole experiment
    assert all(p.get("description") for p in schema["properties"].values())
