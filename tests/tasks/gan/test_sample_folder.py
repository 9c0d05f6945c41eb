"""``gan sample RUN`` without ``--grid``/``--outdir`` writes its grid into ``RUN/samples``: a
folder that cannot take it is one line naming that folder and the options that write elsewhere
(it named a probe file, ``RUN/samples/x.png``, as "the samples folder")."""

import errno
import os

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.gan.train import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("s39-sample") / "run"
    train(tiny_config(steps=1, out=str(run)), show_progress=False)
    return run


@pytest.fixture
def refuse_writes_in(monkeypatch):
    """``refuse_writes_in(folder)``: files and folders cannot be made in ``folder`` (EACCES, as
    a folder without write permission; root, who runs the tests in containers, writes through
    a chmod, so the system calls are refused instead)."""
    folders = []
    real_open, real_mkdir = os.open, os.mkdir

    def inside(path):
        try:
            where = os.path.abspath(os.fsdecode(path))
        except TypeError:  # a file descriptor
            return False
        return any(where == f or where.startswith(f + os.sep) for f in folders)

    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path) and not os.path.exists(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return lambda folder: folders.append(os.path.abspath(folder))


def _sample(run, capsys, *extra):
    code = main(["gan", "sample", str(run), "--num", "4", "--device", "cpu", "--quiet", *extra])
    return code, capsys.readouterr().err


def test_an_unwritable_samples_folder_names_it_and_the_options_that_write_elsewhere(
        tiny_run, refuse_writes_in, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    samples = tiny_run / "samples"
    before = sorted(p.name for p in samples.iterdir())
    refuse_writes_in(samples)
    code, err = _sample(tiny_run, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"the run's samples folder {samples}:" in err
    assert "x.png" not in err  # the probe's name is no file of the user's
    assert err.rstrip().endswith("with --grid FILE.png or --outdir DIR")
    assert sorted(p.name for p in samples.iterdir()) == before
    code, _ = _sample(tiny_run, capsys, "--grid", "g.png")  # as the line says
    assert code == 0 and (tmp_path / "g.png").is_file()


def test_a_file_where_the_samples_folder_belongs_is_named(tiny_run, tmp_path, capsys):
    run = tmp_path / "copy"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl"):
        (run / name).write_bytes((tiny_run / name).read_bytes())
    for ckpt in (tiny_run / "checkpoints").iterdir():
        (run / "checkpoints" / ckpt.name).write_bytes(ckpt.read_bytes())
    (run / "samples").write_text("mine")
    code, err = _sample(run, capsys)
    assert code == 2 and err.count("\n") == 1
    assert (f"{run / 'samples'} is a file, where the run's samples folder (the default grid's) "
            f"belongs; move it away, or give --grid FILE.png or --outdir DIR") in err
    assert "x.png" not in err
    assert (run / "samples").read_text() == "mine"
