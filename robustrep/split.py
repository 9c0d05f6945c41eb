"""The features/head split through which every regularizer sees a model.

A model is ``head(features(x))``. AdaptiveMix shrinks the features; the adversarial and mixing
regularizers only need the whole forward. ``features`` must be batch-permutation equivariant,
``features(x[perm]) == features(x)[perm]`` (BatchNorm in training mode is; minibatch-std is not and
belongs in the head), which lets AdaptiveMix run two trunk passes instead of the reference's three.

Adapters:
- :class:`FeatureSplit` wraps two modules (e.g. a GAN discriminator's trunk and its last layers).
- :func:`as_split` accepts a ``FeatureSplit``, any module with ``features``/``head`` methods, a
  timm model (``forward_features`` + ``forward_head(pre_logits=True)`` is the feature,
  ``get_classifier()`` the head), or a module with ``features``/``head`` submodules, in that
  order: timm models such as ReXNet, SelecSLS and VGG have ``features`` and ``head`` submodules
  that are not their split.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class FeatureSplit(nn.Module):
    """A model seen as ``head(features(x))``; ``forward`` runs both."""

    def __init__(self, features: nn.Module, head: nn.Module):
        super().__init__()
        for name, part in (("features", features), ("head", head)):
            if not callable(part):
                raise TypeError(f"{name} must be a callable nn.Module, got {type(part).__name__}")
        self.trunk = features
        self.top = head

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def head(self, z: Tensor) -> Tensor:
        return self.top(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class TimmSplit(nn.Module):
    """A timm model seen through ``forward_features`` + ``forward_head(pre_logits=True)``.

    The features are the pooled pre-logit vector; the head is the classifier (``get_classifier()``),
    so ``head(features(x))`` equals ``model(x)`` for timm models whose classifier is the last layer.
    The finer pieces are public too, for programs that read the unpooled maps (OOD detectors):
    ``features(x) = pool(feature_maps(x))``. Subclasses may transform the input in
    :meth:`prepare` (e.g. normalise pixels).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        for attr in ("forward_features", "forward_head", "get_classifier"):
            if not hasattr(model, attr):
                raise TypeError(f"model must be a timm model with {attr}(); "
                                f"{type(model).__name__} has none")
        self.model = model
        _classifier(model)  # a head that is not one function of the pre-logits: refused now

    def prepare(self, x: Tensor) -> Tensor:
        return x

    def feature_maps(self, x: Tensor) -> Tensor:
        """The unpooled trunk output ``forward_features(prepare(x))``."""
        return self.model.forward_features(self.prepare(x))

    def pool(self, maps: Tensor) -> Tensor:
        """Trunk output -> the pooled pre-logit vector ``[B, num_features]`` (``[B, 2 *
        num_features]`` for a model whose two heads read two tokens, :func:`_token_heads`)."""
        if _token_heads(self.model):
            drop = self.model.head_drop
            return torch.cat([drop(maps[:, 0]), drop(maps[:, 1])], dim=1)
        return self.model.forward_head(maps, pre_logits=True)

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.feature_maps(x))

    def head(self, z: Tensor) -> Tensor:
        self.check_head()
        return _classifier(self.model)(z)

    def check_head(self) -> None:
        """Refuse a model without a classifier, before a caller runs the trunk for its logits."""
        if getattr(self.model, "num_classes", None) == 0:
            # timm's num_classes=0 makes the classifier an Identity: the "logits" would be the
            # features themselves, which every loss on them takes without a word
            raise ValueError(f"{type(self.model).__name__} has no classifier (num_classes=0), "
                             f"so it has no head to give logits; create it with num_classes=N "
                             f"(or call reset_classifier(N)), or wrap it in a FeatureSplit with "
                             f"a head of your own")

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _classifier(model: nn.Module) -> Any:
    """``get_classifier()`` as a function of the pooled pre-logits, ``[B, C] -> [B, classes]``:
    a 1x1-conv classifier (DLA, DPN, ResNetV2) on ``[B, C, 1, 1]``, a classifier head module
    (Sequencer's) through its ``fc``, the two heads of a distilled model (DeiT, PiT, LeViT,
    EfficientFormer) averaged as its ``forward_head`` does outside distillation training."""
    found = model.get_classifier()
    name = type(model).__name__
    if getattr(model, "aux_head", None) is not None:  # VOLO adds token-label logits
        raise TypeError(f"{name}'s logits add an auxiliary head's to get_classifier()'s, which "
                        f"the pre-logits do not give: wrap its parts in a FeatureSplit")
    if isinstance(found, tuple) and len(found) == 2 and all(callable(c) for c in found):
        if getattr(model, "distilled_training", False):
            raise TypeError(f"{name} is in distillation training (two logits): call "
                            f"set_distilled_training(False) or wrap it in a FeatureSplit")
        if _token_heads(model):  # the class token's half to head, the distillation token's
            return lambda z: (found[0](z[:, :z.shape[1] // 2]) +
                              found[1](z[:, z.shape[1] // 2:])) / 2
        return lambda z: (found[0](z) + found[1](z)) / 2
    if not isinstance(found, nn.Module) or isinstance(found, (nn.ModuleList, nn.ModuleDict)):
        raise TypeError(f"{name}'s classifier ({type(found).__name__}) is not one function of "
                        f"the pooled pre-logits: wrap its parts in a FeatureSplit")
    if isinstance(getattr(found, "fc", None), nn.Module) and hasattr(found, "global_pool"):
        found = found.fc  # a timm ClassifierHead: pool, dropout, fc; the pre-logits are pooled
    if isinstance(found, nn.Conv2d):
        return ConvClassifier(found)
    return found


class ConvClassifier(nn.Module):
    """A convolution classifier (timm ResNetV2/BiT, DLA, DPN) as a module of the pooled
    pre-logits ``[B, C] -> [B, classes]``: the convolution run on ``z`` as ``[B, C, 1, 1]``, as
    the model's ``forward_head`` runs it. A 1x1 kernel is the linear map ``W z + b`` whose
    ``weight`` ``[classes, C]`` is the kernel reshaped (computed from it, so gradients reach
    it): what OOD detectors that read a linear head take (:attr:`is_linear`)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    @property
    def is_linear(self) -> bool:
        conv = self.conv
        return conv.kernel_size == (1, 1) and conv.groups == 1 and conv.padding == (0, 0)

    @property
    def weight(self) -> Tensor:
        return self.conv.weight.flatten(1)

    @property
    def bias(self) -> Tensor | None:
        return self.conv.bias

    def forward(self, z: Tensor) -> Tensor:
        return self.conv(z[..., None, None]).flatten(1)


def _token_heads(model: nn.Module) -> bool:
    """Whether ``model``'s two heads read two tokens, the class token's and the distillation
    token's (DeiT, PiT distilled), which timm's one averaged pre-logit vector does not give:
    their pre-logits are then both tokens side by side."""
    return (type(model).__name__ in ("VisionTransformerDistilled", "PoolingVisionTransformer")
            and getattr(model, "head_dist", None) is not None)


def _has_methods(model: Any, *names: str) -> bool:
    return all(callable(getattr(model, n, None)) and not isinstance(getattr(model, n), nn.Module)
               for n in names)


def is_split(model: Any) -> bool:
    return callable(getattr(model, "features", None)) and callable(getattr(model, "head", None))


def as_split(model: Any) -> nn.Module:
    """Return a view of ``model`` with ``features(x)`` and ``head(z)`` methods (the module
    docstring gives the order in which the kinds are tried)."""
    if _has_methods(model, "features", "head"):
        return model
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        return TimmSplit(model)
    if is_split(model):
        return model
    raise TypeError(
        f"cannot split {type(model).__name__} into features and head: pass a FeatureSplit "
        "(e.g. FeatureSplit(nn.Sequential(*list(net.children())[:-1], nn.Flatten()), net.fc) "
        "for a torchvision ResNet), a module with features()/head() methods, or a timm model "
        "(forward_features/forward_head)")


def placed_like(new: nn.Module, model: nn.Module) -> nn.Module:
    """``new`` (layers built to read ``model``'s features) on ``model``'s device and in its
    floating dtype, which freshly built layers do not share (float32, on the CPU)."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    return new if param is None else new.to(param.device, param.dtype)


def probe_shape(module: nn.Module, fn: Any, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample shape of ``fn(zeros(2, *sample_shape))``, with ``module`` in eval mode and no
    grad, so no BatchNorm statistic or spectral-norm vector of ``module`` moves (its mode is
    restored). Sizes a head that reads a network's features."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            param = next(module.parameters(), None)
            device = param.device if param is not None else None
            dtype = param.dtype if param is not None and param.is_floating_point() else None
            out = fn(torch.zeros(2, *sample_shape, device=device, dtype=dtype))
    finally:
        module.train(was_training)
    return tuple(out.shape[1:])
