"""The bench's classify runs: ``--train-opt`` and each ``--regs`` setting parsed and checked by
``robustrep classify train --dry-run``, and each (setting, seed) trained unless a finished run of
that setting is there.

A setting is a classify ``--reg`` value (``+`` combines regularizers), optionally followed by
classify options for that setting only, each after an ``@``: ``none@head=uos`` trains the
baseline with the UoS head, ``adaptivemix@head=uos`` AdaptiveMix with it (``--train-opt`` applies
to every setting). A length in epochs (``--train-opt epochs=N``) goes to classify as given, which
converts it to steps; its ``--dry-run`` converts it the same way for the finished-run check.

The classify program runs in its own process (``robustrep classify train``), so the programs
stay apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustrep.tasks.common import settings
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.run_records import read_run


def parse_opts(items: list[str]) -> dict[str, Any]:
    """``--train-opt``'s ``NAME=VALUE`` items as a dict."""
    return settings.parse_opts(items, "--train-opt", _BENCH_OWN, "bench", lambda item: (
        f"--train-opt must look like NAME=VALUE (e.g. adv_steps=3), got {item!r}"))


def split_setting(setting: str) -> tuple[str, dict[str, Any]]:
    """``"adaptivemix@head=uos"`` -> ``("adaptivemix", {"head": "uos"})``."""
    return settings.split_setting(setting, own=_BENCH_OWN)


# classify train options the bench sets per run: given in --train-opt or a setting, they were
# passed after its own (seed=5 trained every seed's run with seed 5, reg=mixup trained mixup in
# the rows of the setting none) or lost (out=DIR), and dry_run=True trained nothing
_BENCH_OWN = {"reg": "from --regs", "seed": "from --seeds",
              "out": "under --out, as OUT/runs/SETTING-sSEED",
              "run_dir": "under --out, as OUT/runs/SETTING-sSEED",
              "resume": "it resumes an unfinished run itself; --retrain trains it again",
              "stop_after": "it trains each run to its end",
              "dry_run": "its own dry runs check the settings before any run is trained"}


# what a run's options may differ in from the setting asked for: the seed is the run's own; the
# others change where or how it runs, not what it trains (a data root is saved absolute)
_NOT_DEFINING = ("seed", "device", "workers", "log", "data_root", "eval_every", "ckpt_every",
                 "log_every")


def _finished(run_dir: Path, wanted: dict[str, Any]) -> bool:
    """Whether ``run_dir`` holds a finished run. A run of other options than ``wanted`` (the
    setting's resolved config, from ``classify train --dry-run``) is refused: reusing it would
    label its figures with options it was not trained with, and resuming one of another
    length would stretch its schedule."""
    from robustrep.tasks.common.errors import UserError
    if not (run_dir / "config.json").is_file():
        return False
    run = read_run(run_dir, ("eval/acc",))
    steps = wanted.get("steps")
    if run.config.get("steps") != steps:
        raise UserError(f"{run_dir} holds a run of {run.config.get('steps')} steps, not the "
                        f"{steps} asked for: add --retrain to train it again, or give another "
                        f"--out")
    # None in the dry run: filled in from the data by the run (classes' count, mean, std)
    other = next((k for k, v in wanted.items() if k not in _NOT_DEFINING and v is not None
                  and run.config.get(k) != v), None)
    if other is not None:
        raise UserError(f"{run_dir} holds a run made with {other} {run.config.get(other)!r}, "
                        f"not the {wanted[other]!r} asked for: add --retrain to train it "
                        f"again, or give another --out")
    return run.finished


def train_run(reg: str, seed: int, run_dir: Path, *, preset: str, model: str | None,
              steps: int, device: str, train_opts: dict[str, Any], retrain: bool,
              quiet: bool, wanted: dict[str, Any] | None = None,
              say: Callable[[str], None] | None = None) -> float:
    """Train one (regularizer, seed) classifier unless a finished run is already there.

    The classify program runs in its own process (``robustrep classify train``), so this
    program never imports it; its output goes to ``RUN/../train.log``, its progress lines too
    unless ``quiet``, which ``say`` is told of as they come (:mod:`robustrep.tasks.ood.relay`),
    with what is trained or kept. ``steps`` is the resolved step count (the preset's unless
    --steps; with ``epochs`` in ``train_opts``, the steps classify's dry run converted them to,
    and the run is given the epochs, which it converts the same way); ``wanted`` the setting's
    resolved config, which a finished run must have been trained with to be reused. Returns
    the seconds taken.
    """
    from robustrep.tasks.common.errors import UserError
    from robustrep.tasks.common.launch import last_lines, option_args, run_robustrep
    from robustrep.tasks.ood.relay import relaying

    if retrain and run_dir.exists():
        import shutil
        shutil.rmtree(run_dir)
    elif _finished(run_dir, wanted or {"steps": steps}):
        if say is not None:
            say(f"kept the finished run in {run_dir}")
        return 0.0
    from robustrep.tasks.common.checkpoint import can_resume
    resume = can_resume(run_dir)
    # a resumed run keeps its saved preset (--resume refuses --preset); the other options must
    # equal the saved ones, or be ones a resume may change (--steps)
    # a length in epochs goes as given: --steps beside it is refused ("two ways to give one
    # length"), and config.json then records the epochs that _finished compares
    by_epochs = train_opts.get("epochs") is not None
    options = {"preset": None if resume else preset, "reg": reg.replace("+", ","), "seed": seed,
               "model": model, "steps": None if by_epochs else steps, "device": device,
               **train_opts}
    # absolute: the child starts in the log's folder, where a relative path would nest
    argv = ["classify", "train", *option_args(options), "--out", str(run_dir.absolute()),
            *(["--quiet"] if quiet else [])]
    if resume:
        argv.append("--resume")
    log = run_dir.parent / "train.log"
    if say is not None:
        say(f"training {steps} steps" + (_resumed_from(run_dir) if resume else "")
            + f" (log: {log})")
    start = time.perf_counter()
    with relaying(log, say):
        code = run_robustrep(argv, log, threads=None)
    if code != 0:
        saved = can_resume(run_dir)
        raise UserError(f"training {reg} seed {seed} failed: "
                        f"{_failure(code, last_lines(log), saved)} (log: {log})")
    return time.perf_counter() - start


def _resumed_from(run_dir: Path) -> str:
    """`` from its checkpoint at step N``: "training 20 steps" alone read as 20 more when 10
    were left; the last step file where ``latest.pt`` is missing (the resume restores it)."""
    from robustrep.tasks.common.checkpoint import (last_step_checkpoint, latest_checkpoint,
                                                   saved_step)
    folder = run_dir / "checkpoints"
    step = saved_step(latest_checkpoint(folder) or last_step_checkpoint(folder))
    return " from its last checkpoint" + (f", at step {step}" if step is not None else "")


def _failure(code: int, last: str, saved: bool = True) -> str:
    """Why a training run failed, from its exit ``code`` and the ``last`` line of the log: a
    run killed by a signal (the OOM killer, a kill -9) writes nothing after the command line
    the log starts its entry with, which was quoted as if it were the error. ``saved``: the
    run wrote a checkpoint, which the next bench resumes from."""
    said = "" if last.startswith("$ ") else last
    if code >= 0:
        return said or f"exit code {code} and no output"
    import signal
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    after = f" (its last output: {said})" if said else ""
    again = ("resume it from its last checkpoint" if saved else
             "start it anew (it wrote no checkpoint)")
    return f"it was killed by {name}{after}; run the bench again to {again}"


def check_one_length(steps: int | None, train_opts: list[str], reg_list: list[str]) -> None:
    """Refuse ``--steps`` beside a length in epochs (``--train-opt epochs=N`` or a setting's
    ``@epochs=N``), in the bench's words: classify train refuses the two, and its dry run's
    refusal named the --train-opt alone."""
    if steps is None:
        return
    given = [f"--train-opt epochs={v}" for k, v in parse_opts(train_opts).items()
             if k == "epochs"]
    given += [f"--regs setting {r!r}" for r in reg_list if "epochs" in split_setting(r)[1]]
    if given:
        raise ConfigError(f"--steps {steps} and {given[0]} are two ways to give the runs' "
                          f"length: give --steps (optimizer steps) or epochs=N (passes over the "
                          f"training set, converted to steps as classify train does), not both")


def check_settings(reg_list: list[str], train_opts: list[str], *, preset: str,
                   model: str | None, steps: int | None, device: str,
                   tell: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Ask ``robustrep classify train --dry-run`` (its own parser and config checks, in its own
    process, which writes nothing) whether it accepts ``--train-opt`` and each ``--regs``
    setting's options; returns the resolved config of each setting. Refused: one line naming
    the option, before this program writes anything. ``tell`` gets a line after each setting
    (seconds each: a minute of silence for six settings)."""
    base = {"preset": preset, "model": model, "steps": steps, "device": device}
    opts = parse_opts(train_opts)
    if opts:
        settings.dry_run_config("classify", {**base, **opts},
                                f"--train-opt {' '.join(map(str, train_opts))}")
    configs = []
    for i, r in enumerate(reg_list, 1):
        reg, extra = split_setting(r)
        configs.append(settings.dry_run_config(
            "classify", {**base, "reg": reg.replace("+", ","), **opts, **extra},
            f"--regs setting {r!r}"))
        if tell is not None:
            tell(f"setting {i}/{len(reg_list)} ({r}) accepted")
    return configs
