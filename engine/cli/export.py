"""``python main.py export STORE --out DIR``: the CSVs of a stored experiment."""
from __future__ import annotations

import argparse

from engine.cli.common import out_folder
from engine.store.paths import store_file
from engine.core.errors import EXIT_OK, epilog


def add_parser(sub) -> argparse.ArgumentParser:
    e = sub.add_parser("export", help="write raw.csv and summary.csv from a store", epilog=epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("store", help="results.sqlite or the folder holding it")
    e.add_argument("--out", required=True)
    e.add_argument("--experiment", default=None, help="experiment id (default: the latest)")
    e.set_defaults(func=cmd_export)

    return e


def cmd_export(args: argparse.Namespace) -> int:
    from engine.results.export import export_csv
    from engine.store.db import ResultStore

    out = out_folder(args.out)
    with ResultStore(store_file(args.store), readonly=True) as store:
        raw, summary = export_csv(store, out, args.experiment)
    print(f"wrote {raw} and {summary}")
    return EXIT_OK
