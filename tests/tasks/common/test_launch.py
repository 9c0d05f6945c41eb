"""Runs started by run_robustrep (report, ood bench) end with the process that started them."""

import os
import signal
import subprocess
import sys
import time

import pytest

from robustrep.tasks.common.launch import PARENT_ENV

CHILD = ("from robustrep.tasks.common.launch import stop_with_parent; stop_with_parent(); "
         "import time; time.sleep(60)")
# the "report": starts the run as run_robustrep does (its pid in the environment), then waits
PARENT = ("import os, subprocess, sys; "
          f"env = {{**os.environ, {PARENT_ENV!r}: str(os.getpid())}}; "
          "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], env=env, "
          "start_new_session=True); print(child.pid, flush=True); child.wait()")


@pytest.mark.subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG)")
def test_a_run_gets_sigterm_when_the_report_that_started_it_is_killed(tmp_path):
    # Was: kill -9 of a report left its training runs going as orphans, holding their folders.
    # Started outside the checkout, as run_robustrep starts runs: its robustrep/ would shadow
    # the installed package that holds robustrep.tasks
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE,
                              text=True, cwd=tmp_path)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child has set its death signal
    os.kill(child, 0)  # alive
    parent.kill()
    parent.wait()
    assert _ends_within(child, seconds=5.0), \
        "the run went on after the process that started it was killed"


def _ends_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` ends (gone, or a zombie not yet reaped) within ``seconds``; it is
    killed if not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True  # ended and reaped (by init)
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return False


def test_a_stop_names_only_a_run_that_started(monkeypatch):
    # Was: checked before a run started, the line named it "among" the runs that stopped with
    # their checkpoints, though it never started
    from robustrep.tasks.common import launch
    from robustrep.tasks.common.errors import Interrupted
    monkeypatch.setattr(launch, "_STOP", [signal.SIGTERM])
    with pytest.raises(Interrupted) as before:
        launch.check_stop()
    assert str(before.value) == ("stopped by SIGTERM; the runs started stopped with their "
                                 "checkpoints; the same command again continues them")
    with pytest.raises(Interrupted) as after:
        launch.check_stop(["gan", "train", "--out", "r"])
    assert "checkpoints (robustrep gan train among them); the same" in str(after.value)
    assert after.value.exit_code == 143
    with pytest.raises(Interrupted) as scored:  # an evaluation has no checkpoint to name
        launch.check_stop(["classify", "eval", "RUN"])
    assert "among them" not in str(scored.value)
