import json

import pytest

from robustrep.tasks.classify.config import DEFAULT_CORRUPTIONS
from robustrep.tasks.classify.evaluate import evaluate_run
from robustrep.tasks.common.errors import DataError, UserError


def test_eval_run_writes_report_and_diagram(trained_run, tmp_path):
    report = evaluate_run(trained_run, attacks=("pgd",), pgd_steps=(2,), severities=(1, 5),
                          max_samples=16, n_attack=8, out=tmp_path / "eval")
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["summary"]["clean_acc"] == pytest.approx(report["summary"]["clean_acc"])
    assert set(saved["corruptions"]) == set(DEFAULT_CORRUPTIONS)
    assert saved["n_attack"] == 8 and saved["norm"] == "Linf"
    assert saved["robust_convention"]["pgd2"].endswith("Linf eps=8/255")
    assert (tmp_path / "eval" / "reliability.png").stat().st_size > 0
    assert saved["weights"] == "ema" and saved["n"] == 16
    # was absent: a foreign model's numbers could not be read without its normalisation
    config = json.loads((trained_run / "config.json").read_text())
    conv = saved["input_convention"]
    assert conv["range"] == [0.0, 1.0]
    assert (conv["mean"], conv["std"]) == (pytest.approx(config["mean"]),
                                           pytest.approx(config["std"]))


def test_no_ema_on_a_run_without_ema_says_so(trained_run, tiny_cfg, tmp_path, capsys,
                                             undrawn_diagrams):
    # Was: silent; --no-ema gave the raw weights, as the call without it does on such a run
    from robustrep.tasks.classify.train import train
    from robustrep.tasks.cli import main
    run = tmp_path / "run"
    train(tiny_cfg(steps=1), run, quiet=True)  # ema_decay 0, the default
    argv = ["classify", "eval", "--attacks", "none", "--corruptions", "--max-samples", "8",
            "--quiet", "--out", str(tmp_path / "eval")]
    assert main([*argv, str(run), "--no-ema"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "--no-ema" in line]
    assert notes == [f"note: --no-ema: {run} keeps no EMA copy (trained with ema_decay 0); its "
                     f"raw weights, the only ones, are used, as they would be without --no-ema"]
    assert main([*argv, str(run)]) == 0  # not asked for
    ema_out = [*argv[:-1], str(tmp_path / "ema")]  # another run's: not into run's --out
    assert main([*ema_out, str(trained_run), "--no-ema"]) == 0  # a run with EMA weights
    assert "--no-ema" not in capsys.readouterr().err


def test_eval_removes_the_temp_files_a_killed_eval_left_in_its_folder(trained_run, tmp_path):
    # Was: kept for ever (ood score and the GAN run folders removed theirs)
    from robustrep.tasks.cli import main
    out = tmp_path / "eval"
    out.mkdir()
    stale = [out / ".report.json.a1b2.tmp", out / ".reliability.png.c3d4.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    assert main(["classify", "eval", str(trained_run), "--attacks", "none", "--corruptions",
                 "--max-samples", "8", "--quiet", "--out", str(out)]) == 0
    assert not any(p.exists() for p in stale) and (out / "report.json").is_file()


def test_a_report_without_attacks_or_corruptions_records_no_radius(trained_run, tmp_path):
    # were: eps 8/255 and norm Linf beside an empty robust table, and corruption_acc "nan"
    evaluate_run(trained_run, attacks=(), corruptions=(), max_samples=16, out=tmp_path / "eval")
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert (saved["eps"], saved["norm"], saved["robust"], saved["n_attack"]) == (None, None, {}, 0)
    assert saved["summary"]["corruption_acc"] is None


def test_a_users_files_in_the_runs_report_folder_are_kept(trained_run, tmp_path):
    # Was: `classify eval RUN` replaced RUN/eval/report.json and reliability.png of the user's
    # (only --out was checked); a report.json whose summary is no mapping was a traceback after
    # the picture beside it had been replaced
    import shutil

    from robustrep.tasks.common.errors import RunFolderError
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("eval"))
    (run / "eval").mkdir()
    (run / "eval" / "reliability.png").write_text("mine")
    with pytest.raises(RunFolderError, match=f"the run's report folder {run / 'eval'} holds "
                                             f"reliability.png, which no classify eval wrote"):
        evaluate_run(run, attacks=(), corruptions=(), max_samples=8)
    (run / "eval" / "report.json").write_text('{"clean": 1, "summary": 2}')
    evaluate_run(run, attacks=(), corruptions=(), max_samples=8)  # a record of ours, replaced
    assert json.loads((run / "eval" / "report.json").read_text())["n"] == 8


def test_eval_run_cifar_c_needs_a_cifar_run_and_the_files(trained_run, tmp_path):
    with pytest.raises(UserError, match="needs a run trained on cifar10 or cifar100"):
        evaluate_run(trained_run, attacks=(), cifar_c_root=tmp_path)
    from robustrep.tasks.classify.cifar_c_checks import check_cifar_c
    with pytest.raises(DataError, match="labels.npy is missing"):
        check_cifar_c({"dataset": "cifar10"}, tmp_path)
    # the files hold every class of the test split: a class subset (renumbered labels) or a
    # clean accuracy on held-out training images would be compared with other images
    with pytest.raises(UserError, match=r"^--cifar-c: the files hold every cifar10 class, and "
                                        r"this run was trained on classes \[5, 6\]"):
        check_cifar_c({"dataset": "cifar10", "classes": [5, 6]}, tmp_path)
    with pytest.raises(UserError, match=r"held-out part of the training split \(val_fraction "):
        check_cifar_c({"dataset": "cifar10", "val_fraction": 0.1}, tmp_path)


def test_eval_into_the_folder_of_a_run_in_progress_is_refused_first(trained_run, capsys):
    # Was: the whole evaluation ran, then its writes waited, without a word, for the run's lock
    # (released only when the run ends)
    from robustrep.tasks.cli import main
    from robustrep.tasks.common.runlock import RunLock
    training = RunLock(trained_run / ".lock").acquire()  # the run, still training
    try:
        code = main(["classify", "eval", str(trained_run), "--out", str(trained_run),
                     "--attacks", "pgd", "--quiet"])
    finally:
        training.release()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"--out {trained_run} is the folder of a run in progress (pid " in err
    assert not (trained_run / "report.json").exists()


@pytest.mark.parametrize("how", ["run", "model"])
def test_a_data_root_for_the_built_in_digits_is_refused_before_the_model_loads(
        how, trained_run, tmp_path, monkeypatch, capsys):
    # Was: refused only after the model had loaded (--pretrained weights fetched first), by the
    # config's check, whose line told a run's user to set --dataset, which eval RUN refuses
    from robustrep.tasks.classify import evaluate
    from robustrep.tasks.cli import main

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(evaluate, "_load", no_load)
    model = ["--model", "test_resnet", "--checkpoint",
             str(trained_run / "checkpoints" / "latest.pt")]
    source = [str(trained_run)] if how == "run" else model
    assert main(["classify", "eval", *source, "--data-root", str(tmp_path), "--attacks", "none",
                 "--corruptions", "--quiet", "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not (tmp_path / "eval").exists()
    if how == "run":
        assert (f"--data-root: {trained_run} was trained on the built-in digits data, which is "
                f"read from no folder; drop --data-root (it applies to runs on cifar10, ") in err
    else:
        assert ("--data-root applies only with --dataset cifar10 or cifar100 or svhn or "
                "imagefolder (dataset is 'digits', built in); drop it or set that option") in err


def test_a_ctrl_c_while_the_report_is_written_waits_for_its_diagrams(trained_run, tmp_path,
                                                                    monkeypatch, capsys):
    # was: stopped between report.json and the diagrams it names, saying all was well
    import os
    import signal

    from robustrep.tasks.classify import report_files
    from robustrep.tasks.cli import main
    from robustrep.tasks.common.runfiles import write_atomic

    def reliability_diagram(confidence, accuracy, counts, path, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        write_atomic(path, lambda handle: handle.write(b"png"))
    monkeypatch.setattr(report_files, "reliability_diagram", reliability_diagram)
    monkeypatch.setattr(report_files, "bar_table",
                        lambda rows, path, **kwargs: write_atomic(path, lambda handle: None))
    out = tmp_path / "eval"
    assert main(["classify", "eval", str(trained_run), "--attacks", "none", "--corruptions",
                 "--max-samples", "8", "--quiet", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustrep classify eval: interrupted (Ctrl-C); it stopped once it had written the report "
        f"in {out}, each file whole")
    files = json.loads((out / "report.json").read_text())["files"]
    assert all(os.path.isfile(path) for path in files.values())
