"""SIGINT/SIGTERM during training: the step finishes, a checkpoint is written, the program exits
with 128 + the signal number, and a resume ends where the uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from robustrep.tasks import cli
from robustrep.tasks.classify.train import Trainer
from robustrep.tasks.common.stops import StopRequest


ARGV = ["classify", "train", "--model", "test_resnet", "--image-size", "16", "--batch-size", "8",
        "--steps", "4", "--eval-every", "0", "--ckpt-every", "4", "--log-every", "1",
        "--classes", "0,1,2", "--seed", "0", "--quiet"]


def test_the_first_signal_is_remembered_and_a_second_sigint_stops_at_once():
    stop = StopRequest()
    stop(signal.SIGTERM)
    assert stop.signum == signal.SIGTERM
    stop(signal.SIGTERM)  # a repeated SIGTERM still waits for the checkpoint
    with pytest.raises(KeyboardInterrupt):
        stop(signal.SIGINT)
    with StopRequest().installed() as fresh:
        assert signal.getsignal(signal.SIGTERM) is fresh
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def _signal_after_step(monkeypatch, step, *signums):
    original = Trainer.train_step

    def train_step(self, x, y):
        out = original(self, x, y)
        if self.step == step:
            for signum in signums:
                os.kill(os.getpid(), signum)
        return out
    monkeypatch.setattr(Trainer, "train_step", train_step)


def _weights(run):
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_the_step_and_resume_equals_the_uninterrupted_run(
        tmp_path, monkeypatch, capsys, signum):
    assert cli.main([*ARGV, "--out", str(tmp_path / "a")]) == 0
    with monkeypatch.context() as patch:
        _signal_after_step(patch, 2, signum)
        assert cli.main([*ARGV, "--out", str(tmp_path / "b")]) == 128 + signum
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"robustrep classify train: stopped by {signal.Signals(signum).name} "
                              f"after step 2 of 4; checkpoint ")
    assert _weights(tmp_path / "b")["step"] == 2 and not (tmp_path / "b" / "finished.json").exists()
    assert cli.main(["classify", "train", "--resume", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a["step"] == b["step"] == 4 and (tmp_path / "b" / "finished.json").is_file()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


def test_a_second_sigint_stops_without_waiting_for_the_checkpoint(tmp_path, monkeypatch, capsys):
    _signal_after_step(monkeypatch, 2, signal.SIGINT, signal.SIGINT)
    assert cli.main([*ARGV, "--out", str(tmp_path / "b")]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustrep classify train: interrupted (Ctrl-C); {tmp_path / 'b'} holds no checkpoint "
        f"yet; the same command again starts the run afresh there")
    assert not (tmp_path / "b" / "checkpoints" / "latest.pt").exists()
    monkeypatch.undo()
    assert cli.main([*ARGV, "--out", str(tmp_path / "b")]) == 0  # as the line says


@pytest.mark.slow
def test_sigterm_to_a_real_training_process(tmp_path):
    """The console program in its own process: SIGTERM mid-run, exit 143, resume to the end."""
    cmd = [sys.executable, "-m", "robustrep.tasks.cli", *ARGV[:ARGV.index("--steps")],
           "--steps", "40", *ARGV[ARGV.index("--steps") + 2:], "--ckpt-every", "40"]
    run = tmp_path / "run"
    proc = subprocess.Popen([*cmd, "--out", str(run)], stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    step = _weights(run)["step"]
    assert 2 <= step < 40 and "stopped by SIGTERM" in err
    done = subprocess.run([sys.executable, "-m", "robustrep.tasks.cli", "classify", "train",
                           "--resume", str(run), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _weights(run)["step"] == 40 and (run / "finished.json").is_file()


@pytest.mark.subprocess
def test_sigterm_to_ood_bench_stops_its_training_run_with_a_checkpoint(tmp_path):
    """The bench (as report) trains in child processes: a SIGTERM to it alone left the child
    training as an orphan, and a rerun found its run in use. Now the child gets the signal,
    checkpoints and stops; the bench stops with one line and exit 143."""
    from robustrep.tasks.common.runlock import LOCK_FILE, RunLock
    out = tmp_path / "bench"
    proc = subprocess.Popen(
        [sys.executable, "-m", "robustrep.tasks.cli", "ood", "bench", "--regs", "none",
         "--seeds", "0", "--model", "test_resnet", "--steps", "5000", "--train-opt",
         "log_every=2", "--detectors", "MaxSoftmax", "--ood", "gaussian", "--out", str(out),
         "--device", "cpu"], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    run = out / "runs" / "none-s0"
    deadline = time.time() + 180
    while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text()):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("robustrep ood bench: stopped by SIGTERM"), err
    step = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"]
    assert 2 <= step < 5000
    RunLock(run / LOCK_FILE).acquire().release()  # no orphan holds the run


def test_a_signal_during_the_gan_final_evaluation_stops_it_and_resume_finishes(
        tmp_path, monkeypatch, capsys):
    # was: the handler only recorded it; the whole evaluation ran and the run ended 0, finished
    from robustrep.tasks.gan.train import Trainer as GanTrainer
    original = GanTrainer.evaluate

    def evaluate(self):
        if self.step == self.cfg.steps:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self)
    argv = ["gan", "train", "--preset", "grid-mlp", "--steps", "3", "--eval-every", "0",
            "--eval-samples", "50", "--quiet", "--out", str(tmp_path / "g")]
    with monkeypatch.context() as patch:
        patch.setattr(GanTrainer, "evaluate", evaluate)
        assert cli.main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustrep gan train: interrupted (Ctrl-C); checkpoint "
        f"{tmp_path / 'g'}/checkpoints/latest.pt (step 3) is intact; continue with --resume "
        f"{tmp_path / 'g'}")
    assert _weights(tmp_path / "g")["step"] == 3  # written before the evaluation
    assert not (tmp_path / "g" / "finished.json").exists()
    assert cli.main(["gan", "train", "--resume", str(tmp_path / "g"), "--quiet"]) == 0
    assert (tmp_path / "g" / "finished.json").is_file()


# SIGTERM to the process itself: a fresh one, since unhandled it would end the test process
_TERM_IN_FINAL_EVAL = """
import os, signal, sys
from robustrep.tasks import cli
from robustrep.tasks.gan.train import Trainer
original = Trainer.evaluate
def evaluate(self):
    if self.step == self.cfg.steps:
        os.kill(os.getpid(), signal.SIGTERM)
    return original(self)
Trainer.evaluate = evaluate
sys.exit(cli.main(["gan", "train", "--preset", "grid-mlp", "--steps", "3", "--eval-every", "0",
                   "--eval-samples", "50", "--quiet", "--out", sys.argv[1]]))
"""


@pytest.mark.subprocess
def test_sigterm_during_the_gan_final_evaluation_says_so_and_resume_finishes(tmp_path):
    # was: the process ended by the signal with no line (SIGINT printed "interrupted")
    run = tmp_path / "g"
    # from a temporary folder: the checkout's robustrep/ must not shadow the installed package
    done = subprocess.run([sys.executable, "-c", _TERM_IN_FINAL_EVAL, str(run)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"robustrep gan train: stopped by SIGTERM during the final evaluation of step 3; "
        f"checkpoint {run}/checkpoints/step_00000003.pt; continue with --resume {run} (it "
        f"evaluates the step)")
    assert _weights(run)["step"] == 3 and not (run / "finished.json").exists()
    assert cli.main(["gan", "train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "finished.json").is_file()
    assert [r for r in (run / "metrics.jsonl").read_text().splitlines() if "modes_covered" in r]


def test_sigterm_during_the_classify_final_evaluation_says_so_and_resume_finishes(
        tmp_path, monkeypatch, capsys):
    """The final step is checkpointed before its evaluation, which SIGTERM then stops with a
    line (the process ended with none, and the final step had no checkpoint yet)."""
    original, run, got = Trainer.evaluate, tmp_path / "c", []

    def evaluate(self):
        if self.step == self.cfg.steps and not got:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self)
    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    # a handler of the test's own: without the program's, SIGTERM would end the test process
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        assert cli.main([*ARGV, "--out", str(run)]) == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustrep classify train: stopped by SIGTERM during the final evaluation of step 4; "
        f"checkpoint {run}/checkpoints/step_00000004.pt; continue with --resume {run} (it "
        f"evaluates the step)")
    assert _weights(run)["step"] == 4 and not (run / "finished.json").exists()
    got.append("resumed")
    assert cli.main(["classify", "train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "finished.json").is_file()
    assert [r for r in (run / "metrics.jsonl").read_text().splitlines() if "eval/acc" in r]


def _term_after(monkeypatch, owner, name):
    """SIGTERM to this process when ``owner.name`` (a callable of a trainer's) has returned."""
    original = getattr(owner, name)

    def then_sigterm(*args, **kwargs):
        out = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return out
    monkeypatch.setattr(owner, name, then_sigterm)


def _guarded_main(argv):
    """``cli.main(argv)`` under a SIGTERM handler of the test's (without the program's, SIGTERM
    would end pytest): its exit code and the signals that reached the test's handler."""
    got = []

    def guard(signum, frame):
        got.append(signum)
    previous = signal.signal(signal.SIGTERM, guard)
    try:
        code = cli.main(argv)
        assert signal.getsignal(signal.SIGTERM) is guard  # nothing of the program's left
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code, got


GAN_ARGV = ["gan", "train", "--preset", "grid-mlp", "--steps", "2", "--eval-every", "0",
            "--final-eval", "false", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("program, point", [("gan", "finished"), ("gan", "cleanup"),
                                            ("classify", "finished"), ("classify", "cleanup")])
def test_sigterm_after_the_run_finished_ends_it_with_0(tmp_path, monkeypatch, capsys,
                                                       program, point):
    """finished.json written, a SIGTERM in the teardown left (the run lock, the process group,
    the report) ended a finished run with 143 and a line saying to resume it, which a resume
    then refused: nothing to train. Now it ends 0 and says the run had finished."""
    from robustrep.tasks.common import distributed
    from robustrep.tasks.gan import train as gan_train
    trainer = gan_train.Trainer if program == "gan" else Trainer
    # gan.train imported cleanup by name, classify.train calls distributed.cleanup
    teardown = gan_train if program == "gan" else distributed
    _term_after(monkeypatch, trainer if point == "finished" else teardown, point)
    run = tmp_path / program
    code, got = _guarded_main([*(GAN_ARGV if program == "gan" else ARGV), "--out", str(run)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err.strip().splitlines()[-1] == (
        f"note: SIGTERM came after {run} had finished (finished.json written); the run ends "
        f"as finished")
    report = f"run: {run}  steps: 2  " if program == "gan" else f"run folder: {run}\n"
    assert out.startswith(report)  # the report is printed
    assert (run / "finished.json").is_file() and not got


def test_sigterm_to_a_resume_of_a_run_finished_in_this_process_still_stops_it(
        tmp_path, monkeypatch, capsys):
    """A finished.json an earlier command of the process wrote is not the resume's: the resume
    to more steps is stopped (143, continue with --resume), not let train on to its end."""
    from robustrep.tasks.gan import train as gan_train
    run = tmp_path / "g"
    assert cli.main([*GAN_ARGV, "--out", str(run)]) == 0
    _term_after(monkeypatch, gan_train.Trainer, "resume_from")  # the run opened, not resumed
    code, got = _guarded_main(["gan", "train", "--resume", str(run), "--steps", "3", "--quiet"])
    assert code == 143 and not got
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustrep gan train: stopped by SIGTERM; checkpoint {run}/checkpoints/latest.pt (step 2) "
        f"is intact; continue with --resume {run}")


def test_the_python_train_leaves_a_sigterm_after_the_run_finished_to_its_caller(
        tmp_path, monkeypatch):
    """Only the program's handler lets a finished run end as finished: ``train()`` called from
    Python (a sweep script) keeps a SIGTERM for the caller's handler, as before."""
    from robustrep.tasks.gan import train as gan_train
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    cfg = GanConfig(**{**PRESETS["grid-mlp"], "preset": "grid-mlp", "steps": 2, "eval_every": 0,
                       "final_eval": False, "device": "cpu", "out": str(tmp_path / "g")})
    _term_after(monkeypatch, gan_train.Trainer, "finished")
    got = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        gan_train.train(cfg, show_progress=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert got == [signal.SIGTERM] and (tmp_path / "g" / "finished.json").is_file()


@pytest.mark.parametrize("program, point", [("gan", "finished"), ("classify", "cleanup")])
def test_ctrl_c_after_the_run_finished_says_it_finished_not_to_resume(
        tmp_path, monkeypatch, capsys, program, point):
    """Ctrl-C in the teardown of a finished run: 130 (the user stopped the command, whose report
    is not printed), but the line said "continue with --resume", which is refused."""
    from robustrep.tasks.common import distributed
    from robustrep.tasks.gan import train as gan_train
    trainer = gan_train.Trainer if program == "gan" else Trainer
    owner = trainer if point == "finished" else distributed
    original = getattr(owner, point)

    def then_sigint(*args, **kwargs):
        out = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return out
    run = tmp_path / program
    with monkeypatch.context() as patch:
        patch.setattr(owner, point, then_sigint)
        assert cli.main([*(GAN_ARGV if program == "gan" else ARGV), "--out", str(run)]) == 130
    out, err = capsys.readouterr()
    assert err.strip().splitlines()[-1].endswith(
        f": interrupted (Ctrl-C); {run} had finished (finished.json written); there is nothing "
        f"to resume"), err
    assert (run / "finished.json").is_file() and not out  # stopped before its report
    assert cli.main([program, "train", "--resume", str(run), "--quiet"]) == 2  # as it says


def test_a_process_but_the_first_notes_the_finished_run_after_process_0_wrote_it(
        tmp_path, monkeypatch):
    """Under torchrun only process 0 writes finished.json; the others learn of it at a barrier
    after the write, so a late SIGTERM ends them as finished too (they ended 143). Before the
    barrier the run is not finished for them; one process waits on no collective."""
    from types import SimpleNamespace

    from robustrep.tasks.common import run_records, training
    from robustrep.tasks.common.distributed import DistInfo
    from robustrep.tasks.common.rundir import RunDir
    from robustrep.tasks.common.stops import finished_run
    opened, marks = len(run_records.opened_runs()), len(run_records.finished_runs())
    at_barrier = []
    monkeypatch.setattr(training, "barrier",
                        lambda: at_barrier.append(finished_run(opened, marks)))
    run = tmp_path / "run"
    run.mkdir()
    other = training.TrainerBase(RunDir(run), DistInfo(rank=1, world_size=2))
    other.cfg = SimpleNamespace(steps=2)
    other.finished()
    assert at_barrier == [None]  # a SIGTERM until then still stops it (143)
    assert finished_run(opened, marks) == run
    assert not (run / "finished.json").exists()  # process 0's to write
    alone = training.TrainerBase(RunDir(run), DistInfo())
    alone.cfg = SimpleNamespace(steps=2)
    alone.finished()
    assert at_barrier == [None] and (run / "finished.json").is_file()


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_a_signal_during_the_last_checkpoint_write_keeps_that_checkpoint(
        tmp_path, monkeypatch, capsys, program):
    # Was: the last checkpoint was written outside the stop handler: Ctrl-C raised inside
    # torch.save, the step's checkpoint was lost (latest.pt stayed at the step before, up to
    # --ckpt-every steps redone) and a large model's save ended in a traceback
    if program == "gan":
        from robustrep.tasks.gan.train import Trainer as owner
        argv = ["gan", "train", "--preset", "grid-mlp", "--steps", "3", "--eval-every", "0",
                "--eval-samples", "50", "--ckpt-every", "2", "--quiet"]
    else:
        owner, argv = Trainer, [*ARGV[:-3], "--ckpt-every", "2", "--seed", "0", "--quiet"]
    steps = int(argv[argv.index("--steps") + 1])
    original = owner.save

    def save(self):
        if self.step == steps:
            os.kill(os.getpid(), signal.SIGINT)  # as if it came while the file was written
        return original(self)
    run = tmp_path / "r"
    with monkeypatch.context() as patch:
        patch.setattr(owner, "save", save)
        assert cli.main([*argv, "--out", str(run)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustrep {program} train: stopped by SIGINT after step {steps} of {steps}; "
        f"checkpoint {run}/checkpoints/step_{steps:08d}.pt; continue with --resume {run}")
    assert _weights(run)["step"] == steps and not (run / "finished.json").exists()
    assert cli.main([program, "train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "finished.json").is_file()
