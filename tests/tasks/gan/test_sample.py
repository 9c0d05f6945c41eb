"""``robustrep gan sample`` on requests that could not finish: more samples than memory holds
(tasks/gan/sample.py, sample_room.py)."""

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.gan import sample_room
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
    monkeypatch.setattr(sample_room, "available_memory", lambda: 16_383)
    before = sorted(p.name for p in (tiny_run / "samples").iterdir())
    argv = ["gan", "sample", str(tiny_run), "--num", "8", "--device", "cpu", "--quiet", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    # was "at least 0.0 GB, and this machine has 0.0 GB available": always in GB
    assert (f"error: {why} keeps all 8 samples in memory: at least 16.4kB, and this machine "
            f"has 16.4kB available; write them one PNG at a time with --outdir DIR alone") in err
    assert not list(tmp_path.iterdir())  # no grid, no .pt, no --outdir folder
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == before
    monkeypatch.setattr(sample_room, "available_memory", lambda: 16_384)  # just enough
    assert main(argv) == 0
    monkeypatch.setattr(sample_room, "available_memory", lambda: 1)
    alone = argv[:len(argv) - len(extra)] + ["--outdir", "alone"]
    assert main(alone) == 0  # one PNG at a time: no limit
    assert len(list((tmp_path / "alone").glob("*.png"))) == 8


def test_more_pngs_than_the_disk_holds_are_refused_before_any_file(tiny_run, tmp_path,
                                                                   monkeypatch, capsys):
    """Was: `gan sample RUN --outdir X --num 100000000` built 10^8 file names (minutes, GBs of
    memory) and then wrote PNGs until the disk was full. Each 16x16 grey PNG takes at least one
    4 KiB block here: 8 of them need 32,768 bytes."""
    monkeypatch.chdir(tmp_path)
    argv = ["gan", "sample", str(tiny_run), "--num", "8", "--device", "cpu", "--quiet",
            "--outdir", "out"]
    monkeypatch.setattr(sample_room, "disk_room", lambda folder: (3 << 20, None, 4096))  # 3 MiB
    assert main([*argv[:3], "--num", "800", *argv[5:]]) == 2
    err = capsys.readouterr().err
    # was "800 PNGs need at least 0.0 GB ... its disk has 0.0 GB free": always in GB
    assert err == ("robustrep gan sample: error: --num 800 with --outdir out: 800 PNGs need at "
                   "least 3.28MB (4,096 bytes each at least, in whole blocks of 4,096 bytes), and "
                   "its disk has 3.15MB free; draw fewer, or choose a folder on a larger disk\n")
    monkeypatch.setattr(sample_room, "disk_room", lambda folder: (32_767, None, 4096))
    assert main(argv) == 2
    assert "8 PNGs need at least 32.8kB" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(sample_room, "disk_room", lambda folder: (10**12, 7, 4096))  # 7 inodes
    assert main(argv) == 2
    assert ("--num 8 with --outdir out: one PNG per sample, and its file system can hold only 7 "
            "more files (inodes)") in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(sample_room, "disk_room", lambda folder: (32_768, 8, 4096))  # just enough
    assert main(argv) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 8
    # the real disk: the most --num takes, 2**31 - 1 PNGs, are 8.8 TB and 2.1 G files at least
    monkeypatch.undo()
    assert main([*argv[:3], "--num", str(2**31 - 1), *argv[5:-1], str(tmp_path / "big")]) == 2
    assert "--num 2,147,483,647 with --outdir" in capsys.readouterr().err
    assert not (tmp_path / "big").exists()


def test_an_edited_config_json_is_named_not_the_checkpoint(tiny_run, tmp_path, error_line):
    """Was: "checkpoint .../latest.pt does not fit the run's generator" after a hand edit of
    config.json: the user was pointed at the file to keep. The checkpoint holds the options it
    was trained with; config.json differs from them."""
    import json
    import shutil
    run = tmp_path / "edited"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    config["g_width"] = 64
    (run / "config.json").write_text(json.dumps(config))
    assert main(["gan", "sample", str(run), "--num", "4", "--device", "cpu", "--quiet"]) == 2
    assert error_line() == (
        f"robustrep gan sample: error: {run / 'config.json'} differs from the options checkpoint "
        f"{run / 'checkpoints' / 'latest.pt'} was trained with (g_width 8 (config.json: 64)), "
        f"and its generator does not fit the checkpoint: restore config.json")


@pytest.mark.parametrize("extra, made", [
    (["--grid", "g.png"], "g.png"),
    (["--pt", "s.pt", "--outdir", "out"], "s.pt"),
    (["--outdir", "out"], "out/000003.png"),
])
def test_a_file_written_there_while_it_sampled_is_kept(tiny_run, tmp_path, monkeypatch, capsys,
                                                       extra, made):
    # was: checked at the start only, and the final rename replaced the other process's file
    from robustrep.tasks.gan import sample
    monkeypatch.chdir(tmp_path)
    original = sample.generate_batches

    def generate_batches(*args, **kwargs):
        (tmp_path / made).parent.mkdir(exist_ok=True)
        (tmp_path / made).write_bytes(b"another process's")
        yield from original(*args, **kwargs)
    monkeypatch.setattr(sample, "generate_batches", generate_batches)
    argv = ["gan", "sample", str(tiny_run), "--num", "4", "--device", "cpu", "--quiet", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and (
        f"cannot write {made}: File exists; another process wrote it while this one worked; "
        f"remove it or choose another path (the other process's file is kept)") in err
    assert (tmp_path / made).read_bytes() == b"another process's"
    assert main([*argv, "--force"]) == 0  # asked for
    assert (tmp_path / made).read_bytes() != b"another process's"


def test_a_run_on_a_greyscale_zip_samples_with_its_one_channel(tmp_path):
    # Was: config.json kept channels null, so gan sample/eval/fid built a 3-channel G that the
    # 1-channel checkpoint did not fit (exit 2); the zip is read in its stored mode (greyscale)
    import io
    import json
    import zipfile

    import torch
    from PIL import Image
    data = tmp_path / "grey.zip"
    with zipfile.ZipFile(data, "w") as archive:
        for i in range(8):
            buffer = io.BytesIO()
            Image.new("L", (16, 16), 30 * i).save(buffer, "PNG")
            archive.writestr(f"{i:05d}.png", buffer.getvalue())
    run = tmp_path / "run"
    train(tiny_config(steps=1, out=str(run), dataset="zip", data_root=str(data)),
          show_progress=False)
    assert json.loads((run / "config.json").read_text())["channels"] == 1
    argv = ["gan", "sample", str(run), "--num", "2", "--pt", str(tmp_path / "s.pt"),
            "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    assert saved["samples"].shape == (2, 1, 16, 16)


def test_the_grid_and_samples_file_are_said_before_they_are_written(tiny_run, tmp_path, capsys):
    # Was: 8 s of 20,000 samples on 2 CPU cores after the samples' bar, without a word
    argv = ["gan", "sample", str(tiny_run), "--num", "4", "--device", "cpu", "--grid",
            str(tmp_path / "g.png"), "--pt", str(tmp_path / "s.pt")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"writing {tmp_path / 'g.png'} (4 samples)\n" in err
    assert f"writing {tmp_path / 's.pt'} (4 samples)\n" in err
    assert main([*argv, "--force", "--quiet"]) == 0
    assert "writing" not in capsys.readouterr().err
