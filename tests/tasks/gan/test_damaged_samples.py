"""``gan fid`` of a damaged samples ``.pt``: the line says to write the file again.

Was: "samples file S.pt is not a readable PyTorch file (...); it may be truncated or corrupt:
use another checkpoint" -- a samples file is no checkpoint, and there is none to choose."""

import numpy as np
import torch

from robustrep.tasks.cli import main


def test_a_truncated_samples_file_is_to_be_written_again(tmp_path, capsys):
    samples = tmp_path / "samples.pt"
    torch.save({"samples": torch.rand(8, 1, 16, 16), "range": "[0, 1]"}, samples)
    samples.write_bytes(samples.read_bytes()[:700])
    np.savez(tmp_path / "ref.npz", mu=np.zeros(4), sigma=np.eye(4))
    assert main(["gan", "fid", str(samples), str(tmp_path / "ref.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"robustrep gan fid: error: samples file {samples} is not a readable "
                          f"PyTorch file ("), err
    assert err.endswith("); it may be truncated or corrupt: write it again (robustrep gan sample "
                        "RUN --pt FILE.pt, or torch.save(x, FILE) of your own samples)\n"), err
