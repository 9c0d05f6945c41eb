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

This module fits and scores the detectors (:func:`score_model`) and runs the command
(:func:`score_run`); which sets a call reads, and its fit set, are chosen by
:mod:`robustrep.tasks.ood.score_sets`, and the checks made before any data is read, stage by
stage, are :mod:`robustrep.tasks.ood.score_checks`'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from robustrep.tasks.common.classifier_run import scored_ema
from robustrep.tasks.common.errors import RunFolderError, UserError
from robustrep.tasks.common.progress import progress
from robustrep.tasks.common.runtime import resolve_device
from robustrep.tasks.ood import datasets as ds
from robustrep.tasks.ood.checks import (check_head, check_not_constant, covariance_note,
                                        unlabelled)
from robustrep.tasks.ood.detector_params import check_feature_params, check_fit_counts, parse_params
from robustrep.tasks.ood.detectors import (DetectorSpec, amp_note, build_detector, fit_detector,
                                           fits_on, parse_detectors, score_extracted,
                                           score_images)
from robustrep.tasks.ood.extract import Extracted, OODModel, as_ood_model, extract, make_loader
from robustrep.tasks.ood.outputs import write_merged
from robustrep.tasks.ood.results import DetectorResult, ScoreResult, compute_metrics
from robustrep.tasks.ood.score_checks import (check_model, check_options, check_params,
                                              check_sets, output_folder)
from robustrep.tasks.ood.score_sets import (Sets, choose_fit_set, choose_sets, fitted_detectors,
                                            left_out_notes)


def _needs(specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]] | None = None
           ) -> tuple[list[str], list[str]]:
    """Representations to extract for the evaluation sets and for the ID train set."""
    eval_what = ["logits", "features"]
    if any(s.consumes == "maps" for s in specs):
        eval_what.append("maps")
    fit_what = sorted({f for f in fitted_detectors(specs, params).values()
                       if f in ("logits", "features", "maps")})
    return eval_what, fit_what


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
    fitted = fitted_detectors(specs, params)
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
    ood = check_options(specs, overrides, run, foreign, ood, [id_data, fit_data], data_root,
                        max_fit, openood, openood_id)
    dev = resolve_device(device)
    run = Path(run) if run is not None else None
    out_dir = output_folder(run, out, foreign)
    classifier, config, notes = _load_classifier(run, foreign, dev, use_ema)
    ctx = ds.DataContext(shape=(int(config["channels"]), int(config["image_size"]),
                                int(config["image_size"])), classes=config.get("classes"),
                         data_root=data_root or config.get("data_root"), resize=resize, seed=seed)
    outputs = int(config["num_classes"])
    notes += check_params(overrides, ctx.shape[0], outputs)
    sets = choose_sets(config, ood, id_data, fit_data, openood, openood_id, data_root)
    check_sets(specs, sets, config, ctx, foreign is not None, openood_id, feature_maps,
               resize)
    model = as_ood_model(classifier, feature_maps).to(dev).eval()
    feature_dim = check_model(specs, overrides, model, ctx.shape, feature_maps, max_fit)
    with ds.in_memory(ctx.shape[-1], foreign is not None):
        whole = ds.whole_id_dataset(sets.id_name, ctx, train=False)
        check_head(ctx, whole, outputs, sets.id_name, foreign)
        id_test = ds.id_subset(whole, ctx, False, max_samples)
        fit_set = choose_fit_set(specs, sets, ctx, outputs, max_fit, overrides, feature_dim)
        ood_sets = {name: ds.ood_dataset(sets.specs.get(name, name), ctx, limit=max_samples)
                    for name in sets.ood}
    sets.notes += left_out_notes(sets, fit_set is not None)
    result = score_model(model, specs, id_test, ood_sets, fit_set, num_classes=outputs,
                         params=overrides, batch_size=batch_size, device=dev, amp=amp,
                         workers=workers, show_progress=show_progress, feature_dim=feature_dim)
    result.groups = sets.groups
    result.notes = notes + sets.notes + result.notes + _unfinished(run, config)
    why = unlabelled(whole)
    if why is not None:
        result.id_accuracy = None  # was the share of images predicted as class 0
        result.notes.append(f"ID test accuracy n/a: {sets.id_name} is {why}, whose images carry "
                            f"no class labels")
    meta = _record(run, config, sets, specs, overrides, fit_set is not None, feature_maps,
                   resize, seed, openood, amp)
    if foreign is not None and not out:
        from robustrep.tasks.common.output_paths import claim_new_folder
        out_dir = claim_new_folder(out_dir)
    return result, write_merged(result, out_dir, meta, plots=plots, save_scores=save_scores,
                                show_progress=show_progress)


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


def _unfinished(run: Path | None, config: dict[str, Any]) -> list[str]:
    step, steps = config.get("step"), config.get("steps")
    if run is not None and isinstance(step, int) and isinstance(steps, int) and step < steps:
        return [f"{run} is unfinished: these are the scores of its checkpoint at step {step} "
                f"of {steps}"]
    return []


def _record(run: Path | None, config: dict[str, Any], sets: Sets,
            specs: Sequence[DetectorSpec], params: dict[str, dict[str, Any]], fitted: bool,
            feature_maps: str, resize: bool, seed: int, openood: str | None,
            amp: str) -> dict[str, Any]:
    """What results.json says of the call beside its rows."""
    # resolved: a relative RUN named another run from another working folder (check_same_run)
    return {"run": None if run is None else str(run.resolve()), "model": config.get("model"),
            "weights": config.get("weights"), "step": config.get("step"),
            "steps": config.get("steps"), "id": sets.id_name,
            "image_size": config.get("image_size"),  # a --model's option, a run's own
            "fit_data": (sets.fit_data or sets.id_name) if fitted else None,
            "ood": sets.ood, "detectors": [s.name for s in specs], "params": params,
            "feature_maps": feature_maps, "resize": resize, "seed": seed,
            "amp": amp,  # bf16/fp16 features score otherwise than float32 ones
            # what was scored, not what was asked: a run's EMA, or a checkpoint file's
            "ema": scored_ema(config),
            # the inputs' normalisation, and where each came from (norm_source: the user's, the
            # weights file's, the run's, timm's default for --model); older files lack them
            "mean": config.get("mean"), "std": config.get("std"),
            "norm_source": config.get("norm_source"),
            "openood": openood, "ood_specs": sets.specs or None, "groups": sets.groups or None,
            "convention": "higher score = more OOD; AUROC/AUPR as pytorch-ood and OpenOOD v1.5"}
