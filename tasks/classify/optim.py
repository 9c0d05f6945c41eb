"""The optimizer and learning-rate schedule of ``classify train``, built with timm's factories.

timm's optimizer factory (``timm.optim.create_optimizer_v2``) and scheduler factory
(``timm.scheduler.create_scheduler_v2``), pytorch-image-models, with the keywords timm's
``train.py`` passes them: :func:`build_optimizer` builds both from the config,
:func:`create_optimizer` turns what timm cannot build into a ConfigError naming the option, and
:func:`group_sizes` tells which parameter grouping a saved optimizer state was built with.
Restoring a saved state while keeping the config's hyperparameters is
``tasks/common/optim.py``'s.
"""

from __future__ import annotations

from typing import Any

from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from torch import nn

from robustrep.nets.classifier import Classifier
from robustrep.tasks.common.config import ConfigError

from .config import ClassifyConfig


def milestone_steps(cfg: ClassifyConfig) -> list[int]:
    """The multistep schedule's milestones in optimizer steps, from the fractions of ``--steps``
    the config holds (checked there, defaults filled in)."""
    return [round(float(m) * cfg.steps) for m in cfg.milestones]


# create_optimizer_v2's keywords from timm train.py's options, and robustrep's flags for them
OPTIMIZER_FLAGS = {"momentum": "--momentum", "eps": "--opt-eps", "betas": "--opt-betas"}


def optimizer_args(cfg: ClassifyConfig) -> dict[str, Any]:
    """The ``create_optimizer_v2`` keywords of ``--momentum``, ``--opt-eps`` and ``--opt-betas``
    as timm's ``train.py`` passes them (``timm.optim.optimizer_kwargs``); those not given are
    left out, so timm's defaults apply (momentum 0.9, the optimizer's own eps and betas)."""
    given = {"momentum": cfg.momentum, "eps": cfg.opt_eps,
             "betas": None if cfg.opt_betas is None else tuple(cfg.opt_betas)}
    return {k: v for k, v in given.items() if v is not None}


def create_optimizer(cfg: ClassifyConfig, model: nn.Module, **options: Any):
    """``timm.optim.create_optimizer_v2`` for ``--optimizer`` at ``--lr``; a name timm cannot
    build (unknown, or needing a package or device this machine lacks) is a ConfigError."""
    # timm's "sgd" is Nesterov SGD, which needs momentum > 0; "momentum" is plain SGD
    name = cfg.optimizer if cfg.optimizer != "sgd" or cfg.momentum > 0 else "momentum"
    try:
        opt = create_optimizer_v2(model, opt=name, lr=cfg.lr, **optimizer_args(cfg), **options)
    except (AssertionError, ValueError, ImportError, TypeError, RuntimeError,
            IndexError) as err:
        # an unknown name is an AssertionError before timm 1.0.12, a ValueError after; before
        # its registry timm passed eps and betas on to optimizers without them (TypeError)
        # and an Adan given two betas raises IndexError
        unexpected = [k for k in OPTIMIZER_FLAGS if f"unexpected keyword argument '{k}'"
                      in str(err)]
        if unexpected:
            raise ConfigError(f"{OPTIMIZER_FLAGS[unexpected[0]]}: timm's --optimizer "
                              f"{cfg.optimizer} takes no {unexpected[0]}; drop the option or "
                              f"choose an optimizer that has it") from None
        raise ConfigError(f"--optimizer {cfg.optimizer}: timm cannot build it ({err}); "
                          f"python -c \"import timm.optim; print(timm.optim.list_optimizers())\" "
                          f"lists its optimizers") from None
    if getattr(opt, "is_second_order", False):  # needs backward(create_graph=True)
        raise ConfigError(f"--optimizer {cfg.optimizer} is a second-order optimizer (its step "
                          f"reads Hessian estimates from a graph kept by backward), which "
                          f"robustrep's training step does not keep; choose a first-order one")
    return opt


def build_optimizer(cfg: ClassifyConfig, model: nn.Module, timm_names: bool = True):
    """timm's factories (``timm.optim.create_optimizer_v2``, ``timm.scheduler.create_scheduler_v2``,
    pytorch-image-models): no weight decay on biases and normalisation parameters, and a schedule
    stepped per optimizer update (``step_update``). Cosine decays to ``min_lr`` (default 0) over
    all ``--steps``, the first ``warmup_steps`` of which are replaced by a linear warm-up from
    ``warmup_lr`` (timm's ``warmup_lr_init``; default ``lr / warmup_steps``) to ``lr``, step
    ``t`` at ``warmup_lr + t (lr - warmup_lr) / warmup_steps`` (timm's convention,
    ``warmup_prefix=False``). The schedule is a function of the step alone, so a resume
    rebuilds it from the resumed config and sets the step
    (:meth:`.train.Trainer.load_state_dict`).

    The parameters are grouped as timm's ``train.py`` groups the bare timm model's: its
    ``no_weight_decay()`` names (a ViT's ``pos_embed`` and ``cls_token``) take no decay and
    ``--layer-decay`` reads its ``group_matcher``. ``timm_names=False`` groups the
    :class:`Classifier` wrapper's instead, where neither is seen: how runs saved before this
    grouping were built, which resume as they started.
    """
    # wd_all decays BN and biases too, as the UoS references' torch.optim.SGD(model.parameters())
    net = model.model if timm_names and isinstance(model, Classifier) else model
    opt = create_optimizer(cfg, net, weight_decay=cfg.weight_decay,
                           filter_bias_and_bn=not cfg.wd_all, layer_decay=cfg.layer_decay)
    # timm applies milestone m from update m - 1 (its documented historical convention); m + 1
    # makes the lr change at update m, as torch's MultiStepLR in the UoS reference recipe
    milestones = [m + 1 for m in milestone_steps(cfg)] if cfg.schedule == "multistep" else ()
    # "constant" as timm 1.0.31 defines it (a step schedule that never decays), spelled so that
    # older timm, which has no "constant" and returns no scheduler, builds it too
    constant = cfg.schedule == "constant"
    sched, _ = create_scheduler_v2(
        opt, sched="step" if constant else cfg.schedule, num_epochs=cfg.steps,
        step_on_epochs=False, updates_per_epoch=1, warmup_epochs=cfg.warmup_steps,
        min_lr=cfg.min_lr or 0.0,
        warmup_lr=cfg.lr / max(1, cfg.warmup_steps) if cfg.warmup_lr is None else cfg.warmup_lr,
        decay_milestones=milestones,
        decay_rate=cfg.lr_decay if cfg.schedule == "multistep" else 1.0)
    return opt, sched


def group_sizes(optimizer_state: dict[str, Any]) -> list[int]:
    """The parameter count of each param group of a saved optimizer state: another grouping
    than a fresh :func:`build_optimizer`'s is a run saved before timm's own parameter names were
    grouped (``timm_names=False``)."""
    return [len(group["params"]) for group in optimizer_state["param_groups"]]
