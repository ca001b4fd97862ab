"""``python main.py report STORE --out DIR [--experiment ID]``."""
from __future__ import annotations

import argparse
import sys

from engine.core.errors import EXIT_OK, EXIT_STORE


def cmd_report(args: argparse.Namespace) -> int:
    from engine.results.report.build import build_report
    from engine.store.paths import store_file
    from engine.store.db import StoreError

    if not store_file(args.store).is_file():
        print(f"error: {args.store}: no result store (expected results.sqlite or a folder holding it)",
              file=sys.stderr)
        return EXIT_STORE
    try:
        path = build_report(args.store, args.out, args.experiment)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORE
    print(f"wrote {path}")
    return EXIT_OK


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` command to an ``argparse`` sub-parser set."""
    p = subparsers.add_parser("report", help="write a self-contained HTML report (plots, tables, CSVs) from a store")
    p.add_argument("store", help="results.sqlite or the folder holding it")
    p.add_argument("--out", required=True, help="folder for report.html, figures/ and the CSVs")
    p.add_argument("--experiment", default=None, help="experiment id or unique prefix (default: the latest)")
    p.set_defaults(func=cmd_report)
    return p
