"""What one ``ood bench`` call runs (:class:`Plan`), checked before the first run is trained:
``--regs``, ``--seeds``, ``--ood``, the detectors and their ``--param``, ``--out``, and each
setting's resolved config (its ``classify train --dry-run``) against the detectors and OOD sets.

Training takes hours, so each setting's config is checked here for what would fail only when
its first run is scored (a ViT's tokens for a feature-map detector, ViM on a ``head=uos``
setting, KNN's ``k`` above the fit set, an OOD set of classes the setting trains on). The
classifier a setting trains is built for that on the meta device: no weights, no memory, nothing
computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.ood.bench_records import asked_for, read_earlier
from robustrep.tasks.ood.bench_tables import BENCH_FILES
from robustrep.tasks.ood.bench_training import check_one_length, parse_opts, split_setting
from robustrep.tasks.ood.config import BENCH_OOD  # declared without torch


@dataclass
class Plan:
    """What one bench call runs, checked before anything is trained: the settings, seeds, OOD
    sets and detectors, the parsed ``--train-opt`` (``opts``), what defines the rows
    (:func:`~robustrep.tasks.ood.bench_records.asked_for`), and the output folder."""

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


def make_plan(regs, seeds, ood, detectors, params, feature_maps, model, steps, preset,
              train_opts, out, seed) -> Plan:
    """Every option checked, and ``--out`` (writable, no folder of another kind such as a
    run's, no file of the user's, no bench.json of another kind), before the first dry run."""
    from robustrep.tasks.common.output_paths import check_replaceable, check_writable
    from robustrep.tasks.ood.detector_params import parse_params
    from robustrep.tasks.ood.detectors import parse_detectors
    from robustrep.tasks.common.eval_records import check_own_kind
    reg_list, seeds, ood = _check_lists(regs, seeds, ood)
    out = check_writable(Path(out), "--out")  # a file in the way is named, as --out
    # a classify run's folder (or an ood score's, a report's) got runs/ and the tables
    check_own_kind(out, "--out", "ood bench",
                   "a new folder, or an earlier ood bench's (its finished runs are reused)")
    specs = parse_detectors(detectors)
    overrides = parse_params(params, specs)
    # by the whole name: `gaussian:x` passed here and was refused only once the first run had
    # been trained, when it was scored
    unknown = [o for o in ood if o not in BENCH_OOD]
    if unknown:
        raise ConfigError(f"bench scores built-in OOD sets only; unknown: {', '.join(unknown)} "
                          f"(valid: {', '.join(BENCH_OOD)})")
    opts = parse_opts(list(train_opts))
    check_one_length(steps, list(train_opts), reg_list)
    asked = asked_for(seeds, specs, ood, model, steps, preset, opts, feature_maps, seed, overrides)
    read_earlier(out / "bench.json")  # one that is no bench's is named before any training
    # without a bench.json, a bench.md (.csv, .png) there is the user's: it was overwritten
    check_replaceable(out / "bench.json", ("regs", "summary"), "ood bench", "--out",
                      companions=BENCH_FILES)
    return Plan(reg_list, seeds, ood, specs, overrides, opts, asked, out)


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


def _check_maps(plan: Plan, reg: str, config: dict[str, Any], built: dict) -> None:
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


def check_configs(plan: Plan, configs: list[dict[str, Any]], preset: str) -> None:
    """Each setting's resolved config (its dry run's) against the OOD sets and the detectors:
    before the first run is trained."""
    from robustrep.tasks.ood.detector_params import (check_channel_params, check_class_params,
                                                     check_fit_counts)
    from robustrep.tasks.ood.set_checks import check_not_trained_on
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
