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
    assert "valid: none, adaptivemix, cutmix" in capsys.readouterr().err
    assert main(["classify", "train", "--optimizer", "lino", "--dry-run"]) == 2  # timm's names
    assert "--optimizer lino: timm cannot build it" in capsys.readouterr().err


def test_train_then_eval_from_the_command_line(tmp_path, capsys, undrawn_diagrams):
    run = tmp_path / "run"
    assert main(["classify", "train", "--preset", "smoke", "--steps", "2", "--image-size", "16",
                 "--classes", "0,1", "--run-dir", str(run), "--quiet"]) == 0
    assert main(["classify", "eval", str(run), "--attacks", "pgd", "--pgd-steps", "2",
                 "--severities", "1", "--max-samples", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "clean top-1" in out and "PGD-2" in out and (run / "eval" / "report.json").is_file()
    # another evaluation into the run says what it replaced (report --collect reads the file)
    assert main(["classify", "eval", str(run), "--attacks", "fgsm", "--corruptions", "none",
                 "--max-samples", "6", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"note: {run / 'eval' / 'report.json'} replaced: it held corruption_acc, pgd2_acc " \
           f"on 8 samples; this one holds fgsm_acc on 6 samples" in err
    assert main(["classify", "eval", str(run), "--attacks", "fgsm", "--corruptions", "none",
                 "--max-samples", "6", "--quiet"]) == 0
    assert "replaced" not in capsys.readouterr().err  # the same measurement again: no note


def test_resume_refuses_a_changed_config(trained_run, capsys):
    assert main(["classify", "train", "--resume", str(trained_run), "--label-smoothing", "0.5",
                 "--quiet"]) == 2
    assert "differ from it: label_smoothing (--label-smoothing)" in capsys.readouterr().err


def test_resume_with_a_lower_learning_rate_applies_it(tiny_cfg, tmp_path):
    import math

    from robustrep.tasks.classify.train import train
    from robustrep.tasks.common.checkpoint import load_checkpoint
    run = tmp_path / "run"
    train(tiny_cfg(steps=2, ckpt_every=2, lr=0.05), run, quiet=True)
    assert main(["classify", "train", "--resume", str(run), "--steps", "4", "--lr", "0.01",
                 "--momentum", "0.5", "--quiet"]) == 0
    state = load_checkpoint(run / "checkpoints" / "latest.pt", map_location="cpu")
    groups = state["optimizer"]["param_groups"]
    assert state["step"] == 4 and [g["initial_lr"] for g in groups] == [0.01, 0.01]
    assert groups[0]["momentum"] == 0.5
    # cosine over the new 4 steps: the 4th update at 0.01 * (1 + cos(pi * 3/4)) / 2 (the old lr
    # 0.05 would give 5x that), logged with step 4, the update that used it
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    lr4 = next(r["lr"] for r in logged if r.get("step") == 4 and "lr" in r)
    assert math.isclose(lr4, 0.01 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))


def test_a_resumes_changed_options_are_recorded_in_the_run_folder(tiny_cfg, tmp_path, capsys):
    """config.json was rewritten with the resume's --lr, the run's own 0.05 lost: the folder
    said the whole run trained at 0.01. resumes.json keeps the step and both values."""
    from robustrep.tasks.classify.train import train
    run = tmp_path / "run"
    train(tiny_cfg(steps=2, ckpt_every=2, lr=0.05), run, quiet=True)
    assert main(["classify", "train", "--resume", str(run), "--steps", "3", "--lr", "0.01",
                 "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["lr"] == 0.01
    changed = {"steps": {"old": 2, "new": 3}, "lr": {"old": 0.05, "new": 0.01}}
    assert json.loads((run / "resumes.json").read_text()) == [{"step": 2, "changed": changed}]
    notes = [line for line in capsys.readouterr().err.splitlines() if "resumed" in line]
    assert notes == [f"note: {run} resumed at step 2 with steps 2 -> 3, lr 0.05 -> 0.01 "
                     f"(config.json holds the new values, resumes.json the old)"]


def test_resume_refuses_another_number_of_processes(tiny_cfg, tmp_path, capsys):
    """--batch-size is per process: a 2-process run resumed alone would halve its batch."""
    import torch

    from robustrep.tasks.classify.train import train
    run = tmp_path / "run"
    train(tiny_cfg(steps=2, ckpt_every=2, reg="mixup"), run, quiet=True)
    latest = run / "checkpoints" / "latest.pt"
    state = torch.load(latest, weights_only=True)
    assert state["world_size"] == 1 and len(state["ranks"]) == 1
    assert torch.equal(state["ranks"][0]["rng"]["generators"]["train"],
                       state["rng"]["generators"]["train"])
    state["world_size"] = 2  # as a torchrun run of two processes saves it
    torch.save(state, latest)
    capsys.readouterr()
    assert main(["classify", "train", "--resume", str(run), "--steps", "4"]) == 2
    batch = tiny_cfg().batch_size
    assert capsys.readouterr().err == (
        f"robustrep classify train: error: {run} was trained with 2 process(es) and is resumed "
        f"with 1: --batch-size is per process, so the global batch would change from {2 * batch} "
        f"to {batch}; resume with 2 process(es)\n")


def test_resume_refuses_weight_decay_between_zero_and_positive(tiny_cfg, tmp_path, capsys):
    from robustrep.tasks.classify.train import train
    run = tmp_path / "run"
    train(tiny_cfg(steps=2, ckpt_every=2, weight_decay=5e-4), run, quiet=True)
    assert main(["classify", "train", "--resume", str(run), "--steps", "4",
                 "--weight-decay", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--weight-decay cannot change between 0" in err
