"""No training run starts in another command's output folder (eval_records.check_no_output),
and no evaluation writes into a stopped one of another command (eval_records.check_own_kind).

Was: ``gan train --out B`` (or ``classify train``) into an ``ood bench`` folder, an ``ood score``
or ``classify eval`` folder trained there, exit 0; that command then refused its own folder as
"the folder of a robustrep run" (config.json)."""

import json
from pathlib import Path

import pytest

from robustrep.tasks.cli import main

# each command's output folder, as the record it is known by (and what the record holds)
FOLDERS = {
    "ood score": ("results.json", {"detectors": [], "results": []}),
    "ood bench": ("bench.json", {"regs": [], "summary": {}}),
    "ood bench stopped": ("runs/train.log", None),
    "report stopped": ("report_options.json", {"settings": {}, "quick": True}),
    "report": ("report.json", {"info": {}, "runs": []}),
    "classify eval": ("report.json", {"clean": {}, "summary": {}}),
    "gan eval": ("eval.json", {"step": 2, "reg": "none"}),
    "gan eval --no-ema": ("eval-noema.json", {"step": 2, "reg": "none"}),
}
WRITER = {"ood bench stopped": "ood bench", "report stopped": "report",
          "gan eval --no-ema": "gan eval"}
TRAIN = {"gan": ["--preset", "grid-mlp"], "classify": ["--preset", "smoke"]}


@pytest.mark.parametrize("kind", list(FOLDERS))
@pytest.mark.parametrize("program", list(TRAIN))
def test_a_run_is_not_started_in_another_commands_output_folder(program, kind, tmp_path,
                                                                error_line):
    out = tmp_path / "out"
    name, record = FOLDERS[kind]
    (out / name).parent.mkdir(parents=True)
    (out / name).write_text("step 1\n" if record is None else json.dumps(record))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main([program, "train", *TRAIN[program], "--steps", "1", "--out", str(out)]) == 2
    assert error_line() == (f"robustrep {program} train: error: --out {out} holds the output "
                            f"of robustrep {WRITER.get(kind, kind)} ({name}); give --out a new "
                            f"folder")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_a_report_json_of_neither_command_names_both(tmp_path, error_line):
    (tmp_path / "report.json").write_text("my notes\n")
    assert main(["gan", "train", "--preset", "grid-mlp", "--steps", "1", "--out",
                 str(tmp_path)]) == 2
    assert "holds the output of robustrep report or classify eval (report.json)" in error_line()


# the record a stopped report (bench) writes before its first result, and what it marks
STOPPED = {"report_options.json": ("the folder of a robustrep report",
                                   '{"settings": {}, "quick": true}'),
           "runs/train.log": ("the folder of an ood bench", "$ robustrep classify train\n")}
# each command that writes into a folder of its own, and its options but --out
EVALUATIONS = {"ood score": ["ood", "score", "RUN", "--ood", "gaussian", "--detectors",
                             "MaxSoftmax", "--device", "cpu", "--quiet"],
               "classify eval": ["classify", "eval", "RUN", "--attacks", "none", "--device",
                                 "cpu", "--quiet"],
               "ood bench": ["ood", "bench", "--regs", "none", "--seeds", "0", "--model",
                             "test_resnet", "--ood", "gaussian", "--detectors", "MaxSoftmax",
                             "--device", "cpu", "--quiet"],
               "report": ["report", "--quick", "--dry-run"]}


@pytest.fixture
def classify_run(tmp_path):
    """A run folder as `robustrep classify train` writes it: test_resnet on digits 0-2 at
    1x16x16, untrained."""
    import torch

    from robustrep.tasks.common.classifier import create_classifier
    net = create_classifier("test_resnet", 3, in_chans=1).eval()
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({
        "model": "test_resnet", "num_classes": 3, "dataset": "digits", "image_size": 16,
        "channels": 1, "data_root": None, "classes": [0, 1, 2], "drop_rate": 0.0,
        "mean": net.mean.flatten().tolist(), "std": net.std.flatten().tolist()}))
    torch.save({"step": 0, "model": net.state_dict(), "ema": None},
               run / "checkpoints" / "latest.pt")
    return run


@pytest.mark.parametrize("program, name", [
    ("ood score", "report_options.json"), ("ood score", "runs/train.log"),
    ("classify eval", "report_options.json"), ("classify eval", "runs/train.log"),
    ("ood bench", "report_options.json"), ("report", "runs/train.log")])
def test_a_stopped_folder_of_another_command_is_refused(program, name, classify_run, tmp_path,
                                                        monkeypatch, error_line):
    """Was: a report stopped before its page (report_options.json alone) or a bench during its
    first training (runs/train.log) took an ood score's files (a classify eval's, a report's, a
    bench's) beside its own, as its finished folder did not (report.json, bench.json)."""
    from robustrep.tasks.common import launch

    def no_child(*args, **kwargs):
        raise AssertionError("a bench started a training run before the refusal")

    monkeypatch.setattr(launch, "check_robustrep", no_child)
    monkeypatch.setattr(launch, "run_robustrep", no_child)
    out = tmp_path / "out"
    kind, record = STOPPED[name]
    (out / name).parent.mkdir(parents=True)
    (out / name).write_text(record)
    argv = [str(classify_run) if a == "RUN" else a for a in EVALUATIONS[program]]
    assert main([*argv, "--out", str(out)]) == 2
    line = error_line()
    assert (f"robustrep {program}: error: --out {out} is {kind} (it holds {name}); {program} "
            f"writes only into a folder of its own: ") in line
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == sorted(
        {name, str(Path(name).parent)} - {"."})
