from dataclasses import dataclass

import pytest

from engine.spec.params import ParamError, make_params, param, param_specs, params_to_dict


@dataclass
class P:
    eps: float = param(0.1, min=0.0, max=1.0, help="budget")
    iters: int = param(10, min=1)
    mode: str = param("a", choices=["a", "b"])
    flag: bool = param(False)


def test_specs_and_defaults():
    specs = {s.name: s for s in param_specs(P)}
    assert specs["eps"].type is float and specs["eps"].default == 0.1 and specs["eps"].help == "budget"
    assert specs["mode"].choices == ("a", "b")
    assert params_to_dict(make_params(P, {})) == {"eps": 0.1, "iters": 10, "mode": "a", "flag": False}


def test_coercion_from_strings():
    p = make_params(P, {"eps": "0.5", "iters": "3", "flag": "yes", "mode": "b"})
    assert (p.eps, p.iters, p.flag, p.mode) == (0.5, 3, True, "b")


@pytest.mark.parametrize("bad", [{"eps": 2.0}, {"iters": 0}, {"mode": "c"}, {"nope": 1}, {"iters": 1.5},
                                 {"flag": "maybe"}])
def test_bad_values_name_the_parameter(bad):
    with pytest.raises(ParamError) as e:
        make_params(P, bad)
    assert list(bad)[0] in str(e.value)
