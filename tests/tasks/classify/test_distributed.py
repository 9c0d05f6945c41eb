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
    from robustrep.tasks.common.classifier import load_run
    model, config = load_run(run)
    assert config["num_classes"] == 3
