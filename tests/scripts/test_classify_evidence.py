"""scripts/classify_evidence.py: a finished run without its evaluation is evaluated, not trained
again (a folder of finished runs can be scored with other attacks), and the table shows only
the columns some run measured, its footnote only the attacks that ran."""

import json
import types

import pytest

from .test_script_options import load


def _finished(folder, train_s=76.5):
    folder.mkdir()
    (folder / "finished.json").write_text('{"step": 300, "steps": 300}')
    (folder / "metrics.jsonl").write_text(
        json.dumps({"step": 300, "loss": 0.1, "train_s": train_s}) + "\n"
        + json.dumps({"step": 300, "eval/acc": 0.99}) + "\n")


def test_a_finished_run_is_not_trained_again(tmp_path, monkeypatch):
    script = load("classify_evidence")
    _finished(tmp_path / "pgd-s0")
    assert script.trained_seconds(tmp_path / "pgd-s0") == 76.5
    assert script.trained_seconds(tmp_path / "cut") is None  # never finished: trained
    monkeypatch.setattr(script, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    monkeypatch.setattr(script, "evaluate_run",  # as it does, it writes RUN/eval
                        lambda folder, **kw: (folder / "eval").mkdir() or {"summary": {}})
    args = types.SimpleNamespace(eps=8 / 255, attacks="autoattack", n_attack=10)
    report = script.run_one(args, "pgd", 0, tmp_path / "pgd-s0")
    assert report["summary"]["train_s"] == 76.5
    assert json.loads((tmp_path / "pgd-s0" / "eval" / "report.json").read_text()) == report


def test_the_table_leaves_out_what_no_run_measured():
    script = load("classify_evidence")
    args = types.SimpleNamespace(model="test_resnet", steps=300, batch_size=64, lr=0.05,
                                 eps=8 / 255, n_attack=100)
    row = {"clean_acc": (0.99, 0.01, 3), "pgd20_acc": (0.5, None, 1)}
    text = script.markdown({"none": row}, args)
    assert text.splitlines()[:3] == ["| regularizer | clean acc | PGD-20 acc | seeds |",
                                     "|---|---|---|---|",
                                     "| none | 0.990 ± 0.010 | 0.500 ± n/a | 3 |"]
    assert "AutoAttack" not in text
    row["autoattack_acc"] = (0.2, 0.1, 3)
    assert "AutoAttack = standard version" in script.markdown({"none": row}, args)


def test_a_run_trained_with_other_settings_is_not_reused(tmp_path, capsys):
    """Was: evaluated and labelled with this call's --steps/--lr (the review's repro)."""
    script = load("classify_evidence")
    _finished(tmp_path / "none-s0")
    (tmp_path / "none-s0" / "config.json").write_text(json.dumps(
        {"model": "test_resnet", "steps": 2, "batch_size": 64, "lr": 0.05}))
    args = types.SimpleNamespace(model="test_resnet", steps=40, batch_size=64, lr=0.05,
                                 eps=8 / 255, attacks="fgsm", n_attack=4)
    with pytest.raises(SystemExit) as stop:
        script.run_one(args, "none", 0, tmp_path / "none-s0")
    assert str(stop.value) == (f"error: {tmp_path / 'none-s0'} was trained with steps 2, not "
                               f"--steps 40; give another --out")
