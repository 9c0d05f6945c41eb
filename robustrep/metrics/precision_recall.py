"""Improved precision and recall of a generative model (k-nearest-neighbour manifolds).

Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative Models",
NeurIPS 2019. Each feature set spans a manifold: the union of balls around its points, each ball's
radius the distance to the point's k-th nearest neighbour within the set (k = 3 in the paper).
Precision is the share of generated samples inside the real manifold; recall is the share of
real samples inside the generated manifold.

Checked against ``NVlabs/stylegan2-ada-pytorch`` (``metrics/precision_recall.py``: ``kthvalue``
of ``nhood_size + 1`` including the point itself, and ``dist <= radius``) and
``kynkaat/improved-precision-and-recall-metric``. Two differences: the point itself is excluded
from its own neighbours by masking (rather than counted as the nearest at distance 0), which is
the same unless the computed self-distance is not the smallest; and both the rows and the columns
of the distance matrix are processed in chunks, so memory is ``O(chunk_size ** 2)`` whatever the
set sizes (the references hold a full row block against all columns).
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustrep._validate import check_point_sets, check_positive, check_same_device, check_tensor

__all__ = ["knn_radii", "manifold_coverage", "precision_recall"]


def _prepare(name: str, x: Tensor) -> Tensor:
    check_tensor(name, x, ndim=2, floating=True)
    if not bool(x.isfinite().all()):  # NaN distances compare false: 0 precision, no error
        raise ValueError(f"{name} holds NaN or inf values; precision/recall need finite "
                         f"features")
    x = x.detach()
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def knn_radii(feats: Tensor, k: int = 3, chunk_size: int = 2048) -> Tensor:
    """Distance from each row of ``feats`` ``[N, D]`` to its k-th nearest other row; ``[N]``."""
    feats = _prepare("feats", feats)
    check_positive("k", k, integer=True)
    check_positive("chunk_size", chunk_size, integer=True)
    n = feats.shape[0]
    if n <= k:
        raise ValueError(f"feats needs more than k={k} rows to have k neighbours, got {n}")
    radii = []
    for i0 in range(0, n, chunk_size):
        rows = feats[i0:i0 + chunk_size]
        row_ids = torch.arange(i0, i0 + rows.shape[0], device=feats.device)
        best = rows.new_full((rows.shape[0], 0), float("inf"))
        for j0 in range(0, n, chunk_size):
            dist = torch.cdist(rows, feats[j0:j0 + chunk_size])
            col_ids = torch.arange(j0, j0 + dist.shape[1], device=feats.device)
            dist = dist.masked_fill(row_ids[:, None] == col_ids[None, :], float("inf"))
            # Keep the k smallest seen so far: the k-th of all columns is among them.
            merged = torch.cat([best, dist], dim=1)
            best = merged.topk(min(k, merged.shape[1]), dim=1, largest=False).values
        radii.append(best[:, k - 1])
    return torch.cat(radii)


def manifold_coverage(query: Tensor, ref: Tensor, radii: Tensor, chunk_size: int = 2048) -> Tensor:
    """Boolean ``[N_query]``: whether each query row lies in a ball ``|q - ref_j| <= radii_j``."""
    query, ref = _prepare("query", query), _prepare("ref", ref)
    check_tensor("radii", radii, ndim=1)
    check_positive("chunk_size", chunk_size, integer=True)
    check_same_device(query=query, ref=ref, radii=radii)
    if query.shape[1] != ref.shape[1] or radii.shape[0] != ref.shape[0]:
        raise ValueError(f"query [Nq, D], ref [Nr, D] and radii [Nr] must agree, got "
                         f"{tuple(query.shape)}, {tuple(ref.shape)} and {tuple(radii.shape)}")
    dtype = torch.promote_types(query.dtype, ref.dtype)
    query, ref, radii = query.to(dtype), ref.to(dtype), radii.to(dtype)
    inside = []
    for i0 in range(0, query.shape[0], chunk_size):
        rows = query[i0:i0 + chunk_size]
        hit = torch.zeros(rows.shape[0], dtype=torch.bool, device=query.device)
        for j0 in range(0, ref.shape[0], chunk_size):
            dist = torch.cdist(rows, ref[j0:j0 + chunk_size])
            hit |= (dist <= radii[j0:j0 + chunk_size]).any(dim=1)
        inside.append(hit)
    return torch.cat(inside)


def precision_recall(real_feats: Tensor, fake_feats: Tensor, k: int = 3,
                     chunk_size: int = 2048, real_radii: Tensor | None = None) -> dict[str, float]:
    """Improved precision and recall of ``fake_feats`` against ``real_feats`` (``[N, D]`` each;
    the sets may differ in size, each spanning its own manifold, as in the references).

    Returns ``{"precision": share of fake inside the real manifold, "recall": share of real
    inside the fake manifold}``. Distances are Euclidean (``torch.cdist``) in float32, or float64
    for float64 inputs; half-precision inputs are upcast to float32. ``real_radii``: the reals'
    :func:`knn_radii` with this ``k``, kept by a caller that judges many fake sets against one
    real set (the largest cost when the real side is the larger).
    """
    real, fake = _prepare("real_feats", real_feats), _prepare("fake_feats", fake_feats)
    check_point_sets("real_feats", real, "fake_feats", fake)
    if real_radii is None:
        real_radii = knn_radii(real, k, chunk_size)
    fake_radii = knn_radii(fake, k, chunk_size)
    precision = manifold_coverage(fake, real, real_radii, chunk_size).double().mean()
    recall = manifold_coverage(real, fake, fake_radii, chunk_size).double().mean()
    return {"precision": float(precision), "recall": float(recall)}
