"""What several scripts share: argparse types for their options and the machine line of a
benchmark table. One place, so a wrong value reads the same everywhere: argparse turns an
ArgumentTypeError into one ``error:`` line and exit code 2 (no traceback)."""

from __future__ import annotations

import argparse
import platform
from pathlib import Path


def int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {low}"  # argparse names the type in its messages
    return parse


def float_in(low: float, high: float | None = None, low_open: bool = False):
    """A float in [low, high] (low excluded when ``low_open``); no NaN."""
    span = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else f'{high}]'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value > low if low_open else value >= low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected a number in {span}, got {text!r}")
        return value
    parse.__name__ = f"number in {span}"
    return parse


def power_of_two(text: str) -> int:
    """An image resolution for the StyleGAN2 networks: they halve it down to 4x4."""
    value = int_at_least(4)(text)
    if value & (value - 1):
        raise argparse.ArgumentTypeError(f"expected a power of 2 >= 4, got {text!r}")
    return value


def device(text: str) -> str:
    """A torch device name, checked (kept a string: it goes into JSON and config objects)."""
    import torch  # late: --help should not pay for it
    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected a torch device (cpu, cuda, cuda:1, ...), "
                                         f"got {text!r}") from None
    return text


def reference_checkout(text: str) -> str:
    """A stylegan2-ada-pytorch folder; checked here, else its import fails with a traceback."""
    if not all((Path(text) / sub).is_dir() for sub in ("training", "torch_utils")):
        raise argparse.ArgumentTypeError(f"{text}: no stylegan2-ada-pytorch checkout there "
                                         f"(it needs training/ and torch_utils/)")
    return text


def machine(device=None) -> str:
    """``"NVIDIA H100 ..."`` or ``"x86_64 CPU, 2 threads"``; platform.processor() alone is
    empty on Linux."""
    import torch
    if (device is None and torch.cuda.is_available()) or getattr(device, "type", "") == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
