"""Every --reg (and combinations) trains a few steps end to end on tiny data."""

import pytest
import torch

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.gan.regs import METHODS, parse_regs
from robustrep.tasks.gan.train import train

IMAGE_REGS = ["none", *METHODS, "adaptivemix,asgan", "rpgan,dat,srmix"]
POINT_REGS = ["none", "adaptivemix", "mixup", "dat", "asgan", "rpgan", "adaptivemix,asgan"]


def _check_run(run, records, finite_losses, steps=2):
    recs = records(run)
    finite_losses(recs)
    assert max(r["step"] for r in recs) == steps
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert state["step"] == steps
    for key in ("G", "D", "opt_g", "opt_d", "scaler", "regs", "rng", "consumed"):
        assert key in state
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
    return recs, state


@pytest.mark.parametrize("reg", IMAGE_REGS)
def test_reg_runs_on_digits(reg, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg(reg=reg, out=str(run)), show_progress=False)
    recs, state = _check_run(run, records, finite_losses)
    keys = {k for r in recs for k in r}
    if "adaptivemix" in reg:
        assert "loss/d/am_shrink" in keys and "loss/g/am_shrink" in keys
    if any(m in reg for m in ("mixup", "cutmix", "srmix")):
        assert "loss/d/mix" in keys
    if "rpgan" in reg:  # D is the projection ensemble: K members' grouped weights
        assert any("proj" in k for k in state["D"])


@pytest.mark.parametrize("reg", POINT_REGS)
def test_reg_runs_on_grid(reg, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg("grid-mlp", reg=reg, out=str(run)), show_progress=False)
    _check_run(run, records, finite_losses)


@pytest.mark.parametrize("options", [
    dict(loss="hinge"), dict(loss="ls"), dict(loss="wasserstein"),
    dict(r1_gamma=1.0, r1_every=2, reg="adaptivemix"), dict(spectral_norm=True),
    dict(reg="asgan", asgan_free=True), dict(reg="cutmix", mix_mode="replace"),
    dict(reg="asgan", asgan_mode="add", asgan_steps=2),
    dict(reg="adaptivemix", am_mode="additive", am_g_shrink=False, am_distance="mse"),
    dict(amp="bf16", reg="adaptivemix"), dict(channels_last=True, reg="dat"), dict(n_dis=2),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_options_run(options, tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), **options), show_progress=False)
    _check_run(run, records, finite_losses)


def test_free_perturbation_state_is_checkpointed(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(reg="asgan", asgan_free=True, out=str(run)), show_progress=False)
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    delta = state["regs"]["asgan"]["delta"]
    assert delta is not None and delta.abs().max() > 0
    assert delta.abs().max() <= 0.05 + 1e-6  # within the core's default eps


def test_sngan_builds_and_steps(tiny_cfg, tmp_path, records, finite_losses):
    run = tmp_path / "run"
    cfg = tiny_cfg(arch="sngan", image_size=32, g_width=8, d_width=8, spectral_norm=True,
                   loss="hinge", steps=1, out=str(run))
    train(cfg, show_progress=False)
    _check_run(run, records, finite_losses, steps=1)


@pytest.mark.parametrize("text, message", [
    ("foo", "--reg: unknown regularizer .foo. for gan; valid: none, adaptivemix"),
    ("dat,asgan", "same place"),
    ("mixup,cutmix", "same place"),
    ("adaptivemix,rpgan", "same place"),
    ("mixup,mixup", "twice"),
])
def test_bad_reg_lists_choices(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_regs(text)


def test_parse_regs():
    assert parse_regs("none") == ()
    assert parse_regs(" adaptivemix , asgan ") == ("adaptivemix", "asgan")
    with pytest.raises(ConfigError, match="2-D points"):
        parse_regs("cutmix", arch="mlp")


@pytest.mark.parametrize("preset, want", [
    ("digits-dcgan", ("robustrep.projection.ProjectionEnsemble",
                      dict(num_views=2, base_channels=4, in_channels=1, image_size=16))),
    ("grid-mlp", ("robustrep.nets.mlp.MLPProjectionEnsemble",
                  dict(num_views=3, width=16, depth=1, in_dim=2))),
])
def test_rpgan_is_recorded_as_the_ensemble_the_run_builds(preset, want, tiny_cfg, tmp_path):
    # Was: regularizers.json held the registered class's defaults (num_views None,
    # base_channels 64, in_channels 3) beside a 12-view, 1-channel, width-32 D
    import json
    run = tmp_path / "run"
    train(tiny_cfg(preset, reg="rpgan", steps=1, out=str(run)), show_progress=False)
    (entry,) = json.loads((run / "regularizers.json").read_text())
    rec = entry["regularizers"]["rpgan"]
    assert rec["class"] == want[0] and want[1].items() <= rec["options"].items()
    D = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["D"]
    assert len(D["directions" if preset == "grid-mlp" else "projection.filters"]) == \
        want[1]["num_views"]


@pytest.mark.parametrize("options, message", [
    # were accepted: the ensemble is built from the --rp-* flags, so these did nothing
    (dict(reg="rpgan", reg_options={"rpgan": {"bogus": 4, "num_views": 2}}),
     "reg_options: rpgan's options are its flags (--rp-num-views, --rp-base-channels, "
     "--rp-kernel-size; the rest follow the data and D), not bogus, num_views"),
    # was a traceback after the run folder was made
    (dict(reg="rpgan", rp_kernel_size=3), "--reg rpgan (--rp-num-views, --rp-base-channels, "
                                          "--rp-kernel-size): kernel_size must be"),
    # was accepted, then a traceback at the first D step: the data's range is the program's
    (dict(reg="dat", reg_options={"dat": {"input_range": [0, 1]}}),
     "--reg dat: reg_options: dat's 'input_range' is set by this program ((-1.0, 1.0) here"),
])
def test_rpgan_and_program_set_options_are_refused_before_the_run(options, message, tiny_cfg,
                                                                   tmp_path):
    with pytest.raises(ConfigError) as err:
        train(tiny_cfg(out=str(tmp_path / "run"), **options), show_progress=False)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_a_kernel_size_for_the_2d_ensemble_is_refused(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="--rp-kernel-size: the 2-D ensemble projects points"):
        train(tiny_cfg("ring-mlp", reg="rpgan", rp_kernel_size=4, out=str(tmp_path / "r")),
              show_progress=False)


def test_a_resume_builds_and_records_the_options_its_record_keeps(tiny_cfg, tmp_path,
                                                                  monkeypatch, capsys):
    """A core default changed since the run started (here DAT's t, recorded as 0.5): the
    resumed D step is built with the recorded value, and the record gains no entry."""
    import json

    from robustrep.tasks.gan import train as gan_train
    run = tmp_path / "run"
    train(tiny_cfg("grid-mlp", reg="dat", steps=2, out=str(run)), stop_after=1,
          show_progress=False)
    record = json.loads((run / "regularizers.json").read_text())
    record[0]["regularizers"]["dat"]["options"]["t"] = 0.5
    (run / "regularizers.json").write_text(json.dumps(record))
    built, build = [], gan_train.build_regs
    monkeypatch.setattr(gan_train, "build_regs", lambda cfg, kept=None: built.append(
        build(cfg, kept)) or built[-1])
    capsys.readouterr()
    from robustrep.tasks.cli import main  # a dry run of the resume says what it keeps
    assert main(["gan", "train", "--resume", str(run), "--dry-run"]) == 0
    assert "records dat's t 0.5 (this version's default: 1.0)" in capsys.readouterr().err
    train(tiny_cfg("grid-mlp", reg="dat", steps=2), resume=str(run), show_progress=False)
    assert built[-1].by_name["dat"].t == 0.5  # the trainer's; 1.0 is the core default
    err = capsys.readouterr().err
    assert "records dat's t 0.5 (this version's default: 1.0)" in err
    assert f"resuming {run.resolve()} at step 1 of 2 from " in err
    assert json.loads((run / "regularizers.json").read_text()) == record


@pytest.mark.parametrize("preset, views", [("digits-dcgan", "projection.filters"),
                                           ("grid-mlp", "directions")])
def test_a_resume_keeps_the_ensemble_its_record_names(preset, views, tiny_cfg, tmp_path,
                                                      monkeypatch, capsys):
    """A K default changed since the run started (here the preset's 3, now 12): the resume
    builds the recorded 3-view ensemble and goes on as if never stopped, and says so. Was: the
    ensemble's record was never compared with what this version builds, and the resume built
    12 views, which the checkpoint's D did not fit."""
    import json

    from robustrep.tasks.cli import main
    from robustrep.tasks.gan.presets import PRESET_RP_NUM_VIEWS

    def cfg(**kw):  # K left to the preset
        return tiny_cfg(preset, reg="rpgan", rp_num_views=None, steps=2, **kw)
    with monkeypatch.context() as older:  # the version that started the runs
        older.setitem(PRESET_RP_NUM_VIEWS, preset, 3)
        train(cfg(out=str(tmp_path / "a")), show_progress=False)
        train(cfg(out=str(tmp_path / "b")), stop_after=1, show_progress=False)
    run = tmp_path / "b"
    record = json.loads((run / "regularizers.json").read_text())
    capsys.readouterr()
    note = (f"note: {run / 'regularizers.json'} records rpgan's num_views 3 (this version's "
            f"default: 12): core defaults that changed since the run started")
    assert main(["gan", "train", "--resume", str(run), "--dry-run"]) == 0
    assert note in capsys.readouterr().err  # a dry run of the resume says what it keeps
    train(cfg(), resume=str(run), show_progress=False)
    assert note in capsys.readouterr().err
    a, b = (torch.load(tmp_path / r / "checkpoints" / "latest.pt", weights_only=True)["D"]
            for r in "ab")
    assert len(b[views]) == 3 and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((run / "regularizers.json").read_text()) == record  # nothing changed


@pytest.mark.parametrize("record", ["as written", "registered class's defaults"])
def test_a_resume_of_an_unchanged_ensemble_keeps_nothing(record, tiny_cfg, tmp_path, capsys):
    """Was, on every resume of an image run: "records rpgan's num_views 2 (this version's
    default: None); rpgan's image_size 16 (...: None); ...", the registered class's defaults
    read as this version's. A record written before the ensemble was recorded (those defaults:
    base_channels 64 beside D's width 8) keeps nothing either."""
    import json

    from robustrep.tasks.gan.regs import kept_regs
    run = tmp_path / "run"
    cfg = tiny_cfg(reg="rpgan", rp_base_channels=None, steps=2, out=str(run))  # D's width
    train(cfg, stop_after=1, show_progress=False)
    if record != "as written":
        history = json.loads((run / "regularizers.json").read_text())
        history[0]["regularizers"]["rpgan"]["options"].update(
            num_views=None, image_size=None, in_channels=3, base_channels=64)
        (run / "regularizers.json").write_text(json.dumps(history))
    assert kept_regs(cfg, run) == ({}, None)
    capsys.readouterr()
    train(cfg, resume=str(run), show_progress=False)
    assert "records rpgan" not in capsys.readouterr().err
