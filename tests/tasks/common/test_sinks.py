import pytest

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.sinks import make_sinks

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_tensorboard_sink_mirrors_numeric_values_by_step(tmp_path):
    (sink,) = make_sinks("tensorboard", tmp_path)
    sink.write({"step": 10, "time": 1.5, "loss": {"d": 0.25, "g": 2.0}, "fid": float("nan"),
                "note": "text", "done": True})
    sink.write({"step": 20, "loss": {"d": 0.5}})
    sink.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["loss/d", "loss/g", "time"]
    assert [(e.step, e.value) for e in acc.Scalars("loss/d")] == [(10, 0.25), (20, 0.5)]
    assert [(e.step, e.value) for e in acc.Scalars("loss/g")] == [(10, 2.0)]


def test_jsonl_is_the_default_and_unknown_sinks_are_refused(tmp_path):
    assert make_sinks(None, tmp_path) == [] and make_sinks("jsonl", tmp_path) == []
    with pytest.raises(UserError, match="--log must be one of jsonl, tensorboard, wandb; got "
                                        "'mlflow'"):
        make_sinks("mlflow", tmp_path)


def test_log_tensorboard_through_the_gan_program(tmp_path):
    from robustrep.tasks.cli import main
    run = tmp_path / "run"
    assert main(["gan", "train", "--preset", "grid-mlp", "--steps", "4", "--batch-size", "8",
                 "--g-width", "8", "--d-width", "8", "--mixture-samples", "200",
                 "--eval-every", "0", "--final-eval", "false", "--log-every", "2",
                 "--device", "cpu", "--log", "tensorboard", "--out", str(run), "--quiet"]) == 0
    acc = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    steps = {e.step for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}
    assert steps == {2, 4}  # every metrics.jsonl record, under its step


def test_log_tensorboard_through_the_classify_program(tmp_path):
    from robustrep.tasks.cli import main
    run = tmp_path / "run"
    assert main(["classify", "train", "--preset", "smoke", "--image-size", "16", "--steps", "2",
                 "--log", "tensorboard", "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    acc = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert {e.step for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)} == {1, 2}
