import json

import pytest

from robustrep.tasks.cli import main


@pytest.mark.parametrize("command", ["train", "eval"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["classify", command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert ("--reg" in out and "--preset" in out) if command == "train" else "--pgd-steps" in out


def test_dry_run_prints_resolved_config(capsys):
    assert main(["classify", "train", "--preset", "digits-ood", "--reg", "mixup,pgd",
                 "--classes", "0,1,2", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["classes"] == [0, 1, 2] and cfg["reg"] == "mixup,pgd"
    assert cfg["preset"] == "digits-ood"


def test_bad_input_is_a_clean_error(capsys):
    assert main(["classify", "train", "--model", "resnet10", "--steps", "1", "--run-dir",
                 "/nonexistent/x", "--quiet"]) == 2
    assert "close matches" in capsys.readouterr().err
    assert main(["classify", "train", "--reg", "pdg", "--dry-run"]) == 2
    assert "valid: none, mixup" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", "train", "--optimizer", "lion"])
    assert "invalid choice" in capsys.readouterr().err


def test_train_then_eval_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["classify", "train", "--preset", "smoke", "--steps", "2", "--image-size", "16",
                 "--classes", "0,1", "--run-dir", str(run), "--quiet"]) == 0
    assert main(["classify", "eval", str(run), "--attacks", "pgd", "--pgd-steps", "2",
                 "--severities", "1", "--max-samples", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "clean top-1" in out and "PGD-2" in out and (run / "eval" / "report.json").is_file()


def test_resume_refuses_a_changed_config(trained_run, capsys):
    assert main(["classify", "train", "--resume", str(trained_run), "--lr", "0.5",
                 "--quiet"]) == 2
    assert "differ from it: lr" in capsys.readouterr().err
