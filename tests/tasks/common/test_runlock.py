"""One run per folder: the lock refuses a second holder and is taken over from a dead one, an
output folder's lock is waited for (said on stderr), and a .lock that is no lock file is named."""

import os
import signal

import pytest

from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.common.rundir import RunDir
from robustrep.tasks.common.runlock import RunLock


def test_second_process_is_refused_then_takes_over_a_dead_holders_lock(tmp_path, lock_holder):
    run = RunDir(tmp_path / "run")
    holder = lock_holder(run.path)
    try:
        with pytest.raises(RunFolderError, match=rf"{run.path} is in use by another run "
                                                 rf"\(pid {holder.pid} on "):
            run.create().lock()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up: the lock file stays behind
        holder.wait()
    assert (run.path / ".lock").is_file()
    lock = run.lock()  # the kernel dropped the dead process's flock
    assert f"pid {os.getpid()} " in (run.path / ".lock").read_text()
    lock.release()


def test_lock_is_exclusive_within_one_process_and_released(tmp_path):
    run = RunDir(tmp_path / "run").create()
    first = run.lock()
    with pytest.raises(RunFolderError, match="in use"):
        RunLock(run.path / ".lock").acquire()
    first.release()
    run.lock().release()


def test_an_output_folders_lock_removes_its_stale_temp_files(tmp_path):
    from robustrep.tasks.common.runlock import output_lock
    out = tmp_path / "eval"
    out.mkdir()
    stale, keep = out / ".report.json.k3x.tmp", out / "notes.tmp"  # hidden: a killed write's
    for path in (stale, keep):
        path.write_bytes(b"partial")
    with output_lock(out) as held:
        assert held.fd is not None and not stale.exists() and keep.exists()
    assert output_lock(tmp_path / "new").path == tmp_path / "new" / ".lock"  # the folder made


def test_a_wait_for_an_output_folder_is_said(tmp_path, capsys):
    # Was: silent; an eval into a folder another command held looked hung
    import threading
    from robustrep.tasks.common.runlock import check_not_training, lock_holder, output_lock
    out = tmp_path / "out"
    out.mkdir()
    assert lock_holder(out) is None  # no lock file
    held = RunLock(out / ".lock").acquire()
    assert lock_holder(out).startswith(f"pid {os.getpid()} on ")
    check_not_training(out)  # held, but no run's folder (no config.json): waited for
    threading.Timer(0.3, held.release).start()
    with output_lock(out):
        pass
    assert capsys.readouterr().err == (f"note: waiting for {out}, held by pid {os.getpid()} "
                                       f"on {os.uname().nodename}, to write there\n")
    assert lock_holder(out) is None  # released: nobody holds it
    with output_lock(out):
        pass
    assert capsys.readouterr().err == ""  # no wait, no note


NOT_A_LOCK = ("is a folder, where robustrep keeps its lock file (a file holding 'pid N on "
              "HOST'); it is not robustrep's: move it away or choose another --out")


def test_a_folder_named_lock_is_named_with_what_to_do(tmp_path, capsys):
    """Was "cannot create the lock file R/.lock: Is a directory", and nothing to do about it."""
    from robustrep.tasks.cli import main
    from robustrep.tasks.common.runopen import check_run_folder
    lock = tmp_path / "R" / ".lock"
    lock.mkdir(parents=True)
    with pytest.raises(RunFolderError) as info:
        RunLock(lock).acquire()
    assert str(info.value) == f"{lock} {NOT_A_LOCK}"
    with pytest.raises(RunFolderError) as info:  # a trainer's, before any work
        check_run_folder(tmp_path / "R", resume=False)
    assert str(info.value) == f"{lock} {NOT_A_LOCK}"
    assert main(["report", "--collect", "--out", str(tmp_path / "R")]) == 2
    assert capsys.readouterr().err == f"robustrep report: error: {lock} {NOT_A_LOCK}\n"
    assert lock.is_dir() and list(lock.parent.iterdir()) == [lock]  # left as it was
    fifo = tmp_path / "F" / ".lock"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(RunFolderError, match=r"\.lock is not a file, where robustrep keeps"):
        RunLock(fifo).acquire()
