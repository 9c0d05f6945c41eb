"""A timm classifier seen through the features/head split, with input normalisation inside.

:class:`Classifier` takes images in [0, 1] pixel space and normalises them itself, so attacks,
mixing and corruptions all work on pixels (as the AdaptiveMix classification code does with its
``OverfittingNet`` wrapper, WentianZhang-ML/AdaptiveMix ``classification/models.py``). The split
follows timm's hooks (huggingface/pytorch-image-models, ``forward_features`` /
``forward_head(pre_logits=True)`` / ``get_classifier``):

    features(x) = forward_head(forward_features(normalise(x)), pre_logits=True)
    head(z)     = get_classifier()(z)

With ``head="uos"`` the model's own classifier is replaced by :class:`robustrep.uos.UoSHead` (frozen
orthogonal ``|W z/||z|||``, Zaeemzadeh et al., "Out-of-Distribution Detection Using Union of
1-Dimensional Subspaces", CVPR 2021, ``zaeemzadeh/OOD``), and the split moves to where the UoS and
AdaptiveMix references put it (``_embedding`` / ``_linear_classifier`` in
``WentianZhang-ML/AdaptiveMix`` ``classification/models.py``):

    features(x) = normalise(forward_head(forward_features(normalise(x)), pre_logits=True))
    head(v)     = |W v|   (no renormalisation)

so AdaptiveMix's MSE shrinkage acts on unit features and its ``h(z_lin)`` projects the mixed unit
features as they are, exactly as the reference. ``forward`` is unchanged (``head(features(x))``
equals the timm model's own forward), and the OOD program, which reads the timm pre-logit vector,
still sees the unnormalised features the UoS score was defined on (``zaeemzadeh/OOD``
``extract_features.py``).

:func:`as_classifier` wraps a timm model you built; the programs build theirs, with pretrained
weights, through ``robustrep.tasks.common.classifier.create_classifier``. Importing this module
registers the CIFAR wide ResNets of :mod:`robustrep.nets.wrn` (``wrn28_10``, ...) with timm, so
:func:`check_model_name` knows their names.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import timm
import torch
from torch import Tensor, nn

import robustrep.nets.wrn  # noqa: F401 - registers wrn16_2 ... wrn28_10 with timm
from robustrep.split import TimmSplit
from robustrep.uos import UoSHead

__all__ = ["Classifier", "as_classifier", "check_model_name", "default_norm", "use_uos_head",
           "HEADS"]

HEADS = ("linear", "uos")


def _channel_buffer(values: Sequence[float]) -> Tensor:
    return torch.tensor(list(values), dtype=torch.float32).view(1, -1, 1, 1)


class Classifier(TimmSplit):
    """A timm model with per-channel input normalisation; inputs are images in [0, 1].

    Args:
        model: a timm model (it must have ``forward_features``, ``forward_head``,
            ``get_classifier``).
        mean, std: per-channel normalisation, one value per input channel.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__(model)
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need one value per channel and std > 0; "
                             f"got mean={list(mean)}, std={list(std)}")
        self.register_buffer("mean", _channel_buffer(mean))
        self.register_buffer("std", _channel_buffer(std))

    @property
    def in_chans(self) -> int:
        return self.mean.shape[1]

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    def prepare(self, x: Tensor) -> Tensor:
        """Normalise images ``[B, C, H, W]`` in [0, 1] with the model's mean and std."""
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"expected images [B, {self.in_chans}, H, W] in [0, 1], "
                             f"got shape {tuple(x.shape)}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    @property
    def uos_head(self) -> UoSHead | None:
        """The :class:`UoSHead` when the model has one, else None."""
        head = self.model.get_classifier()
        return head if isinstance(head, UoSHead) else None

    def features(self, x: Tensor) -> Tensor:
        """The pooled pre-logit vector ``[B, num_features]`` (unit-norm with a UoS head)."""
        z = super().features(x)
        uos = self.uos_head
        return z if uos is None else uos.embed(z)

    def head(self, z: Tensor) -> Tensor:
        uos = self.uos_head
        return super().head(z) if uos is None else uos.project(z)


def check_model_name(name: str) -> None:
    """Raise ValueError naming close matches when ``name`` is not a timm model."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=8, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else "no close match"
    raise ValueError(f"unknown timm model {name!r}; {hint}. List all with "
                     f"python -c \"import timm; print(timm.list_models())\" "
                     f"(or timm.list_models('resnet*') for a pattern); a model your own module "
                     f"registers (timm's register_model) needs that module imported first "
                     f"(robustrep --plugin MODULE)")


def default_norm(model: nn.Module, channels: int) -> tuple[list[float], list[float]]:
    """The model's pretrained_cfg mean/std for ``channels`` inputs (averaged for 1 channel)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = list(cfg.get("mean", (0.5,) * 3))
    std = list(cfg.get("std", (0.5,) * 3))
    if len(mean) == channels:
        return [float(m) for m in mean], [float(s) for s in std]
    avg_mean, avg_std = sum(mean) / len(mean), sum(std) / len(std)
    return [avg_mean] * channels, [avg_std] * channels


def use_uos_head(model: nn.Module, scale: float | None = None) -> UoSHead:
    """Replace the timm model's linear classifier by a :class:`UoSHead` of the same shape."""
    old = model.get_classifier()
    name = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    name = name[0] if isinstance(name, (list, tuple)) else name
    if not isinstance(old, nn.Linear) or not name:
        raise ValueError(f"head 'uos' needs a timm model whose classifier is one nn.Linear; "
                         f"{type(model).__name__} has {type(old).__name__}")
    new = UoSHead(old.in_features, old.out_features, **({} if scale is None else
                                                        {"scale": scale}))
    model.set_submodule(name, new)
    if model.get_classifier() is not new:
        raise ValueError(f"could not replace the classifier {name!r} of {type(model).__name__} "
                         f"by a UoS head")
    return new


def as_classifier(model: nn.Module, in_chans: int = 3, mean: Sequence[float] | None = None,
                  std: Sequence[float] | None = None, head: str = "linear",
                  uos_scale: float | None = None) -> Classifier:
    """A timm model as a :class:`Classifier` for ``in_chans``-channel images.

    Args:
        model: a timm model built for ``in_chans`` input channels.
        in_chans: input channels.
        mean, std: per-channel normalisation (default: the model's pretrained_cfg,
            :func:`default_norm`).
        head: ``"linear"`` (the model's own classifier) or ``"uos"`` (:class:`UoSHead` in its
            place, :func:`use_uos_head`).
        uos_scale: logit scale of the UoS head (None: the core default, 1).
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
    if head == "uos":
        use_uos_head(model, uos_scale)
    d_mean, d_std = default_norm(model, in_chans)
    mean = d_mean if mean is None else mean
    std = d_std if std is None else std
    check_normalisation(mean, std, in_chans)
    return Classifier(model, mean, std)


def check_normalisation(mean: Sequence[float] | None, std: Sequence[float] | None,
                        in_chans: int) -> None:
    """ValueError unless each of ``mean`` and ``std`` given has one value per input channel."""
    if any(v is not None and len(v) != in_chans for v in (mean, std)):
        raise ValueError(f"mean/std need {in_chans} value(s) (one per input channel); "
                         f"got mean={None if mean is None else list(mean)}, "
                         f"std={None if std is None else list(std)}")
