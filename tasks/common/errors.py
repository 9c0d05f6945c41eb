"""The errors a user can fix, shared by every program.

Anything raised as a :class:`UserError` (or a subclass) reaches the program's error boundary,
which prints one line ``robustrep <program> <command>: error: <message>`` and exits with code
2; the message names what was wrong (option, file, folder) and what is accepted. An exception
that a plugin's own code raised is the user's code failing: one line naming the plugin
(:func:`robustrep.tasks.common.plugins.plugin_failure`), exit code 2. Every other exception is a
bug in robustrep and keeps its traceback.
"""

from __future__ import annotations

import os


class UserError(Exception):
    """A mistake in what the user asked for; the message says what is accepted."""

    #: the process exit code the error boundary (tasks.common.cli.run_command) returns
    exit_code: int = 2


class DataError(UserError):
    """Missing, unreadable or ill-shaped data."""


class CheckpointError(UserError):
    """A checkpoint or weights file that is missing, unreadable, unsafe or non-finite."""


class RunFolderError(UserError):
    """An output or run folder that cannot be used (locked, unwritable, not a run)."""


class WriteFailed(RunFolderError):
    """A file of the output could not be written (disk full, folder removed or made read-only);
    what was written before is intact, and a trainer's line names its last checkpoint."""


class FolderGone(RunFolderError):
    """The run or output folder a command was writing into was removed or moved meanwhile
    (:func:`robustrep.tasks.common.folder_guard.guard_folder`): the command stops rather than
    make it again holding only the files written afterwards."""


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN or inf; the message names the step, what went wrong and
    the last good checkpoint. Not a :class:`UserError`: programs exit with code 1."""


class ChildFailed(RuntimeError):
    """A robustrep process this one started failed on its own (a crash, a signal), not by
    refusing what it was asked: one line naming it, exit code 1, as :class:`TrainingDiverged`."""


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint; the program prints the one
    line and exits with ``128 + signum`` (the shell's convention for a signal)."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class Stopped(KeyboardInterrupt):
    """SIGTERM outside training, raised as Ctrl-C's KeyboardInterrupt is: the same clean-up runs
    (a temporary file is removed, a DataLoader's workers end) and the program prints one line
    and exits with 143 (128 + SIGTERM) instead of dying without a word (Python's default)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)


def is_allocation_failure(err: BaseException) -> bool:
    """Whether ``err`` is a failed memory allocation: Python's MemoryError, or the RuntimeError
    torch's CPU allocator raises ("... can't allocate memory ...", "Tried to allocate ...")."""
    return isinstance(err, MemoryError) or (isinstance(err, RuntimeError)
                                            and "allocate" in str(err))


def images_out_of_memory(err: BaseException, dataset: str, image_size: int) -> BaseException:
    """A DataError naming ``--image-size`` for an allocation that failed while the images were
    resized in memory (``--image-size 100000`` on digits was a RuntimeError traceback from
    torch's allocator); any other error as it was."""
    if not is_allocation_failure(err):
        return err
    return DataError(f"--image-size {image_size}: the {dataset} images resized to "
                     f"{image_size}x{image_size} do not fit in this machine's memory (the "
                     f"resized images are held in memory); give a smaller --image-size")


def program_advice(err: Exception, skip_option: bool = True) -> str:
    """A library message as a program says it: ``skip_bad=True`` is ``--skip-bad-images``, and
    a program without that option does not advise it."""
    if skip_option:
        return str(err).replace("pass skip_bad=True", "pass --skip-bad-images")
    return str(err).replace(", or pass skip_bad=True to skip unreadable files", "")


def report_skipped(dataset: object) -> None:
    """Name on stderr the unreadable files a dataset left out (``--skip-bad-images``), and the
    files an image folder did not read for their extension (a user's ``.gif`` or ``.jfif`` would
    else be missing from the data without a word)."""
    import sys
    skipped = getattr(dataset, "skipped", None) or []
    if skipped:
        print(f"warning: left out {len(skipped)} unreadable image(s): {_some(skipped)}",
              file=sys.stderr)
    unread = getattr(dataset, "unread", None) or []
    if unread:
        from collections import Counter

        from robustrep.data.images import IMG_EXTENSIONS
        kinds = Counter(os.path.splitext(p)[1].lower() or "no extension" for p in unread)
        print(f"note: {len(unread)} file(s) not read as images, by their extension "
              f"({', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))}; images are "
              f"{' '.join(IMG_EXTENSIONS)}): {_some(unread)}", file=sys.stderr)


def _some(paths: list[str]) -> str:
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return f"{', '.join(paths[:3])}{more}"
