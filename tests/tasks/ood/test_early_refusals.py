"""Refusals ``ood score`` and ``ood bench`` made only after work was done, now made first: an
output folder of another kind (a run's), a detector argument outside what pytorch-ood's code
takes (GEN's ``M`` above the class count, PNML's ``eps`` 0, NCI's ``alpha`` below 0, ...), and
feature-map detectors on a model without feature maps (a ViT) and ViM on a UoS head in a bench,
before any training."""

import json

import pytest

from robustrep.tasks.cli import main

# --------------------------------------------------------------------------------------------
# helpers


def _bench_in_process(monkeypatch):
    """The bench's `classify train --dry-run` children in this process; training recorded and
    refused (these tests must refuse before any run is trained). Returns the training calls."""
    import contextlib
    import io

    from robustrep.tasks.common import launch

    def dry_run(argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return code, out.getvalue(), err.getvalue()

    calls = []

    def train(argv, log, threads=None):
        calls.append(argv)
        return 1

    monkeypatch.setattr(launch, "check_robustrep", dry_run)
    monkeypatch.setattr(launch, "run_robustrep", train)
    return calls


def _bench(out, *extra):
    return ["ood", "bench", "--regs", "none", "--seeds", "0", "--model", "test_resnet",
            "--ood", "gaussian", "--out", str(out), "--quiet", "--device", "cpu", *extra]


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _no_data(monkeypatch):
    """Reading any ID data fails the test: a refusal must come before it."""
    from robustrep.tasks.ood import datasets

    def read(*args, **kwargs):
        raise AssertionError("the ID data was read before the refusal")

    monkeypatch.setattr(datasets, "whole_id_dataset", read)


# --------------------------------------------------------------------------------------------
# 1. --out: one kind of output per folder, as one run per folder

_KINDS = {"config.json": "the folder of a robustrep run",
          "bench.json": "the folder of an ood bench",
          "results.json": "the folder of an ood score",
          "report.json": "the folder of a report (robustrep report or classify eval)"}


def test_ood_score_into_the_scored_runs_own_folder_is_refused(fake_run, capsys):
    # Was: results.json, scores.pt and the pictures written beside the run's config.json and
    # checkpoints/ (its results go to RUN/ood, where robustrep report reads them)
    before = _listing(fake_run)
    assert main(["ood", "score", str(fake_run), "--out", str(fake_run), "--ood", "gaussian",
                 "--detectors", "MaxSoftmax", "--quiet", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --out {fake_run} is the folder of a robustrep run (it holds "
        f"config.json); ood score writes only into a folder of its own: RUN/ood without --out, "
        f"a new folder, or an earlier ood score's\n")
    assert _listing(fake_run) == before


@pytest.mark.parametrize("record", ["config.json", "bench.json", "report.json"])
def test_ood_score_into_a_folder_of_another_kind_is_refused(record, fake_run, tmp_path,
                                                            monkeypatch, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / record).write_text("{}")
    _no_data(monkeypatch)
    assert main(["ood", "score", str(fake_run), "--out", str(other), "--ood", "gaussian",
                 "--detectors", "MaxSoftmax", "--quiet", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --out {other} is {_KINDS[record]} (it holds {record}); ood "
        f"score writes only into a folder of its own: RUN/ood without --out, a new folder, or "
        f"an earlier ood score's\n")
    assert _listing(other) == [record]


def test_ood_score_still_writes_into_run_ood_and_merges_an_earlier_score(fake_run, capsys):
    argv = ["ood", "score", str(fake_run), "--ood", "gaussian", "--max-samples", "8",
            "--no-plots", "--quiet", "--device", "cpu", "--detectors"]
    assert main([*argv, "MaxSoftmax"]) == 0
    assert main([*argv, "EnergyBased", "--out", str(fake_run / "ood")]) == 0
    rows = json.loads((fake_run / "ood" / "results.json").read_text())["results"]
    assert {r["detector"] for r in rows} == {"MaxSoftmax", "EnergyBased"}


@pytest.mark.parametrize("record", ["config.json", "results.json", "report.json"])
def test_ood_bench_into_a_folder_of_another_kind_is_refused_before_anything_runs(
        record, tmp_path, monkeypatch, capsys):
    # Was: a classify run's folder got runs/, train.log and the bench tables beside its own
    calls = _bench_in_process(monkeypatch)
    other = tmp_path / "other"
    other.mkdir()
    (other / record).write_text("{}")
    assert main(_bench(other, "--detectors", "MaxSoftmax")) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood bench: error: --out {other} is {_KINDS[record]} (it holds {record}); ood "
        f"bench writes only into a folder of its own: a new folder, or an earlier ood bench's "
        f"(its finished runs are reused)\n")
    assert _listing(other) == [record] and calls == []


# --------------------------------------------------------------------------------------------
# 2. detector arguments outside what pytorch-ood's code takes


@pytest.mark.parametrize("item, accepted", [
    # clamped to [0, 1]: a zero probability made every regret NaN
    ("PNML.eps=0", "PNML.eps takes a number in (0, 0.5) (default 1e-12), got 0: it clamps the "
                   "class probabilities to [eps, 1 - eps]: at 0 a zero probability makes the "
                   "regret NaN, from 0.5 on every probability is one value"),
    ("PNML.eps=0.5", "PNML.eps takes a number in (0, 0.5) (default 1e-12), got 0.5"),
    # pytorch-ood scores `alpha <= 0` as 0; results.json recorded -5
    ("NCI.alpha=-5", "NCI.alpha takes a number >= 0 (default 0.0), got -5: the weight of its "
                     "feature-norm penalty (0: none), which pytorch-ood leaves out when it is "
                     "below 0"),
    ("OpenMax.alpha=0", "OpenMax.alpha takes a number >= 1 (default 10), got 0: the number of "
                        "top classes whose activations it revises: 0 revises none"),
    ("OpenMax.euclid_weight=1.5", "OpenMax.euclid_weight takes a number in [0, 1] (default "
                                  "1.0), got 1.5"),
    # each leaves nothing to score: NaN or constant scores once everything was extracted
    ("ASH.percentile=1", "ASH.percentile takes a number in [0, 1) (default 0.65), got 1: the "
                         "fraction of the activations it prunes: at 1 none is left to score"),
    ("SCALE.percentile=1", "SCALE.percentile takes a number in [0, 1) (default 0.65), got 1"),
    ("DICE.p=1", "DICE.p takes a number in [0, 1) (default 0.9), got 1"),
    ("MCD.samples=1", "MCD.samples takes an int >= 2 with MCD.mode 'var' (default 30): the "
                      "variance over one dropout pass is NaN; give more, or MCD.mode='mean'"),
])
def test_an_argument_outside_the_detectors_range_is_refused_first(item, accepted, tmp_path,
                                                                  capsys):
    detector = item.split(".")[0]
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--detectors", detector,
                 "--param", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robustrep ood score: error: --param {item}: {accepted}"), err
    assert err.count("\n") == 1


@pytest.mark.parametrize("items", [["NCI.alpha=0"], ["NCI.alpha=0.5"], ["PNML.eps=1e-6"],
                                   ["OpenMax.alpha=1", "OpenMax.euclid_weight=0"],
                                   ["ASH.percentile=0.9"], ["DICE.p=0"],
                                   ["MCD.samples=1", "MCD.mode=mean"], ["MCD.samples=2"]])
def test_an_argument_within_the_range_passes(items):
    from robustrep.tasks.ood.detector_params import parse_params
    parsed = parse_params(items)
    assert sum(len(v) for v in parsed.values()) == len(items)


@pytest.mark.parametrize("item", ["GEN.M=4", "OpenMax.alpha=4"])
def test_a_count_of_classes_above_the_classifiers_is_refused_before_any_data(item, fake_run,
                                                                              tmp_path,
                                                                              monkeypatch,
                                                                              capsys):
    # Was: pytorch-ood took the top min(M, C) classes in silence; results.json recorded M=4
    _no_data(monkeypatch)
    det, key = item.split("=")[0].split(".")
    assert main(["ood", "score", str(fake_run), "--detectors", det, "--param", item, "--ood",
                 "gaussian", "--out", str(tmp_path / "o"), "--quiet", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --param {item}: {det}.{key} counts the classes it reads from "
        f"the top, so it must be in 1..3 for this classifier's 3 outputs; lower it\n")


def test_gen_m_at_the_class_count_is_scored(fake_run, tmp_path):
    out = tmp_path / "o"
    assert main(["ood", "score", str(fake_run), "--detectors", "GEN", "--param", "GEN.M=3",
                 "--ood", "gaussian", "--max-samples", "8", "--no-plots", "--out", str(out),
                 "--quiet", "--device", "cpu"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["params"] == {"GEN": {"M": 3}} and not data["results"][0]["error"]


def test_gen_m_above_the_class_count_is_refused_before_anything_is_trained(tmp_path,
                                                                          monkeypatch, capsys):
    # digits-ood trains digits 0-4: 5 outputs. Was: refused by nothing, the runs trained
    calls = _bench_in_process(monkeypatch)
    out = tmp_path / "b"
    assert main(_bench(out, "--detectors", "GEN", "--param", "GEN.M=6")) == 2
    assert capsys.readouterr().err == (
        "robustrep ood bench: error: --param GEN.M=6: GEN.M counts the classes it reads from the "
        "top, so it must be in 1..5 for the 'none' runs' 5 outputs (digits 0, 1, 2, 3, 4); lower "
        "it\n")
    assert calls == [] and not (out / "runs").exists()


# --------------------------------------------------------------------------------------------
# 3. feature-map detectors on a model without feature maps


def test_bench_refuses_react_on_a_vit_before_anything_is_trained(tmp_path, monkeypatch, capsys):
    # Was: the first run was trained, then its scoring refused the ViT's tokens
    calls = _bench_in_process(monkeypatch)
    out = tmp_path / "b"
    argv = _bench(out, "--detectors", "MaxSoftmax,ReAct")
    argv[argv.index("test_resnet")] = "test_vit"
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "robustrep ood bench: error: --detectors ReAct with --model test_vit (the 'none' runs): "
        "feature-map detectors need 4-D maps [B, C, H, W], but this model's forward_features "
        "gives shape [B, 5, 64] (a transformer's tokens?); pass --feature-maps pooled to shape "
        "the pooled pre-logit vector instead\n")
    assert calls == [] and not (out / "runs").exists()


def test_bench_refuses_vim_on_a_uos_head_before_anything_is_trained(tmp_path, monkeypatch,
                                                                    capsys):
    # Was: every run trained, then each table's ViM row failed ("ViM needs 'b' but the
    # classifier's last layer (UoSHead) has none") after its features were extracted, exit 0
    calls = _bench_in_process(monkeypatch)
    out = tmp_path / "b"
    argv = _bench(out, "--detectors", "MaxSoftmax,ViM,DICE")
    argv[argv.index("none")] = "none,none@head=uos"
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "robustrep ood bench: error: --detectors ViM, DICE with --model test_resnet (the "
        "'none@head=uos' runs): ViM, DICE read the classifier's last layer as a linear map "
        "(logits = W z + b, its weight W and bias b), but this classifier's last layer is "
        "UoSHead, which is not one: the scores would mean something else; drop ViM, DICE from "
        "--detectors (UoS scores a UoS head)\n")
    assert calls == [] and not (out / "runs").exists()


@pytest.mark.parametrize("model, maps", [("test_vit", False), ("test_resnet", True)])
def test_the_bench_reads_a_models_trunk_on_the_meta_device(model, maps):
    from robustrep.tasks.ood.bench_plan import _meta_model
    net = _meta_model({"model": model, "image_size": 32, "dataset": "digits", "channels": None,
                       "classes": [0, 1, 2, 3, 4], "head": "linear"})
    assert next(net.parameters()).is_meta  # built without memory or weights
    assert (len(net.trunk_shape((1, 32, 32))) == 3) == maps


def test_score_refuses_react_on_a_vit_before_any_data_is_read(tmp_path, monkeypatch, capsys):
    import timm
    import torch
    weights = tmp_path / "vit.pt"
    torch.save(timm.create_model("test_vit", num_classes=3, in_chans=1, img_size=16).state_dict(),
               weights)
    _no_data(monkeypatch)
    assert main(["ood", "score", "--model", "test_vit", "--checkpoint", str(weights),
                 "--dataset", "digits", "--classes", "0", "1", "2", "--image-size", "16",
                 "--channels", "1", "--detectors", "ASH,ReAct", "--ood", "gaussian", "--out",
                 str(tmp_path / "o"), "--quiet", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith(
        "robustrep ood score: error: --detectors ASH, ReAct: feature-map detectors need 4-D maps "
        "[B, C, H, W], but this model's forward_features gives shape [B, 2, 64]")
