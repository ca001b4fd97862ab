"""DISCO purifier (Ho & Vasconcelos, "DISCO: Adversarial Defense with Local Implicit
Functions", NeurIPS 2022).

DISCO is a LIIF (:mod:`engine.defences._liif`: an EDSR-baseline encoder without its
upsampler and an MLP decoder with feature unfolding, local ensemble and cell decoding)
trained to map adversarial images to clean ones. Inference is the authors': normalise to
[-1, 1], encode, query the implicit function at every pixel centre of the image's own
grid (cell = one pixel) in batches of queries, map back to [0, 1]. The output has the
input's size. Deterministic; differentiable (an adaptive attack can go through it).

Compatible with the checkpoints the DISCO (and LIIF) training script saves:
``{'model': {'name': 'liif', 'args': {encoder_spec, imnet_spec, ...}, 'sd': state_dict},
'optimizer': ..., 'epoch': ...}``; the model is rebuilt from the saved spec
(``edsr-baseline``/``edsr``/``rdn`` encoders, ``mlp`` decoder, the unfolding kernel of
DISCO's 3/5/7 variants) and its state dict loaded strictly. A bare state dict (or
``{'model': state_dict}``) is accepted too; its sizes are read off the tensors. MSU's
benchmarks apply the authors' PGD-trained model under the file name ``disco_pgd.pth``,
the default here.

MSU's code (``metrics/defences/disco/run.py``) queries a **fixed 299×299 grid** whatever
the input size (the authors' ImageNet set-up), so the metric scores a 299×299 image; the
preset ``msu-literal`` (``out_height=out_width=299``) does that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.defences._liif import LIIF, SpecError, liif_from_spec, liif_from_state_dict
from engine.defences._neural import NeuralDefence, find_weights, missing_message
from engine.defences.base import DEFENCES, MSU_LITERAL, DefenceError, msu_reference
from engine.spec.params import param

WEIGHTS = "disco_pgd.pth"
#: the authors' archive of trained DISCO models (their README, "Disco Training")
URL = "https://drive.google.com/file/d/1kMjqPVmu1xNhmZdPf25BN9JQ0j9LBar5/view"
#: the single file MSU's benchmarks download
MSU_MIRROR = "https://titan.gml-team.ru:5003/fsdownload/zBJ7GXlz0/disco_pgd.pth"


@dataclass
class DISCOParams:
    weights: str = param(WEIGHTS, help="DISCO checkpoint (name in the weights folder, or a path)")
    query_batch: int = param(90000, min=1024, max=4_000_000, step=1024,
                             help="pixels decoded per MLP call (memory only; the output does not depend on it)")
    out_height: int = param(0, min=0, max=16384, help="rows of the query grid (0 = the input's)", unit="px")
    out_width: int = param(0, min=0, max=16384, help="columns of the query grid (0 = the input's)", unit="px")


def build_from_checkpoint(ckpt: Any, where: str = "checkpoint") -> LIIF:
    """The LIIF a loaded checkpoint describes, with its weights loaded strictly.

    Raises:
        DefenceError: not a LIIF/DISCO checkpoint, or its weights do not fit its spec.
    """
    spec = ckpt.get("model") if isinstance(ckpt, dict) else None
    try:
        if isinstance(spec, dict) and "sd" in spec:
            sd = spec["sd"]
            net = liif_from_spec(spec) if "args" in spec or "name" in spec else liif_from_state_dict(sd)
        elif isinstance(spec, dict) and any(str(k).startswith("encoder.") for k in spec):
            sd = spec
            net = liif_from_state_dict(sd)
        elif isinstance(ckpt, dict) and any(str(k).startswith("encoder.") for k in ckpt):
            sd = ckpt
            net = liif_from_state_dict(sd)
        else:
            keys = ", ".join(map(str, list(ckpt)[:6])) if isinstance(ckpt, dict) else type(ckpt).__name__
            raise SpecError(f"expected {{'model': {{'name', 'args', 'sd'}}}} or a LIIF state dict; found {keys}")
    except (SpecError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DefenceError(f"disco: {where} is not a DISCO/LIIF checkpoint: {exc}") from None
    if not isinstance(sd, dict):
        raise DefenceError(f"disco: {where} has no state dict under model.sd")
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        text = " ".join(str(exc).split())
        raise DefenceError(f"disco: {where}'s weights do not fit its model spec: {text[:400]}") from None
    return net


@DEFENCES.register("disco")
class DISCODefence(NeuralDefence):
    """DISCO local-implicit-function purifier. Differentiable, deterministic; same size
    unless ``out_height``/``out_width`` fix the query grid (MSU: 299×299).

    Example:
        >>> d = DISCODefence()                 # disco_pgd.pth in the weights folder
        >>> y = d(x)                           # (B, 3, H, W) → (B, 3, H, W)
    """

    Params = DISCOParams
    presets = {MSU_LITERAL: {"out_height": 299, "out_width": 299}}
    literal_presets = msu_reference("disco", presets)
    differentiable = True
    random = False

    @classmethod
    def missing(cls, params: Any) -> list[str]:
        if find_weights(params.weights) is not None:
            return []
        return [missing_message(params.weights, URL, "disco")
                + " (the authors' archive of trained models: unzip it and put the PGD-trained checkpoint "
                f"there under that name; MSU's benchmarks fetch the same file from {MSU_MIRROR})"]

    def load(self) -> LIIF:
        from engine.metrics.base import MetricError
        from engine.metrics.weights import read_checkpoint

        path = find_weights(self.params.weights)
        if path is None:
            raise DefenceError("; ".join(self.missing(self.params)))
        try:
            ckpt = read_checkpoint(path, metric="disco")
        except MetricError as exc:
            raise DefenceError(str(exc)) from None
        return build_from_checkpoint(ckpt, str(path)).float().eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        net = self.model
        # one image at a time, as the authors do: memory stays one feature map + one query batch
        p = self.params
        size = (p.out_height or x.shape[-2], p.out_width or x.shape[-1])
        out = [net.render(img[None].to(self.device), size, query_batch=p.query_batch) for img in x]
        return torch.cat(out).to(x.device)
