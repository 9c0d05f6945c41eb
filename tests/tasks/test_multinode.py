"""Multi-node torchrun (c10d rendezvous) on loopback: two single-process "nodes" on 127.0.0.1.

Each node is its own ``torchrun --nnodes 2 --nproc_per_node 1 --node_rank R --rdzv_backend c10d
--rdzv_endpoint 127.0.0.1:PORT`` process, as the README's multi-node commands run on two machines;
after training each rank dumps its own weights so the test can check that the replicas agree.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

# The real CLI under torchrun; after training every rank also saves its weights.
LAUNCHER = textwrap.dedent("""
    import os
    import sys
    import torch
    from robustrep.tasks.classify import train as C
    from robustrep.tasks.gan import train as G

    out = sys.argv[1]
    rank = os.environ["RANK"]
    gan_finish, classify_fit = G.Trainer.finish, C.Trainer.fit

    def gan_dump(self, *args):
        gan_finish(self, *args)
        torch.save({"G": self.ctx.G.state_dict(), "D": self.ctx.D.state_dict()},
                   f"{out}/replica{rank}.pt")

    def classify_dump(self, *args, **kwargs):
        last = classify_fit(self, *args, **kwargs)
        # parameters: DDP broadcasts BatchNorm buffers from rank 0 at the start of each forward,
        # so after the last step each rank holds the running statistics of its own last batch
        params = {k: v.detach() for k, v in self.model.named_parameters()}
        torch.save({"model": params}, f"{out}/replica{rank}.pt")
        return last

    G.Trainer.finish, C.Trainer.fit = gan_dump, classify_dump
    from robustrep.tasks.cli import main
    sys.exit(main(sys.argv[2:]))
""")

PROGRAMS = {
    "gan": ["gan", "train", "--preset", "grid-mlp", "--reg", "adaptivemix", "--steps", "3",
            "--batch-size", "8", "--g-width", "8", "--d-width", "8", "--mixture-samples", "500",
            "--eval-every", "0", "--final-eval", "false", "--log-every", "1", "--device", "cpu"],
    "classify": ["classify", "train", "--preset", "smoke", "--image-size", "16", "--classes",
                 "0,1,2", "--batch-size", "8", "--steps", "3", "--device", "cpu"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_two_nodes_on_loopback_end_with_identical_weights(program, tmp_path):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    run = tmp_path / "run"
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ROBUSTREP_CACHE": str(tmp_path / "cache"),
           "GLOO_SOCKET_IFNAME": "lo"}
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
         "--node_rank", str(rank), "--rdzv_backend", "c10d", "--rdzv_id", "loopback",
         "--rdzv_endpoint", f"127.0.0.1:{port}", str(launcher), str(tmp_path),
         *PROGRAMS[program], "--out", str(run), "--quiet"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)]
    try:
        outputs = [node.communicate(timeout=400) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]
    replicas = [torch.load(tmp_path / f"replica{r}.pt", weights_only=True) for r in (0, 1)]
    assert replicas[0].keys() == replicas[1].keys()
    for net in replicas[0]:
        for key, value in replicas[0][net].items():
            assert torch.equal(value, replicas[1][net][key]), f"{net}.{key} differs across nodes"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert records and records[-1]["step"] == 3  # one writer: the rank-0 node
