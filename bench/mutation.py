"""Mutation testing of one target with mutmut, in bounded time, survivors listed per module.

Each target names the modules to mutate and the test files that guard them (only those
run: mutmut 3 first maps which of them cover which function, then runs only the covering
tests against each mutant). The run happens in a scratch copy, ``.mutation/<target>/``
(engine/, tests/ and a pyproject.toml whose ``[tool.mutmut]`` section names the target), so
the repository's own files and ``mutants/`` are never touched and two targets can be kept
side by side; a second run of the same target reuses mutmut's cache of unchanged mutants.

Usage::

    python bench/mutation.py evaluation               # scores.py + pairs.py
    python bench/mutation.py attacks --budget 1800    # attack base + sign-gradient attacks
    python bench/mutation.py --list
    python bench/mutation.py evaluation --only engine.evaluation.pairs.x_ssim__mutmut_44
    python bench/mutation.py custom --paths engine/evaluation/row.py \\
        --tests tests/engine/evaluation/test_scores.py

Prints, per module: mutants, killed, survived, timeouts, not covered, not checked (when
the budget ran out), and each survivor's name and diff (``--diffs``). Exit code 0 when the
run completed, 3 when the budget ran out first (the counts so far are printed), 2 on bad
usage. Results and the measured counts are in docs/testing.md.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"

#: target → (modules to mutate, the test files that guard them)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "evaluation": (["engine/evaluation/scores.py", "engine/evaluation/pairs.py"],
                   ["tests/engine/evaluation/test_scores.py", "tests/engine/evaluation/test_pairs.py"]),
    # the linear-metric tests run in milliseconds, so every mutant is checked in ~2 s
    "attacks": (["engine/attacks/base.py", "engine/attacks/sign_gradient.py",
                 "engine/attacks/fgsm.py", "engine/attacks/ifgsm.py"],
                ["tests/engine/attacks/test_base.py"]),
    # the same with the BRISQUE/NIQE tests too: ~40 s per covered mutant, needs hours on 2 cores
    "attacks-full": (["engine/attacks/base.py", "engine/attacks/sign_gradient.py",
                      "engine/attacks/fgsm.py", "engine/attacks/ifgsm.py"],
                     ["tests/engine/attacks/test_base.py", "tests/engine/attacks/test_sign_attacks.py"]),
    "evaluation-all": (["engine/evaluation/*.py"], ["tests/engine/evaluation"]),
    # the item computation of the run layer (engine/run/): slow tests, give it a long --budget
    "run": (["engine/run/item.py", "engine/run/attack.py", "engine/run/defend.py", "engine/run/scoring.py",
             "engine/run/compute.py", "engine/run/driver.py"],
            ["tests/engine/run/test_runner.py"]),
}

#: mutmut's status words as ``mutmut results --all true`` prints them
STATUSES = ("killed", "survived", "timeout", "no tests", "not checked", "skipped", "suspicious",
            "segfault", "caught by type check", "check was interrupted by user")
_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$")


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def prepare(target: str, paths: list[str], tests: list[str]) -> Path:
    """The scratch copy for ``target``: fresh engine/ and tests/, and a pyproject.toml whose
    ``[tool.mutmut]`` names ``paths`` and ``tests``. mutmut's cache (``mutants/``) is kept."""
    work = WORK / target
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("engine", "tests"):
        if (work / folder).exists():
            shutil.rmtree(work / folder)
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = re.split(r"^\[tool\.mutmut\]", text, flags=re.M)[0].rstrip() + "\n\n"
    text += "\n".join([
        "[tool.mutmut]",
        'source_paths = ["engine"]',
        f"only_mutate = {_toml_list(paths)}",
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]',
        # torch's thread pool is not fork-safe: workers fork from a clean server process
        'process_isolation = "forkserver"',
        "use_git_change_detection = false",
        "",
    ])
    (work / "pyproject.toml").write_text(text, encoding="utf-8")
    return work


def results(work: Path, python: str) -> dict[str, str]:
    """mutant name → status, from mutmut's own report."""
    out = subprocess.run([python, "-m", "mutmut", "results", "--all", "true"], cwd=work,
                         capture_output=True, text=True, check=False).stdout
    found = {}
    for line in out.splitlines():
        m = _LINE.match(line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def module_of(mutant: str) -> str:
    """``engine.attacks.base.xǁIterateTrackerǁrecord__mutmut_3`` → ``engine.attacks.base``."""
    return re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]


def diff_of(work: Path, python: str, mutant: str) -> str:
    out = subprocess.run([python, "-m", "mutmut", "show", mutant], cwd=work,
                         capture_output=True, text=True, check=False).stdout
    return "\n".join(line for line in out.splitlines()
                     if line[:1] in "+-" and not line.startswith(("+++", "---")))


def report(found: dict[str, str], work: Path, python: str, diffs: bool) -> None:
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for name, status in sorted(found.items()):
        mod = module_of(name)
        by_module[mod][status] += 1
        if status == "survived":
            survivors[mod].append(name)
    head = f"{'module':40} {'mutants':>7} {'killed':>7} {'survived':>8} {'timeout':>7} {'no tests':>8} {'unchecked':>9}"
    print(head)
    for mod, c in sorted(by_module.items()):
        total = sum(c.values())
        print(f"{mod:40} {total:7d} {c['killed']:7d} {c['survived']:8d} {c['timeout']:7d} "
              f"{c['no tests']:8d} {c['not checked']:9d}")
    for mod, names in sorted(survivors.items()):
        print(f"\nsurvivors in {mod} ({len(names)}):")
        for n in names:
            print(f"  {n}")
            if diffs:
                for line in diff_of(work, python, n).splitlines():
                    print(f"      {line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", nargs="?", help=f"one of {', '.join(TARGETS)}, or 'custom' with --paths/--tests")
    ap.add_argument("--paths", nargs="+", default=[], help="custom: files (globs) to mutate")
    ap.add_argument("--tests", nargs="+", default=[], help="custom: test files or folders to run")
    ap.add_argument("--budget", type=float, default=1200.0, help="seconds before the run is stopped (default 1200)")
    ap.add_argument("--max-children", type=int, default=2, help="mutants tested in parallel (default 2)")
    ap.add_argument("--only", nargs="+", default=[], metavar="MUTANT",
                    help="re-check only these mutants (names as printed), e.g. after adding a test")
    ap.add_argument("--diffs", action="store_true", help="print each survivor's diff")
    ap.add_argument("--report-only", action="store_true", help="print the last run's results without running")
    ap.add_argument("--list", action="store_true", help="list the targets and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name, (paths, tests) in TARGETS.items():
            print(f"{name}: mutates {' '.join(paths)}; runs {' '.join(tests)}")
        return 0
    if args.target == "custom":
        if not args.paths or not args.tests:
            print("error: custom needs --paths and --tests", file=sys.stderr)
            return 2
        paths, tests = args.paths, args.tests
    elif args.target in TARGETS:
        paths, tests = TARGETS[args.target]
    else:
        print(f"error: unknown target {args.target!r}; choose one of {', '.join(TARGETS)} or custom",
              file=sys.stderr)
        return 2
    if not any(any(ROOT.glob(pattern)) for pattern in paths):
        print(f"error: nothing to mutate: no file matches {' '.join(paths)}", file=sys.stderr)
        return 2
    missing = [t for t in tests if not (ROOT / t).exists()]
    if missing:
        print(f"error: test paths not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    python = sys.executable
    work = prepare(args.target, paths, tests) if not args.report_only else WORK / args.target
    env = dict(os.environ)
    # the copy's conftest would look for the weights beside .mutation/; use the repo's place
    env.setdefault("TORCH_HOME", str((ROOT.parent / "shared" / "iqa-weights").resolve()))
    env.setdefault("OMP_NUM_THREADS", "1")
    completed = True
    if not args.report_only:
        t0 = time.monotonic()
        log = work / "mutmut.log"  # mutmut's progress display and errors
        with open(log, "w", encoding="utf-8") as log_file:
            proc = subprocess.Popen([python, "-m", "mutmut", "run", "--max-children", str(args.max_children),
                                     *args.only],
                                    cwd=work, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            proc.wait(timeout=args.budget)
            if proc.returncode != 0:
                tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                print(f"mutmut exited with {proc.returncode} (log: {log}):\n{tail}", file=sys.stderr)
                completed = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # mutmut and the workers it forked
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            completed = False
            print(f"budget of {args.budget:.0f} s ran out: counts so far", file=sys.stderr)
        print(f"{args.target}: {time.monotonic() - t0:.0f} s with {args.max_children} worker(s)")
    found = results(work, python)
    if not found:
        print("no results (did mutmut run? see the error above)", file=sys.stderr)
        return 3
    report(found, work, python, args.diffs)
    return 0 if completed else 3


if __name__ == "__main__":
    raise SystemExit(main())
