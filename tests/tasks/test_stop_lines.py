"""Every command stopped by Ctrl-C or SIGTERM, or by a full disk: one line saying what was kept
and how to go on, 128 + the signal number (2 for a disk), no half-written file and no stray
``.tmp`` file, and the next command works without the user deleting anything."""

import argparse
import errno
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.tasks.cli import main
from robustrep.tasks.common import run_records
from robustrep.tasks.common.errors import Stopped, WriteFailed
from robustrep.tasks.common.options import RESUME_OUT
from robustrep.tasks.common.rundir import _append_line
from robustrep.tasks.common.stops import stop_note, stopped_line

GRID = ["gan", "train", "--preset", "grid-mlp", "--steps", "4", "--ckpt-every", "2",
        "--eval-every", "0", "--eval-samples", "50", "--quiet"]


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def sigterm_recorded():
    """A handler of the test's own: were the program's missing, SIGTERM would end pytest."""
    got = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    yield got
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_while_data_pack_writes_leaves_no_tmp_and_a_rerun_packs(
        tmp_path, monkeypatch, capsys, sigterm_recorded):
    # was: SIGTERM ended the process with no line and left .out.zip.XXXX.tmp (17 MB) behind
    from robustrep.tasks.data import pack
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(src / f"{i}.png")
    original = pack.pack_images

    def pack_images(images, handle, *args):
        handle.write(b"PK half a zip")
        os.kill(os.getpid(), signal.SIGTERM)
        return original(images, handle, *args)
    with monkeypatch.context() as patch:
        patch.setattr(pack, "pack_images", pack_images)
        assert main(["data", "pack", str(tmp_path / "src"), str(tmp_path / "out.zip"),
                     "--resolution", "16", "--quiet"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "robustrep data pack: stopped by SIGTERM; no file was left half-written (each is written "
        "whole or not at all); the same command again does the work again")
    assert _files(tmp_path) == ["src/a/0.png", "src/a/1.png", "src/a/2.png"]
    assert not sigterm_recorded  # the program's handler took it, and gave the test's back
    assert main(["data", "pack", str(tmp_path / "src"), str(tmp_path / "out.zip"),
                 "--resolution", "16", "--quiet"]) == 0


def test_a_pack_keeps_a_zip_another_pack_wrote_to_out_meanwhile(tmp_path, monkeypatch, capsys):
    # Was: two packs to one OUT both exited 0, the later rename replacing the earlier's zip
    from robustrep.tasks.data import pack as pack_module
    (tmp_path / "src" / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(
            tmp_path / "src" / "a" / f"{i}.png")
    out, original = tmp_path / "out.zip", pack_module.pack_images

    def pack_images(*args):
        out.write_bytes(b"the other pack's zip")  # it finished first
        return original(*args)
    monkeypatch.setattr(pack_module, "pack_images", pack_images)
    assert main(["data", "pack", str(tmp_path / "src"), str(out), "--resolution", "16",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write {out}: File exists" in err
    assert out.read_bytes() == b"the other pack's zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "src"]


def test_a_stopped_trainer_names_its_run_folders_checkpoint(tmp_path):
    args = argparse.Namespace(command="train")
    opened = len(run_records.opened_runs())
    assert stopped_line(signal.SIGTERM, args, opened) == (
        "stopped by SIGTERM; it stopped before making its run folder; nothing was written")
    # a resume stopped before it opened its run: that run exists, unchanged (was: the line above)
    for resume, out in (("old", None), (RESUME_OUT, "old")):
        resumed = argparse.Namespace(command="train", resume=resume, out=out)
        assert stopped_line(signal.SIGINT, resumed, opened) == (
            "interrupted (Ctrl-C); it stopped before it opened old, which is unchanged; the "
            "same command again continues it")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    run_records.note_opened(run)
    assert stopped_line(signal.SIGINT, args, opened) == (
        f"interrupted (Ctrl-C); {run} holds no checkpoint yet; the same command again starts "
        f"the run afresh there")
    for name in ("step_00000006.pt", "latest.pt"):
        (run / "checkpoints" / name).write_bytes(b"")
    assert stopped_line(signal.SIGINT, args, opened) == (
        f"interrupted (Ctrl-C); checkpoint {run}/checkpoints/latest.pt (step 6) is intact; "
        f"continue with --resume {run}")
    # another command's outputs are written whole: its line says so, whatever runs were opened
    assert stopped_line(signal.SIGTERM, argparse.Namespace(command="eval"),
                        opened).startswith("stopped by SIGTERM; no file was left")


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_names_it(
        tmp_path, monkeypatch, capsys):
    """latest.pt failing after the step file: the step file goes too (the newest step file is
    latest.pt's, which --resume reads); the line names the intact checkpoint and the resume."""
    run, real_save, saves = tmp_path / "g", torch.save, []

    def save(obj, handle, *args, **kwargs):
        saves.append(obj.get("step"))
        if saves.count(4) == 2:  # step_00000004.pt written, then latest.pt
            handle.write(b"part of it")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, handle, *args, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", save)
        assert main([*GRID, "--out", str(run)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"robustrep gan train: error: cannot write {run}/checkpoints/latest.pt: "
                           f"No space left on device;"), line
    assert line.endswith(f"; checkpoint {run}/checkpoints/latest.pt (step 2) is intact; "
                         f"continue with --resume {run}"), line
    ckpts = _files(run / "checkpoints")
    assert ckpts == ["latest.pt", "step_00000002.pt"]  # no step 4, no .tmp
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 2
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "finished.json").is_file()


def test_a_metrics_record_is_appended_whole_or_not_at_all(tmp_path, monkeypatch):
    # was: a full disk cut the line (a buffered write puts what fits)
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n')
    real_write = os.write

    def write(fd, data):
        real_write(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(WriteFailed, match="No space left on device; its earlier records are "
                                          "intact"):
        _append_line(path, '{"step": 2, "loss": 0.5}\n')
    monkeypatch.undo()
    assert path.read_text() == '{"step": 1}\n'
    _append_line(path, '{"step": 2}\n')
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'


def test_a_stopped_gan_sample_says_how_many_images_are_written(tmp_path, monkeypatch):
    """gan sample --outdir meets its own images on a rerun (refused without --force): its line
    says so, in place of 'the same command again', counting whole files image by image. Was:
    by batch, "1000 of 20000 images written" with 1261 on disk."""
    from robustrep.tasks.gan import image_files, sample
    real_write, calls = image_files.write_atomic, []

    def write_atomic(path, write, replace):  # stopped while the 2nd image of the 2nd batch is
        calls.append(path)  # written
        if len(calls) == 4:
            raise Stopped(signal.SIGTERM)
        return real_write(path, write, replace)
    monkeypatch.setattr(image_files, "write_atomic", write_atomic)
    files = image_files.ImageFiles(tmp_path, None, 6)
    stop_note(None)
    try:
        with pytest.raises(Stopped):
            sample._drain(iter(torch.zeros(3, 2, 1, 4, 4)), files, False, 6, False)
        assert len(list(tmp_path.glob("*.png"))) == 3
        assert stopped_line(signal.SIGTERM, argparse.Namespace(command="sample")) == (
            f"stopped by SIGTERM; 3 of 6 images written to {tmp_path}, each whole; the same "
            f"command with --force writes them all again")
    finally:
        stop_note(None)
        sample.forget_folder(tmp_path)


def test_data_gone_mid_run_says_what_the_run_kept(tmp_path, monkeypatch, capsys):
    # Was: "error: No such file or directory: imgs/c3/0231.png" alone, of an image folder
    # removed during training: not that the checkpoint was intact, nor how to go on
    from robustrep.tasks.gan.train import Trainer
    original = Trainer.one_step

    def one_step(self, bar):
        if self.step == 2:
            raise FileNotFoundError(2, "No such file or directory", "imgs/c3/0231.png")
        return original(self, bar)
    monkeypatch.setattr(Trainer, "one_step", one_step)
    run = tmp_path / "g"
    assert main(["gan", "train", "--preset", "grid-mlp", "--steps", "4", "--ckpt-every", "2",
                 "--eval-every", "0", "--quiet", "--out", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan train: error: No such file or directory: imgs/c3/0231.png; checkpoint "
        f"{run}/checkpoints/latest.pt (step 2) is intact; continue with --resume {run}\n")
