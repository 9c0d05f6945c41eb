"""The places where a regularizer acts, one protocol (one call shape) per place.

A program calls "the regularizer of this place" through the place's method and never asks which
method it is (timm's ``create_model`` returns one kind of object; pytorch-ood's ``Detector`` has
one ``fit``/``predict``). A registered class implements the protocol of every place its
``acts=`` names; a class may serve several places (AdaptiveMix: ``gan`` D function and
``classify`` feature shrinkage), so each place has its own method name.

=========  ==================  =====================================================================
program    place               protocol (method and attributes)
=========  ==================  =====================================================================
classify   input mixing        :class:`InputMixing`: ``mix_inputs(x, generator) -> MixResult``
classify   feature shrinkage   :class:`FeatureRegularizer`: ``feature_terms(model, x, generator)``
classify   adversarial inputs  :class:`AdversarialInputs`: ``adversarial_inputs(loss_fn, x, ...)``
gan        D function          :class:`DFunction`: ``d_logits(D, x, generator) -> (logits, loss)``
gan        D inputs            :class:`DInputs`: ``d_inputs(d_fn, x_real, x_fake, generator, ...)``
gan        extra D term        :class:`ExtraDTerm`: ``extra_d_term(score, x_real, x_fake, ...)``
gan        D auxiliary task    :class:`DAuxTask`: ``wrap(D, ...)``, ``d_aux_loss``, ``g_aux_loss``
=========  ==================  =====================================================================

A method that replaces D itself (RP-GAN's projection ensemble) is a *discriminator factory*,
registered with :func:`robustrep.registry.register_discriminator`: the program builds its D from
it; its ``[B, K]`` logits are K members, each scored with the adversarial loss and summed.

Stateful regularizers (a perturbation carried across steps) also have ``state_dict()`` and
``load_state_dict(state)``; the programs checkpoint them by registry name. This module imports
no torch, so the command line can read it before parsing its arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import Tensor

    from robustrep.mixing import MixResult

__all__ = ["InputMixing", "FeatureRegularizer", "AdversarialInputs", "DFunction", "DInputs",
           "ExtraDTerm", "DAuxTask", "DLoss", "PLACES", "protocol_of", "implements"]


@runtime_checkable
class InputMixing(Protocol):
    """``classify`` input mixing: mixes a batch with partners drawn from itself.

    ``mix_inputs(x, generator)`` returns ``MixResult(x, lam, index)``: the mixed batch, the
    effective lam per sample ``[B]`` and the partner of each sample; the program trains on the
    soft targets ``lam * y + (1 - lam) * y[index]``. In a shared place (several listed, one drawn
    per batch) the program calls ``type(first).combine(members)`` for one object over all.
    """

    def mix_inputs(self, x: Tensor, generator: torch.Generator | None = None) -> MixResult: ...


@runtime_checkable
class FeatureRegularizer(Protocol):
    """``classify`` feature regularizer: scores a batch and adds a loss on its features.

    ``feature_terms(model, x, generator)`` returns the returned-terms dict: ``"loss"`` (with
    grad, added to the task loss), ``"logits"`` (what the cross-entropy scores) and detached
    ``"<name>/<part>"`` scalars for the log. When the logits score a mix of ``x`` and
    ``x[index]``, the dict also holds ``"lam"`` and ``"index"``, and the program uses the mixed
    cross-entropy ``lam CE(y) + (1 - lam) CE(y[index])``.
    """

    def feature_terms(self, model: Any, x: Tensor,
                      generator: torch.Generator | None = None) -> dict[str, Tensor]: ...


@runtime_checkable
class AdversarialInputs(Protocol):
    """``classify`` adversarial inputs: the batch the model trains on instead of ``x``.

    ``adversarial_inputs(loss_fn, x, generator, model=model)`` returns it (``loss_fn(x) ->
    [B]`` is the loss to ascend). ``after_backward(x_adv)`` runs after the training backward
    (a perturbation carried across steps reads ``x_adv.grad`` there); ``replays`` is how many
    times the program trains on each batch (free adversarial training replays it).
    """

    replays: int

    def adversarial_inputs(self, loss_fn: Callable[[Tensor], Tensor], x: Tensor,
                           generator: torch.Generator | None = None, *,
                           model: Any = None) -> Tensor: ...

    def after_backward(self, x_adv: Tensor) -> None: ...


@runtime_checkable
class DFunction(Protocol):
    """``gan`` D function: the logit the adversarial losses use, and a loss of its own.

    ``d_logits(D, x, generator)`` returns ``(logits, loss)``; the program adds ``loss`` to D's
    total under ``d/<term>`` and, when ``g_term`` is true, to G's under ``g/<term>``. The
    regularizer runs D itself (eagerly), so R1 may be taken from its logits.
    """

    term: str
    g_term: bool

    def d_logits(self, D: Any, x: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class DInputs(Protocol):
    """``gan`` D inputs: what D trains on instead of the clean reals and fakes.

    ``d_inputs(d_fn, x_real, x_fake, generator, model=D)`` returns ``(real, fake)``;
    ``keeps_clean`` true adds D's real loss on the clean reals too (else they are replaced);
    ``after_backward(real)`` runs after D's backward with the ``real`` it returned.
    """

    keeps_clean: bool

    def d_inputs(self, d_fn: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor,
                 generator: torch.Generator | None = None, *,
                 model: Any = None) -> tuple[Tensor, Tensor]: ...

    def after_backward(self, real: Tensor) -> None: ...


class DLoss(Protocol):
    """The program's adversarial loss on D's logits (means over the batch, ensembles summed as
    the program's D requires); handed to :class:`ExtraDTerm` so a term needs no loss kind.

    For a D with one logit per sample and loss kind ``kind`` it is ``loss_real(logits,
    kind).mean()``, ``loss_fake(logits, kind).mean()`` and ``mixed_gan_loss(logits, lam,
    kind).mean()`` (:mod:`robustrep.losses`, :mod:`robustrep.mixing`); Mixup, CutMix and SRMix
    also take that ``kind`` string in its place.
    """

    def real(self, logits: Tensor) -> Tensor:
        """D's loss on logits ``[B]`` (or ``[B, ...]``) of samples it should call real: a
        scalar, the mean over the batch."""
        ...

    def fake(self, logits: Tensor) -> Tensor:
        """D's loss on logits of samples it should call fake: a scalar, the mean over the
        batch."""
        ...

    def mixed(self, logits: Tensor, lam: Tensor) -> Tensor:
        """D's loss on logits of samples that are a ``lam`` ``[B]`` share real (``lam *
        real + (1 - lam) * fake`` per sample): a scalar, the mean over the batch."""
        ...


@runtime_checkable
class ExtraDTerm(Protocol):
    """``gan`` extra D term: a further loss of D beside its real and fake terms.

    ``extra_d_term(score, x_real, x_fake, loss, generator)`` returns the (weighted) loss, logged
    as ``d/<term>``; ``score(x)`` is D's logit with the program's augmentation, ``loss`` a
    :class:`DLoss`. ``replaces_clean`` true drops D's clean real and fake terms.
    """

    term: str
    replaces_clean: bool

    def extra_d_term(self, score: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor,
                     loss: DLoss, generator: torch.Generator | None = None) -> Tensor: ...


@runtime_checkable
class DAuxTask(Protocol):
    """``gan`` D auxiliary task: a head on D's features with a self-supervised loss of its own
    (SSGAN's rotation prediction, InfoMax-GAN's InfoNCE).

    ``wrap(D, sample_shape, local_end)`` returns the D the program trains (built before D's
    optimizer, so the head trains with D): its ``forward`` is D's unchanged GAN logit and it keeps
    ``features``/``head``. ``local_end`` is the index of D's ``trunk`` where a local feature map
    ends (for a method that reads one; None where D has none). ``d_aux_loss(D, x_real)`` is the
    (weighted) loss on the *clean* reals, added to D's total as ``d/<term>``;
    ``g_aux_loss(D, x_fake)`` the (weighted) loss on G's fakes, added to G's as ``g/<term>``.
    """

    term: str

    def wrap(self, d: Any, sample_shape: tuple[int, ...], local_end: int | None) -> Any: ...

    def d_aux_loss(self, D: Any, x_real: Tensor) -> Tensor: ...

    def g_aux_loss(self, D: Any, x_fake: Tensor) -> Tensor: ...


# (program, place) -> the protocol its regularizers implement
PLACES: dict[tuple[str, str], type] = {
    ("classify", "input mixing"): InputMixing,
    ("classify", "feature shrinkage"): FeatureRegularizer,
    ("classify", "adversarial inputs"): AdversarialInputs,
    ("gan", "D function"): DFunction,
    ("gan", "D inputs"): DInputs,
    ("gan", "extra D term"): ExtraDTerm,
    ("gan", "D auxiliary task"): DAuxTask,
}


def protocol_of(program: str, place: str) -> type | None:
    """The protocol of ``place`` in ``program``; None for a place no program calls."""
    return PLACES.get((program, place))


def implements(obj_or_cls: Any, program: str, place: str) -> bool:
    """Whether ``obj_or_cls`` has the methods (and, for an instance, attributes) of the place."""
    proto = protocol_of(program, place)
    if proto is None:
        return False
    if isinstance(obj_or_cls, type):
        methods = [n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")]
        return all(callable(getattr(obj_or_cls, n, None)) for n in methods)
    return isinstance(obj_or_cls, proto)
