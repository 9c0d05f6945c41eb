"""Files robustrep writes: atomic, and with the mode a plain ``open`` gives under the umask."""

import fcntl
import os
import stat
import time

import pytest

from robustrep.tasks.common import runfiles
from robustrep.tasks.common.errors import Stopped


@pytest.fixture
def umask():
    """Set the process umask for one test; the previous one comes back after it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_written_files_follow_the_umask_like_open(tmp_path, umask, mask):
    umask(mask)
    ours = runfiles.write_json(tmp_path / "ours.json", {"a": 1})
    with open(tmp_path / "plain.json", "w") as handle:
        handle.write("{}")
    assert _mode(ours) == _mode(tmp_path / "plain.json") == 0o666 & ~mask


def test_a_replaced_file_keeps_the_new_content_and_no_temp_file(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "metrics.csv"
    runfiles.write_csv(target, [{"x": 1}], ["x"])
    runfiles.write_csv(target, [{"x": 2}], ["x"])
    assert target.read_text().splitlines() == ["x", "2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
    assert _mode(target) == 0o644


@pytest.mark.parametrize("links", [True, False])
def test_a_new_file_only_write_keeps_a_file_made_there_meanwhile(tmp_path, monkeypatch, links):
    """replace=False (classify export's OUT): a file that appears between the caller's check
    and the rename is the user's and stays, with or without hard links on the file system."""
    target = tmp_path / "w.pth"
    if not links:
        monkeypatch.setattr(runfiles.os, "link", _no_links)

    def write(handle):
        target.write_bytes(b"the user's")  # made while ours was being written
        handle.write(b"ours")

    with pytest.raises(runfiles.WriteFailed, match="File exists"):
        runfiles.write_atomic(target, write, replace=False)
    assert target.read_bytes() == b"the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]  # no temporary file left
    runfiles.write_atomic(tmp_path / "new.pth", lambda h: h.write(b"ours"), replace=False)
    assert (tmp_path / "new.pth").read_bytes() == b"ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pth", "w.pth"]


def _no_links(src, dst):
    raise PermissionError(1, "Operation not permitted")


def test_a_cache_file_that_cannot_be_written_names_the_cache_not_an_output_folder(
        tmp_path, monkeypatch):
    """gan's cached digits network and real features are written with write_atomic: a cache
    that cannot be written said "choose another output folder" (no option chooses the cache)."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("ROBUSTREP_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(runfiles.RunFolderError) as err:
        runfiles.write_json(tmp_path / "file" / "cache" / "features.pt", {})
    assert str(err.value) == (
        f"cannot write {tmp_path}/file/cache/features.pt: Not a directory; it is robustrep's "
        f"cache ($ROBUSTREP_CACHE, else ~/.cache/robustrep): set ROBUSTREP_CACHE to a folder "
        f"you can write to")
    with pytest.raises(runfiles.RunFolderError, match="Not a directory; make the folder "
                                                      "writable or choose another output"):
        runfiles.write_json(tmp_path / "file" / "run" / "config.json", {})


@pytest.mark.parametrize("code, advice", [
    ("EROFS", "make the folder writable or choose another output folder"),
    ("EACCES", "make the folder writable or choose another output folder"),
    ("ENOSPC", "free space or choose another output folder"),
    ("EDQUOT", "free space or choose another output folder"),
    ("EFBIG", "raise the file size limit (ulimit -f, or the file system's largest file) or "
              "choose another output folder"),  # was "free space": the disk had room
    ("EIO", "check the disk or choose another output folder")])
def test_a_write_that_fails_half_way_advises_by_its_error(tmp_path, monkeypatch, code, advice):
    """A file system remounted read-only (or a permission taken away) while a run trained was
    told "free space": the advice follows the error the file's write or rename met."""
    import errno
    runfiles.write_json(tmp_path / "config.json", {"a": 1})
    number = getattr(errno, code)

    def refused(src, dst):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(runfiles.os, "replace", refused)
    with pytest.raises(runfiles.WriteFailed) as info:
        runfiles.write_json(tmp_path / "config.json", {"a": 2})
    assert str(info.value) == (f"cannot write {tmp_path / 'config.json'}: {os.strerror(number)}; "
                               f"{advice} (the previous file is unchanged)")
    monkeypatch.undo()
    assert runfiles.read_json(tmp_path / "config.json") == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


CUT = "b" * 20 + "..." + "b" * 12  # a 200-character name, shortened


@pytest.mark.parametrize("path, line", [
    ("a" * 300 + ".zip", "OUT aaaaaaaaaaaaaaaaaaaa...aaaaaaaa.zip: its name is 304 bytes long, and "
                         "a file or folder name may have at most 255 bytes (the system's "
                         "limit); give a shorter name"),
    ("d/" + "é" * 130 + "/x.zip", "OUT d/" + "é" * 20 + "..." + "é" * 12 + "/x.zip: the folder "
                                  "name " + "é" * 20 + "..." + "é" * 12 + " in it is 260 bytes "
                                  "long, and a file or folder name may have at most 255 bytes "
                                  "(the system's limit); give a shorter name"),
    # 21 names of 200: no name too long, the path is; its 755 characters shortened cut again
    ("/".join(["b" * 200] * 21), f"OUT {CUT}/{CUT}/bbbbbbbb...bbbb/{CUT}: it is 4220 bytes long, "
                                 f"and a path may have at most 4095 bytes (the system's limit); "
                                 f"give a shorter path"),
])
def test_a_path_too_long_is_shortened_and_told_the_limit_it_passes(path, line):
    """Was the whole 300-character name and "File name too long", no limit nor option."""
    assert runfiles.too_long(path, "OUT") == line


def _temp(folder, name, age):
    path = folder / name
    path.write_bytes(b"half a zip")
    os.utime(path, (time.time() - age,) * 2)
    return path


def test_a_killed_writers_temp_file_goes_at_once_where_flock_tells(tmp_path, monkeypatch):
    """A pack rerun within 60 s of its kill -9 left the killed one's temp file beside the OUT
    it wrote, for good (every later pack to OUT is refused as "OUT exists"). Where the flock is
    seen to work, an unheld file is a dead writer's once older than the two-call window in
    which a live writer's is unheld; elsewhere the 60 s rule still holds."""
    killed = _temp(tmp_path, ".o.zip.killed01.tmp", age=10)
    new = _temp(tmp_path, ".o.zip.new00001.tmp", age=0)  # mkstemp'd, not flock-ed yet
    held = _temp(tmp_path, ".o.zip.held0001.tmp", age=10)  # a live writer's
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert runfiles.remove_abandoned_tmp(tmp_path, lambda name: name == "o.zip") == 1
        assert not killed.exists() and new.exists() and held.exists()
        monkeypatch.setattr(runfiles, "_flock_seen", lambda path: False)  # NFS's per-process
        old = _temp(tmp_path, ".o.zip.killed02.tmp", age=120)
        recent = _temp(tmp_path, ".o.zip.killed03.tmp", age=10)
        assert runfiles.remove_abandoned_tmp(tmp_path, lambda name: name == "o.zip") == 1
        assert not old.exists() and recent.exists() and held.exists()
    finally:
        os.close(fd)
    assert sorted(runfiles.tmp_files(tmp_path, lambda name: name == "o.zip")) == sorted(
        [new, held, recent])


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), Stopped(15)])
def test_a_stop_inside_a_writer_that_wraps_it_is_the_stop(tmp_path, stop):
    """torch.save stopped by Ctrl-C (or SIGTERM's Stopped) raises its zip writer's RuntimeError
    with the stop as context: it was re-raised, a traceback and exit 1 instead of the stop
    line and exit 130/143."""
    target = tmp_path / "latest.pt"
    target.write_bytes(b"step 6")

    def write(handle):
        handle.write(b"step 8, half")
        try:
            raise stop
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")

    with pytest.raises(type(stop)) as raised:
        runfiles.write_atomic(target, write)
    assert raised.value is stop
    assert target.read_bytes() == b"step 6"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


@pytest.mark.parametrize("fails", ["write", "rename", "link"])
def test_a_write_whose_folder_is_moved_leaves_no_temp_file_in_the_moved_folder(
        tmp_path, monkeypatch, fails):
    """The folder renamed while a file was written (the writer failing, or the rename into
    place: os.replace for a replaced file, os.link for a new one): the failed write's temporary
    file was removed by its old path, which named nothing, and stayed in the moved folder."""
    out, moved = tmp_path / "out", tmp_path / "moved"
    out.mkdir()

    def move(*args):
        os.rename(out, moved)
        raise FileNotFoundError(2, "No such file or directory")
    if fails != "write":
        monkeypatch.setattr(runfiles.os, "replace" if fails == "rename" else "link", move)
    with pytest.raises(runfiles.WriteFailed, match="was removed or moved while it was written"):
        runfiles.write_atomic(out / "a.png", (lambda h: move()) if fails == "write" else
                              (lambda h: h.write(b"x")), replace=fails != "link")
    assert list(tmp_path.rglob("*")) == [moved]
