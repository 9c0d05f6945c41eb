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
    with pytest.raises(UserError, match="--log must be one of jsonl, tensorboard; got 'wandb'"):
        make_sinks("wandb", tmp_path)
