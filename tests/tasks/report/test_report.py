import json
import math
import statistics

import pytest

from robustrep.tasks import cli
from robustrep.tasks.report import page
from robustrep.tasks.report.records import collect
from robustrep.tasks.report.runs import QUICK, Run, plan


def _trained(folder, records, finished=True):
    """A run folder as a trainer leaves it: config, metrics and (last) the completion marker."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = records[-1]["step"]  # finished: its last record is the final step's
    (folder / "config.json").write_text(json.dumps({"steps": steps}))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if finished:
        (folder / "finished.json").write_text(json.dumps({"step": steps}))


def _gan_folder(folder, fid, train_s, finished=True):
    lines = [{"step": 10, "train_s": 1.0, "loss_d": 0.5},
             {"step": 110, "train_s": 1.0 + train_s, "loss_d": 0.4},
             {"step": 110, "fid": fid, "kid": fid / 100, "precision": 0.5, "recall": 0.25}]
    _trained(folder, lines, finished)


def _classify_folder(folder, acc, auroc):
    _trained(folder, [{"step": 10, "time": 1.0}, {"step": 110, "time": 3.0, "eval/acc": acc}])
    (folder / "eval").mkdir(parents=True)
    (folder / "ood").mkdir()
    (folder / "eval" / "report.json").write_text(json.dumps(
        {"summary": {"clean_acc": acc, "pgd20_acc": acc / 2, "ece": 0.1, "corruption_acc": 0.7}}))
    rows = [{"detector": "MSP", "ood": o, "AUROC": auroc + d, "FPR95": 0.5} for o, d in
            (("noise", 0.1), ("photos", -0.1))]
    (folder / "ood" / "results.json").write_text(json.dumps({"results": rows}))


def test_collect_reads_each_run_format_and_the_step_cost(tmp_path):
    runs = [Run("gan", "none", 0, tmp_path / "g0"), Run("classify", "none", 0, tmp_path / "c0")]
    _gan_folder(runs[0].folder, fid=2.0, train_s=5.0)
    _classify_folder(runs[1].folder, acc=0.9, auroc=0.8)
    (gan, clf), unfinished = collect(runs)
    assert gan == {"task": "gan", "reg": "none", "seed": 0, "fid": 2.0, "kid": 0.02,
                   "precision": 0.5, "recall": 0.25, "step_seconds": 0.05,
                   "fid_curve": [],  # its FID record has no images seen (kimg): no curve
                   "evaluation": {}}  # nor the counts it was measured on
    assert clf["pgd20_acc"] == 0.45 and clf["ood/MSP/AUROC"] == pytest.approx(0.8)
    assert clf["ood/MSP/FPR95"] == 0.5
    assert clf["step_seconds"] == pytest.approx(0.02) and unfinished == []  # old name "time"


def test_a_run_evaluated_otherwise_than_the_others_is_left_out_with_a_line(tmp_path):
    """A later `classify eval --attacks fgsm` into one seed's run made the page average unlike
    measurements (or show its column with one run) without a word."""
    runs = [Run("classify", "none", s, tmp_path / f"c{s}") for s in range(3)]
    for run in runs:
        _classify_folder(run.folder, acc=0.9, auroc=0.8)
    odd = runs[1].folder / "eval" / "report.json"
    odd.write_text(json.dumps({"n": 50, "summary": {"clean_acc": 0.9, "fgsm_acc": 0.2}}))
    kept, lines = collect(runs)
    assert [r["seed"] for r in kept] == [0, 2]
    assert lines == [f"classify/none/seed1: measured otherwise than the other runs: classify "
                     f"eval attacks fgsm (the others: pgd20); classify eval attacked samples 50 "
                     f"(the others: unrecorded); classify eval images the first 50 images (the "
                     f"others: an unrecorded number of images); left out ({_AGAIN.format(odd)})"]


# the advice of a run measured otherwise: its eval (or ood) folder is written again
_AGAIN = ("remove {0.parent} and run the report again (without --collect): the command that "
          "writes it runs again, with the settings of the others")


def test_a_run_evaluated_at_another_radius_is_left_out_with_a_line(tmp_path):
    """One seed evaluated again with `classify eval --eps 4/255`: its robust accuracy was
    averaged with the others' at 8/255 under one label (attacks and samples were alike)."""
    runs = [Run("classify", "none", s, tmp_path / f"c{s}") for s in range(3)]
    for run, eps in zip(runs, (8 / 255, 4 / 255, 8 / 255)):
        _classify_folder(run.folder, acc=0.9, auroc=0.8)
        report = run.folder / "eval" / "report.json"
        report.write_text(json.dumps({**json.loads(report.read_text()), "n": 100, "eps": eps,
                                      "norm": "Linf"}))
    kept, lines = collect(runs)
    assert [r["seed"] for r in kept] == [0, 2]
    assert lines == [f"classify/none/seed1: measured otherwise than the other runs: classify "
                     f"eval radius Linf eps 4/255 (the others: Linf eps 8/255); left out "
                     f"({_AGAIN.format(runs[1].folder / 'eval' / 'report.json')})"]


def test_unfinished_runs_are_not_collected(tmp_path):
    assert collect([Run("gan", "none", 0, tmp_path / "missing")]) == ([], [
        f"gan/none/seed0: not started: no {tmp_path / 'missing'}; left out (run without "
        f"--collect to train it)"])


def test_aggregate_is_mean_and_sample_std_over_seeds():
    records = [{"task": "gan", "reg": "none", "seed": s, "fid": v} for s, v in enumerate((1, 2, 6))]
    mean, std, n = page.aggregate(records)["gan"]["none"]["fid"]
    assert (mean, n) == (3.0, 3) and std == pytest.approx(math.sqrt(7.0))


@pytest.mark.parametrize("reg, base, higher, want", [
    ((2.0, 0.1, 3), (1.0, 0.1, 3), True, "better"),
    ((2.0, 0.1, 3), (1.0, 0.1, 3), False, "worse"),    # e.g. FID: higher is worse
    ((1.15, 0.1, 3), (1.0, 0.1, 3), True, "within the spread"),
    ((1.0, 0.0, 0), (1.0, 0.1, 3), True, "missing"),
    ((2.0, 0.0, 1), (1.0, 0.0, 1), True, "not judged"),  # one run each: no spread to judge by
    ((2.0, 0.1, 3), (1.0, 0.0, 1), True, "not judged"),
])
def test_verdict_calls_a_difference_only_beyond_both_spreads(reg, base, higher, want):
    assert page.verdict(reg, base, higher) == want


@pytest.mark.parametrize("value", [0.862962962962963, 0.0037243947858473])
def test_equal_runs_over_other_seed_counts_are_level(value):
    """The same value on every seed, averaged over 5 seeds and over 4: the means differ in the
    last bit and, with no spread on either side, the page called it better or worse."""
    five, four = page.mean_std([value] * 5), page.mean_std([value] * 4)
    assert five[0] != four[0] and five[1] == four[1] == 0.0  # the case: a last-bit difference
    for higher in (True, False):
        assert page.verdict(four, five, higher) == "within the spread"
        assert page.verdict(five, four, higher) == "within the spread"


def test_reading_names_where_a_method_helps_and_where_it_hurts():
    records = [{"task": "gan", "reg": r, "seed": s, "fid": f, "recall": rc}
               for s in range(3) for r, f, rc in (("none", 2.0 + s / 100, 0.5 + s / 100),
                                                  ("dat", 1.0 + s / 100, 0.3 + s / 100))]
    agg = page.aggregate(records)
    (line,) = page.reading(agg, page.headline_rows(agg))
    assert line.startswith("gan · dat: better on FID") and "worse on recall" in line
    assert "not judged" not in line
    one_seed = page.aggregate([r for r in records if r["seed"] == 0])
    (line,) = page.reading(one_seed, page.headline_rows(one_seed))
    assert line == ("gan · dat: better on nothing; worse on nothing; level within the spread on "
                    "nothing; not judged on FID (digits-CNN features), recall (one run: no "
                    "spread).")


@pytest.mark.parametrize("summary, key, label", [
    # the worst case over the attacks run (the eval's robust_acc), not the first attack by name:
    # pgd10 sorts first and is the weaker attack
    ({"pgd10_acc": 0.41, "pgd20_acc": 0.39, "robust_acc": 0.39}, "robust_acc",
     "robust accuracy (worst of pgd10, pgd20) ↑"),
    ({"pgd20_acc": 0.39, "robust_acc": 0.39}, "robust_acc", "robust accuracy (pgd20) ↑"),
    ({"fgsm_acc": 0.5}, "fgsm_acc", "robust accuracy (fgsm) ↑"),  # a summary of an older eval
])
def test_the_robust_column_is_the_worst_case_over_the_attacks_run(summary, key, label):
    records = [{"task": "classify", "reg": "none", "seed": s, "clean_acc": 0.9, **summary}
               for s in range(2)]
    rows = page.headline_rows(page.aggregate(records))
    assert [(k, text) for task, k, text, _, _ in rows if "robust" in text] == [(key, label)]


def test_a_page_of_the_baseline_alone_says_there_is_nothing_to_compare():
    # was "no baseline in this report", with the baseline on the page
    records = [{"task": "gan", "reg": "none", "seed": s, "fid": 2.0 + s} for s in range(3)]
    agg = page.aggregate(records)
    text = page.markdown(agg, page.headline_rows(agg), {"summary": "s", "conventions": "c"})
    assert "- only the baseline (none) was run: nothing to compare it with" in text
    html = page.html_page(agg, page.headline_rows(agg), {"summary": "s", "conventions": "c"}, {})
    assert "<li>only the baseline (none) was run: nothing to compare it with</li>" in html
    assert "exceeds the sum of the two sample stds" in text  # the rule verdicts follow
    dat = page.aggregate([{**r, "reg": "dat"} for r in records])
    text = page.markdown(dat, page.headline_rows(dat), {"summary": "s", "conventions": "c"})
    assert "- no baseline in this report" in text


def test_a_cell_over_fewer_runs_than_its_setting_names_its_count(tmp_path):
    """A run whose eval lacks corruption_acc and whose MSP failed on a set: the cells averaged
    the other seeds and looked like every seed's ("mean ± sample std over seeds")."""
    runs = [Run("classify", "none", s, tmp_path / f"c{s}") for s in range(3)]
    for run in runs:
        _classify_folder(run.folder, acc=0.9, auroc=0.8)
    report = runs[2].folder / "eval" / "report.json"
    summary = json.loads(report.read_text())["summary"]
    del summary["corruption_acc"]
    report.write_text(json.dumps({"summary": summary}))
    results = runs[1].folder / "ood" / "results.json"  # MSP failed on one set: left out
    rows = json.loads(results.read_text())["results"]
    rows[1]["AUROC"] = None
    results.write_text(json.dumps({"results": rows}))
    records, _ = collect(runs)
    agg = page.aggregate(records)
    table = page.tables(agg, page.headline_rows(agg))
    cells = {row[0]: row[1] for row in table["classify"] + table["ood"]}
    assert cells["corruption accuracy ↑"] == "0.700 ± 0.000 (2 of 3 runs)"
    assert cells["MSP AUROC ↑"] == "0.800 ± 0.000 (2 of 3 runs)"
    assert cells["clean accuracy ↑"] == "0.900 ± 0.000"  # every run: no count
    one = page.aggregate(records[:1] + [{**records[1], "corruption_acc": None}])
    assert page.tables(one, page.headline_rows(one))["classify"][4][1] == "0.700 (1 of 2 runs)"


def test_the_page_defines_each_fpr_column_and_the_scale_of_the_ood_cells():
    """The page showed fpr95_id_tpr and fpr95_ood_tpr, two conventions that differ on the same
    scores, without saying which is which, and fractions where ood score's table gives percent."""
    from robustrep.tasks.report.conventions import conventions
    records = [{"task": "classify", "reg": "none", "seed": s, "ood/KNN/AUROC": 0.9,
                "ood/KNN/fpr95_id_tpr": 0.3, "ood/KNN/fpr95_ood_tpr": 0.2} for s in range(2)]
    agg = page.aggregate(records)
    text = page.markdown(agg, page.headline_rows(agg), {"summary": "s",
                                                        "conventions": conventions(records)})
    conventions = text.split("\nConventions: ")[1]
    assert "| KNN fpr95_id_tpr ↓ |" in text and "| KNN fpr95_ood_tpr ↓ |" in text
    assert ("fpr95_id_tpr is the share of OOD samples accepted at the threshold accepting 95% of "
            "ID samples") in conventions
    assert ("fpr95_ood_tpr the share of ID samples flagged at the threshold flagging 95% of OOD "
            "samples") in conventions
    assert "as fractions (its results.md gives percent)" in conventions


def test_report_json_is_written_before_the_page(tmp_path, monkeypatch):
    """A stop between the files leaves report.json, which marks the page as the report's own:
    report.md was written first, and a report.md without report.json is refused as a user's."""
    real = page.write_text_atomic

    def stopped(path, text):  # report.json written, the page's first file stopped
        if path.suffix == ".json":
            return real(path, text)
        raise KeyboardInterrupt
    monkeypatch.setattr(page, "write_text_atomic", stopped)
    folder = tmp_path / "runs" / "none" / "0"
    _gan_folder(folder, 2.0, 5.0)
    with pytest.raises(KeyboardInterrupt):
        page.write(tmp_path, collect([Run("gan", "none", 0, folder)])[0], {"summary": "s",
                                                                         "conventions": "c"})
    assert (tmp_path / "report.json").is_file() and not (tmp_path / "report.md").exists()


def test_the_page_holds_the_baseline_the_cost_and_embedded_plots(tmp_path):
    records = []
    for seed in range(3):
        for reg, fid, cost in (("none", 2.0, 5.0), ("adaptivemix", 3.0, 10.0)):
            folder = tmp_path / "runs" / reg / str(seed)
            _gan_folder(folder, fid + seed / 10, cost)
            records += collect([Run("gan", reg, seed, folder)])[0]
    files = page.write(tmp_path, records, {"summary": "s", "conventions": "c"})
    text = files["md"].read_text()
    assert "| metric | none | adaptivemix |" in text
    assert "| step time / baseline | 1.00× | 2.00× |" in text
    assert "gan · adaptivemix: better on nothing; worse on FID" in text
    assert "data:image/png;base64," in files["html"].read_text()
    assert json.loads(files["json"].read_text())["aggregate"]["gan"]["none"]["fid"][2] == 3


def test_plan_covers_every_setting_and_seed(tmp_path):
    runs = plan(QUICK, tmp_path)
    gan = [r for r in runs if r.task == "gan"]
    assert len(gan) == len(QUICK.gan_regs) * len(QUICK.seeds)
    assert {(r.reg, r.seed) for r in runs if r.task == "classify"} == {
        (reg, s) for reg in QUICK.classify_regs for s in QUICK.seeds}
    first = next(r for r in runs if r.task == "classify")
    assert [c[:2] for c in first.commands] == [["classify", "train"], ["classify", "eval"],
                                               ["ood", "score"]]


def test_cli_dry_run_and_a_bad_setting(tmp_path, capsys):
    assert cli.main(["report", "--quick", "--dry-run", "--out", str(tmp_path / "r"),
                     "--gan-regs", "none,adaptivemix+dat"]) == 0
    out = capsys.readouterr().out
    assert "--reg adaptivemix,dat" in out and not (tmp_path / "r").exists()
    assert cli.main(["report", "--gan-regs", "pgd", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robustrep report: error: --gan-regs: unknown regularizer 'pgd' for gan")
    assert err.count("\n") == 1 and not (tmp_path / "r").exists()
    # a comma separates settings here: the advice combines with + (commas made two settings)
    assert "(combine with '+', e.g. adaptivemix+asgan)" in err


@pytest.mark.parametrize("option, text", [("--gan-regs", "none,,adaptivemix"),
                                          ("--classify-regs", "mixup,"),
                                          ("--classify-regs", "mixup++pgd,none")])
def test_an_empty_setting_is_refused_not_dropped(option, text, tmp_path, capsys):
    # Was: dropped (`--gan-regs none,,adaptivemix` planned two settings without a word)
    assert cli.main(["report", "--quick", "--dry-run", "--out", str(tmp_path / "r"), option,
                     text]) == 2
    if "++" in text:  # inside one setting: the registry's grammar says it
        want = (f"{option}: regularizers must be names joined by '+', or none; got "
                f"'mixup++pgd' (an empty item)")
    else:
        want = (f"{option} must be settings separated by commas (a setting's methods joined by "
                f"'+'); got {text!r} (an empty item)")
    assert capsys.readouterr().err == f"robustrep report: error: {want}\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option, text, want", [
    ("--classify-regs", "none,none", "--classify-regs: setting none is given twice; give each "
                                     "setting once"),
    ("--gan-regs", "none+adaptivemix", "--gan-regs: regularizers 'none+adaptivemix' combine "
                                       "none with methods; give the methods alone, or none "
                                       "alone")])
def test_none_beside_a_setting_is_refused(option, text, want, tmp_path, capsys):
    # none,mixup is two settings (the baseline and mixup); none twice, or none inside a
    # setting, says two things
    assert cli.main(["report", "--quick", "--dry-run", "--out", str(tmp_path / "r"), option,
                     text]) == 2
    assert capsys.readouterr().err == f"robustrep report: error: {want}\n"
    assert not (tmp_path / "r").exists()


def _gan_curve_folder(folder, fids, step_s):
    """A GAN run evaluated at steps 100..400 (batch 32: 3.2 kimg per 100 steps)."""
    lines = [{"step": 1, "kimg": 0.032, "train_s": step_s}]
    for i, fid in enumerate(fids, 1):
        step = 100 * i
        lines += [{"step": step, "kimg": step * 0.032, "train_s": step * step_s},
                  {"step": step, "kimg": step * 0.032, "fid": fid, "kid": 0.01}]
    _trained(folder, lines)


def test_convergence_steps_to_fid_area_and_cost_against_the_baseline(tmp_path):
    curves = {"none": [(40, 30, 20, 10), (44, 33, 20, 10)],  # final 10: levels 20, 15, 10
              "ssgan": [(20, 14, 9, 8), (30, 25, 12, 11)]}
    records = []
    for reg, runs in curves.items():
        for seed, fids in enumerate(runs):
            folder = tmp_path / "runs" / reg / str(seed)
            _gan_curve_folder(folder, fids, 0.01 if reg == "none" else 0.03)
            records += collect([Run("gan", reg, seed, folder)])[0]
    assert records[0]["fid_curve"][0] == (100, 3200, 40.0)
    conv = page.convergence(records)
    assert conv["levels"] == [20.0, 15.0, 10.0]
    base, ss = conv["regs"]["none"]["levels"], conv["regs"]["ssgan"]["levels"]
    # FID <= 20: baseline at step 300 in both seeds; ssgan at 100 (seed 0) and 300 (seed 1)
    assert base[0]["steps"][:2] == (300, 0.0) and ss[0]["steps"][0] == 200
    assert ss[0]["kimg"][0] == pytest.approx(6.4)
    # FID <= 10: baseline at 400 in both; ssgan at 300 in seed 0 only (seed 1 ends at 11)
    assert (ss[2]["reached"], ss[2]["runs"], ss[2]["steps"][0]) == (1, 2, 300)
    # mean FID over 3.2..12.8 kimg (trapezoids, equal spacing): (40/2 + 30 + 20 + 10/2) / 3
    assert conv["regs"]["none"]["mean_fid"][0] == pytest.approx(
        statistics.fmean([(20 + 30 + 20 + 5) / 3, (22 + 33 + 20 + 5) / 3]))
    assert conv["regs"]["ssgan"]["step_seconds"][0] == pytest.approx(0.03)
    files = page.write(tmp_path, records, {"summary": "s", "conventions": "c"})
    text = files["md"].read_text()
    assert "## GAN convergence on digits (FID over training)" in text
    assert "| steps to FID ≤ 10 (1× baseline final) ↓ | 400 ± 0 (12.8 ± 0.0 kimg) | " \
           "300 (9.6 kimg, 1/2 runs) |" in text
    assert "| step time / baseline | 1.00× | 3.00× |" in text
    assert "gan convergence · ssgan: reached the baseline's final FID in 1/2 runs" in text


def test_the_ood_figure_draws_every_detector_and_metric(tmp_path, monkeypatch):
    # the figure drew the first six rows only: a seventh detector/metric was on no picture
    from robustrep.tasks.common import plots
    drawn = {}
    monkeypatch.setattr(plots, "bar_table", lambda bars, path, **kw: drawn.setdefault(
        path.stem, {m for r in bars.values() for m in r}) and path)
    detectors = ("MSP", "Energy", "ODIN", "Mahalanobis", "KLMatching")
    summary = {f"ood/{d}/{m}": (0.5, 0.1, 3) for d in detectors for m in ("AUROC", "FPR95")}
    agg = {"classify": {"none": summary, "adaptivemix": summary}}
    page.draw(agg, page.headline_rows(agg), tmp_path)
    assert len(drawn["ood"]) == 10


def test_a_table_the_report_lacks_loses_its_earlier_chart(tmp_path, monkeypatch):
    # a narrower --collect into the same folder had left the GAN chart of the earlier report
    from robustrep.tasks.common import plots
    monkeypatch.setattr(plots, "bar_table", lambda bars, path, **kw: path.write_bytes(b"new")
                        and path)
    (tmp_path / "gan.png").write_bytes(b"old")
    summary = {"ood/MSP/AUROC": (0.5, 0.1, 3), "acc": (0.9, 0.01, 3)}
    agg = {"classify": {"none": summary}}
    drawn = page.draw(agg, page.headline_rows(agg), tmp_path)
    assert "gan" not in drawn and not (tmp_path / "gan.png").exists()
    assert (tmp_path / "ood.png").read_bytes() == b"new"


def test_bar_table_lays_many_metrics_out_in_rows(tmp_path):
    from robustrep.tasks.common.plots import bar_table
    rows = {"none": {f"m{i}": (float(i), 0.1) for i in range(9)}}
    path = bar_table(rows, tmp_path / "b.png", cols=4)
    from PIL import Image
    width, height = Image.open(path).size
    assert height > width / 2  # three rows of four panels, not one row of nine
