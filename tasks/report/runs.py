"""The runs behind a report: planned, and executed through the programs' own CLI (read back
by :mod:`.records`).

Each run is one or more ``robustrep`` commands executed in a fresh Python process
(:mod:`robustrep.tasks.common.launch`). A run is finished when its training wrote its
completion marker (``finished.json``, written last) and its result files exist (all written
atomically); a finished run is read, not repeated. An unfinished one (killed, failed) is
resumed from its checkpoint or restarted, so an interrupted report continues where it stopped,
and ``--collect`` reads folders written earlier by hand, leaving out unfinished runs.

GAN runs train the ``digits-dcgan`` preset (FID/KID/precision/recall on digits-CNN features) and,
outside ``--quick``, the ``grid-mlp`` preset (modes covered on the 25-Gaussian grid). Classifier
runs train the ``digits-ood`` preset (digits 0-4), then ``classify eval`` scores clean accuracy,
ECE, PGD robust accuracy and corruptions, and ``ood score`` scores the OOD detectors on the same
run, so one classifier serves both tasks.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.launch import (check_stop, forwarding_signals, last_lines,
                                           run_robustrep)
from robustrep.tasks.common.run_records import FINISHED, read_run
from robustrep.tasks.common.settings import folder_name


@dataclass(frozen=True)
class Settings:
    """What one report trains; ``quick`` and ``full`` below are the two documented sizes."""

    gan_regs: tuple[str, ...]
    classify_regs: tuple[str, ...]
    seeds: tuple[int, ...]
    gan_steps: int
    grid_steps: int  # 0: no 2-D grid runs
    classify_steps: int
    classify_model: str = "test_resnet"
    detectors: str = "MaxSoftmax,EnergyBased,Mahalanobis,KNN"
    attack_samples: int = 200
    gan_evals: int = 4  # FID evaluations per digits GAN run (the convergence curve), last = final


# Sizes on a 2-core CPU with 2 jobs (README): --quick 3.0 minutes (183 s, measured); the default
# about 15 (estimated from the quick run's per-run costs: a digits GAN run of 400 steps takes
# 30-65 s with its evaluation, a classifier run with eval and OOD scoring about 30 s).
FULL = Settings(gan_regs=("none", "adaptivemix", "mixup", "dat", "asgan", "rpgan"),
                classify_regs=("none", "mixup", "cutmix", "adaptivemix", "pgd", "fgsm"),
                seeds=(0, 1, 2), gan_steps=400, grid_steps=1000, classify_steps=100)
QUICK = Settings(gan_regs=("none", "adaptivemix"), classify_regs=("none", "adaptivemix"),
                 seeds=(0, 1, 2), gan_steps=300, grid_steps=0, classify_steps=80,
                 attack_samples=100)
# A run's wall-clock seconds, two at a time on those 2 cores: the 12 runs of --quick took 175 s
# (README), and the default's estimate is the same per run. The estimate a report gives when it
# starts; its bar's ETA, measured, follows from its first finished run on.
RUN_SECONDS = 30


@dataclass
class Run:
    """One (task, regularizer, seed) and the commands that produce its result files.

    ``commands[0]`` trains into ``folder``; the others (classify eval, ood score) read it and
    write one result file each (:func:`result_files`, in the same order).
    """

    task: str  # "gan", "grid" or "classify"
    reg: str
    seed: int
    folder: Path
    commands: list[list[str]] = field(default_factory=list)

    @property
    def trained(self) -> bool:
        """Training finished: its completion marker (or an old run's final evaluation)."""
        if not (self.folder / "config.json").is_file():
            return False
        return read_run(self.folder, GAN_KEYS + CLASSIFY_KEYS, redo).finished

    @property
    def steps(self) -> int | None:
        """The training steps this report plans for the run (its ``--steps``; None: any)."""
        train = self.commands[0] if self.commands else []
        return int(train[train.index("--steps") + 1]) if "--steps" in train else None

    @property
    def done(self) -> bool:
        return self.trained and all(p.is_file() for p in result_files(self))

    def pending(self) -> list[list[str]]:
        """The commands still to run: training resumed from its checkpoint when it has one,
        restarted when it has none, and every later command whose result is missing."""
        if not self.trained:
            train = self.commands[0]
            from robustrep.tasks.common.checkpoint import can_resume
            if can_resume(self.folder):
                train = [*train[:2], "--resume", str(self.folder), "--quiet"]
            return [train, *self.commands[1:]]
        return [argv for argv, result in zip(self.commands[1:], result_files(self))
                if not result.is_file()]


def redo(file: Path) -> str:
    """What to do about a damaged file of a run, in a report: the next report redoes only what
    is missing (the programs' own line, "run again into another folder", would mean every run
    of the report)."""
    again = "and run the report again (without --collect)"
    if file.name == "config.json":  # without it the folder is no run: resumed or started, refused
        return (f"restore it, or remove the run folder {file.parent} {again}: that run is "
                f"trained again")
    if file.name == FINISHED:
        return f"remove it {again}: the run is read or finished again"
    # an eval's or ood score's: their other files there, without it, would be refused as a user's
    return f"remove the folder {file.parent} {again}: only the command that writes it runs again"


GAN_KEYS = ("fid", "kid", "precision", "recall", "modes_covered", "high_quality", "kl_uniform")
CLASSIFY_KEYS = ("eval/acc",)


def result_files(run: Run) -> list[Path]:
    """The files the commands after training write (none for GAN runs)."""
    if run.task == "classify":
        return [run.folder / "eval" / "report.json", run.folder / "ood" / "results.json"]
    return []


def plan(settings: Settings, out: Path) -> list[Run]:
    """Every run of the report, its paths absolute: each child process starts in its own folder
    (launch.py), where a relative ``--out`` would name a folder nested inside it."""
    out = Path(out).expanduser().absolute()
    runs = []
    for seed in settings.seeds:
        for reg in settings.gan_regs:
            runs.append(_gan_run("gan", "digits-dcgan", reg, seed, settings.gan_steps, out,
                                 settings.gan_evals))
            if settings.grid_steps and split_setting(reg)[0] not in ("cutmix", "srmix"):
                # no image regions in 2-D points
                runs.append(_gan_run("grid", "grid-mlp", reg, seed, settings.grid_steps, out))
        for reg in settings.classify_regs:
            runs.append(_classify_run(settings, reg, seed, out))
    return runs


def _gan_run(task: str, preset: str, reg: str, seed: int, steps: int, out: Path,
             evals: int = 1) -> Run:
    """A GAN run evaluated ``evals`` times, evenly, the last at its final step (1: only then)."""
    folder = out / "runs" / task / f"{folder_name(reg)}-seed{seed}"
    every = steps // evals if evals > 1 else 0
    cmd = ["gan", "train", "--preset", preset, *setting_args(reg), "--seed", str(seed),
           "--steps", str(steps), "--eval-every", str(every), "--ckpt-every", str(steps),
           "--log-every", str(max(1, steps // 10)), "--out", str(folder), "--quiet"]
    return Run(task, reg, seed, folder, [cmd])


def _classify_run(settings: Settings, reg: str, seed: int, out: Path) -> Run:
    folder = out / "runs" / "classify" / f"{folder_name(reg)}-seed{seed}"
    steps = settings.classify_steps
    train = ["classify", "train", "--preset", "digits-ood", "--model", settings.classify_model,
             *setting_args(reg), "--seed", str(seed), "--steps", str(steps), "--eval-every",
             "0", "--ckpt-every", str(steps), "--log-every", str(max(1, steps // 10)),
             "--out", str(folder), "--quiet"]
    evaluate = ["classify", "eval", str(folder), "--attacks", "pgd",
                "--max-samples", str(settings.attack_samples), "--quiet"]
    score = ["ood", "score", str(folder), "--detectors", settings.detectors, "--quiet",
             "--no-plots"]
    return Run("classify", reg, seed, folder, [train, evaluate, score])


# options the report sets for each run itself, refused in a setting's '@' options
REPORT_OWN = {name: "the report's, the same for every setting" for name in (
    "preset", "model", "steps", "epochs", "stop_after", "eval_every", "ckpt_every",
    "log_every", "quiet", "dry_run")} | {
    "reg": "from the setting's methods", "seed": "from --seeds",
    "out": "under --out, as OUT/runs/TASK/SETTING-seedS",
    "resume": "it resumes an unfinished run itself"}


def split_setting(reg: str, flag: str = "--regs", program: str = "classify"
                  ) -> tuple[str, dict]:
    """A report setting (``mixup,cutmix@mixup_alpha=0.8``): its methods and its own options;
    a malformed one, or one of the report's own options, refused naming ``flag``."""
    from robustrep.tasks.common import settings
    return settings.split_setting(reg, flag, program, REPORT_OWN, "report")


def setting_args(reg: str) -> list[str]:
    """``--reg`` and the setting's own options as flags."""
    from robustrep.tasks.common.launch import option_args
    base, options = split_setting(reg)
    return ["--reg", base, *option_args(options)]


def run_log(run: Run) -> Path:
    """The log of ``run``'s commands and their output, beside its folder
    (``runs/gan/none-seed0.log``): runs going at once each write their own (one shared log
    interleaved them, and a failure line could not say which error was its run's)."""
    return run.folder.parent / f"{run.folder.name}.log"


def execute(runs: list[Run], jobs: int, progress=None, say=None) -> list[str]:
    """Run every command of the unfinished runs, ``jobs`` runs at a time; return the failures,
    each with the line its command ended with. ``say`` gets a line as each run starts: the
    runs are ``--quiet``, and a run's first sign was its end, a minute or more later."""
    todo = [r for r in runs if not r.done]
    failures: list[str] = []
    started = itertools.count(1)  # next() on it is atomic: the runs start in pool threads

    def one(run: Run) -> None:
        log = run_log(run)
        pending = run.pending()
        # a run queued when a signal stopped the report starts nothing: not even its line
        check_stop()
        if say is not None:
            say(f"report: run {next(started)}/{len(todo)}: {run.task} {run.reg} seed "
                f"{run.seed} {_starting(pending)} (log: {log})")
        for argv in pending:
            code = run_robustrep(argv, log)
            if code != 0:
                failures.append(f"{run.task}/{run.reg}/seed{run.seed}: robustrep "
                                f"{' '.join(argv[:2])} {_ending(code, log)}")
                break
        if progress is not None:
            progress.update(1)

    with forwarding_signals(), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, todo))
    return failures


def _starting(pending: list[list[str]]) -> str:
    """What a run's first pending command does: train it, resume it, or score it."""
    if pending[0][1] != "train":
        return f"scored ({', '.join(' '.join(argv[:2]) for argv in pending)})"
    return "resumed from its checkpoint" if "--resume" in pending[0] else "started"


def _ending(code: int, log: Path) -> str:
    """How a command that did not succeed ended: killed by a signal (its log says nothing of
    it), or the last line it wrote (its error) and the log."""
    if code < 0:
        import signal
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (log: {log})"
    return f"failed (exit {code}): {last_lines(log)} (log: {log})"


# ---------------------------------------------------------------------------------------------
# reading results back


PLOTS = tuple(f"plots/{task}.png" for task in ("gan", "grid", "classify", "ood"))  # page.draw


OWN_FOLDER = "a new folder, or an earlier report's (its finished runs are read)"


def check_out(out: Path, collect: bool = False, make: bool = True) -> None:
    """Before any run starts: the report folder can be written (it exists with ``collect``,
    which reads the runs in it), is no other command's folder, and holds no file of a report's
    names that no report wrote; ``make``: then made (``--dry-run`` makes nothing)."""
    from robustrep.tasks.common.output_paths import check_replaceable, check_writable
    from robustrep.tasks.common.eval_records import REPORT_KEYS, check_own_kind
    if collect and not out.is_dir():
        raise UserError(f"--out {out} is not a folder; --collect reads the runs of an earlier "
                        f"report there")
    check_writable(out, "--out")
    # a run's folder got the report's runs trained inside it, report.md beside its checkpoints
    check_own_kind(out, "--out", "report", OWN_FOLDER)
    _refuse_eval_folder(out)
    check_replaceable(out / "report.json", REPORT_KEYS, "report", "--out",
                      companions=("report.md", "report.html", *PLOTS))
    if make:
        out.mkdir(parents=True, exist_ok=True)


def _refuse_eval_folder(out: Path) -> None:
    """``classify eval`` writes a ``report.json`` of its own (``clean``, ``summary``): its
    folder is named as the eval's, where "not a readable record of report; remove it" advised
    deleting the eval's results (none there, or damaged: check_replaceable's to say)."""
    from robustrep.tasks.common.eval_records import CLASSIFY_EVAL, report_writer
    if report_writer(out / "report.json") == CLASSIFY_EVAL:
        from robustrep.tasks.common.errors import RunFolderError
        raise RunFolderError(f"--out {out} is the folder of a classify eval (its report.json "
                             f"holds an eval's summary); report writes only into a folder of "
                             f"its own: {OWN_FOLDER}")
