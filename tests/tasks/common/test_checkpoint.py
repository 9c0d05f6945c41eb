import random

import numpy as np
import pytest
import torch

from robustrep.tasks.common.checkpoint import (latest_checkpoint, load_checkpoint, rng_state,
                                               save_checkpoint, set_rng_state)
from robustrep.tasks.common.rundir import RunDir


def test_save_keeps_latest_and_prunes(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint({"step": step, "w": torch.full((2,), float(step))}, tmp_path, step, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_00000003.pt",
                                                                    "step_00000004.pt"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 4
    assert load_checkpoint(tmp_path)["w"].tolist() == [4.0, 4.0]
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_checkpoint_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_checkpoint(tmp_path / "latest.pt")


def test_rng_state_round_trip_repeats_draws():
    gen = torch.Generator().manual_seed(3)
    state = rng_state({"g": gen})
    first = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())
    set_rng_state(state, {"g": gen})
    second = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())
    assert first == second


def test_run_dir_log_and_truncate(tmp_path):
    run = RunDir(tmp_path / "run").create()
    run.write_config({"a": 1, "p": tmp_path})
    for step in (10, 20, 30):
        run.log(step, loss=torch.tensor(float(step)), bad=float("nan"))
    run.truncate_metrics(20)
    records = run.read_metrics()
    assert [r["step"] for r in records] == [10, 20]
    assert records[0]["loss"] == 10.0 and records[0]["bad"] == "nan"
    assert run.read_config()["a"] == 1


def test_read_config_of_non_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a robustrep run folder"):
        RunDir(tmp_path).read_config()
