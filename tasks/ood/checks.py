"""The checks ``robustrep ood score`` makes before any feature is extracted (and the one it
makes on every detector's scores): options that act on nothing (``--data-root`` of a digits
run among them), feature-map detectors on a model without feature maps, ID classes the head has
no output for, fit data lacking an ID class, ID data the classifier or the detectors have already
seen, and constant scores.

The checks before extraction refuse what the user asked for: a :class:`ConfigError` (one line,
exit 2; also a ValueError). Constant scores fail one detector, which the others outlive
(:func:`robustrep.tasks.ood.score._run_detector` records it): a plain ValueError."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from robustrep.data import innermost
from robustrep.data.zipdata import LABELS_FILE
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.zip_labels import dataset_zip, zip_labels_advice
from robustrep.tasks.ood import datasets as ds
from robustrep.tasks.ood.data_specs import LOCAL, has_train_split
from robustrep.tasks.ood.detectors import PER_CLASS, DetectorSpec
from robustrep.tasks.ood.extract import OODModel, check_map_shape


def check_not_constant(name: str, scores: Sequence[torch.Tensor]) -> None:
    """Refuse scores that are one value up to float noise: their AUROC (about 50) would read as
    a weak detector, where the detector sees nothing here (RankFeat on 1x1 feature maps, where
    removing the rank-1 part leaves nothing; MCD's variance on a network without dropout)."""
    values = torch.cat([s.double().flatten() for s in scores])
    spread = float(values.max() - values.min())
    if spread <= 1e-6 * max(1.0, float(values.abs().max())):
        raise ValueError(f"{name} gives every image the same score ({float(values[0]):.6g}, "
                         f"spread {spread:.2g}): it sees nothing in this classifier here, so "
                         f"its AUROC would mean nothing")


def check_inert_options(specs: Sequence[DetectorSpec], feature_maps: str, resize: bool,
                         sets: Sequence[str], lists_resized: bool = False) -> None:
    """Refuse an option that acts on nothing this call scores (it was accepted and recorded in
    results.json as if it had shaped the numbers). ``lists_resized``: ``--resize`` admits
    OpenOOD's ID lists of another shape than the classifier's
    (:func:`~robustrep.tasks.ood.openood.check_openood_shape`)."""
    if feature_maps != "spatial" and not any(s.consumes == "maps" for s in specs):
        raise ConfigError(f"--feature-maps {feature_maps} shapes what the feature-map detectors "
                          f"(ReAct, ASH, SCALE, RankFeat, VRA) see, and --detectors "
                          f"{', '.join(s.name for s in specs)} has none; drop it")
    if resize and not lists_resized and not any(spec.split(":")[0] in LOCAL for spec in sets):
        raise ConfigError(f"--resize acts on the {', '.join(LOCAL)} sets and on OpenOOD's "
                          f"ID lists of another shape than the classifier's (other folders and "
                          f"lists are always resized), and none is read here; drop it")


def check_data_root(data_root: str | None, run: str | Path | None,
                    foreign: dict[str, Any] | None, sets: Sequence[str | None]) -> None:
    """Refuse ``--data-root`` where nothing reads it, before the model loads: a run of the
    built-in digits (or ``--model`` with ``--dataset digits``) whose ``sets`` (``--id``,
    ``--fit-data``, ``--ood``) name no cifar10, cifar100 or svhn without its own ``:ROOT``, the
    other sets read under it. It was taken and ignored without a word."""
    from robustrep.tasks.common.dataroot import check_data_root as check_read
    from robustrep.tasks.common.options import MODEL_DATASETS
    if any(s.strip().lower() in LOCAL for s in sets if isinstance(s, str)):
        return  # e.g. --ood cifar10 of a digits run: read from --data-root
    check_read(data_root, run, foreign["dataset"] if foreign is not None else None,
               also=f"--id, --fit-data or --ood {', '.join(LOCAL)} without :ROOT",
               model_choices=MODEL_DATASETS)


def check_maps(specs: Sequence[DetectorSpec], feature_maps: str, model: OODModel,
               shape: Sequence[int], who: str | None = None) -> None:
    """Refuse feature-map detectors (ReAct, ASH, SCALE, ...) on spatial maps of a model whose
    trunk gives none (a ViT's tokens), from two blank images of ``shape``, before any data is
    read: it was found in the first extraction (in ood bench, once the run was trained).
    ``who``: what the refusal names first (default: the detectors)."""
    names = [s.name for s in specs if s.consumes == "maps"]
    if feature_maps != "spatial" or not names:
        return
    check_map_shape(model.trunk_shape(shape), who or f"--detectors {', '.join(names)}")


def check_last_layer(specs: Sequence[DetectorSpec], model: OODModel,
                     who: str | None = None) -> None:
    """Refuse the detectors that read the classifier's last layer as a linear map (ViM's and
    DICE's ``W`` and ``b``, NCI's and fDBD's ``head.weight``) when it is none (a UoS head's
    ``|W z| / ||z||``, a distilled model's averaged heads), before any data is read: it was
    found once every feature was extracted, a failed row of an exit-0 call. ``who``: what the
    refusal names first (default: the detectors)."""
    from robustrep.tasks.ood.detectors import linear_map, reads_linear_head
    names = [s.name for s in specs if reads_linear_head(s)]
    if not names or linear_map(model.classifier) is not None:
        return
    layer = getattr(model.classifier, "kind", type(model.classifier).__name__)
    listed = ", ".join(names)
    also = " (UoS scores a UoS head)" if layer == "UoSHead" else ""
    raise ConfigError(f"{who or f'--detectors {listed}'}: {listed} read{'s' * (len(names) == 1)}"
                      f" the classifier's last layer as a linear map (logits = W z + b, its "
                      f"weight W and bias b), but this classifier's last layer is {layer}, "
                      f"which is not one: the scores would mean something else; drop {listed} "
                      f"from --detectors{also}")


def covariance_note(specs: Sequence[DetectorSpec], features: torch.Tensor | None,
                    labels: torch.Tensor) -> str | None:
    """A note when Mahalanobis or RMD is fitted on too few images for its covariance: ``N``
    fit images of ``C`` classes give a shared class covariance of rank at most ``N - C``, short
    of the feature size ``D``. pytorch-ood 0.4 adds a 1e-6 ridge and inverts it, which works,
    but the ``D - (N - C)`` directions the fit images do not span then weigh a million times
    more in the distances than the ones they do."""
    names = [s.name for s in specs if s.name in ("Mahalanobis", "RMD")]
    if not names or features is None:
        return None
    known = labels >= 0
    size, dim = int(known.sum()), features.shape[1]
    classes = len(labels[known].unique())
    if size - classes >= dim:
        return None
    return (f"{' and '.join(names)} fitted on {size:,} images of {classes} classes: the shared "
            f"class covariance has rank at most {size - classes:,} (images - classes), below the "
            f"{dim}-d features, and pytorch-ood's small ridge makes the directions the fit "
            f"images do not span dominate the distances; fit on at least {dim + classes:,} "
            f"images (--fit-data, --max-fit) for a full-rank covariance")


def check_fit_options(specs: Sequence[DetectorSpec], fitted: Collection[str],
                      fit_data: str | None, max_fit: int | None) -> None:
    """Refuse ``--fit-data`` and ``--max-fit`` when none of the detectors ``specs`` is fitted
    (``fitted``: the names of those that are), before the model is loaded: they were accepted
    in silence and results.json recorded ``fit_data`` null."""
    if fitted:
        return
    names = ", ".join(s.name for s in specs)
    react = " (ReAct is not, given its threshold)" if "ReAct" in names.split(", ") else ""
    for flag, value, acts in (("--fit-data", fit_data, "names the data"),
                              ("--max-fit", max_fit, "caps the ID train images")):
        if value is not None:
            raise ConfigError(f"{flag} {value} {acts} the fitted detectors are fitted on, and "
                              f"none of --detectors {names} is fitted{react} (ood score --list "
                              f"says which are); drop it")


def check_openood_id(openood: str | None, openood_id: str | None) -> None:
    """Refuse ``--openood-id`` without ``--openood``, before the model is loaded: it was
    accepted in silence and the built-in sets were scored, not OpenOOD's."""
    if openood_id is not None and openood is None:
        raise ConfigError(f"--openood-id {openood_id} names the ID dataset of the OpenOOD "
                          f"benchmark and acts only with --openood DATA_DIR (OpenOOD's data "
                          f"folder); add it, or drop --openood-id")


def _listed(classes: Sequence[int]) -> str:
    return ", ".join(map(str, classes))


def check_head(ctx: ds.DataContext, whole: Dataset, outputs: int, id_name: str,
               foreign: dict[str, Any] | None) -> None:
    """Refuse ID classes that do not match the classifier's ``outputs``: the run's or
    ``--classes``, else every label of the whole ID test set ``whole`` (before
    ``--max-samples`` draws from it, which may miss one).

    A class at or above ``outputs`` has no output: the accuracy is not measurable and the
    class-conditional detectors fit classes the head does not have. Declared classes whose
    highest is below the top output are refused too: classify train sizes a head to the highest
    trained label + 1 (labels are kept: classes [5, 6] get 7 outputs, so gaps below are how a
    class subset looks), so such a head was trained on classes the declaration leaves out; the
    fit data, restricted to the declared classes, would lack them, and the per-class detectors
    would flag their images as OOD. ID data (no classes declared) holding fewer classes than the
    head is accepted: a held-out set of some classes is a smaller ID test, and the fit data is
    checked against every output (:func:`check_fit_classes`)."""
    from robustrep.data import labels
    declared = ctx.classes is not None
    classes = (sorted({int(c) for c in ctx.classes}) if declared else
               sorted(c for c in labels(whole).unique().tolist() if c >= 0))
    source = (f"--classes {' '.join(map(str, classes))}" if foreign and declared else
              f"the run's classes ({_listed(classes)})" if declared else f"the ID data {id_name}")
    fix = ("name the classes it was trained on with --classes, or give --id data of those "
           "classes" if foreign else "give --id data of the classes the run was trained on")
    outside = [c for c in classes if c >= outputs]
    if outside:
        raise ConfigError(f"{source} holds classes {_listed(classes)} but the classifier has "
                          f"{outputs} outputs (classes 0-{outputs - 1}): classes "
                          f"{_listed(outside)} have none; {fix}")
    if declared and classes and classes[-1] + 1 < outputs:
        top = classes[-1] + 1
        which = f"output {top}" if top == outputs - 1 else f"outputs {top}-{outputs - 1}"
        raise ConfigError(f"{source} leaves the classifier's {which} without ID data ({outputs} "
                          f"outputs): it was trained on more classes; {fix}")


def check_fit_classes(specs: Sequence[DetectorSpec], id_classes: list[int], fit_set: Dataset,
                      outputs: int, source: str, max_fit: int | None) -> None:
    """Refuse fit data that lacks an ID class, for the detectors that fit one model per class
    (:data:`~robustrep.tasks.ood.detectors.PER_CLASS`): pytorch-ood 0.4 fitted them anyway
    (Mahalanobis only asserts that the labels it is given skip none) and flagged that class's
    ID images as OOD. Labels above the head's outputs are refused for every fitted detector."""
    from robustrep.data import labels
    found = sorted(c for c in labels(fit_set).unique().tolist() if c >= 0)
    if found and found[-1] >= outputs:
        raise ConfigError(f"{source} holds classes {_listed(found)} but the "
                          f"classifier has {outputs} outputs (classes 0-{outputs - 1}); give fit "
                          f"data of the classes it was trained on")
    per_class = [s.name for s in specs if s.name in PER_CLASS]
    missing = [c for c in id_classes if c not in set(found)]
    fits = f"{', '.join(per_class)} fit{'s' * (len(per_class) == 1)} one model per class"
    if per_class and missing and flat_folder(fit_set):  # its label 0 is no class: it has none
        raise ConfigError(f"{source} is a flat folder (no class subfolders), whose images carry "
                          f"no class labels; {fits}: give a folder of class subfolders")
    zipped = dataset_zip(fit_set)
    if per_class and missing and zipped is not None and len(found) == 1:  # its labels: none
        give = f"{source.partition(':')[0]}:OUT.zip"  # the spec NAME:ROOT, OUT.zip its root
        raise ConfigError(f"{source} holds one label ({found[0]}); {fits}: "
                          f"{zip_labels_advice(zipped, found[0], None, give)}")
    if per_class and missing:
        more = f", or raise --max-fit {max_fit}" if max_fit is not None else ""
        plural = "es" * (len(missing) > 1)
        raise ConfigError(f"{source} holds no image of ID class{plural} {_listed(missing)} (it "
                          f"holds {_listed(found) or 'none'}): "
                          f"{fits} and would flag that class's ID images as OOD; give fit data "
                          f"of every ID class ({_listed(id_classes)}){more}")


def unlabelled(dataset: Dataset) -> str | None:
    """What ``dataset`` is when its images carry no class labels (each read as 0): a flat image
    folder, or a dataset zip without ``dataset.json`` labels (a zip of class folders included:
    stylegan2-ada reads no labels from its folders, ``data pack`` writes them); else None. Such
    a zip scored "ID test accuracy 0.00%" where its folder gave 33.33%."""
    if flat_folder(dataset):
        return "a flat folder (no class subfolders)"
    zipped = dataset_zip(dataset)
    if zipped is not None and not zipped.has_labels:
        return (f"a dataset zip without {LABELS_FILE} labels (robustrep data pack writes them "
                f"from a folder's class subfolders)")
    return None


def flat_folder(dataset: Dataset) -> bool:
    """Whether ``dataset`` (or the set it is a subset of, the run's classes or a drawn sample)
    is a flat image folder, which labels every image 0: its images carry no class labels."""
    from robustrep.data.folders import FlatImageFolder
    return isinstance(innermost(dataset), FlatImageFolder)


def optimistic_data(id_name: str, fit_data: str | None, run_config: dict[str, Any]
                     ) -> list[str]:
    """Notes when the ID test images are ones the classifier (its run's ``run_config``) or the
    detectors have already seen: an image folder without ``val/``/``test/`` is one set, read
    whole for every role."""
    if not id_name.startswith("imagefolder:") or has_train_split(id_name):
        return []
    folder, notes = Path(id_name[len("imagefolder:"):]).expanduser(), []
    trained = run_config.get("data_root")
    if run_config.get("dataset") in ("imagefolder", "zip") and trained and \
            folder.absolute() == Path(trained).expanduser().absolute():
        notes.append(f"the ID test set is all of {folder}, the data the classifier was "
                     f"trained on (one set: no val/ or test/), its training images included: "
                     f"the ID scores are optimistic; give --id a folder of held-out images")
    if fit_data == id_name:
        notes.append(f"--fit-data is the ID test set itself ({id_name}): the fitted detectors "
                     f"are scored on the images they were fitted on, an optimistic measure; "
                     f"fit them on other images of the same classes")
    return notes
