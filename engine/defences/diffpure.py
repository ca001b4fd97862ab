"""DiffPure (Nie et al., ICML 2022) with a DDPM: diffuse to step t*, denoise back.

The image is resized to the model's ``sample_size`` (square, bicubic, antialiased),
mapped to [−1, 1], noised in one go to ``x_t* = √ᾱ_t*·x + √(1 − ᾱ_t*)·ε`` and denoised
with t* ancestral DDPM steps (t* − 1, …, 0), then resized back. t* is counted in the
model's training steps (1000 for the usual DDPMs): the presets 5/10/20/30/50 are light
purification (DiffPure's ImageNet setting t* = 0.15 would be 150).

Model (``model``), one of:

- an OpenAI guided-diffusion (ADM) checkpoint, ``.pt``/``.pth``: a path, or a file name
  looked up in the weights folder. The default is the paper's model,
  ``256x256_diffusion_uncond.pt`` (unconditional ImageNet 256×256, from
  https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt,
  2.1 GB). It is converted on load to a diffusers ``UNet2DModel`` (engine/defences/_adm.py)
  and sampled as DiffPure's ``runners/diffpure_guided.py`` does with guided-diffusion's
  ``p_sample``: linear β 1e-4…0.02 over 1000 steps, the model's learned variance
  (``learned_range``; ``fixed_large`` for a model without learned σ, guided-diffusion's
  default) and x̂₀ clipped to [−1, 1] at every step. The training size is read from
  the file name (``{N}x{N}_…``, else 256) and attention heads are 64 channels wide, as in
  every released guided-diffusion model; class-conditional checkpoints are refused.
- a local diffusers folder (``UNet2DModel``, either at its root or in ``unet/`` as
  ``DDPMPipeline.save_pretrained`` writes it, scheduler config beside it), or
- a Hugging Face hub id, e.g. ``google/ddpm-ema-church-256`` (LSUN church, the closest
  of the diffusers-format DDPMs to natural photos). Hub ids are looked up only in the
  local caches (the weights folder's ``huggingface/`` and the default Hugging Face cache)
  unless ``allow_download`` is set.

Random: all noise comes from the per-item generator, so clean and attacked images get
the same draw. Not differentiable: adaptive attacks use BPDA.

MSU's ``diffpure/run.py`` (DiffPure's ``SDE_Adv_Model`` with ``runners/diffpure_guided.py``)
runs the same noising and sampler, but resizes to the model's 256×256 and back with
**bilinear** interpolation without anti-aliasing (``F.interpolate``, ``align_corners=False``),
maps back and clamps only at the end, and draws its noise with ``randn_like`` on the model's
device from the global generator that ``defence_evaluate.py`` seeds (``torch.manual_seed``)
before each call. The presets ``msu-literal t=…`` reproduce that (``resample="bilinear"``,
``draw="device"``). MSU also runs the UNet's torso in fp16 (``use_fp16``); this module
runs it in the model's float32.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from engine.defences._adm import ADM_UNCOND_256, ADM_UNCOND_256_URL
from engine.defences._neural import (
    NeuralDefence,
    fetch_weights,
    find_weights,
    missing_message,
    resize,
    weights_folder,
)
from engine.defences.base import DEFENCES, DefenceError, msu_reference, msu_sweep, sweep
from engine.metrics.weights import hf_cached_file
from engine.spec.params import param

DEFAULT_MODEL = ADM_UNCOND_256
#: MSU's five presets of t* (defence_presets.json)
T_STARS = [5, 10, 20, 30, 50]
ADM_SUFFIXES = (".pt", ".pth")


@dataclass
class DiffPureParams:
    t: int = param(5, min=1, max=1000, help="diffusion steps t* (of the model's training steps)")
    model: str = param(DEFAULT_MODEL, help="DDPM: a guided-diffusion .pt (path or name in the weights "
                                          "folder), a diffusers folder or a hub id")
    allow_download: bool = param(False, help="fetch a missing model (the default .pt, or a hub id) (needs network)")
    resample: str = param("bicubic", choices=("bicubic", "bilinear"),
                          help="resizing to the model's size and back: anti-aliased bicubic, or bilinear "
                               "without anti-aliasing (MSU's F.interpolate)")
    draw: str = param("cpu", choices=("cpu", "device"),
                      help="where the noise is drawn: the per-item CPU generator (the same on every device), "
                           "or a generator on the model's device seeded with the item's seed (MSU's "
                           "torch.manual_seed + randn_like on CUDA)")


def hub_cache_dir() -> Path:
    """Where hub models are cached inside the weights folder."""
    return weights_folder() / "huggingface"


def _local_layout(folder: Path) -> tuple[str | None, str | None] | None:
    """(unet subfolder, scheduler subfolder) of a diffusers folder, None if it is not one."""
    if (folder / "unet" / "config.json").is_file():
        return "unet", ("scheduler" if (folder / "scheduler" / "scheduler_config.json").is_file() else "")
    if (folder / "config.json").is_file():
        return None, (None if (folder / "scheduler_config.json").is_file() else "")
    return None


def _cached_hub_layout(repo: str) -> tuple[str | None, str | None, str | None] | None:
    """(cache dir, unet subfolder, scheduler subfolder) of a cached hub model, or None."""
    for cache in (str(hub_cache_dir()), None):
        for sub in (None, "unet"):
            if hf_cached_file(repo, f"{sub}/config.json" if sub else "config.json", cache) is not None:
                sched = "scheduler" if sub else None
                sname = f"{sched}/scheduler_config.json" if sched else "scheduler_config.json"
                has_sched = hf_cached_file(repo, sname, cache) is not None
                return cache, sub, (sched if has_sched else "")
    return None


def _is_adm(model: str) -> bool:
    return Path(model).suffix.lower() in ADM_SUFFIXES


def _adm_url(model: str) -> str | None:
    return ADM_UNCOND_256_URL if Path(model).name == ADM_UNCOND_256 else None


def _is_local(model: str) -> bool:
    p = Path(model).expanduser()
    return p.exists() or model.startswith((".", "/", "~")) or "\\" in model or model.count("/") != 1


def _missing_model(model: str) -> str | None:
    # find_spec, not import: importing diffusers takes seconds and availability is read
    # by `list` and the GUI's first window.
    if importlib.util.find_spec("diffusers") is None:
        return "diffpure needs the 'diffusers' package (pip install diffusers)"
    if _is_adm(model):
        if find_weights(model) is not None:
            return None
        url = _adm_url(model)
        if url is None:
            return (f"diffpure: guided-diffusion checkpoint {model!r} not found (neither that path nor "
                    f"{Path(model).name!r} in {weights_folder()})")
        return (missing_message(Path(model).name, url, "diffpure") + "; or name a diffusers DDPM folder or "
                "hub id in model (e.g. google/ddpm-ema-church-256)")
    if _is_local(model):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            return f"diffpure: model folder {str(folder)!r} not found"
        if _local_layout(folder) is None:
            return (f"diffpure: {str(folder)!r} is not a diffusers UNet2DModel folder "
                    "(no config.json at its root or in unet/)")
        return None
    if _cached_hub_layout(model) is None:
        return (f"diffpure: model {model!r} is not in the local cache; download "
                f"https://huggingface.co/{model} into {hub_cache_dir()} (e.g. `hf download {model} "
                f"--cache-dir {hub_cache_dir()}`; IQA_LAB_WEIGHTS sets the weights folder), name a local "
                "diffusers folder, or allow_download=true")
    return None


@DEFENCES.register("diffpure")
class DiffPureDefence(NeuralDefence):
    """DiffPure with a diffusers DDPM. Random (seeded), not differentiable.

    Example:
        >>> d = DiffPureDefence(t=10, model="models/ddpm-church-256")
        >>> y = d(x, seed=7)          # same size as x
    """

    Params = DiffPureParams
    presets = {**sweep("t", T_STARS), **msu_sweep("t", T_STARS, resample="bilinear", draw="device")}
    literal_presets = msu_reference("diffpure", presets)
    differentiable = False
    random = True

    @classmethod
    def missing(cls, params: Any) -> list[str]:
        reason = _missing_model(params.model)
        return [reason] if reason else []

    @classmethod
    def can_download(cls, params: Any) -> bool:
        if _is_adm(params.model):
            return bool(params.allow_download) and _adm_url(params.model) is not None
        return bool(params.allow_download) and not _is_local(params.model)

    def load(self) -> tuple[Any, Any]:
        model = self.params.model
        unet, scheduler = self._load_adm(model) if _is_adm(model) else self._load_diffusers(model)
        if unet.config.in_channels != 3:
            raise DefenceError(f"diffpure: {model!r} takes {unet.config.in_channels} channels, not RGB")
        if unet.config.out_channels not in (3, 6):
            raise DefenceError(f"diffpure: {model!r} predicts {unet.config.out_channels} channels "
                               "(expected ε, or ε and a variance)")
        if self.params.t > scheduler.config.num_train_timesteps:
            raise DefenceError(f"diffpure: t = {self.params.t} exceeds the model's "
                               f"{scheduler.config.num_train_timesteps} diffusion steps")
        return unet.eval().requires_grad_(False), scheduler

    def _load_diffusers(self, model: str) -> tuple[Any, Any]:
        from diffusers import DDPMScheduler, UNet2DModel

        if _is_local(model):
            src, cache, (unet_sub, sched_sub) = str(Path(model).expanduser()), None, _local_layout(Path(model).expanduser())
        else:
            hit = _cached_hub_layout(model)
            if hit is not None:
                cache, unet_sub, sched_sub = hit
            else:
                cache, unet_sub, sched_sub = str(hub_cache_dir()), None, None
            src = model
        offline = not self.params.allow_download
        try:
            unet = UNet2DModel.from_pretrained(src, subfolder=unet_sub, cache_dir=cache, local_files_only=offline)
            if sched_sub == "":
                scheduler = DDPMScheduler()
            else:
                scheduler = DDPMScheduler.from_pretrained(src, subfolder=sched_sub, cache_dir=cache,
                                                          local_files_only=offline)
        except Exception as exc:  # noqa: BLE001 - any loading failure is one user-facing message
            raise DefenceError(f"diffpure: cannot load model {model!r}: {type(exc).__name__}: {exc}") from None
        return unet, scheduler

    def _load_adm(self, model: str) -> tuple[Any, Any]:
        from diffusers import DDPMScheduler

        from engine.defences._adm import load_adm_unet

        path = find_weights(model)
        if path is None:
            url = _adm_url(model)
            if url is None or not self.params.allow_download:
                raise DefenceError(_missing_model(model) or f"diffpure: {model!r} not found")
            path = fetch_weights(Path(model).name, url, allow_download=True, what="diffpure")
        try:
            unet = load_adm_unet(path)
        except DefenceError as exc:
            raise DefenceError(f"diffpure: cannot load model {model!r}: {exc}") from None
        learned = unet.config.out_channels == 2 * unet.config.in_channels
        # guided-diffusion's linear schedule and p_sample(clip_denoised=True), as DiffPure runs it
        scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                                  clip_sample=True, clip_sample_range=1.0,
                                  variance_type="learned_range" if learned else "fixed_large")
        return unet, scheduler

    @staticmethod
    def move(model: tuple[Any, Any], device: torch.device) -> tuple[Any, Any]:
        unet, scheduler = model
        return unet.to(device), scheduler

    @property
    def sample_size(self) -> tuple[int, int]:
        size = self.model[0].config.sample_size or 256
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    @torch.no_grad()
    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        unet, scheduler = self.model
        p = self.params
        h, w = x.shape[-2:]
        dev = next(unet.parameters()).device
        bilinear = p.resample == "bilinear"
        if bilinear:  # MSU: F.interpolate, no anti-aliasing, no clamp
            z = (F.interpolate(x.to(dev), size=self.sample_size, mode="bilinear", align_corners=False) - 0.5) * 2.0
        else:
            z = resize(x.to(dev), self.sample_size) * 2.0 - 1.0
        gen = _device_generator(generator, dev) if p.draw == "device" else generator
        t_star = p.t
        if gen is not None and gen.device != torch.device("cpu"):
            noise = torch.randn(z.shape, generator=gen, device=gen.device, dtype=z.dtype)
        else:
            noise = torch.randn(z.shape, generator=gen).to(dev, z.dtype)
        z = scheduler.add_noise(z, noise, torch.tensor([t_star - 1]))
        learned = scheduler.config.variance_type in ("learned", "learned_range")
        for t in range(t_star - 1, -1, -1):
            out = unet(z, t).sample
            if out.shape[1] != z.shape[1] and not learned:
                out = out[:, : z.shape[1]]  # ε only; a learned variance this scheduler does not read
            z = scheduler.step(out, t, z, generator=gen).prev_sample
        if bilinear:  # back in [−1, 1], then map and clamp, as MSU's SDE_Adv_Model and run.py
            z = F.interpolate(z, size=(h, w), mode="bilinear", align_corners=False)
            return ((z + 1.0) * 0.5).clamp(0.0, 1.0).to(x.device)
        return resize(((z + 1.0) / 2.0).clamp(0.0, 1.0), (h, w)).to(x.device)


def _device_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """A generator on ``device`` seeded with ``generator``'s seed: what ``torch.manual_seed(seed)``
    leaves as the device's default generator (offset 0). On the CPU, ``generator`` itself."""
    if generator is None or device.type == "cpu":
        return generator
    return torch.Generator(device=device).manual_seed(generator.initial_seed())
