"""The run folder: its lock taken with stale temp files removed, its sinks closed, a fresh run's
config check, a run folder read back (a missing path or a file named for what it is)."""

import json

import pytest

from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.rundir import RunDir
from robustrep.tasks.common.workers import resolve_workers


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


@pytest.mark.parametrize("again", ["./runs/a", "absolute", "from another folder"])
def test_a_run_stopped_before_its_first_checkpoint_starts_again_however_out_is_spelled(
        again, tmp_path, monkeypatch):
    """Was refused ("already holds another run ... its config.json differs from these
    options"): config.json keeps --out as given, and the folder holding it is the run's however
    --out named it (./runs/a, its absolute path, a relative one from another working folder)."""
    from robustrep.tasks.cli import main
    monkeypatch.chdir(tmp_path)
    argv = ["gan", "train", "--preset", "grid-mlp", "--steps", "2", "--batch-size", "16",
            "--eval-every", "0", "--final-eval", "false", "--ckpt-every", "2", "--quiet"]
    assert main([*argv, "--out", "runs/a"]) == 0
    run = tmp_path / "runs" / "a"
    for made in (*(run / "checkpoints").iterdir(), run / "finished.json"):  # as if killed early
        made.unlink()
    out = {"./runs/a": "./runs/a", "absolute": str(run), "from another folder": "../runs/a"}
    if again == "from another folder":
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
    assert main([*argv, "--out", out[again]]) == 0
    assert (run / "checkpoints" / "latest.pt").is_file()
    assert json.loads((run / "config.json").read_text())["out"] == out[again]


def test_the_advice_to_start_a_stopped_run_again_works_from_another_folder(tmp_path, monkeypatch,
                                                                          capsys):
    """Was: "start it again with the command that started it, from the folder it was started
    in": its saved relative --out named another place from here. ``--config RUN/config.json
    --out RUN`` starts it again from anywhere (``out`` is no option the folder must match)."""
    from robustrep.tasks.cli import main
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["gan", "train", "--preset", "grid-mlp", "--steps", "2", "--batch-size", "16",
                 "--eval-every", "0", "--final-eval", "false", "--ckpt-every", "2", "--quiet",
                 "--out", "runs/a"]) == 0
    run = tmp_path / "runs" / "a"
    for made in (*(run / "checkpoints").iterdir(), run / "finished.json"):  # as if killed early
        made.unlink()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(["gan", "train", "--resume", "../runs/a", "--quiet"]) == 2
    advice = capsys.readouterr().err.strip().split(", or with ")[1]
    assert advice == "--config ../runs/a/config.json --out ../runs/a"
    assert main(["gan", "train", *advice.split(), "--quiet"]) == 0
    assert (run / "checkpoints" / "latest.pt").is_file()


def test_a_config_an_earlier_version_saved_with_relative_paths_is_the_same_run(tmp_path,
                                                                               monkeypatch):
    """Before --init and run:DIR were saved absolute, config.json held them as given: the same
    command, run again from the same folder, is the same run."""
    monkeypatch.chdir(tmp_path)
    from robustrep.tasks.common.runopen import absolute_paths
    given = {"init": "net.pkl", "fid_features": "run:cls", "steps": 3, "out": "g"}
    run = RunDir(tmp_path / "g")
    run.path.mkdir()
    run.config_file.write_text(json.dumps(given))
    run.check_fresh(absolute_paths(given))
    with pytest.raises(RunFolderError, match="already holds another run"):
        run.check_fresh(absolute_paths({**given, "fid_features": "run:other"}))
