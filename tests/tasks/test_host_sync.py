"""No host synchronisation inside a training step (issue 22): a GPU step that reads a value
back (``.item()``, ``float(t)``, ``if t:``, ``.tolist()``, ``.cpu()``, ``nonzero``, a boolean
mask) waits for every queued kernel, and one such read per step leaves the GPU idle between
steps. The loss terms stay on the device (``tasks/common/training.py``'s ``LossMeter``) and are
read, with the non-finite check, only when logging, evaluation or a checkpoint asks.

On the CPU nothing waits, so :class:`HostSyncs` watches the calls instead: a
``TorchFunctionMode`` sees the Python-level reads and a tensor built from Python data with a
``device`` (a blocking host-to-device copy on a GPU), a ``TorchDispatchMode`` the aten operations
that read back (``_local_scalar_dense``, ``nonzero``, ``masked_select``, boolean indexing).
Reads of tensors that stay on the host by design are exempt (:data:`EXEMPT`): Adam's step
counters, the samplers' permutations, ``check_lam`` and ``check_index`` (they read CPU tensors
only).
``test_gpu_step_never_syncs`` checks the same on a GPU with ``torch.cuda.set_sync_debug_mode``.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import robustrep
import robustrep.tasks
from robustrep.tasks.classify import train as classify_train
from robustrep.tasks.gan import train as gan_train

from .classify.conftest import tiny_config as classify_config
from .gan.conftest import tiny_config as gan_config

# robustrep and robustrep.tasks: the checkout's folders (editable install) or site-packages
SOURCES = tuple(Path(m.__file__).resolve().parent for m in (robustrep, robustrep.tasks))
READS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy",
         "nonzero"}
ATEN_READS = {"aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.equal",
              "aten.is_nonzero"}
EXEMPT = (("/torch/optim/", ""),  # Adam's step counters live on the host (torch's design)
          ("tasks/common/batches.py", ""),  # the samplers' index permutations are host tensors
          ("robustrep/_validate.py", "check_lam"),  # reads CPU tensors only (none on a GPU)
          ("robustrep/_validate.py", "check_index"))  # the same
SG2 = dict(arch="stylegan2", image_size=16, z_dim=16, w_dim=16, mapping_layers=2,
           channel_base=128, channel_max=16, mbstd_group=4, batch_size=8, r1_gamma=1.0,
           r1_every=2, pl_every=2)


def _where() -> str | None:
    """The innermost project frame of the current stack, or None when the read is exempt."""
    frames = [f for f in traceback.extract_stack() if f.filename != __file__]
    for frame in reversed(frames):
        if any(part in frame.filename and func in frame.name for part, func in EXEMPT):
            return None
        path = Path(frame.filename)
        for source in SOURCES:  # the package's own code, wherever it is installed
            if path.is_relative_to(source):
                return f"{path.relative_to(source.parent)}:{frame.lineno} in {frame.name}"
    return frames[-1].filename


class _Functions(TorchFunctionMode):
    def __init__(self, found: list[str]):
        super().__init__()
        self.found = found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        host_data = (name in ("tensor", "as_tensor") and kwargs.get("device") is not None
                     and not isinstance(args[0], torch.Tensor))
        if name in READS or host_data:
            where = _where()
            if where:
                self.found.append(f"{name}: {where}")
        return func(*args, **kwargs)


class _Aten(TorchDispatchMode):
    def __init__(self, found: list[str]):
        super().__init__()
        self.found = found

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        mask = name == "aten.index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1])
        if name in ATEN_READS or mask:
            where = _where()
            if where:
                self.found.append(f"{name}: {where}")
        return func(*args, **(kwargs or {}))


class HostSyncs:
    """``with HostSyncs() as syncs:`` records every host read inside the block in
    ``syncs.found`` (``"what: file:line in function"``)."""

    def __init__(self):
        self.found: list[str] = []
        self._modes = (_Functions(self.found), _Aten(self.found))

    def __enter__(self) -> "HostSyncs":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)


def test_the_guard_sees_every_kind_of_read():
    x = torch.arange(4.0)
    reads = [lambda: x[0].item(), lambda: float(x[1]), lambda: int(x[1]), lambda: bool(x[1]),
             lambda: x.tolist(), lambda: x.cpu(), lambda: x.nonzero(), lambda: x[x > 1],
             lambda: [0, 1][x[1].long()], lambda: torch.tensor([1.0], device=x.device)]
    for read in reads:
        with HostSyncs() as syncs:
            read()
        assert syncs.found and "test_host_sync.py" not in syncs.found[0], syncs.found
    with HostSyncs() as syncs:  # device-side work only
        (x * 2).sum().sqrt().clamp(0, 1)
        torch.full((), 0.5).lerp(x.mean(), 0.1)
    assert syncs.found == []


def _guard_steps(monkeypatch, trainer_cls, step_method: str, log_every: int) -> list[str]:
    """Run ``step_method`` and ``check_stop`` under :class:`HostSyncs` on the steps whose end
    does not log (``step + 1`` not a multiple of ``log_every``)."""
    found: list[str] = []

    def guarded(name):
        original = getattr(trainer_cls, name)

        def method(self, *args, **kwargs):
            due = (self.step + (name == step_method)) % log_every == 0
            if due:
                return original(self, *args, **kwargs)
            with HostSyncs() as syncs:
                out = original(self, *args, **kwargs)
            found.extend(syncs.found)
            return out
        monkeypatch.setattr(trainer_cls, name, method)

    guarded(step_method)
    guarded("check_stop")
    return found


@pytest.mark.parametrize("preset,extra", [
    ("digits-stylegan2", SG2),
    ("digits-dcgan", dict(ema_decay=0.999)),
    ("digits-dcgan", dict(reg="adaptivemix", diffaugment="color,translation,cutout")),
    ("digits-dcgan", dict(augment="ada", ada_interval=4)),
])
def test_gan_step_never_reads_back(preset, extra, tmp_path, monkeypatch):
    """Four iterations (R1 and path length due in two), logging only after the last one. ADA
    reads its heuristic when it adjusts p (every ``ada_interval`` iterations, here the logged
    one, as stylegan2-ada); its geometric transforms, off at p = 0, read their padding."""
    found = _guard_steps(monkeypatch, gan_train.Trainer, "one_step", log_every=4)
    cfg = gan_config(preset, steps=4, log_every=4, ckpt_every=100, out=str(tmp_path / "run"),
                     **extra)
    gan_train.train(cfg, show_progress=False)
    assert found == [], "\n".join(dict.fromkeys(found))


def test_classify_step_never_reads_back(tmp_path, monkeypatch):
    found = _guard_steps(monkeypatch, classify_train.Trainer, "train_step", log_every=3)
    cfg = classify_config(steps=3, log_every=3, ckpt_every=0, eval_every=0)
    classify_train.train(cfg, tmp_path / "run", quiet=True)
    assert found == [], "\n".join(dict.fromkeys(found))


@pytest.mark.gpu
@pytest.mark.parametrize("preset,extra", [("digits-stylegan2", SG2), ("digits-dcgan", {})])
def test_gpu_step_never_syncs(preset, extra, tmp_path, monkeypatch):
    """The same steps on CUDA with torch's own sync detector set to raise."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")

    def guard(name):
        original = getattr(gan_train.Trainer, name)

        def method(self, *args, **kwargs):
            if (self.step + (name == "one_step")) % 4 == 0 or self.step == 0:
                return original(self, *args, **kwargs)  # logging, or the first step's setup
            torch.cuda.set_sync_debug_mode("error")
            try:
                return original(self, *args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        monkeypatch.setattr(gan_train.Trainer, name, method)

    guard("one_step")
    guard("check_stop")
    cfg = gan_config(preset, steps=4, log_every=4, ckpt_every=100, device="cuda",
                     out=str(tmp_path / "run"), **extra)
    gan_train.train(cfg, show_progress=False)
