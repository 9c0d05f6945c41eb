"""One run per folder (the lock), stale temp files, writability and fresh-folder checks."""

import errno
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.rundir import (RunDir, RunLock, absolute_paths, check_output_file,
                                           check_writable)
from robustrep.tasks.common.workers import resolve_workers

def test_second_process_is_refused_then_takes_over_a_dead_holders_lock(tmp_path, lock_holder):
    run = RunDir(tmp_path / "run")
    holder = lock_holder(run.path)
    try:
        with pytest.raises(RunFolderError, match=rf"{run.path} is in use by another run "
                                                 rf"\(pid {holder.pid} on "):
            run.create().lock()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up: the lock file stays behind
        holder.wait()
    assert (run.path / ".lock").is_file()
    lock = run.lock()  # the kernel dropped the dead process's flock
    assert f"pid {os.getpid()} " in (run.path / ".lock").read_text()
    lock.release()


def test_a_run_in_progress_is_said_to_be_in_use_whatever_checkpoints_it_has(tmp_path,
                                                                         lock_holder):
    """A second `train --out RUN` into a run that has checkpointed was told "RUN already holds a
    run; continue it with --resume RUN" (a resume the lock then refused), and one between the
    run's step file and its first latest.pt "copy step_N.pt to latest.pt" (under the live run)."""
    from robustrep.tasks.common.rundir import check_run_folder
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
    from robustrep.tasks.common.rundir import check_run_folder
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


def test_lock_is_exclusive_within_one_process_and_released(tmp_path):
    run = RunDir(tmp_path / "run").create()
    first = run.lock()
    with pytest.raises(RunFolderError, match="in use"):
        RunLock(run.path / ".lock").acquire()
    first.release()
    run.lock().release()


def test_a_sink_that_fails_to_close_is_a_warning_and_the_lock_still_goes(tmp_path, capsys):
    class Broken:
        def close(self):
            raise OSError("disk full")

    class Fine:
        closed = 0

        def close(self):
            self.closed += 1

    run = RunDir(tmp_path / "run").create()
    lock = run.lock()
    fine = Fine()
    run.sinks = [Broken(), fine]
    lock.on_release.append(run.close_sinks)
    lock.release()
    lock.release()  # a second release closes nothing twice
    assert fine.closed == 1 and run.sinks == []
    assert capsys.readouterr().err == (f"warning: could not close the Broken of {run.path}: "
                                       f"OSError: disk full\n")
    run.lock().release()  # the lock was released after all


def test_stale_temp_files_are_removed_when_the_lock_is_taken(tmp_path):
    run = RunDir(tmp_path / "run").create()
    stale = [run.checkpoints / ".latest.pt.abc123.tmp", run.path / ".config.json.x.tmp",
             run.samples / ".step_00000004.png.of_8m5p.tmp",  # a kill while a picture was written
             run.plots / ".losses.png.2lnhijh6.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    keep = run.checkpoints / "step_00000001.pt"
    keep.write_bytes(b"x")
    run.lock().release()
    assert not any(p.exists() for p in stale) and keep.exists()


def test_an_output_folders_lock_removes_its_stale_temp_files(tmp_path):
    from robustrep.tasks.common.rundir import output_lock
    out = tmp_path / "eval"
    out.mkdir()
    stale, keep = out / ".report.json.k3x.tmp", out / "notes.tmp"  # hidden: a killed write's
    for path in (stale, keep):
        path.write_bytes(b"partial")
    with output_lock(out) as held:
        assert held.fd is not None and not stale.exists() and keep.exists()
    assert output_lock(tmp_path / "new").path == tmp_path / "new" / ".lock"  # the folder made


def test_unwritable_output_is_refused_before_anything_is_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunFolderError, match=f"{blocker} is a file"):
        check_writable(blocker / "run" / "deeper")
    with pytest.raises(RunFolderError, match="is a folder"):
        check_output_file(tmp_path)
    target = tmp_path / "new" / "run"
    assert check_writable(target) == target and not (tmp_path / "new").exists()
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(RunFolderError, match="cannot write"):
            check_writable(ro / "run")


def test_fresh_run_refuses_another_runs_config(tmp_path):
    run = RunDir(tmp_path / "run").create()
    run.write_config({"lr": 0.1, "steps": 10})
    run.check_fresh({"lr": 0.1, "steps": 10})  # the same run restarted: allowed
    with pytest.raises(RunFolderError, match=rf"{run.path} already holds another run, which "
                                             r"wrote no checkpoint"):
        run.check_fresh({"lr": 0.2, "steps": 10})
    assert json.loads(run.config_file.read_text())["lr"] == 0.1


@pytest.mark.parametrize("cpus, want", [(1, 0), (2, 0), (3, 2), (4, 3), (16, 4)])
def test_auto_workers_follow_the_machine(cpus, want):
    assert resolve_workers(None, cpus=cpus) == want
    assert resolve_workers(5, cpus=cpus) == 5


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


EXPECTED = "(expected a folder holding config.json and checkpoints/)"
IS_FILE = f"is a file, not a run folder {EXPECTED}"
CHECKPOINT = "run/checkpoints/step_00000400.pt"
# command (the argv before RUN): the flags after RUN, where argparse names RUN ("argument RUN: "),
# what a checkpoint is given as
RUN_COMMANDS = {
    "gan eval": ([], "", "gan eval run --checkpoint step_00000400.pt"),
    "gan sample": ([], "", "gan sample run --checkpoint step_00000400.pt"),
    "classify eval": (["--attacks", "none"], "argument RUN: ",
                      f"run; or, for one no robustrep run wrote, --model NAME --checkpoint "
                      f"{CHECKPOINT}"),
    "ood score": (["--detectors", "MaxSoftmax"], "argument RUN: ",
                  f"run; or, for one no robustrep run wrote, --model NAME --checkpoint "
                  f"{CHECKPOINT}"),
}


@pytest.mark.parametrize("command", sorted(RUN_COMMANDS))
def test_a_run_that_is_no_folder_is_named_for_what_it_is(command, tmp_path, monkeypatch,
                                                         capsys):
    """Was: "... is not a robustrep run folder: no config.json" for a path that does not exist
    (gan), and for a file "cannot use --out FILE/eval: FILE is a file" (classify eval, ood
    score, gan sample), as if --out had been given."""
    from ..test_user_errors import run_main
    flags, argument, use = RUN_COMMANDS[command]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / CHECKPOINT).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("mine")
    missing = "RUN missing does not exist " + EXPECTED
    for run, error in (("missing", f"robustrep {command}: error: {missing}"),
                       (CHECKPOINT, f"{argument}{CHECKPOINT} {IS_FILE}; for a checkpoint "
                                    f"give its run folder: {use}"),
                       ("notes.txt", f"{argument}notes.txt {IS_FILE}")):
        code, err = run_main([*command.split(), run, *flags, "--quiet"], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert error in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "checkpoints", "notes.txt", "run", "step_00000400.pt"]  # nothing written


def test_read_config_names_a_missing_path_or_a_file(tmp_path):
    # Was: "X is not a robustrep run folder: no config.json" for both
    with pytest.raises(RunFolderError, match=rf"^{tmp_path / 'gone'} does not exist \(expected "
                                             r"a folder holding config.json"):
        RunDir(tmp_path / "gone").read_config()
    ckpt = tmp_path / "run" / "checkpoints" / "latest.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    with pytest.raises(RunFolderError, match=rf"^{ckpt} is a file, not a run folder \(expected "
                                             rf"a folder holding config.json and checkpoints/\); "
                                             rf"for a "
                                             rf"checkpoint give its run folder: "
                                             rf"{tmp_path / 'run'}$"):
        RunDir(ckpt).read_config()
    with pytest.raises(FileNotFoundError, match="not a robustrep run folder: no config.json"):
        RunDir(tmp_path / "run").read_config()


def test_a_wait_for_an_output_folder_is_said(tmp_path, capsys):
    # Was: silent; an eval into a folder another command held looked hung
    import threading
    from robustrep.tasks.common.rundir import check_not_training, lock_holder, output_lock
    out = tmp_path / "out"
    out.mkdir()
    assert lock_holder(out) is None  # no lock file
    held = RunLock(out / ".lock").acquire()
    assert lock_holder(out).startswith(f"pid {os.getpid()} on ")
    check_not_training(out)  # held, but no run's folder (no config.json): waited for
    threading.Timer(0.3, held.release).start()
    with output_lock(out):
        pass
    assert capsys.readouterr().err == (f"note: waiting for {out}, held by pid {os.getpid()} "
                                       f"on {os.uname().nodename}, to write there\n")
    assert lock_holder(out) is None  # released: nobody holds it
    with output_lock(out):
        pass
    assert capsys.readouterr().err == ""  # no wait, no note


@pytest.mark.parametrize("state, what", [("emptied", "holds no records"),
                                         ("deleted", "is missing")])
def test_a_resume_says_when_the_records_before_its_checkpoint_are_gone(state, what, tmp_path,
                                                                       capsys):
    """An emptied metrics.jsonl (a full disk, a user's `: > metrics.jsonl`) lost the records
    up to the checkpoint without a word; only a deleted one was said."""
    from robustrep.tasks.common.rundir import resumed
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
    from robustrep.tasks.common.rundir import resumed
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


def test_a_divergence_before_any_checkpoint_advises_a_folder_that_takes_new_options(tmp_path):
    # was "start again with a lower --lr", which the same --out refuses (its config.json differs)
    from robustrep.tasks.cli import main
    run = tmp_path / "run"
    assert main(["classify", "train", "--steps", "3", "--lr", "1e30", "--ckpt-every", "0",
                 "--out", str(run), "--quiet"]) == 1
    assert main(["classify", "train", "--steps", "3", "--lr", "0.01", "--out", str(run),
                 "--quiet"]) == 2  # the advice's other half
    from robustrep.tasks.common.checkpoint import resume_advice
    advice = resume_advice(None, None, run, "a lower --lr")
    assert advice == (f"no checkpoint was written before it; start again with a lower --lr, into "
                      f"another --out or after removing {run}")


def _resumes(run):
    return json.loads((run.path / "resumes.json").read_text())


def test_each_resume_records_the_options_it_changed_from_its_step(tmp_path, capsys):
    """config.json was rewritten with a resume's --lr and kept no trace of the run's own: the
    run read as trained at the new value throughout. resumes.json keeps, per resume, its step
    and each changed option's old and new values; a note names them."""
    from robustrep.tasks.common.rundir import resumed
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
    from robustrep.tasks.common.rundir import resumed
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
    from robustrep.tasks.common.rundir import open_run
    run = RunDir(tmp_path).create()
    run.write_config({"lr": 0.05})
    (tmp_path / "resumes.json").write_text('[{"step": 2, "changed": {}}]')
    open_run(run, {"lr": 0.05}, resume=False, log=None).release()
    assert not (tmp_path / "resumes.json").exists()


def test_a_folder_holding_a_resume_record_but_no_config_is_not_a_run(tmp_path):
    from robustrep.tasks.common.rundir import check_run_folder
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


def _refused(err_no):
    """tempfile.TemporaryFile as a folder refusing a new file with ``err_no`` answers."""
    def make(*args, **kwargs):
        raise OSError(err_no, os.strerror(err_no))
    return make


@pytest.mark.parametrize("err_no, why", [
    (errno.EACCES, "is not writable (Permission denied)"),
    (errno.EROFS, "is on a read-only file system"),
    # /proc answers ENOENT for a file made there: "/proc: No such file or directory"
    (errno.ENOENT, "takes no new files (making one there failed: No such file or directory)"),
])
def test_a_folder_that_takes_no_file_is_one_line_naming_the_file_and_its_folder(
        err_no, why, tmp_path, monkeypatch):
    """Was "cannot write to the folder of OUT ro/x.zip ro (ro: Permission denied)"; and for
    /proc, "/proc: No such file or directory", of a folder that is there."""
    monkeypatch.chdir(tmp_path)
    Path("ro").mkdir()
    monkeypatch.setattr(tempfile, "TemporaryFile", _refused(err_no))
    lines = {}
    for name, check in (("ro/x.zip", check_output_file), ("ro/new/x.zip", check_output_file),
                        ("ro", check_writable), ("ro/new", check_writable)):
        with pytest.raises(RunFolderError) as info:
            check(name, "OUT" if check is check_output_file else "--out")
        lines[name] = str(info.value)
    assert lines == {
        "ro/x.zip": f"cannot write OUT ro/x.zip: its folder ro {why}; choose another folder",
        "ro/new/x.zip": f"cannot write OUT ro/new/x.zip: its folder ro/new would be made in ro, "
                        f"which {why}; choose another folder",
        "ro": f"cannot write to --out ro: it {why}; choose another folder",
        "ro/new": f"cannot write to --out ro/new: it would be made in ro, which {why}; choose "
                  f"another folder"}


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux's /proc")
def test_proc_is_said_to_take_no_new_files():
    with pytest.raises(RunFolderError, match=r"^cannot write OUT /proc/o.zip: its folder /proc "
                                             r"takes no new files \(making one there failed: "):
        check_output_file("/proc/o.zip", "OUT")


def test_a_file_in_the_way_of_an_output_file_is_named(tmp_path):
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(RunFolderError) as info:
        check_output_file(tmp_path / "afile" / "x.zip", "OUT")
    assert str(info.value) == (f"cannot write OUT {tmp_path}/afile/x.zip: {tmp_path}/afile is a "
                               f"file, not a folder")


def test_an_output_path_too_long_names_its_option_and_the_limit(tmp_path, monkeypatch):
    """Was "File name too long: aaa..." (300 characters) from Path.exists(), no option named."""
    monkeypatch.chdir(tmp_path)
    limit = "and a file or folder name may have at most 255 bytes (the system's limit)"
    with pytest.raises(RunFolderError) as info:
        check_writable("a" * 300 + "/r", "--out")
    assert str(info.value) == (f"--out aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa/r: the folder name "
                               f"aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa in it is 300 bytes long, "
                               f"{limit}; give a shorter name")
    with pytest.raises(RunFolderError) as info:
        check_output_file("a" * 300 + ".zip", "OUT")
    assert str(info.value) == (f"OUT aaaaaaaaaaaaaaaaaaaa...aaaaaaaa.zip: its name is 304 bytes "
                               f"long, {limit}; give a shorter name")
    with pytest.raises(RunFolderError) as info:
        check_output_file("a" * 300 + "/x.zip", "--grid")
    assert str(info.value).startswith("--grid aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa/x.zip: the "
                                      "folder name ")
    assert list(tmp_path.iterdir()) == []


NOT_A_LOCK = ("is a folder, where robustrep keeps its lock file (a file holding 'pid N on "
              "HOST'); it is not robustrep's: move it away or choose another --out")


def test_a_folder_named_lock_is_named_with_what_to_do(tmp_path, capsys):
    """Was "cannot create the lock file R/.lock: Is a directory", and nothing to do about it."""
    from robustrep.tasks.cli import main
    from robustrep.tasks.common.rundir import check_run_folder
    lock = tmp_path / "R" / ".lock"
    lock.mkdir(parents=True)
    with pytest.raises(RunFolderError) as info:
        RunLock(lock).acquire()
    assert str(info.value) == f"{lock} {NOT_A_LOCK}"
    with pytest.raises(RunFolderError) as info:  # a trainer's, before any work
        check_run_folder(tmp_path / "R", resume=False)
    assert str(info.value) == f"{lock} {NOT_A_LOCK}"
    assert main(["report", "--collect", "--out", str(tmp_path / "R")]) == 2
    assert capsys.readouterr().err == f"robustrep report: error: {lock} {NOT_A_LOCK}\n"
    assert lock.is_dir() and list(lock.parent.iterdir()) == [lock]  # left as it was
    fifo = tmp_path / "F" / ".lock"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(RunFolderError, match=r"\.lock is not a file, where robustrep keeps"):
        RunLock(fifo).acquire()
