"""``robustrep report``: run every chosen regularizer on the three tasks and write one page.

    robustrep report [--quick] [--out DIR] [--jobs 2] [--seeds 0 1 2]
                     [--gan-regs none,adaptivemix,...] [--classify-regs none,mixup,...]
    robustrep report --collect --out DIR      # only read the runs already in DIR

A report records its options in DIR/report_options.json before its first run; a later report
into DIR (the same command again, --collect, or just --out DIR) takes those not given from there
(its size, seeds and settings), so a stopped report is finished or read as it was started. Given
options that would leave DIR's runs off the page that replaces its own (--quick over a report
of the default size; without --collect, seeds or settings without some of its own) are refused
before any run; seeds or settings added to its own continue it, and --collect with some of
them shows those runs only.

On a 2-core CPU with ``--jobs 2``, ``--quick`` took 3.0 minutes (measured, README); the default
size is estimated at about 15 minutes from the same per-run costs (not timed). The page is
``DIR/report.md`` and ``DIR/report.html`` (self-contained, with its plots).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path

from robustrep._lists import check_no_empty_item
from robustrep.registry import parse_combination
from robustrep.tasks.common.cli import add_command
from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.launch import command, option_args
from robustrep.tasks.common.options import unique
from robustrep.tasks.report.config import ReportOptions
from robustrep.tasks.report.conventions import conventions, table_notes
from robustrep.tasks.report.folder_options import (OPTIONS_FILE, Recorded, check_same_report,
                                                   covering, recorded, report_command,
                                                   write_options)
from robustrep.tasks.report.records import collect
from robustrep.tasks.report.runs import (FULL, QUICK, RUN_SECONDS, check_out, execute, plan,
                                         split_setting)


def add_parser(subparsers, name: str = "report", summary: str = "") -> argparse.ArgumentParser:
    return add_command(subparsers, name, summary, ReportOptions, cmd_report,
                       description=__doc__.split("\n\n")[0])


def _settings(args: argparse.Namespace, earlier: Recorded | None = None):
    """The report's settings and whether it is ``--quick``: the options given, and for each one
    not given the folder's report's (``earlier``: :func:`recorded`; a ``--quick`` report's
    runs read without ``--quick`` were all "trained at another size"), else its size's.
    (``--quick`` is a switch: "not quick" cannot be given, only left out.)"""
    quick = args.quick or (earlier is not None and earlier.quick)
    base = QUICK if quick else FULL
    if earlier is not None:  # its runs and seeds, at its sizes unless --quick changes them
        saved = earlier.settings
        base = saved if quick == earlier.quick else dataclasses.replace(
            base, gan_regs=saved.gan_regs, classify_regs=saved.classify_regs, seeds=saved.seeds)
    changes = {}
    if args.seeds is not None:
        changes["seeds"] = unique(args.seeds, "--seeds", "seed")
    for field, program in (("gan_regs", "gan"), ("classify_regs", "classify")):
        text = getattr(args, field)
        if text is not None:
            try:
                check_no_empty_item(f"--{program}-regs", text, "settings separated by commas "
                                    "(a setting's methods joined by '+')")
            except ValueError as err:
                raise UserError(str(err)) from None
            changes[field] = unique([_setting(s, program) for s in text.split(",")
                                      if s.strip()], f"--{program}-regs", "setting")
    return dataclasses.replace(base, **changes), quick


def _setting(text: str, program: str) -> str:
    """One report row: ``none`` or a combination joined by ``+`` (checked by the registry),
    then its own options after '@' (``mixup,cutmix@mixup_alpha=0.8``; checked by
    :func:`_check_options`)."""
    reg, options = split_setting(text.strip(), f"--{program}-regs", program)
    try:
        names = parse_combination(reg, program, joiner="+")
    except ValueError as err:
        raise UserError(f"--{program}-regs: {err}") from None
    # the values as the runs' flags give them, in one order, so one spelling names one row
    return (",".join(names) or "none") + "".join(f"@{key}={_flag_value(value)}"
                                                 for key, value in sorted(options.items()))


def _flag_value(value) -> str:
    """A setting's value as its run's flag gives it (``option_args``); None, which gives no
    flag (the program's default), as ``None``."""
    given = option_args({"value": value})
    return given[1] if given else "None"


def _check_options(settings, say=None) -> None:
    """Each setting with options of its own, checked by its program's ``train --dry-run`` (in
    a process of its own, a few seconds each, each told to ``say``) on every preset it trains,
    before any run: a mistyped option had failed its runs one by one."""
    from robustrep.tasks.common.settings import dry_run_config
    presets = {"gan": ["digits-dcgan"] + ["grid-mlp"] * bool(settings.grid_steps),
               "classify": ["digits-ood"]}
    for program, regs in (("gan", settings.gan_regs), ("classify", settings.classify_regs)):
        for reg in regs:
            base, options = split_setting(reg)
            for preset in presets[program] if options else ():
                if preset == "grid-mlp" and base in ("cutmix", "srmix"):
                    continue  # (no grid run: 2-D points have no image regions)
                if say is not None:
                    say(f"report: checking --{program}-regs setting {reg!r} with robustrep "
                        f"{program} train --preset {preset} --dry-run")
                dry_run_config(program, {"preset": preset, "reg": base, **options},
                               f"--{program}-regs setting {reg!r}")


def cmd_report(args: argparse.Namespace) -> int:
    settings, quick = _settings(args)  # the options' own errors before the folder's
    if args.collect and args.out is None:  # the default is a new folder: no runs to read there
        raise UserError("--collect reads the runs of an earlier report: give its folder as "
                        "--out DIR")
    # absolute: every run's command starts a child process in another folder (runs.plan)
    out = Path(args.out or f"runs/report-{time.strftime('%Y%m%d-%H%M%S')}").expanduser()
    out = out.absolute()
    # the folder the run would refuse is refused by --dry-run too (which makes nothing)
    check_out(out, args.collect, make=not args.dry_run)
    earlier = recorded(out)
    if earlier is not None:  # the options it was started with stand for those not given
        settings, quick = _continued(args, settings, quick, earlier, out)
    if not args.collect:
        _check_options(settings, None if args.quiet else _say(None))
    runs = plan(settings, out)
    if args.dry_run:  # quoted as a shell reads them: --out may hold a space
        for run in runs:
            for argv in run.commands:
                print(shlex.join(["robustrep", *command(argv)]))
        return 0
    from robustrep.tasks.common.folder_guard import forget_folder, guard_folder
    from robustrep.tasks.common.runlock import LOCK_FILE, RunLock
    if args.collect and earlier is None and not os.path.lexists(out / LOCK_FILE) and not any(
            run.done for run in runs):
        # refused before the lock would make its file (RunLock leaves it, as every program's):
        # a user's folder was left holding a .lock; one already there is the lock's to judge
        raise UserError(_no_record(out))
    with RunLock(out / LOCK_FILE).acquire():  # a second report into this folder: refused
        # removed or moved meanwhile, it would be made again holding the page alone
        guard_folder(out, f"--out {out} was removed or moved while the report ran; nothing "
                          f"more is written there; run the command again")
        try:
            if not args.collect:  # before the first run: a stop leaves them recorded
                write_options(out, settings, quick)
            return _report(args, settings, quick, out, runs, earlier)
        finally:
            forget_folder(out)


def _no_record(out: Path) -> str:
    """--collect of a folder holding no finished run of the report and no record of its options
    (a user's folder, or a report of an earlier version stopped before its page)."""
    return (f"{out} holds no finished run of this report and no record of the options it was "
            f"started with ({OPTIONS_FILE}: a report of an earlier version was stopped before "
            f"its page?); give --collect those options (--quick, --seeds, --gan-regs, "
            f"--classify-regs)")


def _continued(args: argparse.Namespace, settings, quick: bool, earlier: Recorded,
               out: Path):
    """The settings of a report into ``out``, which holds one started with ``earlier``: its
    options for those not given (a note says so when they change the report's), refused when
    the options given would leave its runs off the page (:func:`check_same_report`)."""
    mine = (settings, quick)
    settings, quick = _settings(args, earlier)
    check_same_report(settings, quick, earlier, out, args.collect)
    if not args.collect and (settings, quick) != mine:
        print(f"note: --out {out} holds a report started as `"
              f"{report_command(earlier.settings, earlier.quick, out)}` ({earlier.path.name}): "
              f"continued with its options for those not given; give another --out for a "
              f"different report", file=sys.stderr)
    return settings, quick


def _report(args: argparse.Namespace, settings, quick: bool, out: Path, runs,
            earlier: Recorded | None) -> int:
    """Train what is not done (unless --collect), read every run, write the page."""
    started = time.time()
    failures: list[str] = []
    todo = set() if args.collect else {(r.task, r.reg, r.seed) for r in runs if not r.done}
    if not args.collect:
        failures = _train(runs, len(todo), args.jobs, args.quiet)
    # the command that trains a run left unfinished: the folder's report with this page's runs
    train = f"to train it: {report_command(covering(settings, earlier), quick, out)}"
    records, unfinished = collect(runs, train)
    # a run that failed here but is finished on disk (another process held it) is on the page
    read = tuple(f"{r['task']}/{r['reg']}/seed{r['seed']}:" for r in records)
    failures = [line for line in failures if not line.startswith(read)]
    if not records:  # why: the runs that failed here first (an unfinished one is one of them)
        for line in failures[1:]:
            print(f"warning: {line}", file=sys.stderr)
        if args.collect and earlier is None:  # the options are the user's guess, or defaults
            raise UserError(_no_record(out))
        raise UserError(failures[0] if failures else unfinished[0] if unfinished else
                        f"no finished runs under {out}; run without --collect to train them")
    # every run left out, but those that failed here (their failure says why): a finished run
    # read back damaged (its final evaluation lost) was dropped without a word, exit 0
    failed = tuple(line.split(": ", 1)[0] + ":" for line in failures)
    failures += [line for line in unfinished if not line.startswith(failed)]
    seconds = None if args.collect else time.time() - started
    ran = sum((r["task"], r["reg"], r["seed"]) in todo for r in records)
    info = {"summary": _summary(settings, records, seconds, quick, ran),
            "conventions": conventions(records), "notes": table_notes(records),
            "settings": dataclasses.asdict(settings),
            "quick": quick, "failures": failures}  # the page's (the folder's: OPTIONS_FILE)
    from robustrep.tasks.report import page  # numpy and the metrics: not for --help
    from robustrep.tasks.common.stops import held_stops
    with held_stops(f"the page in {out}"):  # report.json, report.md, .html and plots: one set
        files = page.write(out, records, info)
    for line in failures:
        print(f"warning: {line}", file=sys.stderr)
    print(f"report: {files['md']} and {files['html']} ({len(records)} "
          f"run{'' if len(records) == 1 else 's'})")
    return 1 if failures else 0


def _train(runs, todo: int, jobs: int, quiet: bool = False) -> list[str]:
    """Run the unfinished runs under a bar of runs, with an estimate at once and a line as
    each starts (:func:`execute`; none of them with ``quiet``); return the failures."""
    from robustrep.tasks.common.progress import duration, progress
    at_once = max(1, min(jobs, todo, os.cpu_count() or 1))
    if todo and not quiet:
        _say(None)(f"report: {todo} run{'' if todo == 1 else 's'} to do, {at_once} at a time: "
                   f"about {duration(-(-todo // at_once) * RUN_SECONDS)} ({RUN_SECONDS} s a run "
                   f"on 2 CPU cores, measured for --quick; the bar's ETA from the first run done "
                   f"on)")
    bar = progress(total=todo, desc="report runs", unit="run", enabled=not quiet)
    try:
        return execute(runs, jobs, bar, None if quiet else _say(bar))
    finally:
        bar.close()


def _say(bar):
    """A line on stderr, above ``bar`` when it is a terminal's (tqdm's ``write``)."""
    write = getattr(bar, "write", None)
    if write is not None:
        return lambda line: write(line, file=sys.stderr)
    return lambda line: print(line, file=sys.stderr, flush=True)


def _took(seconds: float | None, ran: int, runs: int) -> str:
    """What this invocation did for the page: a report run again over finished runs reads them,
    and its minutes are not theirs (the page said "0.0 min wall-clock" of 12 runs)."""
    if seconds is None:
        return "read from existing run folders (--collect)"
    took = f"{seconds / 60:.1f} min wall-clock for this invocation"
    if ran == runs:
        return took
    if ran == 0:
        return f"{took}, which ran none of them (each had finished before it: read)"
    return f"{took}, which ran {ran} of the {runs} (the others had finished before it: read)"


def _summary(settings, records, seconds: float | None, quick: bool, ran: int = 0) -> str:
    """The page's first line: the runs and seeds it covers, their sizes, and :func:`_took`."""
    took = _took(seconds, ran, len(records))
    read = sorted({r["seed"] for r in records})  # a seed with no finished run is not on the page
    seeds = ", ".join(map(str, read)) + (f" (of {', '.join(map(str, settings.seeds))} planned)"
                                         if read != sorted(settings.seeds) else "")
    return (f"{'Quick' if quick else 'Default'} report: {len(records)} "
            f"run{'' if len(records) == 1 else 's'}, seed{'' if len(read) == 1 else 's'} "
            f"{seeds}; GAN {settings.gan_steps} steps on digits"
            f"{f' and {settings.grid_steps} on the grid' if settings.grid_steps else ''}; "
            f"classifier {settings.classify_model}, {settings.classify_steps} steps; "
            f"{took}.")
