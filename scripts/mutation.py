"""Mutation testing of the core, the training steps and the option machinery, one module at a time.

Runs mutmut 3 (``pip install -e '.[dev]'``) on each module below with only the tests that pin it,
then prints the kill rate per module. A *mutant* is a one-token change of the source (``+`` for
``-``, ``1.0`` for ``2.0``, an argument dropped...); it is *killed* when a selected test fails.

mutmut copies the source tree into ``mutants/`` and imports it from there. The programs install
as ``robustrep.tasks`` (pyproject maps ``tasks/`` there), so each module runs in a scratch copy
with the installed layout, ``.mutation/<module>/`` (git-ignored): ``robustrep/`` with ``tasks/``
copied to ``robustrep/tasks/``, the tests, and the repository's pyproject with a ``[tool.mutmut]``
table for that module. The repository itself is never modified.

Usage::

    python scripts/mutation.py                    # every module
    python scripts/mutation.py losses mixing      # some of them
    python scripts/mutation.py --list             # the modules, their tests and mutant filters
    python scripts/mutation.py --survivors losses # also print the surviving mutants' diffs

Single-threaded by default (``--jobs 1``, ``OMP_NUM_THREADS=1``); ``--timeout`` bounds one module's
whole run (a module that runs out is reported as such with what it had finished). Results are
recorded in ``docs/mutation.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import float_in, int_at_least  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"


@dataclass(frozen=True)
class Module:
    path: str  # in the installed layout (robustrep/tasks/... for the programs)
    tests: tuple[str, ...]
    # fnmatch patterns on mutant names; () = every mutant of the file. Used to keep a large
    # program file to its step code (the rest of it is covered by other issues' tests).
    only: tuple[str, ...] = ()


GAN_LOGIC = "tests/tasks/gan/test_steps_logic.py"
CLASSIFY_LOGIC = "tests/tasks/classify/test_train_logic.py"
_TRAIN = "robustrep.tasks.classify.train."
_TASK = "robustrep.tasks.classify.task."
PLUGIN = "tests/tasks/test_plugin.py"
SHARED_OPTIONS = "tests/tasks/common/test_shared_options.py"
CONFIG_TESTS = "tests/tasks/common/test_config.py"
METRIC_ENTRY = "tests/metrics/test_entry_checks.py"
DATA_IMAGES = "tests/data/test_images.py"
DATA_FOLDERS = ("tests/data/test_folders.py", "tests/data/test_folder_splits.py",
                "tests/data/test_folder_damage.py")
DATA_ZIP = "tests/data/test_zipdata.py"
DATA_ZIPPACK = "tests/data/test_zippack.py"
DATA_PACK = "tests/tasks/data/test_pack.py"  # data pack: ZipImageFolder, zip_tree, pack_images

MODULES = {
    "losses": Module("robustrep/losses.py",
                     ("tests/test_losses.py", "tests/test_mixing.py", GAN_LOGIC)),
    "mixing": Module("robustrep/mixing.py", ("tests/test_mixing.py", CLASSIFY_LOGIC, GAN_LOGIC)),
    "adaptivemix": Module("robustrep/adaptivemix.py", ("tests/test_adaptivemix.py",)),
    "adversarial": Module("robustrep/adversarial.py",
                          ("tests/test_adversarial.py", CLASSIFY_LOGIC)),
    "free": Module("robustrep/free.py", ("tests/test_free.py", "tests/test_adversarial.py",
                                          CLASSIFY_LOGIC)),
    # DAT and AS-GAN: their own tests, and the attack tests that cover every attack
    "dat": Module("robustrep/dat.py", ("tests/test_dat.py", "tests/test_adversarial.py")),
    "asgan": Module("robustrep/asgan.py", ("tests/test_asgan.py", "tests/test_adversarial.py")),
    "gan_steps": Module("robustrep/tasks/gan/steps.py",
                        (GAN_LOGIC, "tests/tasks/gan/test_ada.py",
                         "tests/tasks/gan/test_stylegan2.py", "tests/tasks/gan/test_compile.py")),
    # StyleGAN2's lazy regularisation and G-EMA, moved out of steps.py (gan_steps' rows cover them)
    "gan_lazy_reg": Module("robustrep/tasks/gan/lazy_reg.py",
                           (GAN_LOGIC, "tests/tasks/gan/test_stylegan2.py")),
    "gan_ema": Module("robustrep/tasks/gan/ema.py",
                      (GAN_LOGIC, "tests/tasks/gan/test_stylegan2.py")),
    # the classify step code: the loss (task.py) and the attack's call (train.py)
    "classify_step": Module(
        "robustrep/tasks/classify/train.py", (CLASSIFY_LOGIC,),
        only=(f"{_TRAIN}xǁTrainerǁ_attack_loss__*", f"{_TRAIN}xǁTrainerǁ_adversarial__*")),
    "classify_task": Module(
        "robustrep/tasks/classify/task.py", (CLASSIFY_LOGIC,),
        only=(f"{_TASK}xǁClassifyTaskǁ*", f"{_TASK}x_build_task__*")),
    # the registry and the option machinery (issue 17)
    "registry": Module("robustrep/registry.py", ("tests/test_registry.py", PLUGIN)),
    "options": Module("robustrep/_options.py",
                      ("tests/test_options.py", "tests/test_registry.py", PLUGIN)),
    "regularizers": Module("robustrep/tasks/common/regularizers.py",
                           ("tests/tasks/common/test_regularizers.py", SHARED_OPTIONS, PLUGIN)),
    "regularizer_record": Module("robustrep/tasks/common/regularizer_record.py",
                                 ("tests/tasks/common/test_regularizer_record.py",)),
    "config": Module("robustrep/tasks/common/config.py", (CONFIG_TESTS,)),
    # the argparse flags of a config, moved out of config.py (config's rows cover them)
    "config_flags": Module("robustrep/tasks/common/config_flags.py", (CONFIG_TESTS,)),
    "optionspec": Module("robustrep/tasks/common/optionspec.py", (CONFIG_TESTS,)),
    "nets": Module("robustrep/nets/__init__.py", ("tests/nets/test_registry.py",)),
    # the other core techniques and the baselines DAT is compared with
    "projection": Module("robustrep/projection.py", ("tests/test_projection.py", GAN_LOGIC)),
    "ssgan": Module("robustrep/ssgan.py", ("tests/test_ssgan.py",)),
    "infomax": Module("robustrep/infomax.py", ("tests/test_infomax.py",)),
    "ada": Module("robustrep/ada.py", ("tests/test_ada.py",)),
    "diffaugment": Module("robustrep/diffaugment.py", ("tests/test_diffaugment.py",)),
    "uos": Module("robustrep/uos.py", ("tests/test_uos.py",)),
    "corruptions": Module("robustrep/corruptions.py", ("tests/test_corruptions.py",)),
    # the metrics, each with its own test file and the shared entry checks
    **{f"metrics_{name}": Module(f"robustrep/metrics/{name}.py",
                                 (f"tests/metrics/test_{name}.py", METRIC_ENTRY))
       for name in ("fid", "ood", "robust", "classification", "precision_recall",
                    "convergence", "mixtures", "extractors")},
    # the AutoAttack driver, moved out of robust.py (metrics_robust's rows cover it);
    # robust_accuracy runs it, so test_robust's comparisons with the official code reach it too
    "metrics_autoattack": Module("robustrep/metrics/autoattack.py",
                                 ("tests/metrics/test_autoattack.py",
                                  "tests/metrics/test_robust.py", METRIC_ENTRY)),
    # the image readers: decoding (bit depth, alpha, frames), folder scans (links, hidden
    # files, layouts) and zips; each reader's own tests and the ones that read through it
    "data_images": Module("robustrep/data/images.py", (DATA_IMAGES, *DATA_FOLDERS, DATA_ZIP)),
    "data_folders": Module("robustrep/data/folders.py", (*DATA_FOLDERS, DATA_IMAGES, DATA_PACK)),
    "data_folder_splits": Module("robustrep/data/folder_splits.py",
                                 (*DATA_FOLDERS, "tests/tasks/classify/test_data.py", DATA_PACK)),
    "data_zipdata": Module("robustrep/data/zipdata.py",
                           (DATA_ZIP, DATA_ZIPPACK, DATA_IMAGES, DATA_PACK)),
    # writing a dataset zip, moved out of zipdata.py (data_zipdata's rows cover it)
    "data_zippack": Module("robustrep/data/zippack.py", (DATA_ZIPPACK, DATA_PACK)),
}

KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout"}


def _status(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED:
        return KILLED[code]
    return {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}.get(code, "suspicious")


def _mutmut_table(module: Module) -> str:
    def array(items) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"
    return "\n".join([
        "[tool.mutmut]",
        'source_paths = ["robustrep"]',
        f"only_mutate = {array([module.path])}",
        f"pytest_add_cli_args_test_selection = {array(module.tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-n", "0"]',
        "use_git_change_detection = false",
        "",
    ])


def prepare(name: str, module: Module) -> Path:
    """A scratch copy in the installed layout, with this module's mutmut table."""
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "robustrep", work / "robustrep", ignore=ignore)
    shutil.copytree(ROOT / "tasks", work / "robustrep" / "tasks", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    (work / "pyproject.toml").write_text(text.rstrip() + "\n\n" + _mutmut_table(module))
    return work


def run(name: str, module: Module, jobs: int, timeout: float) -> tuple[float, str]:
    work = prepare(name, module)
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [str(mutmut), "run", "--max-children", str(jobs), *module.only]
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, timeout=timeout, capture_output=True,
                              text=True)
        outcome = "finished" if proc.returncode == 0 else f"mutmut exit {proc.returncode}"
        if proc.returncode != 0:
            (work / "mutmut.log").write_text(proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired:
        outcome = f"stopped after {timeout:.0f} s"
    return time.time() - t0, outcome


def results(name: str, module: Module) -> dict[str, str]:
    """Status of every mutant of the module that matches its filter, by mutant name."""
    from fnmatch import fnmatch
    meta = WORK / name / "mutants" / (module.path + ".meta")
    if not meta.is_file():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {k: _status(v) for k, v in codes.items()
            if not module.only or any(fnmatch(k, p) for p in module.only)}


def kill_rate(statuses: dict[str, str]) -> tuple[float, Counter]:
    counts = Counter(statuses.values())
    detected = counts["killed"] + counts["timeout"]
    judged = detected + counts["survived"] + counts["no tests"] + counts["suspicious"]
    return (detected / judged if judged else float("nan")), counts


def show(name: str, mutant: str) -> str:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run([str(mutmut), "show", mutant], cwd=WORK / name, capture_output=True,
                         text=True)
    return out.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", default=[], metavar="MODULE",
                   help=f"modules to mutate (default: all): {', '.join(MODULES)}")
    p.add_argument("--jobs", type=int_at_least(1), default=1,
                   help="mutants tested in parallel (default 1)")
    p.add_argument("--timeout", type=float_in(0, low_open=True), default=900.0,
                   help="seconds for one module's whole run (default 900)")
    p.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    p.add_argument("--report-only", action="store_true",
                   help="summarise the last run in .mutation/ without running mutmut")
    p.add_argument("--list", action="store_true", help="list the modules and their tests")
    args = p.parse_args(argv)
    unknown = [n for n in args.modules if n not in MODULES]
    if unknown:
        p.error(f"unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}")
    names = args.modules or list(MODULES)
    mutmut = Path(sys.executable).with_name("mutmut")
    if not (args.list or args.report_only or mutmut.is_file()):  # else a FileNotFoundError later
        p.error(f"mutmut is not installed beside {sys.executable}; install it with "
                f"pip install -e '.[dev]' (or pip install mutmut)")
    if args.list:
        for n in names:
            m = MODULES[n]
            print(f"{n}: {m.path}\n  tests: {' '.join(m.tests)}"
                  + (f"\n  only: {' '.join(m.only)}" if m.only else ""))
        return 0
    print(f"{'module':<14} {'file':<34} {'killed':>7} {'timeout':>7} {'survived':>8} "
          f"{'no tests':>8} {'rate':>6}  time / outcome")
    for n in names:
        module = MODULES[n]
        seconds, outcome = (0.0, "last run") if args.report_only else run(
            n, module, args.jobs, args.timeout)
        statuses = results(n, module)
        if args.report_only and not statuses:  # a fresh clone: a row of zeros would read as a run
            print(f"{n:<14} {module.path:<34} no results of an earlier run in "
                  f"{WORK.name}/{n}/ (run: python scripts/mutation.py {n})")
            continue
        rate, c = kill_rate(statuses)
        print(f"{n:<14} {module.path:<34} {c['killed']:>7} {c['timeout']:>7} {c['survived']:>8} "
              f"{c['no tests']:>8} {rate:>6.1%}  {seconds:.0f} s, {outcome}", flush=True)
        if args.survivors:
            for key, status in sorted(statuses.items()):
                if status in ("survived", "no tests", "suspicious"):
                    print(f"--- {status}: {key}\n{show(n, key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
