"""``classify train --epochs N`` (and ``--warmup-epochs``): timm train.py's lengths, N passes
over the training set, converted to optimizer steps once the data is read and saved as steps.
A pass is the sampler's epoch (StepBatches): ``size // (batch_size x processes)`` batches, the
last partial batch dropped as timm's training loader drops it."""

import json
import math

import pytest

from robustrep.tasks.classify import train as train_module
from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.classify.data import build_datasets
from robustrep.tasks.classify.lengths import epochs_to_steps
from robustrep.tasks.classify.train import config_for_resume, train
from robustrep.tasks.cli import main
from robustrep.tasks.common.batches import StepBatches
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.rundir import RunDir

from .conftest import tiny_config

# about 290 training images at 8x8: an epoch is a second of CPU
SMALL = dict(classes=[0, 1], image_size=8, ckpt_every=0, log_every=0)


def _train_size(**values) -> int:
    return len(build_datasets(ClassifyConfig(model="test_resnet", **values))[0])


def _dry_run(args, capsys) -> dict:
    assert main(["classify", "train", "--preset", "smoke", *args, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def _refused(args, capsys, tmp_path) -> str:
    """Exit 2 with one line on stderr, and no run folder made."""
    run = tmp_path / "run"
    assert main(["classify", "train", "--preset", "smoke", *args, "--run-dir", str(run),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and not run.exists()
    return err


@pytest.mark.parametrize("batch,accum,epochs,warmup,reg", [
    (16, 1, 1, None, []), (64, 1, 3, 1, []), (16, 3, 2, 1, []), (50, 4, 3, 2, []),
    (16, 1, 1, None, ["--reg", "free", "--free-replays", "2"])])
def test_the_steps_of_epochs_are_the_samplers_passes(batch, accum, epochs, warmup, reg, capsys):
    size = _train_size()  # the built-in digits, all ten classes
    replays = 2 if reg else 1
    args = ["--batch-size", str(batch), "--grad-accum", str(accum), "--epochs", str(epochs),
            *reg] + (["--warmup-epochs", str(warmup)] if warmup else [])
    cfg = _dry_run(args, capsys)  # the smoke preset's steps 4 give way to --epochs
    per_epoch = size // batch * replays  # sampler steps of one pass: the partial batch dropped
    assert (cfg["epochs"], cfg["steps"]) == (epochs, math.ceil(epochs * per_epoch / accum))
    want = 0 if warmup is None else math.ceil(warmup * per_epoch / accum)
    assert (cfg["warmup_epochs"], cfg["warmup_steps"]) == (warmup, want)
    for world in (1, 2):  # --batch-size is per process
        assert epochs_to_steps(epochs, size, batch, world, accum) == math.ceil(
            epochs * (size // (batch * world)) / accum)


@pytest.mark.parametrize("batch,world", [(10, 1), (8, 1), (7, 2)])
def test_each_epoch_sees_each_training_image_at_most_once(batch, world):
    size = 430  # digits 0-2: 43 batches of 10 hold every image; of 8, 6 images wait a pass
    epochs = 3
    steps = epochs_to_steps(epochs, size, batch, world)
    per_epoch = steps // epochs
    seen = [[i for rank in range(world)
             for idx in StepBatches(size, batch, 0, e * per_epoch, (e + 1) * per_epoch, rank,
                                    world) for i in idx] for e in range(epochs)]
    for images in seen:
        assert len(images) == len(set(images)) == size - size % (batch * world)
    if size % (batch * world) == 0:
        assert all(sorted(images) == list(range(size)) for images in seen)
    else:  # a different few wait each pass
        assert len({frozenset(set(range(size)) - set(images)) for images in seen}) == epochs


@pytest.mark.parametrize("batch,accum", [(16, 1), (8, 3)])
def test_a_run_of_one_epoch_reads_one_pass(batch, accum, tmp_path, monkeypatch):
    seen = []

    def recording(dataset, sampler, workers=0):
        class Recorder:
            def __iter__(self):
                for idx in sampler:
                    seen.append(list(idx))
                    yield idx
        return batches(dataset, Recorder(), workers)
    batches = train_module.train_batches
    monkeypatch.setattr(train_module, "train_batches", recording)
    train(tiny_config(epochs=1, batch_size=batch, grad_accum=accum, **SMALL), tmp_path / "run",
          quiet=True)
    size = _train_size(classes=[0, 1], image_size=8)
    per_epoch = size // batch
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["epochs"], saved["steps"]) == (1, math.ceil(per_epoch / accum))
    assert RunDir(tmp_path / "run").read_metrics()[-1]["step"] == saved["steps"]
    first = [i for idx in seen[:per_epoch] for i in idx]
    assert len(first) == len(set(first)) == size - size % batch  # one pass, no image twice
    # the last update takes the batches it lacks from the next pass (ceil), no more
    assert len(seen) == saved["steps"] * accum and per_epoch <= len(seen) < per_epoch + accum


def test_steps_and_epochs_together_are_refused(capsys, tmp_path):
    for args, flags in ((["--epochs", "1", "--steps", "5"], "--steps and --epochs"),
                        (["--warmup-epochs", "1", "--warmup-steps", "5"],
                         "--warmup-steps and --warmup-epochs")):
        err = _refused(args, capsys, tmp_path)
        assert f"{flags} are two ways to give one length" in err
        # on resume too, before the run is read
        assert main(["classify", "train", "--resume", str(tmp_path / "none"), *args]) == 2
        assert flags in capsys.readouterr().err


def test_a_warmup_of_epochs_is_checked_once_it_is_steps(capsys, tmp_path):
    err = _refused(["--epochs", "1", "--warmup-epochs", "1"], capsys, tmp_path)
    steps = _train_size() // 16
    assert (f"--warmup-epochs 1 ({steps} steps) is not below --epochs 1 ({steps} steps): the "
            f"learning rate would never reach --lr") in err
    cfg = _dry_run(["--warmup-epochs", "1", "--warmup-lr", "0.001", "--steps", "200"], capsys)
    assert (cfg["warmup_steps"], cfg["warmup_lr"]) == (steps, 0.001)  # a warm-up: lr accepted
    err = _refused(["--epochs", "1", "--stop-after", str(steps)], capsys, tmp_path)
    assert f"--stop-after {steps} is not before the run's end (--epochs 1 ({steps} steps))" in err
    # --dry-run counts the digits' epochs too: it was accepted there
    err = _refused(["--epochs", "1", "--stop-after", str(steps), "--dry-run"], capsys, tmp_path)
    assert f"--stop-after {steps} is not before the run's end (--epochs 1 ({steps} steps))" in err


def test_a_config_file_and_the_flags_decide_the_length_as_every_option(tmp_path, capsys):
    steps = _train_size() // 16
    for file, flags, want in (({"epochs": 2}, ["--steps", "7"], (None, 7)),
                              ({"steps": 7}, ["--epochs", "2"], (2, 2 * steps)),
                              # a run's config.json holds both: its epochs decide
                              ({"epochs": 2, "steps": 7}, [], (2, 2 * steps))):
        path = tmp_path / "c.json"
        path.write_text(json.dumps(file))
        cfg = _dry_run(["--config", str(path), *flags], capsys)
        assert (cfg["epochs"], cfg["steps"]) == want


def test_a_dry_run_without_the_data_says_when_epochs_become_steps(tmp_path, capsys):
    assert main(["classify", "train", "--dataset", "cifar10", "--data-root", str(tmp_path),
                 "--epochs", "2", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    cfg = json.loads(out)
    assert (cfg["epochs"], cfg["steps"]) == (2, None)
    assert "note: --epochs 2: counted in steps when the run reads the cifar10 data" in err


@pytest.fixture
def stopped_run(tmp_path):
    """One epoch (18 steps) of digits 0-1, stopped after step 5."""
    run = tmp_path / "run"
    train(tiny_config(epochs=1, batch_size=16, **SMALL), run, stop_after=5, quiet=True)
    return run


def test_a_resume_keeps_the_saved_steps(stopped_run, monkeypatch):
    saved = json.loads((stopped_run / "config.json").read_text())
    assert saved["epochs"] == 1 and saved["steps"] > 5
    # were epochs converted again, this run would now be 7 steps long
    monkeypatch.setattr("robustrep.tasks.classify.config.epochs_to_steps", lambda *a: 7)
    assert main(["classify", "train", "--resume", str(stopped_run), "--epochs", "1",
                 "--quiet"]) == 0  # its own --epochs again: accepted
    assert RunDir(stopped_run).read_metrics()[-1]["step"] == saved["steps"]
    assert json.loads((stopped_run / "config.json").read_text())["steps"] == saved["steps"]


def test_a_resume_refuses_other_epochs_and_takes_steps(stopped_run, capsys):
    steps = json.loads((stopped_run / "config.json").read_text())["steps"]
    for flag in ("--epochs", "--warmup-epochs"):
        assert main(["classify", "train", "--resume", str(stopped_run), flag, "2"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{flag} 2: {stopped_run} keeps its" in err
    with pytest.raises(ConfigError, match=f"keeps its steps on resume \\({steps}, from --epochs "
                                          f"1\\); about {steps} steps per epoch; give --steps"):
        config_for_resume(stopped_run, {"epochs": 2})
    cfg = config_for_resume(stopped_run, {"steps": 30})  # the length is in steps now
    assert (cfg.steps, cfg.epochs) == (30, None)
    with pytest.raises(ConfigError, match=f"--warmup-steps {steps} is not below --epochs 1 "
                                          f"\\({steps} steps\\)"):
        config_for_resume(stopped_run, {"warmup_steps": steps})
    assert main(["classify", "train", "--resume", str(stopped_run), "--steps", "8",
                 "--quiet"]) == 0
    saved = json.loads((stopped_run / "config.json").read_text())
    assert (saved["steps"], saved["epochs"]) == (8, None)
    assert RunDir(stopped_run).read_metrics()[-1]["step"] == 8
