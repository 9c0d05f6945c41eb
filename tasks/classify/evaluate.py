"""``robustrep classify eval RUN``: the command, from its options to the report folder.

:func:`evaluate_run` checks the options and the folder the report goes to before any work,
loads the classifier (of a run folder, a model from elsewhere, or a RobustBench zoo model),
builds the evaluation split it is scored on, measures it (:func:`.eval_metrics.evaluate_model`:
clean, calibration, adversarial and corruption metrics, with their references) and writes the
report and its diagrams (:mod:`.report_files`); :func:`.eval_table.format_table` is the table
it prints.

A report names the run it evaluated (``run``, its resolved path; null for a model from
elsewhere), and ``--out`` never replaces another run's report
(:func:`.report_files.check_report_run`). ``--cifar-c`` is checked before any work
(:mod:`.cifar_c_checks`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustrep.corruptions import SEVERITIES
from robustrep.tasks.common import runtime
from robustrep.tasks.common.classifier_run import scored_ema
from robustrep.tasks.common.errors import UserError

from .cifar_c_checks import CIFAR_C_DATASETS, check_cifar_c
from .config import DEFAULT_CORRUPTIONS, DEFAULT_N_ATTACK  # declared without torch (the CLI)
from .eval_metrics import evaluate_model
from .report_files import (check_report_run, earlier_report, remove_stale_diagrams,
                           replaced_note, write_report)


def evaluate_run(run: str | Path | None, eps: float | None = None,
                 attacks: Sequence[str] = ("autoattack",),
                 norm: str = "Linf", pgd_steps: Sequence[int] = (10, 20),
                 pgd_step_size: float | None = None, n_attack: int | None = DEFAULT_N_ATTACK,
                 corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
                 severities: Sequence[int] = SEVERITIES, cifar_c_root: str | None = None,
                 bins: int = 15, max_samples: int | None = None, batch_size: int = 256,
                 seed: int = 0, use_ema: bool = True, device: str = "auto",
                 data_root: str | None = None, out: str | Path | None = None,
                 progress_bar: bool = False,
                 foreign: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate the classifier of a run folder on its evaluation split; write report + plots.

    ``foreign`` (``run`` None): a model no run made, as :func:`robustrep.tasks.common.weights.
    model_options` describes it (``load_model`` keywords plus ``dataset``/``classes``), or a
    RobustBench model (``robustbench`` key); the report goes to a new folder.
    """
    from .data import eval_loader
    out, claim = _check_outputs(run, foreign, out, eps, norm, data_root)  # before any work
    dev = runtime.resolve_device(device)
    model, config = _load(run, foreign, dev, use_ema)
    eval_set, info = _eval_set(run, foreign, config, cifar_c_root, data_root, eps, norm)
    data = eval_loader(eval_set, batch_size, max_samples=max_samples)
    try:
        report = evaluate_model(model, data, dev, eps, attacks, norm, pgd_steps, pgd_step_size,
                                n_attack, corruptions, severities, cifar_c_root, bins, seed,
                                progress_bar, attack_batch=batch_size)
    except (RuntimeError, MemoryError) as err:
        raise _out_of_memory(err, dev, batch_size) from None
    # resolved: a relative RUN named another run from another working folder (check_same_run)
    report.update(run=None if run is None else str(Path(run).resolve()), model=config["model"],
                  weights=config["weights"], ema=scored_ema(config), step=config.get("step"),
                  steps=config.get("steps"),
                  dataset=config["dataset"], split=info.eval_split, reg=config.get("reg"),
                  seed=seed,
                  input_convention=_input_convention(model, config.get("norm_source")))
    out = Path(out) if out is not None else Path(run) / "eval"
    _write_checked(report, out, run, foreign, claim)
    return report


# the folders classify eval writes into, as its refusal of another's names them: by default
# (RUN/eval), with --out for a run, with --out for a --model
_OWN_FOLDER = {"default": "a new --out, or an earlier classify eval's",
               "run": "RUN/eval without --out, a new folder, or an earlier classify eval's",
               "model": "a new folder, or an earlier classify eval's"}


def _check_outputs(run: str | Path | None, foreign: dict[str, Any] | None,
                   out: str | Path | None, eps: float | None, norm: str,
                   data_root: str | None) -> tuple[str | Path | None, bool]:
    """The options checked before the model loads, and the folder the report goes to
    (``--out``, RUN/eval, or for a model no run made a new ``runs/eval/<model>-<time>``, made
    only at the end: the returned flag)."""
    from .config import check_linf_eps

    from robustrep.tasks.common.eval_records import EVAL_REPORT_KEYS, check_own_kind
    from robustrep.tasks.common.output_paths import check_replaceable, check_writable
    from robustrep.tasks.common.runlock import check_not_training
    check_linf_eps(eps, norm)  # --eps 8 meant as 8/255
    _check_data_root(run, foreign, data_root)
    claim = foreign is not None and out is None
    if foreign is not None:
        out = _new_out(out, foreign["name"])
    folder = Path(out) if out is not None else Path(run) / "eval"
    check_writable(folder, "--out")
    if out is not None:
        check_not_training(out)  # RUN/eval is no run's folder
    option = "--out" if out is not None else "the run's report folder"
    # a run's folder (another run's, a GAN's, or one trained into RUN/eval) got report.json and
    # reliability.png beside its config.json
    check_own_kind(folder, option, "classify eval", _OWN_FOLDER[
        "default" if out is None else "model" if foreign is not None else "run"])
    # an earlier report there may be replaced, never a user's files (RUN/eval by default too)
    check_replaceable(folder / "report.json", EVAL_REPORT_KEYS, "classify eval", option,
                      companions=("reliability.png", "corruptions.png"))
    if out is not None and not claim:  # nor another run's report (RUN/eval is RUN's own)
        check_report_run(Path(out) / "report.json", run, foreign)
    return out, claim


def _eval_set(run: str | Path | None, foreign: dict[str, Any] | None, config: dict[str, Any],
              cifar_c_root: str | None, data_root: str | None, eps: float | None,
              norm: str) -> tuple[Any, Any]:
    """``(dataset, data info)`` the model is scored on: a run's held-out share, a model from
    elsewhere the whole folder; checked to fit the model (one line) before the long work, and
    the notes on what was assumed said."""
    from .config import ClassifyConfig, saved_config
    from .data import build_datasets

    from robustrep.metrics.robust import check_l2_radius

    from robustrep.tasks.common.config import from_dict
    from robustrep.tasks.common.foreign_model import default_norm_note
    from robustrep.tasks.common.rundir import check_run_program
    if cifar_c_root is not None:
        check_cifar_c(config, cifar_c_root)
    fields = {k: v for k, v in saved_config(config).items()
              if k in ClassifyConfig.__dataclass_fields__}
    if data_root is not None:
        fields["data_root"] = data_root
    source = "the --model options" if run is None else str(Path(run) / "config.json")
    if run is not None:  # a --plugin method named as resume names it, not as a bad --reg
        check_run_program(fields, ClassifyConfig, run, "classify")
    cfg = from_dict(ClassifyConfig, fields, source=source)  # a bad saved value names the file
    _, eval_set, info = build_datasets(cfg, _head_source(foreign), evaluating=True,
                                       whole_folder=foreign is not None)
    if eps is not None:  # an L2 radius wider than the images, before the clean pass
        check_l2_radius(eps, norm, eval_set[0][0].shape)
    notes = [wide_head_note(foreign, config, info),
             foreign and default_norm_note(foreign, config, "classify eval")]  # timm's, unsaid
    for note in filter(None, notes):
        print(f"note: {note}", file=sys.stderr)
    return eval_set, info


def _write_checked(report: dict[str, Any], out: Path, run: str | Path | None,
                   foreign: dict[str, Any] | None, claim: bool) -> None:
    """Write ``report`` and its diagrams into ``out`` under the folder's lock, checked again
    there (another call may have written meanwhile), and say what it replaced."""
    from robustrep.tasks.common.runlock import output_lock
    if claim:  # another call started in the same second may have made it: one folder each
        from robustrep.tasks.common.output_paths import claim_new_folder
        out = claim_new_folder(out)
    from robustrep.tasks.common.stops import held_stops
    # another eval into it waits; a killed one's temp files are removed; a stop waits for the
    # whole set (report.json names its diagrams)
    with output_lock(out), held_stops(f"the report in {out}"):
        check_report_run(out / "report.json", run, foreign)  # written there meanwhile
        earlier = earlier_report(out / "report.json")  # before any file there is replaced
        note = replaced_note(out / "report.json", report, earlier)
        report["files"] = write_report(report, out, report["model"])
        remove_stale_diagrams(out, earlier, report["files"])
    if note:
        print(f"note: {note}", file=sys.stderr)


def _check_data_root(run: str | Path | None, foreign: dict[str, Any] | None,
                     data_root: str | None) -> None:
    """``--data-root`` for data read from no folder (the built-in digits), refused before the
    model loads, as ``classify train`` refuses it (and ``ood score``, with the same line). It
    was refused only after the model had loaded (``--pretrained`` weights fetched first), and a
    run's user was told to set ``--dataset``, which ``classify eval RUN`` refuses."""
    from robustrep.tasks.common.dataroot import check_data_root
    from robustrep.tasks.common.options import MODEL_DATASETS
    check_data_root(data_root, run, foreign["dataset"] if foreign is not None else None,
                    model_choices=MODEL_DATASETS)  # --model takes no lsun, zip


def _out_of_memory(err: BaseException, device: torch.device, batch_size: int) -> BaseException:
    """A UserError naming ``--batch-size`` for a failed allocation (an attack's batch holds its
    gradients too, so AutoAttack can fail where the clean pass fitted: it was torch's
    traceback); any other error as it was."""
    from robustrep.tasks.common.errors import is_allocation_failure
    if not is_allocation_failure(err):
        return err
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UserError(f"out of memory on {device} with {batch_size} images at a time ({first}); "
                     f"give a smaller --batch-size (now {batch_size})")


def wide_head_note(foreign: dict[str, Any] | None, config: dict[str, Any], info) -> str | None:
    """A model from elsewhere with more outputs than the whole dataset has classes: its answers
    past them are never right (an ImageNet head on CIFAR-10 scores ~0 without a word). Not
    with ``--classes``, where a head of every class scored on a subset is the point."""
    if foreign is None or foreign.get("classes") is not None or info.data_classes is None:
        return None
    outputs, classes = int(config["num_classes"]), info.data_classes
    if outputs <= classes:
        return None
    return (f"the model has {outputs} outputs and {config['dataset']} {classes} classes: its "
            f"answers {classes}..{outputs - 1} count as wrong (weights of a head for other "
            f"data?)")


def _head_source(foreign: dict[str, Any] | None) -> str | None:
    """Where a model from elsewhere has its outputs from (None: a run's, which its config
    names), for the line refusing a head too small for the data."""
    if foreign is None:
        return None
    given = foreign.get("num_classes")
    return f"--num-classes {given}" if given is not None else "its head, from the weights"


def _input_convention(model: Any, norm_source: dict[str, str] | None = None) -> dict[str, Any]:
    """What the numbers were measured on: images in [0, 1] (the attacks' eps and the
    corruptions act there), then the model's own normalisation, and where each of its mean and
    std came from (``norm_source`` of load_run/load_model; none for RobustBench's)."""
    stats = {k: [round(float(v), 6) for v in getattr(model, k).flatten()] for k in ("mean", "std")
             if isinstance(getattr(model, k, None), torch.Tensor)}
    if norm_source:
        stats["norm_source"] = norm_source
    return {"range": [0.0, 1.0], **stats,
            "text": "inputs in [0, 1], where eps and the corruptions act; the model "
                    "normalises them with its (x - mean) / std"}


def _new_out(out: str | Path | None, name: str) -> Path:
    """The report folder of a model from elsewhere: ``--out`` or a new runs/eval/<model>-<time>.
    An earlier report in ``--out`` is replaced as a run's is (check_replaceable: one a
    ``classify eval`` wrote, never a user's file of its name); it was refused, while
    ``classify eval RUN`` replaced RUN/eval/report.json."""
    from robustrep.tasks.common.weights import default_out
    if out is None:  # claimed when the report is written, under another name if taken
        return default_out(name, "eval")
    return Path(out)


def _load(run, foreign: dict[str, Any] | None, device, use_ema: bool):
    """``(model, config)`` of a run folder, of a model from elsewhere, or of RobustBench."""
    from robustrep.tasks.common.classifier_run import load_run
    from robustrep.tasks.common.foreign_model import load_model, run_checkpoint_note
    from robustrep.tasks.common.options import no_ema_note
    if foreign is None:
        model, config = load_run(run, device, use_ema=use_ema)
        no_ema_note(run, use_ema, bool(config.get("ema_decay")))  # EMA on: the checkpoint has it
        return model, config
    fields = {k: foreign[k] for k in ("dataset", "classes", "image_size")}
    if "robustbench" in foreign:
        model, config = robustbench_model(foreign, device)
    else:
        model, config = load_model(**{k: v for k, v in foreign.items()
                                      if k not in ("dataset", "classes")}, device=device,
                                   use_ema=use_ema)
        note = run_checkpoint_note(foreign, config.pop("checkpoint_config"), "classify eval")
        if note:
            print(f"note: {note}", file=sys.stderr)
    return model, {**config, **fields}


def robustbench_options(args) -> dict[str, Any]:
    """``--robustbench NAME``: checked before any work (the optional package, the dataset)."""
    import importlib.util
    if importlib.util.find_spec("robustbench") is None:
        # its PyPI release pins timm==1.0.9 (below our floor) and imports autoattack, which
        # pyautoattack does not provide; its GitHub version has neither problem
        raise UserError("--robustbench needs the robustbench package, from GitHub (its PyPI "
                        "release pins timm==1.0.9): pip install "
                        "'git+https://github.com/RobustBench/robustbench.git@78fcc9e'")
    if args.run is not None or args.model is not None:
        raise UserError("--robustbench NAME replaces RUN and --model; give one of them")
    if args.dataset not in CIFAR_C_DATASETS:
        raise UserError(f"--robustbench evaluates on --dataset cifar10 or cifar100; got "
                        f"{args.dataset!r}")
    from robustrep.tasks.common.download import DownloadError, offline_reason
    # RobustBench keeps MODEL_DIR/DATASET/THREAT/NAME.pt and fetches it when absent
    local = Path(args.model_dir) / args.dataset / args.threat_model / f"{args.robustbench}.pt"
    reason = offline_reason()
    if reason and not local.is_file():
        raise DownloadError(f"--robustbench {args.robustbench}: {local} is missing and downloads "
                            f"are off ({reason}); place RobustBench's checkpoint there")
    return {"name": args.robustbench, "robustbench": args.threat_model,
            "model_dir": args.model_dir, "dataset": args.dataset, "classes": None,
            "image_size": 32}


def robustbench_model(foreign: dict[str, Any], device) -> tuple[nn.Module, dict[str, Any]]:
    """A RobustBench zoo model from its local model folder (``robustbench.utils.load_model``,
    RobustBench/robustbench; its models take [0, 1] images and normalise inside, as ours)."""
    from robustbench.utils import load_model as rb_load
    try:
        model = rb_load(model_name=foreign["name"], model_dir=foreign["model_dir"],
                        dataset=foreign["dataset"], threat_model=foreign["robustbench"])
    except Exception as err:  # the package's own errors: unknown name, missing file
        raise UserError(f"--robustbench {foreign['name']}: {' '.join(str(err).split())}") from None
    classes = 100 if foreign["dataset"] == "cifar100" else 10
    config = {"model": f"robustbench:{foreign['name']}", "num_classes": classes, "channels": 3,
              "mean": [0.0] * 3, "std": [1.0] * 3, "image_size": 32,
              "weights": f"robustbench {foreign['robustbench']}"}
    return model.to(device).eval(), config

