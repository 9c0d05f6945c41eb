"""Which data one ``robustrep ood score`` call reads: the ID test set, the data the detectors are
fitted on and the OOD sets, by name (:class:`Sets`).

Without ``--ood`` the OOD sets are OpenOOD v1.5's near- and far-OOD lists for the run's dataset
(``--openood``) or the built-in sets that are OOD for the run, a note naming the others
(:func:`choose_sets`); without ``--id`` the ID set is the run's own data. The fit set is built only
when a detector is fitted (:func:`fitted_detectors`), and checked against the classes the
classifier knows and against KNN's ``k`` and ViM's ``d`` (:func:`choose_fit_set`).

Apart from ``score.py``: which data a call reads is one idea, decided (and its sets checked,
:mod:`robustrep.tasks.ood.score_checks`) before any feature is extracted; fitting and scoring the
detectors on it (:mod:`robustrep.tasks.ood.score`) is another.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from robustrep.data.folder_splits import Splits, left_out_line, split_folders
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.ood import datasets as ds
from robustrep.tasks.ood.checks import check_fit_classes
from robustrep.tasks.ood.data_specs import (builtin_ood_names, default_id, has_train_split,
                                            is_zip, split_spec)
from robustrep.tasks.ood.detector_params import check_fit_counts
from robustrep.tasks.ood.detectors import DetectorSpec, fits_on
from robustrep.tasks.ood.openood import openood_benchmark
from robustrep.tasks.ood.set_checks import suits, unsuited


def fitted_detectors(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]] | None
                     ) -> dict[str, str]:
    """The detectors fitted on ID train data, by name, with what their fit reads; not ReAct
    given its threshold (:func:`~robustrep.tasks.ood.detectors.fits_on`)."""
    fits = {s.name: fits_on(s, (params or {}).get(s.name)) for s in specs}
    return {name: what for name, what in fits.items() if what is not None}


@dataclass
class Sets:
    """The data one call reads: the ID test set, the fit data (None: the ID set's train split),
    the OOD sets by name, the loader spec of each name that is not its own spec (OpenOOD's),
    OpenOOD's near/far groups, and notes on what was left out."""

    id_name: str
    fit_data: str | None
    ood: list[str]
    specs: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # the OpenOOD benchmark whose lists give ID data, and which: "test"/"train" -> its spec
    openood_id: str | None = None
    listed: dict[str, str] = field(default_factory=dict)

    def fit_source(self) -> str:
        """The fit data as the user gave it: OpenOOD's train list is no ``--fit-data``."""
        if self.fit_data is not None and self.fit_data == self.listed.get("train"):
            return (f"OpenOOD's train list benchmark_imglist/{self.openood_id}/train_"
                    f"{self.openood_id}.txt (--openood)")
        return f"--fit-data {self.fit_data}"


def choose_sets(config: dict[str, Any], ood: list[str] | None, id_data: str | None,
                fit_data: str | None, openood: str | None, openood_id: str | None,
                data_root: str | None = None) -> Sets:
    """The sets asked for; without ``--ood``, OpenOOD's benchmark sets or the built-in sets
    that are OOD for this run; without ``--id``, the run's data (under ``--data-root``)."""
    specs: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    bench_id, listed = None, {}
    notes: list[str] = []
    if openood is not None:
        bench = openood_benchmark(openood, openood_id or config.get("dataset"))
        listed = {role: spec for role, given, spec in (("test", id_data, bench.id_test),
                                                       ("train", fit_data, bench.id_train))
                  if given is None}
        bench_id = bench.id_name if listed else None
        id_data, fit_data = id_data or bench.id_test, fit_data or bench.id_train
        if ood is None:
            specs = {n: spec for group in bench.groups.values() for n, spec in group.items()}
            groups = {g: list(names) for g, names in bench.groups.items()}
        else:  # was silent: results.json named --openood, its near/far sets never scored
            notes.append(f"--ood {' '.join(ood)} replaces OpenOOD's near- and far-OOD sets of "
                         f"{bench.id_name}: --openood gives only the ID test and fit lists "
                         f"here, and the table has no near/far means (drop --ood for them)")
    if not (specs or ood):
        ood = [n for n in builtin_ood_names() if suits(n, config)]
        notes += [f"left out the OOD set {n}: {unsuited(n, config)}"
                  for n in builtin_ood_names() if n not in ood]
    return Sets(id_data or default_id(config, data_root), fit_data, list(specs or ood),
                specs, groups, notes, bench_id, listed)


def choose_fit_set(specs: Sequence[DetectorSpec], sets: Sets, ctx: ds.DataContext,
                   outputs: int, max_fit: int | None,
                   params: dict[str, dict[str, Any]] | None = None,
                   feature_dim: int | None = None) -> Dataset | None:
    """The ID images the detectors are fitted on (None when none is fitted), checked against
    the classes the classifier knows: those it was trained on, or every output; and their
    number against KNN's ``k`` and ViM's ``d`` (its default half ``feature_dim``)."""
    if not fitted_detectors(specs, params):
        return None
    id_name, fit_data = sets.id_name, sets.fit_data
    if fit_data is None and not has_train_split(id_name):
        raise ConfigError(f"{id_name} has no train split; name the data the detectors are "
                          f"fitted on with --fit-data")
    fit_set = ds.id_dataset(fit_data or id_name, ctx, train=True, limit=max_fit)
    id_classes = (sorted(map(int, ctx.classes)) if ctx.classes is not None
                  else list(range(outputs)))
    listed = fit_data is not None and fit_data == sets.listed.get("train")
    check_fit_classes(specs, id_classes, fit_set, outputs,
                      sets.fit_source() if fit_data else
                      f"the fit data (the train split of {id_name}; --fit-data names other)",
                      max_fit)
    where = sets.fit_source() if fit_data else f"the train split of {id_name}"
    # OpenOOD's train list is the benchmark's fit set: another is no remedy the user asked for
    check_fit_counts(specs, params, len(fit_set), f"{len(fit_set):,} in {where}",
                     None if listed else "fit on more images (--fit-data)", feature_dim)
    return fit_set


def left_out_notes(sets: Sets, fitted: bool) -> list[str]:
    """What this call leaves out of each image folder in timm's split layout it reads, once a
    folder whatever roles read it (``folder_splits.left_out_line``): the folders and images
    beside the splits, and a split no role reads (an OOD set's ``train/``; the ID set's when
    ``fitted`` is False, no detector being fitted). Asked once the sets are read: a layout
    the reads refuse never gets here."""
    roles = [(sets.id_name, False), *((sets.specs.get(n, n), False) for n in sets.ood)]
    if fitted:
        roles.append((sets.fit_data or sets.id_name, True))
    folders: dict[Path, tuple[str, Splits, set[Path]]] = {}
    for spec, train in roles:
        name, rest = split_spec(spec)
        root = os.path.expanduser(":".join(rest))
        splits = split_folders(root) if name == "imagefolder" and not is_zip(root) else None
        if splits is None:
            continue
        # imagefolder:x and imagefolder:./x/ are one folder, named as first given
        _, first, read = folders.setdefault(Path(root).resolve(), (spec, splits, set()))
        read.add(first.train if train or first.evaluation is None else first.evaluation)
    lines = (left_out_line(spec, splits, read) for spec, splits, read in folders.values())
    return [line for line in lines if line]
