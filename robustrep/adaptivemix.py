r"""AdaptiveMix: shrinking the feature space around mixed samples.

Paper: Liu et al., "AdaptiveMix: Improving GAN Training via Feature Space Shrinkage", CVPR 2023,
arXiv 2303.01559. Reference code: ``WentianZhang-ML/AdaptiveMix`` at ``163e5d5``:
``generation/training/networks.py`` (``Discriminator.adaptive_mix``),
``generation/training/loss.py`` (GAN losses) and ``classification/models.py`` (classifier variant).

A model is seen as ``h(f(x))`` through :func:`robustrep.split.as_split`. For one batch ``x``:

.. math::

    \tilde x = \lambda x + (1 - \lambda)\, x_\pi, \qquad
    z_{lin} = \lambda f(x) + (1 - \lambda) f(x)_\pi, \qquad
    t = \operatorname{sg}(z_{lin} + \epsilon),\ \epsilon \sim \mathcal N(0, \sigma^2),

    L_{shrink} = d\big(f(\tilde x),\, t\big), \qquad
    \text{logits} = h(z_{lin}) + h(f(\tilde x)) \ \text{(reference mode)}.

Decisions the paper and code leave open (``shared/reference/methods.md`` section 1.7):

1. **Distance.** ``distance="cosine"`` is ``-cos(flatten(z_mix), flatten(t))`` per sample, as
   the GAN code (``loss.py``); ``"mse"`` is the element mean of the squared error, as the
   classification code. :class:`AdaptiveMix`'s default (None) takes each place's: cosine as a GAN's
   D function, mse as a classifier's feature shrinkage. Both codes weight the term by 1, our
   default ``weight``.
2. **Feature layer.** Whatever ``split.features`` returns. In the reference StyleGAN2 D it is the
   4x4 map of the last block, before minibatch-std; choosing it for other models is the caller's
   (or the task's) decision.
3. **Adversarial logit.** ``mode="reference"`` replaces ``D(x)`` by ``h(z_lin) + h(z_mix)``: D
   never scores a clean sample and the logit scale doubles; ``z_lin`` is *not* detached inside
   ``h``, so the clean passes are trained by the main loss. ``mode="additive"`` returns the clean
   logit ``h(f(x))`` and the shrinkage is only an extra regularizer; the clean logit costs no extra
   trunk pass, because ``f(x)`` is the pass that builds ``z_lin``.
4. **lam.** One Beta(alpha, alpha) draw per batch, as the reference (alpha = 1 gives Uniform(0, 1));
   ``per_sample=True`` draws one per sample. Partners come from the batch given, so call the
   regularizer separately on reals and on fakes (the reference never mixes the two).
5. **Noise.** Added to the target only, with an absolute std ``noise_std`` (0.05 in the reference
   scripts), not scaled to the feature norm; with the cosine distance its effect therefore depends
   on the feature scale.
6. **Generator.** This module scores any batch it is given. Whether the G step also minimises the
   shrinkage on fakes (the reference does, in ``loss.py``, with a question-mark comment) is decided
   by the task (``tasks/gan``), not here.
7. **R1.** The reference takes R1 on the mixed logit. That is the task's business: when ``x``
   requires grad, ``out["logits"]`` depends on ``x`` (through ``x_mix`` and ``f(x)``), so
   ``robustrep.losses.r1_penalty(out["logits"], x)`` computes it.
8. **Two trunk passes, not three.** The reference embeds ``x_mix``, ``x`` and ``x[pi]``. For a
   batch-permutation-equivariant trunk ``f(x[pi]) == f(x)[pi]``, so we embed ``x`` once and index
   it. With BatchNorm in training mode the batch statistics are the same set of samples, so the
   outputs and gradients agree up to float summation order, but BN running statistics are updated
   twice instead of three times, and dropout draws two masks instead of three.
   :func:`adaptivemix_three_pass` keeps the reference computation for tests and benchmarks.
9. **fuse_passes.** ``fuse_passes=True`` runs the two trunk passes as one call on
   ``cat([x, x_mix])`` (one kernel launch chain, better GPU occupancy). It is exact only when the
   trunk has no batch statistics in play (no BatchNorm, or BatchNorm in eval mode, e.g. spectral
   norm or StyleGAN2 discriminators); with BatchNorm in training mode the clean and mixed samples
   would share statistics, which the reference never does, so such a trunk is refused. Default
   ``False``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from robustrep._validate import (check_bool, check_choice, check_generator, check_index,
                                 check_lam, check_model_dtype, check_nonneg, check_positive,
                                 check_same_device, check_same_shape, check_tensor, first_tensor,
                                 options_repr)
from robustrep.mixing import flip_partners, mixup, permutation_partners, sample_lam
from robustrep.registry import register_regularizer
from robustrep.split import TimmSplit, as_split

DISTANCES = ("cosine", "mse")
MODES = ("reference", "additive")
PARTNERS = ("permutation", "flip")
_INPUT_RANKS = (2, 3, 4, 5)


def shrinkage(z_mix: Tensor, target: Tensor, distance: str = "cosine") -> Tensor:
    """Per-sample distance ``[B]`` between mixed features and their (detached) target.

    ``"cosine"`` is ``-cos`` of the flattened features (-1 when aligned), ``"mse"`` the element
    mean of the squared error. Computed in at least float32, so that bf16 features do not lose
    the small terms.
    """
    check_tensor("z_mix", z_mix, min_batch=1, floating=True)
    check_tensor("target", target, floating=True)
    check_same_shape("z_mix", z_mix, "target", target)
    check_choice("distance", distance, DISTANCES)
    dtype = torch.promote_types(z_mix.dtype, torch.float32)
    a = z_mix.reshape(z_mix.shape[0], -1).to(dtype)
    b = target.reshape(target.shape[0], -1).to(dtype)
    if distance == "cosine":
        return -F.cosine_similarity(a, b, dim=1)
    return (a - b).pow(2).mean(1)


def adaptivemix(model: Any, x: Tensor, lam: float | Tensor, index: Tensor,
                noise: Tensor | None = None, noise_std: float = 0.0,
                generator: torch.Generator | None = None, distance: str = "cosine",
                mode: str = "reference", weight: float = 1.0,
                fuse_passes: bool = False) -> dict[str, Tensor]:
    """AdaptiveMix with given partners and lam, in two trunk passes (the pure core).

    Args:
        model: anything :func:`robustrep.split.as_split` accepts.
        x: a batch ``[B, ...]`` of one kind (all real or all fake).
        lam: weight of ``x`` in the mix: a float, a 0-d tensor or one value per sample ``[B]``.
        index: partner of each sample, ``LongTensor [B]``.
        noise: the target noise, shaped like the features; overrides ``noise_std``.
        noise_std: std of the Gaussian target noise drawn with ``generator`` when ``noise`` is None.
        fuse_passes: run both trunk passes as one call (see the module docstring, point 9).

    Returns:
        dict with ``loss``, ``logits``, ``lam`` ``[B]``, ``index``, ``target`` (detached) and the
        logging scalars ``adaptivemix/shrink`` and ``adaptivemix/lam``.
    """
    split, lam = _check_call(model, x, lam, index, distance, mode, weight)
    check_nonneg("noise_std", noise_std)
    check_generator(generator, x.device)
    x_mix = mixup(x, x[index], lam)[0]
    if fuse_passes:
        _check_no_batch_statistics(split)
        z, z_mix = _features(split, torch.cat([x, x_mix])).tensor_split(2)
    else:
        z_mix = _features(split, x_mix)  # the reference embeds the mixed batch first
        z = _features(split, x)
    if noise is None and noise_std > 0:
        noise = noise_std * torch.randn(z.shape, generator=generator, device=z.device,
                                        dtype=torch.float32).to(z.dtype)
    return _terms(split, z, z[index], z_mix, lam, index, noise, distance, mode, weight)


def adaptivemix_three_pass(model: Any, x: Tensor, lam: float | Tensor, index: Tensor,
                           noise: Tensor | None = None, distance: str = "cosine",
                           mode: str = "reference", weight: float = 1.0) -> dict[str, Tensor]:
    """The reference computation: three trunk passes on ``x_mix``, ``x`` and ``x[index]``.

    Same arguments and result as :func:`adaptivemix` with explicit ``noise``; kept to check the
    two-pass version against and to benchmark it.
    """
    split, lam = _check_call(model, x, lam, index, distance, mode, weight)
    x_b = x[index]
    z_mix = _features(split, mixup(x, x_b, lam)[0])
    z = _features(split, x)
    z_b = _features(split, x_b)
    return _terms(split, z, z_b, z_mix, lam, index, noise, distance, mode, weight)


@register_regularizer("adaptivemix", paper="Liu et al., AdaptiveMix, CVPR 2023",
                      acts={"gan": "D function", "classify": "feature shrinkage"})
class AdaptiveMix:
    """AdaptiveMix regularizer: samples partners, lam and noise, then calls :func:`adaptivemix`.

    Args:
        alpha: Beta(alpha, alpha) parameter of lam (hard-coded to 1.0 in the reference).
        noise_std: std of the Gaussian noise added to the target (reference ``--noise_std=0.05``).
        distance: ``"cosine"`` (GAN code) or ``"mse"`` (classification code); None: the
            reference's for the place, cosine as a GAN's D function (and when called), mse as a
            classifier's feature shrinkage.
        mode: ``"reference"`` (logits ``h(z_lin) + h(z_mix)``) or ``"additive"`` (clean logits).
        weight: factor on the shrinkage term in ``"loss"``.
        per_sample: one lam per sample instead of one per batch (the reference).
        partner: ``"permutation"`` (random, the reference) or ``"flip"`` (sample i with B-1-i).
        fuse_passes: one trunk call on ``cat([x, x_mix])``; only for trunks without batch
            statistics in training mode (module docstring, point 9).
        g_shrink: as a GAN's D function, G also minimises the shrinkage on its fakes (the
            reference ``loss.py``).

    Places (:mod:`robustrep.api`): ``gan`` D function (:meth:`d_logits`) and ``classify``
    feature shrinkage (:meth:`feature_terms`).
    """

    term = "am_shrink"  # the name of its loss term in a GAN's log (d/am_shrink, g/am_shrink)

    def __init__(self, alpha: float = 1.0, noise_std: float = 0.05, distance: str | None = None,
                 mode: str = "reference", weight: float = 1.0, per_sample: bool = False,
                 partner: str = "permutation", fuse_passes: bool = False, g_shrink: bool = True):
        check_positive("alpha", alpha)
        check_nonneg("noise_std", noise_std)
        if distance is not None:
            check_choice("distance", distance, DISTANCES)
        check_choice("mode", mode, MODES)
        check_nonneg("weight", weight)
        check_choice("partner", partner, PARTNERS)
        for name, flag in (("per_sample", per_sample), ("fuse_passes", fuse_passes),
                           ("g_shrink", g_shrink)):
            check_bool(name, flag)
        self.alpha, self.noise_std, self.weight = float(alpha), float(noise_std), float(weight)
        self.distance, self.mode, self.partner = distance, mode, partner
        self.per_sample, self.fuse_passes, self.g_shrink = per_sample, fuse_passes, g_shrink

    def __call__(self, model: Any, x: Tensor, generator: torch.Generator | None = None,
                 place_distance: str = "cosine") -> dict[str, Tensor]:
        """The terms dict of :func:`adaptivemix` for ``x``; ``place_distance`` is the distance
        when ``distance`` is None (the GAN code's by default)."""
        check_tensor("x", x, ndim=_INPUT_RANKS, min_batch=2, floating=True)
        check_generator(generator, x.device)
        batch = x.shape[0]
        if self.partner == "permutation":
            index = permutation_partners(batch, generator, x.device)
        else:
            index = flip_partners(batch, x.device)
        draws = batch if self.per_sample else 1
        lam = sample_lam(self.alpha, draws, generator, x.device).expand(batch)
        return adaptivemix(model, x, lam, index, noise_std=self.noise_std, generator=generator,
                           distance=self.distance or place_distance, mode=self.mode,
                           weight=self.weight, fuse_passes=self.fuse_passes)

    @property
    def g_term(self) -> bool:
        return self.g_shrink

    def d_logits(self, D: Any, x: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``gan`` D function: the logit the adversarial losses use and the shrinkage."""
        out = self(D, x, generator=generator)
        return out["logits"], out["loss"]

    def feature_terms(self, model: Any, x: Tensor,
                      generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``classify`` feature shrinkage: the terms dict; ``lam``/``index`` only in reference
        mode, whose logits score the mixed features (additive mode scores the clean ones)."""
        out = self(model, x, generator=generator, place_distance="mse")
        if self.mode != "reference":
            out = {k: v for k, v in out.items() if k not in ("lam", "index")}
        return out

    __repr__ = options_repr


def _check_call(model: Any, x: Tensor, lam: float | Tensor, index: Tensor, distance: str,
                mode: str, weight: float) -> tuple[Any, Tensor]:
    """Shared argument checks; return the split model and lam as a ``[B]`` tensor."""
    check_tensor("x", x, ndim=_INPUT_RANKS, min_batch=2, floating=True)
    batch = x.shape[0]
    check_index(index, batch)
    check_lam(lam, batch)
    check_choice("distance", distance, DISTANCES)
    check_choice("mode", mode, MODES)
    check_nonneg("weight", weight)
    split = as_split(model)
    if isinstance(split, TimmSplit):
        split.check_head()  # before the trunk passes, not after them
    param = first_tensor(split)
    check_same_device(x=x, index=index, model=param)
    check_model_dtype("x", x, split)
    # lam stays in at least float32 even for half-precision inputs (a bf16 lam has 8 bits).
    lam = torch.as_tensor(lam, dtype=torch.promote_types(x.dtype, torch.float32), device=x.device)
    return split, (lam.expand(batch) if lam.dim() == 0 else lam)


def _check_no_batch_statistics(split: torch.nn.Module) -> None:
    """fuse_passes would normalise clean and mixed samples with shared batch statistics."""
    for name, module in split.named_modules():  # BatchNorm without running statistics uses
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and (  # the batch's in eval
                module.training or module.running_mean is None):
            raise ValueError(f"fuse_passes=True needs a trunk without batch statistics, but "
                             f"{name or 'the model'} ({type(module).__name__}) normalises with "
                             f"them; use fuse_passes=False, or eval mode")


def _features(split: Any, x: Tensor) -> Tensor:
    z = _one_tensor("features", split.features(x))
    # z[index] pairs samples by the first dimension: a trunk that reads x as one unbatched
    # sample (a rank-3 image to a Conv2d) would pair feature channels instead, without a word.
    if z.dim() == 0 or z.shape[0] != x.shape[0]:
        raise ValueError(f"the model's features must keep the batch dimension: x has shape "
                         f"{tuple(x.shape)} (batch {x.shape[0]}) but features(x) has shape "
                         f"{tuple(z.shape)}; pass x as a batch [B, ...] the model reads as one "
                         f"(e.g. [B, C, H, W] for a Conv2d trunk)")
    return z


def _head(split: Any, z: Tensor) -> Tensor:
    return _one_tensor("head", split.head(z))


def _one_tensor(part: str, out: Any) -> Tensor:
    """``out`` when it is a tensor: AdaptiveMix adds and mixes the parts' outputs, which a
    tuple or dict would join or fail on far from the cause."""
    if not isinstance(out, Tensor):
        raise TypeError(f"the model's {part} must return one tensor, got {type(out).__name__}; "
                        f"wrap the model in a robustrep.split.FeatureSplit whose features and "
                        f"head return tensors")
    return out


def _terms(split: Any, z: Tensor, z_b: Tensor, z_mix: Tensor, lam: Tensor, index: Tensor,
           noise: Tensor | None, distance: str, mode: str, weight: float) -> dict[str, Tensor]:
    """Shrinkage, logits and logging terms from the clean, partner and mixed features."""
    if mode == "reference":
        z_lin = mixup(z, z_b, lam)[0]
    else:  # z_lin only feeds the detached target: build no graph for it
        z_lin = mixup(z.detach(), z_b.detach(), lam)[0]
    target = z_lin.detach()
    if noise is not None:
        check_same_shape("noise", noise, "features", z_lin)
        target = target + noise.detach()
    shrink = shrinkage(z_mix, target, distance)
    if mode == "reference":
        logits = _head(split, z_lin) + _head(split, z_mix)
    else:
        logits = _head(split, z)
    return {
        "loss": weight * shrink.mean(),
        "logits": logits,
        "lam": lam.detach(),
        "index": index,
        "target": target,
        "adaptivemix/shrink": shrink.detach().mean(),
        "adaptivemix/lam": lam.detach().mean(),
    }
