r"""Union of 1-D subspaces (UoS): a frozen orthogonal ``|Wv|`` head and its angle-based OOD score.

Paper: Zaeemzadeh, Bisagno, Sambugaro, Conci, Rahnavard & Shah, "Out-of-Distribution Detection
Using Union of 1-Dimensional Subspaces", CVPR 2021. Reference code: ``zaeemzadeh/OOD``
(``wideresnet_UoS.py`` for the head, ``evaluate.py`` for the score). AdaptiveMix's classifier
(Liu et al., CVPR 2023, ``WentianZhang-ML/AdaptiveMix`` ``classification/models.py``) uses the
same head.

**Head.** For a pre-logit feature ``z`` the class scores are

.. math:: \text{logits} = s\,\bigl|W v\bigr|, \qquad v = z / \lVert z \rVert_2,

with ``W`` (``[C, D]``) bias-free, orthogonally initialised and frozen: training can only move the
features, so each class is pushed onto the 1-D subspace spanned by its row of ``W`` (either sign,
hence the absolute value). For a unit ``v`` and ``C <= D`` the rows are orthonormal, so every logit
lies in ``[0, s]``. Both references train cross-entropy on these bounded logits with no scale
(``s = 1``, our default): the loss can then never fall below ``log(1 + (C - 1) / e)``, but the
gradient never vanishes either; ``scale`` is there for users who want sharper softmax outputs.

:class:`UoSHead` exposes the two halves of the reference split, ``embed(z) = z / ||z||`` (the
reference ``_embedding`` ends with it) and ``project(v) = s |W v|`` (``_linear_classifier``, which
does *not* renormalise: AdaptiveMix projects the mixed unit features ``lam v_a + (1 - lam) v_b`` as
they are). ``forward(z) = project(embed(z))``.

**Score.** :class:`UoS` fits, for each class ``c``, the first left singular vector ``u_c`` of the
matrix of that class's training features (``D x N_c``, not centred, as ``evaluate.py``), and scores

.. math:: s(z) = \min_c \arccos \frac{|u_c^\top z|}{\lVert z \rVert_2} \in [0, \pi/2],

the smallest angle between ``z`` and any class subspace. **Higher = more OOD** (pytorch-ood's
convention); the score is invariant to the scale of ``z``.

**Monte-Carlo dropout.** The reference (``extract_features.py --mc 50``, ``evaluate.py``
``score_func``) passes each test image ``mc`` times through the network with its dropout active and
takes the minimum angle over classes *and* passes. ``UoS(encoder, mc_dropout=N)`` does the same in
:meth:`UoS.predict`: the encoder's dropout modules are switched to training mode for the ``N``
passes (and back afterwards), everything else stays in eval mode. ``N = 1`` (default) is one
deterministic pass; AdaptiveMix's WRN has no dropout, so there the two are the same. Difference:
the class directions are fitted on whatever features ``fit``/``fit_features`` get (in the ood
program, one deterministic pass), where the reference's training features come from one pass with
dropout on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
from pytorch_ood.api import (DetectorInfo, FeaturesDetector, ModelNotSetException, Paper,
                             RequiresFittingException, Task)
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

__all__ = ["UoS", "UoSHead", "first_singular_vectors", "subspace_angles"]

PAPER = Paper(title="Out-of-Distribution Detection Using Union of 1-Dimensional Subspaces",
              venue="CVPR", year=2021,
              url="https://openaccess.thecvf.com/content/CVPR2021/html/Zaeemzadeh_Out-of-"
                  "Distribution_Detection_Using_Union_of_1-Dimensional_Subspaces_CVPR_2021_"
                  "paper.html",
              code="https://github.com/zaeemzadeh/OOD")


class UoSHead(nn.Module):
    """``s |W z/||z|| |`` with a frozen, orthogonally initialised, bias-free ``W`` ``[C, D]``.

    ``weight`` is an ``nn.Parameter`` with ``requires_grad=False``: it is saved in the state dict
    (so a run folder restores the same subspaces) and optimizers built from trainable parameters
    skip it.

    Args:
        in_features: ``D``, the pre-logit feature dimension.
        num_classes: ``C``.
        scale: ``s`` > 0, multiplies the logits (reference: 1).
        gain: gain of the orthogonal initialisation (reference: 1, so rows have unit norm).
    """

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0, gain: float = 1.0):
        super().__init__()
        if int(in_features) < 1 or int(num_classes) < 1:
            raise ValueError(f"in_features and num_classes must be >= 1, got in_features="
                             f"{in_features}, num_classes={num_classes}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale}")
        self.in_features, self.out_features = int(in_features), int(num_classes)
        self.scale = float(scale)
        weight = torch.empty(self.out_features, self.in_features)
        nn.init.orthogonal_(weight, gain=gain)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None  # detectors reading the last layer's bias see that there is none

    def embed(self, z: Tensor) -> Tensor:
        """``z / ||z||`` over the last dimension (the reference's ``F.normalize``)."""
        return F.normalize(z, p=2, dim=-1)

    def project(self, v: Tensor) -> Tensor:
        """``s |W v|``, without renormalising ``v``."""
        return self.scale * F.linear(v, self.weight.to(v.dtype)).abs()

    def forward(self, z: Tensor) -> Tensor:
        return self.project(self.embed(z))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"scale={self.scale}, frozen=True")


def first_singular_vectors(z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per class, the first left singular vector of its features ``Z_c^T`` (``D x N_c``).

    Args:
        z: features ``[N, D]``.
        labels: class labels ``[N]``; negative labels (pytorch-ood's OOD marker) are ignored.

    Returns:
        ``(vectors [K, D], classes [K])``: unit vectors (sign arbitrary, as any SVD's) of the
        ``K`` classes present, in increasing label order. Computed in float64.
    """
    if z.dim() != 2 or labels.dim() != 1 or labels.shape[0] != z.shape[0]:
        raise ValueError(f"z must be [N, D] and labels [N]; got z {tuple(z.shape)}, labels "
                         f"{tuple(labels.shape)}")
    known = labels >= 0
    if not bool(known.any()):
        raise ValueError("labels hold no in-distribution sample (all are negative)")
    z, labels = z[known].detach().double().cpu(), labels[known].cpu()
    classes = torch.unique(labels)
    # The right singular vectors of Z_c [N_c, D] are the left ones of Z_c^T [D, N_c].
    vectors = [torch.linalg.svd(z[labels == c], full_matrices=False).Vh[0] for c in classes]
    return torch.stack(vectors), classes


def subspace_angles(z: Tensor, vectors: Tensor) -> Tensor:
    """``arccos(|u_c^T z| / ||z||)`` for every feature and class: ``[N, K]`` in ``[0, pi/2]``.

    A zero feature has no direction; it gets ``pi/2`` (orthogonal to every class).
    """
    z = z.to(vectors.dtype)
    cos = (z @ vectors.T).abs() / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.arccos(cos.clamp(0.0, 1.0))


class UoS(FeaturesDetector):
    """The UoS OOD score with pytorch-ood's detector interface (``fit``/``predict`` on images
    through ``encoder``, ``fit_features``/``predict_features`` on features).

    Score: the smallest angle (radians, ``[0, pi/2]``) between a feature and the first singular
    vector of any class's training features. Higher = more OOD.

    Args:
        encoder: images -> pooled pre-logit features ``[B, D]``; may be None when only
            ``fit_features``/``predict_features`` are used.
        mc_dropout: stochastic passes per test image in :meth:`predict` (the reference: 50, with
            dropout 0.1); the score is the minimum over them. Above 1 the encoder must be an
            ``nn.Module`` (or its bound method) holding dropout layers.
    """

    info = DetectorInfo(paper=PAPER, tasks={Task.CLASSIFICATION})
    requires_fit = True

    def __init__(self, encoder: Callable[[Tensor], Tensor] | None = None, mc_dropout: int = 1):
        if isinstance(mc_dropout, bool) or not isinstance(mc_dropout, int) or mc_dropout < 1:
            raise ValueError(f"mc_dropout must be an integer >= 1, got {mc_dropout!r}")
        self.encoder = encoder
        self.mc_dropout = mc_dropout
        self.vectors: Tensor | None = None
        self.classes: Tensor | None = None

    @property
    def scores_images(self) -> bool:
        """Whether scoring needs the images (Monte-Carlo passes) rather than fixed features."""
        return self.mc_dropout > 1

    def fit(self, data_loader: DataLoader) -> UoS:
        if self.encoder is None:
            raise ModelNotSetException("UoS.fit needs an encoder (images -> features)")
        feats, labels = [], []
        with torch.no_grad():
            for x, y in data_loader:
                device = self.device
                feats.append(self.encoder(x if device is None else x.to(device)).cpu())
                labels.append(torch.as_tensor(y).cpu())
        return self.fit_features(torch.cat(feats), torch.cat(labels))

    def fit_features(self, x: Tensor, y: Tensor) -> UoS:
        """Fit the class directions on features ``x [N, D]`` with labels ``y [N]``."""
        vectors, classes = first_singular_vectors(x, y)
        device = self.device
        self.vectors = vectors if device is None else vectors.to(device)
        self.classes = classes
        return self

    def predict(self, x: Tensor) -> Tensor:
        if self.encoder is None:
            raise ModelNotSetException("UoS.predict needs an encoder (images -> features)")
        device = self.device
        x = x if device is None else x.to(device)
        with torch.no_grad(), _dropout_active(self.encoder, self.mc_dropout > 1):
            scores = [self.predict_features(self.encoder(x)) for _ in range(self.mc_dropout)]
        return torch.stack(scores).min(dim=0).values

    def predict_features(self, x: Tensor) -> Tensor:
        """Scores ``[B]`` (float64): the smallest angle to any class direction."""
        if self.vectors is None:
            raise RequiresFittingException("UoS must be fitted (fit or fit_features) first")
        if x.dim() != 2 or x.shape[1] != self.vectors.shape[1]:
            raise ValueError(f"features must be [B, {self.vectors.shape[1]}], got "
                             f"{tuple(x.shape)}")
        return subspace_angles(x.detach(), self.vectors).min(dim=1).values


@contextlib.contextmanager
def _dropout_active(encoder: Callable[[Tensor], Tensor], active: bool) -> Iterator[None]:
    """Dropout layers of ``encoder``'s module in training mode inside the block (MC dropout)."""
    if not active:
        yield
        return
    module = getattr(encoder, "__self__", encoder)
    layers = [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)
              and m.p > 0] if isinstance(module, nn.Module) else []
    if not layers:
        raise ValueError("mc_dropout > 1 needs an encoder module with dropout (p > 0), e.g. a "
                         "wrn model trained with drop_rate 0.1; with none every pass is the same")
    modes = [m.training for m in layers]
    try:
        for m in layers:
            m.train()
        yield
    finally:
        for m, mode in zip(layers, modes):
            m.train(mode)
