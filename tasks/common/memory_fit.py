"""Whether a training run's networks and one batch can fit the memory of the device it will use,
checked before the run folder is made.

A size beyond the machine was found out late, as a traceback: ``gan train --g-width 1000000000``
failed in torch's allocator ("DefaultCPUAllocator: can't allocate memory") after the run folder
was made. Here a network is built on the meta device (shapes only: no memory, no values), and
what training keeps of it (each trained parameter, its gradient and the optimizer's moments; the
buffers; an EMA copy) and one batch's float32 inputs are each set against the device's whole
memory: the machine's RAM for the CPU, the GPU's own for CUDA. The estimate leaves activations
out and the bound is the whole memory, so what is refused is a size no run could train there;
anything closer is left to the run. (Processes of one machine share its RAM; each is checked
alone, which refuses less, never more.)

The programs name their own size options (``tasks/gan/models.py``, ``tasks/classify/train.py``);
this module counts bytes and says no in one line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from robustrep.tasks.common.config import ConfigError


def total_memory(device: torch.device) -> int | None:
    """The whole memory of ``device`` in bytes (the machine's RAM for the CPU, the GPU's own for
    CUDA); None where unknown, and the checks then pass."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return int(torch.cuda.get_device_properties(index).total_memory)
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # no such names here (Windows)
            return None
    return None


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def training_bytes(build: Callable[[], nn.Module], states: int, ema: bool = False
                   ) -> float | None:
    """Bytes training keeps of the module ``build()`` returns, built on the meta device: each
    trained parameter with its gradient and ``states`` optimizer moments (Adam: 2), the frozen
    parameters and buffers once, and all of it once more with ``ema`` (an EMA copy).

    ``math.inf`` where a size overflows torch's int64 byte count (no device holds that); None
    where the module cannot be built on the meta device (a constructor that reads values): the
    check is then left to the real build, whose own refusals are not this module's to say."""
    try:
        with torch.device("meta"):
            module = build()
    except RuntimeError as err:
        return math.inf if "overflow" in str(err) else None
    except Exception:  # noqa: BLE001 - a plugin's meta build may fail any way; the run decides
        return None
    trained = _bytes(p for p in module.parameters() if p.requires_grad)
    kept = _bytes(p for p in module.parameters() if not p.requires_grad) \
        + _bytes(module.buffers())
    return trained * (2 + states) + kept + (trained + kept) * ema


def state_words(moments: bool, ema: str | None = None) -> str:
    """What :func:`training_bytes` counted, for a refusal: ``weights, gradients, Adam moments
    and G's EMA copy`` (``ema``: the words for the EMA copy, None without one)."""
    parts = ["weights", "gradients"] + ["Adam moments"] * moments + [ema] * (ema is not None)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def batch_bytes(batch: int, shape: Sequence[int]) -> int:
    """Bytes of one batch of float32 inputs of ``shape`` (one sample's)."""
    return batch * math.prod(shape) * 4


def gb(nbytes: float) -> str:
    """``17,592.2 GB``, ``0.0042 GB``: decimal gigabytes, with the digits a small size needs."""
    value = nbytes / 1e9
    return f"{value:,.1f} GB" if value >= 1 else f"{value:.2g} GB"


def check_fits(need: float | None, device: torch.device, what: str) -> None:
    """A one-line ConfigError when ``need`` bytes exceed the whole memory of ``device``;
    ``what`` names the options that set the size and what takes it (``--z-dim 100000: the
    networks' ... take``). ``need`` None (unknown) passes."""
    have = total_memory(device)
    if need is None or have is None or need <= have:
        return
    if math.isinf(need):
        raise ConfigError(f"{what} more bytes than torch can count (int64); lower them")
    where = (f"this machine's {gb(have)} of RAM" if device.type == "cpu"
             else f"{device}'s {gb(have)} of memory")
    raise ConfigError(f"{what} at least {gb(need)}, more than {where}; lower them")
