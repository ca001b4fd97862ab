"""Helpers the commands share: name lists, folders, and argparse value types."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Callable

from engine.core.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError


def split_names(values: list[str] | None) -> list[str]:
    """``--metric a,b --metric c`` → [a, b, c]; commas inside ``[...]`` are kept, and so
    is a comma followed by a number (a value such as ``range=0,1``: names start with a
    letter)."""
    out: list[str] = []
    for v in values or []:
        depth, cur = 0, ""
        for i, ch in enumerate(v):
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
            if ch == "," and depth == 0 and v[i + 1:i + 2] not in tuple("0123456789-+."):
                if cur.strip():
                    out.append(cur.strip())
                cur = ""
            else:
                cur += ch
        if cur.strip():
            out.append(cur.strip())
    return out


def out_folder(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is a file; give a folder (new or existing) for "
                         "results.sqlite and the CSVs")
    return out


def device_arg(value: str) -> str:
    v = value.lower()
    if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise argparse.ArgumentTypeError(f"{value!r}: use auto, cpu, cuda or cuda:N")


def pixels(text: str) -> int:
    """``40000000``, ``40M`` or ``4e7`` → int (argparse type)."""
    t = text.strip().upper()
    scale = 1_000_000 if t.endswith("M") else 1
    try:
        value = int(float(t.rstrip("M")) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a pixel count: {text!r} (e.g. 40000000 or 40M)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--max-pixels must be positive, got {text!r}")
    return value


def fraction(text: str) -> float:
    """``"4/255"`` or ``"0.02"`` → a finite non-negative float (argparse type), parsed as
    experiment parameters are (budgets, step sizes, learning rates, weights)."""
    from engine.spec.experiment import parse_scalar

    try:
        value = parse_scalar(text)
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a non-negative number or fraction: {text!r} (e.g. 4/255 or 0.02)")
    return float(value)


def batch_size(text: str):
    from engine.run.batching import parse_batch_size

    try:
        return parse_batch_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def drive_training(run: Any, epoch_line: Callable[[Any], str], done_line: Callable[[Any], str], out: str) -> int:
    """Print a line per epoch of a trainer's generator and one at its end (exit 0); Ctrl+C
    closes it, so what it saved stays and the same command resumes (exit 130)."""
    try:
        while True:
            try:
                step = next(run)
            except StopIteration as stop:
                print(done_line(stop.value), flush=True)
                return EXIT_OK
            print(epoch_line(step) + ("  * best" if step.best else ""), flush=True)
    except KeyboardInterrupt:
        run.close()
        print(f"stopped; run the same command again to resume ({out})", file=sys.stderr)
        return EXIT_INTERRUPTED


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    """``--plugin PATH`` (repeatable), which every command takes."""
    parser.add_argument("--plugin", action="append", metavar="PATH", default=None,
                        help="load a plug-in file or folder first (metrics, attacks, defences of your own; "
                             "see docs/plugins.md); IQA_LAB_PLUGINS lists more, os.pathsep-separated")


def load_plugins(paths: list[str] | None) -> None:
    """Installed plug-in packages (a broken one warns), then ``IQA_LAB_PLUGINS`` and ``paths``.

    Raises:
        engine.plugins.PluginError: a file or folder does not load (exit code 2).
    """
    from engine.plugins import env_paths, load_entry_points, load_paths

    _, errors = load_entry_points()
    for exc in errors:
        print(f"warning: {exc} (skipped; the rest of the lab runs)", file=sys.stderr)
    load_paths(env_paths() + list(paths or []))
