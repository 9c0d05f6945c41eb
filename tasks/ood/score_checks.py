"""What ``robustrep ood score`` checks before it reads any data, stage by stage as
:func:`~robustrep.tasks.ood.score.score_run` meets them: the options alone, before the model is
loaded (:func:`check_options`); the output folder (:func:`output_folder`); the detector parameters
against the classifier's channels and outputs (:func:`check_params`); the chosen sets against each
other, the run and the options, OpenOOD's ID lists of another dataset than the classifier's among
them (:func:`check_sets`); and what the detectors need of the model (:func:`check_model`).

Each stage groups single checks of :mod:`robustrep.tasks.ood.checks`,
:mod:`robustrep.tasks.ood.set_checks` and :mod:`robustrep.tasks.ood.detector_params`: those say
what is wrong with one option, set or parameter; this module says when each is asked, so that a
refusal comes before the work it would waste. Apart from ``score.py``, which fits and scores the
detectors; not in ``checks.py``, which the fit set's choice (:mod:`robustrep.tasks.ood.score_sets`,
imported here) uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robustrep.split import probe_shape
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.eval_records import check_own_kind, check_same_run
from robustrep.tasks.ood import datasets as ds
from robustrep.tasks.ood.checks import (check_data_root, check_fit_options, check_inert_options,
                                        check_last_layer, check_maps, check_openood_id,
                                        optimistic_data)
from robustrep.tasks.ood.detector_params import (check_channel_params, check_class_params,
                                                 check_feature_params, check_fit_counts,
                                                 norm_std_notes)
from robustrep.tasks.ood.detectors import DetectorSpec
from robustrep.tasks.ood.extract import OODModel
from robustrep.tasks.ood.openood import OPENOOD_V15, check_openood_shape, list_labels
from robustrep.tasks.ood.outputs import OUTPUTS, read_earlier
from robustrep.tasks.ood.score_sets import Sets, fitted_detectors
from robustrep.tasks.ood.set_checks import check_distinct, check_not_id, check_not_trained_on


def check_options(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]],
                  run: str | Path | None, foreign: dict[str, Any] | None,
                  ood: list[str] | None, named: list[str | None], data_root: str | None,
                  max_fit: int | None, openood: str | None,
                  openood_id: str | None) -> list[str] | None:
    """What the options alone decide, before the model is loaded; the OOD sets, each once."""
    check_openood_id(openood, openood_id)
    check_data_root(data_root, run, foreign, [*named, *(ood or [])])
    check_fit_options(specs, fitted_detectors(specs, params), named[1], max_fit)
    if max_fit is not None:  # the most the fit set can hold
        check_fit_counts(specs, params, max_fit, f"at most {max_fit:,} (--max-fit {max_fit})",
                         "raise --max-fit")
    if ood is None:  # a set twice would be scored once, or its cells counted twice
        return None
    from robustrep.tasks.common.options import unique
    return list(unique(ood, "--ood", "OOD set"))


def output_folder(run: Path | None, out: str | Path | None,
                  foreign: dict[str, Any] | None) -> Path:
    """The folder the results go to, checked before any work: writable, no folder of another
    kind (a run's, a bench's, a report's), and holding no file but an earlier ``ood score``'s
    (whose rows are merged with this call's, never a user's results.json replaced). An earlier
    call's folder given as ``--out`` with ``--model`` was refused (``already holds
    results.json``), while ``ood score RUN`` merged with its own RUN/ood: merged alike now."""
    from robustrep.tasks.common.output_paths import check_replaceable, check_writable
    from robustrep.tasks.common.runlock import check_not_training
    if out:
        check_not_training(out)  # its writes would wait, without a word, for the run to end
    if foreign is not None and not out:
        from robustrep.tasks.common.weights import default_out
        # made when the results are written (claim_new_folder), under another name if taken
        return check_writable(default_out(foreign["name"], "ood"), "output folder")
    out_dir = Path(out) if out else run / "ood"
    # a run's folder (also the scored run's: its results go to RUN/ood, where robustrep report
    # reads them), a bench's or a report's: their files and ours were mixed in one folder
    check_own_kind(out_dir, "--out" if out else "output folder", "ood score",
                   "RUN/ood without --out, a new folder, or an earlier ood score's"
                   if foreign is None else "a new folder, or an earlier ood score's")
    check_writable(out_dir, "--out")
    check_replaceable(out_dir / "results.json", ("detectors", "results"), "ood score",
                      "--out" if out else "output", companions=OUTPUTS)
    # a damaged one is named now, and another run's refused; read again under the folder's
    # lock when the rows are merged
    check_same_run(read_earlier(out_dir / "results.json"), out_dir, run, "results",
                   foreign and f"--model {foreign['name']}")
    return out_dir


def check_params(params: dict[str, dict[str, Any]], channels: int, outputs: int) -> list[str]:
    """The detector parameters that depend on the classifier's input channels (ODIN's
    ``norm_std``) and outputs (GEN's ``M``), before any data is read; the notes to say."""
    check_channel_params(params, channels)
    check_class_params(params, outputs, f"this classifier's {outputs} outputs")
    return norm_std_notes(params, channels)  # accepted, and said once


def check_sets(specs: Sequence[DetectorSpec], sets: Sets, config: dict[str, Any],
               ctx: ds.DataContext, foreign: bool, openood_id: str | None, feature_maps: str,
               resize: bool) -> None:
    """The data sets against each other, the run and the options, before any is built; the
    notes on data that flatters the scores go to ``sets.notes``."""
    lists_resized = _check_openood_data(sets, config, foreign, ctx, openood_id)
    check_inert_options(specs, feature_maps, resize,
                        [sets.id_name, sets.fit_data or sets.id_name,
                         *(sets.specs.get(n, n) for n in sets.ood)], lists_resized)
    check_not_trained_on(sets.ood, config, foreign)
    check_not_id({n: sets.specs.get(n, n) for n in sets.ood}, ctx, sets.id_name,
                 sets.fit_data)
    check_distinct({n: sets.specs.get(n, n) for n in sets.ood}, ctx)
    sets.notes += optimistic_data(sets.id_name, sets.fit_data, {} if foreign else config)


# The datasets a run's config.json names (classify train's --dataset), each its own data; image
# folders and zips may hold any, ImageNet's too. A --model's --dataset names its data only when
# given: its default, digits, is no declaration.
_RUN_NAMED = ("digits", "cifar10", "cifar100", "svhn", "lsun")
_MODEL_NAMED = ("cifar10", "cifar100", "svhn")


def _check_openood_data(sets: Sets, config: dict[str, Any], foreign: bool,
                        ctx: ds.DataContext, openood_id: str | None) -> bool:
    """Refuse OpenOOD's ID lists of another dataset than the classifier's: a digits run scored
    with ``--openood-id cifar10`` read CIFAR-10's colour images as grey, kept labels 0-4, and
    reported an ID accuracy of 20% with exit 0. Where the data is not named (a ``--model``, a
    run of an image folder), the lists take the shape rule of ``--id cifar10``
    (:func:`~robustrep.tasks.ood.openood.check_openood_shape`). Returns whether ``--resize``
    acts on the lists; notes the classes left out of them."""
    bench = sets.openood_id
    if bench is None:
        return False
    what = f"--openood-id {bench}" if openood_id else f"--openood (the {bench} benchmark)"
    trained = config.get("dataset")
    if trained in (_MODEL_NAMED if foreign else _RUN_NAMED) and trained != bench:
        whose = (f"--dataset {trained} says the model was" if foreign else "the run was")
        lists = ("test and train lists are" if len(sets.listed) == 2 else
                 f"{next(iter(sets.listed))} list is")
        fix = (f"OpenOOD v1.5 has no {trained} benchmark: score its own OOD sets without "
               f"--openood" if trained not in OPENOOD_V15 else
               f"give --openood-id {trained}" if foreign else
               f"drop --openood-id (the run's {trained} benchmark is the default)")
        raise ConfigError(f"{what}: {whose} trained on {trained}, not {bench}, so OpenOOD's "
                          f"{bench} {lists} no in-distribution data for it (the images "
                          f"would be converted to its input, the labels read as its classes); "
                          f"{fix}")
    resized = False
    if foreign or trained != bench:  # a run's own data is read as it was trained on it
        resized = any([check_openood_shape(bench, spec, ctx, what)
                       for spec in sets.listed.values()])
    sets.notes += _left_out_classes(sets, ctx, foreign)
    return resized


def _left_out_classes(sets: Sets, ctx: ds.DataContext, foreign: bool) -> list[str]:
    """What OpenOOD's ID lists hold beyond the classifier's ID classes (the run's, or
    ``--classes``), which the loader leaves out without a word."""
    if ctx.classes is None:
        return []
    kept = sorted({int(c) for c in ctx.classes})
    notes = []
    for role, spec in sets.listed.items():
        dropped = sorted(c for c in list_labels(spec) if c >= 0 and c not in kept)
        if dropped:
            whose = f"--classes {' '.join(map(str, kept))}" if foreign else \
                f"the run's classes {', '.join(map(str, kept))}"
            notes.append(f"left out the images of class{'es' * (len(dropped) > 1)} "
                         f"{', '.join(map(str, dropped))} of "
                         f"OpenOOD's {sets.openood_id} {role} list: the ID classes are {whose}")
    return notes


def check_model(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]],
                model: OODModel, shape: tuple[int, ...], feature_maps: str,
                max_fit: int | None) -> int | None:
    """What the detectors need of the model, before any data is read: feature maps (a ViT's
    tokens), ViM's W and b (a UoS head), and ViM's ``d`` below the feature size ``D``, then
    below the fit count; returns ``D`` where ViM is scored (from two blank images)."""
    check_maps(specs, feature_maps, model, shape)
    check_last_layer(specs, model)
    if not any(s.name == "ViM" for s in specs):
        return None
    feature_dim = probe_shape(model, model.features, shape)[0]
    check_feature_params(params, feature_dim)
    if max_fit is not None:
        check_fit_counts(specs, params, max_fit, f"at most {max_fit:,} (--max-fit {max_fit})",
                         "raise --max-fit", feature_dim)
    return feature_dim
