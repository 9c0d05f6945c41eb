"""Out-of-distribution detection metrics from outlier scores.

Convention (pytorch-ood's): a **higher score means more likely OOD**, and OOD is the positive class
unless a metric says otherwise.

* ``AUROC``: area under the ROC curve with OOD positive (threshold on ``score``).
* ``AUPR-IN``: area under the precision-recall curve with **ID positive**, ranked by ``-score``.
* ``AUPR-OUT``: area under the precision-recall curve with **OOD positive**, ranked by ``score``.
  Both AUPRs are pytorch-ood's: the trapezoidal area under sklearn's ``precision_recall_curve``,
  i.e. ``sklearn.metrics.auc(recall, precision)``, which is *not* ``average_precision_score``
  (a step-wise sum). The step-wise values are returned too, as ``AP-IN`` and ``AP-OUT``.
* ``FPR95TPR``: share of ID samples flagged as OOD at the highest threshold that flags at least 95%
  of the OOD samples (OOD positive). ``fpr_at`` changes the 95 and the key's name.
* ``AUTC``: area under the threshold curve (lower is better), as pytorch-ood computes it.
* ``roc``: sklearn's ``roc_curve(is_ood, score)`` points (``fpr``, ``tpr``, ``thresholds``, numpy)
  for plotting.

The numbers come from pytorch-ood 0.4.0 (Kirchheim et al., "PyTorch-OOD: A Library for
Out-of-Distribution Detection based on PyTorch", CVPR Workshops 2022), ``pytorch_ood.metrics
.OODMetrics`` fed labels ``-1`` for OOD and ``0`` for ID; AUPR-IN / AUPR-OUT follow Hendrycks &
Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution Examples", ICLR 2017.
Checked against ``sklearn.metrics`` (``roc_auc_score``, ``precision_recall_curve``, ``auc``,
``average_precision_score``) on the same scores in the tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from robustrep._validate import check_tensor

__all__ = ["ood_metrics"]


def _as_tensor(name: str, x: Any) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    check_tensor(name, x, ndim=1)
    return x.detach()


def ood_metrics(scores: Tensor | np.ndarray, is_ood: Tensor | np.ndarray,
                fpr_at: float = 0.95) -> dict[str, Any]:
    """AUROC, AUPR-IN, AUPR-OUT, FPR@TPR, AUTC, AP-IN, AP-OUT (floats) and the ROC curve.

    Args:
        scores: outlier scores ``[N]``, higher = more OOD.
        is_ood: ``[N]`` booleans (or 0/1), True for OOD samples. Both classes must be present.
        fpr_at: the true-positive rate at which the false-positive rate is reported.
    """
    # Imported here: pytorch-ood and sklearn take seconds to import and only this needs them.
    from pytorch_ood.metrics import OODMetrics
    from sklearn.metrics import average_precision_score, roc_curve

    scores, is_ood = _as_tensor("scores", scores), _as_tensor("is_ood", is_ood)
    if scores.shape != is_ood.shape:
        raise ValueError(f"scores and is_ood must have the same shape, got {tuple(scores.shape)} "
                         f"and {tuple(is_ood.shape)}")
    if not scores.is_floating_point():
        scores = scores.double()
    if is_ood.dtype != torch.bool:
        if is_ood.is_floating_point() or not bool(((is_ood == 0) | (is_ood == 1)).all()):
            raise ValueError("is_ood must hold booleans or 0/1 integers")
        is_ood = is_ood.bool()
    n_ood = int(is_ood.sum())
    if n_ood == 0 or n_ood == is_ood.numel():
        raise ValueError(f"is_ood must mark both ID and OOD samples, got {n_ood} OOD of "
                         f"{is_ood.numel()}")
    if not 0.0 < fpr_at <= 1.0:
        raise ValueError(f"fpr_at must lie in (0, 1], got {fpr_at}")
    labels = torch.where(is_ood, -1, 0).to(scores.device)
    out: dict[str, Any] = dict(OODMetrics(fpr_at=fpr_at).update(scores, labels).compute())
    s = scores.double().cpu().numpy()
    t = is_ood.cpu().numpy()
    out["AP-IN"] = float(average_precision_score(~t, -s))
    out["AP-OUT"] = float(average_precision_score(t, s))
    fpr, tpr, thresholds = roc_curve(t, s)
    out["roc"] = {"fpr": fpr, "tpr": tpr, "thresholds": thresholds}
    return out
