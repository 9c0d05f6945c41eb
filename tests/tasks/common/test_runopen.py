"""Opening a training run: the checks before any work (a run in progress, checkpoints without a
config, a user's files), its paths saved absolute, a fresh run's folder, and a resume's last
writes (the records said lost or not, resumes.json)."""

import json
import os
import signal
from pathlib import Path

import pytest

from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.rundir import RunDir
from robustrep.tasks.common.runopen import absolute_paths


def test_a_run_in_progress_is_said_to_be_in_use_whatever_checkpoints_it_has(tmp_path,
                                                                         lock_holder):
    """A second `train --out RUN` into a run that has checkpointed was told "RUN already holds a
    run; continue it with --resume RUN" (a resume the lock then refused), and one between the
    run's step file and its first latest.pt "copy step_N.pt to latest.pt" (under the live run)."""
    from robustrep.tasks.common.runopen import check_run_folder
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "step_00000002.pt").write_bytes(b"being written")
    holder = lock_holder(run)
    try:
        for latest in (False, True):
            if latest:
                (run / "checkpoints" / "latest.pt").write_bytes(b"written")
            for resume in (False, True):
                with pytest.raises(RunFolderError) as info:
                    check_run_folder(run, resume)
                assert str(info.value) == (f"{run} is in use by another run (pid {holder.pid} "
                                           f"on {os.uname().nodename}); wait for it to finish "
                                           f"or choose another --out")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert check_run_folder(run, True) == run / "checkpoints" / "latest.pt"


def test_a_folder_of_checkpoints_without_config_json_is_not_offered_a_resume(tmp_path):
    """Was: "already holds a run; continue it with --resume D", which then said D "is not a
    robustrep run folder: no config.json"."""
    from robustrep.tasks.common.runopen import check_run_folder
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.pt").write_bytes(b"a checkpoint")
    with pytest.raises(RunFolderError) as info:
        check_run_folder(tmp_path, resume=False)
    assert str(info.value) == (f"{tmp_path} holds checkpoints/latest.pt but no config.json: it "
                               f"is not a robustrep run, and cannot be resumed; choose another "
                               f"--out")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RunFolderError, match="already holds a run; continue it with --resume"):
        check_run_folder(tmp_path, resume=False)


def test_a_run_saves_its_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-model").mkdir()
    config = {"data_root": "data", "pretrained_file": "~/w.pth", "inception_weights": None,
              "model": "my-model", "steps": 3, "out": "runs/x"}
    saved = absolute_paths(config)
    assert saved == {**config, "data_root": str(tmp_path / "data"),
                     "pretrained_file": str(Path("~/w.pth").expanduser()),
                     "model": str(tmp_path / "my-model")}
    for name in ("resnet18", "hf-hub:timm/resnet18.a1_in1k"):  # names, not paths: kept
        assert absolute_paths({"model": name}) == {"model": name}
    assert absolute_paths({"model": "local-dir:m"}) == {"model": f"local-dir:{tmp_path / 'm'}"}
    # was tmp/here/../data: once here/ moved, the run named nothing
    monkeypatch.chdir(tmp_path / "my-model")
    assert absolute_paths({"data_root": "../data"}) == {"data_root": str(tmp_path / "data")}


def test_a_gan_run_saves_its_init_pickle_and_feature_run_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saved = absolute_paths({"init": "net.pkl", "fid_features": "run:../cls"})
    assert saved == {"init": str(tmp_path / "net.pkl"),
                     "fid_features": f"run:{tmp_path.parent / 'cls'}"}
    for name in ("inception", "digits", "run:"):  # names, and a bare prefix the check refuses
        assert absolute_paths({"fid_features": name}) == {"fid_features": name}


@pytest.mark.parametrize("state, what", [("emptied", "holds no records"),
                                         ("deleted", "is missing")])
def test_a_resume_says_when_the_records_before_its_checkpoint_are_gone(state, what, tmp_path,
                                                                       capsys):
    """An emptied metrics.jsonl (a full disk, a user's `: > metrics.jsonl`) lost the records
    up to the checkpoint without a word; only a deleted one was said."""
    from robustrep.tasks.common.runopen import resumed
    run = RunDir(tmp_path).create()
    run.metrics_file.write_text("")
    if state == "deleted":
        run.metrics_file.unlink()
    resumed(run, {"steps": 8}, 4)
    assert capsys.readouterr().err == (f"warning: {run.metrics_file} {what}: the records up to "
                                       f"step 4 are lost; the resumed run's records start after "
                                       f"it\n")
    run.log(5, loss=1.0)
    resumed(run, {"steps": 8}, 5)  # its records are there: nothing to say
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("every, step, lost", [
    (dict(log_every=5, eval_every=0), 4, False), (dict(log_every=5, eval_every=0), 5, True),
    (dict(log_every=0, eval_every=3), 3, True), (dict(log_every=0, eval_every=0), 8, True),
    (dict(log_every=0, eval_every=0), 7, False)])
def test_a_resume_before_the_first_record_says_nothing_was_lost(every, step, lost, tmp_path,
                                                                capsys):
    """A run stopped before it logged anything (--log-every above its step) was told on resume
    that "the records up to step N are lost": there were none. A run logs every log_every
    steps, evaluates every eval_every, and logs its last step."""
    from robustrep.tasks.common.runopen import resumed
    run = RunDir(tmp_path).create()
    run.write_config({"steps": 8, **every})
    run.metrics_file.write_text("")
    resumed(run, {"steps": 8, **every, "log_every": 1}, step)  # the run's own, not the resume's
    said = (f"warning: {run.metrics_file} holds no records: the records up to step {step} are "
            f"lost; the resumed run's records start after it\n")
    assert capsys.readouterr().err.endswith(said) == lost


def test_a_folder_refused_for_another_runs_config_gets_no_subfolders(tmp_path, capsys):
    # was: checkpoints/, plots/ and samples/ made in the user's folder before the refusal
    from robustrep.tasks.cli import main
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"something": "else"}))
    assert main(["classify", "train", "--steps", "1", "--out", str(folder), "--quiet"]) == 2
    assert "already holds another run" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == \
        ["config.json"]


def _resumes(run):
    return json.loads((run.path / "resumes.json").read_text())


def test_each_resume_records_the_options_it_changed_from_its_step(tmp_path, capsys):
    """config.json was rewritten with a resume's --lr and kept no trace of the run's own: the
    run read as trained at the new value throughout. resumes.json keeps, per resume, its step
    and each changed option's old and new values; a note names them."""
    from robustrep.tasks.common.runopen import resumed
    run = RunDir(tmp_path).create()
    run.write_config({"lr": 0.05, "steps": 4, "data_root": str(tmp_path)})
    for step in (1, 2, 3, 4):
        run.log(step, loss=1.0)
    # an option this version added (absent from the saved config) is no override
    resumed(run, {"lr": 0.5, "steps": 6, "data_root": str(tmp_path), "added": 1}, 2)
    assert _resumes(run) == [{"step": 2, "changed": {"lr": {"old": 0.05, "new": 0.5},
                                                     "steps": {"old": 4, "new": 6}}}]
    assert json.loads(run.config_file.read_text())["lr"] == 0.5
    assert capsys.readouterr().err == (f"note: {tmp_path} resumed at step 2 with lr 0.05 -> 0.5, "
                                       f"steps 4 -> 6 (config.json holds the new values, "
                                       f"resumes.json the old)\n")
    run.log(3, loss=1.0)
    run.log(4, loss=1.0)
    resumed(run, {"lr": 0.5, "steps": 6, "data_root": str(tmp_path), "added": 1}, 4)
    assert _resumes(run)[1:] == [{"step": 4, "changed": {}}]
    assert capsys.readouterr().err == ""  # nothing changed: nothing to say
    # an older checkpoint resumed: the resume at step 4 ran steps now run again, and goes
    resumed(run, {"lr": 0.1, "steps": 6, "data_root": str(tmp_path), "added": 1}, 2)
    assert _resumes(run) == [{"step": 2, "changed": {"lr": {"old": 0.05, "new": 0.5},
                                                     "steps": {"old": 4, "new": 6}}},
                             {"step": 2, "changed": {"lr": {"old": 0.5, "new": 0.1}}}]
    assert "with lr 0.5 -> 0.1 (" in capsys.readouterr().err


def test_a_damaged_resume_record_is_said_and_started_again(tmp_path, capsys):
    from robustrep.tasks.common.runopen import resumed
    run = RunDir(tmp_path).create()
    run.write_config({"lr": 0.05})
    run.log(2, loss=1.0)
    (tmp_path / "resumes.json").write_text('[{"step": 1')  # cut mid-write by hand
    resumed(run, {"lr": 0.05}, 2)
    assert _resumes(run) == [{"step": 2, "changed": {}}]
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {tmp_path / 'resumes.json'} is unreadable (") and \
        err.endswith("); it starts again with this resume\n") and err.count("\n") == 1


def test_a_fresh_run_drops_the_resumes_of_the_run_it_restarts(tmp_path):
    """A run restarted from scratch in its folder (its checkpoints removed) keeps its
    config.json; the record of the old run's resumes is not this run's."""
    from robustrep.tasks.common.runopen import open_run
    run = RunDir(tmp_path).create()
    run.write_config({"lr": 0.05})
    (tmp_path / "resumes.json").write_text('[{"step": 2, "changed": {}}]')
    open_run(run, {"lr": 0.05}, resume=False, log=None).release()
    assert not (tmp_path / "resumes.json").exists()


def test_a_folder_holding_a_resume_record_but_no_config_is_not_a_run(tmp_path):
    from robustrep.tasks.common.runopen import check_run_folder
    (tmp_path / "resumes.json").write_text("[]")  # the user's own file of that name
    with pytest.raises(RunFolderError, match="holds a resumes.json but no config.json"):
        check_run_folder(tmp_path, resume=False)


def test_gan_train_records_a_resumes_changed_learning_rate(tmp_path, capsys):
    """gan train resumes through the same code as classify train."""
    from robustrep.tasks.cli import main
    from robustrep.tasks.gan.train import train

    from ..gan.conftest import tiny_config
    run = tmp_path / "run"
    train(tiny_config("grid-mlp", steps=1, ckpt_every=1, out=str(run)), show_progress=False)
    old = json.loads((run / "config.json").read_text())["lr_d"]
    assert main(["gan", "train", "--resume", str(run), "--steps", "2", "--lr-d", "0.0001",
                 "--quiet"]) == 0
    assert _resumes(RunDir(run)) == [{"step": 1, "changed": {
        "steps": {"old": 1, "new": 2}, "lr_d": {"old": old, "new": 0.0001}}}]
    assert f"resumed at step 1 with steps 1 -> 2, lr_d {old!r} -> 0.0001 (" in \
        capsys.readouterr().err


def test_a_value_edited_into_config_json_is_recorded_as_a_change(tmp_path, capsys):
    """An option a resume may change edited by hand in config.json (lr 0.05 -> 3.0) was applied
    without a note, and resumes.json said nothing changed: it was compared with the edited file,
    not with the options the checkpoint was trained with."""
    import torch

    from robustrep.tasks.common.runopen import resumed
    run = RunDir(tmp_path / "run").create()
    run.write_config({"lr": 3.0, "steps": 4, "data_root": str(tmp_path / "new"), "out": "x"})
    checkpoint = run.checkpoints / "latest.pt"
    # as saved: paths as given (a relative one names no folder from here), out the run's own
    torch.save({"step": 2, "config": {"lr": 0.05, "steps": 4, "data_root": "data",
                                      "out": "x"}}, checkpoint)
    run.log(2, loss=1.0)
    resumed(run, json.loads(run.config_file.read_text()), 2, checkpoint)
    assert _resumes(run) == [{"step": 2, "changed": {"lr": {"old": 0.05, "new": 3.0}}}]
    assert capsys.readouterr().err.endswith(
        f"note: {run.path} resumed at step 2 with lr 0.05 -> 3.0 (config.json holds the new "
        f"values, resumes.json the old)\n")
    # an absolute path is compared; a checkpoint without a saved config compares config.json
    torch.save({"step": 2, "config": {"data_root": str(tmp_path / "old")}}, checkpoint)
    resumed(run, json.loads(run.config_file.read_text()), 2, checkpoint)
    assert _resumes(run)[1] == {"step": 2, "changed": {"data_root": {
        "old": str(tmp_path / "old"), "new": str(tmp_path / "new")}}}
    torch.save({"step": 2}, checkpoint)
    resumed(run, json.loads(run.config_file.read_text()), 2, checkpoint)
    assert _resumes(run)[2] == {"step": 2, "changed": {}}


@pytest.mark.parametrize("saved_out", ["run", None, "elsewhere"])
def test_a_run_stopped_before_its_first_checkpoint_is_told_how_to_start_again(
        saved_out, tmp_path, monkeypatch):
    """A run killed before its first checkpoint was told only "cannot resume RUN: no checkpoint
    at RUN/checkpoints/latest.pt". A fresh run into the folder with its very options starts it
    again, whatever --out it saved (classify's saves none; from another folder a relative one
    names another place): --out is left out of the comparison."""
    from robustrep.tasks.common.errors import CheckpointError
    from robustrep.tasks.common.runopen import check_run_folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    out = {} if saved_out is None else {"out": saved_out}
    (tmp_path / "run" / "config.json").write_text(json.dumps({"ckpt_every": 150, **out}))
    with pytest.raises(CheckpointError) as info:
        check_run_folder("run", resume=True)
    assert str(info.value) == ("cannot resume run: no checkpoint at run/checkpoints/latest.pt; "
                               "it was stopped before its first checkpoint (--ckpt-every 150): "
                               "start it again with the command that started it, or with "
                               "--config run/config.json --out run")


def test_relative_paths_an_earlier_version_saved_are_read_from_where_the_run_started(
        tmp_path, monkeypatch):
    """A run started as `--out runs/g --fid-features run:cls` from tmp saved both as given: read
    from another folder, run:cls named that folder's cls (a FID on another run's features)."""
    from robustrep.tasks.common.runopen import started_paths
    run = tmp_path / "runs" / "g"
    run.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    saved = {"out": "runs/g", "fid_features": "run:cls", "init": "../nets/a.pkl", "steps": 3}
    assert started_paths(run, saved) == {**saved, "fid_features": f"run:{tmp_path / 'cls'}",
                                         "init": str(tmp_path.parent / "nets" / "a.pkl")}
    absolute = {**saved, "fid_features": "run:/x/cls", "init": None}
    assert started_paths(run, absolute) is absolute  # this version's: as saved
    for out in (str(run), "other/g", "../g"):  # the start folder cannot be told
        with pytest.raises(RunFolderError, match=r"names fid_features 'run:cls' relative to "
                                                 r"the folder the run was started in"):
            started_paths(run, {**saved, "out": out})
