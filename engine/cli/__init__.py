"""Headless command line: ``run``, ``list``, ``export``, ``check``, ``calibrate``, ``report``, ``train-*``, ``sma``,
``new-plugin``, ``schema``.

One module per command (``engine/cli/<command>.py``, each with ``add_parser`` and its
``cmd_*``); this module builds the parser and runs the command inside the one error
boundary (:func:`main`): an expected failure prints one line (what, which file, what to
do) and exits with its code; a bug prints a short message and the path of its saved
traceback. The codes are :data:`engine.core.errors.EXIT_CODES` (0 done, 1 some items
failed, 2 bad usage, 3 nothing computed, 4 store unreadable, 5 disk full, 6 weights
missing, 70 internal error, 130 interrupted).

Start-up: building the parser imports no torch and no component; each command imports
what it needs when it runs. Before any command runs, the plug-ins are loaded
(:func:`engine.cli.common.load_plugins`): installed packages' entry points, the files
in ``IQA_LAB_PLUGINS`` and every ``--plugin PATH``; one that fails stops the command
with its one line (file and line) and exit code 2 (a broken installed package only
warns: the rest of the lab still runs).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from engine.cli.common import add_plugin_option, load_plugins
from engine.core.errors import EXIT_USAGE, describe, epilog


def make_parser() -> argparse.ArgumentParser:
    """The parser of every command (light: nothing heavy is imported)."""
    from engine.cli import (calibrate, check, export, listing, new_plugin, report, run, schema, sma, train_fcn,
                            train_robust, train_uap)

    p = argparse.ArgumentParser(prog="main.py", description=(
        "Adversarial robustness lab for no-reference image-quality metrics. "
        "Without a command the desktop app starts."), epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    for add in (run.add_parser, listing.add_parser, export.add_parser, check.add_parser,
                report.add_report_parser, train_fcn.add_train_fcn_parser, train_robust.add_train_robust_parser,
                train_uap.add_train_uap_parser,
                calibrate.add_parser, sma.add_parser, new_plugin.add_parser, schema.add_parser):
        add(sub)
    for command in sub.choices.values():
        add_plugin_option(command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command inside the error boundary; the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        load_plugins(getattr(args, "plugin", None))
        return int(args.func(args) or 0)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the one boundary: every failure becomes a line + code
        message, code = describe(exc)
        print(f"error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
