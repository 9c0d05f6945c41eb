"""Options of ``robustrep ood score`` and ``robustrep ood bench``, and the names they default to.

Declared without torch, so that ``--help`` and a wrong option answer before the detectors and
the data are imported; :mod:`robustrep.tasks.ood.bench` reads its defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustrep.tasks.common.config import option
from robustrep.tasks.common.options import ModelOptions, refuse_file_run, shared

DEFAULT_DETECTORS = "MaxSoftmax,EnergyBased,MaxLogit,Entropy,ODIN,Mahalanobis,ViM,KNN,ReAct,ASH"
DEFAULT_REGS = ("none", "mixup", "cutmix", "srmix", "adaptivemix", "pgd")
BENCH_OOD = ("digits59", "gaussian", "uniform", "photos", "rotated", "inverted")
FEATURE_MAPS = ("spatial", "pooled")


@dataclass(kw_only=True)
class DetectorOptions:
    """What ``score`` and ``bench`` share: the detectors and how features are extracted."""

    detectors: str = option(DEFAULT_DETECTORS, "pytorch-ood detectors, comma-separated, or 'all' "
                                               "(ood score --list names them)", metavar="NAME,...")
    param: list[str] = option([], "override a detector's constructor argument, e.g. KNN.k=10 or "
                                  "ASH.variant=ash-b (repeatable)", repeat=True,
                              metavar="DETECTOR.NAME=VALUE")
    feature_maps: str = option("spatial", "what the feature-map detectors (ReAct, ASH, SCALE, "
                                          "RankFeat, VRA) shape: the unpooled trunk maps, or the "
                                          "pooled pre-logit vector as [B, D, 1, 1] (the papers' "
                                          "penultimate layer)", FEATURE_MAPS)
    batch_size: int = shared("batch_size")
    device: str = shared("device")
    # the classifier's passes: the extraction and the image detectors' own (ODIN, MCD, ...);
    # GradNorm and GradUncertainty, and under fp16 every gradient detector, stay in float32
    # with a note (docs/fidelity.md), as the help of every command's --amp is one
    amp: str = shared("amp")
    workers: int | None = shared("workers")
    seed: int = shared("seed")
    quiet: bool = shared("quiet")


@dataclass(kw_only=True)
class ScoreOptions(ModelOptions, DetectorOptions):
    """The options of ``robustrep ood score``."""

    run: str | None = option(None, "run folder written by `robustrep classify train` (or --model "
                                   "...)", positional=True, metavar="RUN",
                             check=refuse_file_run)
    list_detectors: bool = option(False, "list every pytorch-ood detector: what it consumes, "
                                         "whether it is fitted, its settable arguments; then exit",
                                  flags=("--list",))
    id: str | None = option(None, "in-distribution test data (default: the run's dataset and "
                                  "classes)", metavar="DATA")
    fit_data: str | None = option(None, "in-distribution data the detectors are fitted on "
                                        "(default: the train split of --id)", metavar="DATA")
    ood: list[str] | None = option(None, "OOD sets (default: every built-in set: digits59 "
                                         "gaussian uniform photos rotated inverted). Names: "
                                         "digits59, gaussian, uniform, photos, rotated, inverted, "
                                         "cifar10, cifar100, svhn (optionally NAME:ROOT), "
                                         "imagefolder:PATH, imagelist:ROOT:LISTFILE",
                                   metavar="DATA")
    data_root: str | None = shared("data_root", default_help="the run's data_root")
    openood: str | None = option(None, "OpenOOD v1.5 benchmark: OpenOOD's data folder "
                                       "(benchmark_imglist/, images_classic/); scores its near- "
                                       "and far-OOD sets and their means", metavar="DATA_DIR")
    openood_id: str | None = option(None, "ID dataset of the OpenOOD benchmark (cifar10, "
                                          "cifar100, imagenet200, imagenet; default: the run's "
                                          "dataset)", metavar="NAME")
    resize: bool = option(False, "resize local sets and convert their channels to the "
                                 "classifier's input shape (otherwise a different shape is an "
                                 "error)")
    max_samples: int | None = option(None, "score at most this many images of each evaluation "
                                           "set (random subset)", min=1)
    max_fit: int | None = option(None, "fit on at most this many ID train images (random "
                                       "subset)", min=1)
    out: str | None = shared("out", default_help="RUN/ood; with --model a new "
                                                 "runs/ood/<model>-<time>")
    no_ema: bool = shared("no_ema")
    no_plots: bool = option(False, "skip the ROC and histogram PNGs")
    save_scores: bool = option(False, "write every score to scores.pt also with --no-plots (the "
                                      "plots keep it: a later call into the folder draws its "
                                      "sets with both calls' detectors)")


@dataclass(kw_only=True)
class BenchOptions(DetectorOptions):
    """The options of ``robustrep ood bench``."""

    regs: str = option(",".join(DEFAULT_REGS), "regularizer settings to compare, "
                                               "comma-separated; each is a classify --reg value "
                                               "(use + to combine, e.g. mixup+pgd), then any of "
                                               "its own classify options after '@' as "
                                               "NAME=VALUE (e.g. none@head=uos)")
    seeds: list[int] = shared("seeds")
    ood: list[str] = option(list(BENCH_OOD), "built-in OOD sets to score", metavar="DATA")
    model: str | None = option(None, "timm model trained in every run (default: the classify "
                                     "default)")
    steps: int | None = option(None, "training steps per run (default: the preset's; "
                                     "--train-opt epochs=N gives the length in passes over the "
                                     "training set instead)", min=1)
    preset: str = option("digits-ood", "classify preset of every run")
    train_opt: list[str] = option([], "extra classify option for every run, e.g. adv_steps=3 "
                                      "(repeatable)", repeat=True)
    out: str = shared("out", "runs/ood-bench")
    # the shared help, with what it seeds here: the runs are trained with the --seeds
    seed: int = shared("seed", default_help="0; of the scoring: the noise and photo OOD sets. "
                                            "Each run is trained with its seed from --seeds")
    retrain: bool = option(False, "train again even when a finished run exists in the bench "
                                  "folder")
