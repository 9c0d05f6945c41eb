"""Bench aggregation: mean +- std over seeds, the table layout, and an honest findings line."""

import json
import math

import pytest

from robustrep.tasks.ood.bench_tables import aggregate, avg_over_ood, findings, format_markdown


def _records():
    rows = []
    for reg, base in (("none", 0.80), ("adaptivemix", 0.90)):
        for seed, jitter in ((0, -0.01), (1, 0.0), (2, 0.01)):
            for ood in ("digits59", "gaussian"):
                rows.append({"reg": reg, "seed": seed, "detector": "KNN", "ood": ood,
                             "AUROC": base + jitter, "AUPR-IN": 0.5, "AUPR-OUT": 0.5,
                             "fpr95_id_tpr": 1 - base, "fpr95_ood_tpr": 0.9 - base, "error": ""})
    rows.append({"reg": "none", "seed": 0, "detector": "SHE", "ood": "digits59",
                 "AUROC": math.nan, "AUPR-IN": math.nan, "AUPR-OUT": math.nan,
                 "fpr95_id_tpr": math.nan, "fpr95_ood_tpr": math.nan, "error": "ValueError: x"})
    return rows


def test_aggregate_mean_and_sample_std():
    agg = aggregate(_records())
    mean, std = agg[("adaptivemix", "KNN", "gaussian")]["AUROC"]
    assert mean == pytest.approx(0.90) and std == pytest.approx(0.01)
    assert agg[("none", "SHE", "digits59")]["n"] == 0
    assert agg[("none", "SHE", "digits59")]["errors"] == ["ValueError: x"]


def test_table_and_findings():
    records = _records()
    agg = aggregate(records)
    regs, dets, oods = ["none", "adaptivemix"], ["KNN"], ["digits59", "gaussian"]
    avg = avg_over_ood(records, regs, dets)
    assert avg[("none", "KNN")][0] == pytest.approx(0.80)
    text = findings(agg, regs, dets, oods)
    assert "+10.00 points" in text and "ahead by more than the combined seed std in 2" in text
    md = format_markdown(agg, avg, {"none": (0.99, 0.0), "adaptivemix": (0.98, 0.01)}, regs,
                         dets + ["SHE"], oods, {"n_seeds": 3, "seeds": [0, 1, 2],
                                                "model": "m", "steps": 5})
    assert "| digits59 | KNN | 80.0 ± 1.0 | 90.0 ± 1.0 |" in md
    # both FPR conventions get their own table, named by the rate held at 95%
    id_tpr, ood_tpr = md.index("## fpr95_id_tpr"), md.index("## fpr95_ood_tpr")
    assert "| digits59 | KNN | 20.0 ± 0.0 | 10.0 ± 0.0 |" in md[id_tpr:ood_tpr]
    assert "| digits59 | KNN | 10.0 ± 0.0 | 0.0 ± 0.0 |" in md[ood_tpr:]
    assert "| digits59 | SHE | failed |" in md and "## Failures" in md
    assert "## AUROC (%, mean ± sample std over seeds; " in md  # ddof 1, named
    # a cell some seeds failed in says over how many seeds it is
    partial = [r for r in records if not (r["reg"] == "none" and r["seed"] == 2
                                          and r["ood"] == "gaussian")]
    md = format_markdown(aggregate(partial), avg, {"none": (0.99, 0.0)}, ["none"], ["KNN"],
                         oods, {"n_seeds": 3, "seeds": [0, 1, 2], "model": "m", "steps": 5})
    assert "| gaussian | KNN | 79.5 ± 0.7 (2 of 3 seeds) |" in md
    assert "| digits59 | KNN | 80.0 ± 1.0 |" in md


def _dry_run_in_process(monkeypatch):
    """`classify train --dry-run` in this process (the bench runs it as a child): the same
    parser and config checks, its exit code and output returned as check_robustrep does."""
    import contextlib
    import io

    from robustrep.tasks.cli import main
    from robustrep.tasks.common import launch

    def in_process(argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code
        return code, out.getvalue(), err.getvalue()

    monkeypatch.setattr(launch, "check_robustrep", in_process)


def test_a_crash_of_the_classify_check_is_exit_1_not_a_mistake(tmp_path, monkeypatch, capsys):
    # Was: "--regs setting 'none': robustrep classify train does not accept it: ImportError:
    # ..." and exit 2, for a child that crashed while the tree was being edited
    from robustrep.tasks.cli import main
    from robustrep.tasks.common import launch
    monkeypatch.setattr(launch, "check_robustrep", lambda argv: (
        1, "", "Traceback (most recent call last):\nImportError: cannot import name 'x'\n"))
    out = tmp_path / "bench"
    assert main(["ood", "bench", "--out", str(out), "--detectors", "MaxSoftmax", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "robustrep classify train --dry-run failed (exit 1): " \
        "ImportError: cannot import name 'x'" in err and "does not accept" not in err
    assert not out.exists()


def test_a_train_opt_classify_refuses_is_named_before_anything_is_written(tmp_path, monkeypatch,
                                                                         capsys):
    from robustrep.tasks.cli import main
    _dry_run_in_process(monkeypatch)
    out = tmp_path / "bench"
    assert main(["ood", "bench", "--train-opt", "stepz=3", "--out", str(out), "--detectors",
                 "MaxSoftmax", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "--train-opt stepz=3: robustrep classify train does not accept it" in err
    assert "--stepz" in err and "robustrep classify train --help" in err
    assert not out.exists()  # no OUT/runs/train.log
    # a setting's own options are checked the same way, and named as that setting
    assert main(["ood", "bench", "--regs", "none@stepz=3", "--out", str(out), "--detectors",
                 "MaxSoftmax", "--quiet"]) == 2
    assert "--regs setting 'none@stepz=3'" in capsys.readouterr().err
    # accepted options whose classes make digits59 in-distribution are refused too
    assert main(["ood", "bench", "--regs", "none", "--train-opt", "classes=0,1,2,3,4,5",
                 "--out", str(out), "--detectors", "MaxSoftmax", "--quiet"]) == 2
    assert "--ood digits59 holds digits 5," in capsys.readouterr().err
    # a set given twice counted its cells twice in the findings
    assert main(["ood", "bench", "--ood", "digits59", "digits59", "--out", str(out),
                 "--detectors", "MaxSoftmax", "--quiet"]) == 2
    assert "--ood: OOD set digits59 is given twice" in capsys.readouterr().err
    # a built-in name with a suffix was refused only when the first trained run was scored
    assert main(["ood", "bench", "--ood", "gaussian:x", "--out", str(out), "--detectors",
                 "MaxSoftmax", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood bench: error: bench scores built-in OOD sets only; unknown: gaussian:x "
        "(valid: digits59, gaussian, uniform, photos, rotated, inverted)\n")
    # was dropped: `--regs mixup,,none` compared mixup and none without a word
    for regs, want in (
            ("mixup,,none", "--regs must be settings separated by commas (a setting's methods "
                            "joined by '+'); got 'mixup,,none' (an empty item)"),
            ("mixup++pgd,none", "--regs 'mixup++pgd': regularizers must be names joined by '+', "
                                "or none; got 'mixup++pgd' (an empty item)")):
        # (with --train-opt stepz=3, refused later, so that a missed check fails at once)
        assert main(["ood", "bench", "--regs", regs, "--train-opt", "stepz=3", "--out",
                     str(out), "--detectors", "MaxSoftmax", "--quiet"]) == 2
        assert capsys.readouterr().err == f"robustrep ood bench: error: {want}\n"
    assert not out.exists()


@pytest.mark.subprocess
def test_the_train_opt_check_runs_classify_in_its_own_process(tmp_path, capsys):
    from robustrep.tasks.cli import main
    assert main(["ood", "bench", "--regs", "none", "--train-opt", "stepz=3", "--out",
                 str(tmp_path / "b"), "--detectors", "MaxSoftmax", "--quiet"]) == 2
    assert "unrecognized arguments: --stepz 3;" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_one_seed_has_no_spread_and_no_verdict(tmp_path):
    """One seed per setting: cells say "(1 run)", not "± 0.0", and the findings call no
    difference ahead or behind (with a zero spread every difference would be)."""
    from robustrep.tasks.ood.bench_tables import write_files
    records = [r for r in _records() if r["seed"] == 0]
    agg = aggregate(records)
    regs, dets, oods = ["none", "adaptivemix"], ["KNN"], ["digits59", "gaussian"]
    mean, std = agg[("adaptivemix", "KNN", "gaussian")]["AUROC"]
    assert mean == pytest.approx(0.89) and math.isnan(std)
    text = findings(agg, regs, dets, oods)
    assert "ahead by more than the combined seed std in 0, behind by more than it in 0, " \
           "within it in 0; not judged in 2 (one seed: no spread)" in text
    avg = avg_over_ood(records, regs, dets)
    md = format_markdown(agg, avg, {"none": (0.99, math.nan), "adaptivemix": (0.98, math.nan)},
                         regs, dets, oods, {"n_seeds": 1, "seeds": [0], "model": "m", "steps": 5})
    assert md.startswith("# OOD bench: digits 0-4 in distribution, 1 seed (0)")
    assert "| digits59 | KNN | 79.0 (1 run) | 89.0 (1 run) |" in md and "± 0.0" not in md
    assert "none 99.0 (1 run)" in md
    files = write_files(tmp_path, records, agg, avg, {"none": (0.99, math.nan),
                                                      "adaptivemix": (0.98, math.nan)},
                        regs, dets, oods, {"n_seeds": 1, "seeds": [0]}, [], md, _no_bars)
    data = json.loads(files["json"].read_text())
    assert data["id_accuracy"]["none"] == {"mean": 0.99, "std": None}


def _no_bars(panels, path, **kw):
    return path


def _undrawn(monkeypatch):
    """The bench's three bar charts are written empty (by the same atomic writer), not drawn
    (0.07 s each), for tests that read no picture;
    test_a_rerun_with_fewer_regs_keeps_the_other_regs_results draws them in its merging call."""
    from robustrep.tasks.common import plots
    from robustrep.tasks.common.runfiles import write_atomic
    monkeypatch.setattr(plots, "grouped_bars",
                        lambda panels, path, **kw: write_atomic(path, lambda handle: None))


def test_the_progress_line_estimates_the_time_left_from_the_runs_so_far():
    from robustrep.tasks.ood.bench import _eta
    assert _eta([120.0, 60.0], 5) == "about 4m30s left"  # 90 s a run, 3 runs to go
    assert _eta([120.0, 60.0], 2) == "done"


def _bench_in_process(monkeypatch):
    """The bench's children, `classify train` and its dry run, in this process; returns the
    training command lines as they come."""
    from robustrep.tasks.cli import main
    from robustrep.tasks.common import launch, run_records
    _dry_run_in_process(monkeypatch)
    calls = []

    def in_process(argv, log, threads=None):
        calls.append(argv)
        # the run folders a child opens and finishes are its process's, not the bench's
        opened, finished = list(run_records._OPENED), list(run_records._FINISHED)
        try:
            return main(argv)
        finally:
            run_records._OPENED[:], run_records._FINISHED[:] = opened, finished

    monkeypatch.setattr(launch, "run_robustrep", in_process)
    return calls


def _bench_argv(out, *extra):
    # the runs at 16x16, not the preset's 32x32: a quarter of the training and scoring, and
    # nothing these tests check depends on the size
    return ["ood", "bench", "--seeds", "0", "--model", "test_resnet", "--detectors",
            "MaxSoftmax", "--ood", "gaussian", "--out", str(out), "--quiet", "--device", "cpu",
            "--train-opt", "image_size=16", *extra]


def test_a_length_in_epochs_trains_those_epochs(tmp_path, monkeypatch, capsys):
    # Was: the bench passed its resolved --steps beside the epochs, and classify train refused
    # "--steps and --epochs are two ways to give one length" once the bench had started
    from robustrep.tasks.cli import main
    from robustrep.tasks.common.run_records import read_run
    calls = _bench_in_process(monkeypatch)
    _undrawn(monkeypatch)
    assert main(["classify", "train", "--preset", "digits-ood", "--model", "test_resnet",
                 "--batch-size", "128", "--epochs", "1", "--dry-run"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]  # classify train's own conversion
    assert steps > 1
    out = tmp_path / "bench"
    argv = _bench_argv(out, "--regs", "none", "--train-opt", "batch_size=128", "--train-opt",
                       "epochs=1")
    assert main(argv) == 0
    assert "--epochs" in calls[0] and "--steps" not in calls[0]
    run = read_run(out / "runs" / "none-s0")
    assert run.finished and (run.config["epochs"], run.config["steps"]) == (1, steps)
    assert json.loads((out / "bench.json").read_text())["steps"] == steps
    # the finished run is the one asked for (its steps and epochs): reused, not trained again
    assert main(argv) == 0 and len(calls) == 1
    capsys.readouterr()
    # both lengths: one line, before anything is trained
    assert main(argv + ["--steps", "3"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood bench: error: --steps 3 and --train-opt epochs=1 are two ways to give the "
        "runs' length: give --steps (optimizer steps) or epochs=N (passes over the training "
        "set, converted to steps as classify train does), not both\n")
    assert main(_bench_argv(out, "--regs", "none@epochs=2", "--steps", "3")) == 2
    assert "--steps 3 and --regs setting 'none@epochs=2' are two ways" in capsys.readouterr().err
    assert len(calls) == 1


def test_a_stop_while_scoring_says_what_is_kept_and_the_rerun_counts_its_training(
        tmp_path, monkeypatch, capsys):
    # Was: "robustrep ood bench: stopped by SIGTERM" alone, and the rerun, which reuses the
    # trained run, recorded its train_seconds as 0 and estimated the runs left from that
    import os
    import signal

    from robustrep.tasks.cli import main
    from robustrep.tasks.common.run_records import read_run
    from robustrep.tasks.ood import score
    calls = _bench_in_process(monkeypatch)
    _undrawn(monkeypatch)
    scored = score.score_run
    stopped = []

    def stopping(*args, **kwargs):
        if not stopped:
            stopped.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return scored(*args, **kwargs)

    monkeypatch.setattr(score, "score_run", stopping)
    out = tmp_path / "bench"
    argv = _bench_argv(out, "--regs", "none", "--steps", "4")
    capsys.readouterr()
    assert main(argv) == 143
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"robustrep ood bench: stopped by SIGTERM; the runs trained so far are kept in "
        f"{out / 'runs'} (a finished one is reused, an unfinished one resumes); the same "
        f"command again scores them and goes on")
    assert main(argv) == 0 and len(calls) == 1  # the run was kept, not trained again
    trained = read_run(out / "runs" / "none-s0").last("train_s")["train_s"]
    timing = json.loads((out / "bench.json").read_text())["timings"][0]
    assert trained > 0 and timing["train_seconds"] == round(trained, 1)


def test_a_rerun_with_fewer_regs_keeps_the_other_regs_results(tmp_path, monkeypatch, capsys):
    # Was: `--regs none` into a bench folder of none and mixup wrote tables of none alone: the
    # mixup rows were gone from bench.md/.json/.csv
    from robustrep.tasks.cli import main
    from robustrep.tasks.common import plots
    calls = _bench_in_process(monkeypatch)
    drawn = plots.grouped_bars
    _undrawn(monkeypatch)
    out = tmp_path / "bench"
    assert main(_bench_argv(out, "--regs", "none,mixup", "--steps", "2")) == 0
    first = json.loads((out / "bench.json").read_text())
    capsys.readouterr()
    monkeypatch.setattr(plots, "grouped_bars", drawn)  # the merged tables' charts, drawn
    assert main(_bench_argv(out, "--regs", "none", "--steps", "2")) == 0
    assert (out / "bench_auroc.png").stat().st_size > 0
    _undrawn(monkeypatch)
    assert len(calls) == 2  # none's finished run scored again, nothing trained
    assert (f"note: kept the earlier {out / 'bench.json'}'s results of mixup (regularizers "
            f"this call did not run); the tables show both calls") in capsys.readouterr().err
    second = json.loads((out / "bench.json").read_text())
    assert second["regs"] == ["none", "mixup"]
    for key in ("summary", "id_accuracy", "auroc_avg_over_ood", "records", "runs"):
        assert second[key] == first[key]  # the same runs scored the same way
    mixup = [r for r in first["summary"] if r["reg"] == "mixup"]
    assert mixup and all(r in second["summary"] for r in mixup)
    md = (out / "bench.md").read_text()
    assert "| detector | none | mixup |" in md and "mixup" in (out / "bench_runs.csv").read_text()
    # other settings: the earlier rows cannot share the table; replaced, and said
    assert main(_bench_argv(out, "--regs", "none", "--steps", "2", "--seed", "5")) == 0
    assert (f"note: replaced the earlier {out / 'bench.json'}'s results of mixup: they were "
            f"measured under other settings (seed 0 -> 5); give --out a new folder to keep "
            f"both") in capsys.readouterr().err
    assert json.loads((out / "bench.json").read_text())["regs"] == ["none"]
    # a file of that name that is no bench's is named before anything is trained
    (out / "bench.json").write_text("{}")
    assert main(_bench_argv(out, "--regs", "pgd", "--steps", "2")) == 2
    assert "bench.json is not a bench.json that robustrep ood bench can read" in \
        capsys.readouterr().err
    assert len(calls) == 2


def test_bench_json_keeps_an_error_saying_nan(tmp_path):
    # Was: the JSON text's "NaN" became "null" everywhere, inside error messages too
    from robustrep.tasks.ood.bench_tables import write_files
    records = _records()
    records[-1]["error"] = "ValueError: 3 scores are NaN or infinite"
    agg = aggregate(records)
    regs, dets, oods = ["none", "adaptivemix"], ["KNN", "SHE"], ["digits59", "gaussian"]
    avg = avg_over_ood(records, regs, dets)
    acc = {"none": (0.99, math.nan), "adaptivemix": (0.98, 0.01)}
    files = write_files(tmp_path, records, agg, avg, acc, regs, dets, oods,
                        {"n_seeds": 3, "seeds": [0, 1, 2]}, [], "md", _no_bars)
    data = json.loads(files["json"].read_text())
    assert data["records"][-1]["error"] == "ValueError: 3 scores are NaN or infinite"
    assert data["records"][-1]["AUROC"] is None and data["id_accuracy"]["none"]["std"] is None
    assert "ValueError: 3 scores are NaN or infinite" in {r["errors"] for r in data["summary"]}


def test_bench_says_once_which_detectors_amp_leaves_in_float32(tmp_path, monkeypatch, capsys):
    # the note ood score gives on each run is said by the bench once, at its start
    from robustrep.tasks.cli import main
    _dry_run_in_process(monkeypatch)
    assert main(["ood", "bench", "--amp", "bf16", "--device", "cpu", "--detectors",
                 "GradNorm,ODIN", "--train-opt", "stepz=3", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 2  # refused by the dry run: nothing trained
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("note: --amp bf16: GradNorm runs in float32: its per-sample weight "
                             "gradients") and len(err) == 2


@pytest.mark.parametrize("name", ["bench.md", "bench_runs.csv", "bench_auroc.png"])
def test_a_users_file_in_out_is_refused_before_anything_is_trained(tmp_path, monkeypatch,
                                                                   capsys, name):
    # Was: only a bench.json there was checked; the user's bench.md was overwritten in silence
    from robustrep.tasks.cli import main
    calls = _bench_in_process(monkeypatch)
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text("mine")
    assert main(_bench_argv(out, "--regs", "none", "--steps", "2")) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood bench: error: --out {out} holds {name}, which no ood bench wrote there (it "
        f"has no bench.json); remove it or choose another folder (ood bench replaces only its "
        f"own files)\n")
    assert (out / name).read_text() == "mine" and not (out / "runs").exists() and calls == []


def test_the_progress_lines_go_to_stderr_not_into_the_table(tmp_path, monkeypatch, capsys):
    # Was: `ood bench > table.md` put "[bench] 1/18 ..." lines in the file, above the table
    from robustrep.tasks.cli import main
    _bench_in_process(monkeypatch)
    _undrawn(monkeypatch)
    argv = [a for a in _bench_argv(tmp_path / "b", "--regs", "none", "--steps", "2")
            if a != "--quiet"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "[bench]" not in out and "# OOD bench: digits 0-4 in distribution" in out
    assert "[bench] 1/1 none seed 0: train " in err and ", done" in err
    # each setting's dry run said as it is accepted (six were a minute of silence)
    assert "\n[bench] setting 1/1 (none) accepted\n" in err
    # what it does as it begins each part: the training, then the scoring
    lines = [ln for ln in err.splitlines() if ln.startswith("[bench] 1/1 none seed 0: ")]
    assert [ln.split(": ", 1)[1].split(" (")[0] for ln in lines[:2]] == [
        "training 2 steps", "scoring 1 detector on 1 OOD set"]
    assert lines[2].startswith("[bench] 1/1 none seed 0: train ")


def test_a_bench_stopped_between_its_writes_has_written_its_record_first(tmp_path, monkeypatch):
    # bench.md written before bench.json: a stop between the two left a folder the next bench
    # refused as holding the user's bench.md
    from robustrep.tasks.common.output_paths import check_replaceable
    from robustrep.tasks.ood import bench_tables
    written = []

    def stop_after_one(path, text):
        if written:
            raise KeyboardInterrupt
        written.append(path.name)
        path.write_text(text)

    from robustrep.tasks.common import runfiles
    monkeypatch.setattr(bench_tables, "write_text_atomic", stop_after_one)
    monkeypatch.setattr(runfiles, "write_text_atomic", stop_after_one)  # bench.json: write_json
    records = _records()
    agg, regs = aggregate(records), ["none", "adaptivemix"]
    with pytest.raises(KeyboardInterrupt):
        bench_tables.write_files(tmp_path, records, agg, avg_over_ood(records, regs, ["KNN"]),
                                 {"none": (0.99, 0.0), "adaptivemix": (0.98, 0.0)}, regs,
                                 ["KNN"], ["digits59", "gaussian"],
                                 {"n_seeds": 3, "seeds": [0, 1, 2]}, [], "md", _no_bars)
    assert written == ["bench.json"]
    check_replaceable(tmp_path / "bench.json", ("regs", "summary"), "ood bench", "--out",
                      companions=bench_tables.BENCH_FILES)  # the next bench goes on


def test_a_k_above_the_fit_set_is_refused_before_anything_is_trained(tmp_path, monkeypatch,
                                                                    capsys):
    # Was: refused by pytorch-ood once the first run was trained and its features extracted
    from robustrep.data.builtin import digits
    from robustrep.tasks.cli import main
    calls = _bench_in_process(monkeypatch)
    size = len(digits(32, 1, [0, 1, 2, 3, 4], train=True))  # digits-ood's fit set: digits 0-4
    out = tmp_path / "b"
    argv = ["ood", "bench", "--regs", "none", "--seeds", "0", "--model", "test_resnet",
            "--detectors", "KNN", "--param", f"KNN.k={size + 1}", "--ood", "gaussian", "--out",
            str(out), "--quiet", "--device", "cpu"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood bench: error: --param KNN.k={size + 1}: KNN takes its k nearest neighbours "
        f"among the images it is fitted on, {size} for the 'none' runs (the train split of "
        f"digits 0, 1, 2, 3, 4), so KNN.k must be at most {size}; lower it\n")
    assert calls == [] and not (out / "runs").exists()


def test_the_bench_says_what_it_does_from_its_start(tmp_path, monkeypatch, capsys):
    # Was: silent through the settings' dry runs and the first training run
    from robustrep.tasks.cli import main
    _dry_run_in_process(monkeypatch)
    argv = ["ood", "bench", "--regs", "none,mixup", "--seeds", "0", "1", "--train-opt", "stepz=3",
            "--detectors", "MaxSoftmax", "--out", str(tmp_path / "b")]
    assert main(argv) == 2
    first, refusal = capsys.readouterr().err.splitlines()
    assert first == ("[bench] 4 runs (2 settings x 2 seeds), each trained, then scored; checking "
                     "the settings with robustrep classify train --dry-run")
    assert refusal.startswith("robustrep ood bench: error: --train-opt stepz=3: ")
    assert main(argv + ["--quiet"]) == 2
    assert capsys.readouterr().err.startswith("robustrep ood bench: error: --train-opt stepz=3: ")


def test_a_run_without_an_id_accuracy_ends_its_line_without_one(tmp_path, monkeypatch, capsys):
    # Was: the line each run ends with formatted id_accuracy with :.3f, so a run whose ID set
    # has no labels (id_accuracy None) crashed the bench once it was trained and scored
    from robustrep.tasks.cli import main
    from robustrep.tasks.ood import score
    _bench_in_process(monkeypatch)
    _undrawn(monkeypatch)
    real = score.score_run

    def unlabelled(*args, **kwargs):
        result, extra = real(*args, **kwargs)
        result.id_accuracy = None
        return result, extra

    monkeypatch.setattr(score, "score_run", unlabelled)
    argv = [a for a in _bench_argv(tmp_path / "b", "--regs", "none", "--steps", "2")
            if a != "--quiet"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    end = [ln for ln in err.splitlines() if ln.startswith("[bench] 1/1 none seed 0: train ")]
    assert len(end) == 1 and "acc" not in end[0] and end[0].endswith(", done")
    assert "ID test accuracy (mean ± sample std over seeds, %): none n/a" in out
    # a number is still said
    monkeypatch.setattr(score, "score_run", real)
    assert main(argv + ["--retrain"]) == 0
    end = capsys.readouterr().err.splitlines()
    assert any(ln.startswith("[bench] 1/1 none seed 0: train ") and ", ID acc 0." in ln
               for ln in end)


def _gone_line(out):
    return (f"robustrep ood bench: error: --out {out} was removed or moved while the bench ran; "
            f"nothing more is written there; run the command again (with --out the folder's "
            f"new place, its finished runs are reused)")


@pytest.mark.parametrize("during", ["training", "train_run", "score_run"])
def test_an_out_folder_removed_mid_bench_is_not_made_again(during, tmp_path, monkeypatch,
                                                            capsys):
    # Was: the next training run (or ood score's own folder, or the table's lock) made --out
    # again, holding the later runs alone and a table of them, or a training run failed
    # naming its own folder. `during`: removed while the first run trains (its checkpoint
    # next), once it is trained (scoring next), once it is scored (the next training next).
    import shutil

    from robustrep.tasks.cli import main
    from robustrep.tasks.common import rundir
    from robustrep.tasks.ood import bench, score
    calls = _bench_in_process(monkeypatch)
    out = tmp_path / "b"
    if during == "training":
        log = rundir.RunDir.log

        def log_then_remove(self, step, **values):
            record = log(self, step, **values)
            shutil.rmtree(out, ignore_errors=True)  # at the first record; the run stops there
            return record
        monkeypatch.setattr(rundir.RunDir, "log", log_then_remove)
    else:
        module = bench if during == "train_run" else score
        real = getattr(module, during)

        def then_remove(*args, **kwargs):
            done = real(*args, **kwargs)
            shutil.rmtree(out)
            return done
        monkeypatch.setattr(module, during, then_remove)
    assert main(_bench_argv(out, "--regs", "none", "--steps", "2", "--seeds", "0", "1")) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == _gone_line(out)
    assert not out.exists() and len(calls) == 1  # the second seed was not trained


def test_a_moved_bench_folder_goes_on_at_its_new_place(tmp_path, monkeypatch, capsys):
    # what the refusal advises: the moved folder as --out keeps its finished runs
    from robustrep.tasks.cli import main
    from robustrep.tasks.ood import score
    calls = _bench_in_process(monkeypatch)
    _undrawn(monkeypatch)
    out, moved = tmp_path / "b", tmp_path / "moved"
    real = score.score_run

    def score_then_move(*args, **kwargs):
        done = real(*args, **kwargs)
        out.rename(moved)
        return done
    monkeypatch.setattr(score, "score_run", score_then_move)
    argv = _bench_argv(out, "--regs", "none", "--steps", "2")
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == _gone_line(out)
    assert not out.exists() and not (moved / "bench.json").exists()
    monkeypatch.setattr(score, "score_run", real)
    assert main(_bench_argv(moved, "--regs", "none", "--steps", "2")) == 0
    assert len(calls) == 1 and (moved / "bench.json").is_file()  # scored, not trained again
