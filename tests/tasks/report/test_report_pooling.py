"""What ``report`` pools into one cell and what it keeps apart: runs trained with other options,
runs evaluated or scored with other settings, non-finite values, the radius and corruptions the
page states, a user's folder refused.

The child processes are fakes writing the records the programs write: the fields of
``classify eval``'s report.json and ``ood score``'s results.json as a real ``--quick`` report
wrote them (/tmp/s46/rep/A), at a few rows, and a few of config.json's options."""

import json
import re
from pathlib import Path

import pytest

from robustrep.tasks import cli
from robustrep.tasks.report import runs

ARGV = ["report", "--quick", "--seeds", "0", "1", "--gan-regs", "none", "--classify-regs", "none"]
SETS = ("digits59", "gaussian", "photos")
DETECTORS = ("KNN", "MaxSoftmax")
LEVELS = ("1", "2", "3", "4", "5")


def _convention(steps, size, eps="8/255", norm="Linf"):
    return (f"PGD-{steps} (Madry et al. 2018; robustrep.adversarial.pgd, random start, step "
            f"{size}; a quick check, not comparable with AutoAttack), {norm} eps={eps}")


def _eval_report(acc):
    robust = {f"pgd{k}": {"clean_acc": acc, "robust_acc": 0.3, "n": 100, "attack": "pgd",
                          "eps": 8 / 255, "norm": "Linf", "convention": _convention(k, size),
                          "flags": []} for k, size in ((10, 0.007843), (20, 0.003922))}
    corruptions = {name: {s: 0.9 for s in LEVELS} for name in ("gaussian_noise", "contrast")}
    return {"n": 100, "eps": 8 / 255, "norm": "Linf",
            "clean": {"acc": acc, "ece": 0.01, "bins": {"edges": [i / 15 for i in range(16)]}},
            "robust": robust, "adversarial": {"pgd10": 0.3, "pgd20": 0.3}, "n_attack": 100,
            "robust_convention": {k: v["convention"] for k, v in robust.items()},
            "attack_batch": 256, "corruptions": corruptions,
            "summary": {"clean_acc": acc, "ece": 0.01, "pgd10_acc": 0.3, "pgd20_acc": 0.3,
                        "robust_acc": 0.3, "robust_attack": "pgd20", "corruption_acc": 0.9},
            "model": "test_resnet", "weights": "model", "ema": False, "step": 80, "steps": 80,
            "dataset": "digits", "split": "test", "reg": "none", "seed": 0}


def _ood_results(auroc, sets=SETS, detectors=DETECTORS, seed=0, limit=1000):
    return {"model": "test_resnet", "weights": "model", "step": 80, "steps": 80, "id": "digits",
            "image_size": 32, "fit_data": "digits", "ood": list(sets),
            "params": {}, "feature_maps": "spatial", "resize": False, "seed": seed, "amp": "off",
            "ema": False, "openood": None, "ood_specs": None, "groups": None,
            "sizes": {"id_test": min(180, limit), **{s: limit for s in sets}, "id_train": 721},
            "results": [{"detector": d, "ood": s, "AUROC": auroc, "fpr95_id_tpr": 0.2,
                         "error": ""} for d in detectors for s in sets]}


def _write(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def _fake_child(argv, log, threads=1):
    """A real child's records: GAN metrics, a classify eval report, an ood score's results."""
    folder = Path(argv[argv.index("--out") + 1]) if argv[1] == "train" else Path(argv[2])
    if argv[1] == "train":
        steps = int(argv[argv.index("--steps") + 1])
        config = {"steps": steps, "reg": "none", "preset": argv[argv.index("--preset") + 1],
                  "seed": int(argv[argv.index("--seed") + 1]), "lr": 0.05, "reg_options": None,
                  "workers": None, "device": "cpu", "compile": False, "log": "jsonl",
                  "eval_every": 0, "out": str(folder)}
        if "--model" in argv:
            config["model"] = argv[argv.index("--model") + 1]
        _write(folder / "config.json", config)
        _write(folder / "regularizers.json", [{"step": 0, "regularizers": {}}])  # --reg none
        seed = config["seed"]
        lines = [{"step": 1, "train_s": 1.0},
                 {"step": steps, "train_s": 2.0, "fid": 3.0 + seed, "kid": 0.03,
                  "precision": 0.5, "recall": 0.3, "eval/acc": 0.9}]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        _write(folder / "finished.json", {"step": steps})
    elif argv[1] == "eval":  # seed 1 (none-seed1) a little better than seed 0
        _write(folder / "eval" / "report.json", _eval_report(0.9 + int(folder.name[-1]) / 20))
    else:
        _write(folder / "ood" / "results.json", _ood_results(0.8 + int(folder.name[-1]) / 10))
    return 0


@pytest.fixture
def report(tmp_path, monkeypatch, capsys):
    """A report of two seeds (GAN and classifier, the baseline), its plots written empty."""
    from robustrep.tasks.common import plots
    from robustrep.tasks.common.runfiles import write_atomic
    monkeypatch.setattr(runs, "run_robustrep", _fake_child)
    monkeypatch.setattr(plots, "bar_table",
                        lambda rows, path, **kw: write_atomic(path, lambda handle: None))
    out = tmp_path / "r"
    assert cli.main([*ARGV, "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def _seed1(out, name):
    return out / "runs" / "classify" / "none-seed1" / name


def _change(path, change):
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def _collect(out, capsys, code=1):
    assert cli.main([*ARGV, "--collect", "--out", str(out)]) == code
    return capsys.readouterr().err, (out / "report.md").read_text()


def _step_size(record):
    for name in ("pgd10", "pgd20"):
        text = re.sub(r"step [0-9.]+;", "step 0.0005;", record["robust"][name]["convention"])
        record["robust"][name]["convention"] = record["robust_convention"][name] = text


@pytest.mark.parametrize("name, change, said", [
    # `ood score RUN --ood gaussian --detectors KNN --seed 3`: its KNN mean over one set was
    # averaged with seed 0's over three ("0.850 ± 0.071"), the other detectors "(1 of 2 runs)"
    ("ood/results.json", lambda r: r.update(_ood_results(0.9, ("gaussian",), ("KNN",), seed=3)),
     "ood score OOD sets gaussian (the others: digits59, gaussian, photos); ood score "
     "detectors KNN (the others: KNN, MaxSoftmax); ood score seed 3 (the others: 0)"),
    # `ood score RUN --max-samples 100`: fewer images a set
    ("ood/results.json", lambda r: r.update(_ood_results(0.9, limit=100)),
     "ood score samples 100 ID test, 721 ID fit, at most 100 a set (the others: 180 ID test, "
     "721 ID fit, at most 1000 a set)"),
    # `classify eval RUN --severities 1`: averaged with the others' over severities 1-5
    ("eval/report.json", lambda r: r.update(corruptions={
        c: {"1": 1.0} for c in ("gaussian_noise", "contrast")}),
     "classify eval severities 1 (the others: 1, 2, 3, 4, 5)"),
    ("eval/report.json", lambda r: r.update(corruptions={"contrast": {s: 1.0 for s in LEVELS}}),
     "classify eval corruptions contrast (the others: contrast, gaussian_noise)"),
    # `classify eval RUN --pgd-step-size 0.0005`: pooled with the default step
    ("eval/report.json", _step_size,
     "classify eval pgd10 … step 0.0005; … (the others: … step 0.007843; …); classify eval "
     "pgd20 … step 0.0005; … (the others: … step 0.003922; …)"),
    ("eval/report.json", lambda r: r.update(seed=1), "classify eval seed 1 (the others: 0)"),
])
def test_a_run_measured_with_other_settings_is_left_out_naming_them(report, capsys, name,
                                                                    change, said):
    _change(_seed1(report, name), change)
    err, page = _collect(report, capsys)
    line = (f"classify/none/seed1: measured otherwise than the other runs: {said}; left out "
            f"(remove {_seed1(report, name).parent} and run the report again (without "
            f"--collect): the command that writes it runs again, with the settings of the "
            f"others)")
    assert err == f"warning: {line}\n"
    assert f"- {line}" in page.split("## Left out")[1]
    # seed 0 alone, said so: its line above gives the reason
    assert "| clean accuracy ↑ | 0.900 (1 of 2 runs) |" not in page  # every metric of it
    assert "| clean accuracy ↑ | 0.900 (1 run) |" in page
    assert "| KNN AUROC ↑ | 0.800 (1 run) |" in page


def test_runs_measured_alike_are_pooled(report, capsys):
    err, page = _collect(report, capsys, code=0)
    assert err == "" and "| KNN AUROC ↑ | 0.850 ± 0.071 |" in page
    assert "| clean accuracy ↑ | 0.925 ± 0.035 |" in page


def _cutmix(alpha):
    """A regularizers.json of ``--reg cutmix`` as a run records it: the core defaults filled in."""
    options = {"alpha": alpha, "prob": 1.0, "per_sample": False, "partner": "permutation",
               "smoothing": 0.1, "switch_prob": 0.5, "mode": "add", "weight": 1.0}
    return [{"step": 0, "regularizers": {"cutmix": {
        "class": "robustrep.mixing.CutMix", "options": options, "source": "d78cb74d"}}}]


@pytest.mark.parametrize("name, change, said", [
    # `classify train --lr 0.1` by hand for one seed: its numbers were averaged with the others'
    ("config.json", lambda path: _change(path, lambda r: r.update(lr=0.1)),
     "config.json lr 0.1 (the others: 0.05)"),
    # seed 1 trained with `--cutmix-alpha 0.2`: config.json leaves the other's alpha null (the
    # core default), which only regularizers.json records
    ("regularizers.json", lambda path: _write(path, _cutmix(0.2)),
     "regularizers.json cutmix alpha 0.2 (the others: 1.0)"),
])
def test_a_run_trained_with_other_options_is_left_out_naming_them(report, capsys, name, change,
                                                                 said):
    """Was: pooled into one cell without a word, exit 0 (``_identity`` read --reg, --seed,
    --preset and --model only)."""
    if name == "regularizers.json":  # seed 0 trained with cutmix at its default alpha
        _write(report / "runs" / "classify" / "none-seed0" / name, _cutmix(1.0))
    change(_seed1(report, name))
    err, page = _collect(report, capsys)
    line = (f"classify/none/seed1: trained otherwise than the other seeds: {said}; left out "
            f"(remove {_seed1(report, name).parent} and run the report again (without "
            f"--collect): it is trained again, with the report's options)")
    assert err == f"warning: {line}\n"
    assert f"- {line}" in page.split("## Left out")[1]
    assert "| clean accuracy ↑ | 0.900 (1 run) |" in page
    assert "| KNN AUROC ↑ | 0.800 (1 run) |" in page


def test_a_gan_run_trained_otherwise_is_left_out_of_its_cell(report, capsys):
    config = report / "runs" / "gan" / "none-seed1" / "config.json"
    _change(config, lambda record: record.update(lr=0.1))
    err, page = _collect(report, capsys)
    assert err.startswith("warning: gan/none/seed1: trained otherwise than the other seeds: "
                          "config.json lr 0.1 (the others: 0.05); left out")
    assert "| FID (digits-CNN features) ↓ | 3.000 (1 run) |" in page
    assert "| clean accuracy ↑ | 0.925 ± 0.035 |" in page  # the classify cell: trained alike


def test_options_that_change_no_number_leave_no_run_out(report, capsys):
    """The seed, the folder, the device, the loader's workers, the log and classify's evaluations
    during training may differ between a cell's seeds, and the sha256 of a regularizer's source
    file (any edit of its module changes it)."""
    for seed, source in ((0, "d78cb74d"), (1, "8143fc15")):
        regs = report / "runs" / "classify" / f"none-seed{seed}" / "regularizers.json"
        record = _cutmix(1.0)
        record[0]["regularizers"]["cutmix"]["source"] = source
        _write(regs, record)
    _change(_seed1(report, "config.json"), lambda record: record.update(
        out="/elsewhere/run", device="cuda", workers=4, compile=True, log="tensorboard",
        eval_every=20))
    err, page = _collect(report, capsys, code=0)
    assert err == "" and "| clean accuracy ↑ | 0.925 ± 0.035 |" in page


def _strict(text):
    def refuse(constant):
        raise AssertionError(f"report.json holds {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_a_non_finite_final_fid_is_left_out_with_a_line(report, capsys, value):
    """Was: the cell "3.000 (1 of 2 runs)" without a word, exit 0, and report.json held NaN."""
    metrics = report / "runs" / "gan" / "none-seed1" / "metrics.jsonl"
    metrics.write_text(metrics.read_text().replace('"fid": 4.0', f'"fid": {value}'))
    err, page = _collect(report, capsys)
    line = (f"gan/none/seed1: {metrics}: the final fid is {value}, not a finite number; left "
            f"out of the fid cells")
    assert err == f"warning: {line}\n" and f"- {line}" in page
    assert "| FID (digits-CNN features) ↓ | 3.000 (1 of 2 runs) |" in page
    record = _strict((report / "report.json").read_text())
    (run,) = [r for r in record["runs"] if r["task"] == "gan" and r["seed"] == 1]
    assert "fid" not in run and run["kid"] == 0.03  # its other metrics kept


@pytest.mark.parametrize("key", ["clean_acc", "ece"])
def test_a_non_finite_eval_number_is_left_out_with_a_line(report, capsys, key):
    path = _seed1(report, "eval/report.json")
    _change(path, lambda record: record["summary"].update({key: float("nan")}))
    assert f'"{key}": NaN' in path.read_text()  # as json.dumps writes it
    err, page = _collect(report, capsys)
    line = (f"classify/none/seed1: {path}: summary.{key} is NaN, not a finite number; left out "
            f"of the {key} cells")
    assert err == f"warning: {line}\n" and f"- {line}" in page
    _strict((report / "report.json").read_text())


def test_a_non_finite_ood_metric_leaves_its_detector_out_of_the_runs_cells(report, capsys):
    """Was: a NaN AUROC made the run's KNN mean NaN, dropped from the cell without a word."""
    path = _seed1(report, "ood/results.json")
    _change(path, lambda record: record["results"][1].update(AUROC=float("nan")))
    err, page = _collect(report, capsys)
    line = (f"classify/none/seed1: KNN failed on gaussian (metrics missing or not finite), 1 of "
            f"the 3 OOD sets in {path}; left out of the KNN cells (its mean would cover fewer "
            f"sets than the other runs')")
    assert err == f"warning: {line}\n" and f"- {line}" in page
    assert "| KNN AUROC ↑ | 0.800 (1 of 2 runs) |" in page
    assert "| MaxSoftmax AUROC ↑ | 0.850 ± 0.071 |" in page


def test_report_json_never_holds_a_non_finite_number(tmp_path):
    """A mean over no run (NaN) and a NaN FID of a curve were written as NaN literals."""
    from robustrep.tasks.report import page
    records = [{"task": "gan", "reg": "none", "seed": 0, "fid": 2.0,
                "fid_curve": [[100, 3200, float("nan")], [200, 6400, 2.0]]},
               {"task": "gan", "reg": "dat", "seed": 0, "fid": float("inf")}]
    files = page.write(tmp_path, records, {"summary": "s", "conventions": "c"})
    record = _strict(files["json"].read_text())
    assert record["runs"][0]["fid_curve"][0] == [100, 3200, None]
    assert record["aggregate"]["gan"]["dat"]["fid"] == [None, None, 0]


def test_the_conventions_state_the_radius_and_corruptions_the_runs_recorded(report, capsys):
    """Was: "Linf eps 8/255" in the conventions of runs evaluated at L2 0.5 (the note under the
    table said L2 0.5), and a corruption cell "–" without a word when none were run."""
    for seed in (0, 1):
        path = report / "runs" / "classify" / f"none-seed{seed}" / "eval" / "report.json"

        def l2_no_corruptions(record):
            record.update(eps=0.5, norm="L2", corruptions={})
            record["summary"]["corruption_acc"] = None
            for name, attack in record["robust"].items():
                attack.update(eps=0.5, norm="L2")
                attack["convention"] = record["robust_convention"][name] = \
                    attack["convention"].replace("Linf eps=8/255", "L2 eps=0.5")
        _change(path, l2_no_corruptions)
    err, page = _collect(report, capsys, code=0)
    conventions = page.split("\nConventions: ")[1]
    assert "(L2 eps 0.5 in [0, 1] pixels, attack named in the column)" in conventions
    assert "8/255" not in page
    assert ("corruption accuracy: none measured (the runs' `classify eval` ran no corruptions)"
            in conventions)
    assert "| corruption accuracy ↑ | – |" in page
    assert ("Corruption accuracy –: the runs' `classify eval` ran no corruptions "
            "(`--corruptions none`).") in page.split("## Classifier")[1].split("## OOD")[0]


def test_the_conventions_name_the_corruptions_and_sets_of_the_runs(report, capsys):
    _, page = _collect(report, capsys, code=0)
    conventions = page.split("\nConventions: ")[1]
    assert "(Linf eps 8/255 in [0, 1] pixels, attack named in the column)" in conventions
    assert ("corruption accuracy is the mean over `classify eval`'s 2 on-the-fly corruptions "
            "(contrast, gaussian_noise) at severities 1, 2, 3, 4, 5") in conventions
    assert "averaged over the OOD sets digits59, gaussian, photos:" in conventions


def test_collect_of_a_users_folder_leaves_no_lock_there(tmp_path, capsys):
    """Was: refused in one line, with notrep/.lock left beside the user's notes."""
    mine = tmp_path / "notrep"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert cli.main(["report", "--collect", "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robustrep report: error: {mine} holds no finished run of this "
                          f"report and no record of the options") and err.count("\n") == 1
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
