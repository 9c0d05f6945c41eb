"""The augmentation baselines robustness papers compare against: RandAugment, AugMix, AutoAugment,
TrivialAugment and random erasing, from timm (and torchvision for TrivialAugment).

``--aa`` is timm's auto-augment string, built the way ``timm.data.create_transform`` builds it
(``transforms_imagenet_train``, pytorch-image-models): ``rand-...`` -> ``rand_augment_transform``
(RandAugment, Cubuk et al. 2020; ``rand-m9-mstd0.5``: magnitude 9 with noise std 0.5, 2 ops),
``augmix-...`` -> ``augment_and_mix_transform`` (AugMix, Hendrycks et al. 2020; with
``translate_pct`` 0.3), anything else -> ``auto_augment_transform`` (AutoAugment, Cubuk et al. 2019:
``original``, ``originalr``, ``v0``, ``v0r``, ``3a``), with ``translate_const = 0.45 * side``
and the fill colour the normalisation mean, as timm. ``trivialaugment`` is torchvision's
``TrivialAugmentWide`` (Müller & Hutter 2021; timm has no TrivialAugment policy). ``--reprob P``
is timm's ``RandomErasing(P, mode="const")``: one rectangle per image set to 0 *after*
normalisation, i.e. to the normalisation mean; robustrep normalises inside the model, so the
batch is normalised, erased and mapped back.

Order, as ``create_transform``: crop + flip (``--augment``), then ``--aa``, then ``--reprob``. The
policies draw from Python's ``random``, NumPy and torch's global generator (timm's policies
offer no generator argument); each batch seeds all three from the run's generator, so a run stays
reproducible and resumes exactly, and puts back their previous states afterwards, so the caller's
global random streams continue as if no batch had been augmented.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

TRIVIAL = "trivialaugment"
AA_EXAMPLES = ("rand-m9-mstd0.5 (RandAugment), augmix (AugMix), original or v0 (AutoAugment), "
               f"{TRIVIAL} (TrivialAugment-Wide)")


def build_aa(spec: str, image_size: int, mean: Sequence[float]) -> Callable:
    """The PIL-image policy for ``spec`` (see the module docstring); timm's assertion or lookup
    error on a malformed string is raised as ValueError naming the accepted forms."""
    if spec == TRIVIAL:
        from torchvision.transforms import TrivialAugmentWide
        return TrivialAugmentWide()
    from timm.data.auto_augment import (augment_and_mix_transform, auto_augment_transform,
                                        rand_augment_transform)
    mean = tuple(mean) * (3 // len(mean))  # a gray mean fills all three RGB channels
    hparams = {"translate_const": int(image_size * 0.45),
               "img_mean": tuple(min(255, round(255 * m)) for m in mean)}
    try:
        if spec.startswith("rand"):
            return rand_augment_transform(spec, hparams)
        if spec.startswith("augmix"):
            return augment_and_mix_transform(spec, {**hparams, "translate_pct": 0.3})
        return auto_augment_transform(spec, hparams)
    except (AssertionError, KeyError, ValueError, IndexError) as err:
        raise ValueError(f"timm cannot build {spec!r} ({type(err).__name__}: {err}); accepted: "
                         f"{AA_EXAMPLES}") from None


@contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Python's, NumPy's and torch's CPU global generators seeded with ``seed`` inside the block,
    and restored to their previous states when it exits (also on an exception). The CUDA
    generators are left alone: the policies run on the CPU, and ``torch.manual_seed`` would
    reseed every GPU's global stream (dropout's) without restoring it."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.default_generator.manual_seed(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


class BatchPolicies:
    """``--aa`` and ``--reprob`` on a batch of images in [0, 1] (``[B, C, H, W]``, C = 1 or 3)."""

    def __init__(self, aa: str | None, reprob: float, image_size: int,
                 mean: Sequence[float], std: Sequence[float]):
        self.policy = build_aa(aa, image_size, mean) if aa else None
        self.eraser = None
        if reprob > 0:
            from timm.data.random_erasing import RandomErasing
            self.eraser = RandomErasing(reprob, mode="const", device="cpu")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        with seeded_global_rngs(seed):
            device, dtype = x.device, x.dtype
            x = x.detach().float().cpu()
            if self.policy is not None:
                x = torch.stack([self._policy_one(img) for img in x])
            if self.eraser is not None:
                mean, std = self.mean[:, :x.shape[1]], self.std[:, :x.shape[1]]
                x = self.eraser((x - mean) / std) * std + mean
        return x.to(device=device, dtype=dtype)

    def _policy_one(self, img: Tensor) -> Tensor:
        """One image through the PIL policy (gray images as RGB, then back to one channel)."""
        from PIL import Image
        gray = img.shape[0] == 1
        arr = (img.expand(3, -1, -1) if gray else img).mul(255).round().clamp(0, 255)
        pil = Image.fromarray(arr.to(torch.uint8).permute(1, 2, 0).numpy(), mode="RGB")
        out = torch.from_numpy(np.asarray(self.policy(pil), dtype=np.float32).copy())
        out = out.permute(2, 0, 1) / 255
        return out.mean(0, keepdim=True) if gray else out
