"""Headless command line: ``run``, ``list``, ``export``, ``check`` (and ``report``, ``train-*``).

Every command runs inside one error boundary (:func:`main`): an expected failure prints
one line (what, which file, what to do) and exits with its code; a bug prints a short
message and the path of its saved traceback. The codes are :data:`engine.errors.EXIT_CODES`
(0 done, 1 some items failed, 2 bad usage, 3 nothing computed, 4 store unreadable,
5 disk full, 6 weights missing, 70 internal error, 130 interrupted).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from engine.errors import (EXIT_ALL_FAILED, EXIT_DISK_FULL, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL,  # noqa: F401
                           EXIT_STORE, EXIT_USAGE, DiskFullError, UsageError, describe, epilog)


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
    from engine.experiment import ComponentSpec, Experiment, scan_images

    cfg: dict[str, Any] = {}
    if args.config:
        try:
            cfg = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read config {args.config}: {exc}") from None
    src = Path(args.images)
    if src.is_dir():
        images, skipped = scan_images(src)
        root = str(src)
        _say_skipped(src, skipped)
    elif src.is_file():
        images, root = [str(src)], str(src.parent)
    else:
        raise UsageError(f"{src}: no such file or folder; give an image file or a folder of images")
    if not images:
        raise UsageError(f"{src}: no image files found (looked for .png, .jpg, .bmp, .tif, .webp, …)")
    if getattr(args, "study", None):  # the study's grid, under anything given explicitly
        from engine.studies import StudyError, study_experiment_fields

        try:
            study = study_experiment_fields(args.study)
        except StudyError as exc:
            raise UsageError(str(exc)) from None
        cfg = {**cfg, **{k: v for k, v in study.items() if v or k == "defences"}}
    try:
        metrics = [ComponentSpec.parse(m) for m in _split(args.metric)] or cfg.get("metrics")
        attacks = [ComponentSpec.parse(a) for a in _split(args.attack)] or cfg.get("attacks")
        defences = [ComponentSpec.parse(d) for d in _split(args.defence)] if args.defence is not None \
            else cfg.get("defences", [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if getattr(args, "survives_compression", None):  # MRB: score the attacked image JPEG-compressed
        defences = [*defences, ComponentSpec("jpeg", {"q": args.survives_compression})]
    if not metrics:
        raise UsageError("no metric given (--metric NAME, see `main.py list`)")
    if not attacks:
        raise UsageError("no attack given (--attack NAME, see `main.py list`)")
    fields = {k: v for k, v in cfg.items() if k not in ("metrics", "attacks", "defences", "images", "root")}
    try:
        exp = Experiment(images=images, root=root, metrics=metrics, attacks=attacks, defences=defences,
                         **fields)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"config: {exc}") from None
    for name in ("seed", "device", "mos_file", "eot_draws", "max_pixels", "budget", "batch_size", "protocol"):
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


def _say_skipped(folder: Path, skipped: dict[str, int]) -> None:
    """One line for the entries named like images that are not used."""
    why = {"hidden": "hidden (name starting with '.')", "folder": "folders named like an image"}
    if skipped:
        parts = ", ".join(f"{n} {why[k]}" for k, n in skipped.items())
        print(f"note: {folder}: skipped {sum(skipped.values())} entries: {parts}", file=sys.stderr)


def _validate(exp) -> None:
    """Fail before running anything when a name, preset or parameter is wrong."""
    from engine.attacks import ATTACKS
    from engine.defences import DEFENCES
    from engine.metrics import list_metrics
    from engine.params import ParamError, make_params
    from engine.registry import UnknownComponent
    from engine.runtime import merged_params

    from engine.batching import parse_batch_size
    from engine.registry import did_you_mean

    try:
        parse_batch_size(exp.batch_size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    known_metrics = list_metrics()
    for m in exp.metrics:
        if m.name not in known_metrics:
            raise UsageError(f"unknown metric {m.name!r}{did_you_mean(m.name, known_metrics)}; "
                             f"known: {', '.join(known_metrics)} (see `main.py list`)")
    for registry, specs in ((ATTACKS, exp.attacks), (DEFENCES, exp.all_defences)):
        for spec in specs:
            try:
                cls = registry.get(spec.name)
                make_params(cls.Params, merged_params(cls, spec)) if cls.Params else None
            except (UnknownComponent, KeyError, ParamError) as exc:
                # KeyError's str() quotes the message; its first argument is the text
                raise UsageError(exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)) from None


def _out_folder(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is a file; give a folder (new or existing) for "
                         "results.sqlite and the CSVs")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from engine.backends import make_backend
    from engine.runner import store_path_for
    from engine.runtime import Runtime
    from engine.store import ResultStore
    from engine.study_cli import PRESETS_NAME, apply_budget

    exp = build_experiment(args)
    out = _out_folder(args.out)
    backend = make_backend(args.backend, device=exp.device, address=args.ray_address, workers=args.workers)
    try:
        if exp.budget:  # calibrate here, on the driver: the presets file is next to the store
            runtime = getattr(backend, "runtime", None) or Runtime(exp.device)
            presets = Path(getattr(args, "budget_presets", None) or out / PRESETS_NAME)
            exp = apply_budget(exp, exp.budget, presets, runtime, lambda s: print(s, file=sys.stderr))
        with ResultStore(store_path_for(out)) as store:
            if exp.save_images:
                from engine.diskspace import space_warning

                warning = space_warning(exp, store)
                if warning:
                    print(f"warning: {warning}", file=sys.stderr)
            return _run_into(args, exp, backend, out, store)
    finally:
        backend.close()


def _run_into(args: argparse.Namespace, exp, backend, out: Path, store) -> int:
    """Run ``exp`` into the open ``store`` with a progress bar; write the CSVs; the exit code."""
    from tqdm import tqdm

    from engine.events import AttackStep, ItemFailed, ItemFinished, ItemStarted, RunFinished, RunStarted
    from engine.runner import CancelToken, run_experiment

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
    disk_full: DiskFullError | None = None
    try:
        for ev in run_experiment(exp, store, cancel=cancel, backend=backend):
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
    except DiskFullError as exc:
        disk_full = exc
    finally:
        signal.signal(signal.SIGINT, old)
        if bar is not None:
            bar.close()
    if disk_full is not None:
        _export_what_fits(args, store, out, exp.id)
        print(f"error: {disk_full}", file=sys.stderr)
        return EXIT_DISK_FULL
    if not args.no_export:
        _export(store, out, exp.id, getattr(args, "ci_method", "bootstrap"))
    assert summary is not None
    print(f"finished {summary.finished}, failed {summary.failed}"
          f"{', cancelled — run the same command again to resume' if summary.cancelled else ''}",
          file=sys.stderr)
    if summary.cancelled:
        return EXIT_INTERRUPTED
    if summary.failed and not summary.finished and not store.done_item_ids(exp.id):
        return EXIT_ALL_FAILED
    return EXIT_PARTIAL if summary.failed else EXIT_OK


def _export(store, out: Path, exp_id: str, ci_method: str = "bootstrap") -> None:
    from engine.export import export_csv

    raw, summ = export_csv(store, out, exp_id, ci_method=ci_method)
    print(f"wrote {raw} and {summ}", file=sys.stderr)


def _export_what_fits(args: argparse.Namespace, store, out: Path, exp_id: str) -> None:
    """After a full disk: the CSVs of the finished items, if they still fit."""
    from engine.errors import is_disk_full

    if args.no_export:
        return
    try:
        _export(store, out, exp_id, getattr(args, "ci_method", "bootstrap"))
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        print(f"note: the CSVs do not fit either; after freeing space, "
              f"`python main.py export {out} --out {out}` writes them", file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> int:
    from engine.export import export_csv
    from engine.store import ResultStore

    out = _out_folder(args.out)
    with ResultStore(_store_file(args.store), readonly=True) as store:
        raw, summary = export_csv(store, out, args.experiment)
    print(f"wrote {raw} and {summary}")
    return EXIT_OK


def _store_file(path: str) -> Path:
    p = Path(path)
    return p / "results.sqlite" if p.is_dir() else p


def cmd_list(args: argparse.Namespace) -> int:
    from engine.listing import describe_all

    print(describe_all(as_json=args.json))
    return EXIT_OK


def _device_arg(value: str) -> str:
    v = value.lower()
    if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise argparse.ArgumentTypeError(f"{value!r}: use auto, cpu, cuda or cuda:N")


def make_parser() -> argparse.ArgumentParser:
    from engine.study_cli import add_run_options

    p = argparse.ArgumentParser(prog="main.py", description=(
        "Adversarial robustness lab for no-reference image-quality metrics. "
        "Without a command the desktop app starts."), epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")

    r = sub.add_parser("run", help="run an experiment headless", epilog=epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("images", help="an image file or a folder of images")
    r.add_argument("--metric", action="append", help="metric name(s), comma separated (see `list`)")
    r.add_argument("--attack", action="append",
                   help="attack(s): name, name[preset] or name:param=value:… e.g. ifgsm:eps=4/255")
    r.add_argument("--defence", "--defense", action="append", help="defence(s), same syntax")
    r.add_argument("--out", required=True, help="output folder (results.sqlite, raw.csv, summary.csv)")
    r.add_argument("--config", help="experiment JSON; command-line options override it")
    r.add_argument("--device", type=_device_arg, default=None, help="auto, cpu, cuda or cuda:N")
    r.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where items run: in this process (default) or on Ray workers")
    r.add_argument("--ray-address", dest="ray_address", default=None, metavar="ADDR",
                   help="join a Ray cluster (auto, HOST:6379, or ray://HOST:10001 through Ray Client); "
                        "default: start one here")
    r.add_argument("--workers", type=int, default=None,
                   help="Ray workers (default: one per GPU, else one per node sharing its cores)")
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--save-images", action="store_true", help="save attacked/defended images as PNG")
    r.add_argument("--adaptive", action="store_true", help="attack the metric behind each defence (BPDA/EOT)")
    r.add_argument("--eot-draws", dest="eot_draws", type=int, default=None)
    r.add_argument("--max-pixels", dest="max_pixels", type=_pixels, default=None,
                   help="refuse larger images (default 40000000; 40M, 1e8 also work)")
    r.add_argument("--batch", dest="batch_size", type=_batch_size, default=None, metavar="N|auto",
                   help="run up to N compatible images as one batch (default 1; auto: the "
                        "largest that fits on CUDA, 1 on the CPU); rows do not change")
    r.add_argument("--mos", dest="mos_file", default=None, help="CSV of image_name,mos for SROCC/PLCC")
    r.add_argument("--no-export", action="store_true", help="do not write the CSVs at the end")
    r.add_argument("-q", "--quiet", action="store_true")
    add_run_options(r)
    r.set_defaults(func=cmd_run)

    ls = sub.add_parser("list", help="list metrics, attacks and defences with their parameters")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    e = sub.add_parser("export", help="write raw.csv and summary.csv from a store", epilog=epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("store", help="results.sqlite or the folder holding it")
    e.add_argument("--out", required=True)
    e.add_argument("--experiment", default=None, help="experiment id (default: the latest)")
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("check", help="check a store's integrity; --salvage copies what is readable",
                       epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("store", help="results.sqlite or the folder holding it")
    c.add_argument("--salvage", metavar="OUT", default=None,
                   help="copy every readable experiment, item and row into a new store OUT")
    c.set_defaults(func=cmd_check)

    _add_optional_parsers(sub)
    return p


def _pixels(text: str) -> int:
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


def cmd_check(args: argparse.Namespace) -> int:
    """Integrity check and readable counts; with ``--salvage`` a new store of what is readable."""
    from engine.store_check import check_store, salvage_store

    report = check_store(_store_file(args.store))
    print(report.text())
    if args.salvage:
        target = Path(args.salvage)
        target = target / "results.sqlite" if target.is_dir() else target
        counts = salvage_store(report.path, target)
        print(f"salvaged into {target}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        return EXIT_OK
    return EXIT_OK if report.ok else EXIT_STORE


def _add_optional_parsers(sub) -> None:
    """Commands contributed by other packages (report, trainers).

    Imported plainly: a wrong module path must fail here, not make a command vanish.
    """
    from engine.report.cli import add_report_parser
    from engine.study_cli import add_calibrate_parser
    from engine.training.cli import add_train_fcn_parser
    from engine.training.robust_cli import add_train_robust_parser
    from engine.training.uap_cli import add_train_uap_parser

    for add in (add_report_parser, add_train_fcn_parser, add_train_robust_parser, add_train_uap_parser,
                add_calibrate_parser):
        add(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command inside the error boundary; the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the one boundary: every failure becomes a line + code
        message, code = describe(exc)
        print(f"error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
