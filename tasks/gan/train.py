"""``robustrep gan train``: the training loop, run folder, checkpoints, evaluation and resume.

Run folder (``tasks/common/rundir.py``): ``config.json``, ``metrics.jsonl`` (loss means every
``log_every`` steps, metrics at every evaluation, naming the generator scored: ``generator``
``ema`` or ``G``), ``checkpoints/`` (atomic; G, D, G-EMA, both optimizers, the AMP scaler,
every RNG state including the step generators, the regularizer state such as the free AS-GAN
perturbation, the data position and the step), ``samples/`` (a grid, or a scatter plot for 2-D
data, at each evaluation) and ``plots/`` (loss and metric curves).

Resume (``--resume RUN``) reloads ``RUN/checkpoints/latest.pt`` and continues the same run in the
same folder: ``metrics.jsonl`` is cut back to the checkpoint's step (the step files and sample
grids past it are moved into ``abandoned_step_N/`` folders), and on CPU with a fixed seed
the resumed run equals the uninterrupted one (every random draw of a step comes from generators
saved in the checkpoint, and the data order is a function of the seed and the position).

Non-finite losses stop the run before anything else is written, naming the first step and loss
term and the last good checkpoint (``tasks/common/training.py``, shared with classify).

Run safety: the run folder is locked for the life of the run (``RunDir.lock``); the output folder,
the data (every image of a folder is decoded once), the batch size and the evaluation's feature
network are checked before step 1; on ``--resume`` the checkpoint is loaded and validated before
``config.json`` is rewritten.

Multiple processes (``torchrun --nproc_per_node N -m robustrep.tasks.cli gan train ...``): each
process draws its own slice of every global batch and its own latents; gradients are averaged
across processes after each backward (``all_reduce_grads``), the data-parallel update of
DistributedDataParallel done by hand as in stylegan2-ada's training loop. The DDP wrapper itself
does not fit here: D is called through several entry points per step (AdaptiveMix's trunk/head
calls, attack passes) and R1/WGAN-GP need double backward, which DDP's reducer does not support.
Process 0 writes the run folder and evaluates; exact resume equality is checked single-process.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch

from robustrep.tasks.common import checkpoint as ckpt
from robustrep.tasks.common.config import ConfigError, to_dict
from robustrep.tasks.common.distributed import (DistInfo, all_gather_object, barrier,
                                                broadcast_module, broadcast_object, cleanup,
                                                init_distributed)
from robustrep.tasks.common.errors import DataError, TrainingDiverged
from robustrep.tasks.common.optim import load_optimizer_state
from robustrep.tasks.common.options import check_more_to_train, check_stop_after
from robustrep.tasks.common.plots import curves, image_grid, scatter2d
from robustrep.tasks.common.progress import duration, fmt_postfix, progress
from robustrep.tasks.common.rundir import RunDir, default_run_path
from robustrep.tasks.common.runopen import check_run_folder, open_run, resumed
from robustrep.tasks.common.runtime import grad_scaler, make_ema, maybe_compile, prepare_module
from robustrep.tasks.common.train_clock import TrainClock
from robustrep.tasks.common.training import TrainerBase
from robustrep.tasks.gan.config import RESUMABLE, GanConfig, saved_config
from robustrep.tasks.gan.data import BatchStream, GanData, build_data, to_unit_range
from robustrep.tasks.gan.evaluate import EVAL_SEED, Evaluator
from robustrep.tasks.gan.models import (build_discriminator, build_generator, check_memory,
                                        check_networks, generate)
from robustrep.tasks.common.regularizer_record import record_regularizers
from robustrep.tasks.common.regularizers import Kept
from robustrep.tasks.gan.ema import ema_beta, ema_update
from robustrep.tasks.gan.lazy_reg import lazy_adam_kwargs, optimizer_intervals
from robustrep.tasks.gan.regs import build_regs, kept_regs, regs_record
from robustrep.tasks.gan.steps import StepContext, build_ada, g_forward, train_iteration

GRID_SEED = EVAL_SEED + 1
LOSS_CURVES = ("loss/d/total", "loss/g/total")
IMAGE_METRICS = ("fid", "kid", "precision", "recall")
POINT_METRICS = ("modes_covered", "high_quality")


__all__ = ["Trainer", "TrainingDiverged", "train"]  # TrainingDiverged lives in tasks/common


# ---------------------------------------------------------------------------------------------
# the trainer


def evaluations_left(step: int, steps: int, every: int, final: bool) -> int:
    """The evaluations a run at ``step`` still makes: one at each multiple of ``every`` before
    ``steps``, and the final one."""
    due = (steps - 1) // every - step // every if every > 0 else 0
    return max(0, due) + int(final and step < steps)


class Trainer(TrainerBase):
    """One training run: builds the models and state, then :meth:`fit` runs the loop."""

    advice = "lower learning rates (--lr-g, --lr-d)"
    resumable = RESUMABLE
    saved_config = staticmethod(saved_config)

    def __init__(self, cfg: GanConfig, run: RunDir, dist: DistInfo, data: GanData,
                 show_progress: bool = True, init: dict[str, dict] | None = None,
                 kept: Kept | None = None):
        super().__init__(run, dist)
        self.cfg = cfg
        self.kept = kept  # a resume's recorded regularizer options (regs.kept_regs)
        self.show_progress = show_progress and dist.is_main
        self.clock = TrainClock()  # training seconds, a resumed run's earlier ones included
        self.last_metrics: dict[str, Any] = {}
        self.eval_seconds: float | None = None  # the last evaluation's, with its pictures
        self.last_eval_step: int | None = None
        self._shown: dict[str, float] = {}  # the loss means the progress bar shows (show)
        self.evaluator: Evaluator | None = None
        self.data = data
        self.ctx, self.ema = self._build_state(init)
        self.stream: BatchStream | None = None
        self._consumed = 0  # global batches read before this session (from a checkpoint)

    # -- construction -------------------------------------------------------------------------

    def _build_state(self, init: dict[str, dict] | None = None) -> tuple[StepContext, Any]:
        cfg, dev = self.cfg, self.dist.device
        torch.manual_seed(cfg.seed)  # identical initial weights on every process
        regs = build_regs(cfg, self.kept)
        G = build_generator(cfg, self.data.shape)
        D = build_discriminator(cfg, self.data.shape, regs.discriminator,
                                generator=torch.Generator().manual_seed(cfg.seed),
                                aux_task=regs.aux_task, kept=self.kept)
        if init is not None:  # --init: a stylegan2-ada pickle's weights (checked in train())
            G.load_state_dict(init["G"])
            D.load_state_dict(init["D"])
        G = prepare_module(G, dev, cfg.channels_last)
        D = prepare_module(D, dev, cfg.channels_last)
        broadcast_module(G)
        broadcast_module(D)
        ckpt.seed_everything(cfg.seed + self.dist.rank)
        opt_g, opt_d = _optimizers(cfg, G, D)
        gens = self._generators()
        ctx = StepContext(
            cfg=cfg, G=G, D=D, g_fn=maybe_compile(g_forward(cfg, G, gens["z"]), cfg.compile),
            d_fn=maybe_compile(D, cfg.compile), opt_g=opt_g, opt_d=opt_d,
            scaler=grad_scaler(dev, cfg.amp), regs=regs, gens=gens,
            device=dev, channels_last=cfg.channels_last, ada=build_ada(cfg))
        ema = make_ema(G, cfg.ema_decay, warmup=cfg.ema_warmup)
        if init is not None and ema is not None:
            ema.module.load_state_dict(init["G_ema"])
        return ctx, ema

    def _generators(self) -> dict[str, torch.Generator]:
        base = self.cfg.seed * 1000 + 2 * self.dist.rank
        dev = self.dist.device
        return {"z": torch.Generator(dev).manual_seed(base + 1),
                "reg": torch.Generator(dev).manual_seed(base + 2)}

    @property
    def sampler_G(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.ctx.G

    @property
    def sampler_name(self) -> str:
        """What :attr:`sampler_G` is, in the words of gan eval's records."""
        return "ema" if self.ema is not None else "G"

    # -- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint; collective in multi-process runs (every rank's RNG and reg state)."""
        ctx = self.ctx
        ranks = all_gather_object({"rng": ckpt.rng_state(ctx.gens),
                                   "regs": ctx.regs.state_dict()})
        return {"step": self.step, "consumed": self.stream.consumed, "d_steps": ctx.d_steps,
                "train_seconds": self.clock.seconds, "ranks": ranks,
                "G": ctx.G.state_dict(), "D": ctx.D.state_dict(),
                "ema": self.ema.module.state_dict() if self.ema is not None else None,
                "opt_g": ctx.opt_g.state_dict(), "opt_d": ctx.opt_d.state_dict(),
                "scaler": ctx.scaler.state_dict(), "regs": ctx.regs.state_dict(),
                "rng": ckpt.rng_state(ctx.gens), "config": to_dict(self.cfg),
                "world_size": self.dist.world_size,
                "ada": ctx.ada.state_dict() if ctx.ada is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ctx = self.ctx
        ctx.G.load_state_dict(state["G"])
        ctx.D.load_state_dict(state["D"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.module.load_state_dict(state["ema"])
        load_optimizer_state(ctx.opt_g, state["opt_g"])  # keeps a resume's new lr_g/betas
        load_optimizer_state(ctx.opt_d, state["opt_d"])
        ctx.scaler.load_state_dict(state["scaler"])
        mine = state["ranks"][self.dist.rank] if len(state["ranks"]) == self.dist.world_size \
            else None
        ctx.regs.load_state_dict(mine["regs"] if mine else state["regs"])
        ckpt.set_rng_state(mine["rng"] if mine else state["rng"], ctx.gens)
        if mine is None:  # another number of processes: decorrelate the ranks' draws again
            if self.dist.is_main:
                print(f"note: {self.run.path} was trained with {len(state['ranks'])} "
                      f"process(es) and goes on with {self.dist.world_size}: the global batch "
                      f"stays {self.cfg.batch_size}, and each process's random draws start "
                      f"from a new seed", file=sys.stderr)
            for k, gen in enumerate(ctx.gens.values()):
                seed = self.cfg.seed * 1000 + 2 * self.dist.rank + k + 7919 * state["step"]
                gen.manual_seed(seed)
        ctx.d_steps = state["d_steps"]
        if ctx.ada is not None and state.get("ada") is not None:
            ctx.ada.load_state_dict(state["ada"])
        self.step = state["step"]
        self.clock = TrainClock(state["train_seconds"], self.step)
        self._consumed = state["consumed"]

    # -- logs, evaluation -----------------------------------------------------------------------

    def log_losses(self) -> dict[str, float]:
        means = self.check_finite()  # waits for the steps' device work: on the clock
        with self.clock.paused():
            if self.dist.is_main and means:
                self.run.log(self.step, kimg=self.kimg, train_s=round(self.clock.seconds, 2),
                             **{"time/step_ms": round(self.clock.step_ms(self.step), 3)},
                             **{f"loss/{k}": round(v, 6) for k, v in means.items()})
        return means

    @property
    def kimg(self) -> float:
        """Thousands of real images drawn so far (every process's batches: ``consumed`` counts
        global batches), the images-seen axis of loss and evaluation records alike."""
        consumed = self.stream.consumed if self.stream is not None else self._consumed
        return round(consumed * self.cfg.batch_size / 1000, 3)

    def prepare_evaluator(self) -> None:
        """Build the evaluator (feature network, real statistics) now if the run will evaluate,
        so missing or wrong weights are reported before step 1 rather than after training."""
        if self.evaluator is None:
            self.evaluator = build_evaluator(self.cfg, self.data, self.dist, self.show_progress)

    def evaluate(self) -> None:
        self.check_finite(reset=False)
        if self.dist.is_main:
            start = time.time()
            self.prepare_evaluator()
            # which generator was scored, named as gan eval names it (G-EMA, else G itself)
            metrics = {**self.evaluator(self.sampler_G),
                       "generator": self.sampler_name}
            metrics["eval_s"] = round(time.time() - start, 2)
            self.last_metrics = self.run.log(self.step, kimg=self.kimg, **metrics)
            self.draw()
            self.eval_seconds = time.time() - start  # its pictures too, for the bar's estimate
        self.last_eval_step = self.step
        barrier()

    def grid_path(self, step: int) -> Path:
        return self.run.samples / f"step_{step:08d}.png"

    def draw(self) -> None:
        """The loss/metric curves and the sample grid (or scatter) of this step, the grid last:
        its file tells a resumed run that this step's pictures were all written."""
        records = self.run.read_metrics()
        curves(records, LOSS_CURVES, self.run.plots / "losses.png", title="losses")
        keys = POINT_METRICS if self.data.is_points else IMAGE_METRICS
        curves(records, keys, self.run.plots / "metrics.png", title="evaluation")
        path = self.grid_path(self.step)
        if self.data.is_points:
            pts = generate(self.sampler_G, 2500, self.dist.device, seed=GRID_SEED).cpu()
            scatter2d(pts, self.data.centers, path, title=f"{self.cfg.reg} step {self.step}")
        else:
            images = generate(self.sampler_G, 64, self.dist.device, seed=GRID_SEED)
            image_grid(to_unit_range(images), path, nrow=8)

    def evaluate_resumed_step(self) -> None:
        """The evaluation due at a resumed run's checkpoint step, which a kill (or a full disk)
        interrupted after the checkpoint: evaluated again; or, when its record was logged but
        its pictures not all written, those drawn again (same weights, same seed: the pictures
        the uninterrupted run drew; the resume had left the step without its grid)."""
        if self.last_eval_step != self.step:
            self.evaluate()
        elif self.dist.is_main and not self.grid_path(self.step).is_file():
            self.draw()

    # -- the loop -------------------------------------------------------------------------------

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def fit(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train to ``cfg.steps``, or stop with a checkpoint after step ``stop_after`` (as if
        interrupted: no final evaluation, not marked finished; ``--resume`` continues)."""
        cfg, dist = self.cfg, self.dist
        stop = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        self.stream = BatchStream(self.data, cfg.batch_size, cfg.seed, dist.device, dist.rank,
                                  dist.world_size, self._consumed, cfg.num_workers)
        bar = progress(cfg.steps, self.step, desc=f"gan {cfg.label} {cfg.reg}",
                       enabled=self.show_progress)
        try:
            with self.stop.installed():
                if 0 < self.step < cfg.steps and self._due(cfg.eval_every):
                    self.evaluate_resumed_step()
                self.clock.start()
                try:
                    while self.step < stop:
                        self.one_step(bar)
                        self.check_stop()
                finally:
                    self.clock.stop()
                if self.step < cfg.steps:
                    self.pause()
                    return self.summary()
                # inside the handler: a signal during the last checkpoint's write is recorded,
                # the write completes, and the run stops with it (it raised inside torch.save:
                # the step's checkpoint lost, a traceback on a large model)
                means = self.log_losses()
                self.pause()
                self.check_stop()
            # outside the handler, as classify's: a stop signal ends the final evaluation (a
            # 50k-sample FID) at once, its checkpoint written first; the handler would only
            # have recorded it, and the run ended 0 as if no signal had come
            self.finish(bar, means)
        finally:
            bar.close()
        self.finished(train_s=round(self.clock.seconds, 2))
        return self.summary()

    def one_step(self, bar) -> None:
        set_lr(self.ctx, lr_factor(self.cfg.schedule, self.step, self.cfg.steps))
        terms = train_iteration(self.ctx, self.stream.next)
        self._update_ema()
        self.meter.update(self.step, terms)
        self.step += 1
        bar.update(1)
        if self._due(self.cfg.log_every):
            self.show(bar, self.log_losses())
        if self._due(self.cfg.ckpt_every) and self.step < self.cfg.steps:
            self.check_finite(reset=False)  # the steps' device work, on the clock
            with self.clock.paused():
                self.save()
        if self._due(self.cfg.eval_every) and self.step < self.cfg.steps:
            self.check_finite(reset=False)
            with self.clock.paused():
                self.evaluate()

    def _update_ema(self) -> None:
        """timm's EMA by step, or StyleGAN2's by images seen when ``ema_kimg`` is set."""
        if self.ema is None:
            return
        cfg = self.cfg
        if cfg.ema_kimg is None:
            self.ema.update(self.ctx.G, step=self.step + 1)
            return
        nimg = self.step * cfg.batch_size  # images seen before this step
        ema_update(self.ema.module, self.ctx.G,
                   ema_beta(cfg.batch_size, nimg, cfg.ema_kimg, cfg.ema_rampup))

    def show(self, bar, means: dict[str, float] | None = None) -> None:
        """The bar's losses (``means``: newly logged ones; else the last shown) and latest
        evaluation, named by its step (``fid@20``): between evaluations that is an earlier
        step's value, which unnamed read as the current one (``fid=139`` at the last step
        beside the final table's 149)."""
        if means:
            self._shown = means
        post = {"d": self._shown.get("d/total"), "g": self._shown.get("g/total")}
        step = self.last_metrics.get("step")
        for key in ("fid", "modes_covered"):
            if key in self.last_metrics:
                post[f"{key}@{step}"] = self.last_metrics[key]
        left = evaluations_left(self.step, self.cfg.steps, self.cfg.eval_every,
                                self.cfg.final_eval)
        if left and self.eval_seconds is not None:
            # the bar's ETA counts the steps alone: it had said 7 s where 33 s were left
            post["evals"] = f"+{duration(left * self.eval_seconds)}"
        bar.set_postfix(fmt_postfix(post))

    def finish(self, bar=None, means: dict[str, float] | None = None) -> None:
        """Evaluate the final step (logged and checkpointed first: eval may be slow), then show
        its losses (``means``, the last log's) and evaluation on ``bar``."""
        if self.cfg.final_eval:
            with self.final_evaluation():
                self.evaluate_resumed_step()  # a fresh run's last step: not evaluated yet
        if bar is not None:
            self.show(bar, means)

    def pause(self) -> None:
        """Checkpoint this step unless it has been (a step before the last, ``--stop-after``, as
        classify does; or the last); the loss sums since the last log go into the checkpoint, so
        the resumed run logs what this one would."""
        if self.last_ckpt_step != self.step:
            self.save()

    def summary(self) -> dict[str, Any]:
        metrics = {k: v for k, v in self.last_metrics.items() if k != "time"}
        return {"run": str(self.run.path), "rank": self.dist.rank, "step": self.step,
                "train_seconds": round(self.clock.seconds, 2), "metrics": metrics,
                "checkpoint": str(self.last_ckpt) if self.last_ckpt else None}


def _optimizers(cfg: GanConfig, G: torch.nn.Module,
                D: torch.nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for G and D; lr and betas adjusted for lazy regularisation steps (StyleGAN2). Each
    group keeps its lr as ``initial_lr`` (torch's scheduler convention), which :func:`set_lr`
    scales; a resume's new ``--lr-g``/``--lr-d`` replace it (``load_optimizer_state``)."""
    betas = (cfg.beta1, cfg.beta2)
    every_g, every_d = optimizer_intervals(cfg)
    opts = (torch.optim.Adam(G.parameters(), **lazy_adam_kwargs(cfg.lr_g, betas, every_g)),
            torch.optim.Adam(D.parameters(), **lazy_adam_kwargs(cfg.lr_d, betas, every_d)))
    for opt in opts:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return opts


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The learning rate's multiplier for iteration ``step`` (0-based) of ``steps``: constant,
    or linear from 1 at the first iteration towards 0 at ``steps``, mimicry's ``LRScheduler``
    (chainer's ``LinearShift``, SNGAN's schedule), one value for the G step and its n_dis D
    steps."""
    return 1.0 - step / steps if schedule == "linear" else 1.0


def set_lr(ctx: StepContext, factor: float) -> None:
    """Both optimizers' learning rates at ``factor`` times their ``initial_lr`` (Python floats:
    no device work)."""
    for opt in (ctx.opt_g, ctx.opt_d):
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * factor


def _last_eval(records: list[dict[str, Any]]) -> dict[str, Any]:
    evals = [r for r in records if any(k in r for k in IMAGE_METRICS + POINT_METRICS)]
    return evals[-1] if evals else {}


# ---------------------------------------------------------------------------------------------
# entry point


def run_path(cfg: GanConfig, resume: str | Path | None) -> Path:
    """The run folder: the resumed one, ``cfg.out`` or a new timestamped one."""
    if resume is not None:
        return Path(resume)
    if cfg.out is None:
        return default_run_path("runs", "gan", f"{cfg.label}-{cfg.reg.replace(',', '+')}")
    return Path(cfg.out)


def _note_fp16_on_cpu(cfg: GanConfig, device: torch.device) -> None:
    """The StyleGAN2 presets at 256x256 run their highest resolutions in float16, as the
    reference does on a GPU; a CPU computes float16 convolutions many times slower (4 steps of
    digits-stylegan2: 79 s against 3.4 s in float32), which would read as a hung run."""
    if cfg.arch == "stylegan2" and cfg.fp16_res and device.type == "cpu":
        print(f"note: --fp16-res {cfg.fp16_res} runs the {cfg.fp16_res} highest resolutions in "
              f"float16, which a CPU computes many times slower than float32; --fp16-res 0 is "
              f"the CPU setting", file=sys.stderr)


def check_batch(data: GanData, batch_size: int, world_size: int = 1,
                mbstd_group: int | None = None) -> None:
    """Before the run folder is made: ``--batch-size`` (global) splits into equal shares of at
    least 2 (mixing draws partners, BatchNorm needs two), the data fill one batch, and a
    StyleGAN2 D's minibatch-std groups (``mbstd_group``) divide each share, as the reference
    requires (the core would use a smaller group)."""
    if batch_size % world_size or batch_size // world_size < 2:
        raise ConfigError(f"--batch-size {batch_size} is the global batch, split across "
                          f"{world_size} processes: give a multiple of {world_size} of at least "
                          f"{2 * world_size} (2 or more per process)")
    share = batch_size // world_size
    if mbstd_group and share % min(mbstd_group, share):
        raise ConfigError(f"--mbstd-group {mbstd_group} does not divide the {share} samples each "
                          f"process's D sees (--batch-size {batch_size} over {world_size} "
                          f"process(es)); give a divisor of {share}")
    if len(data) < batch_size:
        plural = "" if len(data) == 1 else "s"
        raise DataError(f"the dataset holds {len(data)} sample{plural}, fewer than one batch "
                        f"(--batch-size {batch_size}); lower --batch-size or add data")


def train(cfg: GanConfig, resume: str | Path | None = None, show_progress: bool = True,
          stop_after: int | None = None) -> dict[str, Any]:
    """Train (or resume) a GAN run (to ``cfg.steps``, or ``stop_after`` steps with a checkpoint,
    to simulate an interruption); returns a summary with the run folder and final metrics."""
    dist = init_distributed(cfg.device)
    lock = None
    try:
        path = None
        if dist.is_main:
            path = run_path(cfg, resume)
            check_run_folder(path, resume is not None)
        # a method that cannot be built (or lacks its protocol) fails here, and a resume's
        # recorded value this version refuses (kept_regs, on the process that knows the run):
        # before the data, which they do not need (a second for the digits, a folder's scan)
        early = kept_regs(cfg, path) if resume is not None and path else None
        regs = build_regs(cfg, early[0] if early else None)
        data = build_data(cfg)  # missing or broken data fails before a run folder is made
        cfg = with_data_channels(cfg, data.shape)
        if dist.is_main:
            _note_fp16_on_cpu(cfg, dist.device)
        check_batch(data, cfg.batch_size, dist.world_size,
                    (cfg.mbstd_group or 4) if cfg.arch == "stylegan2" else None)  # core: 4
        check_memory(cfg, data.shape, regs, dist.device, dist.world_size)  # before any is built
        check_networks(cfg, data.shape, regs)  # so does a plugin D's or family's option
        init = _init_states(cfg, data, dist.is_main) if resume is None else None
        # missing or wrong feature-network weights fail before the run folder is made
        evaluator = build_evaluator(cfg, data, dist, show_progress)
        run = RunDir(Path(broadcast_object(str(path) if path is not None else None)))
        if dist.is_main:
            lock = open_run(run, to_dict(cfg), resume is not None, cfg.log)
        # the other processes read the record now (process 0 read it above, as it stands)
        kept, kept_note = early or (kept_regs(cfg, run.path) if resume is not None else ({}, None))
        trainer = Trainer(cfg, run, dist, data, show_progress, init, kept)
        trainer.evaluator = evaluator
        if resume is not None:
            trainer.resume_from(ckpt.latest_checkpoint(run.checkpoints))
            check_stop_after(stop_after, trainer.step)
            check_more_to_train(run.path, trainer.step, cfg.steps)
            if dist.is_main:  # validated: only now may the run folder change
                resumed(run, to_dict(cfg), trainer.step, trainer.last_ckpt)
                if kept_note:
                    print(kept_note, file=sys.stderr)
            trainer.last_metrics = _last_eval(run.read_metrics())
            trainer.last_eval_step = trainer.last_metrics.get("step")
        if dist.is_main:
            record_regularizers(run.path, regs_record(cfg, data.shape, kept), trainer.step)
        trainer.prepare_evaluator()
        return trainer.fit(stop_after)
    finally:
        if lock is not None:
            lock.release()
        cleanup()


def with_data_channels(cfg: GanConfig, shape: tuple[int, ...]) -> GanConfig:
    """``cfg`` with ``channels`` the data's where it was left to them (None), so that the run's
    ``config.json`` says what G was built for: a dataset zip is read in its stored mode (a
    greyscale zip gives a 1-channel G), which ``gan sample``/``eval``/``fid`` could not know
    from None and built a 3-channel G that the checkpoint did not fit."""
    if cfg.channels is not None or cfg.is_points:
        return cfg
    return dataclasses.replace(cfg, channels=shape[0])


def build_evaluator(cfg: GanConfig, data: GanData, dist: DistInfo,
                    show_progress: bool = True) -> Evaluator | None:
    """The evaluator (feature network, real statistics) of process 0 when the run evaluates."""
    if dist.is_main and (cfg.eval_every > 0 or cfg.final_eval):
        return Evaluator(cfg, data, dist.device, cfg.eval_samples, kid_subsets=10,
                         show_progress=show_progress)
    return None


def _init_states(cfg: GanConfig, data: GanData, say: bool) -> dict[str, dict] | None:
    """``--init PKL``: the pickle's state dicts, checked against this config's networks, and
    (``say``: the main process) a note on the float16 settings the run fine-tunes them with."""
    if cfg.init is None:
        return None
    from robustrep.tasks.gan.pickles import init_states
    states, note = init_states(cfg.init, cfg, build_generator(cfg, data.shape),
                               build_discriminator(cfg, data.shape))
    if note and say:
        print(note, file=sys.stderr)
    return states
