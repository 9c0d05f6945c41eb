"""A run or output folder removed or moved while a command writes into it stops the command
with one line (exit 2); no write makes the folder again holding only the later files (a
checkpoint without its config.json, metrics.jsonl starting mid-run)."""

import shutil

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.common import folder_guard, rundir, runfiles, runlock
from robustrep.tasks.common.errors import FolderGone, WriteFailed

GRID = ["gan", "train", "--preset", "grid-mlp", "--steps", "6", "--ckpt-every", "2",
        "--log-every", "2", "--eval-every", "0", "--eval-samples", "50", "--quiet"]
CLASSIFY = ["classify", "train", "--model", "test_resnet", "--image-size", "16", "--batch-size",
            "8", "--steps", "4", "--eval-every", "0", "--ckpt-every", "1", "--log-every", "1",
            "--classes", "0,1,2", "--quiet"]
GAN_IMAGES = ["gan", "train", "--preset", "digits-dcgan", "--image-size", "16", "--g-width", "8",
              "--d-width", "8", "--z-dim", "16", "--batch-size", "8", "--steps", "1",
              "--eval-every", "0", "--final-eval", "false", "--device", "cpu", "--quiet"]

pytestmark = pytest.mark.usefixtures("private_cache")


def _away(folder, how):
    """Take ``folder`` away as a user would: removed, moved, or replaced by a new empty one."""
    if how == "removed":
        shutil.rmtree(folder)
    elif how == "moved":
        folder.rename(folder.with_name("moved"))
    else:
        folder.rename(folder.with_name("moved"))
        folder.mkdir()


def _last_line(capsys):
    return capsys.readouterr().err.strip().splitlines()[-1]


def _gone_line(program, run):
    return (f"robustrep {program} train: error: {run} was removed or moved while the run was "
            f"going on; nothing more is written there; a moved run goes on from its last "
            f"checkpoint with --resume NEW_PLACE, a removed one starts again with the same "
            f"command")


@pytest.mark.parametrize("how", ["removed", "moved", "replaced"])
def test_gan_run_folder_taken_away_mid_run_stops_the_run(how, tmp_path, monkeypatch, capsys):
    # was: exit 0, RUN made again holding checkpoints and metrics from step 4 on, no config.json
    run = tmp_path / "run"
    log = rundir.RunDir.log

    def log_then_take_away(self, step, **values):
        record = log(self, step, **values)
        if step == 2:  # the step-2 checkpoint is written next
            _away(self.path, how)
        return record
    monkeypatch.setattr(rundir.RunDir, "log", log_then_take_away)
    assert main([*GRID, "--out", str(run)]) == 2
    assert _last_line(capsys) == _gone_line("gan", run)
    if how == "replaced":
        assert list(run.iterdir()) == []  # the user's new folder gets nothing
    else:
        assert not run.exists()
    if how != "removed":  # the moved run is whole up to its step
        moved = tmp_path / "moved"
        assert (moved / "config.json").is_file() and (moved / "metrics.jsonl").is_file()
        assert runfiles.read_jsonl(moved / "metrics.jsonl").records[-1]["step"] == 2


def test_moved_run_goes_on_with_resume_from_its_new_place(tmp_path, monkeypatch, capsys):
    run, moved = tmp_path / "run", tmp_path / "moved"
    log = rundir.RunDir.log

    def log_then_move(self, step, **values):
        record = log(self, step, **values)
        if step == 4:
            _away(self.path, "moved")
        return record
    with monkeypatch.context() as patch:
        patch.setattr(rundir.RunDir, "log", log_then_move)
        assert main([*GRID, "--out", str(run)]) == 2
    assert main(["gan", "train", "--resume", str(moved), "--quiet"]) == 0
    assert not run.exists()
    steps = [r["step"] for r in runfiles.read_jsonl(moved / "metrics.jsonl").records]
    assert steps[:2] == [2, 4] and steps[-1] == 6


def test_classify_run_folder_removed_before_a_log_stops_the_run(tmp_path, monkeypatch, capsys):
    # was: "cannot write RUN/metrics.jsonl: No such file or directory; RUN holds no checkpoint
    # yet; the same command again starts the run afresh there"
    run = tmp_path / "run"
    save = rundir.RunDir.write_config

    def write_config_then_remove(self, config):
        save(self, config)
        shutil.rmtree(self.path)
    monkeypatch.setattr(rundir.RunDir, "write_config", write_config_then_remove)
    assert main([*CLASSIFY, "--out", str(run)]) == 2
    assert _last_line(capsys) == _gone_line("classify", run)
    assert not run.exists()


def test_the_guard_ends_with_the_run(tmp_path):
    # released, the run folder is the user's again: a later write (report --collect, eval) to
    # a path there is not refused for the run that ended
    assert main([*GRID, "--steps", "2", "--out", str(tmp_path / "run")]) == 0
    shutil.rmtree(tmp_path / "run")
    runfiles.write_json(tmp_path / "run" / "x.json", {})
    assert (tmp_path / "run" / "x.json").is_file()


def test_write_atomic_makes_folders_only_below_a_guarded_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    folder_guard.guard_folder(run, "RUN went")
    try:
        runfiles.write_json(run / "samples" / "deep" / "a.json", {})  # made lazily: fine
        assert (run / "samples" / "deep" / "a.json").is_file()
        shutil.rmtree(run)
        for write in (lambda: runfiles.write_json(run / "samples" / "b.json", {}),
                      lambda: rundir._append_line(run / "metrics.jsonl", "{}\n")):
            with pytest.raises(FolderGone, match="^RUN went$"):
                write()
        assert not run.exists()
        run.mkdir()  # another folder of the same name: nothing of the run goes into it
        with pytest.raises(FolderGone, match="^RUN went$"):
            rundir._append_line(run / "metrics.jsonl", "{}\n")
        assert list(run.iterdir()) == []
    finally:
        folder_guard.forget_folder(run)
    # a path in no guarded folder is made as before (data pack new/dir/OUT.zip)
    runfiles.write_json(tmp_path / "new" / "dir" / "c.json", {})
    assert (tmp_path / "new" / "dir" / "c.json").is_file()


def test_an_unguarded_folder_removed_during_a_write_is_named(tmp_path):
    def remove(handle):
        handle.write(b"x")
        shutil.rmtree(tmp_path / "out")
    with pytest.raises(WriteFailed, match="its folder .*out was removed or moved while it was "
                                          "written \\(nothing was written\\)"):
        runfiles.write_atomic(tmp_path / "out" / "a.zip", remove)


def test_output_lock_folder_removed_is_one_line(tmp_path):
    out = tmp_path / "out"
    with runlock.output_lock(out):
        runfiles.write_json(out / "results.json", {})
        shutil.rmtree(out)
        with pytest.raises(FolderGone) as err:
            runfiles.write_json(out / "results.csv", {})
        assert str(err.value) == (f"{out} was removed or moved while this command was writing "
                                  f"there; nothing more is written there; run the command again")
        from robustrep.tasks.ood.outputs import write_outputs
        with pytest.raises(FolderGone):  # its mkdir made the folder again
            write_outputs(None, out, {})
    assert not out.exists()


def test_classify_eval_out_removed_mid_command(tmp_path, monkeypatch, capsys):
    from robustrep.tasks.classify import report_files
    run, out = tmp_path / "run", tmp_path / "eval"
    assert main([*CLASSIFY, "--steps", "1", "--out", str(run)]) == 0
    draw = report_files.reliability_diagram

    def remove_then_draw(*args, **kwargs):  # report.json written, the diagram next
        shutil.rmtree(out)
        return draw(*args, **kwargs)
    monkeypatch.setattr(report_files, "reliability_diagram", remove_then_draw)
    assert main(["classify", "eval", str(run), "--out", str(out), "--attacks", "fgsm",
                 "--corruptions", "none", "--max-samples", "6", "--quiet"]) == 2
    assert _last_line(capsys) == (
        f"robustrep classify eval: error: {out} was removed or moved while this command was "
        f"writing there; nothing more is written there; run the command again")
    assert not out.exists()


def test_gan_sample_outdir_removed_mid_command(tmp_path, monkeypatch, capsys):
    from robustrep.tasks.gan import sample
    run, outdir = tmp_path / "run", tmp_path / "images"
    assert main([*GAN_IMAGES, "--out", str(run)]) == 0
    write = sample.write_images

    def write_then_remove(*args):
        write(*args)
        shutil.rmtree(outdir)
    monkeypatch.setattr(sample, "write_images", write_then_remove)
    assert main(["gan", "sample", str(run), "--seeds", "0-2", "--outdir", str(outdir)]) == 2
    assert _last_line(capsys) == (
        f"robustrep gan sample: error: --outdir {outdir} was removed or moved while gan sample was "
        f"writing there; nothing more is written there; the same command again writes all "
        f"the images")
    assert not outdir.exists()
    monkeypatch.setattr(sample, "write_images", write)
    assert main(["gan", "sample", str(run), "--seeds", "0-2", "--outdir", str(outdir)]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == [f"seed000{i}.png" for i in range(3)]
