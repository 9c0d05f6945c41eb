"""What the OOD program's files and lines say of their numbers: each file its own unit
(results.json/.csv and bench.json/.csv fractions, the terminal and results.md percent), which
weights were scored, and what the run, its ID accuracy and its sets were."""

import csv
import json
import math

import torch

from robustrep.tasks.cli import main


def _score(run, out, *extra):
    return main(["ood", "score", str(run), "--ood", "gaussian", "--detectors", "MaxSoftmax",
                 "--max-samples", "12", "--no-plots", "--quiet", "--device", "cpu",
                 "--out", str(out), *extra])


def test_each_results_file_states_its_own_unit(fake_run, tmp_path, capsys):
    # Was: results.json's fpr_conventions said "percent" beside its fractions (AUROC 0.4634),
    # and results.csv named no unit
    assert _score(fake_run, tmp_path / "o") == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["units"] == "fraction of 1"
    assert data["fpr_conventions"].endswith("as fractions of 1 (0.95 = 95%).")
    assert "percent" not in data["fpr_conventions"]
    with open(tmp_path / "o" / "results.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    auroc = data["results"][0]["AUROC"]
    assert 0 <= float(row["AUROC_fraction"]) <= 1 and "AUROC" not in row
    assert float(row["AUROC_fraction"]) == auroc
    md = (tmp_path / "o" / "results.md").read_text()
    assert md.rstrip().endswith("Metrics and accuracies in percent.")
    assert f"| MaxSoftmax | gaussian | {100 * auroc:.2f} |" in md and md in printed


def _add_ema(run):
    """The run's checkpoint with an EMA copy of its weights, as an --ema-decay run keeps."""
    path = run / "checkpoints" / "latest.pt"
    state = torch.load(path, weights_only=True)
    state["ema"] = {k: v.clone() for k, v in state["model"].items()}
    torch.save(state, path)


def test_the_id_accuracy_names_the_weights_scored(fake_run, tmp_path, capsys):
    # Was: "ID test accuracy 54.67%" for an EMA run whose raw weights score 98.89%; only
    # results.json said "weights": "ema"
    assert _score(fake_run, tmp_path / "raw") == 0
    assert "% (raw weights); ID set digits;" in capsys.readouterr().out
    _add_ema(fake_run)
    assert _score(fake_run, tmp_path / "ema") == 0
    assert "% (EMA weights); ID set digits;" in capsys.readouterr().out
    assert _score(fake_run, tmp_path / "no-ema", "--no-ema") == 0
    assert "% (raw weights); ID set digits;" in capsys.readouterr().out


def test_results_md_opens_with_the_run_weights_accuracy_and_sizes(fake_run, tmp_path, capsys):
    # Was: the table and its legend only; results.json alone said what had been scored
    _add_ema(fake_run)
    assert _score(fake_run, tmp_path / "o") == 0
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    lines = (tmp_path / "o" / "results.md").read_text().splitlines()
    assert lines[0] == (f"# OOD scores of run {fake_run.resolve()} (test_resnet, EMA weights, "
                        f"step 0)")
    assert lines[2] == (f"ID test accuracy {100 * data['id_accuracy']:.2f}% (EMA weights); ID set "
                        f"digits; images per set: id_test 12, gaussian 12")
    assert lines[4].startswith("| detector | OOD set | AUROC |")


def test_a_model_no_run_made_is_named_by_its_weights():
    from robustrep.tasks.ood.outputs import format_header
    record = {"run": None, "model": "resnet18", "weights": "pretrained", "ema": False,
              "id": "cifar10", "id_accuracy": None, "sizes": {"id_test": 4}}
    assert format_header(record).splitlines() == [
        "# OOD scores of --model resnet18 (pretrained weights)", "",
        "ID test accuracy n/a; ID set cifar10; images per set: id_test 4"]
    record.update(weights="/w/ckpt.pth", ema=True, id_accuracy=0.5)
    assert format_header(record).startswith(
        "# OOD scores of --model resnet18 (/w/ckpt.pth, EMA weights)\n\n"
        "ID test accuracy 50.00% (EMA weights);")


def _bench_files(tmp_path):
    from robustrep.tasks.ood.bench_tables import aggregate, avg_over_ood, write_files
    records = [{"reg": "none", "seed": s, "detector": "KNN", "ood": "gaussian", "AUROC": a,
                "AUPR-IN": 0.5, "AUPR-OUT": 0.5, "fpr95_id_tpr": 0.1, "fpr95_ood_tpr": 0.2,
                "error": ""} for s, a in ((0, 0.8), (1, 0.9))]
    return write_files(tmp_path, records, aggregate(records),
                       avg_over_ood(records, ["none"], ["KNN"]), {"none": (0.9, math.nan)},
                       ["none"], ["KNN"], ["gaussian"], {"n_seeds": 2, "seeds": [0, 1]}, [],
                       "md", lambda panels, path, **kw: path)


def test_bench_json_and_csvs_state_the_conventions_of_bench_md(tmp_path):
    # Was: only bench.md said which way scores point, what each FPR holds, percent and sample
    # std; bench.json and the CSVs held fractions without a word
    files = _bench_files(tmp_path)
    data = json.loads(files["json"].read_text())
    assert data["units"] == "fraction of 1"
    for said in ("higher = more OOD", "fpr95_id_tpr: share of OOD samples accepted",
                 "fpr95_ood_tpr: share of ID samples flagged", "as fractions of 1",
                 "sample standard deviation over seeds (ddof=1"):
        assert said in data["conventions"]
    with open(files["csv"], newline="") as handle:
        row = next(csv.DictReader(handle))
    assert math.isclose(float(row["AUROC_mean_fraction"]), 0.85)
    assert math.isclose(float(row["AUROC_std_fraction"]), math.sqrt(0.005))  # ddof=1
    assert data["summary"][0]["AUROC_mean"] == float(row["AUROC_mean_fraction"])  # JSON's keys
    header = files["runs_csv"].read_text().splitlines()[0]
    assert header == ("reg,seed,detector,ood,AUROC_fraction,AUPR-IN_fraction,AUPR-OUT_fraction,"
                      "fpr95_id_tpr_fraction,fpr95_ood_tpr_fraction,error")
