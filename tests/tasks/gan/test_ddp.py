"""Two CPU processes through torchrun (gloo): gradients averaged, one run folder, checkpoint."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

# Runs the real CLI under torchrun; after training, every process also dumps its own G and D so
# the test can check that the averaged gradients kept the two replicas identical.
LAUNCHER = textwrap.dedent("""
    import sys
    import torch
    from robustrep.tasks.gan import train as T

    finish = T.Trainer.finish

    def finish_and_dump(self, *args):
        finish(self, *args)
        torch.save({"G": self.ctx.G.state_dict(), "D": self.ctx.D.state_dict()},
                   f"{sys.argv[1]}/replica{self.dist.rank}.pt")

    T.Trainer.finish = finish_and_dump
    from robustrep.tasks.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.slow
def test_two_process_run(tmp_path):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    run = tmp_path / "run"
    args = ["gan", "train", "--preset", "grid-mlp", "--reg", "adaptivemix,asgan", "--steps", "3",
            "--batch-size", "8", "--g-width", "8", "--d-width", "8", "--mixture-samples", "500",
            "--eval-every", "0", "--final-eval", "false", "--ckpt-every", "2", "--log-every", "1",
            "--device", "cpu", "--out", str(run), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ROBUSTREP_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(launcher), str(tmp_path), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert state["world_size"] == 2 and state["step"] == 3
    assert state["consumed"] == 3  # global batches; each process read half of each
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]  # one writer, no duplicate lines
    replicas = [torch.load(tmp_path / f"replica{r}.pt") for r in (0, 1)]
    for net in ("G", "D"):
        for key, value in replicas[0][net].items():
            assert torch.equal(value, replicas[1][net][key]), f"{net}.{key} differs across ranks"
            assert torch.equal(value, state[net][key])
    # the processes saw different data and latents, so a step moved the weights
    start = torch.load(run / "checkpoints" / "step_00000002.pt", weights_only=False)
    assert not torch.equal(start["G"]["net.0.weight"], state["G"]["net.0.weight"])


# Every process sends itself SIGTERM once the run is marked finished (a scheduler's late SIGTERM,
# which torchrun passes on to each process).
LATE_SIGTERM = textwrap.dedent("""
    import os, signal, sys
    from robustrep.tasks.gan import train as T

    finished = T.Trainer.finished

    def finished_then_sigterm(self, **summary):
        finished(self, **summary)
        os.kill(os.getpid(), signal.SIGTERM)

    T.Trainer.finished = finished_then_sigterm
    from robustrep.tasks.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_a_late_sigterm_ends_every_process_of_a_finished_run_with_0(tmp_path):
    """Only process 0 writes finished.json: process 1 knew nothing of it and ended 143 (a
    scheduler then counted the finished job as killed). Now each notes it after a barrier."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(LATE_SIGTERM)
    run = tmp_path / "run"
    args = ["gan", "train", "--preset", "grid-mlp", "--steps", "2", "--batch-size", "8",
            "--g-width", "8", "--d-width", "8", "--eval-every", "0", "--final-eval", "false",
            "--device", "cpu", "--out", str(run), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ROBUSTREP_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(launcher), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    note = f"note: SIGTERM came after {run} had finished (finished.json written)"
    assert proc.stderr.count(note) == 2, proc.stderr[-3000:]  # each process's own
    assert (run / "finished.json").is_file()
