"""robustrep: regularizers for robust learned representations.

One core of regularizers (AdaptiveMix feature-space shrinkage, Mixup/CutMix/SRMix sample mixing,
symmetric adversarial training of a discriminator, multiple random projections) that serves GAN
training, timm classifier fine-tuning and OOD detection through the programs in ``tasks/``
(installed as ``robustrep.tasks`` and reached through the ``robustrep`` console script).

The library is side-effect free: nothing here parses argv, prints or writes run folders.
"""

__version__ = "0.1.0"
