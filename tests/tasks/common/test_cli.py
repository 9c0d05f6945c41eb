"""The shared error boundary and help formatter of the programs."""

import argparse
import errno
import sys

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.common.cli import ArgumentParser, HelpFormatter, run_command
from robustrep.tasks.common.errors import DataError, TrainingDiverged
from robustrep.tasks.common.path_errors import path_problem


def _raise(err):
    def func(args):
        raise err
    return func


@pytest.mark.parametrize(("err", "code", "line"), [
    (DataError("image folder x: no images\n  (found 0 files)"), 2,
     "robustrep gan: error: image folder x: no images (found 0 files)"),
    (TrainingDiverged("loss/d is nan at step 7; resume from ckpt with a lower --lr-d"), 1,
     "robustrep gan: error: loss/d is nan at step 7; resume from ckpt with a lower --lr-d"),
    (OSError(errno.ENOSPC, "No space left on device", "run/x.pt"), 2,
     "robustrep gan: error: No space left on device: run/x.pt; free some space or choose "
     "another folder (--out)"),
    (PermissionError(errno.EACCES, "Permission denied", "/ro/run"), 2,
     "robustrep gan: error: Permission denied: /ro/run; choose a folder you can write to (--out)"),
    (FileNotFoundError("cannot resume run: no checkpoint"), 2,
     "robustrep gan: error: cannot resume run: no checkpoint"),
])
def test_user_errors_are_one_line_with_their_exit_code(err, code, line, capsys):
    out = {"run/x.pt": "run", "/ro/run": "/ro/run"}.get(getattr(err, "filename", None))
    assert run_command("gan", _raise(err), argparse.Namespace(out=out)) == code
    assert capsys.readouterr().err == line + "\n"


@pytest.mark.parametrize(("out", "filename", "line"), [
    # a data folder the user cannot read: it said "choose a folder you can write to (--out)"
    ("run", "data/train", "Permission denied: data/train; check its permissions, or give "
                          "another path"),
    (None, "runs/gan/x-1/config.json", "Permission denied: runs/gan/x-1/config.json; choose a "
                                       "folder you can write to (--out)"),  # the default --out
    # robustrep's cache (HOME not writable): the folder a `mkdir -p` of it stopped at
    ("run", "{home}/.cache", "Permission denied: {home}/.cache; it is robustrep's cache "
                             "($ROBUSTREP_CACHE, else ~/.cache/robustrep): set ROBUSTREP_CACHE "
                             "to a folder you can write to"),
    (None, "{cache}/digits.pt", "Permission denied: {cache}/digits.pt; it is robustrep's cache "
                                "($ROBUSTREP_CACHE, else ~/.cache/robustrep): set "
                                "ROBUSTREP_CACHE to a folder you can write to"),
])
def test_a_path_error_advises_by_where_the_path_is(out, filename, line, tmp_path, monkeypatch,
                                                  capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ROBUSTREP_CACHE", raising=False)
    if "{cache}" in filename:
        monkeypatch.setenv("ROBUSTREP_CACHE", str(tmp_path / "cache"))
    names = {"home": tmp_path / "home", "cache": tmp_path / "cache"}
    filename, line = filename.format(**names), line.format(**names)
    err = PermissionError(errno.EACCES, "Permission denied", filename)
    assert run_command("gan", _raise(err), argparse.Namespace(out=out)) == 2
    assert capsys.readouterr().err == f"robustrep gan: error: {line}\n"


LONG = "a" * 300  # a name over the 255 bytes a file system takes
SHORT = "aaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaa"  # LONG, said


@pytest.mark.parametrize(("filename", "line"), [
    (f"{LONG}.zip", f"OUT.zip {SHORT[:-4]}.zip: its name is 304 bytes long"),
    (f"d/{LONG}/runs/gan", f"--out d/{SHORT}/runs/gan: the folder name {SHORT} in it is 300 "
                           f"bytes long"),  # under --out d/LONG, not the SRC d
    (f"/elsewhere/{LONG}", f"/elsewhere/{SHORT}: its name is 300 bytes long"),  # no option's
])
def test_a_name_too_long_names_its_option_and_the_limit(filename, line):
    """Was "File name too long: aaa...", the whole name, from ``Path.exists()`` in data pack
    before it checked OUT: neither the option nor what the system takes."""
    options = {"SRC": "d", "OUT.zip": f"{LONG}.zip", "--out": f"d/{LONG}", "--n": 3}
    err = OSError(errno.ENAMETOOLONG, "File name too long", filename)
    assert path_problem(err, None, options) == (
        f"{line}, and a file or folder name may have at most 255 bytes (the system's limit); "
        f"give a shorter name")


@pytest.mark.parametrize("err", [RuntimeError("a bug"), OSError(errno.EIO, "I/O error", "x"),
                                 KeyError("k")])
def test_other_errors_keep_their_traceback(err):
    with pytest.raises(type(err)):
        run_command("gan", _raise(err), argparse.Namespace())


def test_debug_prints_the_traceback_and_keeps_the_exit_code(capsys):
    assert run_command("gan", _raise(DataError("x")), argparse.Namespace(), debug=True) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith("robustrep gan: error: x\n")
    assert run_command("gan", _raise(DataError("x")), argparse.Namespace()) == 2
    assert capsys.readouterr().err == "robustrep gan: error: x\n"


def test_return_value_is_the_exit_code():
    assert run_command("gan", lambda a: None, argparse.Namespace()) == 0
    assert run_command("gan", lambda a: 3, argparse.Namespace()) == 3


def test_argparse_errors_are_one_line(capsys):
    parser = ArgumentParser(prog="robustrep x")
    parser.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--n", "abc"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == ("robustrep x: error: argument --n: invalid int value: 'abc' "
                   "(see 'robustrep x --help')\n")


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="argparse 3.14 reads -1,1 and -5e-1 "
                    "as negative numbers: they are values there")
@pytest.mark.parametrize("argv, line", [
    (["gan", "fid", "fm11.npy", "digits", "--range", "-1,1"],
     "robustrep gan fid: error: argument --range: expected one argument; a value starting with "
     "'-' needs '=': write --range=-1,1 (see 'robustrep gan fid --help')\n"),
    (["gan", "sample", "run", "--truncation", "-5e-1"],
     "robustrep gan sample: error: argument --truncation/--trunc: expected one argument; a "
     "value starting with '-' needs '=': write --truncation=-5e-1 (see 'robustrep gan sample "
     "--help')\n"),
    (["gan", "fid", "fm11.npy", "digits", "--range", "--quiet"],  # the value left out
     "robustrep gan fid: error: argument --range: expected one argument (see 'robustrep gan "
     "fid --help')\n"),
], ids=["range", "negative", "left-out"])
def test_a_value_taken_for_an_option_is_told_to_use_equals(argv, line, capsys):
    """argparse reads '-1,1' (no plain negative number) as an option, and its line did not say
    that --range=-1,1 is how to write it (the help and docs did); a value left out gets no
    such remedy."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and capsys.readouterr().err == line


def test_help_states_each_default_once():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--a", default=3, help="plain")
    parser.add_argument("--b", default=None, help="unset")
    parser.add_argument("--c", default=5, help="says it (default: 5)")
    parser.add_argument("--d", action="store_true", help="switch")
    text = " ".join(parser.format_help().split())
    assert "plain (default: 3)" in text and "says it (default: 5)" in text
    assert text.count("default") == 2


@pytest.mark.parametrize("rank, said", [(None, True), ("0", True), ("1", False)])
def test_a_stop_is_said_once_under_torchrun_by_process_0(rank, said, monkeypatch, capsys):
    """Was: every torchrun process said what a Ctrl-C kept, and the others, which open no run
    folder, said "it stopped before making its run folder; nothing was written"."""
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)

    def stopped(args):
        raise KeyboardInterrupt
    assert run_command("gan train", stopped, argparse.Namespace(command="train")) == 130
    line = ("robustrep gan train: interrupted (Ctrl-C); it stopped before making its run "
            "folder; nothing was written\n")
    assert capsys.readouterr().err == (line if said else "")


@pytest.mark.parametrize("encoding", ["ascii", "utf-8"])
def test_a_name_that_is_not_utf8_is_written_as_its_bytes_and_never_raises(encoding,
                                                                          monkeypatch):
    """b"caf\\xe9.png" on Linux is "caf\\udce9.png" in Python: the error line said
    "caf\\udce9.png", and a table on a strict stdout (PYTHONIOENCODING=ascii or =utf-8, which
    make these streams) was a UnicodeEncodeError traceback after the work was done."""
    import io
    import os

    from robustrep.tasks.gan import cli as gan_cli
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors=errors)
                for errors in ("strict", "backslashreplace"))
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    name = os.fsdecode(b"caf\xe9.png")

    def fid(args):
        print(f"a  image folder {name} (\u00e9t\u00e9)")
        raise DataError(f"cannot read {name}")
    monkeypatch.setattr(gan_cli, "cmd_fid", fid)
    assert main(["gan", "fid", "A", "B"]) == 2
    out.flush(), err.flush()
    summer = "\\xe9t\\xe9" if encoding == "ascii" else "\u00e9t\u00e9"
    assert out.buffer.getvalue().decode(encoding) == f"a  image folder caf\\xe9.png ({summer})\n"
    assert err.buffer.getvalue().decode(encoding) == (
        "robustrep gan fid: error: cannot read caf\\xe9.png\n")
