"""Which options of ``classify train`` act only with others' values: a setting the others make
do nothing is refused by ``ClassifyConfig`` and dropped from an old run's saved config
(``config.saved_config``), as :func:`robustrep.tasks.common.regularizers.unused_options` says.

- :data:`ONLY_WITH`: an option and the value of another it needs (``--milestones`` with
  ``--schedule multistep``, ``--data-root`` with a dataset read from disk, ...);
- the optimizer hyperparameters of timm's train.py (``--momentum``, ``--opt-eps``,
  ``--opt-betas``) that timm's ``--optimizer`` takes (:func:`optimizer_takes`, from timm's
  optimizer registry), which timm drops without a word where it does not;
- :func:`unused_options`: those, a regularizer's options without it in ``--reg``, and the
  options of a feature another one turns off (``--remode`` without ``--reprob``, ``--holdout``
  where no share is held out, ...).

``config.py`` imports this module; :func:`unused_options` imports the config's regularizer list
(``OPTION_FIELDS``, ``parse_regularizers``) when it runs (no import cycle).
"""

from __future__ import annotations

from typing import Any

from robustrep.registry import regularizer_info
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.options import ROOTED_DATASETS
from robustrep.tasks.common.regularizers import unused_options as unused_fields

# The registry's input-mixing methods, in the order SampleMix lists its kinds.
MIXES = tuple(n for n in ("mixup", "cutmix", "srmix")
              if regularizer_info(n).acts.get("classify") == "input mixing")

# timm's default momentum, filled in for every optimizer taking one (as create_optimizer_v2)
SGD_OPTIMIZERS, SGD_MOMENTUM = ("sgd", "momentum"), 0.9

# The optimizer hyperparameters of timm's train.py: field -> create_optimizer_v2's keyword, and
# a few optimizers taking it (for the message refusing it with one that does not).
OPTIMIZER_ARGS: dict[str, tuple[str, str]] = {
    "momentum": ("momentum", "sgd, momentum, rmsprop, lars"),
    "opt_eps": ("eps", "adamw, lamb, rmsprop"), "opt_betas": ("betas", "adamw, lamb, lion")}


def optimizer_takes(optimizer: str) -> dict[str, int] | None:
    """How many values of momentum, eps and betas timm's ``optimizer`` takes (0: none), from
    the registry timm's ``create_optimizer_v2`` reads (``OptimInfo.has_momentum``, ``has_eps``,
    ``has_betas``, ``num_betas``; a ``lookahead_`` prefix wraps the optimizer named last). timm
    drops what an optimizer does not take without a word. None where timm cannot say: a name
    it lacks (refused when the optimizer is built) or a timm before its registry (1.0.12),
    whose optimizers raise a TypeError instead."""
    if optimizer in SGD_OPTIMIZERS:  # the default, known without importing timm
        return {"momentum": 1, "eps": 0, "betas": 0}
    try:
        from timm.optim import get_optimizer_info
        info = get_optimizer_info(optimizer.lower().split("_")[-1])
    except (ImportError, ValueError):
        return None
    return {"momentum": int(info.has_momentum), "eps": int(info.has_eps),
            "betas": info.num_betas if info.has_betas else 0}


def _unused_optimizer_args(values: dict[str, Any]) -> dict[str, list[str]]:
    """{what they need: [fields]} for the optimizer hyperparameters given that timm's
    ``--optimizer`` does not take (timm drops them; a run would record them and not use them)."""
    given = [f for f in OPTIMIZER_ARGS if values.get(f) is not None]
    optimizer = str(values.get("optimizer") or "sgd").lower()
    takes = optimizer_takes(optimizer) if given else None
    unused: dict[str, list[str]] = {}
    for field in given if takes is not None else ():
        arg, examples = OPTIMIZER_ARGS[field]
        if not takes[arg]:
            unused.setdefault(f"an --optimizer that takes {arg} in timm, e.g. {examples} "
                              f"(optimizer is {optimizer!r})", []).append(field)
    return unused


# Options that act only with another option's value: field -> (that option, its values).
ONLY_WITH: dict[str, tuple[str, tuple[str, ...]]] = {
    "milestones": ("schedule", ("multistep",)), "lr_decay": ("schedule", ("multistep",)),
    "min_lr": ("schedule", ("cosine",)),
    "uos_scale": ("head", ("uos",)), "lsun_classes": ("dataset", ("lsun",)),
    "skip_bad_images": ("dataset", ("imagefolder",)),
    "class_names": ("dataset", ("imagefolder",)),
    "data_root": ("dataset", ROOTED_DATASETS),  # digits: built in
}


# The datasets that hold out a share of their training images by default (an image folder or
# a zip without an evaluation split; ClassifyConfig._holds_out): --holdout draws it.
HELD_OUT = ("imagefolder", "zip")


def unused_options(values: dict[str, Any]) -> dict[str, list[str]]:
    """{what they need: [fields]} for the options set that the other options make do nothing
    (:func:`robustrep.tasks.common.regularizers.unused_options`)."""
    from .config import OPTION_FIELDS, parse_regularizers
    try:
        names = parse_regularizers(values.get("reg") or "none")
    except ConfigError:  # a bad --reg is reported by itself
        names = None
    unused = unused_fields(values, ONLY_WITH, names, OPTION_FIELDS)
    mixes = [n for n in names or () if n in MIXES]
    if names is not None and values.get("mix_switch_prob") is not None and len(mixes) == 1:
        # one mixing kind has nothing to switch to
        unused.setdefault(f"two mixing methods in --reg, e.g. mixup,cutmix (reg is "
                          f"{values.get('reg')!r})", []).append("mix_switch_prob")
    if values.get("remode") is not None and not values.get("reprob"):  # nothing is erased
        unused.setdefault("--reprob > 0 (reprob is 0)", []).append("remode")
    if values.get("wd_all") and values.get("weight_decay") == 0:  # no decay to spread
        unused.setdefault("--weight-decay > 0 (weight_decay is 0)", []).append("wd_all")
    if values.get("holdout") is not None and not values.get("val_fraction") \
            and values.get("dataset") not in HELD_OUT:  # scored on the dataset's test split
        unused.setdefault(f"--val-fraction > 0 (val_fraction is 0: dataset "
                          f"{values.get('dataset')!r} is scored on its test split)",
                          []).append("holdout")
    if values.get("warmup_lr") is not None and not values.get("warmup_steps") \
            and not values.get("warmup_epochs"):  # no warm-up
        unused.setdefault("--warmup-steps > 0 (warmup_steps is 0)", []).append("warmup_lr")
    for need, fields in _unused_optimizer_args(values).items():
        unused.setdefault(need, []).extend(fields)
    return unused
