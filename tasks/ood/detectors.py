"""Every pytorch-ood detector by name, built from a classifier and fitted on extracted features.

The registry is read from the installed library, not written by hand: each class exported by
``pytorch_ood.detector`` that derives from ``pytorch_ood.api.Detector`` is one entry, and its typed
base says what it consumes (pytorch-ood 0.4, ``pytorch_ood/api.py``):

=====================  ===============  ==========================================================
base                   consumes         fitted with / scored with
=====================  ===============  ==========================================================
``LogitsDetector``     logits           ``fit_logits(logits, y)`` / ``predict_logits(logits)``
``FeaturesDetector``   features         ``fit_features(z, y)`` / ``predict_features(z)``
``FeatureMapsDetector`` maps            ``fit_feature_maps(m, y)`` / ``predict_feature_maps(m)``
``GradientDetector``   images           ``fit_features`` when it has one, else ``fit(loader)`` /
                                        ``predict(x)`` on image batches (input or weight gradients)
other ``Detector``     images           as above (MCD: stochastic forward passes)
``StructuredDetector`` several layers   not built: needs per-layer modules (Gram, MultiMahalanobis)
=====================  ===============  ==========================================================

robustrep adds its own detectors with the same interface (``ROBUSTREP_DETECTORS``): ``UoS``, the
union-of-1-D-subspaces angle score (Zaeemzadeh et al., CVPR 2021, :class:`robustrep.uos.UoS`), a
``FeaturesDetector`` fitted on the ID train features.

Constructor arguments are filled by name from the classifier (:class:`OODModel`): ``model`` (images
-> logits), ``encoder`` (images -> features), ``backbone`` / ``head`` (maps and maps -> logits for
feature-map detectors; the last layer for feature detectors), ``w`` / ``b`` (the last layer's
weight and bias), ``num_classes``. Arguments the classifier cannot supply and that have no default
(CLIP text embeddings for MCM, class weights for WeightedEBO, layer lists for NACUE) make the
detector "unsupported", with the reason shown by ``robustrep ood score --list``.

Defaults robustrep sets where pytorch-ood has none (each overridable with ``--param``):

- ViM ``d`` (principal-subspace dimension): ``D // 2`` of the feature dimension ``D``; the ViM
  paper (Wang et al., CVPR 2022, haoqiwang/vim) uses 1000 of 2048 for ResNet-50 and OpenOOD's
  ``vim.yml`` 256 of 512 for ResNet-18.
- DICE ``p`` (sparsity): 0.9, the DICE paper's CIFAR setting (Sun & Li, ECCV 2022,
  deeplearning-wisc/dice).
- GradNorm ``param_filter``: the last layer's weights only, as in the GradNorm paper (Huang et al.,
  NeurIPS 2021, deeplearning-wisc/gradnorm_ood); pytorch-ood's default uses every parameter.

Input-gradient detectors (ODIN, MahalanobisODIN) get ``norm_std=None``: robustrep classifiers take
images in [0, 1] and normalise inside, so the gradient step ``eps`` is already in pixel units, which
is what the ODIN reference code (facebookresearch/odin) reaches by dividing the sign gradient by the
normalisation std.

The ``--param`` values are parsed and checked, before any feature is extracted, in
:mod:`robustrep.tasks.ood.detector_params`.

Scores follow pytorch-ood: higher = more OOD.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from robustrep._lists import check_no_empty_item
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.runtime import autocast
from robustrep.split import ConvClassifier
from robustrep.tasks.ood.extract import Extracted, OODModel

# What each typed base consumes; order matters (first match in the MRO wins).
_KINDS = (("LogitsDetector", "logits"), ("FeaturesDetector", "features"),
          ("FeatureMapsDetector", "maps"), ("StructuredDetector", "structured"),
          ("GradientDetector", "images"))

# Constructor arguments the classifier provides, by name and by the detector's kind.
_PROVIDED = {"model", "encoder", "backbone", "head", "w", "b", "num_classes"}


def _robustrep_defaults(name: str, feature_dim: int) -> dict[str, Any]:
    if name == "ViM":
        return {"d": max(1, feature_dim // 2)}
    if name == "DICE":
        return {"p": 0.9}
    return {}


@dataclass(frozen=True)
class DetectorSpec:
    """One pytorch-ood detector class as the OOD program sees it.

    Attributes:
        name: the class name (``"MaxSoftmax"``).
        cls: the class.
        consumes: ``logits``, ``features``, ``maps``, ``images`` or ``structured``.
        requires_fit: pytorch-ood's ``requires_fit``.
        fit_on: what fitting reads: ``logits``/``features``/``maps`` (the ID train set's
            extracted representation), ``images`` (``fit(loader)``) or None (no fitting).
        params: constructor parameters other than ``self`` (name -> ``inspect.Parameter``).
        paper: a one-line citation from the detector's ``info`` (or "").
        unsupported: why robustrep cannot build it from a classifier, or None.
    """

    name: str
    cls: type
    consumes: str
    requires_fit: bool
    fit_on: str | None
    params: dict[str, inspect.Parameter] = field(repr=False)
    paper: str = ""
    unsupported: str | None = None

    @property
    def tunable(self) -> dict[str, list]:
        return dict(getattr(self.cls, "hyperparameter_space", {}) or {})

    def describe_params(self) -> str:
        parts = []
        for p in self.params.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in _PROVIDED:
                continue
            parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
        return ", ".join(parts)


def _consumes(cls: type) -> str:
    from pytorch_ood import api
    for base_name, kind in _KINDS:
        base = getattr(api, base_name, None)
        if base is not None and issubclass(cls, base):
            return kind
    return "images"


def _overrides(cls: type, method: str) -> bool:
    """Whether ``cls`` defines ``method`` itself rather than inheriting the typed base's stub."""
    from pytorch_ood import api
    for klass in cls.__mro__:
        if klass.__module__ == api.__name__:
            return False
        if method in klass.__dict__:
            return True
    return False


def _fit_on(cls: type, consumes: str) -> str | None:
    if not getattr(cls, "requires_fit", False):
        return None
    preferred = {"logits": ("fit_logits",), "features": ("fit_features",),
                 "maps": ("fit_feature_maps",),
                 "images": ("fit_features", "fit_logits", "fit_feature_maps")}
    for method in preferred.get(consumes, ()):
        if _overrides(cls, method):
            return {"fit_logits": "logits", "fit_features": "features",
                    "fit_feature_maps": "maps"}[method]
    return "images"


def _paper(cls: type) -> str:
    info = getattr(cls, "info", None)
    paper = getattr(info, "paper", None)
    if paper is None:
        return ""
    return f"{paper.title} ({paper.venue} {paper.year}) {paper.url}"


def _unsupported(name: str, consumes: str, params: dict[str, inspect.Parameter]) -> str | None:
    if consumes == "structured":
        return ("reads several layers at once (StructuredDetector); robustrep passes only the "
                "features/head split of the classifier")
    for p in params.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.default is not p.empty:
            continue
        if p.name == "model" and "List" in str(p.annotation):
            return "needs a list of per-layer modules"
        if p.name not in _PROVIDED and p.name not in _robustrep_defaults(name, 2):
            return f"needs constructor argument {p.name!r}, which a classifier run cannot supply"
    return None


def _robustrep_detectors() -> dict[str, type]:
    """robustrep's own pytorch-ood-style detectors, by name (they join the registry)."""
    from robustrep.uos import UoS
    return {"UoS": UoS}


def _build_registry() -> dict[str, DetectorSpec]:
    import pytorch_ood.detector as module
    from pytorch_ood.api import Detector

    names = getattr(module, "__all__", None) or dir(module)
    classes = {name: getattr(module, name, None) for name in names}
    classes.update(_robustrep_detectors())
    registry: dict[str, DetectorSpec] = {}
    for name, cls in classes.items():
        if not (inspect.isclass(cls) and issubclass(cls, Detector)) or inspect.isabstract(cls):
            continue
        params = dict(inspect.signature(cls.__init__).parameters)
        params.pop("self", None)
        consumes = _consumes(cls)
        registry[name] = DetectorSpec(
            name=name, cls=cls, consumes=consumes,
            requires_fit=bool(getattr(cls, "requires_fit", False)),
            fit_on=_fit_on(cls, consumes), params=params, paper=_paper(cls),
            unsupported=_unsupported(name, consumes, params))
    return registry


_REGISTRY: dict[str, DetectorSpec] | None = None


def registry() -> dict[str, DetectorSpec]:
    """All detector classes exported by the installed ``pytorch_ood.detector``, by name."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _build_registry()
    return _REGISTRY


def list_detectors(supported_only: bool = False) -> list[str]:
    return sorted((n for n, s in registry().items() if not (supported_only and s.unsupported)),
                  key=str.lower)


def get_spec(name: str) -> DetectorSpec:
    """The spec of detector ``name`` (case-insensitive); unknown or unsupported: ConfigError
    (``--detectors``, ``--param``; also a ValueError)."""
    reg = registry()
    lowered = {n.lower(): n for n in reg}
    key = lowered.get(str(name).strip().lower())
    if key is None:
        close = difflib.get_close_matches(str(name), list(reg), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown detector {name!r}{hint}; valid detectors (pytorch-ood "
                          f"{_version()}): {', '.join(list_detectors(supported_only=True))}")
    spec = reg[key]
    if spec.unsupported:
        raise ConfigError(f"detector {spec.name} cannot be built from a classifier run: "
                          f"{spec.unsupported}. Supported: "
                          f"{', '.join(list_detectors(supported_only=True))}")
    return spec


def parse_detectors(text: str | Sequence[str]) -> list[DetectorSpec]:
    """``"MaxSoftmax,Energy..."`` (or a list of such strings) -> specs, in order. A detector
    named twice (also in two spellings, ``knn,KNN``) is refused, as ``--ood`` and ``--seeds``
    refuse a value twice: it was dropped without a word. ``all`` stands alone."""
    items = [text] if isinstance(text, str) else list(text)
    try:  # the library's list check, a plain ValueError: here it is the option's refusal
        check_no_empty_item("--detectors", text, "detector names separated by commas, or all")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    names = [n.strip() for item in items for n in str(item).split(",") if n.strip()]
    if not names:
        raise ConfigError("no detector given; choose from: "
                          + ", ".join(list_detectors(supported_only=True)))
    if any(n.lower() == "all" for n in names):
        if len(names) > 1:  # `all,KNN` scored all; the user meant one of the two
            raise ConfigError(f"--detectors: 'all' names every detector; give it alone or list "
                              f"the detectors; got {','.join(names)!r}")
        return [registry()[n] for n in list_detectors(supported_only=True)]
    from robustrep.tasks.common.options import unique
    specs = [get_spec(name) for name in names]
    unique([spec.name for spec in specs], "--detectors", "detector")
    return specs


# The --param parsing and checks moved to detector_params; still importable from here.
def _version() -> str:
    try:
        from importlib.metadata import version
        return version("pytorch-ood")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "?"


# Detectors that fit one model per class from the ID train labels (pytorch-ood 0.4.0: class
# means for Mahalanobis, RMD, MahalanobisODIN and MultiMahalanobis, a Gaussian per class for
# GMM, mean patterns for SHE, Weibull fits for OpenMax, Gram's per-class bounds; robustrep's UoS a
# direction per class). A class missing from the fit data gets no model, and its ID images are
# flagged as OOD. ViM, KNN, NNGuide, DICE, ReAct, VRA, NCI, fDBD and PNML use the labels only to
# drop OOD-labelled samples; KLMatching fits per predicted class; TemperatureScaling one scalar.
PER_CLASS = frozenset({"Mahalanobis", "RMD", "MahalanobisODIN", "MultiMahalanobis", "GMM", "SHE",
                       "OpenMax", "Gram", "UoS"})


def _classifier_param_filter(model: OODModel, module: nn.Module):
    """``param_filter`` selecting the last layer's weights (GradNorm paper, Huang et al. 2021),
    by their names in ``module``, the one the detector differentiates (``model`` or the
    :class:`AmpPasses` around it)."""
    weight = getattr(model.classifier, "weight", None)
    # a 1x1 convolution's weight is its kernel reshaped, computed: select the kernel
    ids = {id(weight)} if isinstance(weight, nn.Parameter) else {
        id(p) for n, p in model.classifier.named_parameters() if n.endswith("weight")} or {
        id(p) for p in model.classifier.parameters()}
    names = {n for n, p in module.named_parameters() if id(p) in ids}
    return lambda name: name in names


# Arguments that, given, fit the detector at construction: pytorch-ood's ReAct uses a given
# threshold directly ("fitting is optional"); fitting it replaced the value by the percentile's.
_FITTED_BY = {"ReAct": "threshold"}


def fits_on(spec: DetectorSpec, params: dict[str, Any] | None = None) -> str | None:
    """What fitting ``spec`` reads (``spec.fit_on``), or None when it is not fitted, also when
    ``params`` (its overrides) give what the fit would estimate (``ReAct.threshold``)."""
    key = _FITTED_BY.get(spec.name)
    if key is not None and (params or {}).get(key) is not None:
        return None
    return spec.fit_on


def _differentiates(spec: DetectorSpec) -> bool:
    """Whether ``spec`` takes gradients through the classifier (pytorch-ood's
    ``GradientDetector``: ODIN's and MahalanobisODIN's input gradients, GradNorm's and
    GradUncertainty's weight gradients)."""
    from pytorch_ood.api import GradientDetector
    return issubclass(spec.cls, GradientDetector)


def _per_sample_weight_gradients(spec: DetectorSpec) -> bool:
    """Whether ``spec`` differentiates per sample w.r.t. the weights ``param_filter`` selects
    (GradNorm, GradUncertainty): pytorch-ood 0.4 takes those with ``torch.func.vmap``, whose
    batched batch norm refuses bfloat16 activations with float32 weights ("expected scalar type
    BFloat16 but found Float", measured on CPU), where eager autocast mixes them."""
    return "param_filter" in spec.params


def passes_amp(spec: DetectorSpec, amp: str) -> str:
    """The autocast precision of ``spec``'s own passes through the classifier under ``--amp
    amp``: ``amp``, except float32 (``off``) for a gradient detector under fp16 and for the
    per-sample weight-gradient ones under either (:func:`_per_sample_weight_gradients`).
    pytorch-ood takes the gradients with ``torch.autograd.grad`` and no loss scaling, and
    float16's range ends near 6e-8: ODIN's loss at temperature 1000 has gradients of about 1e-3
    at the logits, less at the pixels, whose sign is the whole of the perturbation. bf16 has
    float32's range."""
    if amp != "off" and _per_sample_weight_gradients(spec):
        return "off"
    return "off" if amp == "fp16" and _differentiates(spec) else amp


def amp_note(specs: Sequence[DetectorSpec], amp: str) -> str | None:
    """The note naming the detectors ``--amp`` leaves in float32, and why (None: none)."""
    kept = [s for s in specs if passes_amp(s, amp) != amp]
    if not kept:
        return None
    names = ", ".join(s.name for s in kept)
    verb, its = ("runs", "its") if len(kept) == 1 else ("run", "their")
    if amp == "fp16":
        why = (f"pytorch-ood takes {its} gradients without loss scaling, which would underflow "
               f"in float16")
        bf16 = [s.name for s in kept if not _per_sample_weight_gradients(s)]
        tail = f" (--amp bf16, with float32's range, reaches {', '.join(bf16)})" if bf16 else ""
    else:
        why, tail = (f"{its} per-sample weight gradients, taken with torch.func.vmap, fail "
                     f"under autocast (vmap's batch norm takes one dtype)"), ""
    return (f"--amp {amp}: {names} {verb} in float32: {why}; the extraction and the other "
            f"detectors use {amp}{tail}")


class AmpPasses(nn.Module):
    """``fn`` (the classifier's forward, or its encoder) under ``--amp`` with float32 outputs,
    given to the detectors that pass images through the classifier themselves (ODIN,
    MahalanobisODIN, MCD, UoS with Monte-Carlo passes): the network runs in the lower precision,
    as in the extraction (:func:`robustrep.tasks.ood.extract.extract`), and the detector's own
    arithmetic on its outputs (ODIN's softmax at temperature 1000, MahalanobisODIN's quadratic
    form) stays float32, as it does on extracted features."""

    def __init__(self, model: OODModel, fn, device: torch.device | str, amp: str) -> None:
        super().__init__()
        self.model = model  # a submodule: the detectors see its parameters; train() reaches it
        self._fn, self._device, self._amp = fn, torch.device(device), amp

    def forward(self, x: Tensor) -> Tensor:
        with autocast(self._device, self._amp):
            out = self._fn(x)
        return out.float()


def build_detector(spec: DetectorSpec, model: OODModel, num_classes: int, feature_dim: int,
                   params: dict[str, Any] | None = None, device: torch.device | str = "cpu",
                   amp: str = "off"):
    """Instantiate ``spec`` for ``model``; ``params`` override constructor arguments. ``amp``:
    the autocast precision of the passes the detector makes itself (:func:`passes_amp`)."""
    if spec.unsupported:
        raise ValueError(f"detector {spec.name} is unsupported: {spec.unsupported}")
    layer = model.classifier
    if reads_linear_head(spec) and linear_map(layer) is None:  # ood score refused it already
        raise ValueError(f"{spec.name} reads the last layer's weights as a linear map's "
                         f"(logits = W z + b), but this classifier's last layer is "
                         f"{type(layer).__name__}: its scores would mean something else")
    w, b = linear_map(layer) or (getattr(layer, "weight", None), getattr(layer, "bias", None))
    amp = passes_amp(spec, amp)
    provided = {
        "model": model if amp == "off" else AmpPasses(model, model.forward, device, amp),
        "num_classes": num_classes,
        "encoder": model.features if amp == "off" else AmpPasses(model, model.features, device,
                                                                 amp),
        "backbone": model.backbone,
        "head": model.maps_head if spec.consumes == "maps" else layer,
        "w": w, "b": b,
    }
    kwargs: dict[str, Any] = {}
    for pname in spec.params:
        if pname in provided:
            if provided[pname] is None:
                raise ValueError(f"{spec.name} needs {pname!r} but the classifier's last layer "
                                 f"({type(layer).__name__}) has none")
            kwargs[pname] = provided[pname]
    kwargs.update(_robustrep_defaults(spec.name, feature_dim))
    if spec.name == "GradNorm":
        kwargs["param_filter"] = _classifier_param_filter(model, kwargs["model"])
    kwargs.update(params or {})
    detector = spec.cls(**kwargs)
    return detector.to(device)


def reads_linear_head(spec: DetectorSpec) -> bool:
    """Whether ``spec`` reads the last layer as the linear map ``logits = W z + b``: its weight
    and bias as constructor arguments (ViM, DICE) or ``head.weight`` in its code (NCI, fDBD)."""
    return bool({"w", "b"} & spec.params.keys()) or _reads_head_weights(spec)


def linear_map(layer: nn.Module) -> tuple[Tensor, Tensor] | None:
    """``(W [C, D], b [C])`` of the last layer where it is a linear map of the pooled features:
    an ``nn.Linear`` (``b`` zeros where it has none: it adds nothing) or a 1x1 convolution
    (:class:`~robustrep.split.ConvClassifier` of a 1x1 kernel, reshaped); None otherwise
    (a UoS head's ``|W z| / ||z||``, a distilled model's averaged heads, a wider kernel)."""
    if not (isinstance(layer, nn.Linear) or isinstance(layer, ConvClassifier)
            and layer.is_linear):
        return None
    w = layer.weight
    return w, layer.bias if layer.bias is not None else w.new_zeros(w.shape[0])


def _reads_head_weights(spec: DetectorSpec) -> bool:
    """Whether the detector's code reads ``head.weight`` itself (NCI's signed cosine to the
    predicted class's row, fDBD's distance to a linear decision boundary) instead of calling
    the head: a UoS head classifies by ``|W z|``, where those geometries do not hold."""
    try:
        return "head.weight" in inspect.getsource(spec.cls)
    except (OSError, TypeError):
        return False


def _chunks(tensor: Tensor, size: int) -> Iterable[Tensor]:
    for start in range(0, tensor.shape[0], size):
        yield tensor[start:start + size]


def fit_detector(detector, spec: DetectorSpec, train: Extracted | None, train_loader=None,
                 params: dict[str, Any] | None = None):
    """Fit ``detector`` on the ID train set's extracted representation (or images if it must);
    not one its ``params`` have fitted (:func:`fits_on`)."""
    fit_on = fits_on(spec, params)
    if fit_on is None:
        return detector
    if fit_on == "images":
        if train_loader is None:
            raise ValueError(f"{spec.name} fits on images; no ID train loader given")
        return detector.fit(train_loader)
    if train is None:
        raise ValueError(f"{spec.name} needs fitting on the in-distribution train set; none given")
    method = {"logits": "fit_logits", "features": "fit_features", "maps": "fit_feature_maps"}
    getattr(detector, method[fit_on])(train.get(fit_on), train.labels)
    return detector


def score_extracted(detector, spec: DetectorSpec, data: Extracted, chunk: int = 4096) -> Tensor:
    """Scores ``[N]`` (float64, CPU) of a representation detector on extracted data, in chunks."""
    method = {"logits": "predict_logits", "features": "predict_features",
              "maps": "predict_feature_maps"}[spec.consumes]
    source = data.get(spec.consumes)
    if spec.consumes == "maps":
        chunk = max(1, chunk // 16)
    with torch.no_grad():
        parts = [getattr(detector, method)(part).detach().double().cpu().reshape(-1)
                 for part in _chunks(source, chunk)]
    return torch.cat(parts)


def score_images(detector, loader, device: torch.device | str = "cpu", bar=None) -> Tensor:
    """Scores ``[N]`` (float64, CPU) of an image detector (ODIN, GradNorm, MCD, ...) per batch.

    Gradients stay enabled: gradient detectors differentiate with respect to the input (ODIN) or
    the weights (GradNorm) themselves and never step the model. ``bar``: a progress bar told of
    each batch (these detectors cost several passes per image, the extraction one).
    """
    device = torch.device(device)
    parts = []
    for x, _ in loader:
        with torch.enable_grad():
            parts.append(detector.predict(x.to(device)).detach().double().cpu().reshape(-1))
        if bar is not None:
            bar.update(1)
    return torch.cat(parts)
