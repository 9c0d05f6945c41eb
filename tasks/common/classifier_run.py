"""A ``robustrep classify train`` run folder read back as a feature network, for any program.

The GAN program scores generators with the pre-logit features of a classifier trained on its own
data (``--fid-features run:RUN``), as domain-specific FIDs do (e.g. Kynkaanniemi et al., "The
Role of ImageNet Classes in Frechet Inception Distance", ICLR 2023, on how the feature network
changes FID). Programs must not import each other (tasks/gan never imports tasks/classify), so
the few steps of reading a classify run live here: ``RUN/config.json`` (keys ``model``,
``num_classes``, ``channels``, ``mean``, ``std``, ``image_size``, optional ``drop_rate``) and
``RUN/checkpoints/latest.pt`` with the classifier's state dict under ``"model"`` (and ``"ema"``
when EMA was on), read with ``torch.load(weights_only=True)``.

:class:`RunFeatures` has the parameter layout of ``tasks.classify.model.Classifier`` (a timm
model under ``model.``, the ``mean``/``std`` buffers), so the checkpoint loads strictly, and
computes the same pre-logit vector: timm's ``forward_head(forward_features(x), pre_logits=True)``
(huggingface/pytorch-image-models) on normalised [0, 1] images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn

from robustrep.tasks.common.checkpoint import LATEST
from robustrep.tasks.common.errors import CheckpointError, RunFolderError

__all__ = ["RunFeatures", "read_run_config", "load_run_features"]

_NEEDED = ("model", "num_classes", "channels", "mean", "std")


class RunFeatures(nn.Module):
    """A timm classifier's pre-logit features of [0, 1] images, normalised inside."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """``RUN/config.json`` of a classify run; RunFolderError when it is not one."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise RunFolderError(f"classify run folder {run_dir} does not exist (expected a folder "
                             "written by `robustrep classify train`)")
    if not path.is_file():
        raise RunFolderError(f"{run_dir} is not a classify run folder: no config.json (expected "
                             f"RUN/config.json and RUN/checkpoints/{LATEST})")
    config = json.loads(path.read_text())
    missing = [k for k in _NEEDED if config.get(k) is None]
    if missing:
        raise RunFolderError(f"{run_dir} is not a classify run: config.json lacks "
                             f"{', '.join(missing)} (expected a folder written by "
                             "`robustrep classify train`)")
    return config


def _read_weights(run_dir: Path, use_ema: bool) -> tuple[dict[str, Tensor], str]:
    path = run_dir / "checkpoints" / LATEST
    if not path.is_file():
        raise CheckpointError(f"classify run {run_dir} has no checkpoint: expected {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, or objects weights_only refuses
        raise CheckpointError(f"cannot read {path} safely (weights_only=True): "
                              f"{str(err).splitlines()[0]}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} has no 'model' state dict; it is not a classify "
                              "checkpoint")
    which = "ema" if use_ema and isinstance(state.get("ema"), dict) else "model"
    return state[which], which


def load_run_features(run_dir: str | Path, device: str | torch.device = "cpu",
                      use_ema: bool = True) -> tuple[RunFeatures, dict[str, Any]]:
    """The pre-logit feature network of a classify run (eval mode, no gradients) and its config
    (plus ``weights``: ``"ema"`` or ``"model"``, and ``run_dir``)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    state, which = _read_weights(run_dir, use_ema)
    kwargs = {} if config.get("drop_rate") is None else {"drop_rate": config["drop_rate"]}
    model = timm.create_model(config["model"], pretrained=False,
                              num_classes=int(config["num_classes"]),
                              in_chans=int(config["channels"]), **kwargs)
    net = RunFeatures(model, config["mean"], config["std"])
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint of {run_dir} does not fit {config['model']!r} with "
                              f"{config['num_classes']} classes: "
                              f"{str(err).splitlines()[0]}") from None
    config = dict(config, weights=which, run_dir=str(run_dir))
    return net.to(device).eval().requires_grad_(False), config
