"""``robustrep ood score``: score a trained classifier with pytorch-ood detectors.

Steps, for a run folder written by ``robustrep classify train``:

1. load the classifier (:func:`robustrep.tasks.common.classifier_run.load_run`);
2. build the ID train set (for fitting), the ID test set and each OOD set in the classifier's shape
   (:mod:`robustrep.tasks.ood.datasets`);
3. extract logits and pooled features (and the spatial maps only when a feature-map detector is
   asked for) once per dataset, streaming (:mod:`robustrep.tasks.ood.extract`);
4. fit each detector on the ID train representation it reads, score the ID test set and every OOD
   set (gradient and sampling detectors run on image batches);
5. AUROC, AUPR-IN, AUPR-OUT and FPR@95 under both conventions per detector and OOD set
   (:func:`robustrep.metrics.ood.ood_metrics`; higher score = more OOD), written as a table, JSON,
   CSV, ROC curves and score histograms. ``fpr95_id_tpr`` is the share of OOD samples accepted
   when 95% of ID samples are (Hendrycks & Gimpel, ODIN, Outlier Exposure, OpenOOD v1.0);
   ``fpr95_ood_tpr`` the share of ID samples flagged when 95% of OOD samples are (pytorch-ood,
   OpenOOD v1.5's ``auc_and_fpr_recall``). Lower is better for both.

With ``openood=DATA_DIR`` the sets are those of the OpenOOD v1.5 benchmark (Zhang et al.,
"OpenOOD v1.5: Enhanced Benchmark for Out-of-Distribution Detection", 2023) for the run's ID
dataset, read through the ``imagelist:`` loader from OpenOOD's ``benchmark_imglist`` files
(:func:`robustrep.tasks.ood.openood.openood_benchmark`), and each metric is also averaged over
the near-OOD and the far-OOD group, as OpenOOD reports it. Its ID lists of another dataset than
the run's are refused; where the classifier's data is not named (a ``--model``, a run of an
image folder), they take the shape rule of ``--id cifar10`` (``--resize``).

A detector that fails (an argument pytorch-ood or sklearn refuses only in its fit, a bare
assert) is reported with its error and the others still run.

An OOD set holding classes the classifier was trained on (``digits59`` for a run on all ten
digits, the run's own CIFAR/SVHN set) is refused before any data is read
(:func:`robustrep.tasks.ood.set_checks.trained_overlap`), and so is an OOD set that reads the ID
test or fit data; so are feature-map detectors on a model whose trunk gives no maps (a ViT's
tokens) and a GEN ``M`` or OpenMax ``alpha`` above the class count, once the model is loaded.
Before any feature is extracted, ID classes the classifier's head has no output for, fit data
lacking an ID class for the detectors that fit per class, a ViM ``d`` not below the feature size
and a KNN or NNGuide ``k`` above the fit set's size are refused
(:mod:`robustrep.tasks.ood.checks`, :mod:`robustrep.tasks.ood.detector_params`). A second call into
the same output folder (RUN/ood, or the ``--out`` of a run's or a ``--model``'s call) keeps the
first one's rows (:mod:`robustrep.tasks.ood.outputs`): results are keyed by (detector, OOD set),
a pair measured again replaces its row, and both are named on stderr; the pictures of the sets
it measured show the detectors of both calls (from ``scores.pt``, which the plots keep). When
the settings differ (model, weights, ID data, image size, seed, sizes) the earlier rows
cannot share a table: they, their scores and their pictures are replaced, with a note naming
what differs. Another run's results are not replaced: ``--out`` holding them is refused before
any work (:func:`robustrep.tasks.common.eval_records.check_same_run`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from robustrep.split import probe_shape
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import RunFolderError, UserError
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.eval_records import check_own_kind, check_same_run
from robustrep.tasks.common.runtime import resolve_device
from robustrep.tasks.ood import datasets as ds
from robustrep.tasks.ood.checks import (check_data_root, check_fit_classes, check_fit_options,
                                        check_head, check_inert_options, check_last_layer,
                                        check_maps, check_not_constant, check_openood_id,
                                        covariance_note, flat_folder, optimistic_data)
from robustrep.tasks.ood.data_specs import builtin_ood_names, default_id, has_train_split
from robustrep.tasks.ood.detector_params import (check_channel_params, check_class_params,
                                                 check_feature_params, check_fit_counts,
                                                 norm_std_notes, parse_params)
from robustrep.tasks.ood.detectors import (DetectorSpec, amp_note, build_detector, fit_detector,
                                           fits_on, parse_detectors, score_extracted,
                                           score_images)
from robustrep.tasks.ood.extract import Extracted, OODModel, as_ood_model, extract, make_loader
from robustrep.tasks.ood.openood import (OPENOOD_V15, check_openood_shape, list_labels,
                                         openood_benchmark)
from robustrep.tasks.ood.outputs import OUTPUTS, read_earlier, write_merged
from robustrep.tasks.ood.results import (FPR_LEGEND, DetectorResult, ScoreResult,
                                         compute_metrics)
from robustrep.tasks.ood.set_checks import (check_distinct, check_not_id, check_not_trained_on,
                                            suits, unsuited)


def _needs(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]] | None = None
           ) -> tuple[list[str], list[str]]:
    """Representations to extract for the evaluation sets and for the ID train set."""
    eval_what = ["logits", "features"]
    if any(s.consumes == "maps" for s in specs):
        eval_what.append("maps")
    fit_what = sorted({f for f in _fitted(specs, params).values()
                       if f in ("logits", "features", "maps")})
    return eval_what, fit_what


def _fitted(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]] | None
            ) -> dict[str, str]:
    """The detectors fitted on ID train data, by name, with what their fit reads; not ReAct
    given its threshold (:func:`~robustrep.tasks.ood.detectors.fits_on`)."""
    fits = {s.name: fits_on(s, (params or {}).get(s.name)) for s in specs}
    return {name: what for name, what in fits.items() if what is not None}


def score_model(model: OODModel, specs: Sequence[DetectorSpec], id_test: Dataset,
                ood_sets: dict[str, Dataset], fit_set: Dataset | None = None, *,
                num_classes: int, params: dict[str, dict[str, Any]] | None = None,
                batch_size: int = 256, device: torch.device | str = "cpu", amp: str = "off",
                workers: int | None = None, show_progress: bool = False,
                feature_dim: int | None = None) -> ScoreResult:
    """Fit and score every detector in ``specs``; returns scores and metrics per OOD set.

    Args:
        model: the classifier, on ``device``, in eval mode.
        specs: detectors (:func:`robustrep.tasks.ood.detectors.parse_detectors`).
        id_test: in-distribution evaluation images.
        ood_sets: name -> OOD images.
        fit_set: in-distribution training images, for the detectors that need fitting.
        num_classes: the classifier's outputs.
        params: detector name -> constructor overrides.
        feature_dim: the feature size ``D``, when the caller has checked ViM's ``d`` and fit
            count against it (:func:`score_run`); else read from one image and checked here.
    """
    device = torch.device(device)
    model.eval()
    eval_what, fit_what = _needs(specs, params)
    fitted = _fitted(specs, params)
    if fitted and fit_set is None:
        names = ", ".join(fitted)
        raise ValueError(f"detectors {names} need in-distribution training data to fit on; "
                         f"give --fit-data")
    vim = any(s.name == "ViM" for s in specs)
    needs_dim = vim or (params or {}).get("ViM", {}).get("d") is not None
    if needs_dim and feature_dim is None:  # D bounds d: before extraction
        feature_dim = _feature_dim(model, id_test, device)
        check_feature_params(params, feature_dim)
        if vim and fit_set is not None:  # and the fit set's size
            check_fit_counts(specs, params, len(fit_set), f"{len(fit_set):,} (the fit set)",
                             feature_dim=feature_dim)
    opts = dict(batch_size=batch_size, device=device, amp=amp, workers=workers,
                show_progress=show_progress)
    start = time.perf_counter()
    train, rank_note = None, None
    if fit_what:
        train = extract(model, fit_set, fit_what, desc="extract ID train", **opts)
        # pytorch-ood fits KNN and NNGuide on the ID-labelled images alone: before the others
        # are extracted (score_run checks the fit set's size before any extraction)
        known = int((train.labels >= 0).sum())
        check_fit_counts(specs, params, known, f"{known:,} (the fit images with an ID label; "
                                               f"pytorch-ood leaves out those labelled OOD)")
        rank_note = covariance_note(specs, train.features, train.labels)
    id_data = extract(model, id_test, eval_what, desc="extract ID test", **opts)
    ood_data = {name: extract(model, ds, eval_what, desc=f"extract {name}", **opts)
                for name, ds in ood_sets.items()}
    extract_seconds = time.perf_counter() - start
    feature_dim = id_data.features.shape[1]
    accuracy = None
    if (id_data.labels >= 0).all() and id_data.logits.shape[1] > int(id_data.labels.max()):
        accuracy = float((id_data.logits.argmax(1) == id_data.labels).double().mean())

    loaders = {"__id__": id_test, **ood_sets}
    results: dict[str, DetectorResult] = {}
    for spec in specs:
        results[spec.name] = _run_detector(
            spec, model, num_classes, feature_dim, (params or {}).get(spec.name, {}), train,
            fit_set, id_data, ood_data, loaders, batch_size, workers, device, amp,
            show_progress)
    sizes = {"id_test": len(id_test), **{k: len(v) for k, v in ood_sets.items()}}
    if fit_set is not None:
        sizes["id_train"] = len(fit_set)
    notes = [n for n in (amp_note(specs, amp),  # gradient detectors under fp16: float32
                         rank_note) if n]
    return ScoreResult(results, list(ood_sets), accuracy, sizes, extract_seconds,
                       notes=notes,
                       info={"feature_dim": feature_dim, "extracted": eval_what,
                             "fit_extracted": fit_what,
                             "extracted_mib": round(sum(e.nbytes() for e in
                                                        [id_data, *ood_data.values()]
                                                        + ([train] if train else [])) / 2**20, 2)})


def _feature_dim(model: OODModel, dataset: Dataset, device: torch.device) -> int:
    """The feature size ``D``, from one image (the head may not be a linear layer to read it
    from)."""
    with torch.no_grad():
        return int(model.features(dataset[0][0][None].to(device)).shape[1])



def _run_detector(spec, model, num_classes, feature_dim, params, train: Extracted | None,
                  fit_set, id_data: Extracted, ood_data: dict[str, Extracted], loaders,
                  batch_size, workers, device, amp: str = "off",
                  show_progress: bool = False) -> DetectorResult:
    result = DetectorResult(spec.name)
    try:
        detector = build_detector(spec, model, num_classes, feature_dim, params, device, amp)
        t0 = time.perf_counter()
        fit_loader = make_loader(fit_set, batch_size, workers, device) if (
            fits_on(spec, params) == "images") else None
        fit_detector(detector, spec, train, fit_loader, params)
        t1 = time.perf_counter()
        images = spec.consumes == "images" or getattr(detector, "scores_images", False)
        # image detectors pass over every set again, several times slower than the extraction
        # (ODIN: forward, backward, forward): a bar with an estimate, as the extraction has
        batches = sum(-(-len(d) // batch_size) for d in loaders.values()) if images else 0
        with progress(batches, desc=f"score {spec.name}",
                      enabled=show_progress and images) as bar:
            def run(key, data):
                if images:
                    return score_images(detector, make_loader(loaders[key], batch_size,
                                                              workers, device), device, bar)
                return score_extracted(detector, spec, data)
            result.id_scores = run("__id__", id_data)
            for name, data in ood_data.items():
                result.ood_scores[name] = run(name, data)
        check_not_constant(spec.name, [result.id_scores, *result.ood_scores.values()])
        result.fit_seconds, result.score_seconds = t1 - t0, time.perf_counter() - t1
        for name, scores in result.ood_scores.items():
            result.metrics[name], result.roc[name] = compute_metrics(result.id_scores, scores)
    except AssertionError as err:
        # pytorch-ood checks its inputs with bare asserts (e.g. Mahalanobis wants the labels it
        # is given to be 0..max with none skipped: a class missing above them passes, which
        # score_run refuses before fitting); say which labels it was given.
        labels = sorted(set(train.labels.tolist())) if train is not None else None
        result.error = (f"AssertionError in pytorch-ood's {spec.name}: "
                        f"{err or 'an input check failed'} (ID train labels: {labels})")
    except Exception as err:  # one failing detector must not hide the others' results
        result.error = f"{type(err).__name__}: {err}"
    return result


def score_run(run: str | Path, *, detectors: str, ood: list[str] | None = None,
              id_data: str | None = None, fit_data: str | None = None,
              data_root: str | None = None, resize: bool = False, params: list[str] = (),
              feature_maps: str = "spatial", max_samples: int | None = None,
              max_fit: int | None = None, out: str | Path | None = None,
              batch_size: int = 256, device: str = "auto", amp: str = "off",
              workers: int | None = None, seed: int = 0, use_ema: bool = True,
              plots: bool = True, save_scores: bool = False,
              show_progress: bool = False, openood: str | None = None,
              openood_id: str | None = None,
              foreign: dict[str, Any] | None = None) -> tuple[Any, dict[str, Path]]:
    """The whole ``ood score`` command as a function: returns ``(ScoreResult, files written)``.

    ``openood``: OpenOOD's data folder (holding ``benchmark_imglist/``); the ID test and train
    sets and the near/far OOD sets of ``openood_id`` (default: the run's dataset) come from its
    image lists unless ``id_data``/``fit_data``/``ood`` name others. ``foreign`` (``run`` None):
    a model no run made (:func:`robustrep.tasks.common.weights.model_options`); the outputs go to
    ``out`` (merged with an earlier ``ood score``'s there, as a run's are in RUN/ood) or to a new
    folder.
    """
    specs = parse_detectors(detectors)
    overrides = parse_params(params, specs)
    ood = _check_options(specs, overrides, run, foreign, ood, [id_data, fit_data], data_root,
                         max_fit, openood, openood_id)
    dev = resolve_device(device)
    run = Path(run) if run is not None else None
    out_dir = _output_folder(run, out, foreign)
    classifier, config, notes = _load_classifier(run, foreign, dev, use_ema)
    ctx = ds.DataContext(shape=(int(config["channels"]), int(config["image_size"]),
                                int(config["image_size"])), classes=config.get("classes"),
                         data_root=data_root or config.get("data_root"), resize=resize, seed=seed)
    outputs = int(config["num_classes"])
    notes += _check_params(overrides, ctx.shape[0], outputs)
    sets = _choose_sets(config, ood, id_data, fit_data, openood, openood_id, data_root)
    _check_sets(specs, sets, config, ctx, foreign is not None, openood_id, feature_maps,
                resize)
    model = as_ood_model(classifier, feature_maps).to(dev).eval()
    feature_dim = _check_model(specs, overrides, model, ctx.shape, feature_maps, max_fit)
    with ds.in_memory(ctx.shape[-1], foreign is not None):
        whole = ds.whole_id_dataset(sets.id_name, ctx, train=False)
        check_head(ctx, whole, outputs, sets.id_name, foreign)
        id_test = ds.id_subset(whole, ctx, False, max_samples)
        fit_set = _fit_set(specs, sets, ctx, outputs, max_fit, overrides, feature_dim)
        ood_sets = {name: ds.ood_dataset(sets.specs.get(name, name), ctx, limit=max_samples)
                    for name in sets.ood}
    result = score_model(model, specs, id_test, ood_sets, fit_set, num_classes=outputs,
                         params=overrides, batch_size=batch_size, device=dev, amp=amp,
                         workers=workers, show_progress=show_progress, feature_dim=feature_dim)
    result.groups = sets.groups
    result.notes = notes + sets.notes + result.notes + _unfinished(run, config)
    if flat_folder(whole):
        result.id_accuracy = None  # was the share of images predicted as class 0
        result.notes.append(f"ID test accuracy n/a: {sets.id_name} is a flat folder (no class "
                            f"subfolders), whose images carry no class labels")
    meta = _record(run, config, sets, specs, overrides, fit_set is not None, feature_maps,
                   resize, seed, openood)
    if foreign is not None and not out:
        from robustrep.tasks.common.output_paths import claim_new_folder
        out_dir = claim_new_folder(out_dir)
    return result, write_merged(result, out_dir, meta, plots=plots, save_scores=save_scores)


def _check_options(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]],
                   run: str | Path | None, foreign: dict[str, Any] | None,
                   ood: list[str] | None, named: list[str | None], data_root: str | None,
                   max_fit: int | None, openood: str | None,
                   openood_id: str | None) -> list[str] | None:
    """What the options alone decide, before the model is loaded; the OOD sets, each once."""
    check_openood_id(openood, openood_id)
    check_data_root(data_root, run, foreign, [*named, *(ood or [])])
    check_fit_options(specs, _fitted(specs, params), named[1], max_fit)
    if max_fit is not None:  # the most the fit set can hold
        check_fit_counts(specs, params, max_fit, f"at most {max_fit:,} (--max-fit {max_fit})",
                         "raise --max-fit")
    if ood is None:  # a set twice would be scored once, or its cells counted twice
        return None
    from robustrep.tasks.common.options import unique
    return list(unique(ood, "--ood", "OOD set"))


def _check_params(params: dict[str, dict[str, Any]], channels: int, outputs: int) -> list[str]:
    """The detector parameters that depend on the classifier's input channels (ODIN's
    ``norm_std``) and outputs (GEN's ``M``), before any data is read; the notes to say."""
    check_channel_params(params, channels)
    check_class_params(params, outputs, f"this classifier's {outputs} outputs")
    return norm_std_notes(params, channels)  # accepted, and said once


def _check_sets(specs: Sequence[DetectorSpec], sets: _Sets, config: dict[str, Any],
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


def _check_model(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]],
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


def _output_folder(run: Path | None, out: str | Path | None,
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
    check_own_kind(out_dir, "results.json", "--out" if out else "output folder", "ood score",
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


def _load_classifier(run: Path | None, foreign: dict[str, Any] | None, dev: torch.device,
                     use_ema: bool) -> tuple[Any, dict[str, Any], list[str]]:
    """The classifier, its config, and the notes said with the results: a run's, or a model no
    run made (``foreign``)."""
    # imports timm: only when a model is read
    from robustrep.tasks.common.classifier_run import load_run
    from robustrep.tasks.common.foreign_model import (default_norm_note, load_model,
                                                      run_checkpoint_note)
    if foreign is None:
        from robustrep.tasks.common.options import no_ema_note
        try:
            classifier, config = load_run(run, dev, use_ema=use_ema)
        except ValueError as err:  # the library's: not a classifier run, a timm name it lacks
            raise RunFolderError(str(err)) from err
        no_ema_note(run, use_ema, bool(config.get("ema_decay")))  # EMA on: the checkpoint has it
        return classifier, config, []
    data = {k: foreign[k] for k in ("dataset", "classes", "image_size")}
    try:
        classifier, config = load_model(**{k: v for k, v in foreign.items() if k not in data},
                                        image_size=foreign["image_size"], device=dev,
                                        use_ema=use_ema)
    except ValueError as err:  # the library's: weights that do not fit --model, no class count
        raise UserError(str(err)) from err
    # a run's checkpoint scored on other data than it trained on (was: without a word)
    run_config = config.pop("checkpoint_config")
    note = run_checkpoint_note(foreign, run_config, "ood score")
    if note:
        import sys
        print(f"note: {note}", file=sys.stderr)
    norm = default_norm_note(foreign, config, "ood score")  # timm's, where the file has none
    config.update(data)
    return classifier, config, [norm] if norm else []


@dataclass
class _Sets:
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


def _choose_sets(config: dict[str, Any], ood: list[str] | None, id_data: str | None,
                 fit_data: str | None, openood: str | None, openood_id: str | None,
                 data_root: str | None = None) -> _Sets:
    """The sets asked for; without ``--ood``, OpenOOD's benchmark sets or the built-in sets
    that are OOD for this run; without ``--id``, the run's data (under ``--data-root``)."""
    specs: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    bench_id, listed = None, {}
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
    notes: list[str] = []
    if not (specs or ood):
        ood = [n for n in builtin_ood_names() if suits(n, config)]
        notes += [f"left out the OOD set {n}: {unsuited(n, config)}"
                  for n in builtin_ood_names() if n not in ood]
    return _Sets(id_data or default_id(config, data_root), fit_data, list(specs or ood),
                 specs, groups, notes, bench_id, listed)


# The datasets a run's config.json names (classify train's --dataset), each its own data; image
# folders and zips may hold any, ImageNet's too. A --model's --dataset names its data only when
# given: its default, digits, is no declaration.
_RUN_NAMED = ("digits", "cifar10", "cifar100", "svhn", "lsun")
_MODEL_NAMED = ("cifar10", "cifar100", "svhn")


def _check_openood_data(sets: _Sets, config: dict[str, Any], foreign: bool,
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


def _left_out_classes(sets: _Sets, ctx: ds.DataContext, foreign: bool) -> list[str]:
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


def _fit_set(specs: Sequence[DetectorSpec], sets: _Sets, ctx: ds.DataContext, outputs: int,
             max_fit: int | None, params: dict[str, dict[str, Any]] | None = None,
             feature_dim: int | None = None) -> Dataset | None:
    """The ID images the detectors are fitted on (None when none is fitted), checked against
    the classes the classifier knows: those it was trained on, or every output; and their
    number against KNN's ``k`` and ViM's ``d`` (its default half ``feature_dim``)."""
    if not _fitted(specs, params):
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


def _unfinished(run: Path | None, config: dict[str, Any]) -> list[str]:
    step, steps = config.get("step"), config.get("steps")
    if run is not None and isinstance(step, int) and isinstance(steps, int) and step < steps:
        return [f"{run} is unfinished: these are the scores of its checkpoint at step {step} "
                f"of {steps}"]
    return []


def _record(run: Path | None, config: dict[str, Any], sets: _Sets,
            specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]], fitted: bool,
            feature_maps: str, resize: bool, seed: int, openood: str | None) -> dict[str, Any]:
    """What results.json says of the call beside its rows."""
    # resolved: a relative RUN named another run from another working folder (check_same_run)
    return {"run": None if run is None else str(run.resolve()), "model": config.get("model"),
            "weights": config.get("weights"), "step": config.get("step"),
            "steps": config.get("steps"), "id": sets.id_name,
            "image_size": config.get("image_size"),  # a --model's option, a run's own
            "fit_data": (sets.fit_data or sets.id_name) if fitted else None,
            "ood": sets.ood, "detectors": [s.name for s in specs], "params": params,
            "feature_maps": feature_maps, "resize": resize, "seed": seed,
            # what was scored, not what was asked: a run's EMA, or a checkpoint file's
            "ema": config.get("weights") == "ema" or bool(config.get("ema")),
            # the inputs' normalisation, and where each came from (norm_source: the user's, the
            # weights file's, the run's, timm's default for --model); older files lack them
            "mean": config.get("mean"), "std": config.get("std"),
            "norm_source": config.get("norm_source"),
            "openood": openood, "ood_specs": sets.specs or None, "groups": sets.groups or None,
            "convention": "higher score = more OOD; AUROC/AUPR as pytorch-ood and OpenOOD v1.5",
            "fpr_conventions": FPR_LEGEND}
