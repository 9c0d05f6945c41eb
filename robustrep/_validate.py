"""Argument checks shared by the public functions of robustrep.

Every check raises ``TypeError`` or ``ValueError`` with a message that names the argument, what it
got and what is accepted, so a bad call fails at the boundary rather than deep inside a kernel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


def check_tensor(name: str, x: Any, ndim: int | Iterable[int] | None = None,
                 min_batch: int | None = None, floating: bool = False) -> Tensor:
    """Check that ``x`` is a tensor of an accepted rank and batch size; return it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            raise ValueError(
                f"{name} must have rank {' or '.join(map(str, allowed))}, "
                f"got rank {x.dim()} with shape {tuple(x.shape)}")
    if min_batch is not None and (x.dim() == 0 or x.shape[0] < min_batch):
        got = x.shape[0] if x.dim() else "a scalar"
        why = " (a partner is drawn from the same batch)" if min_batch > 1 else ""
        raise ValueError(f"{name} needs a batch of at least {min_batch}{why}, got batch size "
                         f"{got}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def nan_tensors(state: dict[str, Any]) -> list[str]:
    """The keys of a state dict's floating tensors that hold NaN (an inf may be a model's own
    mask buffer, so only NaN marks weights as diverged)."""
    return [k for k, v in state.items() if isinstance(v, Tensor) and v.is_floating_point()
            and bool(torch.isnan(v).any())]


def first_tensor(module: Any) -> Tensor | None:
    """A parameter (else a buffer) of ``module`` to read its device from; None for non-modules."""
    if not isinstance(module, torch.nn.Module):
        return None
    first = next(module.parameters(), None)
    return first if first is not None else next(module.buffers(), None)


def logits_tensor(out: Any, reader: str = "the attacks") -> Tensor:
    """``out`` when it is a tensor, the logits ``reader`` needs. A model returning a tuple or a
    dict (Hugging Face's ``ModelOutput``) failed with "'tuple' object has no attribute 'float'";
    which entry holds the logits is the model's to say, so it is refused naming the wrapper that
    would say it."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, dict):
        pick = "out['logits']" if "logits" in out else "out[KEY]"
        shown = f"a {type(out).__name__} with keys {', '.join(map(repr, out))}"
    elif isinstance(out, (tuple, list)):
        pick = "out[0]" if out and isinstance(out[0], Tensor) else "out[i]"
        shown = f"a {type(out).__name__} of {', '.join(type(o).__name__ for o in out)}"
    else:
        pick, shown = "the logits", f"a {type(out).__name__}"
    raise TypeError(f"the model must return a logits tensor [B, C] ({reader} read it); it "
                    f"returned {shown}. Wrap it in an nn.Module whose forward returns {pick} "
                    f"of out = model(x)")


def check_same_device(**tensors: Tensor | None) -> None:
    """Check that all given tensors live on one device."""
    devices = {k: t.device for k, t in tensors.items() if isinstance(t, Tensor)}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{k} on {d}" for k, d in devices.items())
        raise ValueError(f"tensors must be on the same device, got {listing}")


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


def check_point_sets(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Check two sets of points ``[N_a, D]`` and ``[N_b, D]``: float, one device, same ``D``."""
    check_tensor(name_a, a, ndim=2, floating=True)
    check_tensor(name_b, b, ndim=2, floating=True)
    check_same_device(**{name_a: a, name_b: b})
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name_a} and {name_b} must have the same dimension D (the feature "
                         f"dimension), got {tuple(a.shape)} and {tuple(b.shape)}")


def check_lam(lam: Any, batch: int | None = None, name: str = "lam") -> None:
    """Check a mixing coefficient: a float or a tensor (scalar or one per sample) in [0, 1]."""
    if isinstance(lam, Tensor):
        if lam.dim() > 1 or (lam.dim() == 1 and batch is not None and lam.numel() != batch):
            raise ValueError(f"{name} must be a scalar or a 1-D tensor with one value per sample "
                             f"({batch}), got shape {tuple(lam.shape)}")
        # A range check on a CUDA tensor would synchronise the host, and reading values breaks a
        # torch.compile graph; check only eager CPU tensors.
        if lam.device.type == "cpu" and not torch.compiler.is_compiling() and lam.numel() and (
                bool((lam < 0).any()) or bool((lam > 1).any()) or bool(lam.isnan().any())):
            raise ValueError(f"{name} must lie in [0, 1], got values in "
                             f"[{lam.min().item():.4g}, {lam.max().item():.4g}]")
        return
    if isinstance(lam, bool) or not isinstance(lam, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1] or a tensor, got "
                        f"{_type_name(lam, integer=False)}")
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {lam}")


def _check_finite(name: str, value: float) -> None:
    # NaN passes every comparison test silently (nan < 0 is False), so check it by name first.
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")


def _type_name(value: Any, integer: bool) -> str:
    """``value``'s type, with the cast that makes it a Python number when it is a numpy or
    0-d torch scalar (kept out: their arithmetic with tensors differs from a float's)."""
    name = type(value).__name__
    scalar = type(value).__module__ == "numpy" or (isinstance(value, torch.Tensor)
                                                   and value.dim() == 0)
    if scalar and not isinstance(value, bool):
        return f"{type(value).__module__}.{name}; pass {'int' if integer else 'float'}(value)"
    return name


def _check_real(name: str, value: Any, integer: bool, wanted: str) -> None:
    """``value`` a finite Python int (``integer``) or int/float, not a bool; ``wanted`` names
    the accepted values in the message (``"positive int"``, ``"number > 0"``)."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be a {wanted}, got {_type_name(value, integer)}")
    _check_finite(name, value)


def check_nonneg(name: str, value: Any, integer: bool = False) -> None:
    _check_real(name, value, integer, "non-negative int" if integer else "number >= 0")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def check_positive(name: str, value: Any, integer: bool = False) -> None:
    _check_real(name, value, integer, "positive int" if integer else "number > 0")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_index(index: Any, batch: int) -> None:
    """Partner indices: an integer tensor ``[batch]`` with values in ``[0, batch)``.

    The values are read only on eager CPU tensors: on an accelerator that would stall the
    training step with a host synchronisation (there an index past the end still fails in the
    gather kernel), and under ``torch.compile`` it would break the graph.
    """
    check_tensor("index", index, ndim=1)
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise ValueError(f"index must be an integer tensor of partners, got {index.dtype}")
    if index.numel() != batch:
        raise ValueError(f"index must hold one partner per sample ({batch}), got shape "
                         f"{tuple(index.shape)}")
    # A negative index would silently wrap to a sample counted from the end.
    if index.device.type == "cpu" and batch and not torch.compiler.is_compiling() and \
            not bool(((index >= 0) & (index < batch)).all()):
        raise ValueError(f"index must hold partners in [0, {batch}), got values "
                         f"{int(index.min())}..{int(index.max())}")


def check_probabilities(name: str, p: Tensor) -> None:
    """Rows of probabilities ``[B, K]``: values >= 0, each row summing to 1 within 0.01, which
    holds the rounding of rows stored in bfloat16 (up to 2**-9) and catches rows of another scale.

    As for :func:`check_lam`, the values are read on eager CPU tensors only: on an accelerator
    the read would synchronise the host at every step, and under ``torch.compile`` break the
    graph. There a bad row goes through unchecked.
    """
    if p.device.type != "cpu" or torch.compiler.is_compiling() or not p.numel():
        return
    sums = p.sum(-1, dtype=torch.float64)
    if bool((p >= 0).all()) and bool(((sums - 1).abs() <= 0.01).all()):  # NaN fails both
        return
    raise ValueError(f"{name} must hold probabilities: rows of values >= 0 summing to 1 (within "
                     f"0.01), got values in [{float(p.min()):.4g}, {float(p.max()):.4g}] and row "
                     f"sums in [{float(sums.min()):.4g}, {float(sums.max()):.4g}]")


def check_task_scales(d_scale: Any, g_scale: Any) -> None:
    """The weights of a D auxiliary task's losses on D and G: >= 0, and not both 0 (the task
    would be trained on nothing)."""
    check_nonneg("d_scale", d_scale)
    check_nonneg("g_scale", g_scale)
    if d_scale == 0 and g_scale == 0:
        raise ValueError("d_scale and g_scale are both 0: the auxiliary task would add nothing "
                         "to either loss; give one of them > 0")


def check_bool(name: str, value: Any) -> None:
    # A truthy string such as "false" must not switch an option on.
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_range(name: str, input_range: Any) -> tuple[float, float]:
    """Check an input range ``(low, high)`` with low < high; return it as floats."""
    try:
        if isinstance(input_range, (str, bytes)):  # "01" would unpack to (0.0, 1.0)
            raise TypeError
        low, high = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers, "
                        f"got {input_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ValueError(f"{name} must be finite with low < high, got ({low}, {high}); "
                         "pass None for unbounded inputs")
    return low, high


def check_in_range(name: str, x: Tensor, input_range: tuple[float, float] | None,
                   range_name: str = "input_range") -> None:
    """Check that every value of ``x`` lies in ``input_range`` (None: no check).

    An attack clamps its output to the range; a clean point outside it would be moved by far more
    than eps without a word. The slack of ``1e-5`` of the range's width absorbs rounding in the
    caller's normalisation. Reading the extremes synchronises the host once per call; inside a
    ``torch.compile`` graph the check is skipped.
    """
    if input_range is None or x.numel() == 0 or torch.compiler.is_compiling():
        return
    low, high = input_range
    slack = 1e-5 * (high - low)
    inside = (x >= low - slack) & (x <= high + slack)  # False for NaN as well
    if not bool(inside.all()):
        finite = x[x.isfinite()]
        found = (f"[{finite.min().item():.4g}, {finite.max().item():.4g}]" if finite.numel()
                 else "no finite values")
        nan = " and NaN/inf" if finite.numel() < x.numel() else ""
        raise ValueError(f"{name} must lie in {range_name} [{low:g}, {high:g}], got values in "
                         f"{found}{nan}; pass the range your data uses, or {range_name}=None "
                         "for unbounded inputs (2-D points, normalised features)")


def check_same_dtype(**tensors: Tensor | None) -> None:
    """Check that all given floating tensors share one dtype (name both in the message)."""
    dtypes = {k: t.dtype for k, t in tensors.items() if isinstance(t, Tensor)}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{k} is {d}" for k, d in dtypes.items())
        raise TypeError(f"tensors must have the same dtype, got {listing}; cast one with .to()")


def check_model_dtype(name: str, x: Tensor, module: Any) -> None:
    """Check that ``x`` has the dtype of ``module``'s floating parameters, outside autocast.

    Under autocast the model casts float32/16 inputs itself, so those are accepted there; autocast
    never casts float64, so a float64 input or model must still match.
    """
    param = first_tensor(module)
    if param is None or not param.is_floating_point() or x.dtype == param.dtype:
        return
    if torch.is_autocast_enabled(x.device.type) and torch.float64 not in (x.dtype, param.dtype):
        return
    raise TypeError(f"{name} has dtype {x.dtype} but the model's parameters are {param.dtype}; "
                    f"cast one of them (e.g. {name}.to({param.dtype}) or model.to({x.dtype}))")


def check_generator(generator: Any, device: torch.device | None = None) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, "
                        f"got {type(generator).__name__}")
    if device is not None and torch.device(generator.device).type != torch.device(device).type:
        raise ValueError(f"generator is on {generator.device} but the tensors are on {device}; "
                         "pass a generator created on the tensors' device")


def options_repr(obj: Any) -> str:
    """``Name(option=value, ...)`` for every constructor option ``obj`` keeps under its own name
    (a regularizer's ``__repr__``: what was built, every option shown)."""
    import inspect
    names = [n for n in inspect.signature(type(obj).__init__).parameters if n != "self"]
    shown = ", ".join(f"{n}={getattr(obj, n)!r}" for n in names if hasattr(obj, n))
    return f"{type(obj).__name__}({shown})"
