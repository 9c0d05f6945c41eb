"""Resume: an interrupted run resumed to N steps equals the uninterrupted run, bit for bit (CPU)."""

import shutil

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.gan.train import train


def _weights(run):
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    return state


def _assert_equal_states(a, b):
    assert a["step"] == b["step"] and a["consumed"] == b["consumed"]
    for part in ("G", "D", "ema"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs"
    for part in ("opt_g", "opt_d"):
        for pid, st in a[part]["state"].items():
            for key, value in st.items():
                assert torch.equal(value, b[part]["state"][pid][key]), f"{part} {pid} {key}"
    assert a["regs"].keys() == b["regs"].keys()
    for name, state in a["regs"].items():  # carried state (AS-GAN free mode's delta)
        assert state.keys() == b["regs"][name].keys()
        for key, value in state.items():
            assert torch.equal(value, b["regs"][name][key]), f"regs {name} {key} differs"


@pytest.mark.parametrize("options", [
    dict(reg="none"),
    dict(reg="adaptivemix,asgan", eval_every=2, final_eval=True),
    dict(reg="asgan", asgan_free=True, ema_decay=0.9),
    dict(reg="rpgan,srmix"),
    dict(reg="ssgan,dat"),
    dict(reg="infomax,mixup"),
], ids=lambda o: o["reg"] + ("-free" if o.get("asgan_free") else ""))
def test_resume_equals_uninterrupted(options, tiny_cfg, tmp_path, records):
    full, part = tmp_path / "full", tmp_path / "part"
    train(tiny_cfg(steps=4, ckpt_every=2, out=str(full), **options), show_progress=False)
    train(tiny_cfg(steps=2, ckpt_every=2, out=str(part), **options), show_progress=False)
    assert main(["gan", "train", "--resume", str(part), "--steps", "4", "--quiet"]) == 0
    _assert_equal_states(_weights(full), _weights(part))
    steps = [r["step"] for r in records(part) if "loss/d/total" in r]
    assert steps == [1, 2, 3, 4]


def test_resume_after_crash_truncates_metrics(tiny_cfg, tmp_path, records):
    """A crash after the step-2 checkpoint: resume rewrites steps 3-4 and drops the stale ones."""
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    train(tiny_cfg(steps=4, ckpt_every=2, out=str(full)), show_progress=False)
    train(tiny_cfg(steps=4, ckpt_every=2, out=str(crashed)), show_progress=False)
    ckpts = crashed / "checkpoints"
    shutil.copy(ckpts / "step_00000002.pt", ckpts / "latest.pt")
    (ckpts / "step_00000004.pt").unlink()
    with open(crashed / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss/d/total": 123.0}\n')  # a record the crash left behind
    assert main(["gan", "train", "--resume", str(crashed), "--quiet"]) == 0
    _assert_equal_states(_weights(full), _weights(crashed))
    loss_steps = [r["step"] for r in records(crashed) if "loss/d/total" in r]
    assert loss_steps == [1, 2, 3, 4]
    assert all(r.get("loss/d/total") != 123.0 for r in records(crashed))


def test_resume_refuses_model_changes(tiny_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run)), show_progress=False)
    assert main(["gan", "train", "--resume", str(run), "--g-width", "16", "--quiet"]) == 2
    assert "cannot change g_width" in capsys.readouterr().err


def test_new_run_refuses_existing_folder(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run)), show_progress=False)
    with pytest.raises(RunFolderError, match="--resume"):
        train(tiny_cfg(out=str(run)), show_progress=False)
