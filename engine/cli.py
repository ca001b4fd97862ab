"""Headless command line: ``run``, ``list``, ``export`` (and ``report``, ``train-*``).

Exit codes: 0 success; 1 the run finished but some items failed; 2 bad usage or
configuration; 3 no item could be computed; 4 a store could not be read;
130 interrupted (finished items are kept; run the same command again to resume).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_ALL_FAILED, EXIT_STORE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class UsageError(Exception):
    pass


def _split(values: list[str] | None) -> list[str]:
    """``--metric a,b --metric c`` → [a, b, c]; commas inside ``[...]`` are kept."""
    out: list[str] = []
    for v in values or []:
        depth, cur = 0, ""
        for ch in v:
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
            if ch == "," and depth == 0:
                if cur.strip():
                    out.append(cur.strip())
                cur = ""
            else:
                cur += ch
        if cur.strip():
            out.append(cur.strip())
    return out


def _batch_size(text: str):
    from engine.batching import parse_batch_size

    try:
        return parse_batch_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_experiment(args: argparse.Namespace):
    """The experiment from ``--config`` (JSON) overridden by command-line options."""
    from engine.experiment import ComponentSpec, Experiment, find_images

    cfg: dict[str, Any] = {}
    if args.config:
        try:
            cfg = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read config {args.config}: {exc}") from None
    src = Path(args.images)
    if src.is_dir():
        images, root = find_images(src), str(src)
    elif src.is_file():
        images, root = [str(src)], str(src.parent)
    else:
        raise UsageError(f"{src}: no such file or folder")
    if not images:
        raise UsageError(f"{src}: no image files found (looked for .png, .jpg, .bmp, .tif, .webp, …)")
    try:
        metrics = [ComponentSpec.parse(m) for m in _split(args.metric)] or cfg.get("metrics")
        attacks = [ComponentSpec.parse(a) for a in _split(args.attack)] or cfg.get("attacks")
        defences = [ComponentSpec.parse(d) for d in _split(args.defence)] if args.defence is not None \
            else cfg.get("defences", [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not metrics:
        raise UsageError("no metric given (--metric NAME, see `main.py list`)")
    if not attacks:
        raise UsageError("no attack given (--attack NAME, see `main.py list`)")
    fields = {k: v for k, v in cfg.items() if k not in ("metrics", "attacks", "defences", "images", "root")}
    exp = Experiment(images=images, root=root, metrics=metrics, attacks=attacks, defences=defences,
                     **fields)
    for name in ("seed", "device", "mos_file", "eot_draws", "batch_size"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(exp, name, v)
    if exp.mos_file is None and src.is_dir():
        from engine.experiment import find_mos_file

        exp.mos_file = find_mos_file(src)
    if args.save_images:
        exp.save_images = True
    if args.adaptive:
        exp.adaptive = True
    _validate(exp)
    return exp


def _validate(exp) -> None:
    """Fail before running anything when a name, preset or parameter is wrong."""
    from engine.attacks import ATTACKS
    from engine.defences import DEFENCES
    from engine.metrics import list_metrics
    from engine.params import ParamError, make_params
    from engine.registry import UnknownComponent
    from engine.runtime import merged_params

    from engine.batching import parse_batch_size

    try:
        parse_batch_size(exp.batch_size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    known_metrics = set(list_metrics())
    for m in exp.metrics:
        if m.name not in known_metrics:
            raise UsageError(f"unknown metric {m.name!r} (see `main.py list`)")
    for registry, specs in ((ATTACKS, exp.attacks), (DEFENCES, exp.all_defences)):
        for spec in specs:
            try:
                cls = registry.get(spec.name)
                make_params(cls.Params, merged_params(cls, spec)) if cls.Params else None
            except (UnknownComponent, KeyError, ParamError) as exc:
                raise UsageError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.events import AttackStep, ItemFailed, ItemFinished, ItemStarted, RunFinished, RunStarted
    from engine.export import export_csv
    from engine.runner import CancelToken, run_experiment, store_path_for
    from engine.runtime import DeviceError, Runtime
    from engine.store import ResultStore

    try:
        exp = build_experiment(args)
        runtime = Runtime(exp.device)
    except (UsageError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    store = ResultStore(store_path_for(out))
    cancel = CancelToken()
    interrupted = {"n": 0}

    def on_sigint(signum, frame):  # first Ctrl-C: stop cleanly after the current step
        interrupted["n"] += 1
        cancel.cancel()
        if interrupted["n"] > 1:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint)
    bar = None
    summary = None
    try:
        for ev in run_experiment(exp, store, cancel=cancel, runtime=runtime):
            if isinstance(ev, RunStarted):
                print(f"experiment {ev.experiment_id}: {ev.total} items, {ev.total - ev.pending} already done, "
                      f"device {ev.device}; store {store.path}", file=sys.stderr)
                bar = tqdm(total=ev.pending, unit="item", disable=args.quiet, dynamic_ncols=True)
            elif isinstance(ev, ItemStarted) and bar is not None:
                bar.set_description(f"{ev.item.image_name[:24]} {ev.item.attack.name}")
            elif isinstance(ev, AttackStep) and bar is not None:
                bar.set_postfix(it=ev.step.iteration, score=f"{ev.step.score:.4g}", refresh=False)
            elif isinstance(ev, ItemFinished) and bar is not None:
                bar.update(1)
            elif isinstance(ev, ItemFailed):
                if bar is not None:
                    bar.update(1)
                    bar.write(f"failed: {ev.item.image_name} [{ev.stage}] {ev.error.splitlines()[0]}")
            elif isinstance(ev, RunFinished):
                summary = ev
    finally:
        signal.signal(signal.SIGINT, old)
        if bar is not None:
            bar.close()
    if not args.no_export:
        raw, summ = export_csv(store, out, exp.id)
        print(f"wrote {raw} and {summ}", file=sys.stderr)
    store.close()
    assert summary is not None
    print(f"finished {summary.finished}, failed {summary.failed}"
          f"{', cancelled — run the same command again to resume' if summary.cancelled else ''}",
          file=sys.stderr)
    if summary.cancelled:
        return EXIT_INTERRUPTED
    if summary.failed and not summary.finished and not store_has_done(out, exp.id):
        return EXIT_ALL_FAILED
    return EXIT_PARTIAL if summary.failed else EXIT_OK


def store_has_done(out: Path, exp_id: str) -> bool:
    from engine.runner import store_path_for
    from engine.store import ResultStore

    with ResultStore(store_path_for(out)) as s:
        return bool(s.done_item_ids(exp_id))


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import export_csv
    from engine.store import ResultStore, StoreError

    try:
        store = ResultStore(_store_file(args.store), readonly=True)
        raw, summary = export_csv(store, args.out, args.experiment)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORE
    print(f"wrote {raw} and {summary}")
    return EXIT_OK


def _store_file(path: str) -> Path:
    p = Path(path)
    return p / "results.sqlite" if p.is_dir() else p


def cmd_list(args: argparse.Namespace) -> int:
    from engine.listing import describe_all

    print(describe_all(as_json=args.json))
    return EXIT_OK


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", description=(
        "Adversarial robustness lab for no-reference image-quality metrics. "
        "Without a command the desktop app starts."))
    sub = p.add_subparsers(dest="command")

    r = sub.add_parser("run", help="run an experiment headless")
    r.add_argument("images", help="an image file or a folder of images")
    r.add_argument("--metric", action="append", help="metric name(s), comma separated (see `list`)")
    r.add_argument("--attack", action="append",
                   help="attack(s): name, name[preset] or name:param=value:… e.g. ifgsm:eps=4/255")
    r.add_argument("--defence", "--defense", action="append", help="defence(s), same syntax")
    r.add_argument("--out", required=True, help="output folder (results.sqlite, raw.csv, summary.csv)")
    r.add_argument("--config", help="experiment JSON; command-line options override it")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--save-images", action="store_true", help="save attacked/defended images as PNG")
    r.add_argument("--adaptive", action="store_true", help="attack the metric behind each defence (BPDA/EOT)")
    r.add_argument("--eot-draws", dest="eot_draws", type=int, default=None)
    r.add_argument("--batch", dest="batch_size", type=_batch_size, default=None, metavar="N|auto",
                   help="run up to N compatible images as one batch (default 1; auto: the "
                        "largest that fits on CUDA, 1 on the CPU); rows do not change")
    r.add_argument("--mos", dest="mos_file", default=None, help="CSV of image_name,mos for SROCC/PLCC")
    r.add_argument("--no-export", action="store_true", help="do not write the CSVs at the end")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    ls = sub.add_parser("list", help="list metrics, attacks and defences with their parameters")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    e = sub.add_parser("export", help="write raw.csv and summary.csv from a store")
    e.add_argument("store", help="results.sqlite or the folder holding it")
    e.add_argument("--out", required=True)
    e.add_argument("--experiment", default=None, help="experiment id (default: the latest)")
    e.set_defaults(func=cmd_export)

    _add_optional_parsers(sub)
    return p


def _add_optional_parsers(sub) -> None:
    """Commands contributed by other packages (report, trainers).

    Imported plainly: a wrong module path must fail here, not make a command vanish.
    """
    from engine.report.cli import add_report_parser
    from engine.training.cli import add_train_fcn_parser
    from engine.training.uap_cli import add_train_uap_parser

    for add in (add_report_parser, add_train_fcn_parser, add_train_uap_parser):
        add(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
