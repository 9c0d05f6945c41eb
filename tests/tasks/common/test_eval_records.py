"""No training run starts in another command's output folder (eval_records.check_no_output).

Was: ``gan train --out B`` (or ``classify train``) into an ``ood bench`` folder, an ``ood score``
or ``classify eval`` folder trained there, exit 0; that command then refused its own folder as
"the folder of a robustrep run" (config.json)."""

import json

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
