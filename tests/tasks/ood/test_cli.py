"""`robustrep ood ...` end to end on a fake run folder; --help, --list and the error paths."""

import json

import pytest

from robustrep.tasks.cli import main


@pytest.mark.parametrize("argv", [["ood", "--help"], ["ood", "score", "--help"],
                                  ["ood", "bench", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: robustrep ood" in capsys.readouterr().out


def test_list_shows_every_detector(capsys):
    assert main(["ood", "score", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("MaxSoftmax", "EnergyBased", "ODIN", "Mahalanobis", "ViM", "KNN", "ReAct",
                 "ASH", "GradNorm", "MCM"):
        assert name in out
    assert "yes, on features" in out and "UNSUPPORTED" in out and "text_embeddings" in out


def test_score_writes_table_json_csv_and_plots(fake_run, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["ood", "score", str(fake_run), "--ood", "digits59", "gaussian",
                 "--detectors", "MaxSoftmax,KNN,ReAct,ODIN", "--param", "KNN.k=5",
                 "--max-samples", "24", "--max-fit", "40", "--out", str(out), "--quiet",
                 "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "| KNN | gaussian |" in printed and "ID test accuracy" in printed
    data = json.loads((out / "results.json").read_text())
    assert data["id"] == "digits" and data["sizes"]["id_train"] == 40
    assert {r["detector"] for r in data["results"]} == {"MaxSoftmax", "KNN", "ReAct", "ODIN"}
    assert all(0 <= r["AUROC"] <= 1 for r in data["results"])
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header == "detector,ood,AUROC,AUPR-IN,AUPR-OUT,fpr95_id_tpr,fpr95_ood_tpr,error"
    for ood in ("digits59", "gaussian"):
        assert (out / f"roc_{ood}.png").stat().st_size > 0
        assert (out / f"hist_{ood}.png").stat().st_size > 0


def test_errors_are_clear(fake_run, tmp_path, capsys):
    assert main(["ood", "score", str(fake_run), "--detectors", "Nope", "--quiet"]) == 2
    assert "unknown detector 'Nope'" in capsys.readouterr().err
    assert main(["ood", "score", str(fake_run), "--ood", "mnist", "--quiet"]) == 2
    assert "unknown dataset 'mnist'; valid names:" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["ood", "score", str(empty), "--quiet"]) == 2
    assert "not a robustrep run folder: no config.json" in capsys.readouterr().err
    (empty / "config.json").write_text(json.dumps({"model": "test_resnet", "num_classes": 3,
                                                   "channels": 1, "mean": [0.5], "std": [0.5]}))
    assert main(["ood", "score", str(empty), "--quiet"]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
    gan = tmp_path / "gan"
    gan.mkdir()
    (gan / "config.json").write_text(json.dumps({"loss": "hinge"}))
    assert main(["ood", "score", str(gan), "--quiet"]) == 2
    assert "does not hold a classifier run" in capsys.readouterr().err
    assert main(["ood", "score"]) == 2
    assert "give a run folder" in capsys.readouterr().err
