"""What the programs' trainers share: loss bookkeeping without a host sync per step, the stop on
the first non-finite loss, and checkpoints that never hold non-finite state.

Every step's loss terms go into a :class:`LossMeter` on the device; :meth:`TrainerBase.check_finite`
reads it (one transfer) at each log, evaluation and checkpoint. A NaN or inf stops the run
(:class:`TrainingDiverged`) before anything else is written, naming the first step and loss term
and the last good checkpoint; ``save_checkpoint`` also refuses non-finite weights.

Signals: while :meth:`TrainerBase.stopping_on_signals` is active, SIGINT and SIGTERM (what a
cluster scheduler sends before it preempts a job) do not stop a step half-way: the step in flight
finishes, a checkpoint of it is written, and :class:`Interrupted` ends the program with exit code
128 + the signal number (the shell's convention). A second SIGINT stops at once
(``KeyboardInterrupt``), for a user who does not want to wait for the checkpoint.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from robustrep.tasks.common import checkpoint as ckpt
from robustrep.tasks.common.config import to_dict
from robustrep.tasks.common.distributed import (DistInfo, all_gather_object, all_reduce_sum,
                                                barrier)
from robustrep.tasks.common.errors import CheckpointError, Interrupted, TrainingDiverged
from robustrep.tasks.common.plugins import resume_flags
from robustrep.tasks.common.rundir import RunDir, foreign_options
from robustrep.tasks.common.run_records import mark_finished, note_finished
from robustrep.tasks.common.runopen import path_option
from robustrep.tasks.common.stops import SaidStop, restore_signal

Reduce = Callable[[Tensor], Tensor]  # an all-reduce sum over the processes


class LossMeter:
    """Running means of the loss terms and, per term, the first step with a non-finite value.

    Everything stays on the device; :meth:`poll` reads it with one transfer. With several
    processes, ``reduce`` (an all-reduce sum) makes the sums and counts those of every process,
    so a logged mean is the global batch's, not process 0's share of it.
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.state: Tensor | None = None  # rows: sum, count, first bad step, bad value

    def _grow(self, terms: dict[str, Tensor]) -> None:
        device = next(iter(terms.values())).device
        if self.state is not None and self.state.device != device:  # loaded from a checkpoint
            self.state = self.state.to(device)
        new = [k for k in terms if k not in self.keys]
        if not new:
            return
        extra = torch.zeros(4, len(new), dtype=torch.float64, device=device)
        extra[2] = -1
        self.keys += new
        self.state = extra if self.state is None else torch.cat([self.state, extra], 1)

    def update(self, step: int, terms: dict[str, Tensor]) -> None:
        self._grow(terms)
        # the mask from device scalars: torch.tensor(list, device=cuda) would block every step
        one, zero = self.state.new_ones(()), self.state.new_zeros(())
        present = torch.stack([one if k in terms else zero for k in self.keys]) > 0
        vals = torch.stack([terms[k].double() if k in terms else zero for k in self.keys])
        finite = torch.isfinite(vals)
        new_bad = present & ~finite & (self.state[2] < 0)
        self.state[0] += torch.where(present & finite, vals, 0.0)
        self.state[1] += present.double()
        self.state[2] = torch.where(new_bad, float(step), self.state[2])
        self.state[3] = torch.where(new_bad, vals, self.state[3])

    def align(self, keys: list[str], device: torch.device | str) -> None:
        """Hold the terms ``keys`` in that order (every process's terms, in one order), an
        absent one empty: the processes then reduce the same columns. A term that appears on
        one process only (a plugin's, drawn per process) would otherwise pair other terms'
        sums, or block the reduce."""
        if keys == self.keys:
            return
        if self.state is not None:
            device = self.state.device
        empty = torch.tensor([0.0, 0.0, -1.0, 0.0], dtype=torch.float64, device=device)
        old = {k: i for i, k in enumerate(self.keys)}
        cols = [self.state[:, old[k]] if k in old else empty for k in keys]
        self.keys = list(keys)
        self.state = torch.stack(cols, 1) if cols else None

    def poll(self, reset: bool = True, reduce: Reduce | None = None
             ) -> tuple[dict[str, float], tuple[int, str, float] | None]:
        """Means since the last reset and the first non-finite term ``(step, name, value)``;
        ``reset=False`` reads without starting new means (a checkpoint or an evaluation between
        two logs must not change what the next log says)."""
        if self.state is None:
            return {}, None
        rows = self.state.tolist()
        sums = rows[:2] if reduce is None else reduce(self.state[:2].clone()).tolist()
        means = {k: s / c for k, s, c in zip(self.keys, sums[0], sums[1]) if c > 0}
        bad = [(int(st), k, v) for k, st, v in zip(self.keys, rows[2], rows[3]) if st >= 0]
        if reset:
            self.state[0:2] = 0
        # a sum is non-finite with its first bad part: name the part (d/total says nothing of
        # which term, a plugin's or the loss's, went first)
        return means, (min(bad, key=lambda b: (b[0], b[1].endswith("total"), b[1]))
                       if bad else None)

    def state_dict(self, reduce: Reduce | None = None) -> dict[str, Any]:
        """The sums since the last log (every process's, through ``reduce``), for a checkpoint:
        a resumed run logs the same means."""
        if self.state is None:
            return {"keys": list(self.keys), "state": None}
        state = self.state.detach().clone()
        if reduce is not None:
            state[:2] = reduce(state[:2].clone())
        return {"keys": list(self.keys), "state": state.cpu()}

    def load_state_dict(self, state: dict[str, Any] | None, keep_sums: bool = True) -> None:
        """Restore :meth:`state_dict` (``None``, from a checkpoint of an older version: empty).
        ``keep_sums=False`` (processes but the first) starts from zero sums: the saved ones are
        already every process's, and are counted once, by the first."""
        if not state or state.get("state") is None:
            self.keys, self.state = [], None
            return
        keys, sums = list(state["keys"]), state["state"]
        if tuple(sums.shape) != (4, len(keys)):
            raise ValueError(f"loss meter sums of shape {tuple(sums.shape)} for {len(keys)} terms")
        self.keys, self.state = keys, sums.to(torch.float64).clone()  # to the terms' device later
        if not keep_sums:
            self.state[:2] = 0


class TrainerBase:
    """The divergence stop and checkpoints of a run. Subclasses set ``cfg`` (with ``steps``) and
    ``advice`` (the remedy a diverged run suggests), and give ``state_dict``/``load_state_dict``."""

    advice = "a lower learning rate"
    #: the options a resume may change (the program's RESUMABLE)
    resumable: tuple[str, ...] = ()

    @staticmethod
    def saved_config(config: dict[str, Any]) -> dict[str, Any]:
        """A saved config as this version reads it (the program's ``saved_config``)."""
        return config

    def __init__(self, run: RunDir, dist: DistInfo):
        self.run, self.dist = run, dist
        self.step = 0
        self.meter = LossMeter()
        self.last_ckpt: Path | None = None
        self.last_ckpt_step: int | None = None
        # an evaluation or a slow step may take minutes before the stop: said at once
        self.stop = SaidStop("after this step, with a checkpoint", ", without one")

    def _align_terms(self) -> None:
        """With several processes: the loss meters hold every process's terms in one order
        before their sums are reduced (collective)."""
        if self.dist.world_size > 1:
            names = all_gather_object(list(self.meter.keys))
            self.meter.align(list(dict.fromkeys(k for keys in names for k in keys)),
                             self.dist.device)

    @property
    def _reduce(self) -> Reduce | None:
        """How the loss meter sums over processes (None: one process)."""
        return all_reduce_sum if self.dist.world_size > 1 else None

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def check_finite(self, reset: bool = True) -> dict[str, float]:
        """Read the loss meter (means since the last reset); stop on the first non-finite term.
        ``reset=False``: a check that is not a log (a checkpoint, an evaluation)."""
        self._align_terms()
        means, bad = self.meter.poll(reset, self._reduce)
        flag = torch.tensor([0.0 if bad is None else 1.0], device=self.dist.device)
        if float(all_reduce_sum(flag)) > 0:
            where = (f"at step {bad[0] + 1}: loss term {bad[1]!r} = {bad[2]}" if bad is not None
                     else "on another process")
            if self.dist.is_main:
                self.run.log(bad[0] + 1 if bad else self.step, event="diverged",
                             term=bad[1] if bad else None)
            raise TrainingDiverged(f"non-finite loss {where}; the run stopped and "
                                   f"{self.keep_advice()}")
        return means

    def keep_advice(self) -> str:
        return ckpt.resume_advice(self.last_ckpt, self.last_ckpt_step, self.run.path, self.advice)

    def save(self) -> None:
        """Checkpoint this step (process 0 writes; ``state_dict`` may be collective), with the
        loss meter's sums since the last log."""
        self.check_finite(reset=False)  # also aligns the processes' terms for the reduce below
        state = {**self.state_dict(), "meter": self.meter.state_dict(self._reduce)}
        if self.dist.is_main:
            try:
                self.last_ckpt = ckpt.save_checkpoint(state, self.run.checkpoints, self.step,
                                                      keep=self.cfg.keep_ckpts)
            except TrainingDiverged as err:  # finite losses but non-finite weights
                raise TrainingDiverged(f"{err}; the run stopped and {self.keep_advice()}") \
                    from None
        self.last_ckpt_step = self.step
        barrier()

    def check_stop(self) -> None:
        """After a step: on a pending stop signal (on any process), checkpoint and stop."""
        signum = self.stop.signum or 0
        if self.dist.world_size > 1:  # every process must agree: one read per step
            flag = torch.tensor([float(signum)], device=self.dist.device)
            signum = int(all_reduce_sum(flag).item())
        if not signum:
            return
        signum = self.stop.signum or signal.SIGTERM  # a rank that got none follows the others
        if self.last_ckpt_step != self.step:
            self.save()
        raise Interrupted(signum, f"stopped by {signal.Signals(signum).name} after step "
                                  f"{self.step} of {self.cfg.steps}; checkpoint {self.last_ckpt}; "
                                  f"continue with {resume_flags(self.run.path)}")

    @contextmanager
    def final_evaluation(self) -> Iterator[None]:
        """Around the evaluation after the last checkpoint (a 50k-sample FID may take long):
        SIGTERM ends it at once with the line a stop in training prints, as Ctrl-C's
        KeyboardInterrupt ends it (unhandled, SIGTERM ended the process with no word).
        Process 0 only: it evaluates while the others wait at the barrier."""
        if not self.dist.is_main or threading.current_thread() is not threading.main_thread():
            yield
            return
        message = (f"stopped by SIGTERM during the final evaluation of step {self.step}; "
                   f"checkpoint {self.last_ckpt}; continue with {resume_flags(self.run.path)} "
                   f"(it evaluates the step)")

        def stop(signum: int, frame: Any) -> None:
            raise Interrupted(signum, message)
        previous = signal.signal(signal.SIGTERM, stop)
        try:
            yield
        finally:
            restore_signal(signal.SIGTERM, previous)

    def finished(self, **summary: Any) -> None:
        """Write the run's completion marker, last (``run_records.FINISHED``). Process 0 writes it;
        with several processes the others then note it too, so that a late SIGTERM ends every
        one as finished (exit 0), not only process 0 (a scheduler counted the job as killed)."""
        if self.dist.is_main:
            mark_finished(self.run.path, {"step": self.step, "steps": self.cfg.steps, **summary})
        if self.dist.world_size > 1:  # one process needs no collective: it wrote the marker
            barrier()  # process 0 passes it only once finished.json is on disk
            if not self.dist.is_main:
                note_finished(self.run.path)

    def resume_from(self, path: Path) -> None:
        """Load and validate checkpoint ``path``; nothing in the run folder changes before."""
        def load(state: dict[str, Any]) -> None:
            self.load_state_dict(state)
            self.meter.load_state_dict(state.get("meter"), keep_sums=self.dist.is_main)

        # the run's own checkpoint before its step is compared with --steps
        ckpt.load_for_resume(path, self.cfg.steps, load, self.dist.device,
                             check=lambda state: self._check_same_run(path, state.get("config")))
        self.last_ckpt, self.last_ckpt_step = path, self.step

    def _differences(self, saved: Any) -> list[str]:
        """How a checkpoint's saved options differ from the run's (``config_changes``; a run
        of another program's, or none saved, differs in everything)."""
        if not isinstance(saved, dict) or other_program(saved, type(self.cfg)):
            return ["all options"]
        return config_changes(self.saved_config(saved), to_dict(self.cfg), self.resumable)

    def _check_same_run(self, path: Path, saved: dict[str, Any] | None) -> None:
        """The checkpoint's options (saved with it) are this run's: an edited config.json, or
        another run's checkpoint copied in, would go on as a different run without a word.
        Another run's (another program's, another --out's, or one beside which a step file
        holds config.json's options) is named as such: "restore config.json" was said of an
        intact config.json."""
        if not isinstance(saved, dict):  # checkpoints from before the config was saved in them
            return
        changes = self._differences(saved)
        if not changes:
            return
        program = other_program(saved, type(self.cfg))
        own = own_step_file(path, lambda s: not self._differences(s))
        why = (f"a run of {program}" if program
               else other_run(saved, to_dict(self.cfg), changes, own))
        if why is None:
            raise CheckpointError(
                f"checkpoint {path} was saved by a run with other options than "
                f"{self.run.path / 'config.json'} holds ({'; '.join(changes[:3])}); restore "
                f"config.json or the run's own checkpoint (options a resume may change are "
                f"given as flags with --resume)")
        where = (f"copy {own} over {path} to resume from it" if own is not None else
                 "put the run's own checkpoint there")
        raise CheckpointError(f"checkpoint {path} was saved by {why}, not by {self.run.path}: "
                              f"{where}")


def other_program(saved: dict[str, Any], cls: type) -> str | None:
    """The program whose run saved the options ``saved`` when most of them are no fields of
    ``cls`` (as a config.json is judged: ``check_run_program``): "`classify train`" when they
    are that trainer's (``config.TRAINERS``), else "another program"; None when they are ours."""
    import importlib

    from robustrep.tasks.common.config import TRAINERS
    if not foreign_options(saved, cls):
        return None
    for name, where in TRAINERS.items():
        module, _, attr = where.partition(":")
        other = getattr(importlib.import_module(module), attr)
        if other is not cls and not foreign_options(saved, other):
            return f"`{name}`"
    return "another program"


def other_run(saved: dict[str, Any], current: dict[str, Any], changes: list[str],
              own: Path | None = None) -> str | None:
    """Whose a checkpoint is whose options ``saved`` differ from config.json's (``current``:
    ``changes``), when something says it is another run's rather than config.json edited: the
    ``--out`` it was saved under (a run keeps the one it started with, resumed or moved), or
    ``own``, a step file beside it that holds config.json's options. None: nothing says so."""
    out, theirs = current.get("out"), saved.get("out")
    differs = "; ".join(changes[:3])
    if isinstance(theirs, str) and isinstance(out, str) and theirs != out:
        return f"another run (--out {theirs}; {differs})"
    if own is not None:
        return f"another run ({differs})"
    return None


def own_step_file(path: Path, same: Callable[[Any], bool]) -> Path | None:
    """The newest step file beside checkpoint ``path`` that reads whole and whose saved options
    are the run's (``same``): the run's own checkpoint to go on from."""
    for step_file in sorted(path.parent.glob("step_*.pt"), reverse=True):
        if (step_file.name != path.name and ckpt.damaged_part(step_file) is None
                and same(ckpt.saved_entry(step_file, "config"))):
            return step_file
    return None


def config_changes(saved: dict[str, Any], current: dict[str, Any],
                   may_change: tuple[str, ...]) -> list[str]:
    """``"name checkpoint-value (config.json: value)"`` for each option that differs between a
    checkpoint's saved config and the run's, leaving out those a resume may change and the
    paths (saved as given, config.json holds them absolute)."""
    import json
    saved, current = (json.loads(json.dumps(c, default=str)) for c in (saved, current))
    ignored = {*may_change, "out", "model"}
    return [f"{k} {saved[k]!r} (config.json: {current[k]!r})" for k in sorted(saved)
            if k not in ignored and not path_option(k, saved[k]) and k in current
            and saved[k] != current[k]]
