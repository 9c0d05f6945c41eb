import math

import pytest
import torch

from robustrep.tasks.classify.config import ClassifyConfig, parse_regularizers
from robustrep.tasks.classify.train import train
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.rundir import RunDir

from .conftest import tiny_config

REGS = ["none", "mixup", "cutmix", "srmix", "adaptivemix", "pgd", "fgsm", "free",
        "mixup,cutmix", "mixup,pgd", "adaptivemix,fgsm", "srmix,free"]


@pytest.mark.parametrize("reg", REGS)
def test_each_regularizer_trains_with_finite_loss(tmp_path, reg):
    cfg = tiny_config(reg=reg, label_smoothing=0.1)
    train(cfg, tmp_path / "run", quiet=True)
    records = [r for r in RunDir(tmp_path / "run").read_metrics() if "loss" in r]
    assert [r["step"] for r in records] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in records)
    if reg == "adaptivemix":
        assert all(math.isfinite(r["adaptivemix/shrink"]) for r in records)


def _final_weights(path):
    state = torch.load(path / "checkpoints" / "latest.pt", weights_only=False)
    return state


@pytest.mark.parametrize("reg,extra", [("mixup,fgsm", {"ema_decay": 0.9, "augment": True}),
                                       ("free", {"free_replays": 2})])
def test_resume_equals_uninterrupted(tmp_path, reg, extra):
    cfg = dict(reg=reg, steps=4, ckpt_every=2, **extra)
    train(tiny_config(**cfg), tmp_path / "a", quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=2, quiet=True)
    assert _final_weights(tmp_path / "b")["step"] == 2
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    assert a["step"] == b["step"] == 4
    for part in ("model", "ema"):
        if a[part] is None:
            continue
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"
    losses = [[r["loss"] for r in RunDir(p).read_metrics() if "loss" in r]
              for p in (tmp_path / "a", tmp_path / "b")]
    assert losses[0] == losses[1]


def test_another_runs_checkpoint_copied_in_is_refused(tmp_path, capsys):
    # Was: a mixup, seed-5 checkpoint resumed in a reg-none run and was recorded as reg none
    import shutil

    from robustrep.tasks.cli import main
    train(tiny_config(steps=4, ckpt_every=2), tmp_path / "base", stop_after=2, quiet=True)
    train(tiny_config(steps=4, ckpt_every=2, reg="mixup", seed=5), tmp_path / "mix",
          stop_after=2, quiet=True)
    shutil.copy(tmp_path / "mix" / "checkpoints" / "latest.pt",
                tmp_path / "base" / "checkpoints" / "latest.pt")
    assert main(["classify", "train", "--resume", str(tmp_path / "base"), "--quiet"]) == 2
    err = capsys.readouterr().err
    # its own step file beside it: another run's, not an edited config.json ("restore config.json")
    latest = tmp_path / "base" / "checkpoints" / "latest.pt"
    assert err == (f"robustrep classify train: error: checkpoint {latest} was saved by another "
                   f"run (reg 'mixup' (config.json: 'none'); seed 5 (config.json: 0)), not by "
                   f"{tmp_path / 'base'}: copy {latest.parent / 'step_00000002.pt'} over "
                   f"{latest} to resume from it\n")


def test_a_classify_run_edited_or_stopped_before_a_checkpoint_resumes_as_said(tmp_path, capsys):
    """An lr edited into config.json by hand went on without a note (resumes.json: nothing
    changed); a run stopped before its first checkpoint was told no way to start again."""
    import json

    from robustrep.tasks.cli import main
    run = tmp_path / "run"
    train(tiny_config(steps=4, ckpt_every=2), run, stop_after=2, quiet=True)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "lr": 3.0}))
    assert main(["classify", "train", "--resume", str(run), "--stop-after", "3", "--quiet"]) == 0
    assert json.loads((run / "resumes.json").read_text()) == [
        {"step": 2, "changed": {"lr": {"old": config["lr"], "new": 3.0}}}]
    assert f"resumed at step 2 with lr {config['lr']!r} -> 3.0 (" in capsys.readouterr().err
    for made in (*(run / "checkpoints").iterdir(), run / "resumes.json"):  # as if killed early
        made.unlink()
    assert main(["classify", "train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robustrep classify train: error: cannot resume {run}: no checkpoint "
                          f"at {run}/checkpoints/latest.pt; it was stopped before its first "
                          f"checkpoint (--ckpt-every 2): start it again with the command that "
                          f"started it, or with --config ")
    assert main(["classify", "train", *err.split("or with ")[1].split(), "--quiet"]) == 0


def test_a_resume_needs_no_longer_the_weights_file_it_started_from(tmp_path):
    # Was: the run was rebuilt from --pretrained-file before its checkpoint was loaded, so a
    # file moved or deleted since made the run impossible to resume
    import timm
    weights = tmp_path / "w.pth"
    torch.save(timm.create_model("test_resnet", num_classes=3).state_dict(), weights)
    cfg = dict(steps=4, ckpt_every=2, pretrained_file=str(weights))
    train(tiny_config(**cfg), tmp_path / "a", quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=2, quiet=True)
    weights.unlink()
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())


def test_a_run_killed_after_its_final_checkpoint_logs_its_final_evaluation_once(tmp_path):
    # Was: resumed at its last step (finished.json not yet written), it evaluated again and
    # metrics.jsonl held two final evaluations
    run = tmp_path / "run"
    train(tiny_config(steps=4, ckpt_every=2), run, quiet=True)
    before = (run / "metrics.jsonl").read_text()
    (run / "finished.json").unlink()  # the kill came just before the marker
    last = train(tiny_config(steps=4, ckpt_every=2), run, resume=True, quiet=True)
    assert (run / "metrics.jsonl").read_text() == before and (run / "finished.json").is_file()
    assert last["step"] == 4 and "eval/acc" in last


def test_existing_run_needs_resume(tmp_path, trained_run):
    with pytest.raises(RunFolderError, match="--resume"):
        train(tiny_config(), trained_run, quiet=True)


def test_regularizer_names_and_combinations_are_checked():
    assert parse_regularizers("mixup, PGD") == ["mixup", "pgd"]
    assert parse_regularizers("mixup+cutmix") == ["mixup", "cutmix"]
    with pytest.raises(ConfigError, match="^--reg: regularizers 'mixup,none' combine none with "):
        parse_regularizers("mixup,none")  # was read as mixup alone
    with pytest.raises(ConfigError, match="--reg: unknown regularizer 'mixpu' for classify; "
                                          "valid: none, adaptivemix, cutmix, fgsm, free"):
        ClassifyConfig(reg="mixpu")
    with pytest.raises(ConfigError, match=r"same place \(adversarial inputs\)"):
        ClassifyConfig(reg="pgd,fgsm")
    with pytest.raises(ConfigError, match=r"combine adaptivemix \(feature shrinkage\) with cutmix"):
        ClassifyConfig(reg="adaptivemix,cutmix")
    # was accepted: one mixing kind has nothing to switch to
    with pytest.raises(ConfigError, match=r"^--mix-switch-prob applies only with two mixing "
                                          r"methods in --reg, e.g. mixup,cutmix \(reg is "
                                          r"'mixup'\); drop it"):
        ClassifyConfig(reg="mixup", mix_switch_prob=0.3)
    assert ClassifyConfig(reg="mixup,cutmix", mix_switch_prob=0.3).mix_switch_prob == 0.3


@pytest.mark.parametrize("mode", ["reference", "additive"])
def test_adaptivemix_cross_entropy_matches_its_logits(mode):
    """Reference mode: mixed CE on h(z_lin) + h(f(x_mix)); additive: plain CE on clean logits."""
    import torch.nn.functional as F

    from robustrep.adaptivemix import AdaptiveMix
    from robustrep.tasks.common.classifier import create_classifier
    from robustrep.tasks.classify.task import ClassifyTask

    torch.manual_seed(0)
    model = create_classifier("test_resnet", 3, in_chans=1)
    task = ClassifyTask(model, 3, feature_reg=AdaptiveMix(distance="mse", mode=mode))
    x, y = torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    out = task(x, y, torch.Generator().manual_seed(1))
    if mode == "additive":
        assert torch.allclose(out["loss/ce"], F.cross_entropy(model(x), y), atol=1e-5)
    else:
        redo = AdaptiveMix(distance="mse", mode=mode)(model, x, torch.Generator().manual_seed(1))
        lam, idx = redo["lam"], redo["index"]
        ce = (lam * F.cross_entropy(redo["logits"], y, reduction="none")
              + (1 - lam) * F.cross_entropy(redo["logits"], y[idx], reduction="none")).mean()
        assert torch.allclose(out["loss/ce"], ce, atol=1e-5)
    assert torch.allclose(out["loss"], out["loss/ce"] + out["adaptivemix/shrink"], atol=1e-6)


def test_the_logged_lr_is_the_one_its_step_used(tiny_cfg, tmp_path, monkeypatch):
    # was: the lr of the next update (the schedule had already moved): step 1 of a 2-step
    # warm-up logged the full lr, and the last step of a cosine logged 0, which no update used
    import json
    from robustrep.tasks.classify.train import train
    used, step = [], torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    train(tiny_cfg(steps=5, warmup_steps=2, lr=0.1, log_every=1, eval_every=0), tmp_path / "r",
          quiet=True)
    logged = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").open()]
    lrs = [r["lr"] for r in logged if "lr" in r]
    assert len(used) == 5 and lrs == used and used[0] == pytest.approx(0.05) and used[-1] > 0


def _opt_lrs(cfg, steps):
    from robustrep.tasks.classify.optim import build_optimizer
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    opt, sched = build_optimizer(cfg, model)
    lrs = []
    for t in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step_update(t + 1)
    return model, opt, lrs


def test_cosine_schedule_over_all_steps_with_linear_warmup():
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=10, lr=0.1), 11)
    assert lrs == pytest.approx([0.05 * (1 + math.cos(math.pi * t / 10)) for t in range(10)]
                                + [0.0])
    # warm-up from lr / warmup_steps to lr, then the cosine at the same step as without it
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=10, lr=0.1, warmup_steps=2), 4)
    assert lrs == pytest.approx([0.05, 0.075, 0.05 * (1 + math.cos(math.pi * 0.2)),
                                 0.05 * (1 + math.cos(math.pi * 0.3))])
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=10, lr=0.1, schedule="constant"), 10)
    assert lrs == pytest.approx([0.1] * 10)


@pytest.mark.parametrize("optimizer, momentum, kind, nesterov",
                         [("sgd", 0.9, torch.optim.SGD, True), ("sgd", 0.0, torch.optim.SGD, False),
                          ("adamw", None, torch.optim.AdamW, None)])
def test_optimizer_and_no_weight_decay_on_biases_and_norms(optimizer, momentum, kind, nesterov):
    model, opt, _ = _opt_lrs(ClassifyConfig(optimizer=optimizer, momentum=momentum,
                                            weight_decay=0.01), 1)
    assert type(opt) is kind
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay[id(model[0].weight)] == 0.01
    assert decay[id(model[0].bias)] == decay[id(model[1].weight)] == 0.0
    if nesterov is not None:
        assert opt.param_groups[0]["nesterov"] is nesterov
        assert opt.param_groups[0]["momentum"] == momentum


def test_multistep_schedule_multiplies_by_decay_at_each_milestone():
    # the UoS recipe: x0.2 at 30%, 60% and 80% of training, from the milestone's own step on
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=100, schedule="multistep", lr=1.0), 100)
    got = {s: lrs[s] for s in (0, 29, 30, 59, 60, 79, 80, 99)}
    assert got == pytest.approx({0: 1, 29: 1, 30: 0.2, 59: 0.2, 60: 0.04, 79: 0.04, 80: 0.008,
                                 99: 0.008})
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=100, schedule="multistep", milestones=[0.5],
                                        lr_decay=0.1, lr=1.0), 51)
    assert (lrs[49], lrs[50]) == pytest.approx((1.0, 0.1))
    for bad in ([0.6, 0.3], [1.2], []):
        with pytest.raises(ConfigError, match="milestones"):
            _opt_lrs(ClassifyConfig(steps=100, schedule="multistep", milestones=bad), 1)


def test_interruption_changes_no_record_and_the_clock_goes_on(tmp_path):
    """--stop-after between two logs: the resumed run logs the means the uninterrupted run logs
    (the sums since the last log travel in the checkpoint), no extra record at the stop, and the
    records' wall clock continues instead of starting again at 0."""
    cfg = dict(steps=6, log_every=3, ckpt_every=0, eval_every=0)
    train(tiny_config(**cfg), tmp_path / "a", quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=2, quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    runs = [RunDir(tmp_path / p).read_metrics() for p in ("a", "b")]
    losses = [[(r["step"], r["loss"]) for r in records if "loss" in r] for records in runs]
    assert [s for s, _ in losses[1]] == [3, 6]
    assert losses[0] == losses[1]
    times = [r["time"] for r in runs[1]]
    assert times == sorted(times)


def test_a_later_mixing_methods_draw_options_are_refused(capsys):
    # Was: --reg mixup,cutmix --cutmix-per-sample true --cutmix-partner flip was accepted (and
    # recorded) while the policy drew per batch with permuted partners, mixup's settings
    from robustrep.tasks.classify.task import build_regularizers
    from robustrep.tasks.cli import main
    cfg = tiny_config(reg="mixup,cutmix", reg_options={"cutmix": {"per_sample": True}})
    with pytest.raises(ConfigError, match=r"^reg_options: cutmix's per_sample would not act: "
                                          r"mixup,cutmix mix as one policy, which draws with the "
                                          r"first listed method's settings; set them on mixup$"):
        build_regularizers(cfg)
    policy = build_regularizers(tiny_config(reg="mixup,cutmix", reg_options={
        "mixup": {"per_sample": True, "partner": "flip"}}))["input mixing"]
    assert (policy.per_sample, policy.partner) == (True, "flip")
    assert main(["classify", "train", "--model", "test_resnet", "--dry-run", "--reg",
                 "mixup,cutmix", "--cutmix-partner", "flip"]) == 2
    assert "cutmix's partner would not act" in capsys.readouterr().err


def test_cosine_decays_to_min_lr():
    # timm's cosine with lr_min: lr_min + (lr - lr_min) (1 + cos(pi t / T)) / 2
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=10, lr=0.1, min_lr=0.01), 11)
    assert lrs == pytest.approx([0.01 + 0.045 * (1 + math.cos(math.pi * t / 10))
                                 for t in range(10)] + [0.01])
    with pytest.raises(ConfigError, match="--min-lr 0.2 is not below --lr 0.1"):
        ClassifyConfig(lr=0.1, min_lr=0.2)
    with pytest.raises(ConfigError, match="min-lr.*cosine"):
        ClassifyConfig(schedule="constant", min_lr=0.01)


def _update(tmp_path, name, **cfg):
    """The weights after one update of test_convnext (LayerNorm, no BatchNorm: the gradient of
    a batch is then the mean of its halves' gradients)."""
    train(tiny_config(model="test_convnext", image_size=32, steps=1, lr=0.5, **cfg),
          tmp_path / name, quiet=True)
    return _final_weights(tmp_path / name)["model"]


def test_grad_accum_sums_the_gradients_of_its_batches_into_one_update(tmp_path):
    # batches 0 and 1 of 4 samples are the first 8 samples of the epoch's permutation, which
    # one batch of 8 reads: the same update
    whole = _update(tmp_path, "whole", batch_size=8)
    halves = _update(tmp_path, "halves", batch_size=4, grad_accum=2)
    first = _update(tmp_path, "first", batch_size=4)
    for key, value in whole.items():
        if value.is_floating_point():
            torch.testing.assert_close(halves[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert any(not torch.allclose(first[k], v) for k, v in whole.items()
               if v.is_floating_point())  # one batch of 4 alone is another update
    logged = [r for r in RunDir(tmp_path / "halves").read_metrics() if "loss" in r]
    assert [r["step"] for r in logged] == [1]


def test_grad_accum_resume_equals_uninterrupted(tmp_path):
    cfg = dict(steps=4, ckpt_every=2, grad_accum=2, batch_size=4)
    train(tiny_config(**cfg), tmp_path / "a", quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=2, quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key


def test_grad_accum_refuses_free_adversarial_training():
    from robustrep.tasks.classify.task import build_regularizers
    with pytest.raises(ConfigError, match="--grad-accum 2: --reg free replays each batch 4"):
        build_regularizers(tiny_config(reg="free", grad_accum=2))


def test_drop_path_reaches_the_model_and_a_model_without_it_is_refused(tmp_path):
    from timm.layers import DropPath

    from robustrep.tasks.classify.train import Trainer
    from robustrep.tasks.common import distributed as dist
    trainer = Trainer(tiny_config(model="test_convnext", image_size=32, drop_path=0.2),
                      RunDir(tmp_path / "r"), dist.init_distributed("cpu"))
    rates = [m.drop_prob for m in trainer.model.modules() if isinstance(m, DropPath)]
    assert rates and max(rates) == pytest.approx(0.2)  # timm's linear ramp ends at the rate
    with pytest.raises(ValueError, match="--drop-path: model 'wrn16_2' takes no drop_path_rate"):
        Trainer(tiny_config(model="wrn16_2", drop_path=0.2), RunDir(tmp_path / "w"),
                dist.init_distributed("cpu"))
    assert not (tmp_path / "w").exists()


def _vit(**cfg):
    from robustrep.tasks.classify.optim import build_optimizer
    from robustrep.tasks.common.classifier import create_classifier
    model = create_classifier("test_vit", 3, 3, image_size=32)
    config = ClassifyConfig(model="test_vit", weight_decay=0.05, **cfg)
    return model, config, build_optimizer


def _no_decay(model, opt):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}


def test_a_vits_pos_embed_and_cls_token_take_no_weight_decay_as_in_timm():
    """timm's train.py groups the bare model, whose no_weight_decay() names them; grouping the
    Classifier wrapper hid it (timm would find no such method there)."""
    model, cfg, build_optimizer = _vit()
    opt, _ = build_optimizer(cfg, model)
    assert {"model.pos_embed", "model.cls_token"} <= _no_decay(model, opt)
    legacy, _ = build_optimizer(cfg, model, timm_names=False)
    assert "model.pos_embed" not in _no_decay(model, legacy)


def test_a_run_saved_with_the_wrappers_grouping_resumes_with_it(tmp_path):
    from robustrep.tasks.classify.optim import build_optimizer
    from robustrep.tasks.classify.train import Trainer
    from robustrep.tasks.common import distributed as dist
    trainer = Trainer(tiny_config(model="test_vit", image_size=32, weight_decay=0.05),
                      RunDir(tmp_path / "r"), dist.init_distributed("cpu"))
    state = trainer.state_dict()
    state["optimizer"] = build_optimizer(trainer.cfg, trainer.model, timm_names=False)[0] \
        .state_dict()
    trainer.load_state_dict(state)
    assert "model.pos_embed" not in _no_decay(trainer.model, trainer.opt)
    assert trainer.sched.optimizer is trainer.opt


def test_layer_decay_scales_each_blocks_lr_from_the_head_down():
    model, cfg, build_optimizer = _vit(layer_decay=0.5, lr=1.0, schedule="constant")
    opt, sched = build_optimizer(cfg, model)
    sched.step_update(0)
    names = {id(p): n for n, p in model.named_parameters()}
    lr = {names[id(p)]: g["lr"] for g in opt.param_groups for p in g["params"]}
    depth = len(model.model.blocks)  # timm: embeddings 0, blocks 1..depth, head depth + 1
    assert lr["model.head.weight"] == pytest.approx(1.0)
    assert lr["model.blocks.0.attn.qkv.weight"] == pytest.approx(0.5 ** depth)
    assert lr["model.patch_embed.proj.weight"] == pytest.approx(0.5 ** (depth + 1))


def test_any_timm_optimizer_by_name_and_a_name_timm_lacks_refused():
    from timm.optim import Lamb

    from robustrep.tasks.classify.optim import build_optimizer
    model = torch.nn.Linear(2, 3)
    assert type(build_optimizer(ClassifyConfig(optimizer="lamb"), model)[0]) is Lamb
    with pytest.raises(ConfigError, match="--optimizer nope: timm cannot build it"):
        build_optimizer(ClassifyConfig(optimizer="nope"), model)


def test_the_logged_lr_is_the_mean_over_the_groups_with_layer_decay(tiny_cfg, tmp_path,
                                                                      monkeypatch):
    used, step = [], torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        lrs = [g["lr"] for g in self.param_groups]
        assert len(set(lrs)) > 1  # the layers' lrs differ
        used.append(sum(lrs) / len(lrs))
        return step(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    train(tiny_cfg(steps=2, layer_decay=0.5, log_every=1), tmp_path / "r", quiet=True)
    lrs = [r["lr"] for r in RunDir(tmp_path / "r").read_metrics() if "lr" in r]
    assert lrs == pytest.approx(used) and len(used) == 2


def test_a_second_order_optimizer_is_refused_and_names_are_lowered():
    # adahessian's step needs backward(create_graph=True): it crashed after the run folder
    from robustrep.tasks.classify.optim import build_optimizer
    with pytest.raises(ConfigError, match="--optimizer adahessian is a second-order"):
        build_optimizer(ClassifyConfig(optimizer="adahessian"), torch.nn.Linear(2, 3))
    cfg = ClassifyConfig(optimizer="SGD")  # timm lowers its names: the config says what ran
    assert cfg.optimizer == "sgd" and cfg.momentum == 0.9


def test_a_dry_run_leaves_a_gpu_only_optimizer_to_the_gpu(capsys):
    from robustrep.tasks.cli import main
    # fusedlamb needs CUDA (and apex): the dry run checks the config, not this CPU machine
    assert main(["classify", "train", "--optimizer", "fusedlamb", "--device", "cuda",
                 "--dry-run"]) == 0
    assert main(["classify", "train", "--optimizer", "fusedlamb", "--device", "cpu",
                 "--dry-run"]) == 2
    assert "--optimizer fusedlamb: timm cannot build it" in capsys.readouterr().err


# timm train.py's --opt-eps, --opt-betas, --momentum and --warmup-lr, against timm's own
# factories as train.py calls them (optimizer_kwargs, scheduler_kwargs of its argparse options)

def _hparams(opt):
    """The param groups' hyperparameters, less the schedule's lr (``initial_lr``, and ``lr``
    times timm's ``lr_scale`` once a schedule is on); betas as a tuple (timm's train.py passes
    its argparse list)."""
    from robustrep.tasks.common.optim import optimizer_hparams
    return [{k: tuple(v) if k == "betas" else v for k, v in g.items()
             if k not in ("lr", "initial_lr")} for g in optimizer_hparams(opt)]


@pytest.mark.parametrize("optimizer, given", [
    ("adamw", dict(opt_eps=1e-6, opt_betas=[0.8, 0.95])),
    ("lamb", dict(opt_betas=[0.85, 0.9])),
    ("rmsprop", dict(momentum=0.5, opt_eps=1e-3)),
    ("momentum", dict(momentum=0.7)),
    ("adan", dict(opt_betas=[0.9, 0.8, 0.95], opt_eps=1e-5)),
    ("lookahead_adamw", dict(opt_betas=[0.7, 0.9])),
    ("lars", dict(momentum=0.6, layer_decay=0.5)),
])
def test_the_optimizer_equals_timms_train_py_with_the_same_options(optimizer, given):
    from argparse import Namespace

    from timm.optim import create_optimizer_v2, optimizer_kwargs
    model, cfg, build_optimizer = _vit(optimizer=optimizer, lr=0.01, **given)
    opt, _ = build_optimizer(cfg, model)
    # timm train.py's options; its --momentum defaults to 0.9, as create_optimizer_v2's
    args = Namespace(opt=optimizer, lr=0.01, weight_decay=0.05, momentum=cfg.momentum or 0.9,
                     opt_eps=cfg.opt_eps, opt_betas=cfg.opt_betas, layer_decay=cfg.layer_decay)
    timms = create_optimizer_v2(model.model, **optimizer_kwargs(args))
    assert type(opt) is type(timms)
    assert _hparams(opt) == _hparams(timms)
    assert [g["initial_lr"] for g in opt.param_groups] == [g["lr"] for g in timms.param_groups]
    group = opt.param_groups[0]
    for field, key in (("momentum", "momentum"), ("opt_eps", "eps"), ("opt_betas", "betas")):
        if given.get(field) is not None:  # what was asked is what the optimizer holds
            want = given[field]
            assert group[key] == (tuple(want) if isinstance(want, list) else want)


def test_options_not_given_leave_timms_defaults():
    from timm.optim import create_optimizer_v2
    for optimizer in ("adamw", "rmsprop", "lion"):
        model, cfg, build_optimizer = _vit(optimizer=optimizer, lr=0.01)
        # the config records the momentum timm passes (0.9) where the optimizer takes one
        momentum = 0.9 if optimizer == "rmsprop" else None
        assert (cfg.momentum, cfg.opt_eps, cfg.opt_betas) == (momentum, None, None)
        timms = create_optimizer_v2(model.model, opt=optimizer, lr=0.01, weight_decay=0.05)
        built = build_optimizer(cfg, model)[0]
        assert _hparams(built) == _hparams(timms)
        assert built.param_groups[0].get("momentum") == cfg.momentum  # what ran is recorded


def _timm_train_py_lrs(steps, warmup_steps, warmup_lr, lr, shown):
    """The per-update lrs of timm train.py's schedule (--sched cosine --sched-on-updates, one
    update an epoch) from --warmup-lr, --warmup-epochs, --min-lr 0."""
    from argparse import Namespace

    from timm.scheduler import create_scheduler_v2, scheduler_kwargs
    opt = torch.optim.SGD(torch.nn.Linear(2, 3).parameters(), lr=lr)
    args = Namespace(sched="cosine", epochs=steps, warmup_epochs=warmup_steps,
                     warmup_lr=warmup_lr, min_lr=0.0, sched_on_updates=True)
    sched, _ = create_scheduler_v2(opt, **scheduler_kwargs(args), updates_per_epoch=1)
    lrs = []
    for t in range(shown):
        sched.step_update(t)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_warmup_lr_is_where_the_warmup_starts_as_timms_warmup_lr_init():
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=10, lr=0.1, warmup_steps=4, warmup_lr=0.02), 6)
    # timm's warmup_lr_init: warmup_lr + t (lr - warmup_lr) / warmup_steps, then the cosine
    want = [0.02 + t * 0.08 / 4 for t in range(4)] + [
        0.05 * (1 + math.cos(math.pi * t / 10)) for t in (4, 5)]
    assert lrs == pytest.approx(want)
    assert lrs == pytest.approx(_timm_train_py_lrs(10, 4, 0.02, 0.1, 6))
    # robustrep's default start, lr / warmup_steps, is timm's --warmup-lr set to it
    _, _, lrs = _opt_lrs(ClassifyConfig(steps=10, lr=0.1, warmup_steps=4), 6)
    assert lrs == pytest.approx(_timm_train_py_lrs(10, 4, 0.025, 0.1, 6))


def test_warmup_lr_starts_every_layer_decay_group_as_timm():
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2
    model, cfg, build_optimizer = _vit(layer_decay=0.5, lr=1.0, steps=10, warmup_steps=4,
                                       warmup_lr=0.1)
    opt, sched = build_optimizer(cfg, model)
    timms = create_optimizer_v2(model.model, opt="sgd", lr=1.0, weight_decay=0.05,
                                layer_decay=0.5)
    timm_sched, _ = create_scheduler_v2(timms, sched="cosine", num_epochs=10, warmup_epochs=4,
                                        warmup_lr=0.1, min_lr=0.0, step_on_epochs=False,
                                        updates_per_epoch=1)
    for t in range(6):
        sched.step_update(t)
        timm_sched.step_update(t)
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in timms.param_groups]
    sched.step_update(0)
    scales = [g["lr_scale"] for g in opt.param_groups]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 * s for s in scales])


def test_a_resume_keeps_the_optimizer_options_and_may_change_them(tmp_path):
    from robustrep.tasks.classify.train import Trainer, config_for_resume
    from robustrep.tasks.common import distributed as dist
    given = dict(optimizer="adamw", opt_eps=1e-3, opt_betas=[0.5, 0.9], warmup_steps=3,
                 warmup_lr=0.01)
    train(tiny_config(steps=4, ckpt_every=2, **given), tmp_path / "r", stop_after=2, quiet=True)
    saved = RunDir(tmp_path / "r").read_config()
    assert {k: saved[k] for k in given} == given  # recorded in config.json
    cfg = config_for_resume(tmp_path / "r", {"steps": 4})
    assert {k: getattr(cfg, k) for k in given} == given
    cfg = config_for_resume(tmp_path / "r", {"opt_eps": 1e-4, "opt_betas": [0.6, 0.95],
                                             "warmup_lr": 0.02})
    trainer = Trainer(cfg, RunDir(tmp_path / "r"), dist.init_distributed("cpu"), resume=True)
    trainer.load_state_dict(torch.load(tmp_path / "r" / "checkpoints" / "latest.pt",
                                       weights_only=False))
    group = trainer.opt.param_groups[0]
    assert (group["eps"], group["betas"]) == (1e-4, (0.6, 0.95))  # the new ones, not the saved
    assert group["lr"] == pytest.approx(0.02 + 2 * (0.05 - 0.02) / 3)  # step 2 of the warm-up


def test_a_resume_continues_with_the_saved_optimizer_options(tmp_path):
    # a resume that fell back to timm's defaults (eps 1e-8, betas 0.9 0.999, lr / warmup_steps)
    # would update differently from step 2, inside the warm-up
    cfg = dict(optimizer="adamw", opt_eps=1e-3, opt_betas=[0.5, 0.9], warmup_steps=3,
               warmup_lr=0.01, steps=4, ckpt_every=2)
    train(tiny_config(**cfg), tmp_path / "a", quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=2, quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    lrs = [[r["lr"] for r in RunDir(tmp_path / p).read_metrics() if "lr" in r] for p in "ab"]
    assert lrs[0] == lrs[1] and lrs[0][0] == pytest.approx(0.01)


def test_an_old_timm_refusing_an_optimizer_option_names_the_flag(monkeypatch):
    # before its registry (1.0.12) timm passed eps and betas to every optimizer: SGD raised
    from robustrep.tasks.classify import optim as optim_module

    def old_timm(*args, **kwargs):
        raise TypeError("SGD.__init__() got an unexpected keyword argument 'betas'")
    monkeypatch.setattr(optim_module, "create_optimizer_v2", old_timm)
    cfg = ClassifyConfig(optimizer="adamw", opt_betas=[0.8, 0.9])
    with pytest.raises(ConfigError, match=r"^--opt-betas: timm's --optimizer adamw takes no "
                                          r"betas; drop the option"):
        optim_module.build_optimizer(cfg, torch.nn.Linear(2, 3))


def test_what_an_sgd_takes_is_what_timms_registry_says():
    # the default optimizers are answered without importing timm: the answer must be timm's
    from timm.optim import get_optimizer_info

    from robustrep.tasks.classify.option_checks import SGD_OPTIMIZERS, optimizer_takes
    for name in SGD_OPTIMIZERS:
        info = get_optimizer_info(name)
        assert optimizer_takes(name) == {"momentum": int(info.has_momentum),
                                         "eps": int(info.has_eps),
                                         "betas": info.num_betas if info.has_betas else 0}
    assert optimizer_takes("adan")["betas"] == 3 and optimizer_takes("nope") is None


# --dry-run builds the model as the run does, on the meta device and without its weights

def test_a_dry_run_refuses_what_the_model_refuses(capsys, tmp_path):
    from robustrep.tasks.cli import main
    for args, words in ((["--model", "wrn16_2", "--drop-path", "0.1"],
                         "--drop-path: model 'wrn16_2' takes no drop_path_rate"),
                        (["--model", "vgg11", "--drop-path", "0.1", "--dataset", "cifar10",
                          "--data-root", str(tmp_path)],  # data not read by a dry run
                         "--drop-path: model 'vgg11' takes no drop_path_rate"),
                        (["--batch-size", "1"], "--batch-size 1: model 'resnet10t' has "
                                                "BatchNorm layers")):
        assert main(["classify", "train", *args, "--dry-run"]) == 2  # was 0
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1
    assert main(["classify", "train", "--model", "test_convnext", "--drop-path", "0.1",
                 "--dry-run"]) == 0


def test_a_dry_run_builds_on_the_meta_device_without_weights(monkeypatch, capsys, tmp_path):
    from robustrep.tasks.classify import train as train_module
    from robustrep.tasks.cli import main
    built, create = [], train_module.create_classifier

    def spy(*args, **kwargs):
        model = create(*args, **kwargs)
        built.append((next(model.parameters()).device.type, kwargs["pretrained"], args[5]))
        return model
    monkeypatch.setattr(train_module, "create_classifier", spy)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: weights would be refused
    assert main(["classify", "train", "--model", "wrn16_2", "--head", "uos", "--dry-run"]) == 0
    assert main(["classify", "train", "--model", "resnet10t", "--pretrained", "--dry-run"]) == 0
    assert main(["classify", "train", "--pretrained-file", str(tmp_path / "w.pth"),
                 "--dry-run"]) == 0
    assert built == [("meta", False, None)] * 3


def test_a_model_the_meta_device_cannot_build_is_built_on_the_cpu(monkeypatch):
    from robustrep.tasks.classify import train as train_module
    create = train_module.create_classifier

    def reads_values(*args, **kwargs):  # as a constructor calling .item() on a meta tensor
        if torch.empty(()).device.type == "meta":
            raise NotImplementedError("Cannot copy out of meta tensor; no data!")
        return create(*args, **kwargs)
    monkeypatch.setattr(train_module, "create_classifier", reads_values)
    model = train_module.dry_run_model(ClassifyConfig(model="test_resnet"))
    assert next(model.parameters()).device.type == "cpu"


def test_each_evaluation_pass_is_counted_on_a_bar(tiny_cfg, tmp_path, monkeypatch):
    """Was: nothing between "step N/N" and the result while the evaluation ran (minutes for a
    large model); now each pass, of the EMA weights too, counts its batches."""
    from robustrep.tasks.classify import train as train_module
    bars = []

    class Bar:
        def __init__(self, total, *args, desc="", **kwargs):
            self.desc, self.total, self.n = desc, total, 0
            bars.append(self)

        def update(self, k=1):
            self.n += k

        def close(self):
            pass

        def set_postfix(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(train_module, "progress", Bar)
    train_module.train(tiny_cfg(steps=2, ema_decay=0.5), tmp_path / "run")
    evals = [(bar.desc, bar.total, bar.n) for bar in bars if bar.desc.startswith("eval")]
    assert evals == [("eval", 1, 1), ("eval ema", 1, 1)]
