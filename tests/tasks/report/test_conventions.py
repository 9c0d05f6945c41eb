"""The page says what its numbers are over, from the runs' own records: the images of the
classifier figures (``classify eval --max-samples``), and the GAN evaluation's generator, sample
counts, KID subsets, precision/recall reals, FID interval, and what step time leaves out.

The child processes are fakes writing the records the programs write (their fields as a real
``gan train`` / ``classify eval`` of a ``--quick`` report wrote them in /tmp/s43/h6work)."""

import json
from pathlib import Path

import pytest

from robustrep.tasks import cli
from robustrep.tasks.report import runs
from robustrep.tasks.report.conventions import conventions

GAN_EVAL = {"generator": "ema", "num_samples": 1000, "num_real": 1797, "kid_subsets": 10,
            "kid_subset_size": 1000, "pr_samples": 1000, "pr_samples_real": 1797, "pr_k": 3}


def _flag(argv, name):
    return argv[argv.index(name) + 1]


def _train(argv):
    folder, steps = Path(_flag(argv, "--out")), int(_flag(argv, "--steps"))
    every, log = int(_flag(argv, "--eval-every")), int(_flag(argv, "--log-every"))
    folder.mkdir(parents=True)
    config = {"steps": steps, "eval_every": every, "reg": _flag(argv, "--reg"),
              "seed": int(_flag(argv, "--seed")), "preset": _flag(argv, "--preset")}
    if "--model" in argv:
        config["model"] = _flag(argv, "--model")
    (folder / "config.json").write_text(json.dumps(config))
    lines = []
    for step in range(log, steps + 1, log):
        lines.append({"step": step, "kimg": step * 0.032, "train_s": 0.1 * step})
        if argv[0] == "gan" and (step % every == 0 or step == steps):
            lines.append({"step": step, "kimg": step * 0.032, "fid": 300 / step, "kid": 0.01,
                          "precision": 0.5, "recall": 0.3, **GAN_EVAL})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (folder / "finished.json").write_text(json.dumps({"step": steps}))


def _classify_eval(folder):
    (folder / "eval").mkdir()
    summary = {"clean_acc": 1.0, "ece": 0.01, "pgd10_acc": 0.4, "pgd20_acc": 0.3,
               "robust_acc": 0.3, "corruption_acc": 0.9}
    (folder / "eval" / "report.json").write_text(json.dumps(
        {"n": 100, "n_attack": 100, "eps": 8 / 255, "norm": "Linf", "split": "test",
         "summary": summary}))


def _fake_child(argv, log, threads=1):
    if argv[1] == "train":
        _train(argv)
    elif argv[1] == "eval":
        _classify_eval(Path(argv[2]))
    else:
        (Path(argv[2]) / "ood").mkdir()
        (Path(argv[2]) / "ood" / "results.json").write_text(json.dumps({"results": [
            {"detector": "KNN", "ood": "noise", "AUROC": 0.9}]}))
    return 0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A --quick report of fake runs (plots written empty: test_report.py draws them)."""
    from robustrep.tasks.common import plots
    from robustrep.tasks.common.runfiles import write_atomic
    out = tmp_path_factory.mktemp("report") / "r"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runs, "run_robustrep", _fake_child)
        patch.setattr(plots, "bar_table", lambda rows, path, **kw: write_atomic(
            path, lambda handle: None))
        assert cli.main(["report", "--quick", "--out", str(out)]) == 0
    return out


def test_the_classifier_figures_name_their_images(report):
    """Was: clean accuracy, ECE and corruption accuracy came from the first 100 of the 180 test
    images (``--max-samples 100``), and neither the page nor report.json said so."""
    md = (report / "report.md").read_text()
    note = ("Clean accuracy, ECE and corruption accuracy are over the first 100 test images of "
            "each run (`classify eval --max-samples`); robust accuracy: pgd10_acc, pgd20_acc on "
            "100 samples, Linf eps 8/255.")
    table = md.split("## Classifier on digits 0–4\n")[1].split("\n## ")[0]
    assert table.rstrip().endswith(note)  # under the classifier table, beside its figures
    assert f"<p>{note}</p>" in (report / "report.html").read_text()
    records = json.loads((report / "report.json").read_text())["runs"]
    assert {r["clean_images"] for r in records if r["task"] == "classify"} == {
        "the first 100 test images"}


def test_the_conventions_state_the_gan_evaluation_and_the_step_time(report):
    """Was: the page left out KID's 10 subsets in training, precision/recall's random 1,000 of
    the 1,797 reals, the FID interval (75 steps: it bounds "steps to FID <= x"), and that step
    time leaves the first log interval out."""
    text = (report / "report.md").read_text().split("\nConventions: ")[1]
    assert ("of 1,000 G-EMA samples against the 1,797 real digits, evaluated every 75 steps and "
            "at the last (steps to FID ≤ x: the first of those evaluations at or under x)"
            ) in text
    assert ("KID over 10 random subsets of 1,000 a side (training's count; `gan eval` takes "
            "100)") in text
    assert "precision/recall (k = 3) of 1,000 samples against all 1,797 reals" in text
    assert "(the first log interval, with its warm-up, left out)" in text
    records = json.loads((report / "report.json").read_text())["runs"]
    assert {r["evaluation"]["eval_every"] for r in records if r["task"] == "gan"} == {75}


def test_the_reals_precision_recall_judged_against_are_those_the_records_name():
    # records before pr_samples_real took pr_samples reals, as many as samples
    gan = {k: v for k, v in GAN_EVAL.items() if k != "pr_samples_real"} | {"eval_every": 75}
    said = "precision/recall (k = 3) of 1,000 samples against "
    assert said + "a random 1,000 of the reals" in conventions([{"task": "gan", "evaluation": gan}])
    for reals, words in ((1797, "all 1,797 reals"), (1500, "a random 1,500 of the reals")):
        evaluation = gan | {"pr_samples_real": reals}
        assert said + words in conventions([{"task": "gan", "evaluation": evaluation}])
    mixed = [{"task": "gan", "evaluation": gan | {"pr_samples_real": 1797}},
             {"task": "gan", "evaluation": gan}]
    assert "each run's `evaluation` in report.json" in conventions(mixed)


def test_counts_the_runs_record_unlike_are_pointed_to_not_stated():
    evals = [{"task": "gan", "evaluation": GAN_EVAL | {"eval_every": 75}},
             {"task": "gan", "evaluation": GAN_EVAL | {"eval_every": 100}}]
    text = conventions(evals)
    assert "each run's `evaluation` in report.json" in text and "75" not in text
    assert "digits-CNN" not in conventions([{"task": "classify"}])  # no GAN runs: no GAN part
