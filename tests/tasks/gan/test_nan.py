"""A NaN/inf loss stops the run, names the step and loss term, keeps the last good checkpoint."""

import pytest
import torch

import robustrep.tasks.gan.steps as steps
from robustrep.tasks.cli import main
from robustrep.tasks.gan.train import TrainingDiverged, train


def test_huge_lr_stops_with_step_and_term(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_cfg(steps=6, lr_g=1e30, out=str(run))
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, show_progress=False)
    message = str(info.value)
    assert "non-finite loss at step" in message and "loss term" in message
    bad_step = int(message.split("at step ")[1].split(":")[0])
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert state["step"] == bad_step - 1  # the last step whose losses were all finite
    assert not (run / "checkpoints" / f"step_{bad_step:08d}.pt").exists()
    assert f"step_{bad_step - 1:08d}.pt" in message and "--resume" in message


def test_divergence_at_the_first_step_says_no_checkpoint(tiny_cfg, tmp_path):
    with pytest.raises(TrainingDiverged, match="no checkpoint was written"):
        train(tiny_cfg(steps=3, lr_d=1e30, out=str(tmp_path / "run")), show_progress=False)


def test_injected_nan_names_the_term(tiny_cfg, tmp_path, monkeypatch, capsys):
    """A patched fake-side loss turns NaN on the third D step; the CLI exits 1 and says so."""
    calls = {"n": 0}
    original = steps.fake_term

    def flaky(ctx, logits):
        calls["n"] += 1
        loss = original(ctx, logits)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(steps, "fake_term", flaky)
    run = tmp_path / "run"
    argv = ["gan", "train", "--out", str(run), "--steps", "5", "--ckpt-every", "1",
            "--log-every", "1", "--eval-every", "0", "--final-eval", "false", "--image-size",
            "16", "--g-width", "8", "--d-width", "8", "--batch-size", "8", "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "at step 3: loss term 'd/fake' = nan" in err
    assert "step_00000002.pt" in err
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert state["step"] == 2


def test_divergence_is_checked_before_a_checkpoint_between_logs(tiny_cfg, tmp_path, monkeypatch):
    """Even when losses are logged rarely, no checkpoint is written after a bad step."""
    calls = {"n": 0}
    original = steps.real_term

    def flaky(ctx, logits):
        calls["n"] += 1
        loss = original(ctx, logits)
        return loss + float("inf") if calls["n"] == 2 else loss

    monkeypatch.setattr(steps, "real_term", flaky)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="at step 2: loss term 'd/real' = inf"):
        train(tiny_cfg(steps=6, log_every=100, ckpt_every=3, out=str(run)), show_progress=False)
    assert not (run / "checkpoints" / "latest.pt").exists()
