"""``python main.py run IMAGES --metric M --attack A [--defence D] --out DIR``: an experiment, headless.

The experiment comes from ``--config`` (JSON) overridden by the options; the one pre-run
path (:func:`engine.run.prepare.prepare`: names and parameters, components available,
budget calibration, disk space) runs before anything is computed, the driver runs the
items with a progress bar, and the CSVs are written at the end.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from engine.cli.common import batch_size, device_arg, out_folder, pixels, split_names
from engine.core.errors import (EXIT_ALL_FAILED, EXIT_DISK_FULL, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL,
                                DiskFullError, UsageError, epilog, is_disk_full)
from engine.run.prepare import PRESETS_NAME  # light: the spec and the errors, no torch


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``run`` command and its options."""
    from engine.spec.studies import list_studies

    r = sub.add_parser("run", help="run an experiment headless", epilog=epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("images", help="an image file or a folder of images")
    r.add_argument("--metric", action="append", help="metric name(s), comma separated (see `list`)")
    r.add_argument("--attack", action="append",
                   help="attack(s): name, name[preset] or name:param=value:… e.g. ifgsm:eps=4/255")
    r.add_argument("--defence", "--defense", action="append", help="defence(s), same syntax")
    r.add_argument("--out", required=True, help="output folder (results.sqlite, raw.csv, summary.csv)")
    r.add_argument("--config", help="experiment JSON; command-line options override it")
    r.add_argument("--device", type=device_arg, default=None, help="auto, cpu, cuda or cuda:N")
    r.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where items run: in this process (default) or on Ray workers")
    r.add_argument("--ray-address", dest="ray_address", default=None, metavar="ADDR",
                   help="join a Ray cluster (auto, HOST:6379, or ray://HOST:10001 through Ray Client); "
                        "default: start one here")
    r.add_argument("--workers", type=int, default=None,
                   help="Ray workers, ≥ 1 (default: one per GPU, else one per node sharing its cores)")
    r.add_argument("--seed", type=int, default=None, help="master seed, 0 … 2^63−1 (default 0)")
    r.add_argument("--save-images", action="store_true", help="save attacked/defended images as PNG")
    r.add_argument("--keep-attacked", dest="keep_attacked", action="store_true",
                   help="keep an exact float copy of each attacked image in OUT/attacked (12 bytes per "
                        "pixel), so a defence added later reuses the attack instead of computing it again")
    r.add_argument("--adaptive", action="store_true", help="attack the metric behind each defence (BPDA/EOT)")
    r.add_argument("--eot-draws", dest="eot_draws", type=int, default=None,
                   help="draws of each random defence, 1 … 10000 (default 1)")
    r.add_argument("--max-pixels", dest="max_pixels", type=pixels, default=None,
                   help="refuse larger images (default 40000000; 40M, 1e8 also work)")
    r.add_argument("--batch", dest="batch_size", type=batch_size, default=None, metavar="N|auto",
                   help="run up to N compatible images as one batch (default 1; auto: the "
                        "largest that fits on CUDA, 1 on the CPU); rows do not change")
    r.add_argument("--mos", dest="mos_file", default=None, help="CSV of image_name,mos for SROCC/PLCC")
    r.add_argument("--no-export", action="store_true", help="do not write the CSVs at the end")
    r.add_argument("-q", "--quiet", action="store_true")
    r.add_argument("--budget", default=None,
                            help="calibrate every attack to this budget first (linf-2/4/8/16, linf=4/255, "
                                 "psnr=40, ssim=0.98; or equal cost per image: time=1s, queries=1000); rows record "
                                 "it and what each image reached")
    r.add_argument("--budget-presets", default=None,
                            help=f"calibrated presets to use and extend (default OUT/{PRESETS_NAME})")
    r.add_argument("--study", default=None, choices=list_studies(),
                            help="run a study's grid (its attacks × defences × presets) on the chosen metric")
    r.add_argument("--protocol", choices=["lab", "msu"], default=None,
                   help="evaluation protocol: lab (default; the attack's float image) or msu (MSU's "
                        "defence_evaluate.py: the attacked image rounded to 8 bits before scoring and "
                        "defending); a study names its own")
    r.add_argument("--survives-compression", type=int, default=None, metavar="Q",
                            help="also score the attacked image JPEG-compressed at quality Q, 1 … 100 (adds jpeg:q=Q; "
                                 "the leaderboard's survives-compression column)")
    r.add_argument("--ci", dest="ci_method", choices=["bootstrap", "t"], default="bootstrap",
                            help="95 %% intervals in the CSVs: image bootstrap (default) or the t-interval")
    r.set_defaults(func=cmd_run)
    return r


def build_experiment(args: argparse.Namespace):
    """The experiment from ``--config`` (JSON) overridden by command-line options."""
    from engine.spec.experiment import ComponentSpec, Experiment
    from engine.spec.folders import scan_images

    cfg: dict[str, Any] = {}
    if args.config:
        try:
            cfg = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read config {args.config}: {exc}") from None
        from engine.spec.schema import check_config

        check_config(cfg, f"config {args.config}")  # one line naming the key, exit 2
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
        from engine.spec.studies import StudyError, study_experiment_fields

        try:
            study = study_experiment_fields(args.study)
        except StudyError as exc:
            raise UsageError(str(exc)) from None
        cfg = {**cfg, **{k: v for k, v in study.items() if v or k == "defences"}}
    try:
        metrics = [ComponentSpec.parse(m) for m in split_names(args.metric)] or cfg.get("metrics")
        attacks = [ComponentSpec.parse(a) for a in split_names(args.attack)] or cfg.get("attacks")
        defences = [ComponentSpec.parse(d) for d in split_names(args.defence)] if args.defence is not None \
            else cfg.get("defences", [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if getattr(args, "survives_compression", None):  # MRB: score the attacked image JPEG-compressed
        defences = [*defences, ComponentSpec("jpeg", {"q": args.survives_compression})]
    if not metrics:
        raise UsageError("no metric given (--metric NAME, see `main.py list`)")
    if not attacks:
        raise UsageError("no attack given (--attack NAME, see `main.py list`)")
    fields = {k: v for k, v in cfg.items() if k not in ("metrics", "attacks", "defences", "images", "root", "plugins")}
    try:
        exp = Experiment(images=images, root=root, metrics=metrics, attacks=attacks, defences=defences,
                         plugins=_plugin_paths(args, cfg), **fields)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"config: {exc}") from None
    for name in ("seed", "device", "mos_file", "eot_draws", "max_pixels", "budget", "batch_size", "protocol"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(exp, name, v)
    if exp.mos_file is None and src.is_dir():
        from engine.spec.folders import find_mos_file

        exp.mos_file = find_mos_file(src)
    if args.save_images:
        exp.save_images = True
    if getattr(args, "keep_attacked", False):
        exp.keep_attacked = True
    if args.adaptive:
        exp.adaptive = True
    return exp


def _plugin_paths(args: argparse.Namespace, cfg: dict[str, Any]) -> list[str]:
    """The config's ``plugins`` (relative to the config file) and every ``--plugin``, absolute."""
    base = Path(args.config).resolve().parent if args.config else Path.cwd()
    out: list[str] = []
    for p in [*(base / Path(c).expanduser() for c in cfg.get("plugins") or []),
              *(Path(a).expanduser() for a in getattr(args, "plugin", None) or [])]:
        text = str(p.resolve())
        if text not in out:
            out.append(text)
    return out


def _say_skipped(folder: Path, skipped: dict[str, int]) -> None:
    """One line for the entries named like images that are not used."""
    why = {"hidden": "hidden (name starting with '.')", "folder": "folders named like an image"}
    if skipped:
        parts = ", ".join(f"{n} {why[k]}" for k, n in skipped.items())
        print(f"note: {folder}: skipped {sum(skipped.values())} entries: {parts}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    """Prepare (check, calibrate, size), run and export; the exit code."""
    from engine.run.backends import make_backend
    from engine.run.driver import store_path_for
    from engine.run.prepare import NotRunnable, check, prepare
    from engine.store.db import ResultStore

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected an integer ≥ 1")
    exp = build_experiment(args)
    problems = check(exp)  # refuse before an output folder or a back end exists
    if problems:
        raise NotRunnable(problems)
    out = out_folder(args.out)
    backend = make_backend(args.backend, device=exp.device, address=args.ray_address, workers=args.workers)
    try:
        with ResultStore(store_path_for(out)) as store:
            ready = prepare(exp, store, backend=backend, presets=getattr(args, "budget_presets", None),
                            log=lambda s: print(s, file=sys.stderr), checked=True)
            for warning in ready.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            return _run_into(args, ready.experiment, backend, out, store)
    finally:
        backend.close()


def _run_into(args: argparse.Namespace, exp, backend, out: Path, store) -> int:
    """Run ``exp`` into the open ``store`` with a progress bar; write the CSVs; the exit code."""
    from tqdm import tqdm

    from engine.core.events import AttackStep, ItemFailed, ItemFinished, ItemStarted, RunFinished, RunStarted
    from engine.run.driver import run_experiment
    from engine.run.units import CancelToken

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
                print(f"experiment {ev.experiment_id}: {ev.total} items, {ev.reused} reused from the store, "
                      f"{ev.pending} to compute, device {ev.device}; store {store.path}", file=sys.stderr)
                for note in ev.notes:
                    print(f"note: {note}", file=sys.stderr)
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
    for line in _eight_bit_lines(store.rows(exp.id)):
        print(line, file=sys.stderr)
    assert summary is not None
    print(f"finished {summary.finished}, failed {summary.failed}"
          f"{', cancelled — run the same command again to resume' if summary.cancelled else ''}",
          file=sys.stderr)
    if summary.cancelled:
        return EXIT_INTERRUPTED
    if summary.failed and not summary.finished and not store.done_item_ids(exp.id):
        return EXIT_ALL_FAILED
    return EXIT_PARTIAL if summary.failed else EXIT_OK


def _eight_bit_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per metric and attack: how often the attack's gain disappears when x_a is saved as 8-bit."""
    counts: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        if r.get("defence") == "none" and r.get("gain_lost_8bit") is not None:
            preset = r.get("attack_preset")
            attack = r.get("attack", "") + ("" if preset in (None, "", "default") else f"[{preset}]")
            c = counts.setdefault((r.get("metric", ""), attack), [0, 0])
            c[0] += bool(r["gain_lost_8bit"])
            c[1] += 1
    return [f"8-bit: {attack} on {metric}: the gain of {lost} of {n} attacked image(s) disappears when "
            f"saved as 8-bit ({100 * lost / n:.0f} %)" for (metric, attack), (lost, n) in counts.items()]


def _export(store, out: Path, exp_id: str, ci_method: str = "bootstrap") -> None:
    from engine.results.export import export_csv

    raw, summ = export_csv(store, out, exp_id, ci_method=ci_method)
    print(f"wrote {raw} and {summ}", file=sys.stderr)


def _export_what_fits(args: argparse.Namespace, store, out: Path, exp_id: str) -> None:
    """After a full disk: the CSVs of the finished items, if they still fit."""
    if args.no_export:
        return
    try:
        _export(store, out, exp_id, getattr(args, "ci_method", "bootstrap"))
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        print(f"note: the CSVs do not fit either; after freeing space, "
              f"`python main.py export {out} --out {out}` writes them", file=sys.stderr)
