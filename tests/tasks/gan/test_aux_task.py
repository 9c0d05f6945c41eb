"""D auxiliary tasks (``--reg ssgan``, ``--reg infomax``): D wrapped with its head, the terms
logged and summed, combinations with the other places, refusals, sampling a run."""

import json

import pytest
import torch

from robustrep.infomax import InfoMax
from robustrep.ssgan import SSGAN
from robustrep.tasks.cli import main
from robustrep.tasks.gan.config import GanConfig
from robustrep.tasks.gan.models import build_discriminator
from robustrep.tasks.gan.presets import PRESETS
from robustrep.tasks.gan.regs import build_regs
from robustrep.tasks.gan.train import train

_SNGAN = dict(arch="sngan", image_size=32, spectral_norm=True, loss="hinge", n_dis=2)


def _loss_rows(records, run):
    return [r for r in records(run) if "loss/d/total" in r]


@pytest.mark.parametrize("options", [
    dict(reg="ssgan"), dict(reg="infomax"),
    dict(reg="ssgan,dat"), dict(reg="infomax,asgan"), dict(reg="ssgan,adaptivemix,cutmix"),
    dict(reg="ssgan", **_SNGAN), dict(reg="infomax,dat", **_SNGAN),
], ids=lambda o: o["reg"] + ("-sngan" if o.get("arch") == "sngan" else ""))
def test_trains_and_logs_the_terms(options, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), **options), show_progress=False)
    rows = _loss_rows(records, run)
    finite_losses(rows)
    term = "ss" if "ssgan" in options["reg"] else "infomax"
    for row in rows:
        assert row[f"loss/d/{term}"] > 0 and row[f"loss/g/{term}"] > 0
        d_parts = sum(v for k, v in row.items() if k.startswith("loss/d/") and k != "loss/d/total")
        g_parts = sum(v for k, v in row.items() if k.startswith("loss/g/") and k != "loss/g/total")
        assert row["loss/d/total"] == pytest.approx(d_parts, rel=1e-4)
        assert row["loss/g/total"] == pytest.approx(g_parts, rel=1e-4)
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    head = "rotation_head" if term == "ss" else "projection"
    assert any(k.startswith(head) for k in state["D"]), "the head is not part of D"
    # D's optimizer is built after wrapping, so it trains the head too
    cfg = tiny_cfg(**options)
    size = cfg.image_size
    wrapped = build_discriminator(cfg, (1, size, size), aux_task=build_regs(cfg).aux_task)
    n_opt = sum(len(g["params"]) for g in state["opt_d"]["param_groups"])
    assert n_opt == len(list(wrapped.parameters()))


@pytest.mark.parametrize("preset", ["cifar10-sngan", "cifar100-sngan", "cifar10-ssgan",
                                    "cifar10-infomax"])
def test_sngan_presets_train_as_mimicrys_cifar_table(preset):
    """mimicry's CIFAR-10 table (DAT's base): hinge, n_dis 5, batch 64, Adam 2e-4 (0, 0.9)
    decayed linearly to 0 over 100k steps; mimicry scores netG itself, so no G-EMA."""
    cfg = GanConfig(**PRESETS[preset])
    assert (cfg.arch, cfg.loss, cfg.n_dis, cfg.batch_size, cfg.steps) == \
        ("sngan", "hinge", 5, 64, 100_000)
    assert (cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.beta2, cfg.schedule) == \
        (2e-4, 2e-4, 0.0, 0.9, "linear")
    assert cfg.ema_decay == 0 and (cfg.z_dim, cfg.g_width, cfg.d_width) == (128, 256, 128)


@pytest.mark.parametrize("arch, d_width, sizes", [
    # DCGAN 16x16, n = log2(16/4) = 2: features d_width * 2^(n-1) * 16, local map d_width * 2^(n-2)
    ("dcgan", 8, dict(feature_dim=8 * 2 * 16, local_channels=8, global_dim=8 * 2 * 16)),
    # SNGAN-ResNet: features d_width (ReLU + spatial sum), local map the third block's d_width
    ("sngan", 8, dict(feature_dim=8, local_channels=8, global_dim=8)),
])
def test_wrapped_d_widths(arch, d_width, sizes, tiny_cfg):
    size = 32 if arch == "sngan" else 16
    for reg, cls in (("ssgan", SSGAN), ("infomax", InfoMax)):
        cfg = tiny_cfg(reg=reg, arch=arch, image_size=size, d_width=d_width,
                       spectral_norm=arch == "sngan")
        D = build_discriminator(cfg, (1, size, size), aux_task=build_regs(cfg).aux_task)
        assert isinstance(D, cls)
        if cls is SSGAN:
            assert D.rotation_head.linear.in_features == sizes["feature_dim"]
        else:
            assert D.projection.local_proj.a.in_channels == sizes["local_channels"]
            assert D.projection.global_proj.a.in_features == sizes["global_dim"]
        x = torch.randn(4, 1, size, size)
        assert D(x).shape == (4,)


@pytest.mark.parametrize("argv, needle", [
    (["--reg", "ssgan", "--preset", "grid-mlp"], "--reg ssgan (a D auxiliary task) needs --arch"),
    (["--reg", "infomax", "--arch", "stylegan2"], "needs --arch dcgan or sngan"),
    (["--reg", "ssgan,rpgan"], "ssgan cannot be combined with rpgan"),
    (["--reg", "ssgan,infomax"], "same place (D auxiliary task)"),
    # was: the preset's task joined to the names with the empty one dropped (ran as ssgan,dat)
    (["--reg", "dat,", "--preset", "cifar10-ssgan"], "got 'dat,' (an empty item)"),
])
def test_refused_in_one_line(argv, needle, capsys):
    preset = [] if "--preset" in argv else ["--preset", "digits-dcgan"]
    assert main(["gan", "train", "--dry-run", *preset, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_sample_loads_an_ssgan_run(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(reg="infomax,dat", out=str(run)), show_progress=False)
    grid = tmp_path / "grid.png"
    assert main(["gan", "sample", str(run), "--num", "4", "--grid", str(grid)]) == 0
    assert grid.stat().st_size > 0


@pytest.mark.parametrize("preset, reg, expected", [
    ("cifar10-ssgan", "dat", "ssgan,dat"), ("cifar10-infomax", None, "infomax"),
    ("cifar10-infomax", "asgan,mixup", "infomax,asgan,mixup")])
def test_presets_resolve_dats_table_settings(preset, reg, expected, capsys):
    argv = ["gan", "train", "--preset", preset, "--dry-run"] + (["--reg", reg] if reg else [])
    assert main(argv) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["reg"] == expected
    assert {k: cfg[k] for k in ("arch", "loss", "batch_size", "lr_g", "lr_d", "beta1", "beta2",
                                "n_dis", "steps", "d_width", "g_width", "spectral_norm")} == dict(
        arch="sngan", loss="hinge", batch_size=64, lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.9,
        n_dis=5, steps=100_000, d_width=128, g_width=256, spectral_norm=True)


def test_reg_none_keeps_the_presets_aux_task_and_says_so(capsys):
    """On cifar10-ssgan the rotation head is the network (SSGAN, DAT's baseline row): ``--reg
    none`` adds nothing to it; a note names the task in effect and how to drop it."""
    assert main(["gan", "train", "--preset", "cifar10-ssgan", "--reg", "none", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["reg"] == "ssgan"
    assert err == ("note: --preset cifar10-ssgan includes its D auxiliary task ssgan: --reg "
                   "none runs as --reg ssgan (--aux-task none drops it)\n")
    assert main(["gan", "train", "--preset", "cifar10-ssgan", "--reg", "ssgan", "--dry-run"]) == 0
    assert capsys.readouterr().err == ""  # nothing was added to what --reg says


@pytest.mark.parametrize("reg, expected", [(None, "none"), ("dat", "dat"), ("none", "none")])
def test_aux_task_none_drops_the_presets_aux_task(reg, expected, capsys):
    argv = ["gan", "train", "--preset", "cifar10-infomax", "--aux-task", "none", "--dry-run"]
    assert main(argv + (["--reg", reg] if reg else [])) == 0
    out, err = capsys.readouterr()
    cfg = json.loads(out)
    assert cfg["reg"] == expected and cfg["steps"] == 100_000 and err == ""


@pytest.mark.parametrize("argv, needle", [
    (["--preset", "cifar10-ssgan", "--aux-task", "none", "--reg", "ssgan,dat"],
     "--aux-task none drops the D auxiliary task ssgan that --reg names"),
    (["--resume", "RUN", "--aux-task", "none"], "drop --preset/--config/--aux-task"),
    # were accepted with nothing to drop (and --reg ssgan then trained the task "dropped")
    (["--aux-task", "none"], "--aux-task none drops the D auxiliary task of presets "
                             "cifar10-ssgan and cifar10-infomax; preset digits-dcgan has none, "
                             "drop --aux-task"),
    (["--preset", "cifar10-sngan", "--aux-task", "none", "--reg", "infomax"],
     "preset cifar10-sngan has none"),
    # was "regularizers 'infomax,ssgan' combine ...", a combination the user never typed, with
    # no word of the preset's task or of --aux-task
    (["--preset", "cifar10-infomax", "--reg", "ssgan"],
     "--preset cifar10-infomax includes its D auxiliary task infomax, so --reg ssgan would run "
     "as --reg infomax,ssgan: regularizers 'infomax,ssgan' combine infomax and ssgan, which act "
     "in the same place (D auxiliary task); take at most one of infomax, ssgan; add --aux-task "
     "none to train --reg ssgan without infomax"),
])
def test_aux_task_refusals_are_one_line(argv, needle, capsys):
    assert main(["gan", "train", "--dry-run", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as info:  # the parser's refusal, with the choices
        main(["gan", "train", "--dry-run", "--aux-task", "ssgan"])
    assert info.value.code == 2
    assert "argument --aux-task: must be one of preset, none; got 'ssgan'" in \
        capsys.readouterr().err


def test_help_says_which_presets_carry_an_aux_task(capsys):
    with pytest.raises(SystemExit):
        main(["gan", "train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "cifar10-ssgan and cifar10-infomax include their D auxiliary task" in text
    assert "--aux-task {preset,none}" in text


def test_preset_trains_on_digits(tmp_path, records):
    run = tmp_path / "run"
    assert main(["gan", "train", "--preset", "cifar10-infomax", "--reg", "dat", "--dataset",
                 "digits", "--steps", "1", "--g-width", "8", "--d-width", "8", "--batch-size", "8",
                 "--n-dis", "1", "--eval-every", "0", "--final-eval", "false", "--device", "cpu",
                 "--out", str(run), "--quiet"]) == 0
    row = _loss_rows(records, run)[0]
    assert "loss/d/infomax" in row and "loss/g/infomax" in row
    assert json.loads((run / "config.json").read_text())["reg"] == "infomax,dat"


def test_fid_records_carry_images_seen(tiny_cfg, tmp_path, records, undrawn_curves):
    run = tmp_path / "run"
    train(tiny_cfg(reg="ssgan", steps=2, eval_every=1, final_eval=True, n_dis=2, out=str(run)),
          show_progress=False)
    evals = [r for r in records(run) if "fid" in r]
    # n_dis 2 real batches of 8 per step: 16 images a step
    assert [(r["step"], r["kimg"]) for r in evals] == [(1, 0.016), (2, 0.032)]
