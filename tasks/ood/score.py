"""``robustrep ood score``: score a trained classifier with pytorch-ood detectors.

Steps, for a run folder written by ``robustrep classify train``:

1. load the classifier (:func:`robustrep.tasks.common.classifier.load_run`);
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
(:func:`robustrep.tasks.ood.datasets.openood_benchmark`), and each metric is also averaged over
the near-OOD and the far-OOD group, as OpenOOD reports it.

A detector that fails (for example KNN with ``k`` above the number of ID train samples) is
reported with its error and the others still run.

An OOD set holding classes the classifier was trained on (``digits59`` for a run on all ten
digits, the run's own CIFAR/SVHN set) is refused before any data is read
(:func:`robustrep.tasks.ood.datasets.trained_overlap`), and so is an OOD set that reads the ID
test or fit data. Before any feature is extracted, ID classes the classifier's head has no
output for (:func:`check_head`), fit data lacking an ID class for the detectors that fit per
class (:func:`check_fit_classes`) and a ViM ``d`` not below the feature size are refused. A
second call into the same output folder
keeps the first one's rows: results are keyed by (detector, OOD set), a pair measured again
replaces its row, and both are named on stderr; the pictures of the sets it measured show the
detectors of both calls (from ``scores.pt``, which the plots keep). When the settings differ (ID
data, seed, sizes, weights) the earlier rows cannot share a table: they, their scores and their
pictures are replaced, with a note.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from robustrep.tasks.common.runtime import resolve_device
from robustrep.tasks.common.runfiles import write_csv, write_text_atomic
from robustrep.tasks.ood import datasets as ds
from robustrep.tasks.ood.detectors import (PER_CLASS, DetectorSpec, build_detector,
                                           check_feature_params, fit_detector, parse_detectors,
                                           parse_params, score_extracted, score_images)
from robustrep.tasks.ood.extract import Extracted, OODModel, as_ood_model, extract, make_loader

METRICS = ("AUROC", "AUPR-IN", "AUPR-OUT", "fpr95_id_tpr", "fpr95_ood_tpr")
FPR_LEGEND = ("Scores: higher = more OOD. AUROC and AUPR-OUT take OOD as the positive class, "
              "AUPR-IN takes ID (percent, higher is better). "
              "fpr95_id_tpr: share of OOD samples accepted at the threshold accepting 95% of ID "
              "samples (Hendrycks & Gimpel, ODIN, OpenOOD v1.0); fpr95_ood_tpr: share of ID "
              "samples flagged at the threshold flagging 95% of OOD samples (pytorch-ood, OpenOOD "
              "v1.5). Lower is better.")


@dataclass
class DetectorResult:
    """Scores of one detector: the ID test set and each OOD set (float64 CPU tensors)."""

    name: str
    id_scores: torch.Tensor | None = None
    ood_scores: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    roc: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    error: str | None = None
    fit_seconds: float = 0.0
    score_seconds: float = 0.0


@dataclass
class ScoreResult:
    detectors: dict[str, DetectorResult]
    ood_names: list[str]
    id_accuracy: float | None
    sizes: dict[str, int]
    extract_seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # e.g. near/far -> OOD set names
    # rows of earlier calls in the same output folder (results.json), and what to tell the user
    previous: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One row per detector and OOD set: detector, ood, the metrics (NaN on failure); then
        one row per detector and group of OOD sets (``near-OOD (mean)``) with their means."""
        out = []
        for det in self.detectors.values():
            for ood in self.ood_names:
                row = {"detector": det.name, "ood": ood}
                values = det.metrics.get(ood, {})
                row.update({m: values.get(m, math.nan) for m in METRICS})
                row["error"] = det.error or ""
                out.append(row)
            for group, names in self.groups.items():
                row = {"detector": det.name, "ood": group_row_name(group)}
                for m in METRICS:
                    vals = [det.metrics[n][m] for n in names if n in det.metrics]
                    row[m] = sum(vals) / len(vals) if vals and len(vals) == len(names) else math.nan
                row["error"] = det.error or ""
                out.append(row)
        return out

    def merged_rows(self) -> list[dict[str, Any]]:
        """The earlier calls' rows with those measured again replaced in place, then the new
        rows: what results.* hold."""
        new = {(r["detector"], r["ood"]): r for r in self.rows()}
        kept = [new.pop((r["detector"], r["ood"]), r) for r in self.previous]
        return kept + list(new.values())

    def replaced(self) -> list[str]:
        now = {(r["detector"], r["ood"]) for r in self.rows()}
        return [f"{r['detector']}/{r['ood']}" for r in self.previous
                if (r["detector"], r["ood"]) in now]


def group_row_name(group: str) -> str:
    return f"{group}-OOD (mean)"


def compute_metrics(id_scores: torch.Tensor, ood_scores: torch.Tensor
                    ) -> tuple[dict[str, float], tuple[Any, Any]]:
    """The metrics (and the ROC points) of ID vs OOD scores (higher score = more OOD)."""
    from robustrep.metrics.ood import ood_metrics
    scores = torch.cat([id_scores, ood_scores]).double()
    is_ood = torch.cat([torch.zeros(len(id_scores), dtype=torch.bool),
                        torch.ones(len(ood_scores), dtype=torch.bool)])
    if not torch.isfinite(scores).all():
        raise ValueError(f"{int((~torch.isfinite(scores)).sum())} scores are NaN or infinite")
    with warnings.catch_warnings():
        # AUTC (not reported here) warns on constant scores; the others are still defined.
        warnings.filterwarnings("ignore", message="AUTC is undefined")
        out = ood_metrics(scores, is_ood)
    return {m: float(out[m]) for m in METRICS}, (out["roc"]["fpr"], out["roc"]["tpr"])


def _needs(specs: Sequence[DetectorSpec]) -> tuple[list[str], list[str]]:
    """Representations to extract for the evaluation sets and for the ID train set."""
    eval_what = ["logits", "features"]
    if any(s.consumes == "maps" for s in specs):
        eval_what.append("maps")
    fit_what = sorted({s.fit_on for s in specs if s.fit_on in ("logits", "features", "maps")})
    return eval_what, fit_what


def score_model(model: OODModel, specs: Sequence[DetectorSpec], id_test: Dataset,
                ood_sets: dict[str, Dataset], fit_set: Dataset | None = None, *,
                num_classes: int, params: dict[str, dict[str, Any]] | None = None,
                batch_size: int = 256, device: torch.device | str = "cpu", amp: str = "off",
                workers: int = 0, show_progress: bool = False) -> ScoreResult:
    """Fit and score every detector in ``specs``; returns scores and metrics per OOD set.

    Args:
        model: the classifier, on ``device``, in eval mode.
        specs: detectors (:func:`robustrep.tasks.ood.detectors.parse_detectors`).
        id_test: in-distribution evaluation images.
        ood_sets: name -> OOD images.
        fit_set: in-distribution training images, for the detectors that need fitting.
        num_classes: the classifier's outputs.
        params: detector name -> constructor overrides.
    """
    device = torch.device(device)
    model.eval()
    eval_what, fit_what = _needs(specs)
    needs_fit = any(s.fit_on is not None for s in specs)
    if needs_fit and fit_set is None:
        names = ", ".join(s.name for s in specs if s.fit_on is not None)
        raise ValueError(f"detectors {names} need in-distribution training data to fit on; "
                         f"give --fit-data")
    if (params or {}).get("ViM", {}).get("d") is not None:  # bounded by D: before extraction
        check_feature_params(params, _feature_dim(model, id_test, device))
    opts = dict(batch_size=batch_size, device=device, amp=amp, workers=workers,
                show_progress=show_progress)
    start = time.perf_counter()
    train = None
    if fit_what:
        train = extract(model, fit_set, fit_what, desc="extract ID train", **opts)
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
            fit_set, id_data, ood_data, loaders, batch_size, workers, device)
    sizes = {"id_test": len(id_test), **{k: len(v) for k, v in ood_sets.items()}}
    if fit_set is not None:
        sizes["id_train"] = len(fit_set)
    return ScoreResult(results, list(ood_sets), accuracy, sizes, extract_seconds,
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


def _run_detector(spec, model, num_classes, feature_dim, params, train: Extracted | None,
                  fit_set, id_data: Extracted, ood_data: dict[str, Extracted], loaders,
                  batch_size, workers, device) -> DetectorResult:
    result = DetectorResult(spec.name)
    try:
        detector = build_detector(spec, model, num_classes, feature_dim, params, device)
        t0 = time.perf_counter()
        fit_loader = make_loader(fit_set, batch_size, workers, device) if (
            spec.fit_on == "images") else None
        fit_detector(detector, spec, train, fit_loader)
        t1 = time.perf_counter()
        if spec.consumes == "images" or getattr(detector, "scores_images", False):
            def run(key, _data):
                return score_images(detector, make_loader(loaders[key], batch_size, workers,
                                                          device), device)
        else:
            def run(key, data):
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
              batch_size: int = 256, device: str = "auto", amp: str = "off", workers: int = 0,
              seed: int = 0, use_ema: bool = True, plots: bool = True, save_scores: bool = False,
              show_progress: bool = False, openood: str | None = None,
              openood_id: str | None = None,
              foreign: dict[str, Any] | None = None) -> tuple[Any, dict[str, Path]]:
    """The whole ``ood score`` command as a function: returns ``(ScoreResult, files written)``.

    ``openood``: OpenOOD's data folder (holding ``benchmark_imglist/``); the ID test and train
    sets and the near/far OOD sets of ``openood_id`` (default: the run's dataset) come from its
    image lists unless ``id_data``/``fit_data``/``ood`` name others. ``foreign`` (``run`` None):
    a model no run made (:func:`robustrep.tasks.common.weights.model_options`); the outputs go to
    a new folder.
    """
    # imports timm: only when a model is read
    from robustrep.tasks.common.classifier import load_model, load_run
    from robustrep.tasks.common.options import no_ema_note

    specs = parse_detectors(detectors)
    overrides = parse_params(params, specs)
    if ood is not None:  # a set twice would be scored once, or its cells counted twice
        from robustrep.tasks.common.options import unique
        ood = list(unique(ood, "--ood", "OOD set"))
    dev = resolve_device(device)
    from robustrep.tasks.common.rundir import check_replaceable, check_writable, output_lock
    if foreign is not None:
        from robustrep.tasks.common.weights import default_out
        out = Path(out) if out else default_out(foreign["name"], "ood")
        if (out / "results.json").exists():
            raise ValueError(f"--out {out} already holds results.json; choose a new folder")
    run = Path(run) if run is not None else None
    out_dir = Path(out) if out else run / "ood"
    check_writable(out_dir, "--out")  # before any work
    # an earlier result there is merged with this call's, never a user's results.json replaced
    check_replaceable(out_dir / "results.json", ("detectors", "results"), "ood score",
                      "--out" if out else "output", companions=OUTPUTS)
    _read_earlier(out_dir / "results.json")  # a damaged one is named before any work; read
    # again under the folder's lock when the rows are merged
    if foreign is None:
        classifier, config = load_run(run, dev, use_ema=use_ema)
        no_ema_note(run, use_ema, bool(config.get("ema_decay")))  # EMA on: the checkpoint has it
    else:
        data = {k: foreign[k] for k in ("dataset", "classes", "image_size")}
        classifier, config = load_model(**{k: v for k, v in foreign.items() if k not in data},
                                        image_size=foreign["image_size"], device=dev,
                                        use_ema=use_ema)
        config.update(data)
    shape = (int(config["channels"]), int(config["image_size"]), int(config["image_size"]))
    ctx = ds.DataContext(shape=shape, classes=config.get("classes"),
                         data_root=data_root or config.get("data_root"), resize=resize, seed=seed)
    groups: dict[str, list[str]] = {}
    specs_by_name: dict[str, str] = {}
    if openood is not None:
        bench = ds.openood_benchmark(openood, openood_id or config.get("dataset"))
        id_data, fit_data = id_data or bench.id_test, fit_data or bench.id_train
        if ood is None:
            specs_by_name = {n: spec for group in bench.groups.values()
                             for n, spec in group.items()}
            groups = {g: list(sets) for g, sets in bench.groups.items()}
    id_name = id_data or ds.default_id(config)
    notes: list[str] = []
    if not (specs_by_name or ood):  # the default sets: those that are OOD for this run
        ood = [n for n in ds.builtin_ood_names() if ds.suits(n, config)]
        notes += [f"left out the OOD set {n}: {ds.unsuited(n, config)}"
                  for n in ds.builtin_ood_names() if n not in ood]
    ood = list(specs_by_name or ood)
    _check_inert_options(specs, feature_maps, resize,
                         [id_name, fit_data or id_name, *(specs_by_name.get(n, n) for n in ood)])
    ds.check_not_trained_on(ood, config)  # before any data is built or feature extracted
    ds.check_not_id({n: specs_by_name.get(n, n) for n in ood}, ctx, id_name, fit_data)
    notes += _optimistic_data(id_name, fit_data, config if run is not None else {})
    whole = ds.whole_id_dataset(id_name, ctx, train=False)
    outputs = int(config["num_classes"])
    check_head(ctx, whole, outputs, id_name, foreign)
    # the classes the classifier knows: those it was trained on, or every output
    id_classes = sorted(map(int, ctx.classes)) if ctx.classes is not None else list(range(outputs))
    id_test = ds.id_subset(whole, ctx, False, max_samples)
    fit_set = None
    if any(s.fit_on is not None for s in specs):
        fit_name = fit_data or id_name
        if fit_data is None and not ds.has_train_split(id_name):
            raise ValueError(f"{id_name} has no train split; name the data the detectors are "
                             f"fitted on with --fit-data")
        fit_set = ds.id_dataset(fit_name, ctx, train=True, limit=max_fit)
        check_fit_classes(specs, id_classes, fit_set, outputs,
                          f"--fit-data {fit_data}" if fit_data else
                          f"the fit data (the train split of {id_name}; --fit-data names other)",
                          max_fit)
    ood_sets = {name: ds.ood_dataset(specs_by_name.get(name, name), ctx, limit=max_samples)
                for name in ood}
    model = as_ood_model(classifier, feature_maps).to(dev).eval()
    result = score_model(model, specs, id_test, ood_sets, fit_set,
                         num_classes=int(config["num_classes"]), params=overrides,
                         batch_size=batch_size, device=dev, amp=amp, workers=workers,
                         show_progress=show_progress)
    result.groups = groups
    step, steps = config.get("step"), config.get("steps")
    if run is not None and isinstance(step, int) and isinstance(steps, int) and step < steps:
        notes.append(f"{run} is unfinished: these are the scores of its checkpoint at step "
                     f"{step} of {steps}")
    meta = {"run": None if run is None else str(run), "model": config.get("model"),
            "weights": config.get("weights"), "step": step, "steps": steps,
            "id": id_name, "fit_data": (fit_data or id_name) if fit_set is not None else None,
            "ood": ood, "detectors": [s.name for s in specs], "params": overrides,
            "feature_maps": feature_maps, "resize": resize, "seed": seed,
            "ema": config.get("weights") == "ema",  # what was scored, not what was asked
            "openood": openood, "ood_specs": specs_by_name or None, "groups": groups or None,
            "convention": "higher score = more OOD; AUROC/AUPR as pytorch-ood and OpenOOD v1.5",
            "fpr_conventions": FPR_LEGEND}
    result.notes = notes
    # two calls into one folder merge their rows one after the other (each read the results at
    # its start and wrote them back: the first's rows were lost); a killed call's temp files go
    with output_lock(out_dir):  # another call may have written its rows since the start
        earlier = _read_earlier(out_dir / "results.json")
        old, earlier = earlier, _keep_earlier(result, earlier, meta, out_dir / "results.json")
        if old is not None and earlier is None:
            _remove_earlier_outputs(result, out_dir, old)
        files = write_outputs(result, out_dir, meta, plots=plots, save_scores=save_scores,
                              earlier=earlier)
    return result, files


def _check_inert_options(specs: Sequence[DetectorSpec], feature_maps: str, resize: bool,
                         sets: Sequence[str]) -> None:
    """Refuse an option that acts on nothing this call scores (it was accepted and recorded in
    results.json as if it had shaped the numbers)."""
    if feature_maps != "spatial" and not any(s.consumes == "maps" for s in specs):
        raise ValueError(f"--feature-maps {feature_maps} shapes what the feature-map detectors "
                         f"(ReAct, ASH, SCALE, RankFeat, VRA) see, and --detectors "
                         f"{', '.join(s.name for s in specs)} has none; drop it")
    if resize and not any(spec.split(":")[0] in ds.LOCAL for spec in sets):
        raise ValueError(f"--resize acts on the {', '.join(ds.LOCAL)} sets (folders and lists "
                         f"are always resized), and none is read here; drop it")


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
        raise ValueError(f"{source} holds classes {_listed(classes)} but the classifier has "
                         f"{outputs} outputs (classes 0-{outputs - 1}): classes "
                         f"{_listed(outside)} have none; {fix}")
    if declared and classes and classes[-1] + 1 < outputs:
        top = classes[-1] + 1
        which = f"output {top}" if top == outputs - 1 else f"outputs {top}-{outputs - 1}"
        raise ValueError(f"{source} leaves the classifier's {which} without ID data ({outputs} "
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
        raise ValueError(f"{source} holds classes {_listed(found)} but the "
                         f"classifier has {outputs} outputs (classes 0-{outputs - 1}); give fit "
                         f"data of the classes it was trained on")
    per_class = [s.name for s in specs if s.name in PER_CLASS]
    missing = [c for c in id_classes if c not in set(found)]
    if per_class and missing:
        more = f", or raise --max-fit {max_fit}" if max_fit is not None else ""
        plural = "es" * (len(missing) > 1)
        raise ValueError(f"{source} holds no image of ID class{plural} {_listed(missing)} (it "
                         f"holds {_listed(found) or 'none'}): "
                         f"{', '.join(per_class)} fit{'s' * (len(per_class) == 1)} one model per "
                         f"class and would flag that class's ID images as OOD; give fit data of "
                         f"every ID class ({_listed(id_classes)}){more}")


def _optimistic_data(id_name: str, fit_data: str | None, run_config: dict[str, Any]
                     ) -> list[str]:
    """Notes when the ID test images are ones the classifier (its run's ``run_config``) or the
    detectors have already seen: an image folder without ``val/``/``test/`` is one set, read
    whole for every role."""
    if not id_name.startswith("imagefolder:") or ds.has_train_split(id_name):
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


# Settings under which two calls' rows belong in one table (fit_data and the train size only
# when both calls fitted a detector: a call of unfitted detectors reads no train data).
_SAME_SETTINGS = ("run", "model", "weights", "step", "id", "feature_maps", "resize", "seed",
                  "ema")


def _read_earlier(path: Path) -> dict[str, Any] | None:
    """The results.json of an earlier ``ood score`` into the same folder (check_replaceable
    has made sure it is one), or None."""
    if not path.is_file():
        return None
    old = json.loads(path.read_text())
    rows = old.get("results")
    if not (isinstance(rows, list) and all(isinstance(r, dict) and {"detector", "ood"} <= r.keys()
                                           for r in rows)):
        raise ValueError(f"{path} is damaged (its results are not rows with detector and ood); "
                         f"remove it or give --out another folder")
    return old


def _differences(old: dict[str, Any], meta: dict[str, Any], sizes: dict[str, int]) -> list[str]:
    diff = [f"{k} {old[k]!r} -> {meta.get(k)!r}" for k in _SAME_SETTINGS
            if k in old and old[k] != meta.get(k)]
    if old.get("fit_data") and meta.get("fit_data") and old["fit_data"] != meta["fit_data"]:
        diff.append(f"fit_data {old['fit_data']!r} -> {meta['fit_data']!r}")
    old_sizes = old.get("sizes") or {}
    diff += [f"{k} size {old_sizes[k]} -> {sizes[k]}" for k in ("id_test", "id_train")
             if k in old_sizes and k in sizes and old_sizes[k] != sizes[k]]
    return diff


def _keep_earlier(result: ScoreResult, old: dict[str, Any] | None, meta: dict[str, Any],
                  path: Path) -> dict[str, Any] | None:
    """Keep an earlier call's rows that this call did not measure again (``result.previous``)
    when both were measured under the same settings; say what was replaced. Returns the earlier
    record to merge with, or None."""
    if old is None:
        return None
    rows = [{**r, **{m: math.nan if r.get(m) is None else r[m] for m in METRICS}}
            for r in old["results"]]
    diff = _differences(old, meta, result.sizes)
    if diff:
        result.notes.append(f"replaced all {len(rows)} rows of the earlier {path}: they were "
                            f"measured under other settings ({'; '.join(diff)}); give --out a "
                            f"new folder to keep both")
        return None
    result.previous = rows
    again = result.replaced()
    if again:
        result.notes.append(f"replaced {len(again)} rows of the earlier {path} measured again: "
                            f"{', '.join(again)}")
    kept = len(rows) - len(again)
    if kept:
        result.notes.append(f"kept {kept} rows of the earlier {path} (other detectors or OOD "
                            f"sets); the table shows both calls")
    return old


# ------------------------------------------------------------------------------------------------
# reporting


def format_table(result: ScoreResult) -> str:
    """A Markdown table: detector x OOD set with the metrics (in %, as papers report), and a
    legend saying which rate each FPR holds at 95%."""
    head = "| detector | OOD set | " + " | ".join(METRICS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(METRICS)]
    for row in result.merged_rows():
        name, ood = _md(row["detector"]), _md(row["ood"])  # a "|" in a name is no column break
        if row["error"]:
            lines.append(f"| {name} | {ood} | failed: {_md(row['error'][:80])} "
                         + "| " * (len(METRICS) - 1) + "|")
            continue
        vals = " | ".join(f"{100 * row[m]:.2f}" for m in METRICS)
        lines.append(f"| {name} | {ood} | {vals} |")
    return "\n".join(lines + ["", FPR_LEGEND])


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _finite(value: float) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else None


def _merged_meta(meta: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """The record's lists and maps over both calls (this call's entries win)."""
    dets = meta["detectors"]
    merged = dict(meta)
    merged["ood"] = list(dict.fromkeys([*earlier.get("ood", []), *meta["ood"]]))
    merged["params"] = {**{k: v for k, v in (earlier.get("params") or {}).items()
                           if k not in dets}, **meta["params"]}
    for key in ("groups", "ood_specs"):
        both = {**(earlier.get(key) or {}), **(meta.get(key) or {})}
        merged[key] = both or None
    return merged


# what write_outputs writes beside results.json (one roc/hist picture per OOD set)
OUTPUTS = ("results.csv", "results.md", "scores.pt", "roc_*.png", "hist_*.png")


def write_outputs(result: ScoreResult, out_dir: str | Path, meta: dict[str, Any],
                  plots: bool = True, save_scores: bool = False,
                  earlier: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``.csv``, ``.md``, ``scores.pt`` and per-OOD-set PNGs to ``out_dir``.

    ``scores.pt`` holds every detector's scores (with the plots, or with ``save_scores``): a
    later call into the folder draws its OOD sets' pictures with the detectors of both calls.
    ``earlier``: the results.json of an earlier call whose rows ``result.previous`` keeps; the
    files then hold both calls' rows and scores.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = _write_tables(result, out, meta, earlier)
    scores = _merged_scores(result, out / "scores.pt" if earlier is not None else None)
    if plots or save_scores or (out / "scores.pt").is_file():  # an earlier one kept in step
        from robustrep.tasks.common.checkpoint import save_atomic
        files["scores"] = save_atomic(scores, out / "scores.pt")
    if plots:
        files.update(_draw(result, out, scores))
    elif earlier is not None:
        _remove_pictures(result, out, result.ood_names, "this call measured them without plots")
    return files


def _write_tables(result: ScoreResult, out: Path, meta: dict[str, Any],
                  earlier: dict[str, Any] | None) -> dict[str, Path]:
    rows = result.merged_rows()
    detectors = {d.name: {"error": d.error, "fit_seconds": round(d.fit_seconds, 3),
                          "score_seconds": round(d.score_seconds, 3)}
                 for d in result.detectors.values()}
    if earlier is not None:
        meta = _merged_meta(meta, earlier)
        detectors = {**earlier.get("detectors", {}), **detectors}
    payload = {
        **meta,
        "id_accuracy": result.id_accuracy,
        "sizes": {**((earlier or {}).get("sizes") or {}), **result.sizes},
        "extract_seconds": round(result.extract_seconds, 3),
        **result.info,
        "detectors": detectors,
        "results": [{k: (_finite(v) if k in METRICS else v) for k, v in r.items()} for r in rows],
    }
    files = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    write_text_atomic(files["json"], json.dumps(payload, indent=2) + "\n")
    write_csv(files["csv"], rows, ["detector", "ood", *METRICS, "error"])
    write_text_atomic(files["md"], format_table(result) + "\n")
    return files


def _merged_scores(result: ScoreResult, earlier: Path | None) -> dict[str, dict[str, Any]]:
    """``{detector: {"id": scores, ood_set: scores}}``: an earlier call's (``earlier``, its
    scores.pt) with this call's replacing the sets it measured; a detector that failed now
    loses its earlier scores of those sets, as its rows are replaced by the failure."""
    from robustrep.tasks.common.checkpoint import safe_load
    scores = (safe_load(earlier, "earlier ood scores") if earlier is not None
              and earlier.is_file() else {})
    for d in result.detectors.values():
        if d.error is None:
            scores[d.name] = {**scores.get(d.name, {}), "id": d.id_scores, **d.ood_scores}
        elif d.name in scores:
            scores[d.name] = {k: v for k, v in scores[d.name].items()
                              if k not in result.ood_names}
    return scores


def _draw(result: ScoreResult, out: Path, scores: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """ROC curves and score histograms of each OOD set this call measured, with every detector
    whose scores of it are known (this call's and an earlier call's)."""
    from robustrep.tasks.common.plots import histogram_grid, roc_curves, roc_curves_many
    files: dict[str, Path] = {}
    rows = result.merged_rows()
    for ood in result.ood_names:
        names = [r["detector"] for r in rows if r["ood"] == ood and not r.get("error")]
        drawn = [n for n in names if ood in scores.get(n, {}) and "id" in scores[n]]
        if len(drawn) < len(names):
            result.notes.append(f"roc_{_slug(ood)}.png leaves out "
                                f"{', '.join(n for n in names if n not in drawn)}: an earlier "
                                f"call kept no scores of them (it ran with --no-plots)")
        if not drawn:
            _remove_pictures(result, out, [ood], "no detector's scores of it are kept")
            continue
        curves = {n: _curve(result.detectors.get(n), scores[n], ood) for n in drawn}
        draw = roc_curves if len(curves) <= 8 else roc_curves_many
        files[f"roc_{ood}"] = draw(curves, out / f"roc_{_slug(ood)}.png", title=f"ID vs {ood}")
        panels = {n: {"ID": scores[n]["id"], ood: scores[n][ood]} for n in drawn}
        files[f"hist_{ood}"] = histogram_grid(panels, out / f"hist_{_slug(ood)}.png",
                                              title=f"outlier scores, ID vs {ood}")
    return files


def _curve(det: DetectorResult | None, scores: dict[str, Any], ood: str) -> tuple[Any, Any, float]:
    """(fpr, tpr, AUROC): this call's, or computed from an earlier call's scores."""
    if det is not None and det.error is None:
        return (*det.roc[ood], det.metrics[ood]["AUROC"])
    metrics, (fpr, tpr) = compute_metrics(scores["id"], scores[ood])
    return fpr, tpr, metrics["AUROC"]


def _remove_pictures(result: ScoreResult, out: Path, sets: Sequence[str], why: str) -> None:
    """Remove the PNGs an earlier call drew of ``sets``: they no longer show the table."""
    gone = [p.name for ood in sets for p in (out / f"roc_{_slug(ood)}.png",
                                            out / f"hist_{_slug(ood)}.png") if p.is_file()]
    for name in gone:
        (out / name).unlink()
    if gone:
        result.notes.append(f"removed the earlier {', '.join(gone)}: {why}")


def _remove_earlier_outputs(result: ScoreResult, out: Path, old: dict[str, Any]) -> None:
    """An earlier call's scores.pt and pictures, when its rows were all replaced (other
    settings): they would show what the table no longer holds."""
    if (out / "scores.pt").is_file():
        (out / "scores.pt").unlink()
        result.notes.append(f"removed the earlier {out / 'scores.pt'} with its rows")
    _remove_pictures(result, out, [o for o in old.get("ood", []) if isinstance(o, str)],
                     "their rows were replaced")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
