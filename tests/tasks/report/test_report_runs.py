"""``report`` launched from another working directory, with killed, partial and damaged runs.

The child processes are replaced by a fake that behaves as a real child does where it matters:
it starts in the log's folder (``launch.run_robustrep``), so a relative ``--out`` lands there.
"""

import json
from pathlib import Path

import pytest

from robustrep.tasks import cli
from robustrep.tasks.report import page, runs
from robustrep.tasks.report.records import collect
from robustrep.tasks.report.runs import Run


def _fake_child(calls):
    def run_robustrep(argv, log, threads=1):
        calls.append(argv)
        cwd = Path(log).parent  # where the real child starts
        if argv[1] == "train":
            folder = cwd / argv[argv.index("--resume" if "--resume" in argv else "--out") + 1]
            folder.mkdir(parents=True, exist_ok=True)
            if "--steps" in argv:  # a resumed run keeps its config, as a real child
                config = {key: argv[argv.index(flag) + 1] for flag, key in (
                    ("--reg", "reg"), ("--seed", "seed"), ("--preset", "preset"),
                    ("--model", "model"), ("--steps", "steps")) if flag in argv}
                config.update(seed=int(config["seed"]), steps=int(config["steps"]))
                (folder / "config.json").write_text(json.dumps(config))
            steps = json.loads((folder / "config.json").read_text())["steps"]
            last = {"step": steps, "train_s": 2.0, "fid": 3.0, "eval/acc": 0.9}
            (folder / "metrics.jsonl").write_text(json.dumps({"step": 1, "train_s": 1.0}) + "\n"
                                                  + json.dumps(last) + "\n")
            (folder / "finished.json").write_text("{}")
        elif argv[1] == "eval":
            (cwd / argv[2] / "eval").mkdir(parents=True, exist_ok=True)
            (cwd / argv[2] / "eval" / "report.json").write_text('{"summary": {"clean_acc": 1}}')
        else:
            (cwd / argv[2] / "ood").mkdir(parents=True, exist_ok=True)
            (cwd / argv[2] / "ood" / "results.json").write_text('{"results": []}')
        return 0
    return run_robustrep


@pytest.fixture
def children(monkeypatch):
    calls = []
    monkeypatch.setattr(runs, "run_robustrep", _fake_child(calls))
    return calls


@pytest.fixture
def undrawn(monkeypatch):
    """The page's bar charts (plots/*.png) are written empty, by the same atomic writer, not
    drawn: 0.1 s each, and every fake child's run gives the same bars. test_report.py draws and
    checks them; test_a_killed_seed_is_left_out_and_one_run_shows_no_spread and
    test_a_detector_that_failed_on_some_sets_is_left_out_of_its_cells draw the rarer pages."""
    from robustrep.tasks.common import plots
    from robustrep.tasks.common.runfiles import write_atomic
    monkeypatch.setattr(plots, "bar_table",
                        lambda rows, path, **kw: write_atomic(path, lambda handle: None))


def test_readme_commands_from_a_fresh_working_directory(tmp_path, monkeypatch, children, capsys,
                                                        undrawn):
    """README: ``robustrep report --quick`` (default --out), then ``--collect --out DIR`` (with
    and without --quick), then ``report --out DIR``: each takes --quick from the folder."""
    monkeypatch.chdir(tmp_path)
    assert cli.main("report --quick".split()) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "report.md").is_file() and (folder / "report.html").is_file()
    assert not list(folder.rglob("runs/report-*"))  # nothing nested inside the report folder
    assert "(12 runs)" in capsys.readouterr().out  # 2 GAN + 2 classifier settings, 3 seeds
    rel = str(folder.relative_to(tmp_path))
    assert cli.main(["report", "--quick", "--collect", "--out", rel]) == 0
    assert "(12 runs)" in capsys.readouterr().out
    page_text = (folder / "report.md").read_text()
    # was: every run "trained at another size (300 steps, this report's 400)", exit 2: the
    # options not given are now the earlier report's (report.json), --quick among them
    assert cli.main(["report", "--collect", "--out", rel]) == 0
    assert "(12 runs)" in capsys.readouterr().out
    assert (folder / "report.md").read_text() == page_text  # the same page: the same settings
    # without --quick into the quick report's folder: continued as it was started (it left
    # every quick run out as "trained at another size" and replaced the page with none of them)
    children.clear()
    assert cli.main(["report", "--out", rel]) == 0 and not children
    assert capsys.readouterr().err == (
        f"note: --out {folder} holds a report started as `robustrep report --quick --out "
        f"{folder}` (report_options.json): continued with its options for those not given; "
        f"give another --out for a different report\n")
    assert "Quick report: 12 runs" in (folder / "report.md").read_text()


def test_collect_takes_the_options_not_given_from_the_earlier_report(tmp_path, capsys,
                                                                     children, undrawn):
    """Seeds, settings and size come from the folder's record; an option given is honoured
    (--seeds 1: those runs only), but not a --quick that would leave out all of them."""
    out = tmp_path / "r"
    assert cli.main(["report", "--seeds", "0", "1", "--gan-regs", "none", "--classify-regs",
                     "mixup", "--out", str(out)]) == 0
    capsys.readouterr()
    trained = len(children)  # 2 seeds x (digits GAN, grid GAN, classifier: train, eval, score)
    assert cli.main(["report", "--collect", "--out", str(out)]) == 0 and len(children) == trained
    assert "(6 runs)" in capsys.readouterr().out
    summary = (out / "report.md").read_text().splitlines()[2]
    assert summary.startswith("Default report: 6 runs, seeds 0, 1; GAN 400 steps on digits and "
                              "1000 on the grid; classifier test_resnet, 100 steps;"), summary
    assert cli.main(["report", "--collect", "--out", str(out), "--seeds", "1"]) == 0
    assert "(3 runs)" in capsys.readouterr().out
    assert "Default report: 3 runs, seed 1;" in (out / "report.md").read_text()
    page_text = (out / "report.md").read_text()
    # every run of it would be "trained at another size": refused before reading any
    assert cli.main(["report", "--collect", "--out", str(out), "--quick"]) == 2
    err = capsys.readouterr().err
    assert err == (f"robustrep report: error: --out {out} holds a report that `robustrep report "
                   f"--collect --seeds 0 1 --gan-regs none --classify-regs mixup --out {out}` "
                   f"reads; --quick would leave out every run of it (trained at the default "
                   f"size) and replace its page; give another --out for a different report\n")
    assert (out / "report.md").read_text() == page_text


@pytest.mark.parametrize("damage, line", [
    (lambda info: info.pop("settings"), "{path} holds no report settings ({at}settings); "),
    (lambda info: info["settings"].pop("seeds"), "{path}: {at}settings has no seeds; "),
    (lambda info: info["settings"].update(seeds="0"),
     "{path}: {at}settings.seeds is '0', not what a report writes; "),
    (lambda info: info["settings"].update(gan_steps=True),
     "{path}: {at}settings.gan_steps is True, not what a report writes; "),
    (lambda info: info.update(quick="yes"), "{path}: {at}quick is 'yes', not true or false; "),
])
@pytest.mark.parametrize("record", ["report_options.json", "report.json"])
def test_a_damaged_record_of_the_reports_options_is_refused(tmp_path, capsys, children,
                                                            damage, line, record, undrawn):
    """report_options.json, or the report.json of a report made before it was written: by
    --collect and by a rerun, which both take the options not given from it."""
    out = tmp_path / "r"
    assert cli.main(["report", "--quick", "--seeds", "0", "--out", str(out)]) == 0
    if record == "report.json":  # a folder of an earlier version: report.json alone held them
        (out / "report_options.json").unlink()
    path = out / record
    data = json.loads(path.read_text())
    damage(data["info"] if record == "report.json" else data)
    path.write_text(json.dumps(data))
    page_text, trained = (out / "report.md").read_text(), len(children)
    capsys.readouterr()
    at, page = ("info.", " and the page beside it (report.md, report.html, plots/)") if \
        record == "report.json" else ("", "")
    for extra in (["--collect"], []):
        assert cli.main(["report", *extra, "--out", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"robustrep report: error: {line.format(path=path, at=at)}restore it, or remove "
            f"it{page} and give the options the report was started with (--quick, --seeds, "
            f"--gan-regs, --classify-regs)\n")
    assert (out / "report.md").read_text() == page_text and len(children) == trained


def test_collect_reads_a_quick_report_that_did_not_record_quick(tmp_path, capsys, children,
                                                                undrawn):
    """A report.json of an earlier version (no "quick", no report_options.json): the quick
    size's steps tell."""
    out = tmp_path / "r"
    assert cli.main(["report", "--quick", "--seeds", "0", "--out", str(out)]) == 0
    (out / "report_options.json").unlink()
    record = json.loads((out / "report.json").read_text())
    assert record["info"].pop("quick") is True
    del record["info"]["settings"]["gan_evals"]  # a field added since: its size's
    (out / "report.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert cli.main(["report", "--collect", "--out", str(out)]) == 0
    assert "Quick report: 4 runs, seed 0; GAN 300 steps" in (out / "report.md").read_text()


def test_a_relative_out_is_trained_once_and_rerun_trains_nothing(tmp_path, monkeypatch, children,
                                                                 undrawn):
    monkeypatch.chdir(tmp_path)
    argv = ["report", "--quick", "--seeds", "0", "--out", "rr"]
    assert cli.main(argv) == 0 and len(children) == 8  # 2 GAN runs, 2 x (train, eval, score)
    assert all(Path(a[a.index("--out") + 1]).is_absolute() for a in children if "--out" in a)
    assert cli.main(argv) == 0 and len(children) == 8


def test_the_page_says_which_runs_this_invocation_ran(tmp_path, children, capsys, undrawn):
    """Run again over finished runs, the page said "0.0 min wall-clock for this invocation" of
    them all, replacing the page that gave the minutes they took."""
    import shutil
    out = tmp_path / "r"
    argv = ["report", "--quick", "--seeds", "0", "--out", str(out)]

    def summary():
        return (out / "report.md").read_text().splitlines()[2]
    assert cli.main(argv) == 0
    assert summary().endswith("min wall-clock for this invocation.")
    assert cli.main(argv) == 0
    assert summary().endswith("min wall-clock for this invocation, which ran none of them (each "
                              "had finished before it: read).")
    shutil.rmtree(out / "runs" / "gan" / "none-seed0")
    assert cli.main(argv) == 0
    assert summary().endswith(", which ran 1 of the 4 (the others had finished before it: "
                              "read).")
    assert "report runs: run 1/1 (100%)" in capsys.readouterr().err  # runs, not steps


def test_an_out_folder_removed_while_the_report_runs_is_not_made_again(tmp_path, monkeypatch,
                                                                       children, capsys):
    # Was: the page was written into a new folder of the same name, holding it alone
    import shutil

    from robustrep.tasks.report import cli as report_cli
    out = tmp_path / "rr"
    real = report_cli.collect

    def collect_then_remove(planned, train):
        found = real(planned, train)
        shutil.rmtree(out)
        return found
    monkeypatch.setattr(report_cli, "collect", collect_then_remove)
    assert cli.main(["report", "--quick", "--seeds", "0", "--out", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the runs' progress line
    assert last == (f"robustrep report: error: --out {out} was removed or moved while the report "
                    f"ran; nothing more is written there; run the command again")
    assert not out.exists()


def test_killed_runs_are_resumed_or_restarted_and_finished_parts_kept(tmp_path):
    out = tmp_path / "r"
    gan = runs._gan_run("gan", "digits-dcgan", "none", 0, 10, out)
    gan.folder.mkdir(parents=True)
    (gan.folder / "config.json").write_text('{"steps": 10}')
    (gan.folder / "metrics.jsonl").write_text('{"step": 1, "train_s": 0.1}\n{"ste')  # kill -9
    assert gan.pending() == [gan.commands[0]] and not gan.done  # no checkpoint: start again
    (gan.folder / "checkpoints").mkdir()
    # killed while its first latest.pt was written: the resume restores it from the step file
    (gan.folder / "checkpoints" / "step_00000002.pt").write_bytes(b"x")
    assert gan.pending() == [["gan", "train", "--resume", str(gan.folder), "--quiet"]]
    (gan.folder / "checkpoints" / "step_00000002.pt").unlink()
    (gan.folder / "checkpoints" / "latest.pt").write_bytes(b"x")
    assert gan.pending() == [["gan", "train", "--resume", str(gan.folder), "--quiet"]]
    clf = runs._classify_run(runs.QUICK, "none", 0, out)  # killed between train and eval
    clf.folder.mkdir(parents=True)
    (clf.folder / "config.json").write_text('{"steps": 10}')
    (clf.folder / "finished.json").write_text("{}")
    assert clf.pending() == clf.commands[1:]


def test_a_killed_seed_is_left_out_and_one_run_shows_no_spread(tmp_path, capsys, children):
    out = tmp_path / "r"
    assert cli.main(["report", "--quick", "--seeds", "0", "1", "--out", str(out),
                     "--classify-regs", "none"]) == 0
    killed = out / "runs" / "gan" / "none-seed1"
    (killed / "finished.json").unlink()  # killed by kill -9 mid-write, before the end
    (killed / "metrics.jsonl").write_text('{"step": 1, "train_s": 1.0}\n{"step": 2, "tr')
    capsys.readouterr()
    assert cli.main(["report", "--quick", "--seeds", "0", "1", "--out", str(out), "--collect",
                     "--classify-regs", "none"]) == 1
    captured = capsys.readouterr().err
    assert "gan/none/seed1: unfinished" in captured
    page = (out / "report.md").read_text()
    assert "3.000 (1 run)" in page
    # the page itself says what it left out (before, only report.json and the terminal did)
    assert "## Left out\n\n- " in page and "gan/none/seed1: unfinished" in page
    assert "gan/none/seed1: unfinished" in (out / "report.html").read_text()


@pytest.mark.parametrize("damage, line", [
    # a final evaluation line cut: the evaluation before it stood in for the final one
    ("cut", "gan/none/seed1: {folder}/metrics.jsonl holds no evaluation at the final step 300 "
            "(the last is at step 150: a damaged line?); left out (remove the folder"),
    # another seed's folder copied over this one: a zero spread from one run read twice
    ("copied", "gan/none/seed1: {folder} holds another run (seed 0 in its config.json, this "
               "report's '1'); left out (copied or moved?)"),
    # a final value edited or damaged into text: was shown as "–" with exit 0
    ("text", "gan/none/seed1: {folder}/metrics.jsonl: the final fid is 'NaN', not a number; "
             "left out"),
])
def test_collect_leaves_out_a_gan_run_it_cannot_read_faithfully(tmp_path, capsys, children,
                                                                damage, line, undrawn):
    out = tmp_path / "r"
    argv = ["report", "--quick", "--seeds", "0", "1", "--out", str(out), "--gan-regs", "none",
            "--classify-regs", "none"]
    assert cli.main(argv) == 0
    folder = out / "runs" / "gan" / "none-seed1"
    if damage == "cut":
        (folder / "metrics.jsonl").write_text(
            '{"step": 150, "train_s": 1.0, "fid": 9.0}\n{"step": 300, "train_s": 2.0, "f')
    elif damage == "text":
        with (folder / "metrics.jsonl").open("a") as f:
            f.write('{"step": 300, "fid": "NaN"}\n')
    else:
        (folder / "config.json").write_text(
            (out / "runs" / "gan" / "none-seed0" / "config.json").read_text())
    capsys.readouterr()
    assert cli.main([*argv, "--collect"]) == 1
    assert line.format(folder=folder) in capsys.readouterr().err
    assert "3.000 (1 run)" in (out / "report.md").read_text()
    # without --collect the same: the run is finished, so read, not trained again; was dropped
    # from the page without a word, exit 0
    calls = len(children)
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert line.format(folder=folder) in err and len(children) == calls
    assert "3.000 (1 run)" in (out / "report.md").read_text()
    if damage != "copied":  # the command that trains it again, once its folder is removed
        assert (f"left out (remove the folder; to train it: robustrep report --quick --seeds 0 1 "
                f"--gan-regs none --classify-regs none --out {out})") in err


def test_a_users_files_in_out_are_kept_and_a_bad_out_is_named(tmp_path, capsys, children):
    # Was: a user's report.md/.json/.html replaced; --collect into a typo made the folder; a
    # file as --out was "not writable (File exists)"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    argv = ["report", "--quick", "--seeds", "0", "--gan-regs", "none", "--classify-regs", "none"]
    assert cli.main([*argv, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err == (f"robustrep report: error: --out {mine} holds report.md, which no report "
                   f"wrote there (it has no report.json); remove it or choose another folder "
                   f"(report replaces only its own files)\n")
    (mine / "report.json").write_text('{"mine": 1}')
    assert cli.main([*argv, "--out", str(mine)]) == 2
    assert "report.json exists and is not a readable record of report" in capsys.readouterr().err
    assert (mine / "report.md").read_text() == "my notes" and not children
    pictures = tmp_path / "pictures"  # was: the user's plots/gan.png replaced by the report's
    (pictures / "plots").mkdir(parents=True)
    (pictures / "plots" / "gan.png").write_text("my figure")
    assert cli.main([*argv, "--out", str(pictures)]) == 2
    assert f"--out {pictures} holds plots/gan.png, which no report wrote" in \
        capsys.readouterr().err
    assert (pictures / "plots" / "gan.png").read_text() == "my figure" and not children
    from robustrep.tasks.common.runlock import RunLock
    busy = tmp_path / "busy"  # was: two reports trained and scored the same runs at once
    busy.mkdir()
    with RunLock(busy / ".lock").acquire():
        assert cli.main([*argv, "--out", str(busy)]) == 2
    assert f"{busy} is in use by another run (pid " in capsys.readouterr().err and not children
    typo = tmp_path / "typo"
    assert cli.main([*argv, "--collect", "--out", str(typo)]) == 2
    assert capsys.readouterr().err == (f"robustrep report: error: --out {typo} is not a folder; "
                                       f"--collect reads the runs of an earlier report there\n")
    assert not typo.exists()
    (tmp_path / "afile").write_text("")
    assert cli.main([*argv, "--out", str(tmp_path / "afile")]) == 2
    assert "afile is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("record, what", [("config.json", "the folder of a robustrep run"),
                                          ("results.json", "the folder of an ood score"),
                                          ("bench.json", "the folder of an ood bench")])
@pytest.mark.parametrize("collect", [False, True])
def test_another_commands_folder_as_out_is_refused(tmp_path, capsys, children, record, what,
                                                   collect):
    """Was: `report --out RUN` (a gan run's folder) trained the report's runs inside the run,
    RUN/runs/..., and wrote report.md beside its checkpoints; --collect named a missing run."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / record).write_text("{}")
    argv = ["report", "--quick", "--seeds", "0", "--gan-regs", "none", "--out", str(folder)]
    assert cli.main(argv + ["--collect"] * collect) == 2
    assert capsys.readouterr().err == (
        f"robustrep report: error: --out {folder} is {what} (it holds {record}); report writes "
        f"only into a folder of its own: a new folder, or an earlier report's (its finished "
        f"runs are read)\n")
    assert not children and sorted(p.name for p in folder.iterdir()) == [record]


def test_a_run_that_failed_here_but_finished_elsewhere_is_not_also_a_failure(tmp_path, capsys,
                                                                          monkeypatch):
    # Was: the page listed it under "Left out" (the lock was held by an earlier report's run)
    # and showed its numbers, and the report exited 1
    fake = _fake_child([])

    def held_by_another(argv, log, threads=1):
        fake(argv, log, threads)  # the other process finished the run meanwhile
        return 2 if argv[:2] == ["gan", "train"] and "none-seed1" in " ".join(argv) else 0

    monkeypatch.setattr(runs, "run_robustrep", held_by_another)
    out = tmp_path / "r"
    assert cli.main(["report", "--quick", "--seeds", "0", "1", "--out", str(out),
                     "--gan-regs", "none", "--classify-regs", "none"]) == 0
    assert "warning" not in capsys.readouterr().err
    page = (out / "report.md").read_text()
    assert "## Left out" not in page and "3.000 ± 0.000" in page


def test_a_failed_run_is_named_with_its_own_error_and_log(tmp_path, capsys, monkeypatch):
    """Was: `robustrep gan train failed (see OUT/commands.log)`, one log that runs going at once
    interleaved (a run's error could not be told from another's), and nothing at all for a run
    killed by a signal."""
    fake = _fake_child([])

    def child(argv, log, threads=1):
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as handle:  # as the real child: its output appended to log
            handle.write(f"$ robustrep {' '.join(argv[:2])}\n")
            if "none-seed1" in " ".join(argv) and argv[0] == "gan":
                handle.write("robustrep gan train: error: something the user can fix\n")
                return 2
            if "none-seed1" in " ".join(argv) and argv[:2] == ["classify", "eval"]:
                return -9  # kill -9 of the child: it writes nothing
            handle.write("fine\n")
        return fake(argv, log, threads)

    monkeypatch.setattr(runs, "run_robustrep", child)
    out = tmp_path / "r"
    assert cli.main(["report", "--quick", "--seeds", "0", "1", "--out", str(out),
                     "--gan-regs", "none", "--classify-regs", "none"]) == 1
    err = capsys.readouterr().err
    gan_log = out / "runs" / "gan" / "none-seed1.log"
    assert (f"warning: gan/none/seed1: robustrep gan train failed (exit 2): robustrep gan "
            f"train: error: something the user can fix (log: {gan_log})") in err, err
    assert (f"warning: classify/none/seed1: robustrep classify eval was killed by SIGKILL "
            f"(log: {out / 'runs' / 'classify' / 'none-seed1.log'})") in err, err
    assert gan_log.read_text().count("error") == 1  # each run's log holds its own commands
    assert (out / "runs" / "gan" / "none-seed0.log").read_text() == (
        "$ robustrep gan train\nfine\n")


def test_a_report_whose_every_run_failed_says_why(tmp_path, capsys, monkeypatch):
    """Was: `error: gan/none/seed0: unfinished in ...; left out (run without --collect to train
    it)`, for a report run without --collect, the runs' own errors nowhere on the terminal."""
    def child(argv, log, threads=1):
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(f"robustrep {' '.join(argv[:2])}: error: no {argv[0]} today\n")
        return 2

    monkeypatch.setattr(runs, "run_robustrep", child)
    out = tmp_path / "r"
    assert cli.main(["report", "--quick", "--seeds", "0", "--out", str(out), "--jobs", "1",
                     "--gan-regs", "none", "--classify-regs", "none"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("report")]
    logs = [out / "runs" / task / "none-seed0.log" for task in ("gan", "classify")]
    assert err == [
        f"warning: classify/none/seed0: robustrep classify train failed (exit 2): robustrep "
        f"classify train: error: no classify today (log: {logs[1]})",
        f"robustrep report: error: gan/none/seed0: robustrep gan train failed (exit 2): "
        f"robustrep gan train: error: no gan today (log: {logs[0]})"]


def test_a_seed_given_twice_is_refused(tmp_path, capsys, children):
    assert cli.main(["report", "--seeds", "0", "0", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err == "robustrep report: error: --seeds: seed 0 is given twice; give each seed once\n"
    assert not (tmp_path / "r").exists()


def test_runs_without_metrics_draw_no_empty_panel(tmp_path):
    records = [{"task": "gan", "reg": "none", "seed": 0, "step_seconds": None}]
    files = page.write(tmp_path, records, {"summary": "s", "conventions": "c"})
    assert files["md"].is_file() and not (tmp_path / "plots" / "gan.png").exists()


def test_markdown_cells_escape_the_column_bar():
    assert page.md_row(["a|b", "1"]) == "| a\\|b | 1 |"


@pytest.mark.parametrize("name, text, problem", [
    ("eval/report.json", '{"summary": {"clean_acc": 0.', "is damaged (not JSON"),
    ("ood/results.json", "[1, 2]", "holds a JSON list"),
])
def test_a_damaged_result_file_is_one_line_naming_it(tmp_path, capsys, children, name, text,
                                                       problem, undrawn):
    out = tmp_path / "r"
    argv = ["report", "--quick", "--seeds", "0", "--out", str(out), "--gan-regs", "none",
            "--classify-regs", "none"]
    assert cli.main(argv) == 0
    damaged = out / "runs" / "classify" / "none-seed0" / name
    damaged.write_text(text)
    capsys.readouterr()
    assert cli.main([*argv, "--collect"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robustrep report: error: {damaged} {problem}") and err.count("\n") == 1


@pytest.mark.parametrize("name, remove", [
    ("classify/none-seed0/ood/results.json", "classify/none-seed0/ood"),
    ("classify/none-seed0/eval/report.json", "classify/none-seed0/eval"),
    ("gan/none-seed0/finished.json", "gan/none-seed0/finished.json"),
    ("gan/none-seed0/config.json", "gan/none-seed0"),
])
def test_a_damaged_file_of_a_run_says_what_the_next_report_redoes(tmp_path, capsys, children,
                                                                  name, remove, undrawn):
    """The line said "restore it or run again into another folder": every run of the report
    again. Removing a result file alone was no way out either: the eval's or ood score's other
    files in its folder were then refused as a user's."""
    import shutil
    out = tmp_path / "r"
    argv = ["report", "--quick", "--seeds", "0", "--out", str(out), "--gan-regs", "none",
            "--classify-regs", "none"]
    assert cli.main(argv) == 0
    (out / "runs" / name).write_text("{")
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    target = out / "runs" / remove
    what = ("restore it, or remove the run folder" if name.endswith("config.json") else
            "remove it" if name.endswith("finished.json") else "remove the folder")
    assert err.startswith(f"robustrep report: error: {out / 'runs' / name} is damaged"), err
    tail = f"{what} {'' if what == 'remove it' else f'{target} '}and run the report again"
    assert tail in err and "another folder" not in err, err
    shutil.rmtree(target) if target.is_dir() else target.unlink()  # as the line says
    children.clear()
    assert cli.main(argv) == 0
    redone = [a[:2] for a in children]
    assert redone == {"ood": [["ood", "score"]], "eval": [["classify", "eval"]],
                      "finished.json": [], "none-seed0": [["gan", "train"]]}[target.name]


def test_collect_reads_an_old_gan_run_without_a_marker(tmp_path):
    """Runs written before finished.json existed: finished when evaluated at the last step."""
    run = Run("gan", "none", 0, tmp_path / "g")
    run.folder.mkdir()
    (run.folder / "config.json").write_text('{"steps": 4}')
    (run.folder / "metrics.jsonl").write_text('{"step": 4, "train_s": 1}\n{"step": 4, "fid": 2}\n')
    assert collect([run])[0][0]["fid"] == 2
    (run.folder / "config.json").write_text('{"steps": 8}')  # stopped before the end
    assert collect([run]) == ([], [f"gan/none/seed0: unfinished in {run.folder}; left out (run "
                                   f"without --collect to train it)"])


def test_collect_names_the_runs_never_started_and_the_summary_the_seeds_read():
    """A seed with no run folder was left out without a line, and the page said it covered it."""
    from types import SimpleNamespace

    from robustrep.tasks.report.cli import _summary
    never = Run("gan", "none", 2, Path("/nowhere/gan-none-s2"))
    assert collect([never]) == ([], ["gan/none/seed2: not started: no /nowhere/gan-none-s2; "
                                     "left out (run without --collect to train it)"])
    settings = SimpleNamespace(seeds=(0, 1, 2), gan_steps=4, grid_steps=0, classify_model="m",
                               classify_steps=4)
    records = [{"seed": 0}, {"seed": 1}, {"seed": 1}]
    assert _summary(settings, records, None, True).startswith(
        "Quick report: 3 runs, seeds 0, 1 (of 0, 1, 2 planned); GAN 4 steps")
    assert "seeds 0, 1, 2;" in _summary(settings, records + [{"seed": 2}], None, True)
    # one run of one seed: it said "1 runs, seeds 0"
    assert _summary(settings, [{"seed": 0}], None, True).startswith(
        "Quick report: 1 run, seed 0 (of 0, 1, 2 planned); GAN 4 steps")


def test_dry_run_commands_are_quoted_as_a_shell_reads_them(tmp_path, capsys):
    """An --out with a space printed `--out /x/rep dir/runs/...` unquoted: pasted into a
    shell it named the folder `/x/rep` and an extra word `dir/...`."""
    import shlex
    out = tmp_path / "rep dir ü"
    assert cli.main(["report", "--quick", "--seeds", "0", "--dry-run", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and not out.exists()
    trains = [shlex.split(line) for line in lines if " train " in line]
    assert [argv[argv.index("--out") + 1] for argv in trains] == [
        str(out / "runs" / task / f"{reg}-seed0") for task in ("gan", "classify")
        for reg in ("none", "adaptivemix")]
    evals = [shlex.split(line) for line in lines if " eval " in line]
    assert evals[0][:4] == ["robustrep", "classify", "eval",
                            str(out / "runs" / "classify" / "none-seed0")]


def _ood_results(folder, rows):
    (folder / "ood" / "results.json").write_text(json.dumps({"results": [
        {"detector": det, "ood": ood, "AUROC": auroc, "fpr95_id_tpr": None if auroc is None
         else 0.5, "error": "" if auroc is not None else "ValueError: k=50 > 40 samples"}
        for det, ood, auroc in rows]}))


def test_a_detector_that_failed_on_some_sets_is_left_out_of_its_cells(tmp_path, capsys,
                                                                     children):
    # Was: seed 1's Mahalanobis mean covered only the set it did not fail on, and the page
    # averaged it with seed 0's mean over both sets without a word
    out = tmp_path / "r"
    argv = ["report", "--quick", "--seeds", "0", "1", "--out", str(out), "--gan-regs", "none",
            "--classify-regs", "none"]
    assert cli.main(argv) == 0
    both = [("MaxSoftmax", "gaussian", 0.6), ("MaxSoftmax", "photos", 0.8)]
    folders = [out / "runs" / "classify" / f"none-seed{s}" for s in (0, 1)]
    _ood_results(folders[0], [*both, ("Mahalanobis", "gaussian", 0.9),
                              ("Mahalanobis", "photos", 0.7)])
    _ood_results(folders[1], [*both, ("Mahalanobis", "gaussian", 0.5),
                              ("Mahalanobis", "photos", None)])
    capsys.readouterr()
    for extra in ([], ["--collect"]):  # nothing to train: the line comes from reading the run
        assert cli.main([*argv, *extra]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(
            "warning: classify/none/seed1: Mahalanobis failed on photos (ValueError: k=50 > 40 "
            f"samples), 1 of the 2 OOD sets in {folders[1] / 'ood' / 'results.json'}; left out "
            "of the Mahalanobis cells")
    page_text = (out / "report.md").read_text()
    assert "left out of the Mahalanobis cells" in page_text.split("## Left out")[1]
    # seed 0's mean over both sets alone (0.8), not averaged with seed 1's over one (0.5)
    assert "| Mahalanobis AUROC ↑ | 0.800 (1 of 2 runs) |" in page_text
    assert "| MaxSoftmax AUROC ↑ | 0.700 ± 0.000 |" in page_text


def test_a_report_gives_an_estimate_and_names_each_run_as_it_starts(tmp_path, capsys,
                                                                   monkeypatch, undrawn):
    """Was: the runs are --quiet, so with stderr a file nothing was written until the first
    run ended (about a minute), and on a terminal the bar showed `0/N [?]`."""
    import shutil
    fake, before = _fake_child([]), []

    def child(argv, log, threads=1):
        before.append(capsys.readouterr().err)  # what the user has seen when it starts
        return fake(argv, log, threads)

    monkeypatch.setattr(runs, "run_robustrep", child)
    out = tmp_path / "r"
    argv = ["report", "--quick", "--seeds", "0", "--gan-regs", "none", "--classify-regs",
            "none", "--jobs", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    logs = [out / "runs" / task / "none-seed0.log" for task in ("gan", "classify")]
    assert before[0].splitlines() == [
        "report: 2 runs to do, 1 at a time: about 1m00s (30 s a run on 2 CPU cores, measured "
        "for --quick; the bar's ETA from the first run done on)",
        f"report: run 1/2: gan none seed 0 started (log: {logs[0]})"]
    assert before[1] == f"report: run 2/2: classify none seed 0 started (log: {logs[1]})\n"
    shutil.rmtree(out / "runs" / "classify" / "none-seed0" / "ood")  # trained, not scored
    before.clear()
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert before[0].splitlines() == [
        "report: 1 run to do, 1 at a time: about 30s (30 s a run on 2 CPU cores, measured for "
        "--quick; the bar's ETA from the first run done on)",
        f"report: run 1/1: classify none seed 0 scored (ood score) (log: {logs[1]})"]
    gan = out / "runs" / "gan" / "none-seed0"  # stopped after its checkpoint
    (gan / "finished.json").unlink()
    (gan / "metrics.jsonl").write_text('{"step": 1, "train_s": 1.0}\n')
    (gan / "checkpoints").mkdir()
    (gan / "checkpoints" / "latest.pt").write_bytes(b"x")
    before.clear()
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert before[0].splitlines()[1] == (f"report: run 1/1: gan none seed 0 resumed from its "
                                         f"checkpoint (log: {logs[0]})")


def test_a_setting_carries_its_own_options_to_its_runs(tmp_path, children, monkeypatch,
                                                        capsys, undrawn):
    # Was: refused ("--classify-regs: ... 'mixup+cutmix@mixup_alpha=0.8'"), so a report could
    # not compare timm's per-method alphas (--mixup 0.8 --cutmix 1.0)
    from robustrep.tasks.common import launch
    checked = []

    def dry_run(argv):  # classify train --dry-run, as its own process answers
        checked.append(argv)
        ok = "--mixup-alpha" in argv or "--mixup-alpa" not in argv
        return (0, "{}", "") if ok else (2, "", "robustrep classify train: error: "
                                         "unrecognized arguments: --mixup-alpa 0.8")
    monkeypatch.setattr(launch, "check_robustrep", dry_run)
    out = tmp_path / "r"
    argv = ["report", "--quick", "--seeds", "0", "--gan-regs", "none", "--jobs", "1",
            "--classify-regs", "none,mixup+cutmix@mixup-alpha=0.8", "--out", str(out)]
    assert cli.main(argv) == 0
    assert checked == [["classify", "train", "--preset", "digits-ood", "--reg", "mixup,cutmix",
                        "--mixup-alpha", "0.8", "--dry-run"]]  # the setting with options only
    train = [a for a in children if a[:2] == ["classify", "train"] and "mixup,cutmix" in a][0]
    assert train[train.index("--reg"):train.index("--reg") + 4] == [
        "--reg", "mixup,cutmix", "--mixup-alpha", "0.8"]
    folder = out / "runs" / "classify" / "mixup,cutmix_mixup_alpha-0.8-seed0"
    assert train[train.index("--out") + 1] == str(folder) and (folder / "finished.json").is_file()
    assert "| mixup,cutmix@mixup_alpha=0.8 |" in (out / "report.md").read_text()
    assert json.loads((out / "report_options.json").read_text())["settings"]["classify_regs"] \
        == ["none", "mixup,cutmix@mixup_alpha=0.8"]
    capsys.readouterr()
    bad = [*argv[:-4], "--classify-regs", "mixup@mixup-alpa=0.8", "--out", str(tmp_path / "b")]
    assert cli.main(bad) == 2 and not (tmp_path / "b" / "runs").exists()
    assert capsys.readouterr().err.splitlines() == [  # the check said as it runs (seconds)
        "report: checking --classify-regs setting 'mixup@mixup_alpa=0.8' with robustrep "
        "classify train --preset digits-ood --dry-run",
        "robustrep report: error: --classify-regs setting 'mixup@mixup_alpa=0.8': robustrep "
        "classify train does not accept it: unrecognized arguments: --mixup-alpa 0.8; see "
        "robustrep classify train --help for the accepted options"]


def test_settings_are_checked_on_every_preset_they_train_and_spelled_one_way(
        tmp_path, monkeypatch, capsys):
    # Was: a GAN cutmix or srmix setting was never checked; None crashed (IndexError); the
    # report did not claim stop_after, so a setting named a run trained to the report's end
    from robustrep.tasks.common import launch
    checked = []
    monkeypatch.setattr(launch, "check_robustrep",
                        lambda argv: checked.append(argv) or (0, "{}", ""))
    argv = ["report", "--seeds", "0", "--dry-run", "--out", str(tmp_path / "r"),
            "--classify-regs", "none@drop_path=None@head=uos"]
    assert cli.main([*argv, "--gan-regs", "cutmix@mixup_alpha=0.5"]) == 0
    assert [a[:4] for a in checked] == [["gan", "train", "--preset", "digits-dcgan"],
                                        ["classify", "train", "--preset", "digits-ood"]]
    assert "runs/classify/none_drop_path-None_head-uos-seed0" in capsys.readouterr().out
    assert cli.main([*argv, "--gan-regs", "none@stop_after=10"]) == 2
    assert "stop_after=10: stop_after is the report's to set for each run" in \
        capsys.readouterr().err


def test_quiet_silences_the_progress_not_the_page_line(tmp_path, capsys, monkeypatch,
                                                     undrawn):
    # Was: refused (exit 2), where every other long command takes --quiet
    monkeypatch.setattr(runs, "run_robustrep", _fake_child([]))
    out = tmp_path / "r"
    assert cli.main(["report", "--quick", "--seeds", "0", "--gan-regs", "none",
                     "--classify-regs", "none", "--jobs", "1", "--out", str(out),
                     "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == f"report: {out / 'report.md'} and {out / 'report.html'} (2 runs)\n"


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_run_queued_when_a_signal_stops_the_report_is_not_announced(tmp_path, capsys,
                                                                      monkeypatch, signum):
    """Was: `kill -TERM` (or Ctrl-C) during the GAN run printed `report: run 2/2: classify none
    seed 0 started (log: ...)` for a run never started (no log, no folder). Two at a time, the
    classifier's run held until the stop is recorded: its thread then starts it, as a pool
    thread taking the next run did when the GAN run ended on the stop."""
    import signal
    import threading
    calls, stopped, run_log = [], threading.Event(), runs.run_log

    def child(argv, log, threads=1):  # a stop as the handler report installs records it
        calls.append(argv)
        try:
            signal.getsignal(signal.SIGTERM)(signal.Signals[signum], None)
        finally:
            stopped.set()

    def held(run):
        if run.task == "classify":
            assert stopped.wait(10)
        return run_log(run)

    monkeypatch.setattr(runs, "run_robustrep", child)
    monkeypatch.setattr(runs, "run_log", held)
    argv = ["report", "--quick", "--seeds", "0", "--gan-regs", "none", "--classify-regs",
            "none", "--jobs", "2", "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 128 + signal.Signals[signum]
    err = capsys.readouterr().err
    assert "report: run 1/2: gan none seed 0 started" in err
    assert "run 2/2" not in err and len(calls) == 1
