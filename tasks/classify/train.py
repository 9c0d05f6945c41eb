"""``robustrep classify train``: fine-tune a timm classifier with the shared regularizers.

One optimizer step, for a batch ``(x, y)`` of images in [0, 1]:

1. optional augmentation (random crop + flip, batched, with the run's generator);
2. adversarial inputs: the adversarial-inputs regularizer's ``adversarial_inputs`` (PGD, Madry
   et al. ICLR 2018; FGSM with random start, Wong, Rice & Kolter ICLR 2020; free adversarial
   training, Shafahi et al. NeurIPS 2019, whose batch is replayed ``replays`` times and whose
   perturbation is carried over through ``after_backward``), in [0, 1] pixel space;
3. the loss of :class:`~.task.ClassifyTask`: the input-mixing regularizer's ``mix_inputs``
   with soft targets (Mixup / CutMix / SRMix, several combined into one policy), the feature
   regularizer's ``feature_terms`` (AdaptiveMix: the MSE shrinkage of the reference
   ``WentianZhang-ML/AdaptiveMix`` ``classification/train.py``, with the mixed cross-entropy
   ``lam CE(y) + (1 - lam) CE(y[pi])`` when its logits score a mix), or plain cross-entropy;
   label smoothing applies to all;
4. backward, optional gradient clipping, optimizer and schedule step (:mod:`.optim`), EMA
   update. With ``--grad-accum N`` steps 1-3 and the backward run on N batches in turn, each
   loss divided by N, before one update (timm ``train.py``'s ``--grad-accum-steps``).

The regularizers are built from ``--reg`` through the registry (:mod:`.task`) and called
through the protocols of their places (:mod:`robustrep.api`, ``tasks/common/regularizers.py``);
no step names one.

Adversarial examples are made from the clean batch and then mixed when both are asked for
(a mixing and an adversarial method in one ``--reg``); the attack maximises the plain
cross-entropy on the hard labels.

Runs are exactly resumable on CPU: the batch order is a function of the step, every random draw
of a step comes from one ``torch.Generator`` saved with the checkpoint, and the checkpoint holds
model, optimizer, EMA, AMP scaler, the regularizers' carried state and every RNG state (the
schedule is a function of the step).

Divergence, as in the GAN program (``tasks/common/training.py``): the loss terms are checked on
the device and read at every log, evaluation and checkpoint; a NaN or inf stops the run (exit
code 1) naming the first bad step and term and the last good checkpoint, and no checkpoint ever
holds non-finite weights. Logged losses are the means since the last log; ``time/step_ms`` the
mean step time since the last log and ``train_s`` the training seconds so far, evaluations and
checkpoints left out (:mod:`robustrep.tasks.common.train_clock`, gan's clock too).

Run safety: the run folder is locked for the run's life (``RunDir.lock``), the output folder is
checked for writability and the data scanned before training, and on ``--resume`` the
checkpoint is loaded and validated before ``config.json`` is rewritten.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustrep.adversarial import classifier_loss, preserve_bn_stats
from robustrep.nets.classifier import Classifier
from robustrep.tasks.common import checkpoint as ckpt
from robustrep.tasks.common import distributed as dist
from robustrep.tasks.common import runtime
from robustrep.tasks.common.batches import StepBatches, check_global_batch
from robustrep.tasks.common.classifier import create_classifier, sizes_checked_again
from robustrep.tasks.common.config import (ConfigError, from_dict, merge_for_resume,
                                           refuse_unused_on_resume, to_dict)
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.memory_fit import (batch_bytes, check_fits, state_words,
                                               training_bytes)
from robustrep.tasks.common.optim import load_optimizer_state
from robustrep.tasks.common.options import check_more_to_train, check_stop_after
from robustrep.tasks.common.progress import fmt_postfix, progress
from robustrep.tasks.common.rundir import RunDir, check_run_program
from robustrep.tasks.common.runlock import RunLock
from robustrep.tasks.common.runopen import check_run_folder, open_run, resumed
from robustrep.tasks.common.regularizer_record import (kept_on_resume, record_regularizers,
                                                      regularizer_record)
from robustrep.tasks.common.regularizers import Kept
from robustrep.tasks.common.run_records import train_seconds
from robustrep.tasks.common.train_clock import TrainClock
from robustrep.tasks.common.training import TrainerBase

from .config import OPTION_FIELDS, RESUMABLE, ClassifyConfig, saved_config
from .option_checks import unused_options
from .data import augment, build_datasets, eval_loader, train_batches
from .lengths import EPOCHS_OF
from .optim import build_optimizer, group_sizes
from .policies import BatchPolicies
from .task import build_regularizers, build_task


def build_classifier(cfg: ClassifyConfig, num_classes: int, channels: int,
                     weights: bool = True) -> Classifier:
    """The run's model (:func:`create_classifier`, which refuses an option the timm model does
    not take, e.g. ``--drop-path`` on a wrn*), with ``--pretrained``/``--pretrained-file`` only
    when ``weights``."""
    model = create_classifier(cfg.model, num_classes, channels, cfg.mean, cfg.std,
                              cfg.pretrained_file if weights else None, head=cfg.head,
                              uos_scale=cfg.uos_scale, drop_rate=cfg.drop_rate,
                              drop_path_rate=cfg.drop_path, image_size=cfg.image_size,
                              pretrained=cfg.pretrained and weights, final_act=cfg.final_act)
    if cfg.batch_size < 2 and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                  for m in model.modules()):
        raise ConfigError(f"--batch-size {cfg.batch_size}: model {cfg.model!r} has BatchNorm "
                          f"layers, which need at least 2 samples per batch in training; use "
                          f"--batch-size 2 or more")
    return model


def check_batch_memory(cfg: ClassifyConfig, device: torch.device, channels: int) -> None:
    """One batch of ``--batch-size`` float32 images of ``--image-size`` against the whole
    memory of ``device`` (:mod:`~robustrep.tasks.common.memory_fit`), in one line naming both:
    ``--image-size 1e20`` was a C++ traceback from torch's resize."""
    size = cfg.image_size
    check_fits(batch_bytes(cfg.batch_size, (channels, size, size)), device,
               f"--batch-size {cfg.batch_size} with --image-size {size}: one batch of "
               f"{cfg.batch_size} x {channels} x {size} x {size} float32 inputs takes")


def check_model_memory(cfg: ClassifyConfig, device: torch.device) -> None:
    """The model of ``cfg`` (the data's classes and channels in it), built on the meta device,
    with its gradients, Adam's moments (an Adam or LAMB ``--optimizer``; the others' are left
    out) and EMA copy, against the whole memory of ``device``: before it is built for real,
    where ``--num-classes 1000000000`` failed in torch's allocator."""
    opt = cfg.optimizer.lower()
    moments = 2 if "adam" in opt or "lamb" in opt else 0
    with sizes_checked_again():  # the real build checks the input size on its weights
        need = training_bytes(lambda: build_classifier(cfg, cfg.num_classes, cfg.channels,
                                                       weights=False),
                              moments, ema=cfg.ema_decay > 0)
    kept = state_words(moments > 0, "EMA copy" if cfg.ema_decay > 0 else None)
    check_fits(need, device, f"--model {cfg.model} with --num-classes {cfg.num_classes} and "
                             f"--image-size {cfg.image_size}: its {kept} take")


def dry_run_model(cfg: ClassifyConfig, num_classes: int | None = None,
                  channels: int | None = None) -> Classifier:
    """The run's model as ``--dry-run`` checks it: built on the meta device (no memory, no
    initialisation) and without its pretrained weights (neither read nor fetched), so the
    model's own refusals come before any run. A model whose constructor reads a tensor's values
    cannot be built there and is built on the CPU. The data's classes and channels, where the
    dry run has not read the data, are the config's, else what the model is built with for any
    count of classes (10) and the normalisation given (3 channels without one)."""
    num_classes = num_classes or cfg.num_classes or 10
    channels = channels or cfg.channels or len(cfg.mean or cfg.std or (0, 0, 0))
    try:
        with torch.device("meta"):
            return build_classifier(cfg, num_classes, channels, weights=False)
    except (NotImplementedError, RuntimeError):  # e.g. .item() of a meta tensor
        return build_classifier(cfg, num_classes, channels, weights=False)


@torch.no_grad()
def clean_accuracy(model: nn.Module, batches, device: torch.device, amp: str = "off",
                   channels_last: bool = False) -> tuple[float, float]:
    """(top-1 accuracy, mean NLL) of ``model`` in eval mode over ``batches``."""
    was_training = model.training
    model.eval()
    correct = total = 0
    nll = torch.zeros((), dtype=torch.float64, device=device)
    for x, y in batches:
        x, y = runtime.to_input(x, device, channels_last), y.to(device)
        with runtime.autocast(device, amp):
            logits = model(x).float()
        correct += int((logits.argmax(1) == y).sum())
        nll += F.cross_entropy(logits, y, reduction="sum").double()
        total += y.numel()
    model.train(was_training)
    return correct / max(total, 1), float(nll) / max(total, 1)


def _counted(batches: Any, bar: Any) -> Any:
    for batch in batches:
        yield batch
        bar.update(1)


class Trainer(TrainerBase):
    """Holds the state of one run; :meth:`fit` trains from the current step to ``cfg.steps``."""

    # the epochs follow --steps on resume (config_for_resume clears them), so a checkpoint's may
    # differ from config.json's; --epochs itself is refused there
    resumable = RESUMABLE + tuple(EPOCHS_OF.values())
    saved_config = staticmethod(saved_config)

    @property
    def advice(self) -> str:
        if self.cfg.amp == "bf16" and self.device.type == "cpu":  # not the lr's doing
            return ("--amp off (torch's bf16 convolution backward on a CPU gives non-finite "
                    "gradients now and then), or a lower --lr")
        return "a lower --lr (or --amp off)"

    def __init__(self, cfg: ClassifyConfig, run: RunDir, info: dist.DistInfo, quiet: bool = False,
                 resume: bool = False, kept: Kept | None = None):
        super().__init__(run, info)
        self.cfg, self.quiet = cfg, quiet
        self.train_s0: float | None = 0.0  # training seconds before this session (a resume's)
        self.clock = TrainClock()  # fit's, from train_s0
        self.resumed_eval: dict[str, Any] = {}  # a resumed run's last evaluation record
        self.device = info.device
        ckpt.seed_everything(cfg.seed + info.rank)
        # before the data is resized to --image-size, with the fewest channels it can have
        check_batch_memory(cfg, self.device, cfg.channels or 1)
        self.train_set, self.eval_set, self.data = build_datasets(cfg)
        # one global batch must fit: checked here, before prepare_run makes the run folder
        check_global_batch(len(self.train_set), cfg.batch_size, info.world_size)
        cfg.num_classes, cfg.channels = self.data.num_classes, self.data.channels
        cfg.class_names = self.data.class_names  # recorded: evaluations keep these labels
        check_batch_memory(cfg, self.device, cfg.channels)
        check_model_memory(cfg, self.device)
        torch.manual_seed(cfg.seed)  # the same initial weights on every process
        # a resume's weights are its checkpoint's: the file or hub weights it started from may
        # be gone (its normalisation is in cfg.mean/std, saved)
        self.model = build_classifier(cfg, cfg.num_classes, cfg.channels, weights=not resume)
        cfg.mean = [round(float(v), 6) for v in self.model.mean.flatten()]
        cfg.std = [round(float(v), 6) for v in self.model.std.flatten()]
        self.model = runtime.prepare_module(self.model, self.device, cfg.channels_last)
        regs = build_regularizers(cfg, kept)  # kept: a resume's recorded options
        if not resume:  # --epochs in steps, now the data's size is known; a resume keeps its own
            cfg.resolve_epochs(len(self.train_set), info.world_size,
                               getattr(regs.get("adversarial inputs"), "replays", 1))
        self.task = build_task(cfg, self.model, cfg.num_classes, regs).to(self.device)
        self.opt, self.sched = build_optimizer(cfg, self.model)
        self.policies = (BatchPolicies(cfg.aa, cfg.reprob, cfg.remode, cfg.image_size, cfg.mean,
                                       cfg.std) if cfg.aa or cfg.reprob > 0 else None)
        self.scaler = runtime.grad_scaler(self.device, cfg.amp)
        self.ema = runtime.make_ema(self.model, cfg.ema_decay)
        self.regs = regs
        self.adv = regs.get("adversarial inputs")  # robustrep.api.AdversarialInputs
        self.gen = torch.Generator(self.device).manual_seed(cfg.seed * 7919 + info.rank)
        self.lock: RunLock | None = None
        self.micro = 0  # batches of the current update done (--grad-accum)
        self.ddp = None if not info.enabled else nn.parallel.DistributedDataParallel(
            self.task, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.forward = runtime.maybe_compile(self.task if self.ddp is None else self.ddp,
                                             cfg.compile)

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint; collective with several processes: every process's draws (RNG) and
        carried perturbation are its own, so each is saved (``ranks``)."""
        mine = {"rng": ckpt.rng_state({"train": self.gen}), "regs": self._regs_state()}
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": None if self.ema is None else self.ema.module.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": to_dict(self.cfg),
            "train_seconds": self.clock.seconds,  # gan's key: train_s goes on from it
            "world_size": self.dist.world_size,
            "ranks": dist.all_gather_object(mine),
            **mine,  # the first process's, also where checkpoints before "ranks" kept them
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.module.load_state_dict(state["ema"])
        if group_sizes(state["optimizer"]) != group_sizes(self.opt.state_dict()):
            # saved before the optimizer grouped timm's own parameter names: it goes on as built
            self.opt, self.sched = build_optimizer(self.cfg, self.model, timm_names=False)
        # keeps a resume's new lr, momentum and weight decay; the schedule is set at the step below
        load_optimizer_state(self.opt, state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        saved = state.get("world_size")  # None: a checkpoint from before it was recorded
        if saved not in (None, self.dist.world_size):  # --batch-size is per process
            raise RunFolderError(f"{self.run.path} was trained with {saved} process(es) and is "
                                 f"resumed with {self.dist.world_size}: --batch-size is per "
                                 f"process, so the global batch would change from "
                                 f"{saved * self.cfg.batch_size} to "
                                 f"{self.dist.world_size * self.cfg.batch_size}; resume with "
                                 f"{saved} process(es)")
        mine = state["ranks"][self.dist.rank] if "ranks" in state else state
        for where, reg_state in (mine.get("regs") or {}).items():
            if where in self.regs and reg_state is not None:
                self.regs[where].load_state_dict(reg_state)
        ckpt.set_rng_state(mine["rng"], {"train": self.gen})
        self.step = int(state["step"])
        # None in a checkpoint from before it was saved: prepare_run reads the run's records
        self.train_s0 = state.get("train_seconds")
        self.sched.step_update(self.step)

    def _regs_state(self) -> dict[str, Any]:
        """The regularizers' carried state (a perturbation carried across steps), by place."""
        return {where: reg.state_dict() for where, reg in self.regs.items()
                if not isinstance(reg, nn.Module) and callable(getattr(reg, "state_dict", None))}

    # -- one step ------------------------------------------------------------------------------

    def _attack_loss(self, y: Tensor):
        return classifier_loss(self.model, y, lambda: runtime.autocast(self.device, self.cfg.amp))

    def _adversarial(self, x: Tensor, y: Tensor) -> Tensor:
        """The attack's batch; the model's buffers (BatchNorm statistics) are kept whatever the
        attack does: the built-in attacks keep them, a plugin's need not."""
        if self.adv is None:
            return x
        with preserve_bn_stats(self.model):
            return self.adv.adversarial_inputs(self._attack_loss(y), x, self.gen,
                                               model=self.model)

    def train_step(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Forward and backward of one batch. With ``--grad-accum N`` the gradients of N batches
        are summed, each batch's loss divided by N (timm's ``train.py``), and only every N-th
        batch updates the weights; ``self.step`` counts updates."""
        cfg = self.cfg
        x = runtime.to_input(x, self.device, cfg.channels_last)
        y = y.to(self.device)
        if cfg.augment:
            x = augment(x, self.gen)
        if self.policies is not None:
            x = self.policies(x, self.gen)
        x_in = self._adversarial(x, y)
        if self.micro == 0:
            self.opt.zero_grad(set_to_none=True)
        self.micro += 1
        with self._sync(self.micro == cfg.grad_accum):
            with runtime.autocast(self.device, cfg.amp):
                out = self.forward(x_in, y, self.gen)
            self.scaler.scale(out["loss"] / cfg.grad_accum).backward()
        self.meter.update(self.step, {k: v.detach() for k, v in out.items()
                                      if k == "loss" or "/" in k})
        if self.adv is not None:
            self.adv.after_backward(x_in)
        if self.micro < cfg.grad_accum:
            return out
        self.micro = 0
        if cfg.clip_grad > 0:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        # this update's, logged with its loss: the groups' mean, as timm's train.py (the groups
        # differ only with --layer-decay)
        lrs = [group["lr"] for group in self.opt.param_groups]
        self.step_lr = sum(lrs) / len(lrs)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        self.sched.step_update(self.step)  # the next update's lr
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)
        return out

    def _sync(self, last: bool):
        """DistributedDataParallel all-reduces the gradients at the last batch of an update
        only: the others' backward passes skip it (``no_sync``), as timm's train.py does."""
        return self.ddp.no_sync() if self.ddp is not None and not last \
            else contextlib.nullcontext()

    # -- loop ----------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Clean accuracy and NLL on the evaluation split (of the EMA weights too), each pass
        counted on a bar: a large model's evaluation took minutes after "step N/N" without a
        word (under torchrun the other processes wait at a barrier meanwhile); and its
        seconds, ``eval_s``, which ``train_s`` leaves out (as gan train's records)."""
        start = time.perf_counter()
        batches = eval_loader(self.eval_set, 256, self.cfg.workers)
        models = {"": self.model, "_ema": None if self.ema is None else self.ema.module}
        out: dict[str, float] = {}
        for suffix, model in ((k, m) for k, m in models.items() if m is not None):
            with progress(len(batches), desc=f"eval{suffix.replace('_', ' ')}", unit="batch",
                          enabled=self.dist.is_main and not self.quiet, leave=False) as bar:
                acc, nll = clean_accuracy(model, _counted(batches, bar), self.device,
                                          self.cfg.amp, self.cfg.channels_last)
            out[f"eval/acc{suffix}"], out[f"eval/nll{suffix}"] = acc, nll
        out["eval_s"] = round(time.perf_counter() - start, 3)
        return out

    def fit(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train to ``cfg.steps`` (or ``stop_after`` steps, to simulate an interruption)."""
        cfg = self.cfg
        stop = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        repeat = self.adv.replays if self.adv is not None else 1
        accum = cfg.grad_accum  # the sampler's steps are batches: accum of them per update
        sampler = StepBatches(len(self.train_set), cfg.batch_size, cfg.seed, self.step * accum,
                              stop * accum, self.dist.rank, self.dist.world_size, repeat)
        self.model.train()
        self.last: dict[str, Any] = {}
        bar = progress(cfg.steps, self.step, f"train {cfg.model}",
                       enabled=self.dist.is_main and not self.quiet)
        self.clock = TrainClock(self.train_s0 or 0.0, self.step)
        with self.stop.installed():
            try:
                self._loop(sampler, stop, bar)
            finally:  # a stop's line then starts a line of its own, with no bar drawn after it
                bar.close()
            self.check_finite(reset=False)
            # first: the evaluation may be slow; inside the handler: a signal during its write
            # is recorded and the run stops with it written (it raised inside torch.save)
            if self.last_ckpt_step != self.step:
                self.save()
            self.check_stop()
        if self.step == cfg.steps and self.dist.is_main:
            done = self.resumed_eval if self.resumed_eval.get("step") == self.step else None
            # a run killed after its final evaluation: logged once, not twice
            if done is None:
                with self.final_evaluation():
                    done = self.run.log(self.step, **self.evaluate())
            self.last = done
        dist.barrier()  # the other processes wait for process 0's evaluation
        if self.step == cfg.steps:
            self.finished()
        return self.last

    def _loop(self, sampler: StepBatches, stop: int, bar) -> None:
        """The steps from here to ``stop``; evaluations and checkpoints are off the clock
        (each waits for the steps' device work first: the loss meter's read)."""
        cfg = self.cfg
        self.clock.start()
        for x, y in train_batches(self.train_set, sampler, cfg.workers):
            self.train_step(x, y)
            if self.micro:  # an update's batches are not all in yet
                continue
            bar.update(1)
            if (cfg.log_every and self.step % cfg.log_every == 0) or self.step == cfg.steps:
                self._log(bar)
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                self.check_finite(reset=False)
                with self.clock.paused():
                    if self.dist.is_main:
                        self.last = self.run.log(self.step, **self.evaluate())
            if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < stop:
                self.check_finite(reset=False)
                with self.clock.paused():
                    self.save()
            self.check_stop()
        self.clock.stop()

    def _log(self, bar) -> None:
        """The loss terms' means since the last log, the lr, the step time of the interval and
        the training seconds so far (``run_records``' ``train_s``, as gan's)."""
        logged = self.check_finite()  # the terms' means since the last read
        with self.clock.paused():
            logged["lr"] = self.step_lr  # as timm's train.py logs it
            logged["time/step_ms"] = self.clock.step_ms(self.step)
            logged["train_s"] = round(self.clock.seconds, 3)
            bar.set_postfix(fmt_postfix({"loss": logged["loss"]}))
            if self.dist.is_main:
                self.last = self.run.log(self.step, **logged)



def prepare_run(cfg: ClassifyConfig, run_path: str | Path, resume: bool = False,
                device: str | None = None, stop_after: int | None = None
                ) -> tuple[Trainer, RunDir]:
    """Create (or reopen, with ``resume``) the run folder and a trainer at the right step."""
    info = dist.init_distributed(device or cfg.device)
    run = RunDir(Path(run_path))
    latest = check_run_folder(run.path, resume)
    kept, kept_note = (kept_on_resume(run.path, cfg, cfg.regularizers(), OPTION_FIELDS)
                       if resume else ({}, None))
    # builds (and scans) the data before the folder is made
    trainer = Trainer(cfg, run, info, resume=resume, kept=kept)
    if not resume:  # the length may have come from --epochs just now
        check_stop_after(stop_after, 0, cfg.steps, cfg.length_text("steps"))
    if info.is_main:  # the config has the data's fields now
        trainer.lock = open_run(run, to_dict(cfg), resume, cfg.log)
    try:
        if resume:
            trainer.resume_from(latest)
            check_stop_after(stop_after, trainer.step)  # validated: only now may the folder change
            check_more_to_train(run.path, trainer.step, cfg.steps)
            if info.is_main:
                resumed(run, to_dict(cfg), trainer.step, trainer.last_ckpt)
                if kept_note:
                    print(kept_note, file=sys.stderr)
                records = run.read_metrics()
                if trainer.train_s0 is None:  # the last log's: the steps after it are lost
                    trainer.train_s0 = next((t for t in (train_seconds(r, "train_s") for r in
                                                         reversed(records)) if t is not None), 0.0)
                    _note_older_clock(run.path, trainer.step)
                trainer.resumed_eval = next((r for r in reversed(records) if "eval/acc" in r), {})
        if info.is_main:
            record_regularizers(run.path, regularizer_record(
                cfg, cfg.regularizers(), OPTION_FIELDS, kept=kept), trainer.step)
    except BaseException:
        if trainer.lock is not None:
            trainer.lock.release()
        raise
    return trainer, run


def train(cfg: ClassifyConfig, run_path: str | Path, resume: bool = False,
          stop_after: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Train ``cfg`` into ``run_path``; returns the last logged record."""
    try:
        trainer, _ = prepare_run(cfg, run_path, resume, stop_after=stop_after)
    except BaseException:
        dist.cleanup()
        raise
    trainer.quiet = quiet
    try:
        return trainer.fit(stop_after)
    finally:
        if trainer.lock is not None:
            trainer.lock.release()
        dist.cleanup()


def _note_older_clock(path: Path, step: int) -> None:
    """A checkpoint without ``train_seconds`` is an earlier version's, whose ``train_s`` and
    ``time/step_ms`` counted evaluations and checkpoints (step time averaged since the process
    started): say where the records change meaning, which nothing else would."""
    print(f"note: {path} was trained to step {step} by an earlier robustrep, whose train_s and "
          f"time/step_ms counted evaluations and checkpoints too; from step {step} on they count "
          f"the training steps only (time/step_ms over each log interval), as gan train's",
          file=sys.stderr)


def config_for_resume(run_path: str | Path, overrides: dict[str, Any]) -> ClassifyConfig:
    """The saved config of a run, with the few options a resume may change."""
    saved = RunDir(Path(run_path)).read_config()
    check_run_program(saved, ClassifyConfig, run_path, "classify")
    saved = saved_config(saved)
    # a flag the run's options make do nothing, refused as a resume's flag (the config's own
    # check cannot tell it from a saved value, and advised setting a --dataset a resume keeps)
    refuse_unused_on_resume(saved, overrides, unused_options, RESUMABLE)
    _keep_epochs(saved, overrides, run_path)
    merged = merge_for_resume(saved, overrides, RESUMABLE, run_path)
    for field, epochs_field in EPOCHS_OF.items():
        if merged.get(field) != saved.get(field):  # --steps on resume: the length is in steps
            merged[epochs_field] = None
    # every saved value checked, an unknown key refused, as gan train --resume does: a damaged
    # config.json is named, never half-read into a different run
    cfg = from_dict(ClassifyConfig, merged, source=f"{Path(run_path) / 'config.json'}")
    cfg.check_warmup()  # its saved steps: what epochs gave them are not derived again
    if (cfg.weight_decay > 0) != ((saved.get("weight_decay") or 0) > 0):
        # timm groups the parameters by decay only when there is some: the saved optimizer
        # state would not fit the other grouping
        raise ConfigError(f"--weight-decay cannot change between 0 and > 0 on resume (the run "
                          f"has {saved.get('weight_decay')}); keep it at zero or above zero")
    return cfg


def _keep_epochs(saved: dict[str, Any], overrides: dict[str, Any], run_path: str | Path) -> None:
    """``--epochs`` (``--warmup-epochs``) other than a run's own is refused on resume: the run's
    length is saved in steps, which a resume keeps (a function of the step alone); ``--steps``
    changes it."""
    for field, epochs_field in EPOCHS_OF.items():
        given = overrides.get(epochs_field)
        if given is None or given == saved.get(epochs_field):
            continue
        flag, steps_flag = (f"--{f.replace('_', '-')}" for f in (epochs_field, field))
        was = saved.get(epochs_field)
        per = (f"; about {saved[field] / was:g} steps per epoch" if was else "")
        raise ConfigError(f"{flag} {given}: {run_path} keeps its {field.replace('_', ' ')} on "
                          f"resume ({saved.get(field)}"
                          f"{f', from {flag} {was}' if was is not None else ''}){per}; give "
                          f"{steps_flag} N to change it")
