"""The ``robustrep`` console script: one door to the three programs.

    robustrep gan train|eval|sample|fid ...
    robustrep classify train|eval|export ...
    robustrep ood score|bench ...
    robustrep report ...
    robustrep data pack ...

Each program lives in ``robustrep.tasks.<name>.cli`` and exposes ``add_parser(subparsers, name,
summary)``; the parser it adds sets ``func`` to the callable that runs the command. Only the
program named on the command line is imported, so ``robustrep --help`` stays fast and one
program's import error cannot break another's commands.

Every command runs inside one error boundary (:func:`robustrep.tasks.common.cli.run_command`): a
user error is one line ``robustrep <program> <command>: error: ...`` and exit code 2; ``--debug``
(anywhere on the command line) shows the traceback instead. Its output never fails on a file
name that is not UTF-8 (:func:`_readable_output`).
"""

from __future__ import annotations

import argparse
import codecs
import importlib
import inspect
import os
import signal
import sys
import threading

import robustrep
from robustrep.tasks.common.cli import ArgumentParser, report, run_command
from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.plugins import load_plugins

PROGRAMS = {
    "gan": "train GANs with the regularizers, evaluate FID/KID/precision-recall, draw samples",
    "classify": "fine-tune timm classifiers with the regularizers, measure clean and robust "
                "accuracy",
    "ood": "score OOD detection with pytorch-ood detectors on trained classifiers",
    "report": "every chosen regularizer on the three tasks over seeds, on one page",
    "data": "write dataset files other projects read (a stylegan2-ada dataset zip)",
}


def build_parser(program: str | None = None, command: str | None = None
                 ) -> argparse.ArgumentParser:
    """The top-level parser; ``program``'s own sub-commands are loaded when it is given (only
    ``command``'s options when that is given too: see ``add_program``)."""
    parser = ArgumentParser(
        prog="robustrep",
        description="Regularizers for robust learned representations: AdaptiveMix, Mixup/CutMix/"
                    "SRMix, symmetric adversarial training (DAT, AS-GAN) and random-projection "
                    "discriminators, for GANs, timm classifiers and OOD detection.")
    parser.add_argument("--version", action="version", version=f"robustrep {robustrep.__version__}")
    parser.add_argument("--plugin", action="append", metavar="MODULE",
                        help="import MODULE (a module name or a .py file) before parsing, so the "
                             "regularizers it registers are accepted by --reg (and its GAN "
                             "network families by gan train --arch); may repeat and may follow "
                             "the program name")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line (may also "
                             "follow the program name)")
    sub = parser.add_subparsers(dest="program", metavar="PROGRAM")
    for name, summary in PROGRAMS.items():
        if name == program:
            add = importlib.import_module(f"robustrep.tasks.{name}.cli").add_parser
            if command is not None and "command" in inspect.signature(add).parameters:
                add(sub, name, summary, command=command)
            else:
                add(sub, name, summary)
        else:
            sub.add_parser(name, help=summary, description=summary)
    return parser


def _name_bytes(err: UnicodeError) -> tuple[str, int]:
    """An error handler for the output streams: a file name's bytes that are not UTF-8, which
    Python holds as surrogate escapes (b"caf\\xe9.png" as "caf\\udce9.png"), written as the
    byte they stand for ("caf\\xe9.png"); any other character the stream cannot encode as
    ``backslashreplace`` writes it."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    text = err.object[err.start:err.end]
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
                   else c.encode("ascii", "backslashreplace").decode("ascii")
                   for c in text), err.end


NAME_BYTES = "robustrep.name_bytes"
codecs.register_error(NAME_BYTES, _name_bytes)


def _readable_output() -> None:
    """stdout and stderr write a name's undecodable bytes as ``\\xe9``: the names in messages
    are formatted where each message is made (hundreds of places, no one function), so the
    streams are where they all pass. stderr wrote "caf\\udce9.png"; a stdout that was strict
    (``PYTHONIOENCODING=ascii`` or ``=utf-8``) raised UnicodeEncodeError, a traceback after the
    work was done. A stdout writing such bytes as they are
    (``surrogateescape``, Python's choice in a UTF-8 locale) is left so: the name's own bytes."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) in ("strict", "backslashreplace"):
            try:
                stream.reconfigure(errors=NAME_BYTES)
            except (AttributeError, ValueError, OSError):  # not a text stream of io's
                pass


def main(argv: list[str] | None = None) -> int:
    _readable_output()
    try:
        return _main(argv)
    except BrokenPipeError:  # the reader left (`robustrep ... --help | head`): stop quietly
        try:  # and keep Python's flush at exit from failing on the closed pipe again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # a captured stdout has no descriptor
            pass
        return 128 + 13  # as a process killed by SIGPIPE
    finally:
        if argv is None:  # the process's own command line (the console script): it ends now
            _ctrl_c_ends_quietly()


def _ctrl_c_ends_quietly() -> None:
    """A Ctrl-C once the command is done ends the process at once, by the signal (exit 130),
    without a word, as a SIGTERM then does (``sigterm_raises`` puts its default back). Python's
    KeyboardInterrupt, raised in the interpreter's shutdown (torch's atexit finalizers), printed
    "Exception ignored in atexit callback" and a traceback, and exited 0. Its output is flushed
    first: a process the signal ends writes no buffer."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or none: as at any exit
            pass
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted before or after the program name
    try:
        argv = load_plugins(argv)
    except UserError as err:
        if debug:
            raise
        report(None, err)
        return 2
    words = [a for a in argv if not a.startswith("-")]
    program = words[0] if words else None
    # the word after the program, when it follows it directly (programs take no options)
    after = argv[argv.index(program) + 1:argv.index(program) + 2] if program in argv else []
    command = after[0] if after and not after[0].startswith("-") else None
    parser = build_parser(program if program in PROGRAMS else None, command)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.program is None else 2
    # argparse's own prefix for the command (its errors say `robustrep gan eval: error: ...`)
    prog = " ".join(w for w in (args.program, getattr(args, "command", None)) if w)
    return run_command(prog, args.func, args, debug=debug)


if __name__ == "__main__":
    from robustrep.tasks.common.launch import stop_with_parent
    stop_with_parent()  # a run a report started ends with the report
    sys.exit(main())
