"""Options of ``robustrep report``, declared as the other commands' are (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from robustrep.tasks.common.config import option
from robustrep.tasks.common.options import shared


@dataclass(kw_only=True)
class ReportOptions:
    """The options of ``robustrep report``."""

    quick: bool = option(False, "the baseline and AdaptiveMix on each task, 3 seeds, short runs "
                                "(2.9 minutes measured on 2 CPU cores with --jobs 2)")
    out: str | None = shared("out", default_help="runs/report-<time>", metavar="DIR")
    jobs: int = option(2, "runs at a time", min=1)
    seeds: list[int] | None = shared("seeds", None, default_help="0 1 2")
    gan_regs: str | None = option(None, "GAN settings, each a --reg value joined by '+' for "
                                        "combinations, then its own gan train options after "
                                        "'@' (mixup+cutmix@mixup_alpha=0.8)", metavar="R,...")
    classify_regs: str | None = option(None, "classifier settings, as --gan-regs",
                                       metavar="R,...")
    collect: bool = option(False, "train nothing: read the runs already under --out; the "
                                  "options not given are its report's (report_options.json), "
                                  "seeds or settings given are honoured (those runs only)")
    dry_run: bool = option(False, "print the planned commands and exit")
    quiet: bool = shared("quiet")  # the bar, the estimate and each run's starting line
