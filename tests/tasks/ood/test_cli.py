"""`robustrep ood ...` end to end on a fake run folder; --help, --list and the error paths."""

import json
import os
import shutil
import signal

import pytest

from robustrep.tasks.cli import main


@pytest.mark.parametrize("argv", [["ood", "--help"], ["ood", "score", "--help"],
                                  ["ood", "bench", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: robustrep ood" in capsys.readouterr().out


def test_bench_help_says_what_its_seed_seeds(capsys):
    # Was: "--seed: seed of every random number generator" while the runs train with --seeds
    from robustrep.tasks.ood.config import BenchOptions
    with pytest.raises(SystemExit):
        main(["ood", "bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--seed SEED seed of every random number generator (default: 0; of the scoring: the " \
        "noise and photo OOD sets. Each run is trained with its seed from --seeds)" in text
    assert BenchOptions().seed == 0


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
    assert header == ("detector,ood,AUROC_fraction,AUPR-IN_fraction,AUPR-OUT_fraction,"
                      "fpr95_id_tpr_fraction,fpr95_ood_tpr_fraction,error")
    for ood in ("digits59", "gaussian"):
        assert (out / f"roc_{ood}.png").stat().st_size > 0
        assert (out / f"hist_{ood}.png").stat().st_size > 0


def test_the_pictures_are_counted_unless_quiet(fake_run, tmp_path, capsys):
    # Was: about half of a small call's time drawing them, without a word
    argv = ["ood", "score", str(fake_run), "--ood", "digits59", "gaussian", "--detectors",
            "MaxSoftmax", "--max-samples", "8", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert "pictures: OOD set 2/2 (100%)" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "pictures" not in capsys.readouterr().err


def test_no_ema_on_a_run_without_ema_says_so(fake_run, tmp_path, capsys):
    # Was: silent; --no-ema scored the raw weights, as the call without it does on such a run
    argv = ["ood", "score", str(fake_run), "--ood", "gaussian", "--detectors", "MaxSoftmax",
            "--max-samples", "8", "--no-plots", "--quiet", "--device", "cpu"]
    note = f"note: --no-ema: {fake_run} keeps no EMA copy (trained with ema_decay 0)"
    assert main([*argv, "--out", str(tmp_path / "a"), "--no-ema"]) == 0
    assert note in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0  # not asked for
    assert "--no-ema" not in capsys.readouterr().err


def test_score_removes_the_temp_files_a_killed_call_left_in_its_folder(fake_run, tmp_path):
    out = fake_run / "ood"  # the default folder
    out.mkdir()
    stale = [out / ".results.json.a1b2.tmp", out / ".roc_gaussian.png.c3d4.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    assert main(["ood", "score", str(fake_run), "--ood", "gaussian", "--detectors", "MaxSoftmax",
                 "--max-samples", "8", "--quiet", "--device", "cpu"]) == 0
    assert not any(p.exists() for p in stale) and (out / "results.json").is_file()


@pytest.mark.parametrize("argv", [
    ["ood", "score"],  # was: "give a run folder RUN, or --model NAME ..."
    ["ood", "score", "--model", "test_resnet"],  # was: "--model needs its weights: ..."
    ["ood", "bench", "--regs", "nope", "--out", "notes.txt"],  # was: --regs's, --out's
    ["ood", "bench", "--seeds", "0", "0"],  # was: "--seeds: seed 0 is given twice"
])
def test_detector_names_are_checked_before_the_command_begins(argv, tmp_path, monkeypatch,
                                                              capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    for detectors, error in (("MaxSoftmax,Nope", "unknown detector 'Nope'; valid detectors "
                                                 "(pytorch-ood "),
                             ("KNN,,ODIN", "--detectors must be detector names separated by "
                                           "commas, or all; got 'KNN,,ODIN' (an empty item)")):
        assert main([*argv, "--detectors", detectors, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"robustrep ood {argv[1]}: error: {error}"), err
        assert err.count("\n") == 1, err
    assert main([*argv, "--detectors", "KNN", "--param", "KNN.kk=1", "--quiet"]) == 2
    assert "KNN has no settable parameter 'kk'" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


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


def test_a_class_folder_named_train_is_refused_in_one_line(fake_run, tmp_path, capsys):
    """Was: --id imagefolder:v of v/{bus,car,train}/ scored v/train/ alone as the ID test set
    (called "a flat folder (no class subfolders)"); as --ood it was a traceback."""
    from PIL import Image
    for name in ("bus", "car", "train"):
        (tmp_path / "v" / name).mkdir(parents=True)
        Image.new("L", (16, 16)).save(tmp_path / "v" / name / "0.png")
    folder = f"imagefolder:{tmp_path / 'v'}"
    for sets in (["--id", folder, "--ood", "gaussian"], ["--ood", folder]):
        assert main(["ood", "score", str(fake_run), *sets, "--detectors", "MaxSoftmax",
                     "--device", "cpu", "--out", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"robustrep ood score: error: {tmp_path / 'v'} holds train/ "
                              f"beside bus/, car/, none an evaluation split"), err
        assert err.count("\n") == 1, err


def _openood_layout(root, n=6):
    """OpenOOD v1.5's data folder for cifar10, in miniature: 1x16x16 PNGs under images_classic/
    and every list of configs/datasets/cifar10/cifar10{,_ood}.yml under benchmark_imglist/."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    lists = root / "benchmark_imglist" / "cifar10"
    lists.mkdir(parents=True)
    # OOD set j: its first j images look like ID ones, so every set scores differently
    sets = {"train_cifar10": 0, "test_cifar10": 0, "test_cifar100": 1, "test_tin": 2,
            "test_mnist": 3, "test_svhn": 4, "test_texture": 0, "test_places365": 5}
    for name, id_like in sets.items():
        folder = root / "images_classic" / name
        folder.mkdir(parents=True)
        lines = []
        for i in range(n if name != "train_cifar10" else 3 * n):
            level = 0 if name.endswith("_cifar10") or i < id_like else 200
            pixels = (level + rng.integers(0, 50, (16, 16))).astype(np.uint8)
            Image.fromarray(pixels, "L").save(folder / f"{i}.png")
            label = i % 3 if name.endswith("_cifar10") else -1
            lines.append(f"{name}/{i}.png {label}")
        (lists / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_openood_benchmark_near_far_groups(fake_run, tmp_path, capsys):
    data = _openood_layout(tmp_path / "openood" / "data")
    out = tmp_path / "out"
    run = tmp_path / "cifar10-run"  # OpenOOD's cifar10 lists are the ID data of a cifar10 run
    shutil.copytree(fake_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(dict(config, dataset="cifar10")))
    assert main(["ood", "score", str(run), "--openood", str(data), "--openood-id", "cifar10",
                 "--detectors", "MaxSoftmax,KNN", "--param", "KNN.k=2", "--out", str(out),
                 "--no-plots", "--quiet", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "fpr95_id_tpr" in printed and "share of OOD samples accepted" in printed
    result = json.loads((out / "results.json").read_text())
    assert result["groups"] == {"near": ["cifar100", "tin"],
                                "far": ["mnist", "svhn", "texture", "places365"]}
    assert result["sizes"] == {"id_test": 6, "id_train": 18, "cifar100": 6, "tin": 6,
                               "mnist": 6, "svhn": 6, "texture": 6, "places365": 6}
    rows = {(r["detector"], r["ood"]): r for r in result["results"]}
    for det in ("MaxSoftmax", "KNN"):
        for group, names in result["groups"].items():
            mean_row = rows[(det, f"{group}-OOD (mean)")]
            for metric in ("AUROC", "fpr95_id_tpr", "fpr95_ood_tpr", "AUPR-IN"):
                want = sum(rows[(det, n)][metric] for n in names) / len(names)
                assert mean_row[metric] == pytest.approx(want, abs=1e-12)
    # --ood in place of the benchmark's sets: said (was silent, its record naming --openood)
    assert main(["ood", "score", str(run), "--openood", str(data), "--openood-id", "cifar10",
                 "--ood", "gaussian", "--detectors", "MaxSoftmax", "--out", str(tmp_path / "g"),
                 "--no-plots", "--quiet", "--device", "cpu"]) == 0
    assert ("--ood gaussian replaces OpenOOD's near- and far-OOD sets of cifar10: --openood "
            "gives only the ID test and fit lists here") in capsys.readouterr().err
    # a list missing from the layout is named before anything is scored
    for a, b in (("cifar100", "tin"), ("texture", "mnist")):  # the means average unequal values
        assert rows[("MaxSoftmax", a)]["AUROC"] != rows[("MaxSoftmax", b)]["AUROC"]
    (data / "benchmark_imglist" / "cifar10" / "test_tin.txt").unlink()
    assert main(["ood", "score", str(run), "--openood", str(data / "benchmark_imglist"),
                 "--openood-id", "cifar10", "--quiet"]) == 2
    assert "test_tin.txt not found" in capsys.readouterr().err
    assert main(["ood", "score", str(fake_run), "--openood", str(data), "--quiet"]) == 2
    assert "no ID dataset 'digits'" in capsys.readouterr().err  # the run's dataset is digits


def test_an_ood_set_given_twice_is_refused(tmp_path, capsys):
    # Was: scored once, as if given once (bench refused it)
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--ood", "gaussian", "photos",
                 "gaussian"]) == 2
    assert capsys.readouterr().err == ("robustrep ood score: error: --ood: OOD set gaussian is "
                                       "given twice; give each OOD set once\n")


def test_results_table_escapes_a_bar_in_a_name():
    from robustrep.tasks.ood.outputs import format_table
    from robustrep.tasks.ood.results import DetectorResult, ScoreResult
    result = ScoreResult({"MSP": DetectorResult("MSP", metrics={"a|b": {}})}, ["a|b"], None, {},
                         0.0)
    row = format_table(result).splitlines()[2]
    assert row.startswith("| MSP | a\\|b | ")


def test_a_sigterm_while_the_results_are_written_waits_for_the_whole_set(fake_run, tmp_path,
                                                                         monkeypatch, capsys):
    # was: exit 143 between results.json and results.csv, the stop line saying all was well
    from robustrep.tasks.ood import outputs
    original = outputs.write_fraction_csv

    def write_fraction_csv(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)
    monkeypatch.setattr(outputs, "write_fraction_csv", write_fraction_csv)
    out = tmp_path / "ood"
    assert main(["ood", "score", str(fake_run), "--ood", "gaussian", "--detectors", "MaxSoftmax",
                 "--max-samples", "8", "--quiet", "--device", "cpu", "--out", str(out)]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"robustrep ood score: stopped by SIGTERM; it stopped once it had written the results in "
        f"{out}, each file whole")
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == [
        "hist_gaussian.png", "results.csv", "results.json", "results.md", "roc_gaussian.png",
        "scores.pt"]
    assert "MaxSoftmax,gaussian," in (out / "results.csv").read_text()
