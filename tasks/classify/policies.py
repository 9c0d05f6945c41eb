"""The augmentation baselines robustness papers compare against: RandAugment, AugMix, AutoAugment,
TrivialAugment and random erasing, from timm (and torchvision for TrivialAugment).

``--aa`` is timm's auto-augment string, built the way ``timm.data.create_transform`` builds it
(``transforms_imagenet_train``, pytorch-image-models): ``rand-...`` -> ``rand_augment_transform``
(RandAugment, Cubuk et al. 2020; ``rand-m9-mstd0.5``: magnitude 9 with noise std 0.5, 2 ops),
``augmix-...`` -> ``augment_and_mix_transform`` (AugMix, Hendrycks et al. 2020; with
``translate_pct`` 0.3), anything else -> ``auto_augment_transform`` (AutoAugment, Cubuk et al. 2019:
``original``, ``originalr``, ``v0``, ``v0r``, ``3a``), with ``translate_const = 0.45 * side``
and the fill colour the normalisation mean, as timm. ``trivialaugment`` is torchvision's
``TrivialAugmentWide`` (Müller & Hutter 2021; timm has no TrivialAugment policy). timm's
posterize ops ask for 0 bits (Posterize below magnitude 2.5, as ``v0`` and ``rand-m2`` draw it;
PosterizeIncreasing at 10), which Pillow 13's ``ImageOps.posterize`` refuses (Pillow < 13
returned a black image): the policy's posterize ops get :func:`posterize`, which gives that black
image and calls timm's otherwise. ``--reprob P`` is timm's ``RandomErasing(P, mode)`` with
``--remode``'s mode: one rectangle per image set *after* normalisation to per-pixel normal noise
(``pixel``, timm's ``train.py`` default), one normal colour (``rand``) or 0 (``const``, timm's
``create_transform`` default), i.e. the normalisation mean; robustrep normalises inside the
model, so the batch is normalised, erased and mapped back (the model sees timm's noise, which
lies outside [0, 1] as pixels).

Order, as ``create_transform``: crop + flip (``--augment``), then ``--aa``, then ``--reprob``. The
policies draw from Python's ``random``, NumPy and torch's global generator (timm's policies
offer no generator argument); each batch seeds all three from the run's generator, so a run stays
reproducible and resumes exactly, and puts back their previous states afterwards, so the caller's
global random streams continue as if no batch had been augmented.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

TRIVIAL = "trivialaugment"
AA_EXAMPLES = ("rand-m9-mstd0.5 (RandAugment), augmix (AugMix), original or v0 (AutoAugment), "
               f"{TRIVIAL} (TrivialAugment-Wide)")


# The grammar timm's policy factories parse (timm.data.auto_augment, the same from 1.0.10 to
# 1.0.31): NAME-SECTION-SECTION..., a section a key and a number (m9, mstd0.5), read in any order.
# timm skips a section with no digit ("rand-zz") and RandAugment's transform set "t..." falls back
# to the full set for a name it does not know, so a typo would silently train another policy:
# check_aa refuses both. Key -> the value's type, per kind.
AA_KEYS: dict[str, dict[str, type]] = {
    "rand": {"m": int, "n": int, "p": float, "mstd": float, "mmax": int, "inc": int},
    "augmix": {"m": int, "w": int, "d": int, "a": float, "b": int, "mstd": float},
    "auto": {"mstd": float},
}
AUTO_POLICIES = ("original", "originalr", "v0", "v0r", "3a")  # timm's auto_augment_policy
RAND_SETS = ("weights", "3aw", "3a")  # timm's rand_augment_choices: RandAugment's t<NAME>
# Switches whose 0 is the default; timm 1.0.10 reads any digit (inc0 too) as on.
AA_SWITCHES = ("inc", "b")
# Values that must be > 0: RandAugment with no ops (n0) or probability 0 (p0) returns the image,
# AugMix with no chains (w0) blends it toward black, and its Dirichlet needs alpha > 0.
AA_POSITIVE = {"rand": {"n": "no ops: the image is returned as it is",
                        "p": "no op is ever applied: the image is returned as it is"},
               "augmix": {"w": "no chains: each image is blended toward black",
                          "a": "its Dirichlet and Beta weights need alpha > 0"}}


AA_FORM_EXAMPLES = {"rand": "rand-m9-mstd0.5-inc1", "augmix": "augmix-m5-w4-d2",
                    "auto": "original-mstd0.5"}


def _aa_form(kind: str) -> str:
    """The accepted form of one kind of --aa string, for the error message."""
    keys = [f"{k}1" if k in AA_SWITCHES else f"{k}<{t.__name__}>"
            for k, t in AA_KEYS[kind].items()]
    if kind == "rand":
        keys.append("t" + "|".join(RAND_SETS))
    head = f"{kind}[-SECTION...]" if kind != "auto" else f"{'|'.join(AUTO_POLICIES)}[-SECTION...]"
    return f"{head} with sections {', '.join(keys)}, e.g. {AA_FORM_EXAMPLES[kind]}"


def check_aa(spec: str) -> None:
    """ValueError (naming the accepted form) unless ``spec`` is a policy string timm parses in
    full: every section known, every value a number of its key's type."""
    name, *sections = spec.split("-")
    kind = "rand" if spec.startswith("rand") else "augmix" if spec.startswith("augmix") else "auto"
    if spec == TRIVIAL or (kind == "auto" and name in AUTO_POLICIES and not sections):
        return
    accepted = f"accepted: {_aa_form(kind)}"
    if name != kind and not (kind == "auto" and name in AUTO_POLICIES):
        raise ValueError(f"unknown policy {name!r}; accepted: {AA_EXAMPLES}")
    for section in sections:
        if kind == "rand" and section.startswith("t"):  # timm reads t<NAME> before numbers
            if section[1:] not in RAND_SETS:
                raise ValueError(f"unknown transform set {section!r} in {spec!r}; {accepted}")
            continue
        key, digits, value = (re.split(r"(\d.*)", section) + ["", ""])[:3]
        try:
            number = AA_KEYS[kind][key](digits)
        except (KeyError, ValueError):
            raise ValueError(f"unknown section {section!r} in {spec!r}; {accepted}") from None
        if key in AA_SWITCHES and number not in (0, 1):
            raise ValueError(f"section {section!r} in {spec!r} is a switch: {key}1 (on) or no "
                             f"{key} section (off); {accepted}")
        if number <= 0 and key in AA_POSITIVE.get(kind, {}):
            raise ValueError(f"section {section!r} in {spec!r} must be > 0 "
                             f"({AA_POSITIVE[kind][key]})")
        if key in AA_SWITCHES and number == 0:
            raise ValueError(f"section {section!r} in {spec!r}: off is the default, drop the "
                             f"section (timm 1.0.10 reads {key}0 as on)")


def build_aa(spec: str, image_size: int, mean: Sequence[float]) -> Callable:
    """The PIL-image policy for ``spec`` (see the module docstring), checked by :func:`check_aa`
    first; timm's assertion or lookup error on a malformed string is raised as ValueError naming
    the accepted forms."""
    check_aa(spec)
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
            policy = rand_augment_transform(spec, hparams)
        elif spec.startswith("augmix"):
            policy = augment_and_mix_transform(spec, {**hparams, "translate_pct": 0.3})
        else:
            policy = auto_augment_transform(spec, hparams)
    except (AssertionError, KeyError, ValueError, IndexError) as err:
        raise ValueError(f"timm cannot build {spec!r} ({type(err).__name__}: {err}); accepted: "
                         f"{AA_EXAMPLES}") from None
    return _own_posterize(policy)


def posterize(img: Any, bits_to_keep: int, **kwargs: Any) -> Any:
    """timm's ``auto_augment.posterize``, except below 1 bit: the all-black image of the same mode
    and size that Pillow < 13 gave (its lut ``i & ~(2**(8-bits)-1)`` is 0 for every ``i``).
    Pillow 13's ``ImageOps.posterize`` raises for bits outside 1..8, which timm's levels reach."""
    from PIL import Image
    from timm.data.auto_augment import posterize as timm_posterize
    if bits_to_keep < 1:
        return Image.new(img.mode, img.size)
    return timm_posterize(img, bits_to_keep, **kwargs)


def _own_posterize(policy: Any) -> Any:
    """``policy`` (timm's RandAugment, AugMixAugment or AutoAugment) with :func:`posterize` as the
    ``aug_fn`` of its posterize ops. Pillow 13 refuses the 0 bits timm asks for, so a run would
    stop at the first such draw, and again on resume (the same draws). Only this policy's ops
    change (timm builds new ones per policy), never timm's module."""
    from timm.data.auto_augment import posterize as timm_posterize
    ops = list(getattr(policy, "ops", ()))  # RandAugment, AugMixAugment
    ops += [op for sub_policy in getattr(policy, "policy", ()) for op in sub_policy]  # AutoAugment
    for op in ops:
        if op.aug_fn is timm_posterize:
            op.aug_fn = posterize
    return policy


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
    """``--aa`` and ``--reprob`` (filled as ``--remode``) on a batch of images in [0, 1]
    (``[B, C, H, W]``, C = 1 or 3)."""

    def __init__(self, aa: str | None, reprob: float, remode: str | None, image_size: int,
                 mean: Sequence[float], std: Sequence[float]):
        self.policy = build_aa(aa, image_size, mean) if aa else None
        self.eraser = None
        if reprob > 0:
            from timm.data.random_erasing import RandomErasing
            self.eraser = RandomErasing(reprob, mode=remode, device="cpu")
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
