"""The layers hold: import-linter's contracts (pyproject.toml), a CLI that starts without
torch, small functions in engine/run, exit codes declared once, and every expected error
carrying its own exit code."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """`lint-imports`: layers (each imports only the ones below it), no Qt in the engine,
    no import circles between siblings."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e .[dev])")
    done = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


def test_the_parser_imports_no_torch_and_no_component():
    code = ("import sys, engine.cli\n"
            "engine.cli.make_parser().parse_args(['run', 'x', '--metric', 'niqe', '--attack', 'fgsm', '--out', 'o'])\n"
            "heavy = [m for m in ('torch', 'torchvision', 'pyiqa', 'engine.attacks', 'engine.metrics', "
            "'engine.defences', 'numpy') if m in sys.modules]\n"
            "print(','.join(heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_no_function_in_engine_run_is_long():
    long = []
    for f in sorted((ROOT / "engine" / "run").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert long == []


def test_exit_codes_are_declared_once():
    assign = re.compile(r"^\s*EXIT_[A-Z_]+\s*(,\s*EXIT_[A-Z_]+\s*)*=", re.M)
    where = [str(f.relative_to(ROOT)) for f in sorted((ROOT / "engine").rglob("*.py"))
             if assign.search(f.read_text(encoding="utf-8"))]
    assert where == ["engine/core/errors.py"]


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_every_expected_error_carries_its_exit_code():
    import engine.attacks  # noqa: F401 - load every package that declares an error
    import engine.defences  # noqa: F401
    import engine.metrics  # noqa: F401
    import engine.run.backends  # noqa: F401
    import engine.run.calibration  # noqa: F401
    import engine.run.prepare  # noqa: F401
    import engine.run.runtime  # noqa: F401
    import engine.spec.studies  # noqa: F401
    import engine.store.db  # noqa: F401
    import engine.training.pairs  # noqa: F401
    from engine.core.errors import EXIT_CODES, EXIT_STORE, EXIT_USAGE, EXIT_WEIGHTS, ExpectedError, describe

    kinds = {c.__name__: c for c in _subclasses(ExpectedError)}
    expected = {"UsageError": EXIT_USAGE, "StoreError": EXIT_STORE, "StoreCorrupt": EXIT_STORE,
                "WeightsUnavailable": EXIT_WEIGHTS, "BackendError": EXIT_USAGE, "DeviceError": EXIT_USAGE,
                "MetricError": EXIT_USAGE, "ParamError": EXIT_USAGE, "UnknownComponent": EXIT_USAGE,
                "BudgetError": EXIT_USAGE, "CalibrationError": EXIT_USAGE, "StudyError": EXIT_USAGE,
                "TrainingError": EXIT_USAGE}
    assert set(expected) <= set(kinds)
    for name, code in expected.items():
        assert kinds[name].exit_code == code, name
    for cls in kinds.values():
        assert cls.exit_code in EXIT_CODES, cls
    for name in ("StudyError", "BudgetError", "StoreError", "UnknownComponent"):
        assert describe(kinds[name]("what went wrong\nmore")) == ("what went wrong", expected[name])
