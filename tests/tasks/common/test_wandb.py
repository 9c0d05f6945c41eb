"""`--log wandb`: the optional sink, against a stand-in module and (when installed) real wandb."""

import glob
import json
import struct
import sys
import time
import types

import pytest

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.sinks import make_sinks


class _FakeRun:
    def __init__(self, calls, **kwargs):
        self.calls, self.kwargs, self.logged, self.finished = calls, kwargs, [], False
        calls.append(self)

    def log(self, values, step):
        self.logged.append((step, values))

    def finish(self):
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
    runs = []
    module = types.ModuleType("wandb")
    module.init = lambda **kwargs: _FakeRun(runs, **kwargs)
    monkeypatch.setitem(sys.modules, "wandb", module)
    return runs


def test_missing_wandb_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(UserError) as err:
        make_sinks("wandb", tmp_path)
    assert "robustrep[wandb]" in str(err.value) and "\n" not in str(err.value)


def test_sink_mirrors_scalars_and_keeps_its_run_id(fake_wandb, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.1}))
    sink = make_sinks("wandb", tmp_path)[0]
    sink.write({"step": 3, "loss": 0.5, "eval": {"acc": 0.25}, "note": "text", "bad": float("nan")})
    sink.close()
    run = fake_wandb[0]
    assert run.logged == [(3, {"loss": 0.5, "eval/acc": 0.25})] and run.finished
    assert run.kwargs["config"] == {"lr": 0.1} and run.kwargs["dir"] == str(tmp_path / "wandb")
    make_sinks("wandb", tmp_path)  # a resumed run continues the same wandb run
    assert fake_wandb[1].kwargs["id"] == run.kwargs["id"]


@pytest.mark.parametrize("env, mode", [({"ROBUSTREP_OFFLINE": "1"}, "offline"),
                                       ({"HF_HUB_OFFLINE": "1"}, "offline"), ({}, None)])
def test_the_offline_switch_keeps_the_wandb_run_offline(env, mode, fake_wandb, tmp_path,
                                                        monkeypatch):
    """README: ROBUSTREP_OFFLINE=1 "forbids every connection"; wandb.init connected anyway
    (its own WANDB_MODE was the only way to keep it local)."""
    for var in ("ROBUSTREP_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    make_sinks("wandb", tmp_path)
    assert fake_wandb[0].kwargs.get("mode") == mode


def test_classify_train_log_wandb(fake_wandb, tmp_path):
    from robustrep.tasks.cli import main
    assert main(["classify", "train", "--preset", "smoke", "--log", "wandb", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    logged = fake_wandb[0].logged
    assert [s for s, _ in logged] == [r["step"] for r in records]  # JSONL stays the truth
    assert logged[0][1]["loss"] == pytest.approx(records[0]["loss"])


def _wandb_records(path):
    """The records of a ``.wandb`` file (LevelDB log format: 7-byte file header, 32 KiB blocks
    of records with a 7-byte header: crc32, length, type 1 full / 2 first / 3 middle / 4 last)."""
    raw, pos, buf = open(path, "rb").read(), 7, b""
    while pos + 7 <= len(raw):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        buf, pos = buf + raw[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            yield buf
            buf = b""


def test_real_wandb_offline_keeps_the_scalars(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2 as pb2
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    sink = make_sinks("wandb", tmp_path)[0]
    sink.write({"step": 1, "loss": 0.5, "eval": {"acc": 0.25}})
    sink.write({"step": 2, "loss": 0.4})
    sink.close()
    [path] = glob.glob(str(tmp_path / "wandb" / "wandb" / "offline-run-*" / "run-*.wandb"))
    for _ in range(100):  # wandb's core process may still be writing after finish() returns
        rows = []
        for data in _wandb_records(path):
            rec = pb2.Record()
            rec.ParseFromString(data)
            if rec.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in rec.history.item})
        if len(rows) >= 2:
            break
        time.sleep(0.1)
    assert [(r["_step"], r["loss"]) for r in rows] == [(1, 0.5), (2, 0.4)]
    assert rows[0]["eval/acc"] == 0.25
