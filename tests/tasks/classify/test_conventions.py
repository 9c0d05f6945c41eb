"""What classify's figures mean and say: the training clock (``train_s`` without evaluations,
``time/step_ms`` over the last log interval, ``eval_s``, as gan train's), and the eval table
naming the weights, the attacked images and the ECE bins, in one style."""

import json
import re
from types import SimpleNamespace

import pytest
import torch

from robustrep.tasks.classify import train as train_module
from robustrep.tasks.classify.eval_metrics import evaluate_model
from robustrep._names import ATTACKS
from robustrep.tasks.classify.eval_table import attack_name, format_table
from robustrep.tasks.classify.train import Trainer, train
from robustrep.tasks.common import train_clock
from robustrep.tasks.common.rundir import RunDir

from .conftest import Threshold, tiny_config


@pytest.fixture
def moved_clock(monkeypatch):
    """A clock the test moves: training step k takes k seconds, each evaluation pass over a
    model 50, each checkpoint 20; nothing else takes time."""
    now = [0.0]
    fake = SimpleNamespace(perf_counter=lambda: now[0])
    monkeypatch.setattr(train_clock, "time", fake)
    monkeypatch.setattr(train_module, "time", fake)
    step, save, clean = Trainer.train_step, Trainer.save, train_module.clean_accuracy

    def timed_step(self, x, y):
        out = step(self, x, y)
        now[0] += self.step
        return out

    def timed_save(self):
        now[0] += 20
        save(self)

    def timed_clean(*args, **kwargs):
        now[0] += 50
        return clean(*args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", timed_step)
    monkeypatch.setattr(Trainer, "save", timed_save)
    monkeypatch.setattr(train_module, "clean_accuracy", timed_clean)


def _logged(path, key):
    return [(r["step"], r[key]) for r in RunDir(path).read_metrics() if key in r]


def test_train_s_leaves_out_evaluations_and_step_ms_is_the_last_intervals(tmp_path,
                                                                         moved_clock):
    # Was: train_s the wall clock since the start, evaluations and checkpoints in it, and
    # time/step_ms the mean since the process started (746.7 ms at step 40 where steps 30-40
    # took 1003 ms each)
    cfg = tiny_config(steps=6, log_every=2, eval_every=3, ckpt_every=4)
    train(cfg, tmp_path / "run", quiet=True)
    assert _logged(tmp_path / "run", "train_s") == [(2, 3.0), (4, 10.0), (6, 21.0)]
    assert _logged(tmp_path / "run", "time/step_ms") == [(2, 1500.0), (4, 3500.0), (6, 5500.0)]
    assert _logged(tmp_path / "run", "eval_s") == [(3, 50.0), (6, 50.0)]  # one pass: no EMA
    saved = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=False)
    assert saved["train_seconds"] == 21.0


def test_train_s_goes_on_from_the_checkpoint_on_resume(tmp_path, moved_clock):
    # Was: a resume went on from the last log's train_s (step 2's 3 s), losing step 3's 3 s;
    # the checkpoint keeps the seconds now, as gan's
    cfg = dict(steps=6, log_every=2, eval_every=0, ckpt_every=0)
    train(tiny_config(**cfg), tmp_path / "a", quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=3, quiet=True)
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    assert _logged(tmp_path / "b", "train_s") == _logged(tmp_path / "a", "train_s") \
        == [(2, 3.0), (4, 10.0), (6, 21.0)]
    # the first interval after the resume is the resume's own step (4 s), not steps 3 and 4
    assert _logged(tmp_path / "b", "time/step_ms") == [(2, 1500.0), (4, 4000.0), (6, 5500.0)]


def test_a_checkpoint_of_an_earlier_version_says_where_the_clock_changes(tmp_path, capsys):
    """An earlier version's checkpoint has no train_seconds; its records counted evaluations in
    train_s: the resume says from which step they count the steps only (it was silent)."""
    cfg = dict(steps=4, log_every=2, eval_every=0, ckpt_every=0)
    train(tiny_config(**cfg), tmp_path / "b", stop_after=2, quiet=True)
    latest = tmp_path / "b" / "checkpoints" / "latest.pt"
    state = torch.load(latest, weights_only=False)
    del state["train_seconds"]
    torch.save(state, latest)
    capsys.readouterr()
    train(tiny_config(**cfg), tmp_path / "b", resume=True, quiet=True)
    assert "was trained to step 2 by an earlier robustrep, whose train_s and time/step_ms " \
           "counted evaluations and checkpoints too; from step 2 on" in capsys.readouterr().err
    train(tiny_config(**cfg), tmp_path / "c", stop_after=2, quiet=True)
    train(tiny_config(**cfg), tmp_path / "c", resume=True, quiet=True)
    assert "earlier robustrep" not in capsys.readouterr().err  # this version's: nothing to say


def _report(**subject):
    """A real report of a fixed model on 8 images, the first 4 classified right, the last 4
    wrong: the attacked first 4 have clean accuracy 1, the whole split 0.5."""
    x = torch.cat([torch.full((2, 1, 4, 4), 0.2), torch.full((2, 1, 4, 4), 0.8)] * 2)
    y = torch.tensor([0, 0, 1, 1, 1, 1, 0, 0])
    report = evaluate_model(Threshold(), [(x, y)], attacks=("pgd", "fgsm"), pgd_steps=(2,),
                            n_attack=4, corruptions=("contrast",), severities=(1, 5), bins=5)
    return {**report, "split": "test", **subject}


def _rows(table):
    return dict(re.split(r"(?<=\S) {2,}(?=\S)", line.strip(), maxsplit=1)
                for line in table.splitlines()[2:] if re.search(r"\S {2,}\S", line))


def test_the_eval_table_says_which_weights_and_images_each_figure_has(tmp_path):
    # Was: "clean top-1 0.5833" of EMA weights without a word, the attacks' rows on the first
    # 50 images beside no clean accuracy of theirs (0.60; the json only), no ECE bin count
    report = _report(weights="ema", ema=True)
    rows = _rows(format_table(report))
    assert rows["clean top-1 (EMA weights)"] == "0.5000"
    assert rows["ECE (5 bins)"] == f"{report['summary']['ece']:.4f}"
    assert rows["attacked images"] == "first 4 of 8"
    assert rows["clean top-1"] == "1.0000" == f"{report['robust']['fgsm']['clean_acc']:.4f}"
    lines = format_table(report).splitlines()
    at = lines.index(f"{'attacked images':<34} first 4 of 8")
    assert [line.split("  ")[1] for line in lines[at + 1:at + 4]] == [
        "clean top-1", "PGD-2 (Linf 8/255)", "FGSM (Linf 8/255)"]
    raw = _rows(format_table(_report(weights="model", ema=False)))
    assert "clean top-1 (raw weights)" in raw and "clean top-1 (EMA weights)" not in raw
    for weights, label in (("pretrained", "pretrained weights"),
                           ("robustbench Carmon2019Unlabeled", "RobustBench weights")):
        # the words ood score prints (classifier_run.weights_label), within the label column
        assert _rows(format_table(_report(weights=weights, ema=False)))[
            f"clean top-1 ({label})"] == "0.5000"


def test_the_eval_table_names_attacks_in_one_style_and_has_4_decimals():
    # Was: "fgsm" beside "PGD-10", and corruption cells "s1=0.567" beside 4 decimals elsewhere
    table = format_table(_report(weights="ema", ema=True))
    rows, conventions = table.splitlines()[2:-2], table.splitlines()[-2:]
    assert not re.search(r"fgsm|pgd", "\n".join(rows))
    # the conventions below name them as the rows do (they were tagged "[pgd2]", "[fgsm]")
    assert [c.split(" (")[0] for c in conventions] == ["PGD-2", "FGSM"]
    assert re.fullmatch(r"s1=\d\.\d{4} s5=\d\.\d{4}", _rows(table)["contrast"])
    numbers = re.findall(r"(?<![\w/.-])\d+\.\d+(?![\w/])", "\n".join(rows))
    assert len(numbers) > 8 and all(len(n.split(".")[1]) == 4 for n in numbers), numbers


def test_every_attack_is_named_as_its_paper_names_it():
    assert [attack_name(a) for a in ATTACKS] == [
        "AutoAttack", "APGD-CE", "APGD-T", "FAB-T", "Square", "PGD", "FGSM"]
    assert attack_name("pgd10") == "PGD-10"


def test_the_eval_table_says_what_its_figures_are():
    # Was: top-1 "0.5000" with no unit, corruption cells "s1=0.3281" not said to be accuracies,
    # "mCE / relative mCE" not said to be unnormalised; one line under the rows says it
    report = _report(weights="ema", ema=True)
    assert format_table(report).splitlines()[-3] == (
        "accuracies and ECE are fractions in [0, 1]; sN: accuracy at corruption severity N; "
        "mCE, relative mCE: unnormalised (no AlexNet baseline)")
    clean = {**report, "corruptions": {}, "corruption_summary": {}, "robust_convention": {}}
    assert format_table(clean).splitlines()[-1] == "accuracies and ECE are fractions in [0, 1]"


def test_a_run_eval_names_its_weights(trained_run, tmp_path, undrawn_diagrams):
    from robustrep.tasks.classify.evaluate import evaluate_run
    for use_ema, label in ((True, "EMA weights"), (False, "raw weights")):
        report = evaluate_run(trained_run, attacks=("fgsm",), n_attack=4, corruptions=(),
                              use_ema=use_ema, out=tmp_path / str(use_ema))
        assert f"clean top-1 ({label})" in _rows(format_table(report))


def test_empty_ece_bins_are_null_in_report_json(tmp_path):
    # Was: "nan" strings beside count 0 (jsonable writes a NaN as a string)
    from robustrep.tasks.classify.report_files import write_report
    report = _report(weights="ema", ema=True)
    bins = report["clean"]["bins"]
    assert 0 in bins["count"]
    write_report(report, tmp_path, "threshold")
    text = (tmp_path / "report.json").read_text()
    saved = json.loads(text)["clean"]["bins"]
    assert "nan" not in text
    for key in ("confidence", "accuracy"):
        assert [v is None for v in saved[key]] == [n == 0 for n in saved["count"]]
    assert (tmp_path / "reliability.png").stat().st_size > 0
