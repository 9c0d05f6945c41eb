"""``robustrep ood bench``: does a training regularizer change how well OOD detectors work?

Protocol (the built-in semantic-shift split, :func:`robustrep.data.builtin.digits_ood_split`):
a classifier is trained on digits 0-4 with each regularizer setting and several seeds, by the
classify program in its own process (``robustrep classify train``, so the programs stay apart);
each run is then scored by every requested pytorch-ood detector against the built-in OOD sets
(digits 5-9, Gaussian and uniform noise, photo patches, rotated and inverted digits 0-4), with the
detectors fitted on the digits 0-4 train split.

Here the call runs: its plan checked first (:mod:`robustrep.tasks.ood.bench_plan`), each
(setting, seed) trained (:mod:`robustrep.tasks.ood.bench_training`, which says what a setting
is) and scored, and the rows merged with an earlier bench's into the same ``--out``
(:mod:`robustrep.tasks.ood.bench_records`) and tabled.

The table reports mean +- sample standard deviation over seeds of AUROC and FPR@95 under both
conventions (``fpr95_id_tpr``: OOD accepted at 95% ID TPR, Hendrycks/ODIN; ``fpr95_ood_tpr``: ID
flagged at 95% OOD TPR, pytorch-ood and OpenOOD v1.5) for each
regularizer x detector x OOD set, plus each regularizer's ID test accuracy and its AUROC averaged
over OOD sets. The question it answers is the one AdaptiveMix (Liu et al., "AdaptiveMix: Improving
GAN Training via Feature Space Shrinkage", CVPR 2023, WentianZhang-ML/AdaptiveMix) raises when it
reports better OOD detection for classifiers trained with feature-space shrinkage; the findings
paragraph counts where AdaptiveMix is ahead of or behind the unregularized baseline by more than
the seed-to-seed spread, and says so either way (the tables and files:
:mod:`robustrep.tasks.ood.bench_tables`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustrep.tasks.common.folder_guard import check_folder, forget_folder, guard_folder
from robustrep.tasks.common.run_records import read_run
from robustrep.tasks.ood.bench_plan import Plan, check_configs, make_plan
from robustrep.tasks.ood.bench_records import keep_earlier, merged_order, read_earlier
from robustrep.tasks.ood.bench_tables import (aggregate, avg_over_ood, counted, format_markdown,
                                              mean_std, write_files)
from robustrep.tasks.ood.bench_training import check_settings, split_setting, train_run
from robustrep.tasks.ood.config import BENCH_OOD, DEFAULT_REGS  # declared without torch


def run_bench(*, regs: str = ",".join(DEFAULT_REGS), seeds=(0, 1, 2), ood=BENCH_OOD,
              detectors: str, params=(), feature_maps: str = "spatial", model: str | None = None,
              steps: int | None = None, preset: str = "digits-ood", train_opts=(),
              out: str | Path = "runs/ood-bench", retrain: bool = False, batch_size: int = 256,
              device: str = "auto", amp: str = "off", workers: int | None = None, seed: int = 0,
              show_progress: bool = False) -> dict[str, Any]:
    """Train every (regularizer, seed), score every detector, write the comparison table."""
    plan = make_plan(regs, seeds, ood, detectors, params, feature_maps, model, steps, preset,
                     train_opts, out, seed)
    tell = _teller(show_progress)
    if tell is not None:  # the dry runs take seconds each, the first training minutes
        tell(f"{counted(plan.total, 'run')} ({counted(len(plan.regs), 'setting')} x "
             f"{counted(len(plan.seeds), 'seed')}), each trained, then scored; checking the "
             f"settings with robustrep classify train --dry-run")
    configs = check_settings(plan.regs, list(train_opts), preset=preset, model=model,
                             steps=steps, device=device, tell=tell)
    check_configs(plan, configs, preset)
    train = dict(preset=preset, model=model, device=device, retrain=retrain,
                 quiet=not show_progress)
    score = dict(params=list(params), feature_maps=feature_maps, batch_size=batch_size,
                 device=device, amp=amp, workers=workers, seed=seed)
    (plan.out / "runs").mkdir(parents=True, exist_ok=True)
    # removed or moved while the runs train (hours), the folder was made again by the next run,
    # holding the later runs alone and a table of them
    guard_folder(plan.out, _gone_line(plan.out))
    try:
        new, used = _run_all(plan, configs, train, score, show_progress)
        info = {"n_seeds": len(plan.seeds), "seeds": list(plan.seeds),
                "model": used.get("model", model), "steps": used.get("steps", steps),
                "preset": preset, "train_opts": plan.opts, "feature_maps": feature_maps}
        check_folder(plan.out)  # output_lock would make it again
        return _write_summary(plan, new, info)
    finally:
        forget_folder(plan.out)


def _gone_line(out: Path) -> str:
    return (f"--out {out} was removed or moved while the bench ran; nothing more is written "
            f"there; run the command again (with --out the folder's new place, its finished "
            f"runs are reused)")


@contextmanager
def _out_kept(out: Path) -> Iterator[None]:
    """Around one step that writes under ``out`` (a run's training, its scoring): ``out``
    checked before and after it, and a user error the step met as ``out`` went (the training
    "failed", ood score's own folder gone, the run's config.json missing) said as --out's."""
    from robustrep.tasks.common.errors import UserError
    check_folder(out)
    try:
        yield
    except UserError:
        check_folder(out)
        raise
    check_folder(out)


def _run_all(plan: Plan, configs: list[dict[str, Any]], train: dict[str, Any],
             score: dict[str, Any], show_progress: bool
             ) -> tuple[dict[str, list], dict[str, Any]]:
    """Train and score every (setting, seed) in turn: their per-run records, ID accuracies and
    timings, and the model and steps the last run was trained with (its config's)."""
    from robustrep.tasks.common.launch import forwarding_signals
    new: dict[str, list] = {"records": [], "runs": [], "timings": [], "costs": []}
    used: dict[str, Any] = {}
    with forwarding_signals():  # a stop passes to the training run, which checkpoints
        for reg, config in zip(plan.regs, configs):
            for s in plan.seeds:
                say = _teller(show_progress, f"{len(new['timings']) + 1}/{plan.total} {reg} "
                                             f"seed {s}: ")
                used = _run_one(plan, reg, s, config, train, score, new, say)
    return new, used


def _run_one(plan: Plan, reg: str, s: int, config: dict[str, Any], train: dict[str, Any],
             score: dict[str, Any], new: dict[str, list],
             say: Callable[[str], None] | None) -> dict[str, Any]:
    """Train (or keep) and score the run of setting ``reg`` and seed ``s``; its rows go into
    ``new``. Returns the model and steps its config records."""
    from robustrep.tasks.common.settings import folder_name
    from robustrep.tasks.common.stops import stop_note
    from robustrep.tasks.ood.score import score_run
    run_dir = plan.out / "runs" / f"{folder_name(reg)}-s{s}"
    base, extra = split_setting(reg)
    with _out_kept(plan.out):  # the child would make RUN (and the folders above it) again
        seconds = train_run(base, s, run_dir, steps=config["steps"],
                            train_opts={**plan.opts, **extra}, wanted=config, say=say, **train)
    # a stop from here on, while no training runs, says what is kept (was: "stopped by
    # SIGTERM" alone)
    stop_note(f"the runs trained so far are kept in {plan.out / 'runs'} (a finished one is "
              f"reused, an unfinished one resumes); the same command again scores them and "
              f"goes on")
    if say is not None:
        say(f"scoring {counted(len(plan.specs), 'detector')} on "
            f"{counted(len(plan.ood), 'OOD set')}")
    t0 = time.perf_counter()
    with _out_kept(plan.out):
        result, _ = score_run(run_dir, detectors=",".join(x.name for x in plan.specs),
                              ood=list(plan.ood), out=run_dir / "ood", plots=False,
                              show_progress=False, **score)
        run = read_run(run_dir)
    timing, cost = _timing(run, seconds, time.perf_counter() - t0)
    new["timings"].append({"reg": reg, "seed": s, **timing})
    new["costs"].append(cost)
    cfg = run.config
    new["runs"].append({"reg": reg, "seed": s, "id_accuracy": result.id_accuracy})
    new["records"] += [{"reg": reg, "seed": s, **row} for row in result.rows()]
    if say is not None:
        say(f"train {timing['train_seconds']:.0f}s, score {timing['score_seconds']:.0f}s, "
            f"{_id_acc(result.id_accuracy)}{_eta(new['costs'], plan.total)}")
    return {"model": cfg["model"], "steps": cfg["steps"]}


def _timing(run: Any, seconds: float, score_seconds: float) -> tuple[dict[str, float], float]:
    """A run's timings for bench.json, and what running it cost, for the estimate.

    ``train_seconds`` is the run's own training (metrics.jsonl's ``train_s``, a resume's
    earlier part included; ``seconds``, this call's, for a run that records none): a kept run
    took 0 s here and a resumed one its last part alone. The cost is this call's wall time for
    a run trained whole here (its start and evaluations too), the recorded training for a kept
    or resumed one, and the scoring."""
    trained = run.last("train_s").get("train_s")
    trained = float(trained) if isinstance(trained, (int, float)) else None
    timing = {"train_seconds": round(seconds if trained is None else trained, 1),
              "score_seconds": round(score_seconds, 1)}
    return timing, max(seconds, trained or 0.0) + timing["score_seconds"]


def _write_summary(plan: Plan, new: dict[str, list], info: dict[str, Any]) -> dict[str, Any]:
    """Merge this call's rows with the earlier bench's kept ones
    (:func:`~robustrep.tasks.ood.bench_records.keep_earlier`) and write the tables, under the
    folder's lock."""
    from robustrep.tasks.common.plots import grouped_bars
    from robustrep.tasks.common.runlock import output_lock
    out = plan.out
    from robustrep.tasks.common.stops import held_stops
    # a bench writing into the folder meanwhile: its regularizers kept; a stop waits for the
    # whole set of tables
    with output_lock(out), held_stops(f"the tables in {out}"):
        earlier, notes = keep_earlier(read_earlier(out / "bench.json"), plan.asked,
                                      plan.regs, out / "bench.json")
        regs = merged_order(earlier["order"], earlier["regs"], plan.regs)
        place = {r: i for i, r in enumerate(regs)}.__getitem__  # rows in the table's order
        records, runs, timings = (sorted(earlier[k] + new[k], key=lambda row: place(row["reg"]))
                                  for k in ("records", "runs", "timings"))
        det_names = [x.name for x in plan.specs]
        agg = aggregate(records)
        avg = avg_over_ood(records, regs, det_names)
        acc = {r: mean_std([x["id_accuracy"] for x in runs if x["reg"] == r
                            and x["id_accuracy"] is not None]) for r in regs}
        markdown = format_markdown(agg, avg, acc, regs, det_names, list(plan.ood), info)
        files = write_files(out, records, agg, avg, acc, regs, det_names, list(plan.ood),
                            {**info, "asked": plan.asked, "runs": runs}, timings, markdown,
                            grouped_bars)
    return {"markdown": markdown, "files": files, "aggregate": agg, "records": records,
            "notes": notes}


def _teller(show: bool, head: str = "") -> Callable[[str], None] | None:
    """What prints a progress line ``[bench] HEAD...`` (None: nothing is shown, --quiet): on
    stderr, as stdout is the table (``ood bench > table.md``)."""
    if not show:
        return None
    return lambda text: print(f"[bench] {head}{text}", file=sys.stderr, flush=True)


def _id_acc(accuracy: float | None) -> str:
    """The run's ID test accuracy for its closing line; left out when it was not measured (an ID
    set without labels), rather than formatting None."""
    return "" if accuracy is None else f"ID acc {accuracy:.3f}, "


def _eta(costs: list[float], total: int) -> str:
    """The time left at the mean cost (seconds) of the runs so far; a kept or resumed run
    counts its recorded training, so a bench run again does not read its earlier runs as
    free (it had said 14 s left for 42 s)."""
    from robustrep.tasks.common.progress import duration
    left = total - len(costs)
    if not left:
        return "done"
    return f"about {duration(sum(costs) / len(costs) * left)} left"
