"""``robustrep gan sample`` on requests that could not finish: more samples than memory holds
(tasks/gan/sample.py)."""

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.gan import sample
from robustrep.tasks.gan.train import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sample") / "run"
    train(tiny_config(steps=1, out=str(run)), show_progress=False)  # 16x16 grey: 256 floats each
    return run


@pytest.mark.parametrize("extra, why", [
    ([], "--num with the default grid"),
    (["--grid", "g.png"], "--num with --grid"),
    (["--pt", "s.pt", "--outdir", "out"], "--num with --pt"),
])
def test_more_samples_than_memory_holds_are_refused_before_sampling(
        tiny_run, extra, why, tmp_path, monkeypatch, capsys):
    """Was: `gan sample RUN --num 100000000` sampled for hours (with an ETA of 16 h), keeping
    every image for the grid, until the machine ran out of memory; --outdir alone streams."""
    monkeypatch.chdir(tmp_path)
    # 8 samples of 256 float32, kept twice (the list and torch.cat): 16,384 bytes
    monkeypatch.setattr(sample, "available_memory", lambda: 16_383)
    before = sorted(p.name for p in (tiny_run / "samples").iterdir())
    argv = ["gan", "sample", str(tiny_run), "--num", "8", "--device", "cpu", "--quiet", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (f"error: {why} keeps all 8 samples in memory: at least 0.0 GB, and this machine "
            f"has 0.0 GB available; write them one PNG at a time with --outdir DIR alone") in err
    assert not list(tmp_path.iterdir())  # no grid, no .pt, no --outdir folder
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == before
    monkeypatch.setattr(sample, "available_memory", lambda: 16_384)  # just enough
    assert main(argv) == 0
    monkeypatch.setattr(sample, "available_memory", lambda: 1)
    alone = argv[:len(argv) - len(extra)] + ["--outdir", "alone"]
    assert main(alone) == 0  # one PNG at a time: no limit
    assert len(list((tmp_path / "alone").glob("*.png"))) == 8
