"""Pass each dataset through the classifier once and keep what the detectors consume.

pytorch-ood 0.4 detectors read one representation each (``pytorch_ood.api``: ``LogitsDetector``,
``FeaturesDetector``, ``FeatureMapsDetector``; see the pytorch-ood docs, "Representation
Interface"). Scoring ten detectors on a dataset should therefore cost one forward pass, not ten:
:func:`extract` runs the model over a loader in batches and keeps, on the CPU,

- ``logits`` ``[N, C]``,
- ``features`` ``[N, D]``: the pooled pre-logit vector (timm ``forward_head(pre_logits=True)``),
- ``maps`` ``[N, C', H', W']``: the unpooled trunk output (timm ``forward_features``), only when a
  feature-map detector asks for it,

plus the labels. Output buffers are allocated once, at the size of the dataset, and filled batch by
batch, so a 50,000-image set costs its features and never its images.

:class:`OODModel` is the view of a classifier these functions need: ``feature_maps -> pool ->
features -> head -> logits``, with the pieces detectors take as constructor arguments
(``model``, ``encoder``, ``backbone``, ``head``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from robustrep.split import TimmSplit, _classifier
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.runtime import autocast
from robustrep.tasks.common.workers import loader_workers

REPRESENTATIONS = ("logits", "features", "maps")
FEATURE_MAP_MODES = ("spatial", "pooled")


class OODModel(nn.Module):
    """A classifier split as ``logits = head(pool(feature_maps(x)))``; inputs are images in [0, 1].

    Args:
        net: the module holding every parameter (so gradient detectors see them all through
            ``named_parameters``).
        feature_maps: ``x -> maps``; unpooled trunk output (``[B, C, H, W]`` for CNNs).
        pool: ``maps -> features [B, D]``.
        classifier: the last layer, ``features -> logits``; an ``nn.Module`` (ViM, DICE, fDBD and
            NCI read its ``weight`` and ``bias``).
        map_mode: ``"spatial"``: the feature-map detectors (ReAct, ASH, SCALE, ...) act on the
            unpooled maps, as in pytorch-ood's examples; ``"pooled"``: they act on the pooled
            pre-logit vector seen as ``[B, D, 1, 1]``, the "penultimate layer" of the ReAct
            (Sun et al., NeurIPS 2021) and ASH (Djurisic et al., ICLR 2023) papers. For a ResNet
            at 32x32 input the two coincide (the last map is 1x1).
    """

    def __init__(self, net: nn.Module, feature_maps: Callable[[Tensor], Tensor],
                 pool: Callable[[Tensor], Tensor], classifier: nn.Module,
                 map_mode: str = "spatial") -> None:
        super().__init__()
        if map_mode not in FEATURE_MAP_MODES:
            raise ValueError(f"map_mode must be one of {', '.join(FEATURE_MAP_MODES)}; "
                             f"got {map_mode!r}")
        if not isinstance(classifier, nn.Module):
            raise TypeError(f"classifier must be an nn.Module (the last layer), "
                            f"got {type(classifier).__name__}")
        self.net = net
        self._maps = feature_maps
        self._pool = pool
        # Not registered as a submodule: its parameters already belong to ``net``.
        object.__setattr__(self, "classifier", classifier)
        self.map_mode = map_mode

    # The pieces pytorch-ood detectors take as constructor arguments --------------------------

    def features(self, x: Tensor) -> Tensor:
        """``encoder``: images -> pooled pre-logit features ``[B, D]``."""
        return self._pool(self._maps(x))

    def head(self, z: Tensor) -> Tensor:
        """features ``[B, D]`` -> logits ``[B, C]``."""
        return self.classifier(z)

    def forward(self, x: Tensor) -> Tensor:
        """``model``: images -> logits."""
        return self.classifier(self.features(x))

    def backbone(self, x: Tensor) -> Tensor:
        """images -> the maps the feature-map detectors shape (see ``map_mode``)."""
        if self.map_mode == "pooled":
            return self.features(x)[:, :, None, None]
        return self._check_maps(self._maps(x))

    def maps_head(self, maps: Tensor) -> Tensor:
        """``head`` of the feature-map detectors: maps from :meth:`backbone` -> logits."""
        if self.map_mode == "pooled":
            return self.classifier(maps.flatten(1))
        return self.classifier(self._pool(maps))

    def trunk_shape(self, sample_shape: Sequence[int]) -> tuple[int, ...]:
        """The per-sample shape of the unpooled trunk output for images of ``sample_shape``,
        from two blank ones (on a model built on the meta device, without computing)."""
        from robustrep.split import probe_shape
        return probe_shape(self, self._maps, tuple(sample_shape))

    # One pass for extraction --------------------------------------------------------------------

    def outputs(self, x: Tensor, maps: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(logits, features, maps or None)`` from one trunk pass."""
        trunk = self._maps(x)
        z = self._pool(trunk)
        logits = self.classifier(z)
        if not maps:
            return logits, z, None
        if self.map_mode == "pooled":
            return logits, z, z[:, :, None, None]
        return logits, z, self._check_maps(trunk)

    @staticmethod
    def _check_maps(maps: Tensor) -> Tensor:
        check_map_shape(tuple(maps.shape[1:]))  # the user's model with --feature-maps spatial
        return maps


def check_map_shape(sample_shape: Sequence[int], who: str = "") -> None:
    """Refuse per-sample maps ``sample_shape`` that are not ``[C, H, W]`` (a transformer's
    ``[tokens, D]``) for the feature-map detectors: one line, ``who`` (the detectors, the
    model) before it."""
    if len(sample_shape) != 3:
        dims = ", ".join(map(str, ("B", *sample_shape)))
        raise ConfigError(
            f"{who}{': ' if who else ''}feature-map detectors need 4-D maps [B, C, H, W], but "
            f"this model's forward_features gives shape [{dims}] (a transformer's tokens?); "
            f"pass --feature-maps pooled to shape the pooled pre-logit vector instead")


def as_ood_model(model: nn.Module, map_mode: str = "spatial") -> OODModel:
    """View ``model`` as an :class:`OODModel`.

    Accepts an :class:`OODModel`, a :class:`robustrep.split.TimmSplit` (e.g. the programs'
    ``Classifier``, a timm model with normalisation inside), or a bare timm model (inputs then go
    to it unnormalised). The features are the timm pre-logit vector
    (``forward_head(pre_logits=True)``), also under a UoS head, whose score is defined on them.
    """
    if isinstance(model, OODModel):
        if model.map_mode != map_mode:
            return OODModel(model.net, model._maps, model._pool, model.classifier, map_mode)
        return model
    if not isinstance(model, TimmSplit):
        try:
            model = TimmSplit(model)
        except TypeError:
            raise TypeError(f"cannot view {type(model).__name__} as a classifier for OOD "
                            f"scoring: pass a robustrep Classifier (robustrep.tasks.common."
                            f"classifier_run.load_run), a timm model or an OODModel") from None
    return OODModel(model, model.feature_maps, model.pool, last_layer(model), map_mode)


class _PrelogitHead(nn.Module):
    """A classifier that is a function of the pooled pre-logits but no one module (a distilled
    model's two heads, averaged: :func:`robustrep.split._classifier`); it has no ``weight``.
    ``kind`` says what it is, in the refusals of the detectors that read one."""

    def __init__(self, parts: nn.Module, fn: Callable[[Tensor], Tensor], kind: str) -> None:
        super().__init__()
        self.parts = parts  # a submodule: moved with .to(); fn calls them
        self._fn = fn
        self.kind = kind

    def forward(self, z: Tensor) -> Tensor:
        return self._fn(z)


def last_layer(split: TimmSplit) -> nn.Module:
    """The classifier of ``split`` as a module of the pooled pre-logits ``[B, D] -> [B, C]``:
    ``get_classifier()`` as :func:`robustrep.split._classifier` applies it, which is what
    ``classify eval`` runs. A raw 1x1-conv classifier took ``[B, D]`` and failed in conv2d."""
    head = _classifier(split.model)  # refuses an auxiliary head, a distillation in training
    if isinstance(head, nn.Module):  # a Linear, a ClassifierHead's fc, a UoSHead, a conv's
        return head
    found = split.model.get_classifier()
    if isinstance(found, tuple):
        names = ", ".join(type(part).__name__ for part in found)
        return _PrelogitHead(nn.ModuleList(found), head, f"two heads averaged ({names})")
    return _PrelogitHead(found, head, type(found).__name__)


@dataclass
class Extracted:
    """What one pass over a dataset kept, all on the CPU. Absent representations are None."""

    labels: Tensor
    logits: Tensor | None = None
    features: Tensor | None = None
    maps: Tensor | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def get(self, what: str) -> Tensor:
        value = getattr(self, what)
        if value is None:
            have = [r for r in REPRESENTATIONS if getattr(self, r) is not None]
            raise ValueError(f"{what} were not extracted for this dataset; extracted: "
                             f"{', '.join(have)}")
        return value

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in
                   (self.labels, self.logits, self.features, self.maps) if t is not None)


def make_loader(dataset: Dataset, batch_size: int, workers: int | None = None,
                device: torch.device | None = None) -> DataLoader:
    """Batches of ``dataset`` in order; ``workers=None``: the machine's for data read from disk
    (:func:`~robustrep.tasks.common.workers.loader_workers`)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    workers = loader_workers(workers, dataset)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=device is not None and device.type == "cuda", drop_last=False)


def _store(buffers: dict[str, Tensor], name: str, value: Tensor, start: int, total: int) -> None:
    value = value.detach().float().cpu()
    if name not in buffers:
        buffers[name] = torch.empty((total, *value.shape[1:]), dtype=torch.float32)
    buffers[name][start:start + value.shape[0]] = value


@torch.no_grad()
def extract(model: OODModel, data: Dataset | DataLoader,
            what: Sequence[str] = ("logits", "features"), *, batch_size: int = 256,
            device: torch.device | str = "cpu", amp: str = "off", workers: int | None = None,
            desc: str = "extract", show_progress: bool = False) -> Extracted:
    """Run ``model`` over ``data`` once, in batches, and keep the representations in ``what``.

    Args:
        model: an :class:`OODModel` (already on ``device`` and in eval mode).
        data: a dataset yielding ``(image [C, H, W] in [0, 1], int label)``, or a loader of such
            batches (kept in its order).
        what: a subset of ``("logits", "features", "maps")``.
        batch_size: images per forward pass when ``data`` is a dataset.
        device: where the forward pass runs; results always land on the CPU.
        amp: autocast precision (``off``, ``bf16``, ``fp16``); results are stored as float32.
        workers: DataLoader workers when ``data`` is a dataset.

    Returns:
        An :class:`Extracted` whose tensors have one row per sample, in dataset order.
    """
    unknown = [w for w in what if w not in REPRESENTATIONS]
    if unknown:
        raise ValueError(f"unknown representation(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(REPRESENTATIONS)}")
    device = torch.device(device)
    if isinstance(data, DataLoader):
        loader = data
    else:
        loader = make_loader(data, batch_size, workers, device)
    total = len(loader.dataset)
    if total == 0:
        raise ValueError(f"{desc}: the dataset is empty")
    buffers: dict[str, Tensor] = {}
    labels = torch.empty(total, dtype=torch.long)
    start = 0
    with progress(len(loader), desc=desc, enabled=show_progress) as bar:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            with autocast(device, amp):
                logits, z, maps = model.outputs(x, maps="maps" in what)
            for name, value in (("logits", logits), ("features", z), ("maps", maps)):
                if name in what:
                    _store(buffers, name, value, start, total)
            labels[start:start + x.shape[0]] = torch.as_tensor(y).long()
            start += x.shape[0]
            bar.update(1)
    if start != total:
        raise RuntimeError(f"{desc}: the loader yielded {start} samples but the dataset has "
                           f"{total}")
    return Extracted(labels=labels, **buffers)
