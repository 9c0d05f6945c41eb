"""Every run closes its ``--log`` sinks (TensorBoard, wandb) however it ends: normal end, a user
error after the run folder was opened, SIGTERM, Ctrl-C and divergence; the close comes while
the run still holds its folder's lock, once."""

import os
import signal

import pytest

import robustrep.tasks.gan.steps as gan_steps
from robustrep.tasks.classify.task import ClassifyTask
from robustrep.tasks.cli import main
from robustrep.tasks.common import runlock, runopen
from robustrep.tasks.common.errors import RunFolderError

ARGV = {
    "gan": ["gan", "train", "--image-size", "16", "--g-width", "8", "--d-width", "8",
            "--z-dim", "16", "--batch-size", "8", "--steps", "3", "--eval-every", "0",
            "--final-eval", "false", "--ckpt-every", "1", "--log-every", "1",
            "--device", "cpu", "--quiet"],
    "classify": ["classify", "train", "--model", "test_resnet", "--image-size", "16",
                 "--batch-size", "8", "--steps", "3", "--eval-every", "0", "--ckpt-every", "1",
                 "--log-every", "1", "--classes", "0,1,2", "--device", "cpu", "--quiet"],
}


class FakeSink:
    """Records writes and closes; ``on_write`` runs at the first write (a signal, an error)."""

    def __init__(self, path, on_write=None):
        self.path, self.on_write = path, on_write
        self.writes, self.closes, self.locked_at_close = 0, 0, None

    def write(self, record):
        assert self.closes == 0, "written after close"
        self.writes += 1
        if self.on_write is not None and self.writes == 1:
            self.on_write()

    def close(self):
        self.closes += 1
        try:  # the run's lock is still held: taking it again must fail
            runlock.RunLock(self.path / runlock.LOCK_FILE).acquire().release()
            self.locked_at_close = False
        except RunFolderError:
            self.locked_at_close = True


class Made(list):
    """The FakeSinks of the runs, in order; ``on_write`` is given to the next ones."""
    on_write = None


@pytest.fixture
def sinks(monkeypatch):
    made = Made()

    def make_sinks(log, run_path):
        made.append(FakeSink(run_path, made.on_write))
        return [made[-1]]

    monkeypatch.setattr(runopen, "make_sinks", make_sinks)
    return made


def _closed_once(sink):
    assert sink.writes > 0 and sink.closes == 1 and sink.locked_at_close is True


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_normal_end_and_user_error_on_resume_close_the_sinks(program, sinks, tmp_path):
    run = tmp_path / "run"
    assert main([*ARGV[program], "--out", str(run)]) == 0
    _closed_once(sinks[-1])
    (run / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    sinks.on_write = None
    assert main([program, "train", "--resume", str(run), "--steps", "4", "--quiet"]) == 2
    assert len(sinks) == 2 and sinks[-1].closes == 1 and sinks[-1].locked_at_close is True


def _sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


def _ctrl_c():
    raise KeyboardInterrupt


@pytest.mark.parametrize("program", ["gan", "classify"])
@pytest.mark.parametrize("on_write, code", [(_sigterm, 128 + signal.SIGTERM), (_ctrl_c, 130)])
def test_signals_close_the_sinks(program, on_write, code, sinks, tmp_path):
    sinks.on_write = on_write
    assert main([*ARGV[program], "--out", str(tmp_path / "run")]) == code
    _closed_once(sinks[-1])


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_divergence_closes_the_sinks(program, sinks, tmp_path, monkeypatch):
    if program == "gan":
        original = gan_steps.fake_term
        monkeypatch.setattr(gan_steps, "fake_term",
                            lambda ctx, logits: original(ctx, logits) * float("nan"))
    else:
        original = ClassifyTask._ce
        monkeypatch.setattr(ClassifyTask, "_ce",
                            lambda self, logits, y: original(self, logits, y) * float("nan"))
    assert main([*ARGV[program], "--out", str(tmp_path / "run")]) == 1
    _closed_once(sinks[-1])
