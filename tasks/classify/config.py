"""Options of ``robustrep classify train``: one dataclass and the regularizer list.

Every field default is the real default, stated once; a preset (:mod:`.presets`) overrides some
of them and the command line overrides the preset (see :mod:`robustrep.tasks.common.config`).
Which options act only with others is :mod:`.option_checks`; lengths given in epochs,
:mod:`.lengths`. The resolved config, with the data-derived fields (``num_classes``,
``channels``, ``mean``, ``std``, and the ``steps`` of ``--epochs``) filled in, is what
``config.json`` of a run folder holds and what
:func:`robustrep.tasks.common.classifier_run.load_run` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustrep._names import ATTACKS, BENCHMARK, CORRUPTIONS, NORMS, SEVERITIES
from robustrep.registry import parse_combination, regularizer_info
from robustrep.tasks.common.config import (BETA, NONNEG, POSITIVE, PROB, UNIT, ConfigError,
                                           check_fields, option)
from robustrep.tasks.common.options import (CLASSIFIER_DATASETS, ModelOptions, TrainRunOptions,
                                            check_lsun_classes, refuse_file_run,
                                            resumable_detail, run_option, shared)
from robustrep.tasks.common.regularizers import (Fixed, OptionFields, PerMethod, Unread,
                                                 check_additive_weight, refuse_unused, reg_option)

from .lengths import EPOCHS_OF, epochs_to_steps
from .option_checks import SGD_MOMENTUM, optimizer_takes, unused_options
from .presets import PRESETS

DATASETS = CLASSIFIER_DATASETS
# timm's RandomErasing modes (its train.py's --remode)
REMODES = ("pixel", "rand", "const")
DEFAULT_MODEL = "resnet10t"


_opt = option


@dataclass
class ClassifyConfig:
    """Everything a classifier training run depends on (written to RUN/config.json)."""

    preset: str | None = _opt(None, "the preset this config started from")
    # model
    model: str = _opt(DEFAULT_MODEL, "timm model name (timm.list_models() lists them), "
                                     "hf-hub:ORG/NAME, or a local timm folder (config.json + "
                                     "weights)")
    pretrained: bool = _opt(False, "start from the model's pretrained weights (timm's default "
                                   "tag on the Hugging Face hub, cached; HF_HUB_OFFLINE=1 reads "
                                   "only the cache); the head is re-initialised")
    pretrained_file: str | None = _opt(
        None, "local weights file (.pth/.safetensors) for the model; the head is re-initialised")
    drop_rate: float = _opt(0.0, "dropout before the classifier (timm drop_rate; for wrn* models "
                                 "dropout inside each block, as in the WRN paper)", **BETA)
    drop_path: float | None = _opt(None, "stochastic depth rate (timm's --drop-path, the model's "
                                         "drop_path_rate; models without one refuse it)",
                                   **BETA)
    final_act: bool | None = _opt(None, "wrn* models: the BN-ReLU after the last group (None: "
                                        "off with --head uos, as both UoS references; on "
                                        "otherwise)")
    head: str = _opt("linear", "classifier head: linear (the model's own) or uos (frozen "
                               "orthogonal |W z/||z|||, robustrep.uos.UoSHead)", ("linear", "uos"))
    uos_scale: float | None = _opt(None, "logit scale of the uos head (core default 1, as the "
                                         "UoS and AdaptiveMix references)", **POSITIVE)
    mean: list[float] | None = _opt(None, "input normalisation mean per channel (default: the "
                                          "model's pretrained_cfg, averaged for 1 channel)", **UNIT)
    std: list[float] | None = _opt(None, "input normalisation std per channel (as mean)",
                                   **POSITIVE)
    # data
    dataset: str = _opt("digits", "training data", DATASETS)
    data_root: str | None = shared("data_root")
    lsun_classes: str | None = _opt(None, "LSUN databases under --data-root (dataset lsun; label = "
                                          "position), e.g. church_outdoor_train,bedroom_train; "
                                          "the test set reads their _val twins")
    skip_bad_images: bool = _opt(False, "imagefolder: leave out unreadable image files "
                                        "(listed on stderr) instead of stopping at the first")
    classes: list[int] | None = _opt(None, "train on this subset of class labels, e.g. 0,1,2,3,4 "
                                           "(labels are kept, so the head has max+1 outputs)",
                                     **NONNEG)
    class_names: list[str] | None = _opt(None, "imagefolder: the class folders in label order "
                                               "(default: their sorted names). Training records "
                                               "them, so an evaluation keeps the run's labels "
                                               "whatever class folders a data root holds")
    image_size: int = _opt(32, "images are resized to this square size", min=1)
    channels: int | None = _opt(None, "input channels (default: the dataset's; 1 -> 3 repeats "
                                      "grey images)", choices=(1, 3))
    num_classes: int | None = _opt(None, "head outputs (default: from the dataset)", min=2)
    augment: bool = _opt(False, "random crop (pad 4) + horizontal flip on the training images")
    aa: str | None = _opt(None, "timm auto-augment policy after crop/flip, e.g. rand-m9-mstd0.5 "
                                "(RandAugment), augmix, original (AutoAugment), trivialaugment")
    reprob: float = _opt(0.0, "timm random erasing probability per image (filled as --remode)",
                         **UNIT)
    remode: str | None = _opt(None, "--reprob > 0 only: what an erased rectangle is filled "
                                    "with, as timm's --remode: pixel (per-pixel normal noise), "
                                    "rand (one normal colour), const (the mean colour); default "
                                    "pixel, timm's train.py's; const with an --reg attacking the "
                                    "inputs (pgd, fgsm, free), whose images are in [0, 1]",
                              REMODES)
    val_fraction: float = _opt(0.0, "hold out this share of the training split for validation "
                                    "(0: evaluate on the test split; an image folder or zip "
                                    "without one holds out 0.2)", **BETA)
    holdout: str | None = _opt(None, "how the --val-fraction share (an image folder's 0.2) is "
                                     "drawn: stratified, per class (F x n of a class's n images "
                                     "rounded half up, at least 1, never its last one; the "
                                     "default where a share is held out), or random, over all "
                                     "images (the rule of runs saved before stratified, which "
                                     "keep it)", ("stratified", "random"))
    workers: int | None = shared("workers")
    # optimisation
    steps: int = _opt(300, "optimizer steps (or --epochs)", min=1)
    epochs: int | None = _opt(None, "train for N passes over the training set instead of "
                                    "--steps (timm's --epochs): ceil(N x batches per pass / "
                                    "grad_accum) steps, a pass being the sampler's (train "
                                    "images // (batch_size x processes) batches, the last "
                                    "partial one dropped, as timm's loader); computed when the "
                                    "data is read and saved as steps", min=1)
    batch_size: int = _opt(64, "batch size per process", min=1)
    grad_accum: int = _opt(1, "batches whose gradients each optimizer step sums (timm's "
                              "--grad-accum-steps): the step's batch is batch_size x grad_accum "
                              "x processes, in memory one batch at a time", min=1,
                              flags=("--grad-accum", "--grad-accum-steps"))
    optimizer: str = _opt("sgd", "a timm optimizer (timm.optim.create_optimizer_v2's opt): sgd "
                                 "(Nesterov), momentum (plain momentum SGD, the UoS/AdaptiveMix "
                                 "references), adamw, lamb, ...",
                          flags=("--optimizer", "--opt"))
    layer_decay: float | None = _opt(None, "layer-wise lr decay (timm's --layer-decay): each "
                                           "block's lr is scaled by this per block from the "
                                           "head (blocks from timm's group_matcher; a "
                                           "model without one gets timm's coarser fallback)",
                                     **PROB)
    lr: float = _opt(0.05, "peak learning rate", **POSITIVE)
    momentum: float | None = _opt(None, "momentum of an --optimizer that takes one in timm "
                                        "(sgd, momentum, rmsprop, lars, ...; timm's --momentum); "
                                        "default 0.9, timm's", **BETA)
    opt_eps: float | None = _opt(None, "epsilon of an --optimizer that takes one in timm "
                                       "(adamw, lamb, rmsprop, ...; not sgd; timm's --opt-eps); "
                                       "default: the optimizer's own", **POSITIVE)
    opt_betas: list[float] | None = _opt(None, "betas of an --optimizer that takes them in timm "
                                               "(adamw, lamb, lion, ...; timm's --opt-betas), as "
                                               "many as it takes: 2, 3 for adan; default: the "
                                               "optimizer's own", **BETA)
    weight_decay: float = _opt(5e-4, "weight decay", **NONNEG)
    wd_all: bool = _opt(False, "weight decay on BN parameters and biases too (the UoS "
                               "references); off: timm's convention, none on them. A model's "
                               "no_weight_decay() names (a ViT's pos_embed) take none either way, "
                               "as in timm")
    schedule: str = _opt("cosine", "learning-rate schedule", ("cosine", "constant", "multistep"),
                         flags=("--schedule", "--sched"))
    milestones: list[float] | None = _opt(None, "--schedule multistep only: increasing "
                                                "fractions of --steps at which the learning rate "
                                                "is multiplied by lr_decay (default 0.3 0.6 0.8)",
                                          **BETA)
    lr_decay: float | None = _opt(None, "--schedule multistep only: factor applied at each "
                                        "milestone (default 0.2)", **POSITIVE)
    min_lr: float | None = _opt(None, "--schedule cosine only: the learning rate it decays to "
                                      "(timm's --min-lr; default 0)", **NONNEG)
    warmup_steps: int = _opt(0, "linear warm-up steps", **NONNEG)
    warmup_epochs: int | None = _opt(None, "the warm-up in passes over the training set "
                                           "instead of --warmup-steps (timm's "
                                           "--warmup-epochs), converted as --epochs",
                                     **NONNEG)
    warmup_lr: float | None = _opt(None, "--warmup-steps (--warmup-epochs) > 0 only: the "
                                         "learning rate the warm-up starts from (timm's "
                                         "--warmup-lr, its scheduler's warmup_lr_init); "
                                         "default --lr / --warmup-steps",
                                   **NONNEG)
    label_smoothing: float = _opt(0.0, "label smoothing of the (hard or mixed) targets", **BETA,
                                  flags=("--label-smoothing", "--smoothing"))
    ema_decay: float = _opt(0.0, "EMA decay of the weights (timm ModelEmaV3); 0 = off", **BETA)
    clip_grad: float = _opt(0.0, "clip the gradient norm to this value; 0 = off", **NONNEG)
    # regularizers
    reg: str = shared("reg")
    reg_options: dict | None = shared("reg_options")
    mix_alpha: float | None = reg_option("mixup", "alpha", **POSITIVE)
    mix_prob: float | None = reg_option("mixup", "prob", **PROB)
    mix_switch_prob: float | None = reg_option("mixup", "switch_prob", **UNIT)
    srmix_smoothing: float | None = reg_option("srmix", "smoothing", **UNIT)
    am_alpha: float | None = reg_option("adaptivemix", "alpha", **POSITIVE)
    am_noise_std: float | None = reg_option("adaptivemix", "noise_std", **NONNEG)
    am_weight: float | None = reg_option("adaptivemix", "weight", **NONNEG)
    am_mode: str | None = reg_option("adaptivemix", "mode", ("reference", "additive"))
    eps: float | None = reg_option("pgd", "eps", **POSITIVE)  # pgd, fgsm and free alike
    adv_steps: int | None = reg_option("pgd", "steps", min=1)
    adv_step_size: float | None = _opt(None, "attack step size (pgd: 2.5*eps/steps; fgsm: "
                                             "1.25*eps; free: eps)", **POSITIVE)
    free_replays: int | None = reg_option("free", "replays", min=1)
    # runtime
    seed: int = shared("seed")
    log: str = shared("log")
    device: str = shared("device")
    amp: str = shared("amp")
    channels_last: bool = shared("channels_last")
    compile: bool = shared("compile")
    eval_every: int = shared("eval_every", 200)
    ckpt_every: int = shared("ckpt_every", 200)
    keep_ckpts: int = shared("keep_ckpts")
    log_every: int = shared("log_every", 20)

    def __post_init__(self):
        check_fields(self)  # types, choices and ranges from the field metadata
        # validated early, with the list of valid names; saved as the registry spells it
        self.reg = ",".join(self.regularizers()) or "none"
        self.optimizer = self.optimizer.lower()  # timm's names are lower case; it lowers them
        self._check_linf_eps()
        if self.pretrained and self.pretrained_file is not None:
            raise ConfigError("give --pretrained (the weights of --model) or --pretrained-file "
                              "FILE, not both")
        self._resolve_final_act()
        self._resolve_multistep()
        if self.momentum is None and (optimizer_takes(self.optimizer) or {}).get("momentum"):
            # what timm's create_optimizer_v2 passes (rmsprop, lars, ... too), so config.json
            # records the momentum that ran; adamw has none
            self.momentum = SGD_MOMENTUM
        refuse_unused(unused_options(vars(self)))
        self._resolve_remode()
        if self.holdout is None and self._holds_out():
            self.holdout = "stratified"
        # before the data: not when the databases open
        check_lsun_classes(self.lsun_classes, self.dataset)
        check_additive_weight(self)
        if self.aa is not None:
            from .policies import build_aa
            try:
                build_aa(self.aa, self.image_size, (0.5, 0.5, 0.5))
            except ValueError as err:
                raise ConfigError(f"--aa: {err}") from None
        if self.min_lr is not None and self.min_lr >= self.lr:  # the schedule would rise
            raise ConfigError(f"--min-lr {self.min_lr:g} is not below --lr {self.lr:g}: cosine "
                              f"decays from --lr to --min-lr")
        if self.warmup_lr is not None and self.warmup_lr >= self.lr:  # it would not rise
            raise ConfigError(f"--warmup-lr {self.warmup_lr:g} is not below --lr {self.lr:g}: "
                              f"the warm-up rises from --warmup-lr to --lr")
        self._check_betas()
        if self.epochs is None and self.warmup_epochs is None:  # else once they are steps
            self.check_warmup()
        if self.classes is not None:
            given = [int(c) for c in self.classes]
            twice = sorted({c for c in given if given.count(c) > 1})
            if twice:  # `--classes 3 3` is not two classes
                raise ConfigError(f"--classes lists {twice[0]} more than once; give each label "
                                  f"once (e.g. 0,1)")
            self.classes = sorted(given)
            if not self.classes or min(self.classes) < 0:
                raise ConfigError(f"classes must be non-negative labels; got {self.classes}")
            if len(self.classes) < 2:  # one label: the loss is zero from step 1, nothing learnt
                raise ConfigError(f"--classes needs at least two labels (e.g. 0,1); got "
                                  f"{self.classes}")

    def check_warmup(self) -> None:
        """The warm-up ends before the run does (in the user's words: steps or epochs)."""
        if self.warmup_steps and self.warmup_steps >= self.steps:
            raise ConfigError(f"{self.length_text('warmup_steps')} is not below "
                              f"{self.length_text('steps')}: the learning rate would never reach "
                              f"--lr")

    def length_text(self, field: str) -> str:
        """``--steps 300``, or ``--epochs 3 (84 steps)`` for a length given in epochs."""
        epochs = getattr(self, EPOCHS_OF[field])
        steps = getattr(self, field)
        if epochs is None:
            return f"--{field.replace('_', '-')} {steps}"
        return f"--{EPOCHS_OF[field].replace('_', '-')} {epochs} ({steps} steps)"

    def resolve_epochs(self, train_size: int, world_size: int = 1, replays: int = 1) -> None:
        """``--epochs`` and ``--warmup-epochs`` as optimizer steps, once the training set's size
        is known (before the run folder is made; config.json saves both, so a resume keeps the
        steps). ``replays``: the steps each batch takes (free adversarial training)."""
        for field, epochs_field in EPOCHS_OF.items():
            epochs = getattr(self, epochs_field)
            if epochs is not None:
                setattr(self, field, epochs_to_steps(epochs, train_size, self.batch_size,
                                                     world_size, self.grad_accum, replays))
        self.check_warmup()

    def _check_linf_eps(self) -> None:
        adversarial = [n for n in self.regularizers() if "eps" in OPTION_FIELDS.get(n, {})]
        if adversarial:
            norm = ((self.reg_options or {}).get(adversarial[0]) or {}).get("norm", "linf")
            check_linf_eps(self.eps, norm)

    def _check_betas(self) -> None:
        """As many betas as timm's optimizer takes (Adan's three; an Adam given three kept two,
        an Adan given two failed in its constructor)."""
        takes = optimizer_takes(self.optimizer) if self.opt_betas is not None else None
        if takes is not None and len(self.opt_betas) != takes["betas"]:
            raise ConfigError(f"--opt-betas takes {takes['betas']} values with --optimizer "
                              f"{self.optimizer} (its betas in timm); got {len(self.opt_betas)}: "
                              f"{' '.join(f'{b:g}' for b in self.opt_betas)}")

    def _resolve_final_act(self) -> None:
        """wrn*: the final BN-ReLU off under a UoS head (both references pool the last block's
        raw output), on otherwise; other models have no such switch."""
        if not self.model.startswith("wrn"):
            if self.final_act is not None:
                raise ConfigError(f"--final-act applies only to the wrn* models; model is "
                                  f"{self.model!r}")
            return
        if self.final_act is None:
            self.final_act = self.head != "uos"

    def _holds_out(self) -> bool:
        """Whether a share of the training data may be held out: --val-fraction, or a folder or
        zip without an evaluation split (known once the data is read). Elsewhere ``holdout``
        stays None, so a run that holds nothing out records none (ood bench compares it)."""
        return bool(self.val_fraction) or self.dataset in ("imagefolder", "zip")

    def _resolve_remode(self) -> None:
        """--remode's default with --reprob > 0: timm train.py's pixel noise, or the mean colour
        under an attack on the inputs: the attacks take images in [0, 1] and refuse a batch
        outside it, which the noise (normal in the normalised space) is."""
        if not self.reprob:  # a --remode given there is refused by unused_options
            return
        attacks = [n for n in self.regularizers()
                   if regularizer_info(n).acts.get("classify") == "adversarial inputs"]
        if self.remode is None:
            self.remode = "const" if attacks else "pixel"
        elif self.remode != "const" and attacks:
            raise ConfigError(f"--remode {self.remode} fills erased pixels with normal noise "
                              f"outside [0, 1], where --reg {attacks[0]} attacks images; give "
                              f"--remode const (the mean colour) with it")

    def _resolve_multistep(self) -> None:
        """milestones and lr_decay shape only the multistep schedule: filled in with the UoS
        recipe's values (:data:`MULTISTEP`) when not given, and checked."""
        if self.schedule != "multistep":  # set there: refused by unused_options
            return
        for name, value in MULTISTEP.items():
            if getattr(self, name) is None:
                setattr(self, name, list(value) if isinstance(value, list) else value)
        ms = self.milestones
        if not ms or any(not 0 < float(m) < 1 for m in ms) or list(ms) != sorted(ms):
            raise ConfigError(f"--milestones must be increasing fractions of --steps in (0, 1), "
                              f"e.g. 0.3 0.6 0.8; got {ms}")

    @staticmethod
    def add_generated_flags(parser: Any) -> None:
        """classify train's ``--NAME-OPTION`` flags, one for each regularizer option no field
        maps; a config file's key naming one is folded as the flag is
        (``tasks.common.config``)."""
        from robustrep.tasks.common.regularizers import add_regularizer_args
        add_regularizer_args(parser, "classify", OPTION_FIELDS)

    def regularizers(self) -> list[str]:
        """The parsed ``reg`` list; ConfigError on unknown names or impossible combinations."""
        return parse_regularizers(self.reg)


# The multistep schedule's defaults: the UoS / AdaptiveMix recipe multiplies the lr by 0.2 at
# epochs 60, 120 and 160 of 200, i.e. at 30%, 60% and 80% of training.
MULTISTEP: dict[str, Any] = {"milestones": [0.3, 0.6, 0.8], "lr_decay": 0.2}



def saved_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's saved ``config.json`` as this version reads it: the options that did nothing in
    that run (:func:`unused_options`) are dropped. Runs saved before milestones, lr_decay and
    momentum defaulted to None hold them under every schedule and optimizer; only multistep
    used the first two, only an optimizer taking momentum the last. Runs saved before --remode
    erased to the mean colour: their ``remode`` is ``const``, whatever the default now is. Runs
    saved before the stratified holdout drew theirs at random over all images: their
    ``holdout`` is ``random``, so a resume and an evaluation get the split they trained on."""
    unused = {f for names in unused_options(config).values() for f in names}
    config = {k: v for k, v in config.items() if k not in unused}
    if config.get("reprob") and "remode" not in config:
        config["remode"] = "const"
    if "holdout" not in config and (config.get("val_fraction")
                                    or config.get("dataset") in ("imagefolder", "zip")):
        config["holdout"] = "random"
    return config


def check_linf_eps(eps: float | None, norm: str) -> None:
    """Images are in [0, 1]: an Linf radius above 1 is a typo (8 meant as 8/255)."""
    if eps is not None and eps > 1 and str(norm).lower() == "linf":
        raise ConfigError(f"--eps {eps:g}: an Linf radius is in [0, 1] pixels (8/255 = 0.0314 "
                          f"is the CIFAR standard); got more than 1")


def parse_regularizers(text: str) -> list[str]:
    """``"mixup,pgd"`` -> ``["mixup", "pgd"]`` by the registry's one grammar (``,`` or ``+``).

    Which methods combine comes from where each acts (:mod:`robustrep.registry`): several
    input-mixing methods (the program switches between them per batch), at most one adversarial
    input method, and AdaptiveMix alone among the mixing ones.
    """
    try:
        return list(parse_combination(text, "classify"))
    except ValueError as err:
        raise ConfigError(f"--reg: {err}") from None


_MIX = {"alpha": PerMethod("mix_alpha"), "prob": "mix_prob", "switch_prob": "mix_switch_prob"}
# registered name -> {constructor option: ClassifyConfig field}; the trainer builds what --reg
# names from these (tasks/common/regularizers.py), a name not listed gets its class defaults.
# PerMethod: --mix-alpha, which --mixup-alpha, --cutmix-alpha, --srmix-alpha override for their
# method alone (timm's --mixup 0.8 --cutmix 1.0); the combined policy keeps each (combine).
# AdaptiveMix's distance is the MSE of the reference classification code.
# Unread: options of the GAN's extra D term, and the edge ramp only SRMix's box has; as flags
# here they would be recorded and change nothing.
_GAN_TERM = {"mode": Unread("gan train (the extra D term)"),
             "weight": Unread("gan train (the extra D term)")}
_NO_RAMP = {"smoothing": Unread("srmix (the edge ramp of its box)")}
OPTION_FIELDS: OptionFields = {
    "mixup": {**_MIX, **_GAN_TERM, **_NO_RAMP}, "cutmix": {**_MIX, **_GAN_TERM, **_NO_RAMP},
    "srmix": {**_MIX, **_GAN_TERM, "smoothing": "srmix_smoothing"},
    "adaptivemix": {"alpha": "am_alpha", "noise_std": "am_noise_std", "weight": "am_weight",
                    "mode": "am_mode", "distance": Fixed("mse"),
                    "g_shrink": Unread("gan train (G's shrinkage on its fakes)")},
    "pgd": {"eps": "eps", "steps": "adv_steps", "step_size": "adv_step_size"},
    "fgsm": {"eps": "eps", "step_size": "adv_step_size"},
    "free": {"eps": "eps", "step_size": "adv_step_size", "replays": "free_replays"},
}

# Options that may change when a run is resumed; the rest define the run and are fixed. The
# optimizer and schedule hyperparameters are here so that a diverged run can be resumed with a
# lower learning rate; they are applied to the restored optimizer and schedule
# (tasks.common.optim.load_optimizer_state).
RESUMABLE = ("log", "steps", "device", "workers", "eval_every", "ckpt_every", "keep_ckpts",
             "log_every", "lr", "min_lr", "momentum", "opt_eps", "opt_betas", "weight_decay",
             "warmup_steps", "warmup_lr", "clip_grad", "data_root")


@dataclass(kw_only=True)
class TrainOptions(TrainRunOptions):
    """``classify train``'s run flags: the trainers' own, with this program's words."""

    preset: str | None = run_option("preset", "one of " + ", ".join(sorted(PRESETS)),
                                    "none: the options' own defaults")
    out: str | None = run_option("out", default_help="runs/classify/<model>-<time>")
    resume: str | None = run_option("resume", resumable_detail(RESUMABLE))


# ------------------------------------------------------------------------------------------------
# classify eval

DEFAULT_N_ATTACK = 500
# The on-the-fly corruptions of the report: the 8 of the 15 benchmark ones available.
DEFAULT_CORRUPTIONS = tuple(c for c in CORRUPTIONS if c in BENCHMARK)


@dataclass(kw_only=True)
class EvalOptions(ModelOptions):
    """The options of ``robustrep classify eval`` (a run folder, or a model from elsewhere)."""

    run: str | None = _opt(None, "run folder written by `robustrep classify train` (or --model "
                                 "...)", positional=True, metavar="RUN",
                           check=refuse_file_run)
    attacks: list[str] = _opt(["autoattack"], "comma-separated: autoattack (standard version), "
                                              "apgd-ce, apgd-t, fab-t, square (one of its "
                                              "attacks alone), pgd (one per --pgd-steps), fgsm; "
                                              "'none' skips; `--attacks pgd` is quick (default: "
                                              "autoattack)", ATTACKS, nargs=None, nothing="none",
                              metavar="NAME,...")
    norm: str = _opt("Linf", "threat model, in any case (linf is Linf)", NORMS)
    eps: float | None = _opt(None, "radius in [0, 1] pixels (default 8/255 for Linf, 0.5 for L2; "
                                   "at most 1 for Linf, sqrt(C*H*W) for L2)", **POSITIVE)
    n_attack: int = _opt(DEFAULT_N_ATTACK, "attack the first N evaluation samples (AutoAttack is "
                                           "slow on a CPU); 0: all", **NONNEG)
    pgd_steps: list[int] = _opt([10, 20], "PGD step counts to run when --attacks has pgd",
                                nargs="*", min=1)
    pgd_step_size: float | None = _opt(None, "PGD step size (default 2.5 * eps / steps)",
                                       **POSITIVE)
    corruptions: list[str] = _opt(list(DEFAULT_CORRUPTIONS), "on-the-fly corruptions to apply "
                                                             "(none, or no name: skip)",
                                  CORRUPTIONS, nargs="*", nothing="none", metavar="NAME")
    cifar_c: str | None = _opt(None, "folder of the released CIFAR-10-C/CIFAR-100-C .npy files "
                                     "(cifar10/100 runs): accuracy per corruption and severity, "
                                     "mCE, relative mCE", metavar="ROOT")
    severities: list[int] = _opt(list(SEVERITIES), "corruption severities, 1..5 (on the fly "
                                 "and of the --cifar-c files)", SEVERITIES)
    # eval.json lists every bin (--bins 100000000 took 24 GB), and bins beyond the samples
    # evaluated (CIFAR's test set: 10,000) stay empty: ECE is then noise, not calibration
    bins: int = _opt(15, "ECE bins", min=1, max=10_000)
    max_samples: int | None = _opt(None, "evaluate the first N samples", min=1)
    batch_size: int = shared("batch_size")
    seed: int = shared("seed")
    no_ema: bool = shared("no_ema")
    device: str = shared("device")
    data_root: str | None = shared("data_root", default_help="the run's data_root")
    out: str | None = shared("out", default_help="RUN/eval; with --model a new "
                                                 "runs/eval/<model>-<time>")
    robustbench: str | None = _opt(None, "a RobustBench zoo model from its local model folder "
                                         "(--model-dir; robustbench from GitHub, README), on "
                                         "--dataset cifar10/cifar100", metavar="NAME")
    threat_model: str = _opt("Linf", "RobustBench threat model of --robustbench",
                             ("Linf", "L2", "corruptions"))
    model_dir: str = _opt("models", "RobustBench's local model folder (default: ./models, as "
                                    "RobustBench)")
    quiet: bool = shared("quiet")
