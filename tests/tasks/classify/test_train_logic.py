"""The classify program's training and evaluation logic computes the right numbers.

Soft targets follow the mix (lam = 1: the sample's own one-hot label; lam = 0: the partner's),
the attack closures of training and evaluation are the per-sample cross-entropy of the true label
and the attack raises it, and robust accuracy counts only samples right both clean and attacked.
"""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.adaptivemix import AdaptiveMix
from robustrep.adversarial import classifier_loss, fgsm, pgd
from robustrep.metrics import robust_accuracy
from robustrep.mixing import SampleMix, mixup_target
from robustrep.split import FeatureSplit
from robustrep.tasks.classify import eval_metrics
from robustrep.tasks.classify.task import ClassifyTask
from robustrep.tasks.classify.train import Trainer

K = 3


def linear_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, K))


def images(seed=1, n=6):
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(n, 3, 2, 2, generator=g)  # inside [0, 1] with room for eps
    return x, torch.randint(0, K, (n,), generator=g)


# --- soft targets ---------------------------------------------------------------------------


def test_soft_target_at_lam_one_is_own_label_and_at_lam_zero_the_partners():
    y = torch.tensor([0, 2, 1, 1])
    index = torch.tensor([1, 2, 3, 0])
    own, partner = F.one_hot(y, K).float(), F.one_hot(y[index], K).float()
    assert torch.equal(mixup_target(y, index, 1.0, K), own)
    assert torch.equal(mixup_target(y, index, 0.0, K), partner)
    lam = torch.tensor([1.0, 0.0, 0.25, 0.75])
    expected = lam[:, None] * own + (1 - lam[:, None]) * partner
    torch.testing.assert_close(mixup_target(y, index, lam, K), expected)
    # label smoothing 0.3 with K = 3: on = 0.8, off = 0.1, then the same mix
    smooth = mixup_target(y, index, 0.25, K, smoothing=0.3)
    # (row 0: own label 0, partner label 2)
    torch.testing.assert_close(smooth[0], torch.tensor([0.25 * 0.8 + 0.75 * 0.1, 0.1,
                                                        0.25 * 0.1 + 0.75 * 0.8]))


def test_task_mixup_loss_is_soft_ce_with_lam_on_the_own_label():
    # The program's ClassifyTask with a mixer: replay its draw, build the target by hand.
    model, (x, y) = linear_model(), images()
    task = ClassifyTask(model, K, mixer=SampleMix(kinds="mixup", per_sample=True))
    out = task(x, y, torch.Generator().manual_seed(4))
    mix = task.mixer(x, generator=torch.Generator().manual_seed(4))
    assert mix.lam.min() < 0.4 and mix.lam.max() > 0.6
    own, partner = F.one_hot(y, K).float(), F.one_hot(y[mix.index], K).float()
    target = mix.lam[:, None] * own + (1 - mix.lam[:, None]) * partner
    expected = -(target * F.log_softmax(model(mix.x), -1)).sum(1).mean()
    torch.testing.assert_close(out["loss"], expected)


def test_task_adaptivemix_reference_ce_weights_own_label_by_lam():
    torch.manual_seed(0)
    # A non-linear trunk, so the shrinkage term is not zero.
    split = FeatureSplit(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh()), nn.Linear(5, K))
    x, y = images()
    # a large weight so the shrinkage term counts at float32 tolerance
    am = AdaptiveMix(noise_std=0.0, distance="mse", per_sample=True, weight=1e4)
    task = ClassifyTask(split, K, feature_reg=am)
    out = task(x, y, torch.Generator().manual_seed(4))
    ref = am(split, x, generator=torch.Generator().manual_seed(4))
    lam, index = ref["lam"], ref["index"]
    assert lam.min() < 0.4 and lam.max() > 0.6
    ce = (lam * F.cross_entropy(ref["logits"], y, reduction="none")
          + (1 - lam) * F.cross_entropy(ref["logits"], y[index], reduction="none"))
    torch.testing.assert_close(out["loss/ce"], ce.mean())
    assert ref["loss"] > 1e-3
    torch.testing.assert_close(out["loss"], ce.mean() + ref["loss"])


def test_task_without_mixing_and_in_additive_mode_is_plain_ce_with_label_smoothing():
    model, (x, y) = linear_model(), images()
    out = ClassifyTask(model, K, label_smoothing=0.2)(x, y)
    expected = F.cross_entropy(model(x), y, label_smoothing=0.2)
    torch.testing.assert_close(out["loss"], expected)
    torch.testing.assert_close(out["loss/ce"], expected)
    torch.testing.assert_close(out["logits"], model(x))
    torch.manual_seed(0)
    split = FeatureSplit(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh()), nn.Linear(5, K))
    am = AdaptiveMix(noise_std=0.0, distance="mse", mode="additive")
    out = ClassifyTask(split, K, 0.2, feature_reg=am)(x, y, torch.Generator().manual_seed(1))
    ce = F.cross_entropy(split(x), y, label_smoothing=0.2)
    torch.testing.assert_close(out["loss/ce"], ce)
    torch.testing.assert_close(out["loss"], ce + out["adaptivemix/loss"])
    assert {"adaptivemix/shrink", "adaptivemix/lam"} <= set(out)


def test_task_mixup_target_uses_label_smoothing():
    model, (x, y) = linear_model(), images()
    task = ClassifyTask(model, K, label_smoothing=0.3, mixer=SampleMix(kinds="mixup"))
    out = task(x, y, torch.Generator().manual_seed(4))
    mix = task.mixer(x, generator=torch.Generator().manual_seed(4))
    target = mixup_target(y, mix.index, mix.lam, K, smoothing=0.3)
    expected = -(target * F.log_softmax(model(mix.x), -1)).sum(1).mean()
    torch.testing.assert_close(out["loss"], expected)
    assert {"loss/ce", "mix/lam", "logits"} <= set(out)


# --- attack closures ------------------------------------------------------------------------


def train_closure(model, y):
    stub = SimpleNamespace(model=model, device=torch.device("cpu"), cfg=SimpleNamespace(amp="off"))
    return Trainer._attack_loss(stub, y)


CLOSURES = {"train": train_closure, "library": classifier_loss}


@pytest.mark.parametrize("where", CLOSURES)
def test_attack_closure_is_per_sample_ce_of_the_true_label(where):
    model, (x, y) = linear_model(), images()
    loss = CLOSURES[where](model, y)(x)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y, reduction="none"))


@pytest.mark.parametrize("attack", ["pgd", "fgsm"])
@pytest.mark.parametrize("where", CLOSURES)
def test_attack_with_the_closure_raises_every_samples_true_label_ce(where, attack):
    # CE of a linear model is convex in x, so an unclamped signed step along its gradient
    # raises it on every sample.
    model, (x, y) = linear_model(), images()
    loss_fn = CLOSURES[where](model, y)
    if attack == "pgd":
        x_adv = pgd(loss_fn, x, 0.1, steps=3, random_start=False, model=model)
    else:
        x_adv = fgsm(loss_fn, x, 0.1, model=model)
    with torch.no_grad():
        before = F.cross_entropy(model(x), y, reduction="none")
        after = F.cross_entropy(model(x_adv), y, reduction="none")
    assert bool((after > before + 1e-4).all())


# --- robust accuracy ------------------------------------------------------------------------


class Wavy(nn.Module):
    """Two classes; the class-1 logit is ``cos(2 pi t / 0.4)`` of the input value ``t``.

    The cosine makes the attack overshoot: from ``t = 0.15`` (class 1 wrong) one FGSM step of
    0.2 along the CE gradient lands at ``t = 0.35``, where class 1 is right again. A robust
    accuracy that forgot the clean check would count that sample.
    """

    def forward(self, x):
        t = x.flatten(1).mean(1)
        return torch.stack([torch.zeros_like(t), torch.cos(2 * math.pi * t / 0.4)], 1)


def wavy_data():
    # t = 0.0: right clean, zero gradient, right attacked      -> robust
    # t = 0.05: right clean (cos 45 deg), wrong at t = 0.25     -> not robust
    # t = 0.15: wrong clean (cos 135 deg), right at t = 0.35    -> not robust (already wrong)
    t = torch.tensor([0.0, 0.05, 0.15])
    return [(t.view(-1, 1, 1, 1), torch.tensor([1, 1, 1]))]


def test_wavy_model_behaves_as_designed():
    (x, y), = wavy_data()
    model = Wavy()
    clean = model(x).argmax(1) == y
    x_adv = fgsm(classifier_loss(model, y), x, 0.2)
    attacked = model(x_adv).argmax(1) == y
    assert clean.tolist() == [True, True, False]
    assert attacked.tolist() == [True, False, True]


def test_robust_accuracy_counts_only_samples_right_clean_and_attacked():
    model = Wavy()
    result = robust_accuracy(model, wavy_data(), attack="fgsm", eps=0.2)
    assert result.clean_acc == pytest.approx(2 / 3)
    assert result.robust_acc == pytest.approx(1 / 3)
    assert result.robust.tolist() == [True, False, False]  # the third is right only attacked


def test_eval_report_robust_accuracy_is_at_most_clean_accuracy():
    report = eval_metrics.evaluate_model(Wavy(), wavy_data(), "cpu", eps=0.2, attacks=("fgsm",),
                                         corruptions=())
    summary = report["summary"]
    assert summary["clean_acc"] == pytest.approx(2 / 3)
    assert summary["fgsm_acc"] == pytest.approx(1 / 3)
    assert summary["fgsm_acc"] <= summary["clean_acc"]


# --- the regularizers the config builds, and the adversarial inputs of a step ---------------


def test_build_task_passes_the_configs_options_to_the_core():
    from robustrep.tasks.classify.task import build_task

    from .conftest import tiny_config
    task = build_task(tiny_config(reg="mixup,srmix", mix_alpha=0.4, mix_prob=0.7,
                                  mix_switch_prob=0.2, srmix_smoothing=0.3, label_smoothing=0.1),
                      linear_model(), K)
    assert repr(task.mixer) == ("SampleMix(kinds=('mixup', 'srmix'), alpha=0.4, prob=0.7, "
                                "switch_prob=0.2, per_sample=False, partner='permutation', "
                                "smoothing=0.3)")
    assert task.feature_reg is None and task.num_classes == K and task.label_smoothing == 0.1
    cut = build_task(tiny_config(reg="cutmix"), model := linear_model(), K)
    assert cut.model is model and cut.mixer.smoothing == 0.1  # the core's default smoothing
    task = build_task(tiny_config(reg="adaptivemix", am_alpha=0.5, am_noise_std=0.2,
                                  am_weight=3.0, am_mode="additive"), linear_model(), K)
    assert repr(task.feature_reg) == (
        "AdaptiveMix(alpha=0.5, noise_std=0.2, distance='mse', mode='additive', weight=3.0, "
        "per_sample=False, partner='permutation', fuse_passes=False, g_shrink=True)")
    assert task.mixer is None
    plain = build_task(tiny_config(reg="none"), linear_model(), K)
    assert plain.mixer is None and plain.feature_reg is None


def _adversarial_reg(name, cfg):
    """What the trainer builds for ``--reg name`` from ``cfg``'s options (its OPTION_FIELDS)."""
    from robustrep.registry import create_regularizer
    from robustrep.tasks.classify.config import OPTION_FIELDS
    if name is None:
        return None
    return create_regularizer(name, **{k: getattr(cfg, f) for k, f in OPTION_FIELDS[name].items()})


def test_adversarial_inputs_keep_batchnorm_statistics_and_free_attaches():
    from robustrep.free import FreePerturbation
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, K))
    x, y = images()
    before = model[1].running_mean.clone()
    for adv in ("pgd", "fgsm"):
        cfg = SimpleNamespace(amp="off", eps=0.1, adv_step_size=None, adv_steps=2)
        stub = SimpleNamespace(model=model, device=torch.device("cpu"), cfg=cfg,
                               adv=_adversarial_reg(adv, cfg), gen=torch.Generator().manual_seed(9))
        stub._attack_loss = lambda yy: Trainer._attack_loss(stub, yy)
        Trainer._adversarial(stub, x, y)
        assert torch.equal(model[1].running_mean, before)
    free = FreePerturbation(0.1)
    free.delta = torch.full_like(x, 0.05)
    stub = SimpleNamespace(adv=free, cfg=None, gen=None, model=model)
    stub._attack_loss = lambda yy: None
    got = Trainer._adversarial(stub, x, y)
    assert got.requires_grad
    torch.testing.assert_close(got.detach(), x + 0.05)


class _CarelessAttack:
    """A plugin attack that runs the model in train mode and keeps nothing itself."""

    replays = 1

    def adversarial_inputs(self, loss_fn, x, generator=None, *, model=None):
        loss_fn(x + 0.5).sum()
        model.train()(x + 0.5)  # the model it is handed, in train mode: BatchNorm would move
        return x + 0.1

    def after_backward(self, x_adv):
        pass


def test_a_plugin_attack_cannot_move_batchnorm_statistics():
    """The README's promise holds for any attack, not only the built-ins that keep them."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, K))
    x, y = images()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stub = SimpleNamespace(model=model, device=torch.device("cpu"), cfg=SimpleNamespace(amp="off"),
                           adv=_CarelessAttack(), gen=None)
    stub._attack_loss = lambda yy: Trainer._attack_loss(stub, yy)
    torch.testing.assert_close(Trainer._adversarial(stub, x, y), x + 0.1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("adv", ["pgd", "fgsm", None])
def test_adversarial_inputs_are_the_cores_attack_on_the_true_label(adv):
    model, (x, y) = linear_model(), images()
    cfg = SimpleNamespace(amp="off", eps=0.1, adv_step_size=0.04, adv_steps=3)
    stub = SimpleNamespace(model=model, device=torch.device("cpu"), cfg=cfg,
                           adv=_adversarial_reg(adv, cfg), gen=torch.Generator().manual_seed(9))
    stub._attack_loss = lambda yy: Trainer._attack_loss(stub, yy)
    got = Trainer._adversarial(stub, x, y)
    loss_fn = classifier_loss(model, y)
    gen = torch.Generator().manual_seed(9)
    if adv == "pgd":
        expected = pgd(loss_fn, x, 0.1, step_size=0.04, steps=3, random_start=True, generator=gen)
    elif adv == "fgsm":
        expected = fgsm(loss_fn, x, 0.1, random_start=True, step_size=0.04, generator=gen)
    else:
        expected = x
    torch.testing.assert_close(got, expected)
    if adv is not None:
        assert (got - x).abs().max() > 0.01


# --- the step's remaining wiring --------------------------------------------------------------


def test_attack_closure_runs_the_forward_under_the_runs_autocast():
    # --amp bf16: the attack must see the bf16 forward the training loss sees, not an fp32 one.
    model, (x, y) = linear_model(), images()
    stub = SimpleNamespace(model=model, device=torch.device("cpu"), cfg=SimpleNamespace(amp="bf16"))
    loss = Trainer._attack_loss(stub, y)(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(loss, F.cross_entropy(logits.float(), y, reduction="none"))
    assert not torch.allclose(loss, F.cross_entropy(model(x), y, reduction="none"), atol=1e-5)


def test_additive_adaptivemix_returns_the_clean_logits():
    torch.manual_seed(0)
    split = FeatureSplit(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh()), nn.Linear(5, K))
    x, y = images()
    am = AdaptiveMix(noise_std=0.0, mode="additive")
    out = ClassifyTask(split, K, feature_reg=am)(x, y, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out["logits"], split(x))  # accuracy is read from these


def test_task_refuses_mixing_and_adaptivemix_together():
    with pytest.raises(ValueError,
                       match="^use either input mixing or a feature regularizer, not both$"):
        ClassifyTask(linear_model(), K, mixer=SampleMix(), feature_reg=AdaptiveMix())


def test_a_bf16_cpu_divergence_advises_amp_off_first():
    # torch's CPU bf16 conv backward gives non-finite gradients now and then: a lower lr does
    # not help that, so the advice leads with --amp off there
    from robustrep.tasks.classify.train import Trainer
    advice = Trainer.advice.fget
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert advice(SimpleNamespace(cfg=SimpleNamespace(amp="bf16"), device=cpu)).startswith(
        "--amp off (torch's bf16 convolution backward on a CPU")
    for amp, device in (("off", cpu), ("bf16", cuda)):
        assert advice(SimpleNamespace(cfg=SimpleNamespace(amp=amp), device=device)) == \
            "a lower --lr (or --amp off)"
