"""The registry is pytorch-ood's; each detector path (logits, features, maps, gradients) runs."""

import math

import pytest
import torch

from robustrep.tasks.ood.detectors import (get_spec, list_detectors, parse_detectors,
                                           parse_params, registry)
from robustrep.tasks.ood.extract import as_ood_model
from robustrep.tasks.ood.score import score_model

REQUIRED = ("MaxSoftmax", "EnergyBased", "MaxLogit", "Entropy", "ODIN", "Mahalanobis", "ViM",
            "KNN", "ReAct", "ASH")


def test_registry_is_read_from_pytorch_ood():
    import pytorch_ood.detector as pod
    from pytorch_ood.api import Detector
    exported = {n for n in pod.__all__
                if isinstance(getattr(pod, n), type) and issubclass(getattr(pod, n), Detector)}
    assert set(registry()) == exported | {"UoS"}  # plus robustrep.uos.UoS
    for name in REQUIRED:
        assert get_spec(name).unsupported is None
    kinds = {n: registry()[n].consumes for n in REQUIRED}
    assert kinds["MaxSoftmax"] == "logits" and kinds["KNN"] == "features"
    assert kinds["ReAct"] == "maps" and kinds["ODIN"] == "images"
    assert registry()["Mahalanobis"].fit_on == "features"
    assert registry()["ReAct"].fit_on == "maps" and registry()["ODIN"].fit_on is None
    assert registry()["MCM"].unsupported  # needs CLIP text embeddings


def test_unknown_detector_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown detector 'Energy'.*EnergyBased.*MaxSoftmax"):
        parse_detectors("MaxSoftmax,Energy")
    with pytest.raises(ValueError, match="cannot be built"):
        get_spec("WeightedEBO")
    assert [s.name for s in parse_detectors("maxsoftmax, KNN,MaxSoftmax")] == ["MaxSoftmax", "KNN"]
    assert len(parse_detectors("all")) == len(list_detectors(supported_only=True))


@pytest.mark.parametrize("text", ["KNN,,ODIN", "KNN,", ["KNN", ""], ["KNN", "ODIN,"]])
def test_an_empty_detector_is_refused_not_dropped(text):
    # Was: dropped (`--detectors KNN,,ODIN` scored KNN and ODIN), while --seeds refuses one
    with pytest.raises(ValueError) as err:
        parse_detectors(text)
    assert str(err.value) == (f"--detectors must be detector names separated by commas, or "
                              f"all; got {text!r} (an empty item)")
    assert [s.name for s in parse_detectors(" KNN , ODIN ")] == ["KNN", "ODIN"]


def test_params_are_checked():
    assert parse_params(["KNN.k=5", "ASH.variant=ash-b"]) == {"KNN": {"k": 5},
                                                              "ASH": {"variant": "ash-b"}}
    with pytest.raises(ValueError, match="no settable parameter 'kk'.*k, normalize"):
        parse_params(["KNN.kk=5"])
    with pytest.raises(ValueError, match="DETECTOR.NAME=VALUE"):
        parse_params(["k=5"])


def _check(result, names):
    for name in names:
        det = result.detectors[name]
        assert det.error is None, f"{name}: {det.error}"
        for ood, m in det.metrics.items():
            assert all(math.isfinite(v) for v in m.values()), (name, ood, m)
            assert len(det.ood_scores[ood]) == result.sizes[ood]
        assert len(det.id_scores) == result.sizes["id_test"]


@pytest.mark.parametrize("names", [
    "MaxSoftmax,EnergyBased,MaxLogit,Entropy",  # logits
    "Mahalanobis,ViM,KNN",                      # features (fitted)
    "ReAct,ASH",                                # feature maps
    "ODIN",                                     # input gradients
])
def test_each_detector_path_runs(tiny_classifier, tiny_data, names):
    fit, id_test, ood = tiny_data
    specs = parse_detectors(names)
    result = score_model(as_ood_model(tiny_classifier), specs, id_test, ood, fit, num_classes=3,
                         params={"KNN": {"k": 5}}, batch_size=8)
    _check(result, [s.name for s in specs])
    assert ("maps" in result.info["extracted"]) == ("ReAct" in names)


def test_every_supported_detector_runs(tiny_classifier, tiny_data):
    """Catches API drift in pytorch-ood: every detector robustrep claims to support scores."""
    fit, id_test, ood = tiny_data
    specs = parse_detectors("all")
    params = {"KNN": {"k": 5}, "NNGuide": {"k": 5}, "OpenMax": {"tailsize": 5},
              "MCD": {"samples": 2}}
    result = score_model(as_ood_model(tiny_classifier), specs, id_test, ood, fit, num_classes=3,
                         params=params, batch_size=16)
    # SHE stores the mean feature of the correctly classified train samples of each class;
    # an untrained net may classify none of a class correctly, which SHE rejects by design.
    failed = {n: d.error for n, d in result.detectors.items() if d.error}
    # this net has no dropout (MCD's variance is 0) and 1x1 feature maps (RankFeat's residual is
    # empty): they ran, and their constant scores are refused rather than scored at AUROC 50
    constant = {n for n, e in failed.items() if e.startswith(f"ValueError: {n} gives every "
                                                            f"image the same score")}
    assert constant == {"MCD", "RankFeat"}, failed
    assert set(failed) - constant <= {"SHE"}, failed


def test_separable_reaches_one_and_shuffled_half(toy_clusters):
    net, centers, sample = toy_clusters
    model = as_ood_model(net)
    fit, id_test = sample(300), sample(300)
    far = sample(300, where=torch.full((1, centers.shape[1]), -6.0), label=-1)
    same = sample(300, label=-1)  # OOD drawn from the ID distribution: nothing to detect
    specs = parse_detectors("MaxSoftmax,EnergyBased,Mahalanobis,KNN,ViM")
    result = score_model(model, specs, id_test, {"far": far, "same": same}, fit,
                         num_classes=3, params={"ViM": {"d": 3}})
    for name, det in result.detectors.items():
        assert det.error is None, det.error
        assert det.metrics["far"]["AUROC"] > 0.99, name
        assert det.metrics["far"]["fpr95_ood_tpr"] < 0.05, name
        assert abs(det.metrics["same"]["AUROC"] - 0.5) < 0.08, name


def test_fitting_needs_train_data(tiny_classifier, tiny_data):
    _, id_test, ood = tiny_data
    with pytest.raises(ValueError, match="Mahalanobis need in-distribution training data"):
        score_model(as_ood_model(tiny_classifier), parse_detectors("MaxSoftmax,Mahalanobis"),
                    id_test, ood, None, num_classes=3)


def test_failing_detector_is_reported_not_fatal(tiny_classifier, tiny_data):
    fit, id_test, ood = tiny_data
    result = score_model(as_ood_model(tiny_classifier), parse_detectors("KNN,MaxLogit"), id_test,
                         ood, fit, num_classes=3, params={"KNN": {"k": 1000}})
    assert "exceeds the number of ID samples" in result.detectors["KNN"].error
    assert result.detectors["MaxLogit"].error is None
    row = [r for r in result.rows() if r["detector"] == "KNN"][0]
    assert math.isnan(row["AUROC"]) and row["error"]


def test_label_gaps_give_a_readable_error(toy_clusters):
    """Mahalanobis needs labels 0..C-1 in the fit data; a run on classes 1 and 2 says so."""
    net, _, sample = toy_clusters
    fit = sample(30)
    fit = type(fit)(fit.images[fit.targets > 0], fit.targets[fit.targets > 0])
    result = score_model(as_ood_model(net), parse_detectors("Mahalanobis"), sample(9),
                         {"x": sample(9, label=-1)}, fit, num_classes=3)
    assert "ID train labels: [1, 2]" in result.detectors["Mahalanobis"].error


def test_image_detectors_show_their_progress(tiny_classifier, tiny_data, capsys):
    # Was: ODIN, GradNorm, MCD ... passed over every set again (several passes per image, longer
    # than the extraction) with no progress and no estimate
    fit, id_test, ood = tiny_data  # 12 ID test and 10 OOD images: 3 + 3 batches of 4
    specs = parse_detectors("ODIN,MaxSoftmax")
    score_model(as_ood_model(tiny_classifier), specs, id_test, ood, fit, num_classes=3,
                batch_size=4, show_progress=True)
    err = capsys.readouterr().err  # not a terminal: plain lines, the last at the end
    line = [x for x in err.splitlines() if x.startswith("score ODIN: ")][-1]
    assert line.startswith("score ODIN: step 6/6 (100%)") and " ETA " in line
    assert "score MaxSoftmax" not in err  # scored from the extracted logits at once
    score_model(as_ood_model(tiny_classifier), specs, id_test, ood, fit, num_classes=3,
                batch_size=4)
    assert "score ODIN" not in capsys.readouterr().err
