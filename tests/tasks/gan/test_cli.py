"""The gan CLI: help, dry-run, bad presets/options, missing datasets."""

import json

import pytest

from robustrep.tasks.cli import main


@pytest.mark.parametrize("command", ["train", "eval", "sample"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["gan", command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: robustrep gan {command}" in out


def test_train_help_lists_presets_and_regs(capsys):
    with pytest.raises(SystemExit):
        main(["gan", "train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in ("digits-dcgan", "grid-mlp", "cifar10-sngan", "imagefolder-dcgan64"):
        assert name in out
    for reg in ("adaptivemix", "srmix", "asgan", "rpgan"):
        assert reg in out
    assert "--channels-last" in out and "--amp" in out and "--compile" in out


def test_help_states_the_defaults_a_run_without_preset_gets(capsys):
    """The help showed the config class's batch size 64 and K None where a plain `gan train`
    trains with the default preset's 32 and 12."""
    import re
    with pytest.raises(SystemExit):
        main(["gan", "train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    options = help_text[help_text.index("options (override the preset"):]  # past the usage
    assert main(["gan", "train", "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    for flag, key in (("--batch-size", "batch_size"), ("--rp-num-views", "rp_num_views"),
                      ("--steps", "steps"), ("--dataset", "dataset")):
        stated = re.search(rf"{flag} \S+ (?:(?! --).)*?\(default: ([^)]*)\)", options)[1]
        assert stated == str(resolved[key]), flag
    assert "the defaults shown are digits-dcgan's, the default preset" in help_text


def test_dry_run_prints_resolved_config(capsys):
    assert main(["gan", "train", "--preset", "grid-mlp", "--reg", "adaptivemix,asgan",
                 "--steps", "7", "--compile", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["preset"] == "grid-mlp" and cfg["arch"] == "mlp" and cfg["steps"] == 7
    assert cfg["reg"] == "adaptivemix,asgan" and cfg["compile"] is True


def test_workers_is_spelled_as_the_other_programs_spell_it(tmp_path, capsys):
    """classify, ood, timm and stylegan2-ada take --workers; gan took only --num-workers."""
    for flag in ("--workers", "--num-workers"):  # data read from disk (digits: in memory)
        assert main(["gan", "train", flag, "3", "--dataset", "cifar10", "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["num_workers"] == 3
    (tmp_path / "c.yaml").write_text("workers: 2\n")  # a file gives the option's own name
    assert main(["gan", "train", "--config", str(tmp_path / "c.yaml"), "--dry-run"]) == 2
    assert "did you mean 'num_workers'? (--workers is its flag" in capsys.readouterr().err


def test_dry_run_leaves_this_machines_files_unchecked(tmp_path, capsys):
    """--help: "Not checked: this machine (a GPU, the data files), so a config can be checked
    where it will not run". Was: a cluster's --inception-weights path (absent here) refused by
    --dry-run, as no --data-root or --init is; the run itself still refuses it first."""
    missing = str(tmp_path / "cluster" / "pt_inception-2015-12-05-6726825d.pth")
    argv = ["gan", "train", "--preset", "imagefolder-dcgan64", "--data-root",
            str(tmp_path / "cluster" / "cats"), "--inception-weights", missing]
    assert main([*argv, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["inception_weights"] == missing
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert f"--inception-weights {missing} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_config_file_between_preset_and_flags(tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"steps": 11, "lr_d": 1e-3}))
    assert main(["gan", "train", "--config", str(path), "--lr-d", "5e-4", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["steps"] == 11 and cfg["lr_d"] == 5e-4 and cfg["preset"] == "digits-dcgan"


def test_unknown_preset_lists_valid(capsys):
    assert main(["gan", "train", "--preset", "mnist-dcgan", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'mnist-dcgan'" in err
    assert "digits-dcgan" in err and "cifar10-sngan" in err


def test_unknown_option_in_config_file_names_the_closest(tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"lr_dd": 1.0}))
    assert main(["gan", "train", "--config", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.endswith(f"unknown option(s) lr_dd in config file {path}; "
                                            f"did you mean 'lr_d'?\n")
    path.write_text(json.dumps({"learning_rate": 1.0}))
    assert main(["gan", "train", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and "listed by --help" in err


def test_bad_choice_lists_valid(capsys):
    with pytest.raises(SystemExit):
        main(["gan", "train", "--loss", "wgan", "--dry-run"])
    assert "hinge" in capsys.readouterr().err
    assert main(["gan", "train", "--reg", "adamix", "--dry-run"]) == 2
    assert "valid: none, adaptivemix" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["cifar10-dcgan", "cifar100-sngan"])
def test_missing_cifar_root(preset, tmp_path, capsys):
    assert main(["gan", "train", "--preset", preset, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--data-root" in err and "cifar-10" in err and "python version" in err
    assert not (tmp_path / "r").exists()  # no run folder for a run that cannot start


def test_cifar_root_without_files_names_expected_path(tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    assert main(["gan", "train", "--preset", "cifar10-dcgan", "--data-root", str(root),
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(root / "cifar-10-batches-py") in err and "data_batch_1" in err


def test_nonexistent_root_and_empty_image_folder(tmp_path, capsys):
    assert main(["gan", "train", "--preset", "imagefolder-dcgan64", "--data-root",
                 str(tmp_path / "nope"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nope") in err and "<class>/<image>" in err
    (tmp_path / "empty").mkdir()
    assert main(["gan", "train", "--preset", "imagefolder-dcgan64", "--data-root",
                 str(tmp_path / "empty"), "--quiet"]) == 2
    assert "no images found" in capsys.readouterr().err


def test_a_class_folder_named_train_is_refused_in_one_line(tmp_path, capsys):
    """Was: v/{bus,car,train}/ trained on v/train/ alone, as timm's split, without a word."""
    from PIL import Image
    for name in ("bus", "car", "train"):
        (tmp_path / "v" / name).mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(tmp_path / "v" / name / "0.png")
    assert main(["gan", "train", "--dataset", "imagefolder", "--data-root", str(tmp_path / "v"),
                 "--image-size", "16", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robustrep gan train: error: {tmp_path / 'v'} holds train/ beside "
                          f"bus/, car/, none an evaluation split") and err.count("\n") == 1, err


def test_resume_missing_run(tmp_path, capsys):
    assert main(["gan", "train", "--resume", str(tmp_path / "none"), "--quiet"]) == 2
    assert "config.json" in capsys.readouterr().err


def test_resume_with_lower_learning_rates_applies_them(tiny_cfg, tmp_path):
    """The divergence advice: resume with a lower --lr-d; the restored D optimizer uses it."""
    from robustrep.tasks.common.checkpoint import load_checkpoint
    from robustrep.tasks.gan.train import train
    run = tmp_path / "run"
    train(tiny_cfg(steps=2, ckpt_every=2, out=str(run)), show_progress=False)
    assert main(["gan", "train", "--resume", str(run), "--steps", "3", "--lr-d", "1e-3",
                 "--beta1", "0", "--quiet"]) == 0
    state = load_checkpoint(run / "checkpoints" / "latest.pt", map_location="cpu")
    assert state["step"] == 3
    assert state["opt_d"]["param_groups"][0]["lr"] == 1e-3
    assert state["opt_d"]["param_groups"][0]["betas"] == (0.0, 0.999)
    assert state["opt_g"]["param_groups"][0]["lr"] == 2e-4  # not asked to change
    assert json.loads((run / "config.json").read_text())["lr_d"] == 1e-3


def test_a_run_whose_options_replace_the_presets_data_is_not_named_after_it(tiny_cfg):
    # Was: --dataset lsun on the default preset showed 'gan digits-dcgan none' and made
    # runs/gan/digits-dcgan-none-<time>
    from robustrep.tasks.gan.train import run_path
    assert tiny_cfg().label == "digits-dcgan"
    assert tiny_cfg(dataset="lsun", lsun_classes="bedroom_train").label == "lsun-dcgan"
    assert tiny_cfg(arch="sngan", image_size=32).label == "digits-sngan"
    path = run_path(tiny_cfg(dataset="lsun", lsun_classes="bedroom_train",
                             reg="adaptivemix,dat", out=None), None)
    assert path.parent.as_posix() == "runs/gan"
    assert path.name.startswith("lsun-dcgan-adaptivemix+dat-")


def test_help_offers_no_flag_for_an_option_the_program_sets(capsys):
    # --adaptivemix-fuse-passes was listed, and always refused ("set by this program")
    with pytest.raises(SystemExit):
        main(["gan", "train", "--help"])
    text = capsys.readouterr().out
    assert "--adaptivemix-fuse-passes" not in text and "--adaptivemix-input-range" not in text
    assert "--am-mode" in text
