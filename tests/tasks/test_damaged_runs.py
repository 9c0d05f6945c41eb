"""Damaged run folders and misdirected outputs: one line naming the file, exit 2, nothing lost."""

import json

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.runfiles import read_jsonl, write_json
from robustrep.tasks.gan.train import train

from .gan.conftest import tiny_config


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("gan") / "run"
    train(tiny_config("grid-mlp", out=str(path)), show_progress=False)
    return path


def _one_line(capsys, command, start):
    err = capsys.readouterr().err
    assert err.startswith(f"robustrep {command}: error: {start}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_gan_sample_refuses_to_write_into_checkpoints(gan_run, capsys):
    latest = gan_run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    assert main(["gan", "sample", str(gan_run), "--pt", str(latest), "--force"]) == 2
    _one_line(capsys, "gan sample", f"--pt {latest} is inside a checkpoints/ folder")
    assert latest.read_bytes() == before
    assert main(["gan", "sample", str(gan_run), "--num", "4"]) == 0  # the run still samples


def test_gan_sample_overwrites_only_with_force(gan_run, tmp_path, capsys):
    mine = tmp_path / "mine.pt"
    mine.write_text("the user's file")
    assert main(["gan", "sample", str(gan_run), "--num", "4", "--pt", str(mine)]) == 2
    _one_line(capsys, "gan sample", f"--pt {mine} already exists; pass --force")
    assert mine.read_text() == "the user's file"
    assert main(["gan", "sample", str(gan_run), "--num", "4", "--pt", str(mine), "--force"]) == 0
    assert mine.read_bytes() != b"the user's file"


@pytest.mark.parametrize("option, name, words", [
    ("--grid", "x.txt", "the grid is an image; give a path ending in .png, .jpg, .jpeg"),
    ("--grid", "samples.pt", "the grid is an image"),
    ("--pt", "samples.png", "the samples are a torch file that gan fid reads; give a path "
                            "ending in .pt"),
    ("--pt", "samples.npy", "the samples are a torch file")])
def test_gan_sample_files_end_in_their_kinds_suffix(gan_run, tmp_path, capsys, option, name,
                                                    words):
    assert main(["gan", "sample", str(gan_run), option, str(tmp_path / name)]) == 2
    _one_line(capsys, "gan sample", f"{option} {tmp_path / name}: {words}")
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("text, problem", [("{not json", "is damaged (not JSON"),
                                           ("[1, 2]", "holds a JSON list")])
def test_a_damaged_config_json_is_named(gan_run, tmp_path, capsys, text, problem):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(text)
    for argv in (["gan", "sample", str(run)], ["gan", "train", "--resume", str(run)]):
        assert main(argv) == 2
        _one_line(capsys, " ".join(argv[:2]), f"{run / 'config.json'} {problem}")
    assert (run / "config.json").read_text() == text


def test_classify_resume_of_a_gan_run_is_refused(gan_run, capsys):
    assert main(["classify", "train", "--resume", str(gan_run)]) == 2
    _one_line(capsys, "classify train", f"{gan_run} is not a 'classify' run")


@pytest.mark.parametrize("mine", ["samples/step_00000001.png", "plots/losses.png",
                                  "finished.json", "regularizers.json"])
def test_a_folder_holding_what_a_run_writes_but_no_config_is_not_written_into(mine, tmp_path,
                                                                             capsys):
    # Was: only a metrics.jsonl was seen; a user's samples/ or plots/ files were overwritten
    out = tmp_path / "mine"
    (out / mine).parent.mkdir(parents=True, exist_ok=True)
    (out / mine).write_text("my own")
    assert main(["gan", "train", "--preset", "grid-mlp", "--steps", "1", "--out", str(out)]) == 2
    _one_line(capsys, "gan train", f"{out} holds a {mine.split('/')[0]} but no config.json")
    assert (out / mine).read_text() == "my own" and not (out / "config.json").exists()


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_a_users_file_named_like_the_lock_is_not_overwritten(program, tmp_path, capsys):
    # was: replaced by "pid N on HOST" (it is the lock's name, .lock) and the run went on
    out = tmp_path / "mine"
    out.mkdir()
    (out / ".lock").write_text("my lock\n")
    argv = {"gan": ["--preset", "grid-mlp"], "classify": ["--preset", "smoke"]}[program]
    assert main([program, "train", *argv, "--steps", "1", "--out", str(out)]) == 2
    _one_line(capsys, f"{program} train",
              f"{out / '.lock'} exists and is no lock robustrep wrote")
    assert (out / ".lock").read_text() == "my lock\n" and sorted(out.iterdir()) == [out / ".lock"]


def test_a_foreign_metrics_file_in_out_is_kept(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"epoch": 1, "acc": 0.5}\n')
    assert main(["gan", "train", "--preset", "grid-mlp", "--steps", "1", "--out", str(out)]) == 2
    _one_line(capsys, "gan train", f"{out} holds a metrics.jsonl but no config.json")
    assert (out / "metrics.jsonl").read_text() == '{"epoch": 1, "acc": 0.5}\n'


def test_a_truncated_metrics_line_is_dropped_and_counted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n{"step": 3, "lo')
    lines = read_jsonl(path)
    assert [r["step"] for r in lines.records] == [1, 2] and lines.dropped == 1
    assert lines.warning() == (f"{path}: dropped 1 incomplete line(s) (a run killed during a "
                               f"write leaves one); read 2 complete record(s)")


def test_a_cut_first_record_is_a_runs_own_not_a_foreign_file(tmp_path, capsys):
    """A run that checkpoints more often than it logs, cut during its first record (a power
    loss): its resume was refused, "not a robustrep metrics file; move it away". A foreign
    file of one line is still refused."""
    from robustrep.tasks.common.errors import RunFolderError
    from robustrep.tasks.common.rundir import RunDir
    from robustrep.tasks.common.runopen import resumed
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 5, "time": 0.1, "lo')
    lines = read_jsonl(path)
    assert (lines.records, lines.dropped) == ([], 1)
    assert lines.warning() == (f"{path}: dropped 1 incomplete line(s) (a run killed during a "
                               f"write leaves one); read 0 complete record(s)")
    run = RunDir(tmp_path)
    resumed(run, {"steps": 9, "log_every": 5, "eval_every": 0}, 4)
    assert capsys.readouterr().err == f"warning: {lines.warning()}\n"  # nothing else was lost
    assert path.read_text() == ""
    path.write_text('{"epoch": 1, "lo')
    with pytest.raises(RunFolderError, match="is not a robustrep metrics file"):
        read_jsonl(path)


def test_a_damaged_line_before_the_last_is_not_blamed_on_a_kill(tmp_path):
    """A kill cuts only the last line; a bad line before it means the file was changed."""
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n\n{"step": 4, "lo')
    lines = read_jsonl(path)
    assert [r["step"] for r in lines.records] == [1, 3] and lines.damaged == (2,)
    assert lines.warning() == (f"{path}: dropped 2 line(s) that are not JSON records, line 2 "
                               f"among them (the file was changed or damaged after it was "
                               f"written); read 2 complete record(s)")


def test_resume_says_when_the_records_are_gone(gan_run, tmp_path, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(gan_run, run)
    (run / "metrics.jsonl").unlink()
    assert main(["gan", "train", "--resume", str(run), "--steps", "3", "--quiet"]) == 0
    assert (f"warning: {run / 'metrics.jsonl'} is missing: the records up to step 2 are lost"
            in capsys.readouterr().err)


def test_resume_after_a_kill_mid_line_continues(gan_run, tmp_path, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(gan_run, run)
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 3, "loss/d/to')  # what kill -9 during an append leaves
    assert main(["gan", "train", "--resume", str(run), "--steps", "3", "--quiet"]) == 0
    assert "dropped 1 incomplete line(s)" in capsys.readouterr().err
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl").records][-1] == 3
    assert read_jsonl(run / "metrics.jsonl").dropped == 0


def test_json_files_are_replaced_whole(tmp_path, monkeypatch):
    """A failure during the write leaves the previous file, never half of the new one."""
    path = write_json(tmp_path / "results.json", {"old": 1})

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("os.fsync", fail)
    with pytest.raises(Exception, match="the previous file is unchanged"):
        write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_run_whose_config_no_longer_fits_its_checkpoint_names_the_file_and_key(
        gan_run, tmp_path, capsys):
    # Was: "checkpoint RUN/checkpoints does not fit the run's generator: Error(s) in loading
    # state_dict for MLPGenerator:" (the folder, and the message cut before the key)
    import shutil
    run = tmp_path / "run"
    shutil.copytree(gan_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "g_width": config["g_width"] * 2}))
    # the checkpoint's own options say the same (an edit of config.json alone is named as such:
    # test_an_edited_config_json_is_named_not_the_checkpoint): the weights are what differs
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    state["config"]["g_width"] = config["g_width"] * 2
    torch.save(state, run / "checkpoints" / "latest.pt")
    assert main(["gan", "sample", str(run), "--num", "4"]) == 2
    # each key whole, with both shapes: torch's list of every key was cut at 300 characters
    _one_line(capsys, "gan sample", f"checkpoint {run / 'checkpoints' / 'latest.pt'} does not "
                                    f"fit the run's generator: wrong shapes (file vs model): "
                                    f"net.0.bias (16,) vs (32,), net.0.weight (16, 4) vs (32, 4), "
                                    f"net.2.bias (16,) vs (32,)")
