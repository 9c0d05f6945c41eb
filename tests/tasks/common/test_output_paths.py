"""Checks on where a command writes: an unwritable folder or file refused before any work, in one
line naming the place and why, a path too long for the system, a file in the way."""

import errno
import os
import tempfile
from pathlib import Path

import pytest

from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.output_paths import check_output_file, check_writable


def test_unwritable_output_is_refused_before_anything_is_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunFolderError, match=f"{blocker} is a file"):
        check_writable(blocker / "run" / "deeper")
    with pytest.raises(RunFolderError, match="is a folder"):
        check_output_file(tmp_path)
    target = tmp_path / "new" / "run"
    assert check_writable(target) == target and not (tmp_path / "new").exists()
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(RunFolderError, match="cannot write"):
            check_writable(ro / "run")


def _refused(err_no):
    """tempfile.TemporaryFile as a folder refusing a new file with ``err_no`` answers."""
    def make(*args, **kwargs):
        raise OSError(err_no, os.strerror(err_no))
    return make


@pytest.mark.parametrize("err_no, why", [
    (errno.EACCES, "is not writable (Permission denied)"),
    (errno.EROFS, "is on a read-only file system"),
    # /proc answers ENOENT for a file made there: "/proc: No such file or directory"
    (errno.ENOENT, "takes no new files (making one there failed: No such file or directory)"),
])
def test_a_folder_that_takes_no_file_is_one_line_naming_the_file_and_its_folder(
        err_no, why, tmp_path, monkeypatch):
    """Was "cannot write to the folder of OUT ro/x.zip ro (ro: Permission denied)"; and for
    /proc, "/proc: No such file or directory", of a folder that is there."""
    monkeypatch.chdir(tmp_path)
    Path("ro").mkdir()
    monkeypatch.setattr(tempfile, "TemporaryFile", _refused(err_no))
    lines = {}
    for name, check in (("ro/x.zip", check_output_file), ("ro/new/x.zip", check_output_file),
                        ("ro", check_writable), ("ro/new", check_writable)):
        with pytest.raises(RunFolderError) as info:
            check(name, "OUT" if check is check_output_file else "--out")
        lines[name] = str(info.value)
    assert lines == {
        "ro/x.zip": f"cannot write OUT ro/x.zip: its folder ro {why}; choose another folder",
        "ro/new/x.zip": f"cannot write OUT ro/new/x.zip: its folder ro/new would be made in ro, "
                        f"which {why}; choose another folder",
        "ro": f"cannot write to --out ro: it {why}; choose another folder",
        "ro/new": f"cannot write to --out ro/new: it would be made in ro, which {why}; choose "
                  f"another folder"}


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="Linux's /proc")
def test_proc_is_said_to_take_no_new_files():
    with pytest.raises(RunFolderError, match=r"^cannot write OUT /proc/o.zip: its folder /proc "
                                             r"takes no new files \(making one there failed: "):
        check_output_file("/proc/o.zip", "OUT")


def test_a_file_in_the_way_of_an_output_file_is_named(tmp_path):
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(RunFolderError) as info:
        check_output_file(tmp_path / "afile" / "x.zip", "OUT")
    assert str(info.value) == (f"cannot write OUT {tmp_path}/afile/x.zip: {tmp_path}/afile is a "
                               f"file, not a folder")


def test_an_output_path_too_long_names_its_option_and_the_limit(tmp_path, monkeypatch):
    """Was "File name too long: aaa..." (300 characters) from Path.exists(), no option named."""
    monkeypatch.chdir(tmp_path)
    limit = "and a file or folder name may have at most 255 bytes (the system's limit)"
    with pytest.raises(RunFolderError) as info:
        check_writable("a" * 300 + "/r", "--out")
    assert str(info.value) == (f"--out aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa/r: the folder name "
                               f"aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa in it is 300 bytes long, "
                               f"{limit}; give a shorter name")
    with pytest.raises(RunFolderError) as info:
        check_output_file("a" * 300 + ".zip", "OUT")
    assert str(info.value) == (f"OUT aaaaaaaaaaaaaaaaaaaa...aaaaaaaa.zip: its name is 304 bytes "
                               f"long, {limit}; give a shorter name")
    with pytest.raises(RunFolderError) as info:
        check_output_file("a" * 300 + "/x.zip", "--grid")
    assert str(info.value).startswith("--grid aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa/x.zip: the "
                                      "folder name ")
    assert list(tmp_path.iterdir()) == []
