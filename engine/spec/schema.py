"""The one typed schema of an experiment: every field, its type and its range.

A ``--config`` JSON, the command-line values and an experiment built by the GUI are all
checked against :class:`ExperimentSchema` before anything starts
(:func:`check_config` for the raw JSON, :func:`experiment_problems` for a built
experiment, which :func:`engine.run.prepare.check` reports). A problem is one line naming
the key, the value and what is expected; an unknown key gets a did-you-mean. Component
parameters are checked against each component's own typed parameters by ``prepare``.
``python main.py schema`` writes :func:`json_schema` so an editor can check a config.

Example:
    >>> check_config({"metrcs": ["niqe"]})
    Traceback (most recent call last):
    ...
    engine.spec.schema.ConfigError: config: unknown key 'metrcs' (did you mean 'metrics'?)
"""
from __future__ import annotations

import json
import math
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from engine.core.errors import UsageError
from engine.spec.registry import did_you_mean

#: a parameter value: a finite number, a bool or text (checked further by the component)
Scalar = Union[StrictBool, StrictInt, float, StrictStr, None, list[Any]]


class ConfigError(UsageError):
    """An experiment field (config key or option) is missing, unknown or of a wrong value; exit 2."""


class ComponentSchema(BaseModel):
    """A metric, attack or defence as an object (the text form ``name[preset]`` or
    ``name:k=v`` is accepted too)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: StrictStr = Field(min_length=1, description="registry name (see `main.py list`)")
    params: dict[str, Scalar] = Field(default_factory=dict, description="parameter overrides")
    preset: StrictStr | None = Field(None, description="a named preset of the component")


Component = Union[StrictStr, ComponentSchema]


class ExperimentSchema(BaseModel):
    """An experiment (``engine.spec.experiment.Experiment``) as a config file writes it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, title="IQA Purification Lab experiment")
    images: list[StrictStr] = Field(default_factory=list, description="image paths (the CLI fills them from IMAGES)")
    root: StrictStr | None = Field(None, description="folder the image names are relative to")
    metrics: list[Component] = Field(default_factory=list, description="metrics, at least one (config or --metric)")
    attacks: list[Component] = Field(default_factory=list, description="attacks, at least one (config or --attack)")
    defences: list[Component] = Field(default_factory=list, description="defences (`none` is always evaluated)")
    seed: StrictInt = Field(0, ge=0, le=2**63 - 1, description="master seed, 0 … 2^63−1")
    adaptive: StrictBool = Field(False, description="attack the metric behind each defence")
    save_images: StrictBool = Field(False, description="save attacked/defended images as PNG")
    keep_attacked: StrictBool = Field(False, description="keep an exact float copy of each attacked image "
                                      "(12 bytes per pixel), so a defence added later reuses the attack")
    mos_file: StrictStr | None = Field(None, description="CSV image_name,mos")
    device: StrictStr = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto, cpu, mps, cuda or cuda:N")
    eot_draws: StrictInt = Field(1, ge=1, le=10_000, description="draws of a random defence, 1 … 10000")
    max_pixels: StrictInt = Field(40_000_000, ge=1, le=10**12, description="largest image in pixels, 1 … 1e12")
    batch_size: Union[StrictInt, Literal["auto"]] = Field(1, description="an integer 1 … 4096, or \"auto\"")
    budget: StrictStr | None = Field(None, description="linf-2/4/8/16, linf=4/255, psnr=40, ssim=0.98, time=1s, queries=1000")
    study: StrictStr | None = Field(None, description="a study's name (see `main.py run --help`)")
    protocol: Literal["lab", "msu"] | None = Field(None, description="evaluation protocol: lab or msu")
    plugins: list[StrictStr] = Field(default_factory=list,
                                     description="plug-in files or folders to load first (relative to the config)")
    plugin_code: dict[StrictStr, StrictStr] = Field(default_factory=dict,
                                                    description="filled by the lab: each plug-in component's code hash")


#: options whose command-line name differs from the key
OPTION_NAMES = {"eot_draws": "--eot-draws", "max_pixels": "--max-pixels", "batch_size": "--batch",
                "mos_file": "--mos", "save_images": "--save-images", "metrics": "--metric",
                "attacks": "--attack", "defences": "--defence"}


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "ComponentSchema", "int", "function-after[...]") or "[" in str(part):
            continue  # pydantic's union branch labels
        else:
            out += ("." if out else "") + str(part)
    return out


def _line(err: dict[str, Any], source: str) -> str:
    """One pydantic error as one line: the key, the value and what is expected."""
    key = _where(err["loc"])
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        parent = ExperimentSchema if len(err["loc"]) == 1 else ComponentSchema
        return f"{source}: unknown key {str(err['loc'][-1])!r}{did_you_mean(str(err['loc'][-1]), parent.model_fields)}"
    if err["type"] == "model_type" and not err["loc"]:
        return f"{source}: expected a JSON object of experiment fields, got {type(value).__name__} {_short(value)}"
    if err["type"] == "missing":
        return f"{source}: {key}: required"
    return f"{source}: {key} = {_short(value)}: {err['msg'][0].lower() + err['msg'][1:]}"


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _first_error(exc: ValidationError) -> dict[str, Any]:
    """The most telling error: unions report one per branch; prefer the object branch's."""
    errs = exc.errors()
    for err in errs:
        if err["type"] == "extra_forbidden":
            return err
    return errs[0]


def check_config(cfg: Any, source: str = "config") -> dict[str, Any]:
    """Check a config's JSON value against :class:`ExperimentSchema`.

    Returns:
        ``cfg`` (a dict) as given.

    Raises:
        ConfigError: one line naming the key, the value and what is expected.
    """
    if isinstance(cfg, dict):
        bad = _non_finite(cfg)
        if bad:
            raise ConfigError(f"{source}: {bad[0]} = {bad[1]}: expected a finite number")
    try:
        ExperimentSchema.model_validate(cfg)
    except ValidationError as exc:
        raise ConfigError(_line(_first_error(exc), source)) from None
    _check_batch(cfg.get("batch_size"), source)
    return cfg


def _check_batch(value: Any, source: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 4096:
        raise ConfigError(f"{source}: batch_size = {value}: expected an integer 1 … 4096, or \"auto\"")


def _non_finite(obj: Any, key: str = "") -> tuple[str, str] | None:
    """The first NaN or infinity in a JSON value, as (key, value)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return key, repr(obj)
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _non_finite(v, f"{key}.{k}" if key else str(k))
            if found:
                return found
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _non_finite(v, f"{key}[{i}]")
            if found:
                return found
    return None


def experiment_problems(fields: dict[str, Any]) -> list[str]:
    """The schema problems of a built experiment's fields (``Experiment.to_dict()``),
    each one line naming the option and its key; empty when it is valid. Component
    parameters are left to each component's typed parameters (``prepare.check``)."""
    fields = {k: ([_bare(c) for c in v] if k in ("metrics", "attacks", "defences") and isinstance(v, list) else v)
              for k, v in fields.items()}
    try:
        check_config(fields, "experiment")
    except ConfigError as exc:
        text = str(exc).removeprefix("experiment: ")
        key = text.split(" ", 1)[0].split(".", 1)[0]
        option = OPTION_NAMES.get(key, f"--{key.replace('_', '-')}")
        return [f"{option} ({text})"]
    return []


def _bare(component: Any) -> Any:
    return {k: v for k, v in component.items() if k != "params"} if isinstance(component, dict) else component


def json_schema() -> dict[str, Any]:
    """The experiment's JSON Schema (what ``python main.py schema`` writes)."""
    schema = ExperimentSchema.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
