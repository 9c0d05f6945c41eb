"""Stop signals held over a set of files: the set is written whole, then the command stops."""

import os
import signal

import pytest

from robustrep.tasks.common.errors import Stopped
from robustrep.tasks.common.stops import current_stop_note, held_stops, stop_note


@pytest.fixture(autouse=True)
def no_note():
    stop_note(None)
    yield
    stop_note(None)


def test_a_sigterm_in_the_block_stops_after_its_last_file(capsys):
    written = []
    with pytest.raises(Stopped) as stopped:
        with held_stops("the results in out"):
            written.append("results.json")
            os.kill(os.getpid(), signal.SIGTERM)
            written.append("results.csv")  # was: the stop came between the two
    assert stopped.value.signum == signal.SIGTERM and written == ["results.json", "results.csv"]
    assert current_stop_note() == ("it stopped once it had written the results in out, each "
                                   "file whole")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # pytest's own, put back
    # said at once: the wait (seconds for pictures) invited a second Ctrl-C
    assert capsys.readouterr().err == ("stopping once it has written the results in out "
                                       "(Ctrl-C again stops now)\n")


def test_a_second_ctrl_c_stops_at_once_and_says_the_set_may_be_mixed():
    written = []
    with pytest.raises(KeyboardInterrupt):
        with held_stops("the report in out"):
            os.kill(os.getpid(), signal.SIGINT)
            written.append("report.json")
            os.kill(os.getpid(), signal.SIGINT)
            written.append("reliability.png")
    assert written == ["report.json"]
    assert current_stop_note().startswith("a second Ctrl-C stopped it while it wrote the "
                                          "report in out: each file is whole, but some may be "
                                          "missing")


def test_a_block_without_a_signal_ends_as_it_would():
    with held_stops("the page in out"):
        pass
    assert current_stop_note() is None


def test_a_file_that_cannot_be_written_says_the_set_is_out_of_step():
    # was "(nothing was written)" of the one file, beside the set's earlier files
    from robustrep.tasks.common.errors import WriteFailed
    with pytest.raises(WriteFailed) as info:
        with held_stops("the results in out"):
            raise WriteFailed("cannot write out/results.csv: No space left on device; free "
                              "space (nothing was written)")
    assert str(info.value).endswith("(nothing was written); the results in out may be out of "
                                    "step with each other until the same command writes them "
                                    "all again")


@pytest.mark.parametrize("block", ["held_stops", "sigterm_raises"])
def test_a_handler_set_outside_python_is_put_back_as_the_default(block, monkeypatch):
    """signal.signal returns None for a handler set outside Python (a C extension's, an
    embedding program's): held_stops put None back, whose TypeError ended the block in place
    of its own result. Both blocks put back the default then (restore_signal)."""
    from robustrep.tasks.common.stops import sigterm_raises
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    real, set_ = signal.signal, []

    def outside(sig, handler):  # every handler before ours was set outside Python
        set_.append((sig, handler))
        real(sig, handler)
    monkeypatch.setattr(signal, "signal", outside)
    try:
        with held_stops("the results") if block == "held_stops" else sigterm_raises():
            pass
    finally:
        for sig, handler in kept.items():
            real(sig, handler)
    ours, back = set_[:len(set_) // 2], set_[len(set_) // 2:]
    assert [sig for sig, _ in back] == [sig for sig, _ in ours]
    assert all(handler is signal.SIG_DFL for _, handler in back)


def test_a_trainers_first_signal_is_said_at_once_and_the_second_ctrl_c_interrupts(
        capsys, monkeypatch):
    # Was: a Ctrl-C during a training evaluation got no word until it ended (minutes for a
    # 50k-sample FID), which invited the second Ctrl-C that stops without a checkpoint
    from robustrep.tasks.common.stops import SaidStop
    from robustrep.tasks.common.training import TrainerBase
    stop = TrainerBase(None, None).stop
    assert isinstance(stop, SaidStop)
    stop(signal.SIGTERM)
    assert capsys.readouterr().err == ("stopping after this step, with a checkpoint (Ctrl-C "
                                       "again stops now, without one)\n")
    stop(signal.SIGTERM)  # said once
    assert capsys.readouterr().err == "" and stop.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
        stop(signal.SIGINT)
    monkeypatch.setenv("RANK", "1")  # torchrun's other processes say nothing
    other = TrainerBase(None, None).stop
    other(signal.SIGINT)
    assert capsys.readouterr().err == "" and other.signum == signal.SIGINT
