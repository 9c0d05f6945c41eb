"""gan train refuses options that would do nothing without another option's value, in one line
and before the run folder; runs saved by earlier versions with such options still resume."""

import json

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError


@pytest.mark.parametrize("args,words", [
    (["--mix-alpha", "0.5"], "--mix-alpha applies only with --reg mixup or cutmix or srmix "
                             "(reg is 'none')"),
    (["--reg", "mixup", "--asgan-eps", "0.1", "--asgan-steps", "2"],
     "--asgan-eps, --asgan-steps apply only with --reg asgan (reg is 'mixup')"),
    (["--reg", "asgan", "--dat-t", "0.1"], "--dat-t applies only with --reg dat"),
    (["--lsun-classes", "bedroom_train"], "--lsun-classes applies only with --dataset lsun"),
    (["--skip-bad-images"], "--skip-bad-images applies only with --dataset imagefolder"),
    (["--loss", "hinge", "--gp-weight", "5"],
     "--gp-weight applies only with --loss wasserstein (loss is 'hinge')"),
    (["--data-root", "data"], "--data-root applies only with --dataset cifar10 or cifar100 or "
                              "imagefolder"),  # was: ignored, the built-in digits trained
    (["--reg", "mixup", "--mix-smoothing", "0.2"],  # was: kept; only SRMix's box has the ramp
     "--mix-smoothing applies only with --reg srmix (reg is 'mixup')"),
    # were: accepted and recorded, with no G-EMA in the checkpoint
    (["--ema-decay", "0", "--ema-kimg", "10"], "--ema-kimg: ema_decay 0 turns the G-EMA off, "
                                                "leaving no half-life to set"),
    (["--preset", "cifar10-sngan", "--ema-kimg", "10", "--ema-rampup", "0.05"],
     "--ema-kimg, --ema-rampup: ema_decay 0 turns the G-EMA off"),
    # with the EMA by kimg, the by-step decay and warm-up were recorded and did nothing
    (["--preset", "digits-stylegan2", "--ema-decay", "0.99"], "--ema-decay applies only with "
                                                             "--ema-kimg unset"),
    (["--preset", "digits-stylegan2", "--ema-warmup", "false"], "--ema-warmup applies only with "
                                                               "--ema-kimg unset"),
    (["--ema-rampup", "0.05"], "--ema-rampup applies only with --ema-kimg (ema_kimg is None: "
                               "the EMA decays by step)"),
    # were: accepted; --lazy-reg scaled D's lr and betas by 16/17 with no R1 ever run
    (["--r1-every", "16"], "--r1-every applies only with --r1-gamma > 0 (r1_gamma is 0: no R1 "
                           "to make lazy)"),
    (["--lazy-reg", "true", "--r1-every", "16"],
     "--r1-every, --lazy-reg apply only with --r1-gamma > 0"),
    # were: accepted, recorded in config.json, and no projection built
    (["--rp-num-views", "5"], "--rp-num-views applies only with --reg rpgan (reg is 'none')"),
    (["--reg", "dat", "--rp-base-channels", "16", "--rp-kernel-size", "4"],
     "--rp-base-channels, --rp-kernel-size apply only with --reg rpgan (reg is 'dat')"),
    # were: accepted, recorded, and read by no network or data of the run
    (["--arch", "dcgan", "--w-dim", "8"], "--w-dim applies only with --arch stylegan2 (arch is "
                                          "'dcgan')"),
    (["--mixture-samples", "500"], "--mixture-samples applies only with --dataset ring or grid "
                                   "(dataset is 'digits')"),
    (["--arch", "dcgan", "--mlp-depth", "5"], "--mlp-depth applies only with --arch mlp (arch "
                                              "is 'dcgan')"),
    (["--preset", "digits-stylegan2", "--g-width", "64"],
     "--g-width applies only with --arch dcgan, sngan, mlp or a plugin's family (arch is "
     "'stylegan2': --channel-base and --channel-max size its layers)"),
    (["--num-workers", "2"], "--num-workers applies only with --dataset cifar10 or cifar100 or "
                             "imagefolder"),  # the digits are batched in memory
    # was: accepted and recorded, with no evaluation to size
    (["--eval-every", "0", "--final-eval", "false", "--eval-samples", "64"],
     "--eval-samples sizes the evaluations during training, and eval_every 0 with final_eval "
     "false runs none"),
])
def test_options_without_the_option_they_act_with_are_refused(args, words, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["gan", "train", *args, "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and not run.exists()


@pytest.mark.parametrize("argv, note, kept", [
    (["--preset", "digits-stylegan2", "--arch", "dcgan"],
     "note: preset digits-stylegan2's --w-dim, --mapping-layers, --channel-base, --channel-max, "
     "--mbstd-group, --style-mixing, --pl-weight, --pl-every apply only with --arch stylegan2 "
     "(arch is 'dcgan'): left out of this run (the preset's other options stay)",
     dict(w_dim=None, pl_weight=None, lr_g=0.0025, r1_gamma=0.01, ema_kimg=10.0)),
    (["--preset", "cifar10-dcgan", "--arch", "stylegan2"],
     "note: preset cifar10-dcgan's --g-width, --d-width apply only with --arch dcgan, sngan, "
     "mlp or a plugin's family", dict(g_width=32, d_width=32, z_dim=128)),
])
def test_a_presets_options_the_chosen_arch_does_not_read_are_left_out_with_a_note(
        argv, note, kept, tmp_path, capsys):
    # Was: refused, naming StyleGAN2 options the user never gave and no flag can unset
    assert main(["gan", "train", *argv, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    cfg = json.loads(out)
    assert err.startswith(note) and len(err.splitlines()) == 1
    assert {k: cfg[k] for k in kept} == kept
    (tmp_path / "c.yaml").write_text(f"arch: {argv[-1]}\n")  # a config file's arch: the same
    assert main(["gan", "train", *argv[:2], "--config", str(tmp_path / "c.yaml"),
                 "--dry-run"]) == 0
    assert capsys.readouterr().err.startswith(note)
    assert main(["gan", "train", "--preset", "digits-stylegan2", "--dry-run"]) == 0
    assert capsys.readouterr().err == ""  # nothing left out: no note


def test_a_bad_regularizer_option_is_refused_before_the_data_is_built(tiny_cfg, tmp_path,
                                                                      monkeypatch):
    # Was: refused after the data were built (the digits: a second; a folder: a scan)
    from robustrep.tasks.gan import train as gan_train

    def no_data(cfg):
        raise AssertionError("the data were built before the methods' options were checked")
    monkeypatch.setattr(gan_train, "build_data", no_data)
    cfg = tiny_cfg(reg="mixup", reg_options={"mixup": {"partner": "bogus"}},
                   out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="^--reg mixup: partner must be one of 'permutation', "
                                          "'flip'; got 'bogus'$"):
        gan_train.train(cfg, show_progress=False)
    assert not (tmp_path / "run").exists()


def test_gan_train_refuses_a_bad_regularizer_option_before_its_training_code(tmp_path, capsys,
                                                                             monkeypatch):
    # Was: refused once gan.train and gan.evaluate were imported and the data built (~10 s)
    from robustrep.tasks.gan import train as gan_train

    def training(*args, **kwargs):
        pytest.fail("the training started before the methods' options were checked")
    monkeypatch.setattr(gan_train, "train", training)
    run = tmp_path / "run"
    assert main(["gan", "train", "--reg", "mixup", "--mixup-partner", "bogus", "--out",
                 str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and not run.exists()
    assert "--reg mixup: partner must be one of 'permutation', 'flip'; got 'bogus'" in err


def test_regularizer_options_with_their_method_and_loss_are_kept(capsys):
    # loss feeds asgan and the program alike: never refused
    assert main(["gan", "train", "--reg", "asgan,mixup", "--asgan-eps", "0.1", "--mix-alpha",
                 "0.5", "--loss", "hinge", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["asgan_eps"], cfg["mix_alpha"], cfg["loss"]) == (0.1, 0.5, "hinge")
    assert main(["gan", "train", "--reg", "srmix", "--mix-smoothing", "0.2", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["mix_smoothing"] == 0.2


def test_a_mixing_methods_own_alpha_overrides_mix_alpha(capsys):
    """--cutmix-alpha, as classify train takes it (one mixing method here: one per place); the
    built method, its record and the dry run hold it; --mix-alpha beside it would act on
    nothing."""
    from robustrep.tasks.common.config import from_dict
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.regs import build_regs, regs_record
    assert main(["gan", "train", "--reg", "cutmix", "--cutmix-alpha", "2", "--dry-run"]) == 0
    cfg = from_dict(GanConfig, json.loads(capsys.readouterr().out))
    assert (cfg.mix_alpha, cfg.reg_options) == (None, {"cutmix": {"alpha": 2.0}})
    assert build_regs(cfg).by_name["cutmix"].alpha == 2.0
    assert regs_record(cfg, (1, 16, 16))["cutmix"]["options"]["alpha"] == 2.0
    assert main(["gan", "train", "--reg", "cutmix", "--mix-alpha", "0.5", "--cutmix-alpha", "2",
                 "--dry-run"]) == 2
    assert ("--mix-alpha applies only with a method in --reg without its own value (reg is "
            "'cutmix', whose --cutmix-alpha overrides it)") in capsys.readouterr().err


@pytest.mark.parametrize("preset, k", [("digits-dcgan", 12), ("grid-mlp", 12),
                                      ("cifar10-dcgan", 48)])
def test_the_presets_rp_k_is_recorded_only_by_runs_that_take_rpgan(preset, k, capsys):
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.models import ensemble_spec
    assert main(["gan", "train", "--preset", preset, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["rp_num_views"] is None
    assert main(["gan", "train", "--preset", preset, "--reg", "rpgan", "--dry-run"]) == 0
    cfg = GanConfig(**json.loads(capsys.readouterr().out))
    shape = (2,) if cfg.is_points else (3, cfg.image_size, cfg.image_size)
    assert ensemble_spec(cfg, shape)[1]["num_views"] == k


def test_a_run_saved_with_unused_options_still_loads_and_resumes(tiny_cfg, tmp_path):
    from robustrep.tasks.gan.sample import run_config
    from robustrep.tasks.gan.train import train
    run = tmp_path / "run"
    train(tiny_cfg(steps=2, ckpt_every=2, out=str(run)), show_progress=False)
    saved = json.loads((run / "config.json").read_text())
    assert saved["reg"] == "none" and saved["dataset"] == "digits"
    # earlier versions accepted (and ignored) these
    saved.update(mix_alpha=0.5, lsun_classes="bedroom_train", gp_weight=10.0, data_root="d",
                 rp_num_views=12,  # every preset run recorded its RP-GAN K
                 inception_weights="gone.pth")  # on the digits network it acted on nothing
    (run / "config.json").write_text(json.dumps(saved))
    cfg = run_config(run)
    assert (cfg.mix_alpha, cfg.lsun_classes, cfg.gp_weight, cfg.data_root,
            cfg.rp_num_views, cfg.inception_weights) == (None,) * 6
    assert main(["gan", "train", "--resume", str(run), "--steps", "3", "--quiet"]) == 0


def test_eval_samples_is_refused_only_as_the_users_flag_on_a_run_with_no_evaluation(
        tiny_cfg, tmp_path, capsys):
    # a preset's (or the default) eval_samples is no choice of the user's: kept
    assert main(["gan", "train", "--eval-every", "0", "--final-eval", "false", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["eval_samples"] == 1000
    for evaluates in (["--eval-every", "0"], ["--final-eval", "false"]):
        assert main(["gan", "train", *evaluates, "--eval-samples", "64", "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["eval_samples"] == 64
    from robustrep.tasks.gan.train import train
    run = tmp_path / "run"  # eval_every 0 and final_eval off, as the tiny configs train
    train(tiny_cfg(steps=1, out=str(run)), show_progress=False)
    resume = ["gan", "train", "--resume", str(run), "--steps", "2", "--eval-samples", "64"]
    assert main([*resume, "--quiet"]) == 2
    assert "--eval-samples sizes the evaluations" in capsys.readouterr().err
    assert main([*resume, "--final-eval", "true", "--dry-run"]) == 0


def test_the_wgan_gp_weight_is_filled_in_for_the_wasserstein_loss_only(capsys):
    for loss, want in (("wasserstein", 10.0), ("ns", None), ("hinge", None)):
        assert main(["gan", "train", "--loss", loss, "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["gp_weight"] == want
    assert main(["gan", "train", "--loss", "wasserstein", "--gp-weight", "0", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["gp_weight"] == 0.0  # 0: WGAN without GP


@pytest.mark.parametrize("batch, world", [(33, 2), (2, 2), (8, 3)])
def test_a_global_batch_that_does_not_split_is_refused_before_the_run_folder(batch, world):
    """Was: a ValueError traceback from every process after the run folder was written, which
    left a folder neither a new run nor --resume could use."""
    from robustrep.tasks.common.config import ConfigError
    from robustrep.tasks.gan.train import check_batch
    with pytest.raises(ConfigError, match=rf"^--batch-size {batch} is the global batch, split "
                                          rf"across {world} processes: give a multiple of "
                                          rf"{world} of at least {2 * world} \(2 or more per "
                                          r"process\)$"):
        check_batch([0] * 100, batch, world)
    check_batch([0] * 100, 2 * world, world)


def test_stylegan2_groups_and_channels_that_cannot_be_built_are_refused(tmp_path, capsys):
    # Was: --mbstd-group 3 with batch 32 ran with groups of 2 (stylegan2-ada asserts); a
    # --channel-base below the resolution was a ZeroDivisionError traceback after the run folder
    from robustrep.tasks.common.config import ConfigError
    from robustrep.tasks.gan.train import check_batch
    with pytest.raises(ConfigError, match=r"^--mbstd-group 3 does not divide the 32 samples each "
                                          r"process's D sees \(--batch-size 32 over 1 "
                                          r"process\(es\)\); give a divisor of 32$"):
        check_batch([0] * 100, 32, 1, 3)
    check_batch([0] * 100, 32, 1, 8)
    check_batch([0] * 100, 2, 1, 4)  # a share below the group: one group, as the reference
    run = tmp_path / "run"
    assert main(["gan", "train", "--preset", "digits-stylegan2", "--channel-base", "3",
                 "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == ("robustrep gan train: error: --channel-base 3 gives the 32x32 layers no feature "
                   "maps (min(channel_base // 32, channel_max)); give at least 32\n")
    assert not run.exists()


def test_the_stylegan2_networks_refuse_layers_without_feature_maps():
    from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
    for build in (lambda: StyleGAN2Generator(8, 16, 3, w_dim=8, channel_base=8),
                  lambda: StyleGAN2Discriminator(16, 3, channel_base=8)):
        with pytest.raises(ValueError, match="channel_base 8 and channel_max 512 give the 16x16 "
                                             "layers no feature maps"):
            build()


@pytest.mark.parametrize("argv, message", [
    (["--reg", "asgan", "--asgan-free", "true", "--asgan-steps", "3"],
     "--asgan-steps does nothing with --asgan-free"),
    (["--reg", "mixup", "--mix-mode", "replace", "--mix-weight", "0.5"],
     "--mix-weight weighs the mixed loss added to the clean one"),
    # the rest were accepted and recorded as if the method ran
    (["--reg", "dat", "--dat-eps", "0.05", "--dat-t", "2"],
     "--dat-t clips DAT's gradient step, and --dat-eps replaces that step by eps * sign(grad)"),
    (["--reg", "adaptivemix", "--am-mode", "additive", "--am-weight", "0"],
     "--am-weight 0 with --am-mode additive adds nothing to the plain loss"),
    (["--augment", "fixed", "--augment-p", "0"], "--augment fixed with --augment-p 0 never "
                                                 "augments"),
    (["--reg", "ssgan", "--ssgan-d-scale", "0", "--ssgan-g-scale", "0"],
     "d_scale and g_scale are both 0: the auxiliary task would add nothing"),
])
def test_a_regularizer_option_its_other_options_silence_is_refused(argv, message, capsys):
    # Was: accepted; free AS-GAN never reads steps, replace-mode mixing never reads its weight
    assert main(["gan", "train", *argv, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_ema_decay_0_turns_a_presets_ema_by_kimg_off(capsys):
    assert main(["gan", "train", "--preset", "digits-stylegan2", "--ema-decay", "0",
                 "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["ema_decay"], cfg["ema_kimg"], cfg["ema_rampup"]) == (0.0, None, None)


def test_dry_run_refuses_a_batch_the_mbstd_groups_do_not_divide(capsys):
    # was: --dry-run accepted it and training refused it
    assert main(["gan", "train", "--preset", "digits-stylegan2", "--batch-size", "6",
                 "--dry-run"]) == 2
    assert "--mbstd-group 4 does not divide --batch-size 6" in capsys.readouterr().err
    for batch in ("3", "8"):  # a batch below the group is one group, as in the reference
        assert main(["gan", "train", "--preset", "digits-stylegan2", "--batch-size", batch,
                     "--dry-run"]) == 0


@pytest.mark.parametrize("argv, message", [
    # were accepted: the method left every batch as it was, recorded as taken
    (["--reg", "mixup", "--mix-prob", "0"], "argument --mix-prob: must be a finite number in "
                                            "(0, 1]; got '0'"),
    (["--reg", "asgan", "--asgan-eps", "0"], "argument --asgan-eps: must be a finite number > 0"),
    (["--reg", "asgan", "--asgan-steps", "0"],
     "argument --asgan-steps: must be an integer in [1, 2147483647]"),
    (["--reg", "dat", "--dat-t", "0"], "argument --dat-t: must be a finite number > 0"),
    (["--reg", "dat", "--dat-eps", "0"], "argument --dat-eps: must be a finite number > 0"),
    (["--reg", "mixup", "--mix-weight", "0"], "argument --mix-weight: must be a finite number > 0"),
])
def test_a_value_that_switches_its_method_off_is_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["gan", "train", *argv, "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("keep, kept", [(3, [2, 3, 4]), (0, [1, 2, 3, 4]), (1, [4])])
def test_keep_ckpts_sets_how_many_step_checkpoints_stay(tiny_cfg, tmp_path, keep, kept):
    # were: always the newest 3, unannounced (stylegan2-ada keeps every snapshot)
    from robustrep.tasks.gan.train import train
    run = tmp_path / "run"
    train(tiny_cfg(steps=4, ckpt_every=1, keep_ckpts=keep, out=str(run)), show_progress=False)
    steps = sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert steps == kept and (run / "checkpoints" / "latest.pt").is_file()


def test_the_channels_an_unset_option_stands_for_are_the_cores():
    """config_checks writes the core's defaults out (it imports no torch); --init's message and
    the feature-map check both read them from there."""
    import inspect
    from types import SimpleNamespace

    from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
    from robustrep.tasks.gan.config_checks import stylegan2_channels
    for net in (StyleGAN2Generator, StyleGAN2Discriminator):
        defaults = inspect.signature(net).parameters
        assert stylegan2_channels(SimpleNamespace(channel_base=None, channel_max=None)) == (
            defaults["channel_base"].default, defaults["channel_max"].default)
    assert stylegan2_channels(SimpleNamespace(channel_base=64, channel_max=16)) == (64, 16)
