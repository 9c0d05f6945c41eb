"""robustrep: regularizers for robust learned representations.

One core of regularizers (AdaptiveMix feature-space shrinkage, Mixup/CutMix/SRMix sample mixing,
symmetric adversarial training of a discriminator, multiple random projections) that serves GAN
training, timm classifier fine-tuning and OOD detection through the programs in ``tasks/``
(installed as ``robustrep.tasks`` and reached through the ``robustrep`` console script).

The public names below are loaded on first use (PEP 562 ``__getattr__``), so ``import robustrep``
stays fast (no torch import) and does nothing else: no argv, no printing, no import hooks.

    import robustrep
    reg = robustrep.create_regularizer("adaptivemix", alpha=1.0)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # regularizers and the registry
    # AdaptiveMix's function, robustrep.adaptivemix.adaptivemix, is not exported here: a name
    # both here and in _SUBMODULES would turn from the function into the module once the
    # submodule is imported
    "AdaptiveMix": "robustrep.adaptivemix",
    "SampleMix": "robustrep.mixing",
    "mixup": "robustrep.mixing",
    "cutmix": "robustrep.mixing",
    "srmix": "robustrep.mixing",
    "mixup_target": "robustrep.mixing",
    "mixed_gan_loss": "robustrep.mixing",
    "soft_target_cross_entropy": "robustrep.mixing",
    "fgsm": "robustrep.adversarial",
    "pgd": "robustrep.adversarial",
    "dat_perturb": "robustrep.dat",
    "asgan_perturb": "robustrep.asgan",
    "FreePerturbation": "robustrep.free",
    "ProjectionEnsemble": "robustrep.projection",
    "register_regularizer": "robustrep.registry",
    "register_discriminator": "robustrep.registry",
    "create_regularizer": "robustrep.registry",
    "list_regularizers": "robustrep.registry",
    "regularizer_info": "robustrep.registry",
    "parse_combination": "robustrep.registry",
    # the features/head split every regularizer sees a model through
    "FeatureSplit": "robustrep.split",
    "TimmSplit": "robustrep.split",
    "as_split": "robustrep.split",
    # networks the papers make their claims on (StyleGAN2's D splits into features and head)
    "StyleGAN2Generator": "robustrep.nets.stylegan2",
    "StyleGAN2Discriminator": "robustrep.nets.stylegan2",
    # D with an extra head: SSGAN's rotation loss, InfoMax-GAN's InfoNCE
    "SSGAN": "robustrep.ssgan",
    "rotation_loss": "robustrep.ssgan",
    "InfoMax": "robustrep.infomax",
    "infonce_loss": "robustrep.infomax",
    # GAN losses
    "loss_real": "robustrep.losses",
    "loss_fake": "robustrep.losses",
    "g_loss": "robustrep.losses",
    "r1_penalty": "robustrep.losses",
}
_SUBMODULES = ("api", "metrics", "data", "adaptivemix", "mixing", "adversarial", "free", "dat",
               "asgan", "projection", "losses", "split", "registry", "nets", "ssgan", "infomax")
# old module paths (``robustrep.stylegan2.X``), kept for code written before robustrep.nets
_ALIASES = {"stylegan2": "robustrep.nets.stylegan2", "wrn": "robustrep.nets.wrn"}

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"robustrep.{name}")
    elif name in _ALIASES:
        value = importlib.import_module(_ALIASES[name])
    else:
        raise AttributeError(f"module 'robustrep' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
