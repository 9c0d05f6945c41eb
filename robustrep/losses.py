"""GAN adversarial losses, per sample, plus the R1 and WGAN-GP gradient penalties.

Each loss is a pair of per-sample functions: ``loss_real(logits)`` (what D pays on a sample it
should call real) and ``loss_fake(logits)`` (what D pays on a sample it should call fake), and
``g_loss(logits)`` for the generator. Keeping them per sample and split by side is what lets the
sample-mixing regularizers mix *losses* (``lam * loss_real + (1 - lam) * loss_fake``) for losses
that have no probability label, such as hinge and Wasserstein (Takamoto & Morishita, MIPR 2021).

Kinds, as StudioGAN names them, with the papers they come from:

- ``"ns"``: non-saturating / logistic (softplus), Goodfellow et al., "Generative Adversarial
  Nets", NeurIPS 2014 (the generator's ``-log D(G(z))`` form of its section 3);
- ``"hinge"``: Lim & Ye, "Geometric GAN", arXiv 1705.02894, 2017, as used by SNGAN (Miyato et
  al., ICLR 2018); its generator loss is ``-D(G(z))``;
- ``"ls"``: least squares with targets 1 and 0 and a factor 1/2, Mao et al., "Least Squares
  Generative Adversarial Networks", ICCV 2017 (the 0-1 coding ``a = 0, b = c = 1``);
- ``"wasserstein"``: Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017 (the critic's
  unbounded scores; WGAN-GP's :func:`gradient_penalty` is separate).

Checked against ``POSTECH-CVLab/PyTorch-StudioGAN`` ``src/utils/losses.py``: ``d_vanilla`` and
``g_vanilla`` in their softplus form, ``d_ls``/``g_ls``, ``d_hinge``/``g_hinge`` and
``d_wasserstein``/``g_wasserstein`` are the batch means of the per-sample losses here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from robustrep._names import LOSSES  # noqa: F401 (re-exported: robustrep.losses.LOSSES)
from robustrep._validate import (check_choice, check_generator, check_same_device,
                                 check_same_shape, check_tensor)


def _per_sample(loss: Tensor) -> Tensor:
    # Logits with extra dims (patch maps, ensemble members [B, K]) average the per-element
    # *losses*, not the logits: each patch or member is scored on its own.
    return loss.reshape(loss.shape[0], -1).mean(1) if loss.dim() > 1 else loss


def _checked(logits: Tensor, kind: str) -> Tensor:
    check_choice("kind", kind, LOSSES)
    check_tensor("logits", logits, floating=True)
    if logits.dim() == 0:
        raise ValueError("logits must have a batch dimension, got a scalar")
    return logits


def loss_real(logits: Tensor, kind: str = "ns") -> Tensor:
    """Per-sample D loss on samples labelled real."""
    d = _checked(logits, kind)
    if kind == "ns":
        return _per_sample(F.softplus(-d))
    if kind == "hinge":
        return _per_sample(F.relu(1.0 - d))
    if kind == "ls":
        return _per_sample(0.5 * (d - 1.0) ** 2)
    return _per_sample(-d)


def loss_fake(logits: Tensor, kind: str = "ns") -> Tensor:
    """Per-sample D loss on samples labelled fake."""
    d = _checked(logits, kind)
    if kind == "ns":
        return _per_sample(F.softplus(d))
    if kind == "hinge":
        return _per_sample(F.relu(1.0 + d))
    if kind == "ls":
        return _per_sample(0.5 * d ** 2)
    return _per_sample(d)


def g_loss(logits_fake: Tensor, kind: str = "ns") -> Tensor:
    """Per-sample generator loss on D's logits for generated samples."""
    d = _checked(logits_fake, kind)
    if kind == "ns":
        return _per_sample(F.softplus(-d))
    if kind == "ls":
        return _per_sample(0.5 * (d - 1.0) ** 2)
    return _per_sample(-d)  # hinge and Wasserstein G losses are both -D(G(z))


def r1_penalty(logits_real: Tensor, x_real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ``||grad_x D(x)||^2`` per sample on reals.

    ``x_real`` must require grad, and ``logits_real`` must be computed from it.
    """
    check_tensor("x_real", x_real, min_batch=1, floating=True)
    if not x_real.requires_grad:
        raise ValueError("x_real must require grad for the R1 penalty; call x.requires_grad_() "
                         "before the D forward")
    check_tensor("logits_real", logits_real, floating=True)
    grad = _input_grad(logits_real, x_real, "logits_real", "x_real",
                       "compute it from x_real with grad enabled (not under torch.no_grad(), "
                       "nor from x_real.detach())")
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1)


def gradient_penalty(critic, x_real: Tensor, x_fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``(||grad D(x_hat)|| - 1)^2`` per sample on interpolates.

    ``x_hat = eps * x_real + (1 - eps) * x_fake`` pairs sample ``i`` of each batch, so the two
    batches must have the same shape; ``critic(x_hat)`` returns scores ``[B]`` (or ``[B, ...]``).
    """
    if not callable(critic):
        raise TypeError(f"critic must be callable, got {type(critic).__name__}")
    check_tensor("x_real", x_real, min_batch=1, floating=True)
    check_tensor("x_fake", x_fake, floating=True)
    # a batch of 1 would broadcast against the other: interpolates of one real with every fake
    check_same_shape("x_real", x_real, "x_fake", x_fake)
    check_same_device(x_real=x_real, x_fake=x_fake)
    check_generator(generator, x_real.device)
    eps = torch.rand(x_real.shape[0], *([1] * (x_real.dim() - 1)), device=x_real.device,
                     dtype=x_real.dtype, generator=generator)
    x_hat = (eps * x_real.detach() + (1 - eps) * x_fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    if not isinstance(scores, Tensor):
        raise TypeError(f"critic(x_hat) must return a tensor of scores, "
                        f"got {type(scores).__name__}")
    grad = _input_grad(scores, x_hat, "critic(x_hat)", "x_hat",
                       "call gradient_penalty with grad enabled (not under torch.no_grad()), "
                       "with a critic that does not detach its input")
    return (grad.reshape(grad.shape[0], -1).norm(dim=1) - 1.0) ** 2


def _input_grad(scores: Tensor, x: Tensor, scores_name: str, x_name: str, fix: str) -> Tensor:
    """``d sum(scores) / d x`` with its graph (a penalty is a loss on D's parameters); scores
    that do not depend on ``x`` are named here, not in autograd's words."""
    if not scores.requires_grad:
        raise ValueError(f"{scores_name} has no graph to differentiate: {fix}")
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True, allow_unused=True)
    if grad is None:
        raise ValueError(f"{scores_name} does not depend on {x_name}: compute it from "
                         f"{x_name} itself, D({x_name})")
    return grad
