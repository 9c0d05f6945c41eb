"""Performance switches shared by the programs: AMP, channels-last, torch.compile, and EMA.

Each is an explicit flag (``--amp bf16``, ``--channels-last``, ``--compile``); the default is the
plain fp32 eager path, which is the one every test checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from robustrep._names import AMP_CHOICES  # re-exported: read by the configs without torch
from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.options import check_device


def resolve_device(name: str = "auto", amp: str = "off", local_rank: int = 0) -> torch.device:
    """The torch device for ``--device name``, checked with ``--amp`` before any work starts.

    ``auto`` is CUDA when available, else CPU. A CUDA device on a machine without one, a CUDA
    index past the last GPU, and ``--amp fp16`` off CUDA are :class:`UserError` s naming the flag.
    """
    name = check_device(name, amp)  # the words: a wrong name, fp16 with --device cpu
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine (no GPU, "
                            f"or a CPU-only PyTorch); use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else local_rank
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                            f"CUDA device(s), numbered from 0")
        return torch.device("cuda", index)
    check_device("cpu", amp)  # `auto` on a machine without CUDA
    return torch.device("cpu")


def tune_backends(device: torch.device) -> None:
    """Let cuDNN time its convolution algorithms for the shapes it meets (CUDA only).

    A training run meets a handful of fixed shapes thousands of times, so the one-off search pays
    back at once; timm's ``train.py`` and stylegan2-ada's ``training_loop.py`` both turn it on.
    TF32 stays at torch's defaults (on for cuDNN convolutions, off for matmuls)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, amp: str):
    """An autocast context for ``amp`` in AMP_CHOICES (``off`` -> a no-op context)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {', '.join(AMP_CHOICES)}; got {amp!r}")
    if amp == "off":
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("--amp fp16 needs CUDA; on CPU use --amp bf16 or off")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler:
    # Only fp16 needs loss scaling; bf16 has fp32's exponent range.
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16"))


def prepare_module(module: nn.Module, device: torch.device,
                   channels_last: bool = False) -> nn.Module:
    module = module.to(device)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def to_input(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def maybe_compile(module: Callable, enabled: bool) -> Callable:
    # Double backward (R1, WGAN-GP, path length) is not supported through AOTAutograd; callers
    # keep an eager handle for penalties (tests/tasks/gan/test_compile.py).
    return torch.compile(module) if enabled else module


def make_ema(model: nn.Module, decay: float, warmup: bool = False):
    """An EMA copy of ``model`` (timm's ModelEmaV3); ``None`` when ``decay`` is 0.

    ``warmup`` ramps the decay up over the first steps (timm's ``use_warmup``), so an early
    EMA is not dominated by the random initialisation.
    """
    if decay <= 0:
        return None
    if not 0 < decay < 1:
        raise ValueError(f"ema decay must lie in [0, 1); got {decay}")
    from timm.utils import ModelEmaV3
    return ModelEmaV3(model, decay=decay, use_warmup=warmup)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """``module`` in eval mode inside the block, then back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
