"""What pyiqa offers, learned without building a model or touching the network.

Everything here reads pyiqa's source files (``default_model_configs.py`` and the arch
modules' ``default_model_urls``) with :mod:`ast`, so listing all metrics and whether each
can run here takes milliseconds and does not even import pyiqa.

Which files a metric needs = its own checkpoint (chosen from its arch's
``default_model_urls`` by the config's options) + the backbone weights its arch loads on
construction (torchvision / timm / CLIP; a small table below, checked against pyiqa 0.1.16
by building every metric with downloads intercepted).
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from engine.metrics.base import Availability
from engine.core.bounds import msu_bounds
from engine.metrics.weights import WeightFile, pyiqa_weights_dir, torch_hub_checkpoints_dir

PYIQA_HF_BASE = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main"
PYIQA_GITHUB_BASE = "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights"
LLM_ENV = "IQA_LAB_ENABLE_LLM"

EXCLUDED: dict[str, str] = {
    "fid": "distribution distance between two image sets, not a per-image quality score",
    "sfid": "distribution distance between two image sets, not a per-image quality score",
    "fid_dinov2": "distribution distance between two image sets, not a per-image quality score",
    "inception_score": "score of an image set, not a per-image quality score",
    "clipscore": "image-caption agreement; needs a caption, not an image-quality metric",
}
"""pyiqa 'NR' entries that are not no-reference image-quality metrics."""

_LLM_PREFIXES = ("qalign", "qrealign", "compare2score")
_LLM_REASON = ("multimodal large language model (0.8–9 B parameters, many GB of weights from "
               "the Hugging Face hub, needs a large GPU); off by default — set "
               f"{LLM_ENV}=1 to enable")

NON_DIFFERENTIABLE = frozenset({"entropy", "piqe", "nrqm", "pi"})
"""Checked: their scores have no (or an all-zero) gradient w.r.t. the input."""

NOT_BATCH_SAFE: dict[str, str] = {}
"""Metrics whose score of an image depends on the rest of its batch (name → why): the
runner scores them one image at a time. pyiqa's eval paths were read for batch
statistics and batch-shared random crops (0.1.x: random crops are training-only), and
none was found; a metric that has one goes here."""

SPLIT_BATCH: dict[str, str] = {
    "brisque": "its SVM adds 774 support-vector terms of both signs (about ±1e4) in one "
               "matrix-vector product, whose rounding depends on the batch size: batched "
               "scores move by up to ~3e-3",
}
"""Per image in a batch but rounded differently from one image: scored image by image
(cheap on the CPU), so batched runs equal unbatched ones bit for bit."""

# Extra Python packages an arch imports beyond pyiqa's own requirements.
_ARCH_PACKAGES: dict[str, tuple[str, ...]] = {
    "QAlign": ("icecream", "transformers"),
    "QReAlign": ("transformers",),
    "Compare2Score": ("transformers",),
    "FGResQ": ("transformers",),
    "CLIPIQA": ("clip",), "LIQE": ("clip",), "QualiCLIP": ("clip",), "MACLIP": ("clip",),
    "LAIONAes": ("clip",),
    "HyperNet": ("timm",), "MANIQA": ("timm",), "NIMA": ("timm",), "CFANet": ("timm",),
}

_TV = "https://download.pytorch.org/models"
_TORCHVISION = {
    "resnet18": f"{_TV}/resnet18-f37072fd.pth",
    "resnet34": f"{_TV}/resnet34-b627a593.pth",
    "resnet50": f"{_TV}/resnet50-0676ba61.pth",
    "vgg16": f"{_TV}/vgg16-397923af.pth",
}
_TIMM_HF = {
    "resnet50": "timm/resnet50.a1_in1k",
    "inception_resnet_v2": "timm/inception_resnet_v2.tf_in1k",
    "vgg16": "timm/vgg16.tv_in1k",
    "vit_base_patch8_224": "timm/vit_base_patch8_224.augreg2_in21k_ft_in1k",
}
_SWIN_URL = ("https://github.com/SwinTransformer/storage/releases/download/v1.0.0/"
             "swin_base_patch4_window12_384_22kto1k.pth")
_FACE_DET_URL = ("https://github.com/xinntao/facexlib/releases/download/v0.1.0/"
                 "detection_Resnet50_Final.pth")
_CLIP_BACKBONE = {"CLIPIQA": "RN50", "LIQE": "ViT-B/32", "QualiCLIP": "RN50", "MACLIP": "RN50",
                  "LAIONAes": "ViT-L/14", "AFINE": "ViT-B/32"}
_CLIP_OPENAI_CACHE = {"LAIONAes", "AFINE"}  # these use openai-clip's loader (~/.cache/clip)


@dataclass(frozen=True)
class PyiqaEntry:
    """Static facts about one pyiqa no-reference metric."""

    name: str
    arch: str
    lower_better: bool
    bounds: tuple[float, float]
    bounds_source: str  # "msu" | "pyiqa" | "default"
    score_range: str
    differentiable: bool
    files: tuple[WeightFile, ...] = ()
    packages: tuple[str, ...] = ()
    disabled_reason: str = ""
    opts: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    batch_safe: bool = True
    split_batch: bool = False


def pyiqa_dir() -> Path | None:
    """pyiqa's package folder, found without importing it."""
    spec = importlib.util.find_spec("pyiqa")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def default_configs() -> dict[str, dict[str, Any]]:
    """pyiqa's ``DEFAULT_CONFIGS``, read from its file (no ``import pyiqa``: that takes s)."""
    root = pyiqa_dir()
    if root is None:
        return {}
    spec = importlib.util.spec_from_file_location("_iqa_lab_pyiqa_configs",
                                                  root / "default_model_configs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return dict(mod.DEFAULT_CONFIGS)


def pyiqa_available() -> bool:
    return pyiqa_dir() is not None


def llm_enabled() -> bool:
    return os.environ.get(LLM_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def is_llm(name: str) -> bool:
    return name.startswith(_LLM_PREFIXES)


@lru_cache(maxsize=1)
def nr_names() -> tuple[str, ...]:
    """Every pyiqa no-reference quality metric (pyiqa's NR list minus :data:`EXCLUDED`)."""
    return tuple(n for n, c in default_configs().items()
                 if c.get("metric_mode") == "NR" and n not in EXCLUDED)


def entry(name: str) -> PyiqaEntry:
    """Static facts for a pyiqa NR metric. Raises ``KeyError`` for other names."""
    return _entry(name)


@cache
def _entry(name: str) -> PyiqaEntry:
    if name not in nr_names():
        raise KeyError(name)
    cfg = default_configs()[name]
    opts = dict(cfg["metric_opts"])
    arch = opts.pop("type")
    lower_better = bool(cfg.get("lower_better", False))
    score_range = str(cfg.get("score_range", ""))
    bounds, source = resolve_bounds(name, lower_better, score_range)
    disabled = _LLM_REASON if is_llm(name) and not llm_enabled() else ""
    return PyiqaEntry(name, arch, lower_better, bounds, source, score_range,
                      name not in NON_DIFFERENTIABLE, tuple(required_files(name, arch, opts)),
                      _ARCH_PACKAGES.get(arch, ()), disabled, opts,
                      batch_safe=name not in NOT_BATCH_SAFE, split_batch=name in SPLIT_BATCH)


# --------------------------------------------------------------------------- bounds

def parse_score_range(text: str) -> tuple[float | None, float | None]:
    """``"~0, ~100"`` → (0, 100); ``"0, ~"`` → (0, None)."""
    parts = [p.strip().lstrip("~").strip() for p in text.split(",")]
    out: list[float | None] = []
    for p in parts[:2]:
        try:
            out.append(float(p))
        except ValueError:
            out.append(None)
    while len(out) < 2:
        out.append(None)
    return out[0], out[1]


def resolve_bounds(name: str, lower_better: bool,
                   score_range: str) -> tuple[tuple[float, float], str]:
    """``(worst, best)`` for a pyiqa metric and where it came from.

    MSU bounds are used when they exist for this metric (or its family, e.g.
    ``niqe_matlab`` → ``niqe``) *and* lie on the scale pyiqa declares: pyiqa's ``dbcnn``
    and ``hyperiqa`` output 0–1 while MSU's bounds are for 0–100 versions, so those keep
    pyiqa's range.
    """
    lo, hi = parse_score_range(score_range)
    msu = msu_bounds(name)
    if msu is not None and _same_scale(msu, lo, hi):
        return (float(msu[0]), float(msu[1])), "msu"
    if lo is not None and hi is not None and hi > lo:
        return ((hi, lo) if lower_better else (lo, hi)), "pyiqa"
    return ((100.0, 0.0) if lower_better else (0.0, 100.0)), "default"


def _same_scale(msu: tuple[float, float], lo: float | None, hi: float | None) -> bool:
    if lo is None or hi is None or hi <= lo:
        return True
    span = hi - lo
    return min(msu) >= lo - 0.5 * span and max(msu) <= hi + 0.5 * span


# --------------------------------------------------------------------------- files

def _hf(name: str) -> str:
    return f"{PYIQA_HF_BASE}/{name}"


@lru_cache(maxsize=1)
def _arch_index() -> dict[str, Path]:
    """Registered arch class name → source file, by a cheap text scan of pyiqa/archs."""
    root = pyiqa_dir()
    index: dict[str, Path] = {}
    if root is None:
        return index
    pat = re.compile(r"@ARCH_REGISTRY\.register\([^)]*\)\s*\nclass\s+(\w+)")
    for path in sorted((root / "archs").glob("*_arch.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for cls in pat.findall(text):
            index.setdefault(cls, path)
    return index


@cache
def _module_dict_literal(path: Path, var: str) -> dict[str, str]:
    """Evaluate ``var = {...}`` in ``path`` where values are URLs or get_url_from_name()."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == var for t in node.targets):
            if not isinstance(node.value, ast.Dict):
                return {}
            out = {}
            for k, v in zip(node.value.keys, node.value.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    url = _url_of(v)
                    if url:
                        out[k.value] = url
            return out
    return {}


def _url_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "get_url_from_name":
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        kw = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
        fname = kw.get("name", args[0] if args else None)
        if not isinstance(fname, str):
            return None
        if kw.get("base_url"):
            return f"{kw['base_url']}/{fname}"
        store = kw.get("store_base", args[1] if len(args) > 1 else "hugging_face")
        return f"{PYIQA_GITHUB_BASE}/{fname}" if store == "github" else _hf(fname)
    return None


def arch_model_urls(arch: str) -> dict[str, str]:
    """The ``default_model_urls`` dict of the module defining ``arch`` (static read)."""
    path = _arch_index().get(arch)
    return _module_dict_literal(path, "default_model_urls") if path else {}


def _main_keys(name: str, arch: str, opts: dict[str, Any], urls: dict[str, str]) -> list[str]:
    """Which ``default_model_urls`` entries the metric's constructor loads."""
    if arch == "MetaIQA":
        return ["meta-infer-ready"]
    if arch == "NIMA":
        base, data = opts.get("base_model_name", "inception_resnet_v2"), opts.get("train_dataset", "ava")
        return [f"{base}-{data}"]
    if arch == "DBCNN":
        return ["scnn", str(opts.get("pretrained", "koniq"))]
    if arch == "ARNIQA":
        return ["ARNIQA", str(opts.get("regressor_dataset", "koniq"))]
    if arch == "FGResQ":
        return ["degradation", "fgresq"]
    keys = [v for v in opts.values() if isinstance(v, str) and v in urls]
    if keys:
        return keys[:1]
    if name in urls:
        return [name]
    if arch == "CLIPIQA":  # plain clipiqa has only fixed prompts
        return []
    if "url" in urls:
        return ["url"]
    if len(urls) == 1:
        return list(urls)
    return []


def _clip_file(arch: str, opts: dict[str, Any]) -> WeightFile | None:
    backbone = opts.get("backbone", _CLIP_BACKBONE.get(arch))
    if not backbone:
        return None
    root = pyiqa_dir()
    models = _module_dict_literal(root / "archs" / "clip_model.py", "_MODELS") if root else {}
    url = models.get(backbone)
    if not url:
        return None
    if arch in _CLIP_OPENAI_CACHE:
        folder = Path(os.path.expanduser("~/.cache/clip"))
    else:
        import torch.hub
        folder = Path(torch.hub.get_dir()) / "clip"
    return WeightFile(os.path.basename(url), url, str(folder))


def _backbone_files(name: str, arch: str, opts: dict[str, Any]) -> list[WeightFile]:
    from engine.metrics.intercept import hf_weight_file
    tv = torch_hub_checkpoints_dir()

    def torchvision(model: str) -> WeightFile:
        url = _TORCHVISION[model]
        return WeightFile(os.path.basename(url), url, str(tv))

    if arch in ("ARNIQA", "TReS"):
        return [torchvision("resnet50")]
    if arch == "DBCNN":
        return [torchvision("vgg16")]
    if arch == "PAQ2PIQ":
        return [torchvision(opts.get("backbone", "resnet18"))]
    if arch == "UNIQUE":
        return [torchvision("resnet34")]
    if arch == "HyperNet":
        return [hf_weight_file(_TIMM_HF[opts.get("base_model_name", "resnet50")])]
    if arch == "MANIQA":
        return [hf_weight_file(_TIMM_HF["vit_base_patch8_224"])]
    if arch == "NIMA":
        repo = _TIMM_HF.get(opts.get("base_model_name", "inception_resnet_v2"))
        return [hf_weight_file(repo)] if repo else []
    if arch == "CFANet":
        sem = str(opts.get("semantic_model_name", "resnet50"))
        out = ([WeightFile(os.path.basename(_SWIN_URL), _SWIN_URL, str(tv))] if "swin" in sem
               else [hf_weight_file(_TIMM_HF[sem])] if sem in _TIMM_HF else [])
        if "face" in name:
            out.append(WeightFile(os.path.basename(_FACE_DET_URL), _FACE_DET_URL,
                                  str(pyiqa_weights_dir())))
        return out
    if arch == "PI":  # PI = NRQM and NIQE together
        return (_main_files("nrqm", "NRQM", {}) + _main_files("niqe", "NIQE", {}))
    clip = _clip_file(arch, opts)
    return [clip] if clip else []


def _main_files(name: str, arch: str, opts: dict[str, Any]) -> list[WeightFile]:
    urls = arch_model_urls(arch)
    folder = str(pyiqa_weights_dir())
    out = []
    for key in _main_keys(name, arch, opts, urls):
        url = urls.get(key)
        if url:
            out.append(WeightFile(os.path.basename(url), url, folder))
    return out


def required_files(name: str, arch: str | None = None,
                   opts: dict[str, Any] | None = None) -> list[WeightFile]:
    """Every file a pretrained build of pyiqa metric ``name`` reads (backbones first)."""
    if arch is None or opts is None:
        cfg = dict(default_configs()[name]["metric_opts"])
        arch = cfg.pop("type")
        opts = cfg
    files = _backbone_files(name, arch, opts) + _main_files(name, arch, opts)
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in files:
        if (f.folder, f.filename) not in seen:
            seen.add((f.folder, f.filename))
            unique.append(f)
    return unique


# --------------------------------------------------------------------------- availability

def missing_packages(packages: tuple[str, ...]) -> list[str]:
    return [p for p in packages if importlib.util.find_spec(p) is None]


def availability(name: str) -> Availability:
    """ready / needs-download / unavailable for a pyiqa metric, from local files only."""
    if not pyiqa_available():
        return Availability("unavailable", "package 'pyiqa' is not installed")
    e = entry(name)
    if e.disabled_reason:
        return Availability("unavailable", e.disabled_reason)
    missing_pkgs = missing_packages(e.packages)
    if missing_pkgs:
        return Availability("unavailable",
                            f"missing Python package(s): {', '.join(missing_pkgs)}")
    missing = [f for f in e.files if not f.present()]
    if missing:
        return Availability("needs-download", "missing: " + "; ".join(
            f"{f.filename} ({f.url} → {f.folder})" for f in missing))
    return Availability("ready")
