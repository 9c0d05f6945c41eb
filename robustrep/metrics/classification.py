"""Classification metrics: top-k accuracy, negative log-likelihood, expected calibration error.

ECE follows Guo et al., "On Calibration of Modern Neural Networks", ICML 2017: the predictions are
grouped into ``n_bins`` equal-width bins of confidence (the top-class probability), bin ``m``
being ``((m-1)/M, m/M]``, and

.. math::

    \\mathrm{ECE} = \\sum_m \\frac{|B_m|}{n}
        \\lvert \\mathrm{acc}(B_m) - \\mathrm{conf}(B_m) \\rvert.

Checked against ``gpleiss/temperature_scaling`` (``_ECELoss``: 15 bins, ``conf > lower`` and
``conf <= upper``). Top-k accuracy matches ``timm.utils.accuracy`` (as a fraction, not percent).

All functions return tensors on the inputs' device, so they can be logged from a training step;
call ``float()`` when writing them out. Their checks read the labels' range (and, for
``accuracy`` and ECE, whether the logits hold NaN): one host synchronisation per call on an
accelerator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from robustrep._validate import (check_bool, check_choice, check_positive, check_same_device,
                                 check_tensor)

__all__ = ["accuracy", "nll", "expected_calibration_error"]


def _check_logits_labels(logits: Tensor, y: Tensor, name: str = "logits") -> None:
    check_tensor(name, logits, ndim=2, floating=True)
    check_tensor("y", y, ndim=1)
    if y.dtype != torch.long:
        raise TypeError(f"y must hold class indices as int64, got dtype {y.dtype}")
    if y.shape[0] != logits.shape[0]:
        raise ValueError(f"{name} [N, C] and y [N] must have the same N, got "
                         f"{tuple(logits.shape)} and {tuple(y.shape)}")
    check_same_device(**{name: logits, "y": y})
    if y.shape[0] == 0:
        raise ValueError(f"{name} holds no samples (shape {tuple(logits.shape)}); a metric "
                         f"needs at least one")
    low, high = int(y.min()), int(y.max())  # a label past the classes would count as wrong
    if low < 0 or high >= logits.shape[1]:
        raise ValueError(f"y holds labels outside [0, {logits.shape[1]}) (the {name} columns): "
                         f"min {low}, max {high}")


def accuracy(logits: Tensor, y: Tensor,
             topk: int | Sequence[int] = 1) -> Tensor | tuple[Tensor, ...]:
    """Share of samples whose label is among the ``k`` highest logits.

    Returns a 0-d tensor for an int ``topk``, and a tuple of them for a sequence.
    """
    _check_logits_labels(logits, y)
    if bool(torch.isnan(logits).any()):  # topk ranks NaN as some class: a plausible wrong share
        raise ValueError("logits hold NaN, which has no rank; give finite logits (+-inf allowed)")
    ks = (topk,) if isinstance(topk, int) else tuple(topk)
    for k in ks:
        check_positive("topk", k, integer=True)
        if k > logits.shape[1]:
            raise ValueError(f"topk={k} exceeds the number of classes {logits.shape[1]}")
    top = logits.topk(max(ks), dim=1).indices
    hit = top == y[:, None]
    result = tuple(hit[:, :k].any(dim=1).float().mean() for k in ks)
    return result[0] if isinstance(topk, int) else result


def nll(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the labels under ``softmax(logits)``, in nats.

    Computed in float32, or float64 for float64 logits.
    """
    _check_logits_labels(logits, y)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    wide = logits if logits.dtype == torch.float64 else logits.float()
    return F.cross_entropy(wide, y, reduction=reduction)


def _is_distribution(probs: Tensor, tol: float = 1e-3) -> bool:
    """Rows in [0, 1] that sum to 1 (``tol`` for float32/half rounding of a softmax)."""
    inside = bool(((probs >= 0) & (probs <= 1)).all())
    return inside and bool(((probs.sum(dim=1) - 1).abs() <= tol).all())


def _class_probabilities(logits_or_probs: Tensor, from_logits: bool) -> Tensor:
    """float64 class probabilities ``[N, C]`` from logits (softmax) or checked probabilities."""
    check_bool("from_logits", from_logits)  # "false" is truthy: probabilities softmaxed again
    # -inf is a valid logit (a class of probability 0); NaN and +inf make softmax NaN
    if bool((torch.isnan(logits_or_probs) | (logits_or_probs == float("inf"))).any()):
        raise ValueError("logits_or_probs holds NaN or +inf; give finite logits (-inf allowed) "
                         "or probabilities")
    x = logits_or_probs.detach().double()
    if not from_logits and not _is_distribution(x):
        raise ValueError("with from_logits=False each row of logits_or_probs must be a "
                         "probability distribution (values in [0, 1] summing to 1); for logits "
                         "pass from_logits=True")
    return x.softmax(dim=1) if from_logits else x


def expected_calibration_error(logits_or_probs: Tensor, y: Tensor, n_bins: int = 15,
                               from_logits: bool = True) -> dict[str, Tensor]:
    """ECE with equal-width confidence bins, plus the reliability-diagram data.

    Args:
        logits_or_probs: ``[N, C]`` logits (``from_logits=True``) or class probabilities.
        y: labels ``[N]`` (int64).
        n_bins: number of bins of width ``1 / n_bins`` on the confidence.

    Returns:
        ``ece`` (0-d), ``bin_edges`` (``[n_bins + 1]``), and per bin ``bin_confidence`` (mean
        confidence), ``bin_accuracy`` (share correct) and ``bin_count`` (int64); confidence and
        accuracy are NaN in empty bins, so a reliability plot leaves them out.
    """
    _check_logits_labels(logits_or_probs, y, "logits_or_probs")
    check_positive("n_bins", n_bins, integer=True)
    probs = _class_probabilities(logits_or_probs, from_logits)
    confidence, pred = probs.max(dim=1)
    correct = (pred == y).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=probs.device)
    # right=False puts conf in bin m when edges[m] < conf <= edges[m + 1]; conf = 0 joins bin 0.
    bins = torch.bucketize(confidence, edges[1:-1], right=False)
    count = torch.bincount(bins, minlength=n_bins)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=probs.device)
    conf_sum = zeros.index_add(0, bins, confidence)
    acc_sum = zeros.index_add(0, bins, correct)
    ece = (conf_sum - acc_sum).abs().sum() / max(probs.shape[0], 1)
    denom = count.double()
    return {
        "ece": ece,
        "bin_edges": edges,
        "bin_confidence": conf_sum / denom,  # 0 / 0 = NaN in empty bins
        "bin_accuracy": acc_sum / denom,
        "bin_count": count,
    }
