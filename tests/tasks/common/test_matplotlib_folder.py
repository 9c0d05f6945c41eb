"""Under an unwritable HOME (a cluster, a container) matplotlib printed a warning of several
lines into the programs' output when they drew: ``tasks/common/plots.py`` gives it a folder of
this user's in the temporary folder first, unless the user set ``MPLCONFIGDIR``."""

import os
import subprocess
import sys
import tempfile

import pytest

from robustrep.tasks.common.plots import use_writable_matplotlib_folder


@pytest.fixture
def env(tmp_path, monkeypatch):
    """No MPLCONFIGDIR nor XDG folders; the temporary folder is tmp_path/tmp."""
    for name in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.setenv(name, "")  # recorded, so that what the code under test sets is undone
        monkeypatch.delenv(name)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "file").write_text("")  # a HOME no folder can be made in (root included)
    (tmp_path / "file").chmod(0o755)  # writable and "executable", as a folder is; still a file
    (tmp_path / "home").mkdir()
    return monkeypatch


def _own(tmp_path):
    return tmp_path / "tmp" / f"robustrep-matplotlib-{os.getuid()}"


@pytest.mark.parametrize("home, cache, expect", [
    ("home", None, None),  # writable: matplotlib's own folders
    ("file", None, "own"),  # HOME a file: nothing can be made under it
    ("home", "file", "own"),  # the config folder writable, the font cache's not
    ("file/x", "home", "own"),
])
def test_an_unwritable_default_folder_is_replaced_by_our_own(tmp_path, env, home, cache, expect):
    env.setenv("HOME", str(tmp_path / home))
    if cache is not None:
        env.setenv("XDG_CACHE_HOME", str(tmp_path / cache))
    use_writable_matplotlib_folder()
    assert os.environ.get("MPLCONFIGDIR") == (str(_own(tmp_path)) if expect else None)
    if expect:
        assert _own(tmp_path).is_dir() and _own(tmp_path).stat().st_mode & 0o777 == 0o700


def test_the_users_folder_and_a_folder_not_ours_are_left_alone(tmp_path, env):
    env.setenv("HOME", str(tmp_path / "file"))
    env.setenv("MPLCONFIGDIR", str(tmp_path / "file"))  # the user's choice, even a bad one
    use_writable_matplotlib_folder()
    assert os.environ["MPLCONFIGDIR"] == str(tmp_path / "file")
    env.delenv("MPLCONFIGDIR")
    _own(tmp_path).symlink_to(tmp_path / "home")  # another user's link in a shared /tmp
    use_writable_matplotlib_folder()
    assert "MPLCONFIGDIR" not in os.environ  # matplotlib's own fallback then
    assert not any((tmp_path / "home").iterdir())


DRAW = """
from robustrep.tasks.common import plots
plots.curves([{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}], ["loss"], "c.png")
"""


@pytest.mark.subprocess
def test_drawing_under_an_unwritable_home_prints_nothing(tmp_path):
    # started outside the checkout, whose robustrep/ would shadow the installed package
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    (tmp_path / "file").write_text("")
    (tmp_path / "tmp").mkdir()
    env.update(HOME=str(tmp_path / "file"), TMPDIR=str(tmp_path / "tmp"))
    for _ in range(2):  # the second run reuses the font list the first built
        done = subprocess.run([sys.executable, "-c", DRAW], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (tmp_path / "c.png").is_file()
    assert [p.name.startswith("fontlist-") for p in _own(tmp_path).iterdir()] == [True]
