"""Multi-process training through torchrun and DistributedDataParallel.

``torchrun --nproc_per_node N -m robustrep.tasks.cli gan train ...`` sets RANK, WORLD_SIZE and
LOCAL_RANK; :func:`init_distributed` reads them and picks gloo on CPU and nccl on CUDA. Without
those variables everything runs in one process and the helpers below are no-ops.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.runtime import resolve_device, tune_backends


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_size_from_env() -> int:
    """The number of processes torchrun started (its WORLD_SIZE; 1 without it); a value that is
    no whole number >= 1 is a UserError naming the variable (it was a ValueError traceback
    from ``int()`` in whichever program read it first)."""
    return _env_int("WORLD_SIZE", 1, 1, "the number of processes")


def _env_int(name: str, default: int, least: int, what: str) -> int:
    """torchrun's variable ``name`` as a whole number >= ``least`` (``default`` when unset);
    else a one-line UserError naming it."""
    value = os.environ.get(name, str(default))
    try:
        number = int(value)
    except ValueError:
        number = least - 1
    if number < least:
        raise UserError(f"{name}={value}: {what} (set by torchrun) must be a whole number "
                        f">= {least}; unset {name} or start the command with torchrun")
    return number


def init_distributed(device: str = "auto") -> DistInfo:
    """This process's rank and device; the device's backends are tuned for training."""
    world = world_size_from_env()
    if "RANK" not in os.environ or world <= 1:
        info = DistInfo(device=resolve_device(device))
        tune_backends(info.device)
        return info
    rank = _env_int("RANK", 0, 0, "this process's rank")
    if rank >= world:
        raise UserError(f"RANK={rank} is not below WORLD_SIZE={world}: torchrun numbers the "
                        f"processes 0 to WORLD_SIZE - 1; start the command with torchrun")
    local_rank = _env_int("LOCAL_RANK", 0, 0, "this process's rank on its machine")
    dev = resolve_device(device, local_rank=local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        # the other processes wait in a collective while process 0 evaluates (FID of 10k
        # samples, a CPU AutoAttack), which can outlast the backends' 10-30 minute defaults
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT)
    tune_backends(dev)
    return DistInfo(rank, world, local_rank, dev)


COLLECTIVE_TIMEOUT = datetime.timedelta(hours=6)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast_object(obj):
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_grads(module: torch.nn.Module) -> None:
    """Average the parameter gradients of ``module`` over all processes (one flat all-reduce).

    The data-parallel update of DistributedDataParallel, done by hand after ``backward`` (as
    stylegan2-ada's training loop does). Use it where DDP's reducer does not fit: a module called
    several times per step through different entry points (a GAN discriminator's attack passes,
    trunk/head calls) or a loss with double backward (R1, WGAN-GP). Parameters without a gradient
    take part as zeros, so every process sends the same layout.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy every parameter and buffer of ``module`` from process ``src`` to all processes."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=src)


def all_gather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process; ``[obj]`` without a group."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
