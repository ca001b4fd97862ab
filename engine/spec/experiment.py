"""The experiment spec (typed, serialisable) and its expansion into work items.

An experiment is images × metrics × attacks × defences with every parameter and a seed.
It expands into :class:`WorkItem` s; running one (``engine.run.item.run_item``) is a pure
function of (item, experiment), so items can be resumed, skipped or shipped elsewhere.
One item = one image, one metric, one attack, evaluated under every defence (the attack
is computed once and shared); in ``adaptive`` mode the attack targets M∘D, so there is
one item per defence.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.core.seeds import canonical_json, derive_seed, short_hash
from engine.spec.identity import Contents, unit_id, unit_identity
from engine.spec.protocols import check_protocol
from engine.spec.replay import AttackReplay

@dataclass(frozen=True)
class ComponentSpec:
    """A metric, attack or defence by registry name, with parameter overrides.

    ``preset`` is the label the CSVs show (``attack_preset``/``defence_preset``); when a
    preset is named its overrides are applied first, then ``params``.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    preset: str | None = None

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComponentSpec) and self.key == other.key

    @property
    def key(self) -> str:
        return canonical_json({"name": self.name, "params": self.params, "preset": self.preset})

    @property
    def label(self) -> str:
        """Human label: ``name`` or ``name[preset]`` or ``name(k=v,…)``; a metric whose
        ``weights`` file came from ``train-robust`` is ``name+RECIPE#hash`` (its own row)."""
        if self.params.get("weights") and not self.preset:
            from engine.spec.recipes import robust_metric_label

            robust = robust_metric_label(self.name, self.params)
            if robust:
                return robust
        if self.preset:
            extra = "" if not self.params else "," + ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
            return f"{self.name}[{self.preset}{extra}]"
        if self.params:
            return f"{self.name}(" + ",".join(f"{k}={_fmt(v)}" for k, v in sorted(self.params.items())) + ")"
        return self.name

    @property
    def preset_label(self) -> str:
        """What goes in the ``*_preset`` CSV column."""
        if self.preset and not self.params:
            return self.preset
        if self.preset or self.params:
            return self.label[len(self.name):].strip("[]()")
        return "default"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.params:
            d["params"] = dict(self.params)
        if self.preset:
            d["preset"] = self.preset
        return d

    @classmethod
    def from_any(cls, v: "ComponentSpec | dict | str") -> "ComponentSpec":
        if isinstance(v, ComponentSpec):
            return v
        if isinstance(v, str):
            return cls.parse(v)
        return cls(v["name"], dict(v.get("params") or {}), v.get("preset"))

    @classmethod
    def parse(cls, text: str) -> "ComponentSpec":
        """Parse the CLI form ``name``, ``name[preset]`` or ``name:k=v:k=v``."""
        text = text.strip()
        preset = None
        if "[" in text and text.endswith("]"):
            text, preset = text[:-1].split("[", 1)
        name, *kvs = text.split(":")
        params: dict[str, Any] = {}
        for kv in kvs:
            if "=" not in kv:
                raise ValueError(f"expected key=value in {kv!r} (component {name!r})")
            k, v = kv.split("=", 1)
            params[k.strip()] = parse_scalar(v.strip())
        return cls(name.strip(), params, preset)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def parse_scalar(v: str) -> Any:
    """A parameter value typed as text: ``"4/255"`` → float, ``"7"`` → int, ``"0.5"`` →
    float, ``"true"``/``"false"`` → bool, anything else stays a string."""
    if "/" in v:  # allow eps=4/255
        a, b = v.split("/", 1)
        try:
            return float(a) / float(b)
        except (ValueError, ZeroDivisionError):
            return v
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v


NO_DEFENCE = ComponentSpec("none")


@dataclass
class Experiment:
    """Everything that determines the numbers of a run.

    Attributes:
        images: image file paths, in order.
        root: the folder image names are relative to (for the ``image_name`` column).
        metrics, attacks, defences: components; the identity defence ``none`` is always
            evaluated too (the undefended baseline row).
        seed: master seed; per-item seeds are derived from it and the item's identity.
        adaptive: ``False``: attack the bare metric once, evaluate every defence.
            ``True``: attack M∘D for each defence (BPDA/EOT where needed).
        save_images: also write attacked/defended images as PNG next to the store.
        keep_attacked: also keep an exact float copy of each attacked image next to the
            store (``attacked/<unit>.npy``, 12 bytes per pixel), so a defence added later
            reuses the attack instead of computing it again (:mod:`engine.spec.replay`).
        mos_file: optional CSV ``image_name,mos`` for SROCC/PLCC.
        device: ``auto``, ``cpu`` or ``cuda`` (recorded, not part of the identity).
        eot_draws: for random defences, how many draws to evaluate per item (≥ 1).
        max_pixels: larger images are refused with a clear error.
        batch_size: how many compatible items run as one batch (an int ≥ 1, or
            ``"auto"``); where it runs, not what it computes, so not part of the identity.
        budget: the perturbation budget the attacks were calibrated to (``linf-4``,
            ``psnr=40``, …; see :mod:`engine.spec.budgets`), or None.
        study: the study this experiment runs (:mod:`engine.spec.studies`), or None.
        protocol: the evaluation protocol (:mod:`engine.spec.protocols`): ``lab``
            (the attack's float image) or ``msu`` (MSU's defence_evaluate.py: the attacked
            image rounded to 8 bits before it is scored and defended).
        plugins: plug-in files or folders (:mod:`engine.plugins`) to load before it
            runs; a run records here the files its plug-in components came from (their
            hashes go to the store's manifest). Not part of the identity: the
            components' names and parameters are.
        plugin_code: component (``kind:label``) → the code that computes it: a plug-in
            file's (or a TorchScript model's) sha256, or a package's name and version.
            Part of the identity, so after editing a plug-in its items run again instead
            of being resumed; set by the pre-run path (``engine.run.prepare``).
    """

    images: list[str]
    metrics: list[ComponentSpec]
    attacks: list[ComponentSpec]
    defences: list[ComponentSpec] = field(default_factory=list)
    seed: int = 0
    root: str | None = None
    adaptive: bool = False
    save_images: bool = False
    keep_attacked: bool = False
    mos_file: str | None = None
    device: str = "auto"
    eot_draws: int = 1
    max_pixels: int = 40_000_000
    batch_size: int | str = 1
    budget: str | None = None
    study: str | None = None
    protocol: str = "lab"
    plugins: list[str] = field(default_factory=list)
    plugin_code: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_protocol(self.protocol)
        self.metrics = [ComponentSpec.from_any(m) for m in self.metrics]
        self.attacks = [ComponentSpec.from_any(a) for a in self.attacks]
        self.defences = [ComponentSpec.from_any(d) for d in self.defences]
        self.images = [str(p) for p in self.images]
        self.plugins = [str(p) for p in self.plugins or []]

    @property
    def all_defences(self) -> list[ComponentSpec]:
        """``none`` first, then the chosen defences (without duplicates)."""
        out = [NO_DEFENCE]
        for d in self.defences:
            if d not in out:
                out.append(d)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = [m.to_dict() for m in self.metrics]
        d["attacks"] = [a.to_dict() for a in self.attacks]
        d["defences"] = [x.to_dict() for x in self.defences]
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Experiment":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown experiment field(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "Experiment":
        return cls.from_dict(json.loads(text))

    @property
    def id(self) -> str:
        """Identity for resuming: everything that changes the numbers, not where it runs."""
        d = self.to_dict()
        for k in ("device", "save_images", "keep_attacked", "batch_size", "plugins"):
            d.pop(k, None)
        for k in ("budget", "study", "plugin_code"):  # ids of experiments from before these fields stay the same
            if not d.get(k):
                d.pop(k, None)
        if d.get("protocol") == "lab":  # likewise: the protocol all earlier experiments used
            d.pop("protocol")
        d["images"] = [self.image_name(p) for p in self.images]
        d.pop("root", None)
        return short_hash(d)

    def image_name(self, path: str) -> str:
        """The folder's own name of an image: its path under ``root`` with symbolic links
        not followed (a link is an image of its own, named after the link)."""
        if self.root:
            rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.root))
            if not rel.startswith(".."):
                return Path(rel).as_posix()
        return Path(path).name

    def unit_fields(self) -> dict[str, Any]:
        """The experiment-wide settings that change a unit's numbers (see
        :mod:`engine.spec.identity`)."""
        return {"seed": self.seed, "adaptive": self.adaptive, "eot_draws": self.eot_draws,
                "budget": self.budget, "protocol": self.protocol}

    def items(self, contents: Contents | None = None) -> list["WorkItem"]:
        """The work items, identified by ``contents`` (see :func:`expand`)."""
        return expand(self, contents)


@dataclass(frozen=True)
class WorkItem:
    """One unit of work: an image attacked on one metric, evaluated under defences."""

    index: int
    image: str
    image_name: str
    metric: ComponentSpec
    attack: ComponentSpec
    defences: tuple[ComponentSpec, ...]
    target_defence: ComponentSpec | None
    seed: int
    id: str
    content: str = ""
    #: the stored attack this item replays (a defence added later), else None
    replay: AttackReplay | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "image": self.image, "image_name": self.image_name,
                "metric": self.metric.to_dict(), "attack": self.attack.to_dict(),
                "defences": [d.to_dict() for d in self.defences],
                "target_defence": self.target_defence.to_dict() if self.target_defence else None,
                "seed": self.seed, "id": self.id, "content": self.content}

    @property
    def defence_labels(self) -> list[str]:
        return [d.label for d in self.defences]


def expand(exp: Experiment, contents: Contents | None = None) -> list[WorkItem]:
    """Images-major expansion, so an image finishes all its work before the next starts.

    Each item is identified by what it computes (:mod:`engine.spec.identity`): the
    image's content hash from ``contents`` — without one (not readable, or ``contents``
    not given) the image is identified by its name, ``name:<image_name>``. Two names
    with one content (a link and its target) give two items with one id: the work is
    done once and shown under both names.
    """
    contents = contents or Contents()
    items: list[WorkItem] = []
    defences = tuple(exp.all_defences)
    fields = exp.unit_fields()
    for path in exp.images:
        name = exp.image_name(path)
        content = contents.image(path) or f"name:{name}"
        for metric in exp.metrics:
            for attack in exp.attacks:
                groups: Iterable[tuple[tuple[ComponentSpec, ...], ComponentSpec | None]]
                if exp.adaptive:
                    groups = [((d,), d) for d in defences]
                else:
                    groups = [(defences, None)]
                for ds, target in groups:
                    target_key = target.key if target else None
                    seed = derive_seed(exp.seed, content, metric.key, attack.key, target_key)
                    parts = unit_identity(content=content, metric_key=metric.key,
                                          weights=contents.weights.get(metric.key), attack_key=attack.key,
                                          target_key=target_key, exp_fields=fields)
                    items.append(WorkItem(len(items), path, name, metric, attack, ds, target, seed,
                                          unit_id(parts), content))
    return items
