"""The files of a ``classify eval`` report folder (tasks/classify/report_files.py): the report
written before its diagrams, and the note on the earlier report it replaces."""

import json
from pathlib import Path

import pytest


def test_a_stop_while_drawing_leaves_the_report_written_first(tmp_path, monkeypatch):
    # Was: the diagrams first, report.json last: a stop between them left reliability.png
    # alone in RUN/eval, and the next `classify eval RUN` refused it as the user's file
    from robustrep.tasks.classify import report_files
    from robustrep.tasks.common.output_paths import check_replaceable

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_files, "reliability_diagram", stop)
    report = {"clean": {"bins": {"confidence": [0.5], "accuracy": [1.0], "count": [3]},
                        "ece": 0.5}, "summary": {}, "corruptions": {"contrast": {1: 0.5}}}
    with pytest.raises(KeyboardInterrupt):
        report_files.write_report(report, tmp_path, "m")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["files"] == {"report": str(tmp_path / "report.json"),
                              "reliability": str(tmp_path / "reliability.png"),
                              "corruptions": str(tmp_path / "corruptions.png")}
    check_replaceable(tmp_path / "report.json", ("clean", "summary"), "classify eval", "--out",
                      companions=("reliability.png", "corruptions.png"))  # the next eval goes on


def test_the_replaced_note_names_another_run_but_not_the_same_run_written_otherwise(
        tmp_path, monkeypatch):
    from robustrep.tasks.classify.report_files import replaced_note
    monkeypatch.chdir(tmp_path)
    old = {"run": "runs/a", "model": "m", "weights": "ema", "step": 4, "dataset": "digits",
           "split": "test", "clean": {}, "summary": {}, "n": 8}
    same = {**old, "run": str(tmp_path / "runs" / "a")}  # ./runs/a, absolute: one run
    assert replaced_note(Path("r.json"), same, old) is None
    # another run's report is refused before any work (test_eval_records.py); a --model's
    # (run null) replaced by a run's is noted
    assert replaced_note(Path("r.json"), {**old, "run": "runs/b", "step": 6},
                         {**old, "run": None, "weights": "w.pt"}) == (
        "r.json replaced: it held the report of another evaluation (run None -> 'runs/b'; "
        "weights 'w.pt' -> 'ema'; step 4 -> 6); give --out a new folder to keep both")


def test_the_replaced_note_counts_the_attacks_on_the_samples_they_ran_on():
    """Was: "it held corruption_acc, fgsm_acc on 359 samples", FGSM having run on 8 of them."""
    from robustrep.tasks.classify.report_files import replaced_note
    old = {"run": None, "model": "m", "clean": {}, "n": 359, "n_attack": 8,
           "robust": {"fgsm": {}}, "summary": {"clean_acc": 0.9, "fgsm_acc": 0.5,
                                               "corruption_acc": 0.7, "robust_acc": 0.5}}
    new = {**old, "n_attack": 359, "summary": {"clean_acc": 0.9, "fgsm_acc": 0.4}}
    assert replaced_note(Path("r.json"), new, old) == (
        "r.json replaced: it held fgsm_acc on 8 samples, corruption_acc on 359 samples; this "
        "one holds fgsm_acc on 359 samples")
