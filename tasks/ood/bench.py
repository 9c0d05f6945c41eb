"""``robustrep ood bench``: does a training regularizer change how well OOD detectors work?

Protocol (the built-in semantic-shift split, :func:`robustrep.data.builtin.digits_ood_split`):
a classifier is trained on digits 0-4 with each regularizer setting and several seeds, by the
classify program in its own process (``robustrep classify train``, so the programs stay apart);
each run is then scored by every requested pytorch-ood detector against the built-in OOD sets
(digits 5-9, Gaussian and uniform noise, photo patches, rotated and inverted digits 0-4), with the
detectors fitted on the digits 0-4 train split.

A setting is a classify ``--reg`` value (``+`` combines regularizers), optionally followed by
classify options for that setting only, each after an ``@``: ``none@head=uos`` trains the
baseline with the UoS head, ``adaptivemix@head=uos`` AdaptiveMix with it (``--train-opt`` applies
to every setting). A length in epochs (``--train-opt epochs=N``) goes to classify as given, which
converts it to steps; its ``--dry-run`` converts it the same way for the finished-run check.

A second bench into the same ``--out`` keeps the earlier call's results of the regularizers it
does not run, when both asked for the same settings (:func:`_asked`): ``bench.json`` holds the
per-run records and ID accuracies the tables are computed from, so the merged tables are those a
single call of every regularizer would write. Under other settings they are replaced, with a note.

The table reports mean +- sample standard deviation over seeds of AUROC and FPR@95 under both
conventions (``fpr95_id_tpr``: OOD accepted at 95% ID TPR, Hendrycks/ODIN; ``fpr95_ood_tpr``: ID
flagged at 95% OOD TPR, pytorch-ood and OpenOOD v1.5) for each
regularizer x detector x OOD set, plus each regularizer's ID test accuracy and its AUROC averaged
over OOD sets. The question it answers is the one AdaptiveMix (Liu et al., "AdaptiveMix: Improving
GAN Training via Feature Space Shrinkage", CVPR 2023, WentianZhang-ML/AdaptiveMix) raises when it
reports better OOD detection for classifiers trained with feature-space shrinkage; the findings
paragraph counts where AdaptiveMix is ahead of or behind the unregularized baseline by more than
the seed-to-seed spread, and says so either way (the tables and files:
:mod:`robustrep.tasks.ood.bench_tables`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.folder_guard import check_folder, forget_folder, guard_folder
from robustrep.tasks.common.run_records import read_run
from robustrep.tasks.ood.bench_tables import (BENCH_FILES, SUMMARY_METRICS, aggregate,
                                              avg_over_ood, counted, format_markdown, mean_std,
                                              write_files)
from robustrep.tasks.ood.config import BENCH_OOD, DEFAULT_REGS  # declared without torch


def _parse_opts(items: list[str], setting: str | None = None) -> dict[str, Any]:
    """``NAME=VALUE`` items as a dict: ``--train-opt``'s, or those after a ``--regs``
    ``setting``'s '@' signs."""
    from robustrep.tasks.common.config import parse_literal
    out = {}
    for item in items or ():
        key, eq, raw = str(item).partition("=")
        if not eq or not key:
            raise ConfigError(_bad_opt(str(item), setting))
        key = key.strip().replace("-", "_")
        if key in _BENCH_OWN:
            where = "--train-opt" if setting is None else f"--regs {setting!r}:"
            raise ConfigError(f"{where} {item}: {key} is the bench's to set for each run "
                              f"({_BENCH_OWN[key]}); drop it")
        out[key] = parse_literal(raw)
    return out


# classify train options the bench sets per run: given in --train-opt or a setting, they were
# passed after its own (seed=5 trained every seed's run with seed 5, reg=mixup trained mixup in
# the rows of the setting none) or lost (out=DIR), and dry_run=True trained nothing
_BENCH_OWN = {"reg": "from --regs", "seed": "from --seeds",
              "out": "under --out, as OUT/runs/SETTING-sSEED",
              "run_dir": "under --out, as OUT/runs/SETTING-sSEED",
              "resume": "it resumes an unfinished run itself; --retrain trains it again",
              "dry_run": "its own dry runs check the settings before any run is trained"}


def _bad_opt(item: str, setting: str | None) -> str:
    """The refusal of an option that is no NAME=VALUE, naming where it was given: a --regs
    setting's was refused as a "--train-opt" that the user never gave."""
    if setting is None:
        return f"--train-opt must look like NAME=VALUE (e.g. adv_steps=3), got {item!r}"
    return (f"--regs {setting!r}: a setting is a classify --reg value (methods joined by '+'), "
            f"each of its own classify options after an '@' as NAME=VALUE (e.g. "
            f"none@head=uos, mixup+pgd@adv_steps=3); got {'@' + item!r}")


def split_setting(setting: str) -> tuple[str, dict[str, Any]]:
    """``"adaptivemix@head=uos"`` -> ``("adaptivemix", {"head": "uos"})``."""
    reg, *opts = str(setting).split("@")
    if not reg.strip():  # was refused by the run's own dry run, as "--reg" the user never gave
        raise ConfigError(f"--regs {setting!r}: a setting starts with its methods, or none "
                          f"(e.g. none@head=uos, mixup+pgd@adv_steps=3)")
    return reg, _parse_opts(opts, setting)


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
    resume = (run_dir / "checkpoints" / "latest.pt").is_file()
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
        say(f"training {steps} steps" + (" from its last checkpoint" if resume else "")
            + f" (log: {log})")
    start = time.perf_counter()
    with relaying(log, say):
        code = run_robustrep(argv, log, threads=None)
    if code != 0:
        saved = (run_dir / "checkpoints" / "latest.pt").is_file()
        raise UserError(f"training {reg} seed {seed} failed: "
                        f"{_failure(code, last_lines(log), saved)} (log: {log})")
    return time.perf_counter() - start


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


def _fit_size(config: dict[str, Any]) -> int | None:
    """The number of ID train images the detectors are fitted on for a run of ``config`` (a
    setting's dry-run config), where it is known before the run is trained: the bundled
    digits' train split of its classes, which ``ood score`` fits on. None for other data (a
    ``k`` above it is refused when the run is scored)."""
    if config.get("dataset") != "digits":
        return None
    from robustrep.data.builtin import digits
    return len(digits(8, 1, config.get("classes"), train=True))


def _data_name(config: dict[str, Any]) -> str:
    classes = config.get("classes")
    return f"{config.get('dataset')}" + (f" {', '.join(map(str, classes))}" if classes else "")


def check_one_length(steps: int | None, train_opts: list[str], reg_list: list[str]) -> None:
    """Refuse ``--steps`` beside a length in epochs (``--train-opt epochs=N`` or a setting's
    ``@epochs=N``), in the bench's words: classify train refuses the two, and its dry run's
    refusal named the --train-opt alone."""
    if steps is None:
        return
    given = [f"--train-opt epochs={v}" for k, v in _parse_opts(train_opts).items()
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
    from robustrep.tasks.common import launch

    def dry_run(options: dict[str, Any], what: str) -> dict[str, Any]:
        argv = ["classify", "train", *launch.option_args(options), "--dry-run"]
        code, output, errors = launch.check_robustrep(argv)
        lines = [ln for ln in (errors or output).splitlines() if ln.strip()]
        if code != 0:
            reason = (lines[-1] if lines else f"exit code {code}").split("error: ", 1)[-1]
            reason = reason.split(" (see 'robustrep", 1)[0]  # the top-level help: ours instead
            raise ConfigError(f"{what}: robustrep classify train does not accept it: {reason}; "
                              f"see robustrep classify train --help for the accepted options")
        return json.loads(output)

    base = {"preset": preset, "model": model, "steps": steps, "device": device}
    opts = _parse_opts(train_opts)
    if opts:
        dry_run({**base, **opts}, f"--train-opt {' '.join(map(str, train_opts))}")
    configs = []
    for i, r in enumerate(reg_list, 1):
        configs.append(dry_run({**base, "reg": split_setting(r)[0].replace("+", ","), **opts,
                                **split_setting(r)[1]}, f"--regs setting {r!r}"))
        if tell is not None:
            tell(f"setting {i}/{len(reg_list)} ({r}) accepted")
    return configs


@dataclass
class _Plan:
    """What one bench call runs, checked before anything is trained: the settings, seeds, OOD
    sets and detectors, the parsed ``--train-opt`` (``opts``), what defines the rows
    (:func:`_asked`), and the output folder."""

    regs: list[str]
    seeds: tuple
    ood: tuple
    specs: list
    overrides: dict[str, dict[str, Any]]
    opts: dict[str, Any]
    asked: dict[str, Any]
    out: Path

    @property
    def total(self) -> int:
        return len(self.regs) * len(self.seeds)


def run_bench(*, regs: str = ",".join(DEFAULT_REGS), seeds=(0, 1, 2), ood=BENCH_OOD,
              detectors: str, params=(), feature_maps: str = "spatial", model: str | None = None,
              steps: int | None = None, preset: str = "digits-ood", train_opts=(),
              out: str | Path = "runs/ood-bench", retrain: bool = False, batch_size: int = 256,
              device: str = "auto", amp: str = "off", workers: int | None = None, seed: int = 0,
              show_progress: bool = False) -> dict[str, Any]:
    """Train every (regularizer, seed), score every detector, write the comparison table."""
    plan = _plan(regs, seeds, ood, detectors, params, feature_maps, model, steps, preset,
                 train_opts, out, seed)
    tell = _teller(show_progress)
    if tell is not None:  # the dry runs take seconds each, the first training minutes
        tell(f"{counted(plan.total, 'run')} ({counted(len(plan.regs), 'setting')} x "
             f"{counted(len(plan.seeds), 'seed')}), each trained, then scored; checking the "
             f"settings with robustrep classify train --dry-run")
    configs = check_settings(plan.regs, list(train_opts), preset=preset, model=model,
                             steps=steps, device=device, tell=tell)
    _check_configs(plan, configs, preset)
    train = dict(preset=preset, model=model, device=device, retrain=retrain,
                 quiet=not show_progress)
    score = dict(params=list(params), feature_maps=feature_maps, batch_size=batch_size,
                 device=device, amp=amp, workers=workers, seed=seed)
    (plan.out / "runs").mkdir(parents=True, exist_ok=True)
    # removed or moved while the runs train (hours), the folder was made again by the next run,
    # holding the later runs alone and a table of them
    guard_folder(plan.out, _gone_line(plan.out))
    try:
        new, used = _run_all(plan, configs, train, score, show_progress)
        info = {"n_seeds": len(plan.seeds), "seeds": list(plan.seeds),
                "model": used.get("model", model), "steps": used.get("steps", steps),
                "preset": preset, "train_opts": plan.opts, "feature_maps": feature_maps}
        check_folder(plan.out)  # output_lock would make it again
        return _write_summary(plan, new, info)
    finally:
        forget_folder(plan.out)


def _gone_line(out: Path) -> str:
    return (f"--out {out} was removed or moved while the bench ran; nothing more is written "
            f"there; run the command again (with --out the folder's new place, its finished "
            f"runs are reused)")


@contextmanager
def _out_kept(out: Path) -> Iterator[None]:
    """Around one step that writes under ``out`` (a run's training, its scoring): ``out``
    checked before and after it, and a user error the step met as ``out`` went (the training
    "failed", ood score's own folder gone, the run's config.json missing) said as --out's."""
    from robustrep.tasks.common.errors import UserError
    check_folder(out)
    try:
        yield
    except UserError:
        check_folder(out)
        raise
    check_folder(out)


def _check_lists(regs: str, seeds, ood) -> tuple[list[str], tuple, tuple]:
    """``--regs``, ``--seeds`` and ``--ood`` with each item once, every setting's regularizers
    known to classify."""
    from robustrep._lists import check_no_empty_item
    from robustrep.registry import parse_combination
    from robustrep.tasks.common.options import unique
    try:  # the library's list check, a plain ValueError
        check_no_empty_item("--regs", str(regs), "settings separated by commas (a setting's "
                            "methods joined by '+')")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    reg_list = list(unique([_as_registered(r.strip(), parse_combination)
                            for r in str(regs).split(",") if r.strip()], "--regs", "setting"))
    seeds = unique(seeds, "--seeds", "seed")  # a seed twice would be two agreeing runs
    ood = unique(ood, "--ood", "OOD set")  # a set twice would count its cells twice
    return reg_list, seeds, ood


def _as_registered(setting: str, parse_combination: Any) -> str:
    """``setting`` with its methods spelt as registered (``Mixup@x=1`` -> ``mixup@x=1``): two
    spellings of one setting trained it twice, in two folders and two columns."""
    reg = split_setting(setting)[0]  # a bad '@' option: its own line, naming --regs
    try:
        names = parse_combination(reg, "classify", joiner="+")
    except ValueError as err:  # the registry's refusal of a name, with the setting
        raise ConfigError(f"--regs {setting!r}: {err}") from None
    return ("+".join(names) or "none") + setting[len(reg):]


def _plan(regs, seeds, ood, detectors, params, feature_maps, model, steps, preset, train_opts,
          out, seed) -> _Plan:
    """Every option checked, and ``--out`` (writable, no folder of another kind such as a
    run's, no file of the user's, no bench.json of another kind), before the first dry run."""
    from robustrep.tasks.common.output_paths import check_replaceable, check_writable
    from robustrep.tasks.ood.detector_params import parse_params
    from robustrep.tasks.ood.detectors import parse_detectors
    from robustrep.tasks.common.eval_records import check_own_kind
    reg_list, seeds, ood = _check_lists(regs, seeds, ood)
    out = check_writable(Path(out), "--out")  # a file in the way is named, as --out
    # a classify run's folder (or an ood score's, a report's) got runs/ and the tables
    check_own_kind(out, "bench.json", "--out", "ood bench",
                   "a new folder, or an earlier ood bench's (its finished runs are reused)")
    specs = parse_detectors(detectors)
    overrides = parse_params(params, specs)
    # by the whole name: `gaussian:x` passed here and was refused only once the first run had
    # been trained, when it was scored
    unknown = [o for o in ood if o not in BENCH_OOD]
    if unknown:
        raise ConfigError(f"bench scores built-in OOD sets only; unknown: {', '.join(unknown)} "
                          f"(valid: {', '.join(BENCH_OOD)})")
    opts = _parse_opts(list(train_opts))
    check_one_length(steps, list(train_opts), reg_list)
    asked = _asked(seeds, specs, ood, model, steps, preset, opts, feature_maps, seed, overrides)
    _read_earlier(out / "bench.json")  # one that is no bench's is named before any training
    # without a bench.json, a bench.md (.csv, .png) there is the user's: it was overwritten
    check_replaceable(out / "bench.json", ("regs", "summary"), "ood bench", "--out",
                      companions=BENCH_FILES)
    return _Plan(reg_list, seeds, ood, specs, overrides, opts, asked, out)


def _class_count(config: dict[str, Any]) -> int | None:
    """The outputs of the classifier a run of ``config`` (a setting's dry-run config) trains,
    where they are known before it is trained: ``num_classes`` given, or the highest of its
    ``classes`` + 1 (classify train keeps the labels), or the bundled digits' ten. None: read
    from the data by the run (GEN's ``M`` is then checked when it is scored)."""
    if isinstance(config.get("num_classes"), int):
        return config["num_classes"]
    if config.get("classes"):
        return max(map(int, config["classes"])) + 1
    return 10 if config.get("dataset") == "digits" else None


def _input_shape(config: dict[str, Any]) -> tuple[int, int, int]:
    """The images a run of ``config`` takes: its channels (None in a dry run: the data's, one
    for the bundled digits) and its image size."""
    channels = config.get("channels") or (1 if config.get("dataset") == "digits" else 3)
    return int(channels), int(config["image_size"]), int(config["image_size"])


def _meta_model(config: dict[str, Any]) -> Any:
    """The classifier a run of ``config`` trains, built on the meta device (no weights, no
    memory, nothing computed) to read its trunk's output shape before it is trained, as an
    :class:`~robustrep.tasks.ood.extract.OODModel`; None where it cannot be built so."""
    import torch

    from robustrep.tasks.common.classifier import create_classifier
    from robustrep.tasks.ood.extract import as_ood_model
    try:
        with torch.device("meta"):
            net = create_classifier(config["model"], _class_count(config) or 10,
                                    in_chans=_input_shape(config)[0],
                                    image_size=config["image_size"],
                                    head=config.get("head") or "linear",
                                    uos_scale=config.get("uos_scale"))
    except Exception:  # noqa: BLE001 (a hub model offline, say: its training says why, and
        return None  # ood score checks the trained run's maps again)
    return as_ood_model(net, "spatial")


def _check_maps(plan: _Plan, reg: str, config: dict[str, Any], built: dict) -> None:
    """The feature-map detectors against the trunk of the setting ``reg``'s model, and the
    detectors that read its last layer as a linear map against that layer (``built``: the meta
    models by their build options): a ViT's tokens were refused when the first run was
    scored, once it had been trained; ViM on a ``head=uos`` setting failed in every run's
    table, after its features were extracted."""
    from robustrep.tasks.ood.checks import check_last_layer, check_maps
    from robustrep.tasks.ood.detectors import reads_linear_head
    names = [s.name for s in plan.specs if s.consumes == "maps"]
    linear = [s.name for s in plan.specs if reads_linear_head(s)]
    sized = isinstance(config.get("image_size"), int)  # None: read from the data by the run
    maps = plan.asked["feature_maps"] == "spatial" and names and sized
    if not (maps or linear):
        return
    key = json.dumps([config.get(k) for k in ("model", "image_size", "channels", "dataset",
                                              "head")], default=str)
    if key not in built:
        built[key] = _meta_model(config)
    if built[key] is None:
        return
    runs = f"with --model {config['model']} (the {reg!r} runs)"
    if linear:
        check_last_layer(plan.specs, built[key], f"--detectors {', '.join(linear)} {runs}")
    if maps:
        check_maps(plan.specs, "spatial", built[key], _input_shape(config),
                   f"--detectors {', '.join(names)} {runs}")


def _check_configs(plan: _Plan, configs: list[dict[str, Any]], preset: str) -> None:
    """Each setting's resolved config (its dry run's) against the OOD sets and the detectors:
    before the first run is trained."""
    from robustrep.tasks.ood.datasets import check_not_trained_on
    from robustrep.tasks.ood.detector_params import (check_channel_params, check_class_params,
                                                     check_fit_counts)
    built: dict[str, Any] = {}
    for reg, config in zip(plan.regs, configs):
        if isinstance(config.get("channels"), int):  # ODIN's norm_std, before any training
            check_channel_params(plan.overrides, config["channels"])
        classes = _class_count(config)
        if classes is not None:  # GEN's M above it was taken as every class, and recorded
            check_class_params(plan.overrides, classes,
                               f"the {reg!r} runs' {classes} outputs ({_data_name(config)})")
        _check_maps(plan, reg, config, built)
        try:  # e.g. --train-opt classes=0,1,2,3,4,5: digits59 would not be OOD
            check_not_trained_on(list(plan.ood), config)
        except ConfigError as err:  # its refusal, said of the setting's runs
            raise ConfigError(f"the {reg!r} runs (--preset {preset}, --train-opt, --regs): "
                              f"{err}") from None
        size = _fit_size(config)  # KNN's k above it failed once the run was trained and scored
        if size is not None:
            check_fit_counts(plan.specs, plan.overrides, size,
                             f"{size:,} for the {reg!r} runs (the train split of "
                             f"{_data_name(config)})")


def _run_all(plan: _Plan, configs: list[dict[str, Any]], train: dict[str, Any],
             score: dict[str, Any], show_progress: bool
             ) -> tuple[dict[str, list], dict[str, Any]]:
    """Train and score every (setting, seed) in turn: their per-run records, ID accuracies and
    timings, and the model and steps the last run was trained with (its config's)."""
    from robustrep.tasks.common.launch import forwarding_signals
    new: dict[str, list] = {"records": [], "runs": [], "timings": []}
    used: dict[str, Any] = {}
    with forwarding_signals():  # a stop passes to the training run, which checkpoints
        for reg, config in zip(plan.regs, configs):
            for s in plan.seeds:
                say = _teller(show_progress, f"{len(new['timings']) + 1}/{plan.total} {reg} "
                                             f"seed {s}: ")
                used = _run_one(plan, reg, s, config, train, score, new, say)
    return new, used


def _run_one(plan: _Plan, reg: str, s: int, config: dict[str, Any], train: dict[str, Any],
             score: dict[str, Any], new: dict[str, list],
             say: Callable[[str], None] | None) -> dict[str, Any]:
    """Train (or keep) and score the run of setting ``reg`` and seed ``s``; its rows go into
    ``new``. Returns the model and steps its config records."""
    from robustrep.tasks.ood.score import score_run
    run_dir = plan.out / "runs" / f"{reg.replace('@', '_').replace('=', '-')}-s{s}"
    base, extra = split_setting(reg)
    with _out_kept(plan.out):  # the child would make RUN (and the folders above it) again
        seconds = train_run(base, s, run_dir, steps=config["steps"],
                            train_opts={**plan.opts, **extra}, wanted=config, say=say, **train)
    if say is not None:
        say(f"scoring {counted(len(plan.specs), 'detector')} on "
            f"{counted(len(plan.ood), 'OOD set')}")
    t0 = time.perf_counter()
    with _out_kept(plan.out):
        result, _ = score_run(run_dir, detectors=",".join(x.name for x in plan.specs),
                              ood=list(plan.ood), out=run_dir / "ood", plots=False,
                              show_progress=False, **score)
        cfg = read_run(run_dir).config
    new["timings"].append({"reg": reg, "seed": s, "train_seconds": round(seconds, 1),
                           "score_seconds": round(time.perf_counter() - t0, 1)})
    new["runs"].append({"reg": reg, "seed": s, "id_accuracy": result.id_accuracy})
    new["records"] += [{"reg": reg, "seed": s, **row} for row in result.rows()]
    if say is not None:
        say(f"train {seconds:.0f}s, score {new['timings'][-1]['score_seconds']:.0f}s, "
            f"{_id_acc(result.id_accuracy)}{_eta(new['timings'], plan.total)}")
    return {"model": cfg["model"], "steps": cfg["steps"]}


def _write_summary(plan: _Plan, new: dict[str, list], info: dict[str, Any]) -> dict[str, Any]:
    """Merge this call's rows with the earlier bench's kept ones (:func:`_keep_earlier`) and
    write the tables, under the folder's lock."""
    from robustrep.tasks.common.plots import grouped_bars
    from robustrep.tasks.common.runlock import output_lock
    out = plan.out
    with output_lock(out):  # a bench writing into the folder meanwhile: its regularizers kept
        earlier, notes = _keep_earlier(_read_earlier(out / "bench.json"), plan.asked,
                                       plan.regs, out / "bench.json")
        regs = _merged_order(earlier["order"], earlier["regs"], plan.regs)
        place = {r: i for i, r in enumerate(regs)}.__getitem__  # rows in the table's order
        records, runs, timings = (sorted(earlier[k] + new[k], key=lambda row: place(row["reg"]))
                                  for k in ("records", "runs", "timings"))
        det_names = [x.name for x in plan.specs]
        agg = aggregate(records)
        avg = avg_over_ood(records, regs, det_names)
        acc = {r: mean_std([x["id_accuracy"] for x in runs if x["reg"] == r
                            and x["id_accuracy"] is not None]) for r in regs}
        markdown = format_markdown(agg, avg, acc, regs, det_names, list(plan.ood), info)
        files = write_files(out, records, agg, avg, acc, regs, det_names, list(plan.ood),
                            {**info, "asked": plan.asked, "runs": runs}, timings, markdown,
                            grouped_bars)
    return {"markdown": markdown, "files": files, "aggregate": agg, "records": records,
            "notes": notes}


# ------------------------------------------------------------------------------------------------
# a second bench into the same folder


def _asked(seeds, specs, ood, model, steps, preset, opts, feature_maps, seed,
           params) -> dict[str, Any]:
    """What defines every regularizer's rows but the regularizer (as JSON reads it back): an
    earlier bench into the folder asked for the same keeps the rows of its other regularizers.
    Where and how fast it ran (device, batch size, amp, workers) is left out, as ``ood score``
    leaves it out of its merge."""
    return json.loads(json.dumps({
        "seeds": sorted(seeds), "detectors": sorted(x.name for x in specs), "ood": sorted(ood),
        "model": model, "steps": steps, "preset": preset, "train_opts": opts,
        "feature_maps": feature_maps, "seed": seed, "params": params}, default=str))


def _read_earlier(path: Path) -> dict[str, Any] | None:
    """The bench.json an earlier bench wrote into the folder, or None; another file of that
    name is refused, named (before any run is trained, and again under the folder's lock)."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if not (isinstance(old, dict) and isinstance(old.get("regs"), list)
            and isinstance(old.get("summary"), list)):
        raise RunFolderError(f"{path} is not a bench.json that robustrep ood bench can read "
                             f"(its results are merged with this call's); remove it or give "
                             f"--out another folder")
    return old


def _keep_earlier(old: dict[str, Any] | None, asked: dict[str, Any], regs: list[str],
                  path: Path) -> tuple[dict[str, Any], list[str]]:
    """The per-run records, accuracies and timings of the earlier bench's regularizers this call
    does not run, when it asked for the same (:func:`_asked`), and notes saying what was kept or
    replaced. A rerun with fewer ``--regs`` replaced the others' rows without a word."""
    none: dict[str, Any] = {"regs": [], "order": [], "records": [], "runs": [], "timings": []}
    others = [r for r in (old or {}).get("regs", []) if r not in regs]
    if not others:
        return none, []
    names = ", ".join(others)
    before = old.get("asked")
    if not isinstance(before, dict) or not isinstance(old.get("records"), list):
        return none, [f"replaced the earlier {path}'s results of {names}: it keeps no per-run "
                      f"records to merge (written before they were kept); add them to --regs "
                      f"(their finished runs are reused) or give --out a new folder"]
    diff = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in asked.items() if before.get(k) != v]
    if diff:
        return none, [f"replaced the earlier {path}'s results of {names}: they were measured "
                      f"under other settings ({'; '.join(diff)}); give --out a new folder to "
                      f"keep both"]
    kept = {key: [r for r in old.get(key) or [] if isinstance(r, dict) and r.get("reg") in others]
            for key in ("records", "runs", "timings")}
    kept["records"] = [{**r, **{m: math.nan if r.get(m) is None else r[m]
                                for m in SUMMARY_METRICS}} for r in kept["records"]]
    note = (f"kept the earlier {path}'s results of {names} (regularizers this call did not "
            f"run); the tables show both calls")
    return {"regs": others, "order": list(old["regs"]), **kept}, [note]


def _merged_order(earlier: list[str], kept: list[str], regs: list[str]) -> list[str]:
    """The table's regularizers: the earlier call's order (``earlier``), of those ``kept`` and
    those run again, then this call's new ones; only this call's when none is kept."""
    if not kept:
        return list(regs)
    return [r for r in earlier if r in kept or r in regs] + [r for r in regs if r not in earlier]


def _teller(show: bool, head: str = "") -> Callable[[str], None] | None:
    """What prints a progress line ``[bench] HEAD...`` (None: nothing is shown, --quiet): on
    stderr, as stdout is the table (``ood bench > table.md``)."""
    if not show:
        return None
    return lambda text: print(f"[bench] {head}{text}", file=sys.stderr, flush=True)


def _id_acc(accuracy: float | None) -> str:
    """The run's ID test accuracy for its closing line; left out when it was not measured (an ID
    set without labels), rather than formatting None."""
    return "" if accuracy is None else f"ID acc {accuracy:.3f}, "


def _eta(timings: list[dict[str, Any]], total: int) -> str:
    """The time left at the mean cost of the runs so far (runs trained before cost only their
    scoring, so a resumed bench's first estimates are low)."""
    from robustrep.tasks.common.progress import duration
    left = total - len(timings)
    if not left:
        return "done"
    spent = sum(t["train_seconds"] + t["score_seconds"] for t in timings)
    return f"about {duration(spent / len(timings) * left)} left"
