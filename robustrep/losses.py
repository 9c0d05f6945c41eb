"""GAN adversarial losses, per sample, plus the R1 and WGAN-GP gradient penalties.

Each loss is a pair of per-sample functions: ``loss_real(logits)`` (what D pays on a sample it
should call real) and ``loss_fake(logits)`` (what D pays on a sample it should call fake), and
``g_loss(logits)`` for the generator. Keeping them per sample and split by side is what lets the
sample-mixing regularizers mix *losses* (``lam * loss_real + (1 - lam) * loss_fake``) for losses
that have no probability label, such as hinge and Wasserstein (Takamoto & Morishita, MIPR 2021).

Kinds, as StudioGAN names them: ``"ns"`` (non-saturating / logistic; softplus), ``"hinge"``,
``"ls"`` (least squares, targets 1 and 0), ``"wasserstein"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from robustrep._validate import check_choice, check_tensor

LOSSES = ("ns", "hinge", "ls", "wasserstein")


def _flat(logits: Tensor) -> Tensor:
    check_tensor("logits", logits, floating=True)
    return logits.reshape(logits.shape[0], -1).mean(1) if logits.dim() > 1 else logits


def loss_real(logits: Tensor, kind: str = "ns") -> Tensor:
    """Per-sample D loss on samples labelled real."""
    check_choice("kind", kind, LOSSES)
    d = _flat(logits)
    if kind == "ns":
        return F.softplus(-d)
    if kind == "hinge":
        return F.relu(1.0 - d)
    if kind == "ls":
        return 0.5 * (d - 1.0) ** 2
    return -d


def loss_fake(logits: Tensor, kind: str = "ns") -> Tensor:
    """Per-sample D loss on samples labelled fake."""
    check_choice("kind", kind, LOSSES)
    d = _flat(logits)
    if kind == "ns":
        return F.softplus(d)
    if kind == "hinge":
        return F.relu(1.0 + d)
    if kind == "ls":
        return 0.5 * d ** 2
    return d


def g_loss(logits_fake: Tensor, kind: str = "ns") -> Tensor:
    """Per-sample generator loss on D's logits for generated samples."""
    check_choice("kind", kind, LOSSES)
    d = _flat(logits_fake)
    if kind == "ns":
        return F.softplus(-d)
    if kind == "ls":
        return 0.5 * (d - 1.0) ** 2
    return -d  # hinge and Wasserstein G losses are both -D(G(z))


def r1_penalty(logits_real: Tensor, x_real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ``||grad_x D(x)||^2`` per sample on reals (x must require grad)."""
    if not x_real.requires_grad:
        raise ValueError("x_real must require grad for the R1 penalty; call x.requires_grad_() "
                         "before the D forward")
    (grad,) = torch.autograd.grad(logits_real.sum(), x_real, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1)


def gradient_penalty(critic, x_real: Tensor, x_fake: Tensor, generator: torch.Generator | None = None
                     ) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``(||grad D(x_hat)|| - 1)^2`` per sample on interpolates."""
    eps = torch.rand(x_real.shape[0], *([1] * (x_real.dim() - 1)), device=x_real.device,
                     dtype=x_real.dtype, generator=generator)
    x_hat = (eps * x_real.detach() + (1 - eps) * x_fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.reshape(grad.shape[0], -1).norm(dim=1) - 1.0) ** 2
