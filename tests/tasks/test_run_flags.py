"""The trainers' run flags behave the same in ``gan train`` and ``classify train``.

``--stop-after N`` leaves a checkpoint of step N and an unfinished run; ``--resume`` alone with
``--out RUN`` and ``--resume RUN`` continue it to the same weights as the uninterrupted run; a
resume that names two folders, none, or a new run's ``--preset``/``--config`` is one line before
any work. (The flags' specs and help: ``test_options.py``.)
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.run_records import FINISHED

# Tiny CPU runs, given as a --config file (the run flags are the point here, not the options).
TINY = {
    "gan": (["--preset", "grid-mlp"],
            dict(g_width=16, d_width=16, z_dim=4, mlp_depth=2, batch_size=8, steps=4,
                 mixture_samples=1000, eval_every=0, final_eval=False, ckpt_every=0,
                 log_every=1, seed=0, device="cpu")),
    "classify": ([], dict(model="test_resnet", image_size=16, batch_size=8, steps=4,
                          eval_every=0, ckpt_every=0, log_every=1, classes=[0, 1, 2], seed=0,
                          device="cpu")),
}
NETWORKS = {"gan": ("G", "D", "ema"), "classify": ("model", "ema")}


def _train(program, tmp_path, *argv) -> int:
    flags, options = TINY[program]
    path = tmp_path / f"{program}.json"
    path.write_text(json.dumps(options))
    return main([program, "train", *flags, "--config", str(path), "--quiet", *argv])


def _latest(run) -> dict:
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=False)


def _assert_same_weights(program, a, b):
    assert a["step"] == b["step"]
    for part in NETWORKS[program]:
        if a.get(part) is None:
            continue
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs"


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_stop_after_then_either_resume_equals_the_uninterrupted_run(program, tmp_path, capsys):
    full, part, copy = tmp_path / "full", tmp_path / "part", tmp_path / "copy"
    assert _train(program, tmp_path, "--out", str(full)) == 0
    assert _train(program, tmp_path, "--out", str(part), "--stop-after", "2") == 0
    out = capsys.readouterr().out
    assert f"stopped after step 2 of 4 (--stop-after), with a checkpoint; continue with: " \
           f"robustrep {program} train --resume {part}" in out
    assert _latest(part)["step"] == 2 and not (part / FINISHED).exists()
    shutil.copytree(part, copy)  # a moved run: its config.json (gan: "out") names part
    assert main([program, "train", "--resume", str(part), "--quiet"]) == 0
    assert main([program, "train", "--resume", "--out", str(copy), "--quiet"]) == 0
    assert "stopped after" not in capsys.readouterr().out
    for run in (part, copy):
        assert (run / FINISHED).is_file()
        _assert_same_weights(program, _latest(full), _latest(run))


@pytest.mark.parametrize("program", ["gan", "classify"])
@pytest.mark.parametrize("argv, needle", [
    (["--resume"], "--resume alone continues the --out folder; give --resume RUN or --out RUN"),
    (["--resume", "A", "--out", "B"], "--resume A and --out B name two run folders; give one"),
    (["--resume", "A", "--preset", "P"], "--resume continues a run with its saved config; drop "
                                         "--preset/--config"),
    (["--resume", "--out", "A", "--config", "C.json"], "--resume continues a run with its saved "
                                                        "config; drop --preset/--config"),
    # was: "A is not a robustrep run folder: no config.json", as for a folder without one
    (["--resume", "A"], "--resume A does not exist (expected a folder holding config.json "
                        "and checkpoints/)"),
    (["--resume", "--out", "A"], "--out A does not exist (expected a folder holding"),
], ids=["bare-without-out", "two-folders", "preset", "config", "missing", "missing-out"])
def test_a_wrong_resume_is_one_line_before_any_work(program, argv, needle, tmp_path,
                                                    monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([program, "train", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert list(tmp_path.iterdir()) == []  # no run folder, nothing read or written


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_a_file_to_resume_is_named_as_a_file(program, tmp_path, monkeypatch, capsys):
    # Was: "FILE is not a robustrep run folder: no config.json"; a checkpoint is its run's
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "run" / "checkpoints" / "step_00000400.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    (tmp_path / "notes.txt").write_text("mine")
    is_file = "is a file, not a run folder (expected a folder holding config.json and checkpoints/)"
    assert main([program, "train", "--resume", str(ckpt), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep {program} train: error: --resume {ckpt} {is_file}; for a checkpoint give its "
        f"run folder: --resume {tmp_path / 'run'} continues it from its checkpoints/latest.pt\n")
    assert main([program, "train", "--resume", "notes.txt", "--quiet"]) == 2
    assert capsys.readouterr().err == (f"robustrep {program} train: error: --resume notes.txt "
                                       f"{is_file}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run"]
    (tmp_path / "net.pkl").write_bytes(b"")  # stylegan2-ada's --resume NET.pkl: gan's --init
    assert main([program, "train", "--resume", "net.pkl", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        "robustrep gan train: error: --resume net.pkl is a network pickle, not a run folder: "
        "start a new run from it with --init net.pkl (stylegan2-ada's --resume NET.pkl)\n"
        if program == "gan" else
        f"robustrep classify train: error: --resume net.pkl {is_file}\n")


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_out_and_run_dir_are_one_flag(program, tmp_path, capsys):
    flags, _ = TINY[program]
    for flag in ("--out", "--run-dir"):
        assert main([program, "train", *flags, flag, "some/run", "--dry-run"]) == 0
        capsys.readouterr()
    from robustrep.tasks.cli import build_parser
    parser = build_parser(program, "train")
    got = [vars(parser.parse_args([program, "train", flag, "R"]))["out"]
           for flag in ("--out", "--run-dir")]
    assert got == ["R", "R"]


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_a_stop_after_the_run_has_passed_is_one_line_and_changes_nothing(program, tmp_path,
                                                                        capsys):
    run = tmp_path / "run"
    assert _train(program, tmp_path, "--out", str(run), "--stop-after", "2") == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main([program, "train", "--resume", str(run), "--stop-after", "2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--stop-after 2: the run is already at step 2" in err
    for stop in ("1", "2"):  # --dry-run answers as the resume does (it checked from step 0)
        assert main([program, "train", "--resume", str(run), "--stop-after", stop,
                     "--dry-run"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"--stop-after {stop}: the run is already at step 2" in err
    assert main([program, "train", "--resume", str(run), "--stop-after", "3", "--dry-run"]) == 0
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("program,flags,words", [
    # was "...; drop it or set that option": a resume keeps the run's --dataset
    ("gan", ["--num-workers", "2"], "--num-workers applies only with --dataset cifar10 or "),
    ("classify", ["--data-root", "D"], "--data-root applies only with --dataset cifar10 or "),
    ("classify", ["--warmup-lr", "0.01"], "--warmup-lr applies only with --warmup-steps > 0 "
                                          "(warmup_steps is 0); drop it or set that option"),
])
def test_an_unused_flag_on_resume_is_refused_with_advice_a_resume_can_follow(
        program, flags, words, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(program, tmp_path, "--out", str(run), "--stop-after", "1") == 0
    capsys.readouterr()
    assert main([program, "train", "--resume", str(run), *flags, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    if "--dataset" in words:
        assert err.endswith("a resume keeps --dataset as saved: drop it"), err


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_resuming_a_finished_run_at_its_length_is_one_line_and_changes_nothing(program, tmp_path,
                                                                              capsys):
    # Was: exit 0, nothing trained, its final evaluation logged again and config.json rewritten
    # with the --lr given
    run = tmp_path / "run"
    assert _train(program, tmp_path, "--out", str(run)) == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    lr = "--lr-d" if program == "gan" else "--lr"
    assert main([program, "train", "--resume", str(run), lr, "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{run} is finished (step 4 of 4): nothing to train; give --steps above 4" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert main([program, "train", "--resume", str(run), "--steps", "5", "--quiet"]) == 0


def test_one_folder_named_two_ways_is_one_run_folder(tmp_path, monkeypatch):
    # Was: --resume run --out /abs/run was refused as "two run folders"
    from types import SimpleNamespace

    from robustrep.tasks.common.options import run_to_resume
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "run")

    def args(resume, out):
        return SimpleNamespace(resume=resume, out=out, preset=None, config=None)

    for out in (str(tmp_path / "run"), "./run", "link", "run/"):
        assert run_to_resume(args("run", out)) == "run"
    # one folder named twice, not made yet: not "two run folders", but no run to resume
    with pytest.raises(RunFolderError, match=r"^--resume new does not exist \(expected a "):
        run_to_resume(args("new", str(tmp_path / "new")))
    with pytest.raises(ConfigError, match="name two run folders"):
        run_to_resume(args("run", "other"))


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_a_stop_after_at_or_past_the_end_is_refused(program, tmp_path, capsys):
    # Was: accepted; the run trained to its end and finished, stopping nothing
    flags, _ = TINY[program]
    assert main([program, "train", *flags, "--steps", "3", "--stop-after", "3", "--out",
                 str(tmp_path / "r"), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep {program} train: error: --stop-after 3 is not before the run's end (--steps "
        f"3): it would stop nothing; give a step below 3, or drop it\n")
    assert not (tmp_path / "r").exists()
    # was: --dry-run accepted it
    assert main([program, "train", "--steps", "10", "--stop-after", "50", "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("error: --stop-after 50 is not before the run's end "
                                      "(--steps 10): it would stop nothing; give a step below "
                                      "10, or drop it\n") and err.count("\n") == 1
