"""`ood score` refuses OOD sets the classifier was trained on, and a second call into the same
output folder keeps the rows of the first (merged by detector and OOD set)."""

import json
from pathlib import Path

import pytest
import torch

from robustrep.tasks.cli import main


@pytest.fixture
def all_digits_run(tmp_path):
    """A run folder of a classifier trained on all ten digits (config classes None)."""
    from robustrep.tasks.common.classifier import create_classifier
    torch.manual_seed(0)
    model = create_classifier("test_resnet", 10, in_chans=1).eval()
    path = tmp_path / "run10"
    (path / "checkpoints").mkdir(parents=True)
    config = {"model": "test_resnet", "num_classes": 10, "dataset": "digits", "image_size": 16,
              "channels": 1, "data_root": None, "classes": None,
              "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(),
              "drop_rate": 0.0}
    (path / "config.json").write_text(json.dumps(config))
    torch.save({"step": 0, "model": model.state_dict(), "ema": None},
               path / "checkpoints" / "latest.pt")
    return path


def test_digits59_is_refused_for_a_run_trained_on_all_digits(all_digits_run, capsys):
    code = main(["ood", "score", str(all_digits_run), "--ood", "digits59", "gaussian",
                 "--detectors", "MaxSoftmax", "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--ood digits59 holds digits 5, 6, 7, 8, 9" in err and "--preset digits-ood" in err
    assert "gaussian, uniform, photos, rotated, inverted" in err
    assert not (all_digits_run / "ood").exists()  # refused before any work


def test_the_default_sets_leave_out_digits59_for_such_a_run(all_digits_run, capsys):
    assert main(["ood", "score", str(all_digits_run), "--detectors", "MaxSoftmax",
                 "--max-samples", "8", "--no-plots", "--quiet", "--device", "cpu"]) == 0
    data = json.loads((all_digits_run / "ood" / "results.json").read_text())
    assert "digits59" not in data["ood"] and "gaussian" in data["ood"]
    # was "ema": true beside "weights": "model": the run has no EMA weights to score
    assert data["weights"] == "model" and data["ema"] is False
    assert "left out the OOD set digits59" in capsys.readouterr().err


def test_an_unfinished_run_is_said_and_recorded_as_such(all_digits_run, capsys):
    # Was: a full table, exit 0, nothing in results.json telling a checkpoint at step 4 of 10
    config = json.loads((all_digits_run / "config.json").read_text())
    (all_digits_run / "config.json").write_text(json.dumps({**config, "steps": 10}))
    latest = all_digits_run / "checkpoints" / "latest.pt"
    torch.save({**torch.load(latest), "step": 4}, latest)
    argv = ["ood", "score", str(all_digits_run), "--detectors", "MaxSoftmax", "--ood", "gaussian",
            "--max-samples", "8", "--no-plots", "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    assert (f"note: {all_digits_run} is unfinished: these are the scores of its checkpoint at "
            f"step 4 of 10") in capsys.readouterr().err
    data = json.loads((all_digits_run / "ood" / "results.json").read_text())
    assert (data["step"], data["steps"]) == (4, 10)
    torch.save({**torch.load(latest), "step": 10}, latest)  # finished since
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "is unfinished" not in err and "measured under other settings (step 4 -> 10" in err


def test_a_model_from_elsewhere_is_told_to_name_its_classes(tmp_path, capsys):
    # Was, for `--model M --checkpoint F --ood digits59` without --classes (a 0-4 classifier):
    # "... which the run's classifier was trained on (dataset digits, classes all) ...; use a
    # run trained on digits 0-4 (robustrep classify train --preset digits-ood)": no run was
    # given, and the fix is --classes
    from robustrep.tasks.common.classifier import create_classifier
    torch.save(create_classifier("test_resnet", 5, in_chans=1).model.state_dict(),
               tmp_path / "m.pth")
    base = ["ood", "score", "--model", "test_resnet", "--checkpoint", str(tmp_path / "m.pth"),
            "--image-size", "16", "--detectors", "MaxSoftmax", "--quiet", "--device", "cpu",
            "--out", str(tmp_path / "out")]
    assert main(base + ["--ood", "digits59"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: --ood digits59: it holds digits 5, 6, 7, 8, 9, which the "
        "classifier was trained on (--dataset digits, every class: no --classes given), so its "
        "OOD scores would be meaningless; give --classes the labels the model was trained on "
        "(--classes 0 1 2 3 4 for digits 0-4), or another OOD set: gaussian, uniform, photos, "
        "rotated, inverted\n")
    assert main(base + ["--ood", "rotated", "--classes", "0", "1", "2"]) == 2
    assert "--ood rotated: it transforms digits 3, 4, which the classifier was not trained on " \
           "(--dataset digits, --classes 0 1 2)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(base + ["--ood", "digits59", "--classes", "0", "1", "2", "3", "4",
                        "--max-samples", "8", "--no-plots"]) == 0


def test_sets_too_large_for_memory_name_the_image_size(all_digits_run, monkeypatch, capsys):
    # Was: `--image-size 100000` gave torch's allocator's RuntimeError as a traceback
    from robustrep.tasks.ood import datasets

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 28840000000000 bytes")

    monkeypatch.setattr(datasets, "whole_id_dataset", no_memory)
    assert main(["ood", "score", str(all_digits_run), "--ood", "gaussian", "--detectors",
                 "MaxSoftmax", "--quiet", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: the run's image_size 16: the images resized to 16x16 do not "
        "fit in this machine's memory (the built-in sets are held in memory, resized); score it "
        "on a machine with more memory\n")
    assert not (all_digits_run / "ood").exists()
    from robustrep.tasks.common.errors import DataError
    with pytest.raises(DataError, match=r"^--image-size 99: the images resized to 99x99 do not "
                                        r"fit .*; give a smaller --image-size$"):
        with datasets.in_memory(99, True):  # --model's --image-size
            raise MemoryError()
    with pytest.raises(RuntimeError, match="other"):  # any other error is not hidden
        with datasets.in_memory(16, True):
            raise RuntimeError("other")


def test_a_run_on_cifar10_is_not_scored_against_cifar10(tmp_path, capsys):
    # refused from the run's config alone, before the (absent) CIFAR files are looked for
    from robustrep.tasks.common.classifier import create_classifier
    model = create_classifier("test_resnet", 10, in_chans=3).eval()
    path = tmp_path / "c10"
    (path / "checkpoints").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({
        "model": "test_resnet", "num_classes": 10, "dataset": "cifar10", "image_size": 32,
        "channels": 3, "data_root": str(tmp_path / "none"), "classes": None,
        "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist()}))
    torch.save({"step": 0, "model": model.state_dict(), "ema": None},
               path / "checkpoints" / "latest.pt")
    assert main(["ood", "score", str(path), "--ood", "cifar10", "--quiet", "--device",
                 "cpu"]) == 2
    assert "--ood cifar10 holds every cifar10 class" in capsys.readouterr().err


def _score(run, detectors, *extra):
    return main(["ood", "score", str(run), "--ood", "gaussian", "uniform", "--detectors",
                 detectors, "--max-samples", "12", "--no-plots", "--quiet", "--device", "cpu",
                 *extra])


def test_a_second_call_keeps_the_rows_of_the_first(fake_run, capsys):
    results = fake_run / "ood" / "results.json"
    assert _score(fake_run, "MaxSoftmax,EnergyBased") == 0
    first = {(r["detector"], r["ood"]): r for r in json.loads(results.read_text())["results"]}
    capsys.readouterr()
    assert _score(fake_run, "EnergyBased,Entropy", "--save-scores") == 0
    out, err = capsys.readouterr()
    data = json.loads(results.read_text())
    rows = {(r["detector"], r["ood"]): r for r in data["results"]}
    assert set(rows) == {(d, o) for d in ("MaxSoftmax", "EnergyBased", "Entropy")
                         for o in ("gaussian", "uniform")}
    assert rows["MaxSoftmax", "gaussian"] == first["MaxSoftmax", "gaussian"]
    assert set(data["detectors"]) == {"MaxSoftmax", "EnergyBased", "Entropy"}
    assert "| MaxSoftmax | gaussian |" in out and "| Entropy | uniform |" in out
    assert "replaced 2 rows" in err and "EnergyBased/gaussian, EnergyBased/uniform" in err
    csv_rows = (fake_run / "ood" / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 6
    md = (fake_run / "ood" / "results.md").read_text()
    assert "| MaxSoftmax | uniform |" in md
    # was only the FPR columns' legend: which class each area takes as positive is said too
    assert "AUROC and AUPR-OUT take OOD as the positive class, AUPR-IN takes ID" in md
    # other settings: the earlier rows cannot share the table; they are replaced, and said so
    assert _score(fake_run, "Entropy", "--seed", "1") == 0
    assert "replaced all 6 rows" in capsys.readouterr().err
    assert {r["detector"] for r in json.loads(results.read_text())["results"]} == {"Entropy"}


def test_a_results_file_that_is_not_ours_is_never_replaced(fake_run, capsys):
    (fake_run / "ood").mkdir()
    (fake_run / "ood" / "results.json").write_text('{"mine": 1}')
    assert _score(fake_run, "MaxSoftmax") == 2
    assert "is not a readable record of ood score" in capsys.readouterr().err
    assert (fake_run / "ood" / "results.json").read_text() == '{"mine": 1}'


@pytest.fixture
def drawn(monkeypatch):
    """The detectors (and AUROCs) each ROC picture is drawn with, by file name."""
    from robustrep.tasks.common import plots
    seen = {}

    def record(real):
        def draw(curves, path, **kw):
            seen[path.name] = {n: auc for n, (_, _, auc) in curves.items()}
            return real(curves, path, **kw)
        return draw

    monkeypatch.setattr(plots, "roc_curves", record(plots.roc_curves))
    return seen


@pytest.fixture
def undrawn_hists(monkeypatch):
    """The score histograms are written empty (by the same atomic writer), not drawn (0.2 s
    each), for tests that check which pictures are written or removed, not what they show;
    test_a_second_calls_pictures_show_both_calls_detectors draws them."""
    from robustrep.tasks.common import plots
    from robustrep.tasks.common.runfiles import write_atomic
    monkeypatch.setattr(plots, "histogram_grid",
                        lambda panels, path, **kw: write_atomic(path, lambda handle: None))


def _plotted(run, detectors, *extra):
    return main(["ood", "score", str(run), "--detectors", detectors, "--max-samples", "12",
                 "--quiet", "--device", "cpu", *extra])


def test_a_call_finishing_while_another_scores_keeps_its_rows(fake_run, monkeypatch, capsys):
    # Two calls into one folder at once: each read results.json at its start and wrote it back,
    # so the first to finish lost its rows, both exiting 0. The second call here runs whole
    # while the first is scoring; the first then merges under the folder's lock.
    from robustrep.tasks.ood import score
    original, inner = score.score_model, []

    def scoring_while_another_call_runs(*args, **kwargs):
        if not inner:
            inner.append("running")  # the inner call scores unpatched in effect
            inner[0] = _score(fake_run, "EnergyBased")
        return original(*args, **kwargs)
    monkeypatch.setattr(score, "score_model", scoring_while_another_call_runs)
    assert _score(fake_run, "MaxSoftmax") == 0 and inner == [0]
    data = json.loads((fake_run / "ood" / "results.json").read_text())
    assert {r["detector"] for r in data["results"]} == {"MaxSoftmax", "EnergyBased"}
    assert set(data["detectors"]) == {"MaxSoftmax", "EnergyBased"}


def test_a_second_calls_pictures_show_both_calls_detectors(fake_run, drawn, capsys):
    out = fake_run / "ood"
    assert _plotted(fake_run, "MaxSoftmax,EnergyBased", "--ood", "gaussian", "uniform") == 0
    assert _plotted(fake_run, "Entropy,EnergyBased", "--ood", "gaussian") == 0
    rows = {(r["detector"], r["ood"]): r["AUROC"]
            for r in json.loads((out / "results.json").read_text())["results"]}
    # the earlier MaxSoftmax is drawn from scores.pt, its AUROC the table's
    assert drawn["roc_gaussian.png"] == {d: pytest.approx(rows[d, "gaussian"]) for d in
                                         ("MaxSoftmax", "EnergyBased", "Entropy")}
    scores = torch.load(out / "scores.pt", weights_only=True)
    assert set(scores) == {"MaxSoftmax", "EnergyBased", "Entropy"}
    assert set(scores["MaxSoftmax"]) == {"id", "gaussian", "uniform"}
    assert set(scores["Entropy"]) == {"id", "gaussian"}
    assert (out / "roc_uniform.png").is_file() and (out / "hist_gaussian.png").is_file()


def test_pictures_of_replaced_rows_go_with_them(fake_run, undrawn_hists, capsys):
    out = fake_run / "ood"
    assert _plotted(fake_run, "MaxSoftmax", "--ood", "gaussian", "uniform") == 0
    assert (out / "roc_uniform.png").is_file() and (out / "scores.pt").is_file()
    capsys.readouterr()
    # other settings replace every row: the earlier scores and pictures are stale, and removed
    assert _plotted(fake_run, "Entropy", "--ood", "gaussian", "--seed", "1", "--no-plots") == 0
    err = capsys.readouterr().err
    assert not (out / "scores.pt").exists() and not list(out.glob("*.png"))
    assert "removed the earlier roc_gaussian.png, hist_gaussian.png, roc_uniform.png" in err


def test_a_call_without_plots_removes_the_pictures_of_the_sets_it_measured(fake_run, drawn,
                                                                           undrawn_hists, capsys):
    out = fake_run / "ood"
    assert _plotted(fake_run, "MaxSoftmax", "--ood", "gaussian", "uniform") == 0
    assert _plotted(fake_run, "Entropy", "--ood", "gaussian", "--no-plots") == 0
    assert "removed the earlier roc_gaussian.png, hist_gaussian.png" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["hist_uniform.png", "roc_uniform.png"]
    # scores.pt keeps up with the table without plots: a later call draws Entropy too
    assert set(torch.load(out / "scores.pt", weights_only=True)["Entropy"]) == {"id", "gaussian"}
    assert _plotted(fake_run, "EnergyBased", "--ood", "gaussian") == 0
    assert drawn["roc_gaussian.png"].keys() == {"MaxSoftmax", "Entropy", "EnergyBased"}


def test_detectors_without_kept_scores_are_named_not_drawn(fake_run, drawn, undrawn_hists,
                                                            capsys):
    assert _plotted(fake_run, "MaxSoftmax", "--ood", "gaussian", "--no-plots") == 0
    assert not (fake_run / "ood" / "scores.pt").exists()
    assert _plotted(fake_run, "Entropy", "--ood", "gaussian") == 0
    assert drawn["roc_gaussian.png"].keys() == {"Entropy"}
    assert ("roc_gaussian.png leaves out MaxSoftmax: an earlier call kept no scores of them"
            in capsys.readouterr().err)


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_scoring_the_training_folder_says_the_figures_are_optimistic(tmp_path, monkeypatch,
                                                                      capsys, form):
    # Was: --id and --fit-data naming the folder the run was trained on (one set, no val/)
    # scored and fitted on the training images themselves, without a word. A run trained on a
    # dataset zip could not be scored at all: no --id form read a zip.
    import zipfile
    from PIL import Image
    from robustrep.tasks.common.classifier import create_classifier
    monkeypatch.chdir(tmp_path)
    for c in range(2):
        (tmp_path / "data" / f"c{c}").mkdir(parents=True)
        for i in range(4):
            Image.new("L", (16, 16), 60 * c + 10 * i).save(tmp_path / "data" / f"c{c}" / f"{i}.png")
    data = "data"
    if form == "zip":  # the same images in a stylegan2-ada dataset zip, labels in dataset.json
        data, labels = "data.zip", []
        with zipfile.ZipFile(tmp_path / data, "w") as z:
            for path in sorted((tmp_path / "data").rglob("*.png")):
                name = f"{path.parent.name}/{path.name}"
                z.write(path, name)
                labels.append([name, int(path.parent.name[1])])
            z.writestr("dataset.json", json.dumps({"labels": labels}))
    torch.manual_seed(0)
    model = create_classifier("test_resnet", 2, in_chans=1).eval()
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    config = {"model": "test_resnet", "num_classes": 2,
              "dataset": "imagefolder" if form == "folder" else "zip",
              "image_size": 16, "channels": 1, "data_root": str(tmp_path / data),
              "classes": None, "mean": [0.5], "std": [0.5], "drop_rate": 0.0}
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    torch.save({"step": 0, "model": model.state_dict(), "ema": None},
               tmp_path / "run" / "checkpoints" / "latest.pt")
    argv = ["ood", "score", "run", "--id", f"imagefolder:{data}", "--ood", "gaussian",
            "--detectors", "Mahalanobis", "--no-plots", "--quiet", "--device", "cpu"]
    assert main([*argv[:3], *argv[5:], "--out", "c"]) == 2  # no --id: one set, name it
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the run was trained on {tmp_path / data}, one set" in err
    assert "--id imagefolder:PATH (a folder or dataset zip" in err
    assert main([*argv, "--fit-data", f"imagefolder:{data}", "--out", "a"]) == 0
    err = capsys.readouterr().err
    assert "the data the classifier was trained on" in err
    assert "--fit-data is the ID test set itself" in err
    if form == "zip":  # the zip's images and labels are the folder's: the same figures
        assert main([*argv[:4], "imagefolder:data", *argv[5:], "--fit-data", "imagefolder:data",
                     "--out", "f"]) == 0
        rows = [json.loads((tmp_path / o / "results.json").read_text())["results"]
                for o in ("a", "f")]
        assert rows[0] == rows[1] and rows[0][0]["AUROC"] is not None
        capsys.readouterr()
    (tmp_path / "held-out" / "c0").mkdir(parents=True)
    Image.new("L", (16, 16), 5).save(tmp_path / "held-out" / "c0" / "0.png")
    assert main([*argv[:4], "imagefolder:held-out", *argv[5:], "--fit-data", f"imagefolder:{data}",
                 "--out", "b"]) == 0
    assert "optimistic" not in capsys.readouterr().err


def test_constant_scores_are_refused_not_read_as_a_weak_detector():
    """RankFeat on 1x1 maps gave -1.68044 (std 4e-8) to every image and AUROC 51-53; MCD on a
    network without dropout exactly 50: rows that read as weak detectors, measuring nothing."""
    from robustrep.tasks.ood.checks import check_not_constant
    flat = [torch.full((5,), -1.68044) + 1e-8 * torch.randn(5), torch.full((3,), -1.68044)]
    with pytest.raises(ValueError, match=r"^RankFeat gives every image the same score "
                                         r"\(-1\.68044, spread "):
        check_not_constant("RankFeat", flat)
    check_not_constant("KNN", [torch.tensor([0.1, 0.2]), torch.tensor([0.9])])
    check_not_constant("KNN", [torch.tensor([1e4, 1e4 + 1])])  # large scores, a real spread


@pytest.mark.parametrize("detectors, extra, words", [
    # both were accepted and recorded in results.json as if they had shaped the numbers
    ("MaxSoftmax", ["--feature-maps", "pooled"], "--feature-maps pooled shapes what the "
                                                 "feature-map detectors"),
    ("MaxSoftmax", ["--resize"], "--resize acts on the cifar10, cifar100, svhn sets"),
    # scored the built-in sets in silence, not OpenOOD's
    ("MaxSoftmax", ["--openood-id", "cifar10"], "--openood-id cifar10 names the ID dataset of "
                                                "the OpenOOD benchmark and acts only with "
                                                "--openood DATA_DIR"),
    # accepted in silence: nothing was fitted and results.json recorded fit_data null
    ("MaxSoftmax,ODIN", ["--fit-data", "digits"],
     "robustrep ood score: error: --fit-data digits names the data the fitted detectors are fitted "
     "on, and none of --detectors MaxSoftmax, ODIN is fitted (ood score --list says which "
     "are); drop it"),
    ("MaxSoftmax", ["--max-fit", "10"], "--max-fit 10 caps the ID train images the fitted "
                                        "detectors are fitted on, and none of --detectors "
                                        "MaxSoftmax is fitted"),
    ("ReAct", ["--param", "ReAct.threshold=1.0", "--max-fit", "10"],
     "none of --detectors ReAct is fitted (ReAct is not, given its threshold)"),
])
def test_an_option_that_acts_on_nothing_scored_is_refused(fake_run, capsys, detectors, extra,
                                                          words):
    assert _score(fake_run, detectors, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (fake_run / "ood").exists()
    assert _score(fake_run, "ReAct", "--feature-maps", "pooled") == 0  # a maps detector: kept


def test_fit_options_with_a_fitted_detector_are_used(fake_run):
    # the refusal above is for calls fitting nothing: with KNN beside, --max-fit caps its data
    assert _score(fake_run, "MaxSoftmax,KNN", "--max-fit", "10", "--param", "KNN.k=3") == 0
    data = json.loads((fake_run / "ood" / "results.json").read_text())
    assert data["fit_data"] == "digits" and data["sizes"]["id_train"] == 10


def test_amp_says_which_detectors_it_leaves_in_float32(fake_run, capsys):
    # Was: --amp acted on the extraction alone, without a word; now it reaches ODIN's passes,
    # and GradNorm, whose per-sample gradients fail under autocast, is named
    assert _score(fake_run, "ODIN,GradNorm", "--amp", "bf16") == 0
    err = capsys.readouterr().err
    assert ("note: --amp bf16: GradNorm runs in float32: its per-sample weight gradients, "
            "taken with torch.func.vmap, fail under autocast") in err
    rows = json.loads((fake_run / "ood" / "results.json").read_text())["results"]
    assert {r["detector"] for r in rows if not r["error"]} == {"ODIN", "GradNorm"}


def test_two_model_calls_started_in_one_second_keep_their_own_folders(fake_run, tmp_path,
                                                                      monkeypatch, capsys):
    # Was: both wrote runs/ood/<model>-<time>; the later replaced the earlier's rows (other
    # weights) with exit 0 for both, or, started after the other finished, was refused with
    # "--out ... already holds results.json" though no --out was given
    import shutil
    import time
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")
    shutil.copy(fake_run / "checkpoints" / "latest.pt", tmp_path / "other.pt")
    for weights in (fake_run / "checkpoints" / "latest.pt", tmp_path / "other.pt"):
        assert main(["ood", "score", "--model", "test_resnet", "--checkpoint", str(weights),
                     "--image-size", "16", "--classes", "0", "1", "2", "--ood", "gaussian",
                     "--detectors", "MaxSoftmax", "--max-samples", "8", "--no-plots",
                     "--quiet", "--device", "cpu"]) == 0
    assert "replaced" not in capsys.readouterr().err
    first, second = (tmp_path / "runs" / "ood" / f"test_resnet-20260101-000000{n}"
                     for n in ("", "-2"))
    assert json.loads((first / "results.json").read_text())["weights"].endswith("latest.pt")
    assert json.loads((second / "results.json").read_text())["weights"].endswith("other.pt")


def test_a_flat_id_folder_has_no_accuracy(fake_run, tmp_path, capsys):
    # Was: "ID test accuracy 33.33%": every image of a flat folder is labelled 0, and the share
    # predicted as class 0 was reported as the classifier's accuracy
    from PIL import Image
    (tmp_path / "flat").mkdir()
    (tmp_path / "classes" / "0").mkdir(parents=True)
    for i in range(3):
        Image.new("L", (16, 16), 60 * i).save(tmp_path / "flat" / f"{i}.png")
        Image.new("L", (16, 16), 60 * i).save(tmp_path / "classes" / "0" / f"{i}.png")
    for folder in ("flat", "classes"):
        assert _score(fake_run, "MaxSoftmax", "--id", f"imagefolder:{tmp_path / folder}",
                      "--out", str(tmp_path / f"out-{folder}")) == 0
        out, err = capsys.readouterr()
        accuracy = json.loads((tmp_path / f"out-{folder}" / "results.json").read_text())[
            "id_accuracy"]
        if folder == "flat":
            assert accuracy is None and "ID test accuracy n/a;" in out
            assert (f"note: ID test accuracy n/a: imagefolder:{tmp_path / folder} is a flat "
                    f"folder (no class subfolders), whose images carry no class labels") in err
        else:
            assert accuracy is not None and "ID test accuracy n/a" not in out + err


def test_an_id_zip_without_labels_has_no_accuracy(fake_run, tmp_path, capsys):
    # Was: "ID test accuracy 0.00%": a zip of class folders read as a stylegan2-ada zip without
    # dataset.json labels every image 0
    import zipfile

    from PIL import Image
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        for c in range(3):
            for i in range(2):
                Image.new("L", (16, 16), 40 * c + i).save(tmp_path / "x.png")
                archive.write(tmp_path / "x.png", f"{c}/{i}.png")
    assert _score(fake_run, "MaxSoftmax", "--id", f"imagefolder:{tmp_path / 'plain.zip'}",
                  "--out", str(tmp_path / "out")) == 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["id_accuracy"] is None
    assert (f"note: ID test accuracy n/a: imagefolder:{tmp_path / 'plain.zip'} is a dataset zip "
            f"without dataset.json labels (robustrep data pack writes them from a folder's class "
            f"subfolders), whose images carry no class labels") in capsys.readouterr().err


def test_scoring_into_the_folder_of_a_run_in_progress_is_refused_first(fake_run, capsys):
    # Was: the whole scoring ran, then its writes waited, without a word, for the run's lock
    from robustrep.tasks.common.runlock import RunLock
    training = RunLock(fake_run / ".lock").acquire()  # the run, still training
    try:
        code = main(["ood", "score", str(fake_run), "--out", str(fake_run), "--ood", "gaussian",
                     "--detectors", "MaxSoftmax", "--max-samples", "8", "--no-plots", "--quiet"])
    finally:
        training.release()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"--out {fake_run} is the folder of a run in progress (pid " in err
    assert not (fake_run / "results.json").exists()


NORM_SCORE = ["--image-size", "16", "--classes", "0", "1", "2", "--ood", "gaussian",
              "--detectors", "MaxSoftmax", "--max-samples", "8", "--no-plots", "--quiet",
              "--device", "cpu"]


def _score_weights(weights, out, *extra):
    return main(["ood", "score", "--model", "test_efficientnet", "--checkpoint", str(weights),
                 "--out", out, *extra, *NORM_SCORE])


def test_a_checkpoint_scored_with_timms_default_normalisation_says_which(tmp_path, monkeypatch,
                                                                        capsys):
    # Was: a weights file without --mean/--std was scored with timm's ImageNet statistics of
    # --model (test_efficientnet's, averaged over its channels for 1-channel weights) without a
    # word, though they need not be those it was trained with
    from robustrep.tasks.common.classifier import create_classifier
    monkeypatch.chdir(tmp_path)
    torch.save(create_classifier("test_efficientnet", 3, in_chans=1).model.state_dict(), "m.pth")
    mean, std = sum((0.485, 0.456, 0.406)) / 3, sum((0.229, 0.224, 0.225)) / 3
    assert _score_weights("m.pth", "a") == 0
    assert (f"note: --checkpoint m.pth: scored with input mean {mean:g}, std {std:g}, timm's "
            f"default for --model test_efficientnet (no --mean/--std given); if the weights were "
            f"trained with other values, give those with --mean/--std\n"
            ) in capsys.readouterr().err
    # results.json kept neither the values nor where they came from (classify eval's report
    # kept the values)
    _recorded_norm("a", pytest.approx([mean]), pytest.approx([std]), "timm default",
                   "timm default")
    assert _score_weights("m.pth", "b", "--std", "0.3") == 0  # the one left to timm
    assert (f"scored with input mean {mean:g}, timm's default for --model test_efficientnet "
            f"(no --mean given); if the weights were trained with other values, give those "
            f"with --mean\n") in capsys.readouterr().err
    _recorded_norm("b", pytest.approx([mean]), pytest.approx([0.3]), "timm default", "given")
    assert _score_weights("m.pth", "c", "--mean", "0.2", "--std", "0.3") == 0
    assert "timm's default" not in capsys.readouterr().err


def test_weights_carrying_their_own_normalisation_have_no_such_note(fake_run, tmp_path,
                                                                   monkeypatch, capsys):
    from robustrep.tasks.common.classifier import create_classifier
    monkeypatch.chdir(tmp_path)
    own = create_classifier("test_efficientnet", 3, in_chans=1, mean=[0.1], std=[0.2])
    torch.save(own.state_dict(), "own.pth")  # robustrep's mean/std buffers beside the model
    assert _score_weights("own.pth", "a") == 0
    assert "timm's default" not in capsys.readouterr().err
    _recorded_norm("a", pytest.approx([0.1]), pytest.approx([0.2]), "file", "file")
    # buffers holding timm's default values are the file's own too: were noted as timm's (the
    # source was guessed by comparing the values)
    same = create_classifier("test_efficientnet", 3, in_chans=1)
    torch.save(same.state_dict(), "same.pth")
    assert _score_weights("same.pth", "same") == 0
    assert "timm's default" not in capsys.readouterr().err
    _recorded_norm("same", pytest.approx(same.mean.flatten().tolist()),
                   pytest.approx(same.std.flatten().tolist()), "file", "file")
    # a classify run's checkpoint (its config kept in it), and the run folder itself
    state = torch.load(fake_run / "checkpoints" / "latest.pt", weights_only=True)
    state["config"] = json.loads((fake_run / "config.json").read_text())
    torch.save(state, "run.pt")
    assert main(["ood", "score", "--model", "test_resnet", "--checkpoint", "run.pt", "--out", "b",
                 *NORM_SCORE]) == 0
    assert main(["ood", "score", str(fake_run), *NORM_SCORE[6:]]) == 0
    assert "timm's default" not in capsys.readouterr().err
    config = json.loads((fake_run / "config.json").read_text())
    _recorded_norm(fake_run / "ood", config["mean"], config["std"], "run", "run")


def _recorded_norm(out, mean, std, mean_from, std_from):
    data = json.loads((Path(out) / "results.json").read_text())
    assert (data["mean"], data["std"]) == (mean, std)
    assert data["norm_source"] == {"mean": mean_from, "std": std_from}


def test_a_call_with_other_input_statistics_replaces_the_earlier_rows(tmp_path, monkeypatch,
                                                                       capsys):
    # Was: kept beside them, under a results.json naming only the later call's mean and std
    from robustrep.tasks.common.classifier import create_classifier
    monkeypatch.chdir(tmp_path)
    torch.save(create_classifier("test_efficientnet", 3, in_chans=1).model.state_dict(), "m.pth")
    assert _score_weights("m.pth", "o", "--mean", "0.2", "--std", "0.3") == 0
    assert _score_weights("m.pth", "o", "--mean", "0.2", "--std", "0.3") == 0  # the same: kept
    assert "other settings" not in capsys.readouterr().err
    assert _score_weights("m.pth", "o", "--mean", "0.5", "--std", "0.3") == 0
    assert "measured under other settings (mean [0.2] -> [0.5])" in capsys.readouterr().err


@pytest.mark.parametrize("first, second, change", [
    # was: t=1 and t=1000 rows in one table, the ID scores of t=1000 beside digits59's of t=1 in
    # scores.pt (AUROC 0 from it against 94 in the table)
    (["--param", "MaxSoftmax.t=1000"], [], "MaxSoftmax params {'t': 1000} -> {}"),
    (["--amp", "bf16"], [], "amp 'bf16' -> 'off'"),  # was: merged, amp not recorded
    # was: merged under the second call's size of gaussian in the header
    (["--max-samples", "300"], ["--max-samples", "200"], "gaussian size 300 -> 200"),
])
def test_rows_of_other_params_precision_or_set_sizes_are_replaced(fake_run, tmp_path, capsys,
                                                                 first, second, change):
    argv = ["ood", "score", str(fake_run), "--ood", "gaussian", "--no-plots", "--quiet",
            "--device", "cpu", "--save-scores", "--out", str(tmp_path / "o")]
    assert main([*argv, "--detectors", "MaxSoftmax,EnergyBased", *first]) == 0
    capsys.readouterr()
    assert main([*argv, "--detectors", "MaxSoftmax", *second]) == 0
    assert f"measured under other settings ({change})" in capsys.readouterr().err
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [r["detector"] for r in saved["results"]] == ["MaxSoftmax"]
    assert set(torch.load(tmp_path / "o" / "scores.pt", weights_only=True)) == {"MaxSoftmax"}
