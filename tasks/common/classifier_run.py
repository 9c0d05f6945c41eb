"""A classify run read back: a ``robustrep classify train`` run folder -> its classifier.

:func:`load_run` is the contract the OOD program relies on: a run folder -> (classifier, config),
the classifier a :class:`robustrep.nets.classifier.Classifier` built by
:func:`~robustrep.tasks.common.classifier.create_classifier` from the run's ``config.json`` and
loaded with its checkpoint's weights (``weights_only``, finite). :func:`load_run_features` gives
the same run's pre-logit features, for any program (the GAN program's ``--fid-features
run:RUN``). Weights no robustrep run made are :mod:`robustrep.tasks.common.foreign_model`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from robustrep.nets.classifier import Classifier
from robustrep.tasks.common.checkpoint import LATEST, load_checkpoint, load_weights
from robustrep.tasks.common.classifier import NORM_RUN, create_classifier
from robustrep.tasks.common.errors import CheckpointError, RunFolderError
from robustrep.tasks.common.options import RUN_CHECKPOINT_USE, check_run_folder


class NotAClassifierRun(RunFolderError, ValueError):
    """A run folder whose config.json lacks a classifier's keys (a GAN's or an OOD score's
    folder): one line, exit 2. Also a ValueError, as :func:`load_run` documents it."""


def _run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a robustrep run folder: no config.json "
                                f"(expected RUN/config.json and RUN/checkpoints/{LATEST} written "
                                f"by `robustrep classify train`)")
    from robustrep.tasks.common.runfiles import read_json
    config = read_json(path, dict)  # damaged: one line naming the file
    needed = ("model", "num_classes", "channels", "mean", "std")
    missing = [k for k in needed if config.get(k) is None]
    if missing:
        raise NotAClassifierRun(f"{run_dir} does not hold a classifier run: config.json lacks "
                                f"{', '.join(missing)} (is it a GAN or OOD run? expected a "
                                f"folder written by `robustrep classify train`)")
    for key in needed:
        _check_saved(path, key, config[key])
    return config


# what classify train saves for the keys a run is loaded from, and how a reader says it
_SAVED = {"model": (str, "a model name"), "num_classes": (int, "an integer >= 1"),
          "channels": (int, "1 or 3"), "mean": (list, "a list of numbers"),
          "std": (list, "a list of numbers > 0")}


def _check_saved(path: Path, key: str, value: Any) -> None:
    """A hand-edited or damaged config.json value is one line naming the file and the key (was
    a TypeError traceback from ``int([1])`` for ``"channels": [1]``)."""
    kind, what = _SAVED[key]
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and kind is int:
        ok = value >= 1 and (key != "channels" or value in (1, 3))
    if ok and kind is list:
        ok = bool(value) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and (key != "std" or v > 0) for v in value)
    if not ok:
        raise NotAClassifierRun(f"{path}: {key} must be {what}, got {json.dumps(value)}; was "
                                f"the file edited? (classify train writes it)")


def load_run(run_dir: str | Path, device: str | torch.device = "cpu",
             use_ema: bool = True) -> tuple[Classifier, dict[str, Any]]:
    """Load the classifier of a ``robustrep classify train`` run folder, in eval mode.

    The folder holds ``config.json`` (keys include ``model``, ``num_classes``, ``dataset``,
    ``image_size``, ``channels``, ``data_root``, ``classes``, ``mean``, ``std``) and
    ``checkpoints/latest.pt`` with the ``"model"`` state dict (and ``"ema"`` when EMA was on).

    Args:
        run_dir: the run folder.
        device: where to put the model.
        use_ema: use the EMA weights when the checkpoint has them.

    Returns:
        ``(classifier, config)``; ``config["weights"]`` says ``"ema"`` or ``"model"``,
        ``config["step"]`` the checkpoint's training step (below ``config["steps"]`` while the
        run is unfinished), ``config["norm_source"]`` ``"run"`` for mean and std (its
        config.json's).

    Raises:
        RunFolderError: no such folder, or a file (a checkpoint file: which folder to give).
        FileNotFoundError: no config.json or no checkpoint.
        NotAClassifierRun: the folder is not a classifier run.
        CheckpointError: the checkpoint is unreadable, unsafe (weights_only refuses it),
            holds non-finite weights or does not fit the run's model.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir, "RUN", RUN_CHECKPOINT_USE)  # not there, or a file (a checkpoint?)
    config = _run_config(run_dir)
    ckpt_path = run_dir / "checkpoints" / LATEST
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no checkpoint: expected {ckpt_path} (has the "
                                f"training run written its first checkpoint yet?)")
    state = load_checkpoint(ckpt_path, map_location="cpu")  # weights_only; CheckpointError
    if not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{ckpt_path} has no 'model' state dict; it is not a classifier "
                              f"checkpoint")
    model = create_classifier(config["model"], int(config["num_classes"]),
                              in_chans=int(config["channels"]), mean=config["mean"],
                              std=config["std"], drop_rate=config.get("drop_rate"),
                              drop_path_rate=config.get("drop_path"),
                              head=config.get("head") or "linear",
                              uos_scale=config.get("uos_scale"),
                              image_size=config.get("image_size"),
                              final_act=config.get("final_act"))
    weights = "ema" if use_ema and state.get("ema") is not None else "model"
    load_weights(model, state[weights], str(ckpt_path),
                 f"{config['model']!r} with {config['num_classes']} classes",
                 "the run diverged: use an earlier step_*.pt or retrain with a lower --lr")
    config = dict(config, weights=weights, run_dir=str(run_dir), step=state.get("step"),
                  norm_source={"mean": NORM_RUN, "std": NORM_RUN})
    return model.to(device).eval(), config


class _PreLogits(nn.Module):
    """``classifier.features`` as a module of its own (what a feature network is called with)."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(x)


def scored_ema(config: dict[str, Any]) -> bool:
    """Whether the weights :func:`load_run` or ``foreign_model`` loaded (their ``config``) are
    EMA weights: a run's ``"ema"``, or a checkpoint file's ``state_dict_ema``. Its records say
    so: a file's raw and EMA weights have one name and score differently."""
    return config.get("weights") == "ema" or bool(config.get("ema"))


def weights_label(record: dict[str, Any]) -> str | None:
    """Which weights a record (classify's report.json, ood's results.json) scored, as the
    programs print it beside an accuracy: a run's EMA and raw weights can score far apart (an
    early EMA lags the raw weights), and only the json said which. None: a record with no word
    of them (a library caller's ``evaluate_model``)."""
    if scored_ema(record):
        return "EMA weights"
    weights = record.get("weights")
    if weights is None:
        return None
    if weights == "pretrained":
        return "pretrained weights"
    if str(weights).startswith("robustbench"):
        return "RobustBench weights"
    return "raw weights"  # a run's "model", or a file's state dict without its EMA


def load_run_features(run_dir: str | Path, device: str | torch.device = "cpu",
                      use_ema: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The pre-logit feature network of a classify run, for any program.

    The GAN program scores generators with the features of a classifier trained on its own data
    (``--fid-features run:RUN``), as domain-specific FIDs do (Kynkaanniemi et al., "The Role of
    ImageNet Classes in Frechet Inception Distance", ICLR 2023). Same run reading as
    :func:`load_run` (``weights_only``, finite weights), in eval mode with no gradients; a folder
    that is not a classify run is a RunFolderError.
    """
    written = "a folder written by `robustrep classify train`"
    check_run_folder(run_dir, "", "run:{run}", written)  # (load_run's answer names --model)
    try:
        classifier, config = load_run(run_dir, device, use_ema)
    except (FileNotFoundError, ValueError) as err:
        # load_run's lines each say what they expected (a run's config.json, its checkpoint):
        # a second "(expected ...)" made the line say it twice
        said = "expected " in str(err)
        raise RunFolderError(str(err) if said else f"{err} (expected {written})") from None
    return _PreLogits(classifier).eval().requires_grad_(False), config
