"""GPU check: the CUDA path of every defence, attack and a whole run, against the CPU.

Not a test (CI has no GPU): run it on a CUDA machine and read the JSON it writes.

    python bench/gpu_check.py --out gpu_check.json

1. Defences: every registered defence (neural ones on tiny random-weight models written
   in their authors' file layouts, as the tests build them) on the same photo, seed and
   parameters on the CPU and on CUDA: the output must stay on CUDA and match the CPU's
   (random defences draw on a CPU generator, so the draw is the same on both).
2. Attacks: every attack against random-weight Linearity (``--metric``) on CUDA: the adversarial image
   stays on CUDA, within its L∞ budget, and the score goes up.
3. A whole experiment (three photos × Linearity/NIQE × I-FGSM/Korhonen × defences, EOT 2)
   with device=cuda and again with device=cpu: every item finishes on both, and the
   clean scores agree.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


DEV = "cuda"  # --device cpu runs the same checks on the CPU (to try the script without a GPU)


def _sync() -> None:
    if DEV.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn):
    _sync()
    t0 = time.perf_counter()
    out = fn()
    _sync()
    return out, time.perf_counter() - t0


def _neural_weights(folder: Path) -> dict[str, dict[str, Any]]:
    """Tiny random-weight neural purifiers in their authors' layouts; defence → params."""
    params: dict[str, dict[str, Any]] = {}
    from tests.engine.defences import test_neural

    test_neural._save_release(test_neural._compact(0), folder / "realesr-general-x4v3.pth")
    test_neural._save_release(test_neural._compact(1), folder / "realesr-general-wdn-x4v3.pth")
    params["realesrgan"] = {}
    ddpm = test_neural._tiny_ddpm(folder / "ddpm")
    params["diffpure"] = {"model": str(ddpm), "t": 10}
    try:
        from tests.engine.defences import test_mprnet

        test_mprnet._save_like_authors(test_mprnet._tiny_mprnet(0), folder / "model_denoising.pth")
        params["mprnet"] = {}
    except Exception:  # noqa: BLE001 - spandrel-extra-arches missing: reported as unavailable
        pass
    from tests.engine.defences import test_disco

    spec = test_disco._spec()
    net = test_disco._tiny(0)
    test_disco._save(net, spec, folder / "disco_pgd.pth")
    params["disco"] = {}
    from engine.defences.fcn import CHECKPOINT_FORMAT, FCNFilter

    torch.manual_seed(0)
    torch.save({"format": CHECKPOINT_FORMAT, "arch": {"residual": False}, "state_dict": FCNFilter().state_dict(),
                "manifest": {}}, folder / "fcn.pt")
    params["fcn"] = {"checkpoint": str(folder / "fcn.pt")}
    params["chain"] = {}
    return params


def check_defences(x: torch.Tensor, weights: Path) -> list[dict[str, Any]]:
    from engine.defences import DEFENCES

    extra = _neural_weights(weights)
    extra.update(_adm_params(weights))
    out = []
    for name in DEFENCES.names():
        cls = DEFENCES.get(name)
        variants = [(name, extra.get(name, {}))]
        if name == "diffpure" and "diffpure-adm" in extra:
            variants.append(("diffpure-adm", extra["diffpure-adm"]))
        for label, p in variants:
            rec: dict[str, Any] = {"defence": label, "params": p}
            try:
                av = cls.availability(p)
                if not av.ok:
                    rec.update(status="unavailable", reason=av.reason)
                    out.append(rec)
                    continue
                y_cpu = cls(**p)(x, seed=7)
                d = cls(**p).to(DEV)
                xc = x.to(DEV)
                d(xc, seed=7)  # warm-up (loads, kernels)
                y_gpu, secs = _timed(lambda d=d, xc=xc: d(xc, seed=7))
                diff = float((y_gpu.cpu() - y_cpu).abs().max())
                same_draw = float((d(xc, seed=7) - y_gpu).abs().max())
                rec.update(status="ok", on_device=y_gpu.device.type == torch.device(DEV).type, shape_ok=tuple(y_gpu.shape) == tuple(x.shape),
                           max_abs_diff_vs_cpu=diff, repeat_diff=same_draw, seconds=secs,
                           random=bool(cls.random), differentiable=bool(cls.differentiable))
                if cls.differentiable:
                    xg = xc.clone().requires_grad_(True)
                    d(xg, seed=7).mean().backward()
                    rec["grad_finite_nonzero"] = bool(torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0)
            except Exception as exc:  # noqa: BLE001
                rec.update(status="error", error=f"{type(exc).__name__}: {exc}",
                           trace=traceback.format_exc(limit=3))
            out.append(rec)
    return out


def _adm_params(folder: Path) -> dict[str, dict[str, Any]]:
    """A tiny OpenAI-ADM checkpoint (the paper's DiffPure model family), as the tests build it."""
    from tests.engine.defences.test_diffpure_adm import _save_tiny_adm

    path, _ = _save_tiny_adm(folder)
    return {"diffpure-adm": {"model": str(path), "t": 10}}


def check_attacks(x: torch.Tensor, metric_name: str) -> list[dict[str, Any]]:
    from engine.attacks import ATTACKS, run_to_end
    from engine.spec.experiment import ComponentSpec
    from engine.metrics import create_metric

    spec = ComponentSpec.parse(metric_name)
    metric = create_metric(spec.name, device=DEV, **spec.params)
    xc = x.to(DEV)
    out = []
    for name in ATTACKS.names():
        rec: dict[str, Any] = {"attack": name}
        if ATTACKS.get(name).universal:  # uap, cumulative-uap, generative-uap
            rec.update(status="skipped", reason="needs a trained perturbation (train-uap)")
            out.append(rec)
            continue
        try:
            atk = ATTACKS.get(name)()
            gen = torch.Generator().manual_seed(0)
            outcome, secs = _timed(lambda atk=atk, gen=gen: run_to_end(atk.run(xc, metric, generator=gen)))
            img = outcome.image
            eps = getattr(atk.params, "eps", None)
            linf = float((img - xc).abs().max())
            clean, final = float(outcome.steps[0].score), float(metric.score(img).mean())
            better = (final - clean) * metric.sign > 0
            rec.update(status="ok", on_device=img.device.type == torch.device(DEV).type, linf=linf, eps=eps or None,
                       within_eps=(not eps or linf <= float(eps) + 1e-5), clean=clean, attacked=final,
                       improved=bool(better), steps=len(outcome.steps), seconds=secs)
        except Exception as exc:  # noqa: BLE001
            rec.update(status="error", error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc(limit=3))
        out.append(rec)
    return out


def check_run(folder: Path, work: Path, metric_name: str) -> dict[str, Any]:
    from engine.core.events import ItemFailed
    from engine.spec.experiment import Experiment
    from engine.spec.folders import find_images
    from engine.run.driver import run_experiment
    from engine.store.db import ResultStore

    metrics = [metric_name]
    try:
        import pyiqa  # noqa: F401

        metrics.append("niqe")
    except Exception:  # noqa: BLE001 - pyiqa missing or broken there: Linearity alone
        pass
    metrics = list(dict.fromkeys(metrics))
    result: dict[str, Any] = {"metrics": metrics}
    clean: dict[str, dict[tuple[str, str], float]] = {}
    for device in (DEV, "cpu"):
        # the CPU pass only re-scores the clean images (one cheap attack step, no defences)
        full = device == DEV and len(result) == 1
        exp = Experiment(images=find_images(folder), root=str(folder), metrics=metrics,
                         attacks=["ifgsm", "korhonen"] if full else ["ifgsm:iters=1"],
                         defences=["jpeg", "median-blur", "resize", "diffjpeg", "random-crop", "random-noise"]
                         if full else [], seed=0, device=device, eot_draws=2 if full else 1)
        store = ResultStore(work / f"{device}-{len(result)}" / "results.sqlite")
        failures = []
        t0 = time.perf_counter()
        gen = run_experiment(exp, store)
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                fin = stop.value
                break
            if isinstance(ev, ItemFailed):
                failures.append(f"{ev.item.image_name}/{ev.item.metric.label}/{ev.item.attack.label}: {ev.error}")
        rows = store.rows()
        errors = [r.get("error") for r in rows if r.get("error")]
        result[device if full else "cpu-clean"] = {"seconds": time.perf_counter() - t0, "rows": len(rows), "failed_items": failures,
                          "row_errors": errors[:5], "finished": getattr(fin, "done", None)}
        clean["full" if full else "cpu"] = {(r["image_name"], r["metric"]): float(r["clear"]) for r in rows
                         if r.get("defence") == "none" and r.get("clear") is not None}
        store.close()
    common = set(clean["full"]) & set(clean["cpu"])
    rel = [abs(clean["full"][k] - clean["cpu"][k]) / max(1e-6, abs(clean["cpu"][k])) for k in common]
    result["clean_score_max_rel_diff_vs_cpu"] = max(rel) if rel else None
    result["clean_scores_compared"] = len(common)
    result["clean_scores"] = {f"{img}/{m}": {"device": clean["full"][(img, m)], "cpu": clean["cpu"][(img, m)]}
                              for img, m in sorted(common)}
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gpu_check.json")
    p.add_argument("--size", type=int, default=256, help="photo side (default 256)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu to try the script")
    p.add_argument("--metric", default="linearity:pretrained=false",
                   help="metric attacked (default: random-weight Linearity)")
    args = p.parse_args()
    global DEV
    DEV = args.device
    if DEV.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    from tests.conftest import photo, photo_tensor

    report: dict[str, Any] = {"torch": torch.__version__,
                              "device": torch.cuda.get_device_name(0) if DEV.startswith("cuda") else "cpu",
                              "python": platform.python_version()}
    x = torch.cat([photo_tensor(n, (args.size, args.size)) for n in ("astronaut", "coffee")])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "weights").mkdir()
        os.environ["IQA_LAB_WEIGHTS"] = str(tmp / "weights")
        for section, fn in (("defences", lambda: check_defences(x, tmp / "weights")),
                            ("attacks", lambda: check_attacks(x, args.metric))):
            t0 = time.perf_counter()
            try:
                report[section] = fn()
            except Exception as exc:  # noqa: BLE001
                report[section] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            print(f"{section}: {time.perf_counter() - t0:.1f}s", flush=True)
            Path(args.out).write_text(json.dumps(report, indent=1, default=str))
        from PIL import Image

        folder = tmp / "photos"
        folder.mkdir()
        for n in ("astronaut", "coffee", "chelsea"):
            Image.fromarray(photo(n, (args.size, args.size))).save(folder / f"{n}.png")
        t0 = time.perf_counter()
        try:
            report["run"] = check_run(folder, tmp / "runs", args.metric)
        except Exception as exc:  # noqa: BLE001
            report["run"] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        print(f"run: {time.perf_counter() - t0:.1f}s", flush=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    bad = [d for d in report.get("defences", []) if isinstance(d, dict) and d.get("status") == "error"]
    bad += [a for a in report.get("attacks", []) if isinstance(a, dict) and a.get("status") == "error"]
    print(json.dumps({"defence_errors": [b.get("defence") for b in bad if "defence" in b],
                      "attack_errors": [b.get("attack") for b in bad if "attack" in b]}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
