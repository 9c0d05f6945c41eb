"""Files robustrep writes: atomic, and with the mode a plain ``open`` gives under the umask."""

import os
import stat

import pytest

from robustrep.tasks.common import runfiles


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
