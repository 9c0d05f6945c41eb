"""A bench's classify runs: an unfinished run resumed, a finished one kept only when trained
with the setting's options, a failed one named, its progress relayed from its log."""

import pytest

from robustrep.tasks.ood.bench_training import train_run


def test_an_unfinished_run_is_resumed_with_the_options_it_was_started_with(tmp_path, monkeypatch):
    # The bench starts `classify train --preset P ... --out RUN` and, when RUN holds a checkpoint
    # but is not finished, the same command with --resume: which must be accepted (no --preset:
    # a resume keeps the saved config) and finish the run. Here in-process, a tiny run stopped
    # after one of its two steps.
    from robustrep.tasks.cli import main
    from robustrep.tasks.common import launch
    from robustrep.tasks.common.errors import UserError
    from robustrep.tasks.common.run_records import FINISHED, read_run

    run, calls = tmp_path / "runs" / "none-s0", []

    def in_process(argv, log, threads=None):
        calls.append(argv)
        return main(argv)

    monkeypatch.setattr(launch, "run_robustrep", in_process)
    options = dict(preset="smoke", model="test_resnet", steps=2, device="cpu",
                   train_opts={"image_size": 16, "classes": [0, 1], "eval_every": 0}, quiet=True,
                   retrain=False)
    assert main(["classify", "train", "--preset", "smoke", "--model", "test_resnet", "--steps",
                 "2", "--image-size", "16", "--classes", "0,1", "--eval-every", "0", "--seed",
                 "0", "--device", "cpu", "--out", str(run.absolute()), "--stop-after", "1",
                 "--quiet"]) == 0
    assert not (run / FINISHED).exists()
    said = []
    train_run("none", 0, run, **options, say=said.append)
    assert calls[-1][-1] == "--resume" and "--preset" not in calls[-1]
    # was "training 2 steps from its last checkpoint", read as 2 more
    assert said[0].startswith("training 2 steps from its last checkpoint, at step 1 (log: ")
    assert (run / FINISHED).is_file()
    assert train_run("none", 0, run, **options) == 0.0 and len(calls) == 1  # finished: kept
    # kept only when trained with the setting's options (a dry run leaves the data's fields
    # None and has the bench's seed): another model or lr was reused and labelled as asked for
    wanted = {**read_run(run).config, "seed": 7, "mean": None, "num_classes": None}
    assert train_run("none", 0, run, **options, wanted=wanted) == 0.0
    for key, value in (("model", "resnet10t"), ("lr", 0.001)):
        with pytest.raises(UserError, match=rf"holds a run made with {key} .*, not the "
                                            rf"{value!r} asked for: add --retrain"):
            train_run("none", 0, run, **options, wanted={**wanted, key: value})
    # another length is not a resume (it would stretch the finished run's schedule)
    with pytest.raises(UserError, match=r"holds a run of 2 steps, not the 3 .*--retrain"):
        train_run("none", 0, run, **{**options, "steps": 3})
    train_run("none", 0, run, **{**options, "steps": 3, "retrain": True})
    assert "--resume" not in calls[-1] and read_run(run).config["steps"] == 3


def _failed_run(tmp_path, monkeypatch, code, output="", checkpoint=False):
    """train_run of a child that exits with ``code`` after writing ``output`` to the log (after
    the command line, with which run_robustrep starts the log's entry), and a checkpoint if
    ``checkpoint``; the refusal's text."""
    from robustrep.tasks.common import launch
    from robustrep.tasks.common.errors import UserError

    def child(argv, log, threads=None):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ robustrep {' '.join(argv)}\n{output}")
        if checkpoint:
            (run / "checkpoints").mkdir(parents=True)
            (run / "checkpoints" / "latest.pt").write_bytes(b"")
        return code

    monkeypatch.setattr(launch, "run_robustrep", child)
    run = tmp_path / "runs" / "none-s0"
    with pytest.raises(UserError) as err:
        train_run("none", 0, run, preset="smoke", model="test_resnet", steps=2, device="cpu",
                  train_opts={}, retrain=False, quiet=True)
    return str(err.value).replace(f" (log: {run.parent / 'train.log'})", "")


def test_a_killed_training_run_is_named_by_its_signal_not_its_command_line(tmp_path,
                                                                          monkeypatch):
    # Was: "training none seed 0 failed: $ robustrep classify train ..." (the log's last line,
    # the command itself, when a kill -9 or the OOM killer left no output)
    assert _failed_run(tmp_path, monkeypatch, -9) == (
        "training none seed 0 failed: it was killed by SIGKILL; run the bench again to start "
        "it anew (it wrote no checkpoint)")
    assert _failed_run(tmp_path, monkeypatch, -15, "step 3/300\n", checkpoint=True) == (
        "training none seed 0 failed: it was killed by SIGTERM (its last output: step 3/300); "
        "run the bench again to resume it from its last checkpoint")
    # a run that said why still says it; one that said nothing gives its exit code
    assert _failed_run(tmp_path, monkeypatch, 2, "robustrep classify train: error: bad\n") == (
        "training none seed 0 failed: robustrep classify train: error: bad")
    assert _failed_run(tmp_path, monkeypatch, 1) == (
        "training none seed 0 failed: exit code 1 and no output")


def test_the_training_runs_progress_is_relayed_from_its_log_as_it_runs(tmp_path, monkeypatch):
    # Was: nothing until the run had finished (the child ran with --quiet into the log)
    import time

    from robustrep.tasks.common import launch
    from robustrep.tasks.ood import relay
    monkeypatch.setattr(relay, "POLL_SECONDS", 0.02)
    run, said, argvs, seen_live = tmp_path / "runs" / "none-s0", [], [], []
    log = run.parent / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text("train old: step 5/5 (100%) 1.0 it/s\n")  # an earlier run's: not relayed

    def child(argv, log, threads=None):
        argvs.append(argv)
        with log.open("a") as handle:
            handle.write(f"$ robustrep {' '.join(argv)}\nnote: not progress\n"
                         f"train test_resnet: step 100/300 (33%) 9.5 it/s ETA 21s loss=0.52\n"
                         f"train test_resnet: step 1")  # a line being written
            handle.flush()
            # said while the run goes on, not once it has ended (a quiet bench says nothing)
            for _ in range(0 if "--quiet" in argv else 250):
                if len(said) == 2:
                    seen_live.append(True)
                    break
                time.sleep(0.02)
            handle.write("50/300 (50%) 9.9 it/s ETA 15s\ntrain test_resnet: step 300/300 (100%)"
                         " 9.9 it/s\n")
        return 0

    monkeypatch.setattr(launch, "run_robustrep", child)
    train_run("none", 0, run, preset="smoke", model="test_resnet", steps=300, device="cpu",
              train_opts={}, retrain=False, quiet=False, say=said.append)
    assert said == [f"training 300 steps (log: {log})", "training step 100/300 (33%), ETA 21s",
                    "training step 150/300 (50%), ETA 15s", "training step 300/300 (100%)"]
    assert seen_live and "--quiet" not in argvs[0]  # the child writes its progress to the log
    said.clear()
    train_run("none", 1, tmp_path / "runs" / "none-s1", preset="smoke", model="test_resnet",
              steps=300, device="cpu", train_opts={}, retrain=False, quiet=True)
    assert said == [] and argvs[-1][-1] == "--quiet"  # ood bench --quiet: the child too
