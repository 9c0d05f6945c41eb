import json
import os
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    """DDP through torchrun with gloo: two processes, AdaptiveMix + FGSM, then load the run."""
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29561", "-m", "robustrep.tasks.cli", "classify", "train",
           "--preset", "smoke", "--image-size", "16", "--classes", "0,1,2", "--batch-size", "8",
           "--reg", "adaptivemix,fgsm", "--run-dir", str(run), "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # From a temporary folder: the checkout's robustrep/ must not shadow the installed package.
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if "loss" in r)
    from robustrep.tasks.common.classifier_run import load_run
    model, config = load_run(run)
    assert config["num_classes"] == 3


def _torchrun(tmp_path, *args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "robustrep.tasks.cli", "classify", *args]
    done = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_a_two_process_run_resumes_as_if_uninterrupted(tmp_path):
    """Each process's draws (mixup's lam, FGSM's start) are its own and come back with it: a
    checkpoint kept only the first process's, so after a resume both drew the same numbers."""
    flags = ["--preset", "smoke", "--image-size", "16", "--classes", "0,1,2", "--batch-size", "8",
             "--reg", "mixup,fgsm", "--steps", "4", "--ckpt-every", "2", "--eval-every", "0",
             "--log-every", "1", "--quiet"]
    full, part = tmp_path / "full", tmp_path / "part"
    _torchrun(tmp_path, "train", *flags, "--out", str(full))
    _torchrun(tmp_path, "train", *flags, "--out", str(part), "--stop-after", "2")
    _torchrun(tmp_path, "train", "--resume", str(part), "--quiet")
    a, b = (torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
            for run in (full, part))
    assert a["world_size"] == 2 and len(a["ranks"]) == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    losses = [[json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()
               if "loss" in json.loads(x)] for run in (full, part)]
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_two_processes_accumulating_two_batches_make_the_update_of_one_twice_as_large(tmp_path):
    """--grad-accum 2 skips the all-reduce of the first batch (no_sync) and sums the second's:
    the update equals that of batches twice as large (the same 16 samples; a model without
    BatchNorm, so the gradient is the mean over them however they are split)."""
    flags = ["--preset", "smoke", "--model", "test_convnext", "--image-size", "32", "--classes",
             "0,1,2", "--steps", "1", "--lr", "0.5", "--eval-every", "0", "--quiet"]
    _torchrun(tmp_path, "train", *flags, "--batch-size", "8", "--out", "whole")
    _torchrun(tmp_path, "train", *flags, "--batch-size", "4", "--grad-accum", "2", "--out",
              "halves")
    a, b = (torch.load(tmp_path / run / "checkpoints" / "latest.pt", weights_only=False)["model"]
            for run in ("whole", "halves"))
    for key, value in a.items():
        if value.is_floating_point():
            torch.testing.assert_close(b[key], value, rtol=1e-5, atol=1e-6, msg=key)
