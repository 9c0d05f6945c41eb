"""What the three programs' command lines share: the parser helpers and the one error boundary.

:func:`run_command` runs a command and turns every error a user can fix into exactly one line
on stderr, ``robustrep <program> <command>: error: <message>`` (argparse's prefix for the
command), and exit code 2 (``UserError.exit_code``);
a diverged run (:class:`TrainingDiverged`) is one line too, with exit code 1, and so is an
exception raised by a plugin's own code (exit code 2, the plugin named: see
:func:`~robustrep.tasks.common.plugins.plugin_failure`). ``--debug`` prints the traceback before
the line. Anything else is a bug in robustrep and keeps its traceback. This is the convention
of argparse's own ``parser.error`` (``prog: error: message``, exit 2), which timm's and
StudioGAN's scripts inherit.

What a stopped command's line says, and SIGTERM's handling, are :mod:`.stops`'; the line of an
OSError about a user's path is :mod:`.path_errors`'.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

from robustrep.errors import UnreadableImageError
from robustrep.tasks.common.errors import (ChildFailed, Interrupted, TrainingDiverged, UserError,
                                           WriteFailed)
from robustrep.tasks.common.flag_hints import did_you_mean, peer_hint, peer_hits
from robustrep.tasks.common.path_errors import path_problem
from robustrep.tasks.common.plugins import plugin_failure
from robustrep.tasks.common.stops import (checkpoint_kept, finished_run, is_first_process,
                                          resumed_run, say_if_finished, sigterm_raises,
                                          stop_note, stopped_line)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a one-line error: ``prog: error: message (see 'prog --help')``, exit 2.

    argparse's own error prints the whole usage block first (40 lines for ``gan train``), which
    buries the one line that matters. Sub-parsers inherit this class.

    An option no parser knows is the error of the innermost (sub-)parser that met it, so the line
    names the command (``robustrep gan fid: error: unrecognized arguments: ...``): argparse's
    sub-parsers hand unknown options up to the top parser, whose error would name only
    ``robustrep``. Hence ``parse_known_args`` here leaves no unknown arguments.

    An unknown flag gets a hint: ours for a peer's flag (timm train.py's, stylegan2-ada's:
    :mod:`~robustrep.tasks.common.flag_hints`), else the closest of this parser's flags
    (``--weight_decay``: ``--weight-decay``), as a config file's unknown key gets one. The
    peers' names are looked for before argparse parses, as its prefix matching made ``--mixup
    0.8`` "ambiguous" (``--mixup-per-sample``, ``--mixup-partner``), pointing away from ``--reg
    mixup --mix-alpha 0.8``.

    Flags are never abbreviated (``allow_abbrev=False``): argparse read ``gan train --gp 5`` as
    ``--gp-weight 5``, and a flag added later turns such a word ambiguous, which breaks the
    scripts that relied on it; an abbreviation gets the did-you-mean hint instead.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # sub-parsers are built by this class too
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        words = list(sys.argv[1:] if args is None else args)
        self._words = words  # for the remedy :meth:`error` may add
        hits = peer_hits(words, self._option_string_actions)
        if hits and not {"-h", "--help"} & set(words):  # asked for help: the help
            self.error(f"unrecognized arguments: {peer_hint(hits)}")
        namespace, extras = super().parse_known_args(words, namespace)
        extras = self._late_positionals(namespace, extras)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}"
                       f"{did_you_mean(extras, self._option_string_actions)}")
        return namespace, extras

    def _late_positionals(self, namespace, extras: list[str]) -> list[str]:
        """Words after options fill the optional positionals left empty, in order: argparse
        matches ``gan fid A --range 0,255 B``'s A and B together at A (B empty) and leaves B
        over (what ``parse_intermixed_args`` does, which sub-parsers cannot use)."""
        empty = [a for a in self._actions if not a.option_strings and a.nargs == "?"
                 and getattr(namespace, a.dest, None) == a.default]
        words = [w for w in extras if not w.startswith("-")]
        if not empty or len(words) != len(extras) or len(words) > len(empty):
            return extras
        for action, word in zip(empty, words):
            setattr(namespace, action.dest, action.type(word) if action.type else word)
        return []

    def error(self, message: str):
        message += self._choices_hint(message) or self._dash_value_hint(message)
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")

    def _choices_hint(self, message: str) -> str:
        """The values an option of choices takes, when its value was left out: argparse said
        only "argument --amp: expected one argument", as the usage line that listed them
        (``{off,bf16,fp16}``) is not printed. The choices are argparse's, or those of a metavar
        ``{a,b}`` (an options dataclass's field checks its choices in its type). It stands for
        the '=' remedy (:meth:`_dash_value_hint`): no choice starts with '-'."""
        match = re.fullmatch(r"argument (\S+): expected (?:one|at least one) argument", message)
        action = match and self._option_string_actions.get(match.group(1).split("/")[0])
        metavar = getattr(action, "metavar", None)
        braced = isinstance(metavar, str) and re.fullmatch(r"\{(.+)\}", metavar)
        choices = getattr(action, "choices", None) or (braced and braced[1].split(","))
        return f", one of {', '.join(map(str, choices))}" if choices else ""  # as a wrong one

    def _dash_value_hint(self, message: str) -> str:
        """The remedy when an option's value was taken for an option: argparse reads a word
        starting with '-' that is no plain negative number (``-1,1``, ``-1e-3``) as an option,
        so ``--range -1,1`` left ``--range`` "expected one argument", which does not say that
        ``--range=-1,1`` is the way to write it. Not when the next word is an option of this
        parser (the value was left out)."""
        match = re.fullmatch(r"argument (\S+): expected one argument", message)
        if match is None:
            return ""
        flags = match.group(1).split("/")
        words = getattr(self, "_words", [])
        for flag, value in zip(words, words[1:]):
            if flag in flags and value.startswith("-") and value != "--" and \
                    value.split("=", 1)[0] not in self._option_string_actions:
                return f"; a value starting with '-' needs '=': write {flag}={value}"
        return ""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: X)`` to an option's help once: not when the help already states its
    default, and not for switches and unset (``None``) defaults, which say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # `is`: a default of 0 (== False) is stated
        if "default" in text.lower() or action.default == [] or any(
                action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        return super()._get_help_string(action)


def add_program(subparsers, name: str, summary: str, *commands: Callable[[Any], None],
                command: str | None = None) -> argparse.ArgumentParser:
    """The parser of one program (``robustrep NAME``); each of ``commands`` (named
    ``_add_<command>``) adds a sub-command to the sub-parsers it is given. ``robustrep NAME``
    alone prints the help and exits 2.

    ``command`` given (the one on the command line): only its options are built; the others are
    listed with the first line of their builder's docstring, so building one command never
    imports what another needs (``classify eval``'s corruption list imports torch).
    """
    parser = subparsers.add_parser(name, help=summary, description=summary)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [add.__name__.removeprefix("_add_") for add in commands]
    for add, cmd in zip(commands, names):
        if command is None or command == cmd or command not in names:
            add(sub)
        else:
            sub.add_parser(cmd, help=(add.__doc__ or "").strip().splitlines()[0] or None)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    return parser


def add_command(sub, name: str, summary: str, options: type, func: Callable[[Any], Any],
                description: str | None = None, **kwargs: Any) -> argparse.ArgumentParser:
    """Sub-command ``name`` whose flags are the fields of the options dataclass ``options``
    (:func:`~robustrep.tasks.common.config_flags.add_config_args`, with their real defaults), run
    by ``func(args)``; ``kwargs`` go to ``add_parser`` (e.g. ``epilog``)."""
    from robustrep.tasks.common.config_flags import add_config_args
    text = (description or summary).replace("``", "")  # docstrings' reST quotes: not in --help
    p = sub.add_parser(name, help=summary, description=text, formatter_class=HelpFormatter,
                       **kwargs)
    add_config_args(p, options, real_defaults=True)
    p.set_defaults(func=func)
    _OPTION_NAMES[func] = {a.dest: max(a.option_strings, key=len) if a.option_strings else
                           a.metavar if isinstance(a.metavar, str) else a.dest.upper()
                           for a in p._actions}
    return p


# a command's function -> its options' names by dest (``--out``, ``OUT.zip``): a path error
# met before the command checked the path (``Path.exists()`` on a name too long) names it
_OPTION_NAMES: dict[Callable[..., Any], dict[str, str]] = {}


def path_options(func: Callable[..., Any], args: argparse.Namespace) -> dict[str, Any]:
    """The options of the command ``func`` (built by :func:`add_command`) with their values in
    ``args``, by the name the user gave them by: ``{"--out": "runs/x", "SRC": "data"}``."""
    return {name: getattr(args, dest, None)
            for dest, name in _OPTION_NAMES.get(func, {}).items()}


def one_line(message: Any) -> str:
    return " ".join(str(message).split())


def report(program: str | None, message: Any) -> None:
    prefix = f"robustrep {program}" if program else "robustrep"
    print(f"{prefix}: error: {one_line(message)}", file=sys.stderr)


def check_device_options(args: argparse.Namespace) -> None:
    """``--device`` and ``--amp`` as given, checked before the command imports torch (seconds
    under load) only to refuse them: a wrong device name, fp16 with ``--device cpu``. Trainers
    check their resolved config again (a preset or ``--config`` file may set either)."""
    device, amp = getattr(args, "device", None), getattr(args, "amp", None)
    if device is not None or amp is not None:  # a trainer's are None unless given
        from robustrep.tasks.common.options import check_device
        check_device("auto" if device is None else device, amp)


def dry_run_or_prepare(cfg: Any, args: argparse.Namespace,
                       dry_run_checks: Callable[[], None] | None = None) -> bool:
    """What both trainers do with a resolved config before any work: its device and precision
    checked (as the preset or ``--config`` file set them); with ``--dry-run`` the program's
    ``dry_run_checks`` (after the device's, which need no torch), the config printed, and True
    (the command is done); else the device resolved (no GPU, fp16 on the CPU: said before any
    work) and ``--download`` fetching the dataset."""
    import json

    from robustrep.tasks.common.config import to_dict
    from robustrep.tasks.common.options import check_device
    check_device(cfg.device, cfg.amp)
    if args.download:  # what it needs, before a dry run says the options are fine
        from robustrep.tasks.common.download import check_download
        check_download(cfg.dataset, cfg.data_root)
    if args.dry_run:
        if dry_run_checks is not None:
            dry_run_checks()
        print(json.dumps(to_dict(cfg), indent=2))
        return True
    from robustrep.tasks.common.download import download_for
    from robustrep.tasks.common.runtime import resolve_device
    resolve_device(cfg.device, cfg.amp)
    if args.download:
        download_for(cfg.dataset, cfg.data_root)
    return False


def run_command(program: str | None, func: Callable[[argparse.Namespace], Any],
                args: argparse.Namespace, debug: bool = False) -> int:
    """Run ``func(args)``; a user error becomes one line on stderr and its exit code.

    ``program``: the command as argparse's prog names it after ``robustrep`` (``gan eval``,
    ``report``), so the line's prefix is the one the parser's own errors have.

    ``debug`` prints the traceback before that line; the exit code stays the error's. Ctrl-C
    and SIGTERM (outside a trainer's own handling, :mod:`training`) end with one line saying
    what was kept and how to go on (:func:`~.stops.stopped_line`) and 128 + the signal
    number. A SIGTERM after the trainer's run had finished (:func:`~.stops.finished_run`)
    stops nothing: the command ends as it would have, with a note naming the run; Ctrl-C then
    still ends it with 130, its line saying that the run finished
    (:func:`~.stops.say_if_finished`). An OSError about a path the user chose is one line too
    (:func:`~.path_errors.path_problem`).
    """
    from robustrep.tasks.common.run_records import finished_runs, opened_runs
    opened, marks = len(opened_runs()), len(finished_runs())
    stop_note(None)
    try:
        with sigterm_raises(lambda: finished_run(opened, marks)) as late:
            check_device_options(args)
            code = int(func(args) or 0)
            if late:
                print(f"note: SIGTERM came after {late[-1]} had finished (finished.json "
                      f"written); the run ends as finished", file=sys.stderr)
            return code
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM as Stopped
        signum = getattr(err, "signum", signal.SIGINT)
        _traceback(debug)
        say_if_finished(opened, marks)
        if is_first_process():  # the others opened no run folder: their line would be false
            print(f"robustrep {program}: {stopped_line(signum, args, opened)}", file=sys.stderr)
        return 128 + signum
    except Interrupted as err:  # stopped on a signal after a checkpoint (training.py)
        if is_first_process():  # under torchrun: once, by the process that saved
            _traceback(debug)
            print(f"robustrep {program}: {one_line(err)}", file=sys.stderr)
        return err.exit_code
    except UserError as err:
        _traceback(debug)
        if isinstance(err, WriteFailed) and getattr(args, "command", None) == "train":
            # a resume that failed before it opened its run left that run as it was
            err = WriteFailed(f"{err}; {checkpoint_kept(opened, resumed_run(args))}")
        report(program, err)
        return int(getattr(err, "exit_code", 2))
    except UnreadableImageError as err:  # met by a batch: databases are read as they go
        _traceback(debug)
        report(program, _kept_after(_original_message(err), args, opened))
        return 2
    except (TrainingDiverged, ChildFailed) as err:  # valid options, a failure after: exit 1
        _traceback(debug)
        report(program, err)
        return 1
    except OSError as err:
        out = getattr(args, "out", None)
        line = plugin_failure(err) or path_problem(
            err, out if isinstance(out, (str, os.PathLike)) else None, path_options(func, args))
        if line is None:  # not the user's path: a bug, with its traceback
            raise
        _traceback(debug)
        report(program, _kept_after(line, args, opened))
        return 2
    except Exception as err:  # noqa: BLE001 (a plugin's own failure is one line; others re-raise)
        line = plugin_failure(err)
        if line is None:  # robustrep's bug: its traceback
            raise
        _traceback(debug)
        report(program, line)
        return 2
    finally:
        stop_note(None)


def _kept_after(error: Any, args: argparse.Namespace, opened: int) -> Any:
    """A file error met by a training run it had opened (its data removed or damaged mid-run)
    with what the run kept and how to go on, as a stop's line says (it named the missing image
    alone); unchanged for any other command, or before a run folder was opened. Not for a
    UserError: a resume's refusal of its checkpoint is one too, and says what to do itself."""
    from robustrep.tasks.common.run_records import opened_runs
    runs = opened_runs()[opened:]
    if getattr(args, "command", None) != "train" or not runs or not runs[-1].is_dir():
        return error
    return f"{one_line(error)}; {checkpoint_kept(opened)}"


def _traceback(debug: bool) -> None:
    if debug:
        import traceback
        traceback.print_exc()


def _original_message(err: Exception) -> str:
    """The message of an error raised in a DataLoader worker: torch re-raises it as "Caught X in
    DataLoader worker process N." and the worker's traceback, whose last line is the original
    ``module.X: message``."""
    text = str(err).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text


def regularizer_groups(prefixes: dict[str, tuple[str, ...]], program: str) -> dict[str, str]:
    """``--help`` section titles for regularizer options, read from the registry: option-name
    prefix -> "--reg NAMES options (place; papers)"."""
    from robustrep.registry import regularizer_info
    titles = {}
    for prefix, names in prefixes.items():
        infos = [regularizer_info(n) for n in names]
        place = infos[0].acts.get(program, "")
        titles[prefix] = (f"--reg {'/'.join(names)} options ({place}; "
                          f"{'; '.join(i.paper for i in infos)})")
    return titles

