"""The temporary files a killed ``data pack OUT`` or ``gan sample --outdir DIR`` left (``kill -9``,
a power loss: no clean-up ran) are removed by the next command writing the same files, with a
note; nothing else is touched, nor a file another process is still writing."""

import fcntl
import os
import time

import numpy as np
import pytest
from PIL import Image

from robustrep.tasks.cli import main
from robustrep.tasks.common import runfiles

GAN_IMAGES = ["gan", "train", "--preset", "digits-dcgan", "--image-size", "16", "--g-width", "8",
              "--d-width", "8", "--z-dim", "16", "--batch-size", "8", "--steps", "1",
              "--eval-every", "0", "--final-eval", "false", "--device", "cpu", "--quiet"]

pytestmark = pytest.mark.usefixtures("private_cache")


def _tmp(folder, name, age=120.0):
    """A temporary file as write_atomic names one (``.NAME.XXXXXXXX.tmp``), ``age`` s old."""
    path = folder / name
    path.write_bytes(b"half a file")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _src(tmp_path):
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(src / f"{i}.png")
    return tmp_path / "src"


def test_data_pack_removes_only_its_own_abandoned_tmp_files(tmp_path, capsys):
    # was: every killed pack left a zip-sized .out.zip.XXXXXXXX.tmp beside OUT, for good
    src, out = _src(tmp_path), tmp_path / "out" / "out.zip"
    out.parent.mkdir()
    _tmp(out.parent, ".out.zip.k2j_9x0a.tmp")  # killed: removed
    _tmp(out.parent, ".out.zip.zz00aa11.tmp")  # killed: removed
    # a pack writing it now (its mtime ahead, so that a slow machine's seconds between the two
    # packs never make it look unchanged for the 2 s an unlocked temp file is given)
    kept = [_tmp(out.parent, ".out.zip.fresh001.tmp", age=-3600),
            _tmp(out.parent, ".other.zip.k2j_9x0a.tmp"),  # another OUT's
            _tmp(out.parent, ".out.zip.SHORT.tmp"),  # not mkstemp's pattern
            _tmp(out.parent, "out.zip.k2j_9x0a.tmp"),  # not hidden: not robustrep's
            _tmp(out.parent, ".out.zip.k2j_9x0a.part")]  # a download's, not a write's
    held = _tmp(out.parent, ".out.zip.held0001.tmp")  # an older writer, still alive
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert main(["data", "pack", str(src), str(out), "--resolution", "16", "--quiet"]) == 0
    finally:
        os.close(fd)
    assert (f"note: removed 2 temporary file(s) .out.zip.*.tmp that an earlier data pack to "
            f"{out} left when it was killed") in capsys.readouterr().err
    assert _names(out.parent) == sorted(["out.zip", held.name, *(p.name for p in kept)])
    out.unlink()  # data pack writes no OUT that exists
    assert main(["data", "pack", str(src), str(out), "--resolution", "16", "--quiet"]) == 0
    assert "note: removed 1 temporary file(s)" in capsys.readouterr().err
    assert not held.exists()  # its writer is gone now


def test_a_write_in_progress_holds_its_tmp_file(tmp_path):
    seen = []

    def write(handle):
        handle.write(b"x")
        seen.append(runfiles.remove_abandoned_tmp(tmp_path, lambda name: True, min_age=0))
    runfiles.write_atomic(tmp_path / "a.bin", write)
    assert seen == [0] and _names(tmp_path) == ["a.bin"]
    _tmp(tmp_path, ".a.bin.abcdefgh.tmp", age=0)
    assert runfiles.remove_abandoned_tmp(tmp_path, lambda name: True, min_age=0) == 1


def test_gan_sample_removes_its_own_abandoned_pngs(tmp_path, capsys):
    run, outdir = tmp_path / "run", tmp_path / "images"
    assert main([*GAN_IMAGES, "--out", str(run)]) == 0
    outdir.mkdir()
    _tmp(outdir, ".000001.png.ab12cd34.tmp")  # killed: removed
    kept = [_tmp(outdir, ".000009.png.ab12cd34.tmp"),  # beyond --num 3: not this command's
            _tmp(outdir, ".seed0001.png.ab12cd34.tmp"),  # --seeds' names
            _tmp(outdir, ".notes.txt.ab12cd34.tmp"),
            _tmp(outdir, ".000002.png.ab12cd34.tmp", age=0)]  # being written now
    assert main(["gan", "sample", str(run), "--num", "3", "--outdir", str(outdir)]) == 0
    assert (f"note: removed 1 temporary file(s) .*.png.*.tmp that an earlier gan sample into "
            f"{outdir} left when it was killed") in capsys.readouterr().err
    assert _names(outdir) == sorted(["000000.png", "000001.png", "000002.png",
                                     *(p.name for p in kept)])
    assert main(["gan", "sample", str(run), "--seeds", "1", "--outdir", str(outdir)]) == 0
    assert "note: removed 1 temporary" in capsys.readouterr().err
    assert not kept[1].exists() and kept[0].exists()
