"""Options that only mean something with another option's value are refused, in one line and
before any run folder, instead of being silently ignored; saved runs of earlier versions still
resume and evaluate."""

import json
import re
import shutil

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.classify.policies import build_aa, check_aa
from robustrep.tasks.classify.train import config_for_resume
from robustrep.tasks.common.config import ConfigError


def _refused(args, capsys, tmp_path) -> str:
    """Exit 2 with one line on stderr, and no run folder made."""
    run = tmp_path / "run"
    assert main(["classify", "train", *args, "--run-dir", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and not run.exists()
    return err


@pytest.mark.parametrize("args", [["--milestones", "0.5"],
                                  ["--lr-decay", "0.1", "--schedule", "constant"],
                                  ["--preset", "digits", "--milestones", "0.5", "--lr-decay",
                                   "0.1"]])
def test_multistep_options_refused_under_another_schedule(args, capsys, tmp_path):
    err = _refused(args, capsys, tmp_path)
    assert "only with --schedule multistep" in err and "--" + args[-2].lstrip("-") in err


@pytest.mark.parametrize("args,words", [
    (["--uos-scale", "2"], "--uos-scale applies only with --head uos (head is 'linear')"),
    (["--lsun-classes", "bedroom_train"], "--lsun-classes applies only with --dataset lsun"),
    (["--skip-bad-images"], "--skip-bad-images applies only with --dataset imagefolder"),
    (["--data-root", "data"], "--data-root applies only with --dataset cifar10 or cifar100 or "
                              "svhn"),  # was: ignored, the built-in digits trained
    (["--mix-alpha", "0.4"], "--mix-alpha applies only with --reg mixup or cutmix or srmix"),
    (["--reg", "mixup", "--eps", "0.03", "--adv-steps", "3"],
     "--eps applies only with --reg pgd or fgsm or free (reg is 'mixup')"),
    (["--reg", "fgsm", "--adv-steps", "3"], "--adv-steps applies only with --reg pgd "),
    (["--reg", "pgd", "--free-replays", "2"], "--free-replays applies only with --reg free "
                                              "(reg is 'pgd')"),
    (["--reg", "adaptivemix", "--srmix-smoothing", "0.1"], "--srmix-smoothing applies only"),
    (["--optimizer", "adamw", "--momentum", "0.5"],
     "--momentum applies only with an --optimizer that takes momentum in timm, e.g. sgd, "
     "momentum, rmsprop, lars (optimizer is 'adamw')"),
    # timm's create_optimizer_v2 drops what an optimizer does not take without a word
    (["--opt-eps", "1e-3"], "--opt-eps applies only with an --optimizer that takes eps in timm"),
    (["--optimizer", "lion", "--opt-eps", "1e-3"], "takes eps in timm, e.g. adamw, lamb, "
                                                  "rmsprop (optimizer is 'lion')"),
    (["--optimizer", "momentum", "--opt-betas", "0.8", "0.9"],
     "--opt-betas applies only with an --optimizer that takes betas in timm"),
    (["--optimizer", "lookahead_rmsprop", "--opt-betas", "0.8", "0.9"],
     "(optimizer is 'lookahead_rmsprop')"),
    (["--warmup-lr", "0.01"], "--warmup-lr applies only with --warmup-steps > 0 (warmup_steps "
                              "is 0)"),
    (["--wd-all", "--weight-decay", "0"],  # was: recorded, no decay to spread
     "--wd-all applies only with --weight-decay > 0 (weight_decay is 0)"),
    (["--holdout", "random"],  # was: recorded, nothing held out to draw
     "--holdout applies only with --val-fraction > 0 (val_fraction is 0: dataset 'digits' is "
     "scored on its test split)"),
])
def test_options_without_the_option_they_act_with_are_refused(args, words, capsys, tmp_path):
    assert words in _refused(args, capsys, tmp_path)


def test_holdout_is_kept_where_a_share_is_held_out(capsys):
    for args in (["--val-fraction", "0.2"], ["--dataset", "imagefolder", "--data-root", "d"]):
        assert main(["classify", "train", "--holdout", "random", *args, "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["holdout"] == "random"


@pytest.mark.parametrize("args,words", [
    (["--optimizer", "adan", "--opt-betas", "0.9", "0.9"],  # was an IndexError in timm
     "--opt-betas takes 3 values with --optimizer adan (its betas in timm); got 2: 0.9 0.9"),
    (["--optimizer", "adamw", "--opt-betas", "0.9", "0.9", "0.9"],  # timm kept two
     "--opt-betas takes 2 values with --optimizer adamw"),
    (["--warmup-steps", "2", "--warmup-lr", "0.05"],
     "--warmup-lr 0.05 is not below --lr 0.05: the warm-up rises from --warmup-lr to --lr"),
])
def test_timm_optimizer_options_out_of_their_range_are_refused(args, words, capsys, tmp_path):
    assert words in _refused(args, capsys, tmp_path)
    for flag, bad, words in (("--opt-betas", ["1", "0.5"], "each a finite number in [0, 1)"),
                             ("--opt-eps", ["0"], "a finite number > 0; got '0'")):
        with pytest.raises(SystemExit) as exit_info:  # the parser's own refusal
            main(["classify", "train", "--optimizer", "adamw", flag, *bad, "--dry-run"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and f"argument {flag}: must be " in err and words in err


def test_timm_optimizer_options_are_recorded(capsys):
    assert main(["classify", "train", "--optimizer", "adan", "--opt-betas", "0.98", "0.92",
                 "0.99", "--opt-eps", "1e-6", "--warmup-steps", "3", "--warmup-lr", "0",
                 "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["opt_betas"], cfg["opt_eps"], cfg["warmup_lr"]) == ([0.98, 0.92, 0.99], 1e-6, 0)
    assert main(["classify", "train", "--optimizer", "rmsprop", "--momentum", "0.5",
                 "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["momentum"] == 0.5


def test_options_with_the_option_they_act_with_are_kept(capsys):
    assert main(["classify", "train", "--head", "uos", "--uos-scale", "2", "--reg", "pgd,mixup",
                 "--eps", "0.03", "--mix-alpha", "0.4", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["uos_scale"], cfg["eps"], cfg["mix_alpha"]) == (2.0, 0.03, 0.4)


def test_multistep_defaults_are_filled_in_and_shown_by_dry_run(capsys):
    assert main(["classify", "train", "--schedule", "multistep", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["milestones"], cfg["lr_decay"]) == ([0.3, 0.6, 0.8], 0.2)
    assert main(["classify", "train", "--dry-run"]) == 0  # cosine: no multistep values shown
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["schedule"], cfg["milestones"], cfg["lr_decay"]) == ("cosine", None, None)
    given = ClassifyConfig(schedule="multistep", milestones=[0.5], lr_decay=0.1)
    assert (given.milestones, given.lr_decay) == ([0.5], 0.1)
    with pytest.raises(ConfigError, match="--milestones must be increasing"):
        ClassifyConfig(schedule="multistep", milestones=[0.6, 0.3])


def test_momentum_is_filled_in_for_the_optimizers_that_take_it(capsys):
    # was sgd and momentum only: an rmsprop or lars run recorded null and ran timm's 0.9
    for optimizer, want in (("sgd", 0.9), ("momentum", 0.9), ("rmsprop", 0.9), ("lars", 0.9),
                            ("lookahead_rmsprop", 0.9), ("adamw", None), ("lion", None)):
        assert main(["classify", "train", "--optimizer", optimizer, "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["momentum"] == want
    assert ClassifyConfig(optimizer="momentum", momentum=0.5).momentum == 0.5


def test_an_adamw_run_saved_with_momentum_still_resumes(trained_run, tmp_path):
    # runs written before momentum defaulted to None hold 0.9 under adamw too
    run = tmp_path / "old"
    shutil.copytree(trained_run, run)
    saved = json.loads((run / "config.json").read_text())
    saved.update(optimizer="adamw", momentum=0.9)
    (run / "config.json").write_text(json.dumps(saved))
    assert config_for_resume(run, {"steps": 5}).momentum is None


def test_a_run_saved_with_the_old_multistep_defaults_still_resumes(trained_run, tmp_path):
    # runs written before milestones/lr_decay defaulted to None hold them under cosine
    run = tmp_path / "old"
    shutil.copytree(trained_run, run)
    saved = json.loads((run / "config.json").read_text())
    assert saved["schedule"] == "cosine"
    saved.update(milestones=[0.3, 0.6, 0.8], lr_decay=0.2)
    assert saved["reg"] == "none" and saved["head"] == "linear"
    saved.update(eps=0.03, uos_scale=2.0)  # accepted (and unused) by earlier versions too
    (run / "config.json").write_text(json.dumps(saved))
    assert main(["classify", "eval", str(run), "--attacks", "none", "--corruptions", "none",
                 "--max-samples", "8", "--quiet"]) == 0
    cfg = config_for_resume(run, {"steps": 5})
    assert (cfg.steps, cfg.milestones, cfg.lr_decay, cfg.eps, cfg.uos_scale) == (5,) + (None,) * 4
    assert main(["classify", "train", "--resume", str(run), "--steps", "5", "--quiet"]) == 0


# one valid string per prefix timm dispatches on (rand, augmix, AutoAugment's names), each built
# by timm; and one with an unknown section, which timm would skip
@pytest.mark.parametrize("good,bad", [("rand-m9-mstd0.5-inc1-n3-p0.5-mmax10-tweights", "rand-zz"),
                                      ("augmix-m5-w4-d2-a1-b1-mstd0.5", "augmix-zz"),
                                      ("original-mstd0.5", "v0-zz"),
                                      ("trivialaugment", "trivial")])
def test_aa_policy_strings_are_checked_against_timm_grammar(good, bad, capsys, tmp_path):
    check_aa(good)
    assert callable(build_aa(good, 32, (0.5, 0.5, 0.5)))
    assert main(["classify", "train", "--aa", good, "--dry-run"]) == 0
    capsys.readouterr()
    err = _refused(["--aa", bad], capsys, tmp_path)
    assert err.startswith("robustrep classify train: error: --aa: unknown") and "accepted: " in err


@pytest.mark.parametrize("spec,words", [("rand-tfoo", "unknown transform set 'tfoo'"),
                                        ("rand-m9.5", "unknown section 'm9.5'"),
                                        ("rand--m9", "unknown section ''"),
                                        ("randaug-m9", "unknown policy 'randaug'"),
                                        ("rand-inc2", "is a switch"),
                                        ("augmix-b0", "timm 1.0.10 reads b0 as on"),
                                        # were accepted: no-ops, and AugMix darkened images
                                        ("rand-m9-n0", "'n0' in 'rand-m9-n0' must be > 0 (no ops"),
                                        ("rand-m9-p0.0", "'p0.0' in 'rand-m9-p0.0' must be > 0"),
                                        ("augmix-w0", "must be > 0 (no chains: each image is "
                                                      "blended toward black)"),
                                        ("augmix-a0", "alpha > 0")])
def test_aa_refusals_name_the_section(spec, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        check_aa(spec)


@pytest.mark.parametrize("args, words", [
    (["--model", "resnet_nope"], "unknown timm model 'resnet_nope'"),
    (["--classes", "0,11"], "classes must be one of 0, 1,"),
    (["--mean", "0.5", "0.5", "--std", "0.5", "0.5"], "mean/std need 1 value(s)"),
    (["--classes", "3", "3"], "--classes lists 3 more than once"),  # was "got [3]"
    (["--warmup-steps", "4"], "--warmup-steps 4 is not below --steps 4"),  # was accepted
], ids=["model", "classes", "mean", "classes-twice", "warmup"])
def test_dry_run_checks_the_model_and_the_built_in_data(args, words, capsys):
    # Was: exit 0 and the config printed; ood bench asks --dry-run whether a setting will train
    code = main(["classify", "train", "--preset", "smoke", *args, "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", ["--mixup-mode", "--cutmix-weight", "--srmix-mode",
                                  "--mixup-smoothing", "--cutmix-smoothing",
                                  "--adaptivemix-g-shrink"])
def test_options_that_act_only_in_gan_training_have_no_flag(flag, capsys, tmp_path):
    """The GAN's extra-D-term options, G's shrinkage, and the edge ramp only SRMix has were
    classify flags that were saved in the run and changed nothing."""
    reg = flag.split("-")[2]
    value = "1" if "weight" in flag or "smoothing" in flag else "false" if "shrink" in flag \
        else "replace"
    with pytest.raises(SystemExit) as info:  # argparse's own refusal
        main(["classify", "train", "--reg", reg, flag, value, "--dry-run"])
    assert info.value.code == 2
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err
    assert main(["classify", "train", "--reg", "srmix", "--srmix-smoothing", "0.2",
                 "--dry-run"]) == 0  # SRMix's own ramp stays


def test_a_config_file_setting_an_option_classify_never_reads_is_refused(capsys, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"reg": "mixup", "reg_options": {"mixup": {"mode": "replace"}}}))
    err = _refused(["--config", str(cfg)], capsys, tmp_path)
    assert "mixup's 'mode' acts only in gan train (the extra D term), not here; drop it" in err


@pytest.mark.parametrize("args, words", [
    # were accepted and recorded as mixup + PGD: plain training
    (["--reg", "pgd", "--eps", "0"], "argument --eps: must be a finite number > 0"),
    (["--reg", "mixup", "--mix-prob", "0"], "argument --mix-prob: must be a finite number in "
                                            "(0, 1]"),
])
def test_a_value_that_switches_its_method_off_is_refused(args, words, capsys):
    with pytest.raises(SystemExit) as info:
        main(["classify", "train", *args, "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and words in err and len(err.splitlines()) == 1


def test_additive_adaptivemix_with_weight_0_is_refused(capsys, tmp_path):
    err = _refused(["--reg", "adaptivemix", "--am-mode", "additive", "--am-weight", "0"], capsys,
                   tmp_path)
    assert "--am-weight 0 with --am-mode additive adds nothing to the plain loss" in err
    # reference mode with weight 0 still trains on the mixed samples: an ablation, kept
    assert main(["classify", "train", "--reg", "adaptivemix", "--am-weight", "0",
                 "--dry-run"]) == 0


def test_a_flag_turning_off_a_preset_or_files_option_decides(capsys, tmp_path):
    # was refused naming --momentum / --milestones, which the user never typed: the preset's
    # (or a reused config.json's) value for the optimizer or schedule the flag replaced
    assert main(["classify", "train", "--preset", "cifar10-wrn-uos", "--optimizer", "adamw",
                 "--schedule", "cosine", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["optimizer"], cfg["momentum"], cfg["milestones"], cfg["lr_decay"]) == \
        ("adamw", None, None, None)
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps({"optimizer": "sgd", "momentum": 0.8, "lr": 0.2}))
    assert main(["classify", "train", "--config", str(saved), "--optimizer", "lion",
                 "--dry-run"]) == 0
    out, err = capsys.readouterr()
    cfg = json.loads(out)
    assert (cfg["optimizer"], cfg["momentum"], cfg["lr"]) == ("lion", None, 0.2)
    # said, as gan says it of a preset's (was silent): the file's momentum gave way
    assert err == (f"note: config file {saved}'s momentum applies only with an --optimizer "
                   f"that takes momentum in timm, e.g. sgd, momentum, rmsprop, lars (optimizer "
                   f"is 'lion'): left out of this run (the file's other options stay)\n")
    # the same layer giving both is still the user's contradiction
    assert main(["classify", "train", "--preset", "cifar10-wrn-uos", "--optimizer", "adamw",
                 "--momentum", "0.9", "--dry-run"]) == 2
    assert "--momentum applies only with an --optimizer" in capsys.readouterr().err
    saved.write_text(json.dumps({"optimizer": "adamw", "momentum": 0.8}))
    assert main(["classify", "train", "--config", str(saved), "--dry-run"]) == 2
    # named as the file spells it (was the flag --momentum, which the user never typed)
    assert (f"error: config file {saved}: momentum applies only with an --optimizer that "
            f"takes momentum in timm" in capsys.readouterr().err)


@pytest.mark.parametrize("options,words", [
    ({"holdout": "random"}, "holdout applies only with --val-fraction > 0 (val_fraction is 0: "
                            "dataset 'digits' is scored on its test split); drop it from the "
                            "file or set that option"),
    ({"reg": "mixup", "mix_alpha": 0.4, "reg_options": {"mixup": {"alpha": 0.8}}},
     "mix_alpha applies only with a method in --reg without its own value (reg is 'mixup', "
     "whose --mixup-alpha overrides it); drop it from the file, or one of those own values"),
])
def test_a_config_files_unused_option_is_named_as_the_file_spells_it(options, words, capsys,
                                                                     tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(options))
    # was the flag (--holdout, --mix-alpha), which the user never typed
    assert f"error: config file {path}: {words}" in _refused(["--config", str(path)], capsys,
                                                             tmp_path)


def test_a_files_alpha_a_flag_overrides_for_every_method_gives_way_with_a_note(capsys,
                                                                               tmp_path):
    # was dropped to null without a word
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"reg": "mixup", "mix_alpha": 0.4}))
    assert main(["classify", "train", "--config", str(path), "--mixup-alpha", "0.8",
                 "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["mix_alpha"] is None
    assert err == (f"note: config file {path}'s mix_alpha applies only with a method in --reg "
                   f"without its own value (reg is 'mixup', whose --mixup-alpha overrides it): "
                   f"left out of this run (the file's other options stay)\n")


def test_an_image_size_the_model_cannot_take_is_refused_before_the_run(capsys, tmp_path):
    # was a RuntimeError traceback deep in timm at step 1, the run folder already made
    run = tmp_path / "run"
    for extra in (["--out", str(run)], ["--dry-run"]):  # the real model, and the meta one
        assert main(["classify", "train", "--model", "test_convnext", "--image-size", "8",
                     "--steps", "1", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("robustrep classify train: error: --image-size 8: model "
                              "'test_convnext' cannot take 8x8 inputs (") and "\n" not in err
    assert not run.exists()
    assert main(["classify", "train", "--model", "test_convnext", "--image-size", "32",
                 "--dry-run"]) == 0



def test_timms_flag_names_are_aliases_and_a_files_timm_key_is_pointed_to_ours(capsys, tmp_path):
    # timm train.py's --opt, --sched, --grad-accum-steps, --smoothing
    assert main(["classify", "train", "--opt", "adamw", "--sched", "constant",
                 "--grad-accum-steps", "2", "--smoothing", "0.1", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["optimizer"], cfg["schedule"], cfg["grad_accum"], cfg["label_smoothing"]) == \
        ("adamw", "constant", 2, 0.1)
    path = tmp_path / "timm.json"
    path.write_text(json.dumps({"grad_accum_steps": 2}))
    assert main(["classify", "train", "--config", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "unknown option(s) grad_accum_steps in config file " + str(path) + "; did you mean "
        "'grad_accum'? (--grad-accum-steps is its flag; a file gives the option's name)")


# --- classify eval's threat model -----------------------------------------------------------------

@pytest.mark.parametrize("text, norm", [("linf", "Linf"), ("LINF", "Linf"), ("Linf", "Linf"),
                                        ("l2", "L2"), ("L2", "L2")])
def test_eval_reads_the_norm_in_any_case_and_spells_it_as_the_papers(text, norm):
    # Was: `--norm linf` refused (argparse's choices are case-sensitive), while robust_accuracy
    # and the report take any case
    from robustrep.tasks.cli import build_parser
    args = build_parser("classify").parse_args(["classify", "eval", "RUN", "--norm", text])
    assert args.norm == norm


def test_eval_refuses_another_norm_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(["classify", "eval", "RUN", "--norm", "l1"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1
    assert "argument --norm: must be one of Linf, L2; got 'l1'" in err


def test_an_l2_eps_wider_than_the_images_is_one_line_naming_eps(monkeypatch, capsys, tmp_path):
    # 1x16x16 images in [0, 1] are at most sqrt(256) = 16 apart in L2: an L2 ball of 17 holds
    # them all. The images' shape is known once the data is read: robust_accuracy refuses it,
    # and the command names --eps (the data here stands in for the run's)
    import torch
    from torch import nn

    from robustrep.metrics import robust_accuracy
    from robustrep.tasks.classify import evaluate
    seen = {}

    def read_then_attack(run, **kwargs):
        seen.update(kwargs)
        x = torch.rand(2, 1, 16, 16)
        robust_accuracy(nn.Flatten(), (x, torch.zeros(2, dtype=torch.long)), "fgsm",
                        eps=kwargs["eps"], norm=kwargs["norm"])

    monkeypatch.setattr(evaluate, "evaluate_run", read_then_attack)
    assert main(["classify", "eval", str(tmp_path), "--norm", "l2", "--eps", "17",
                 "--attacks", "fgsm"]) == 2
    assert (seen["norm"], seen["eps"]) == ("L2", 17.0)  # as spelt, whatever the case given
    assert capsys.readouterr().err.strip() == (
        "robustrep classify eval: error: --eps: eps=17 is wider than the largest L2 distance "
        "between two images in [0, 1] of shape 1x16x16 (sqrt(256) = 16): the ball holds every "
        "image; an L2 radius is in [0, 1] pixel units (0.5 is the usual CIFAR-10 radius)")


def test_an_l2_radius_wider_than_the_images_is_refused_before_the_clean_pass(
        trained_run, monkeypatch, capsys):
    """Was: refused by robust_accuracy, after the clean pass had read every image."""
    from robustrep.tasks.classify import evaluate
    calls = []
    monkeypatch.setattr(evaluate, "evaluate_model", lambda *a, **k: calls.append(a))
    assert main(["classify", "eval", str(trained_run), "--norm", "l2", "--eps", "30",
                 "--quiet"]) == 2
    assert not calls
    assert capsys.readouterr().err.strip() == (
        "robustrep classify eval: error: --eps: eps=30 is wider than the largest L2 distance "
        "between two images in [0, 1] of shape 1x16x16 (sqrt(256) = 16): the ball holds every "
        "image; an L2 radius is in [0, 1] pixel units (0.5 is the usual CIFAR-10 radius)")


@pytest.mark.parametrize("option,value", [("prob", 0.5), ("switch_prob", 0.2),
                                          ("per_sample", True), ("partner", "flip")])
def test_a_later_mixing_methods_alpha_acts_and_its_other_draws_are_refused(option, value):
    # Was: cutmix's alpha refused as well (the policy drew every lam with mixup's alpha); each
    # method's alpha now acts (timm's mixup_alpha, cutmix_alpha), its other draws still do not
    from robustrep.tasks.classify.task import _check_combined_options
    names = ["mixup", "cutmix"]
    _check_combined_options(ClassifyConfig(reg="mixup,cutmix",
                                           reg_options={"cutmix": {"alpha": 1.0}}), names)
    cfg = ClassifyConfig(reg="mixup,cutmix",
                         reg_options={"cutmix": {"alpha": 1.0, option: value}})
    with pytest.raises(ConfigError, match=rf"^reg_options: cutmix's {option} would not act: "
                                          r"mixup,cutmix mix as one policy, .*; set them on "
                                          r"mixup$"):
        _check_combined_options(cfg, names)
