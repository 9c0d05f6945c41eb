"""The loss of one ``classify train`` step and the regularizers it is built from.

:class:`ClassifyTask` is the module the trainer (and DistributedDataParallel) calls: the
input-mixing regularizer's ``mix_inputs`` with soft targets (Mixup / CutMix / SRMix, several
combined into one policy, timm's Mixup/CutMix switch), the feature regularizer's
``feature_terms`` (AdaptiveMix: the MSE shrinkage of the reference ``WentianZhang-ML/AdaptiveMix``
``classification/train.py``, with its mixed cross-entropy), or plain cross-entropy; label
smoothing applies to all. :func:`build_regularizers` builds what ``--reg`` names through the
registry, by place (:mod:`robustrep.api`, ``tasks/common/regularizers.py``); :func:`build_task`
puts the two together.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustrep.mixing import SampleMix, mixup_target, soft_target_cross_entropy
from robustrep.nets.classifier import Classifier
from robustrep.registry import name_of
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.regularizers import Kept, build_places, checked_feature_terms

from .config import OPTION_FIELDS, ClassifyConfig


class ClassifyTask(nn.Module):
    """Forward + loss of one training step; the module that DDP wraps.

    ``forward(x, y, generator)`` returns ``{"loss": total, "logits": ..., "<name>/<part>": ...}``
    (the core's returned-terms convention). Keeping the whole loss inside one ``forward`` lets
    DistributedDataParallel see every parameter use, AdaptiveMix's two trunk passes included.

    ``mixer`` implements :class:`robustrep.api.InputMixing`, ``feature_reg``
    :class:`robustrep.api.FeatureRegularizer` (its loss is logged as ``<registered name>/loss``).
    """

    def __init__(self, model: Classifier, num_classes: int, label_smoothing: float = 0.0,
                 mixer: Any = None, feature_reg: Any = None):
        super().__init__()
        if mixer is not None and feature_reg is not None:
            raise ValueError("use either input mixing or a feature regularizer, not both")
        self.model = model
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.mixer = mixer
        self.feature_reg = feature_reg
        self.feature_name = (name_of(type(feature_reg)) or "features") if feature_reg else None

    def _ce(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), y, reduction="none",
                               label_smoothing=self.label_smoothing)

    def forward(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
                ) -> dict[str, Tensor]:
        if self.feature_reg is not None:
            out = checked_feature_terms(
                self.feature_reg.feature_terms(self.model, x, generator=generator),
                self.feature_name, x.shape[0], self.num_classes)
            if "index" in out:
                # logits of a mix (AdaptiveMix reference: h(z_lin) + h(f(x_mix))): the mixed CE
                # of both labels of the pair, as the reference classification code
                lam, index = out["lam"], out["index"]
                ce = lam * self._ce(out["logits"], y) + (1 - lam) * self._ce(out["logits"],
                                                                             y[index])
            else:  # clean logits, trained on the clean label
                ce = self._ce(out["logits"], y)
            terms = {k: v for k, v in out.items() if "/" in k}
            return {"loss": ce.mean() + out["loss"], "logits": out["logits"], "loss/ce": ce.mean(),
                    f"{self.feature_name}/loss": out["loss"].detach(), **terms}
        if self.mixer is not None:
            mix = self.mixer.mix_inputs(x, generator=generator)
            logits = self.model(mix.x)
            target = mixup_target(y, mix.index, mix.lam, self.num_classes, self.label_smoothing)
            ce = soft_target_cross_entropy(logits.float(), target)
            return {"loss": ce.mean(), "logits": logits, "loss/ce": ce.mean().detach(),
                    "mix/lam": mix.lam.mean()}
        logits = self.model(x)
        ce = self._ce(logits, y)
        return {"loss": ce.mean(), "logits": logits, "loss/ce": ce.mean().detach()}


def build_regularizers(cfg: ClassifyConfig, kept: Kept | None = None) -> dict[str, Any]:
    """``{place: object}`` of what ``cfg.reg`` names (with a resume's ``kept`` options), built
    through the registry; several input-mixing methods become one policy (``combine``, timm's
    Mixup/CutMix switch)."""
    places = build_places(cfg, "classify", cfg.regularizers(), OPTION_FIELDS, kept=kept)
    built = {}
    for where, members in places.items():
        objs = [obj for _, obj in members]
        if len(objs) == 1:
            built[where] = objs[0]
            continue
        _check_combined_options(cfg, [n for n, _ in members])
        try:
            built[where] = type(objs[0]).combine(objs)
        except (AttributeError, ValueError) as err:
            raise ConfigError(f"--reg {cfg.reg}: {' and '.join(n for n, _ in members)} cannot "
                              f"share the {where} place: {err}") from None
    replays = getattr(built.get("adversarial inputs"), "replays", 1)
    if cfg.grad_accum > 1 and replays > 1:  # an update per replay is the method
        raise ConfigError(f"--grad-accum {cfg.grad_accum}: --reg {cfg.reg} replays each batch "
                          f"{replays} times with an optimizer step after each (free adversarial "
                          f"training); use --grad-accum 1")
    return built


def _check_combined_options(cfg: ClassifyConfig, names: list[str]) -> None:
    """``reg_options`` of a later method in a combined policy that the policy would not use
    (it draws with the first method's prob, switch_prob, per_sample and partner; each method's
    alpha acts, ``--mixup-alpha``, ``--cutmix-alpha`` as timm's mixup_alpha and cutmix_alpha)
    are refused, naming where to set them."""
    for name in names[1:]:
        unread = sorted(set((cfg.reg_options or {}).get(name, {}))
                        & set(SampleMix.FIRST_MEMBERS_DRAWS))
        if unread:
            raise ConfigError(f"reg_options: {name}'s {', '.join(unread)} would not act: "
                              f"{','.join(names)} mix as one policy, which draws with the first "
                              f"listed method's settings; set them on {names[0]}")


def build_task(cfg: ClassifyConfig, model: Classifier, num_classes: int,
               regs: dict[str, Any] | None = None) -> ClassifyTask:
    regs = build_regularizers(cfg) if regs is None else regs
    return ClassifyTask(model, num_classes, cfg.label_smoothing, regs.get("input mixing"),
                        regs.get("feature shrinkage"))
