"""Out-of-distribution detection metrics from outlier scores.

Convention of the inputs (pytorch-ood's): a **higher score means more likely OOD**.

* ``AUROC``: area under the ROC curve (the same for either class as positive).
* ``AUPR-IN``: area under the precision-recall curve with **ID positive**, ranked by ``-score``.
* ``AUPR-OUT``: area under the precision-recall curve with **OOD positive**, ranked by ``score``.
  Both AUPRs are the trapezoidal area under sklearn's ``precision_recall_curve``, i.e.
  ``sklearn.metrics.auc(recall, precision)`` (pytorch-ood and OpenOOD v1.5 both compute them so),
  which is *not* ``average_precision_score`` (a step-wise sum). The step-wise values are returned
  too, as ``AP-IN`` and ``AP-OUT``.
* FPR at 95% TPR, under the two conventions in use, with names that say which rate is held at 95%:

  - ``fpr95_id_tpr``: the share of **OOD samples accepted as ID** at the threshold that accepts
    95% of the ID samples (ID positive). This is the FPR@95 of Hendrycks & Gimpel (ICLR 2017),
    ODIN (Liang et al., ICLR 2018), Outlier Exposure (Hendrycks et al., ICLR 2019) and OpenOOD
    v1.0's ``fpr_recall``.
  - ``fpr95_ood_tpr``: the share of **ID samples flagged as OOD** at the threshold that flags 95%
    of the OOD samples (OOD positive). This is pytorch-ood's ``FPR95TPR`` (``OODMetrics``) and
    OpenOOD v1.5's ``auc_and_fpr_recall`` (``roc_curve(ood_indicator, -conf)``, "we treat OOD as
    positive", ``Jingkang50/OpenOOD`` ``openood/evaluators/metrics.py``).

  Both use the highest threshold whose TPR reaches the level (``roc_curve`` semantics: ties in
  the scores move together across a threshold), so they equal
  ``fpr[argmax(tpr >= 0.95)]`` of ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.
  ``fpr_at`` changes the 95 and the keys' names (``fpr90_id_tpr``, ...).
* ``AUTC``: area under the threshold curve (lower is better), as pytorch-ood computes it.
* ``roc``: sklearn's ``roc_curve(is_ood, score)`` points (``fpr``, ``tpr``, ``thresholds``, numpy)
  for plotting.

AUROC, AUPR and AUTC come from pytorch-ood 0.4.0 (Kirchheim et al., "PyTorch-OOD: A Library for
Out-of-Distribution Detection based on PyTorch", CVPR Workshops 2022), ``pytorch_ood.metrics
.OODMetrics`` fed labels ``-1`` for OOD and ``0`` for ID; its ambiguous ``FPR95TPR`` key is renamed
``fpr95_ood_tpr``. The two FPRs are computed here. Checked against ``sklearn.metrics``
(``roc_auc_score``, ``precision_recall_curve``, ``auc``, ``average_precision_score``,
``roc_curve``) and pytorch-ood on the same tied scores in the tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robustrep._validate import check_tensor

__all__ = ["ood_metrics", "fpr_at_tpr", "fpr_keys"]


def _as_tensor(name: str, x: Any) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    check_tensor(name, x, ndim=1)
    return x.detach()


def _check_rate(name: str, value: Any) -> None:
    # "not 0 < value <= 1" also refuses NaN.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


def _check_scores(name: str, x: Any) -> Tensor:
    x = _as_tensor(name, x)
    if not x.numel():
        raise ValueError(f"{name} must hold at least one score")
    if not x.is_floating_point():
        x = x.double()
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite; {bad} of {x.numel()} are NaN or inf (a "
                         f"detector that overflowed: clamp or rescale its scores)")
    return x


def fpr_keys(fpr_at: float = 0.95) -> tuple[str, str]:
    """The names of the two FPR conventions at ``fpr_at``: ``("fpr95_id_tpr", "fpr95_ood_tpr")``."""
    level = f"{100 * fpr_at:g}".replace(".", "_")
    return f"fpr{level}_id_tpr", f"fpr{level}_ood_tpr"


def fpr_at_tpr(positive: Tensor | np.ndarray, negative: Tensor | np.ndarray,
               tpr: float = 0.95) -> float:
    """False-positive rate at the highest threshold whose true-positive rate reaches ``tpr``.

    Higher scores mean "positive"; a sample is called positive when its score is >= the
    threshold. Args: 1-D finite scores ``positive`` of the positive class and ``negative`` of the
    other (tensors or numpy arrays, neither empty), and ``tpr`` in (0, 1].
    """
    positive, negative = _check_scores("positive", positive), _check_scores("negative", negative)
    _check_rate("tpr", tpr)
    n = positive.numel()
    # the fewest positives k with k / n >= tpr, compared in floating point as roc_curve's tpr is
    k = max(1, math.ceil(tpr * n))
    while k > 1 and (k - 1) / n >= tpr:
        k -= 1
    while k < n and k / n < tpr:
        k += 1
    threshold = positive.sort(descending=True).values[k - 1]
    return float((negative >= threshold).double().mean())


def _checked_pair(scores: Any, is_ood: Any) -> tuple[Tensor, Tensor]:
    """``scores`` (finite, floating) and ``is_ood`` (bool, both classes present) as tensors."""
    scores, is_ood = _as_tensor("scores", scores), _as_tensor("is_ood", is_ood)
    if scores.shape != is_ood.shape:
        raise ValueError(f"scores and is_ood must have the same shape, got {tuple(scores.shape)} "
                         f"and {tuple(is_ood.shape)}")
    scores = _check_scores("scores", scores)
    if is_ood.dtype != torch.bool:  # 0.0/1.0 floats too: labels from numpy often are
        if not bool(((is_ood == 0) | (is_ood == 1)).all()):
            raise ValueError("is_ood must hold booleans or 0/1 values")
        is_ood = is_ood.bool()
    n_ood = int(is_ood.sum())
    if n_ood == 0 or n_ood == is_ood.numel():
        raise ValueError(f"is_ood must mark both ID and OOD samples, got {n_ood} OOD of "
                         f"{is_ood.numel()}")
    return scores, is_ood


def ood_metrics(scores: Tensor | np.ndarray, is_ood: Tensor | np.ndarray,
                fpr_at: float = 0.95) -> dict[str, Any]:
    """AUROC, AUPR-IN, AUPR-OUT, both FPR@95 conventions, AUTC, AP-IN, AP-OUT and the ROC curve.

    Args:
        scores: outlier scores ``[N]``, higher = more OOD.
        is_ood: ``[N]`` booleans (or 0/1), True for OOD samples. Both classes must be present.
        fpr_at: the true-positive rate at which the false-positive rates are reported.
    """
    # Imported here: pytorch-ood and sklearn take seconds to import and only this needs them.
    from pytorch_ood.metrics import OODMetrics
    from sklearn.metrics import average_precision_score, roc_curve

    scores, is_ood = _checked_pair(scores, is_ood)
    _check_rate("fpr_at", fpr_at)
    labels = torch.where(is_ood, -1, 0).to(scores.device)
    out: dict[str, Any] = dict(OODMetrics(fpr_at=fpr_at).update(scores, labels).compute())
    for key in [k for k in out if k.startswith("FPR") and k.endswith("TPR")]:
        out.pop(key)  # pytorch-ood's ambiguous name; recomputed below under explicit names
    id_key, ood_key = fpr_keys(fpr_at)
    s_id, s_ood = scores[~is_ood].double().cpu(), scores[is_ood].double().cpu()
    out[id_key] = fpr_at_tpr(-s_id, -s_ood, fpr_at)  # ID positive: lower score = more ID
    out[ood_key] = fpr_at_tpr(s_ood, s_id, fpr_at)   # OOD positive
    s = scores.double().cpu().numpy()
    t = is_ood.cpu().numpy()
    out["AP-IN"] = float(average_precision_score(~t, -s))
    out["AP-OUT"] = float(average_precision_score(t, s))
    fpr, tpr, thresholds = roc_curve(t, s)
    out["roc"] = {"fpr": fpr, "tpr": tpr, "thresholds": thresholds}
    return out
