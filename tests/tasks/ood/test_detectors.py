"""The registry is pytorch-ood's; each detector path (logits, features, maps, gradients) runs."""

import math

import pytest
import torch

from robustrep.tasks.ood.detector_params import parse_params
from robustrep.tasks.ood.detectors import get_spec, list_detectors, parse_detectors, registry
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
    assert [s.name for s in parse_detectors("maxsoftmax, KNN")] == ["MaxSoftmax", "KNN"]
    assert len(parse_detectors("all")) == len(list_detectors(supported_only=True))


def test_a_detector_named_twice_is_refused(tmp_path, capsys):
    # Was: dropped without a word (`--detectors maxsoftmax,KNN,MaxSoftmax` scored each once),
    # where --ood, --seeds and --regs refuse a value given twice
    with pytest.raises(ValueError) as err:
        parse_detectors("maxsoftmax, KNN,MaxSoftmax")
    assert str(err.value) == ("--detectors: detector MaxSoftmax is given twice; give each "
                              "detector once")
    with pytest.raises(ValueError, match="^--detectors: detector KNN is given twice"):
        parse_detectors(["KNN", "ODIN,knn"])  # two items, two spellings
    from robustrep.tasks.cli import main
    for command in (["score", str(tmp_path / "no-run-needed")],
                    ["bench", "--out", str(tmp_path / "b")]):
        assert main(["ood", *command, "--detectors", "KNN,KNN"]) == 2
        assert capsys.readouterr().err == (f"robustrep ood {command[0]}: error: --detectors: "
                                           f"detector KNN is given twice; give each detector "
                                           f"once\n")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("text, shown", [("all,KNN", "all,KNN"), ("KNN, ALL", "KNN,ALL"),
                                         ("all,all", "all,all"), (["all", "ODIN"], "all,ODIN")])
def test_all_beside_other_detectors_is_refused(tmp_path, capsys, text, shown):
    # Was: `--detectors all,KNN` (and `all,all`) scored every detector without a word
    with pytest.raises(ValueError) as err:
        parse_detectors(text)
    assert str(err.value) == (f"--detectors: 'all' names every detector; give it alone or "
                              f"list the detectors; got {shown!r}")
    assert len(parse_detectors(" All ")) == len(list_detectors(supported_only=True))
    from robustrep.tasks.cli import main
    for command in (["score", str(tmp_path / "no-run-needed")],
                    ["bench", "--out", str(tmp_path / "b")]):
        assert main(["ood", *command, "--detectors", "all,KNN"]) == 2
        assert capsys.readouterr().err == (
            f"robustrep ood {command[0]}: error: --detectors: 'all' names every detector; give "
            f"it alone or list the detectors; got 'all,KNN'\n")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("text", ["KNN,,ODIN", "KNN,", ["KNN", ""], ["KNN", "ODIN,"]])
def test_an_empty_detector_is_refused_not_dropped(text):
    # Was: dropped (`--detectors KNN,,ODIN` scored KNN and ODIN), while --seeds refuses one
    with pytest.raises(ValueError) as err:
        parse_detectors(text)
    assert str(err.value) == (f"--detectors must be detector names separated by commas, or "
                              f"all; got {text!r} (an empty item)")
    assert [s.name for s in parse_detectors(" KNN , ODIN ")] == ["KNN", "ODIN"]


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
    # a k above the fit set, the example this test had, is refused before fitting now
    # (test_detector_params.py); sklearn refuses this one only in the fit
    fit, id_test, ood = tiny_data
    result = score_model(as_ood_model(tiny_classifier), parse_detectors("KNN,MaxLogit"), id_test,
                         ood, fit, num_classes=3, params={"KNN": {"algorithm": "nope"}})
    assert "'algorithm' parameter of NearestNeighbors" in result.detectors["KNN"].error
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


def _conv_dtypes(model):
    """The dtypes the first conv of ``model`` has computed in, recorded from now on."""
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    return seen, handle


@pytest.mark.parametrize("name", ["ODIN", "MahalanobisODIN", "MCD"])
def test_amp_reaches_the_image_detectors_passes(tiny_classifier, tiny_data, name):
    # Was: --amp autocast the extraction only; ODIN, MCD, ... ran their passes in float32
    from torch.utils.data import DataLoader

    from robustrep.tasks.ood.detectors import build_detector, fit_detector, score_images
    from robustrep.tasks.ood.extract import extract
    fit, id_test, _ = tiny_data
    model = as_ood_model(tiny_classifier)
    spec = get_spec(name)
    seen, handle = _conv_dtypes(model)
    try:
        train = extract(model, fit, ["features"], amp="bf16")
        detector = build_detector(spec, model, 3, train.features.shape[1],
                                  {"samples": 2} if name == "MCD" else {}, "cpu", "bf16")
        fit_detector(detector, spec, train)
        seen.clear()
        scores = score_images(detector, DataLoader(id_test, batch_size=6))
        raw = detector.predict(id_test.images[:4])
    finally:
        handle.remove()
    assert seen and set(seen) == {torch.bfloat16}  # every pass of the network, in bf16
    assert scores.shape == (12,) and torch.isfinite(scores).all()
    # ... and what the detector computes from its outputs in float32 (ODIN's softmax at T=1000
    # of bf16 logits kept 8 bits of its score)
    assert raw.dtype == torch.float32
    # the detector's own arithmetic is float32, as on extracted features: with no perturbation
    # MahalanobisODIN's scores are Mahalanobis' on features extracted under the same --amp
    if name == "MahalanobisODIN":
        from robustrep.tasks.ood.detectors import score_extracted
        eps0 = build_detector(spec, model, 3, 96, {"eps": 0.0}, "cpu", "bf16")
        plain = build_detector(get_spec("Mahalanobis"), model, 3, 96, {}, "cpu")
        for det, sp in ((eps0, spec), (plain, get_spec("Mahalanobis"))):
            fit_detector(det, sp, train)
        expected = score_extracted(plain, get_spec("Mahalanobis"),
                                   extract(model, id_test, ["features"], amp="bf16"))
        got = score_images(eps0, DataLoader(id_test, batch_size=6))
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_score_model_passes_amp_to_the_image_detectors(tiny_classifier, tiny_data):
    fit, id_test, ood = tiny_data
    model = as_ood_model(tiny_classifier)
    seen, handle = _conv_dtypes(model)
    try:
        result = score_model(model, parse_detectors("ODIN,MaxSoftmax"), id_test, ood, fit,
                             num_classes=3, amp="bf16", batch_size=6)
    finally:
        handle.remove()
    assert result.detectors["ODIN"].error is None and result.notes == []
    assert len(seen) > 4 and set(seen) == {torch.bfloat16}  # extraction and ODIN's passes


def test_gradient_detectors_under_fp16_and_gradnorm_under_amp_run_in_float32(tiny_classifier,
                                                                           tiny_data):
    """pytorch-ood takes the gradients without loss scaling (float16 would underflow them), and
    GradNorm's per-sample weight gradients (torch.func.vmap) fail under autocast: they run in
    float32, named in a note, the others with --amp."""
    from torch.utils.data import DataLoader

    from robustrep.tasks.ood.detectors import (amp_note, build_detector, passes_amp,
                                               score_images)
    _, id_test, _ = tiny_data
    model = as_ood_model(tiny_classifier)
    specs = parse_detectors("ODIN,MahalanobisODIN,GradNorm,GradUncertainty,MCD,KNN")
    assert {s.name: passes_amp(s, "fp16") for s in specs} == {
        "ODIN": "off", "MahalanobisODIN": "off", "GradNorm": "off", "GradUncertainty": "off",
        "MCD": "fp16", "KNN": "fp16"}
    assert {s.name: passes_amp(s, "bf16") for s in specs} == {
        "ODIN": "bf16", "MahalanobisODIN": "bf16", "GradNorm": "off", "GradUncertainty": "off",
        "MCD": "bf16", "KNN": "bf16"}
    assert amp_note(specs, "fp16") == (
        "--amp fp16: ODIN, MahalanobisODIN, GradNorm, GradUncertainty run in float32: "
        "pytorch-ood takes their gradients without loss scaling, which would underflow in "
        "float16; the extraction and the other detectors use fp16 (--amp bf16, with float32's "
        "range, reaches ODIN, MahalanobisODIN)")
    assert amp_note(specs[:1], "bf16") is None and amp_note(specs, "off") is None
    assert amp_note(parse_detectors("GradNorm"), "bf16").startswith(
        "--amp bf16: GradNorm runs in float32: its per-sample weight gradients")
    # the same scores as without --amp (fp16 autocast on this CPU would raise, bf16 differ)
    for name, amp in (("ODIN", "fp16"), ("GradNorm", "bf16")):
        scores = [score_images(build_detector(get_spec(name), model, 3, 96, {}, "cpu", a),
                               DataLoader(id_test, batch_size=6)) for a in ("off", amp)]
        assert torch.equal(*scores)


def test_a_given_react_threshold_is_used_not_refitted(tiny_classifier, tiny_data):
    # Was: fitting replaced --param ReAct.threshold by the percentile's, without a word
    fit, id_test, ood = tiny_data
    model = as_ood_model(tiny_classifier, "pooled")
    specs = parse_detectors("ReAct,EnergyBased")
    result = score_model(model, specs, id_test, ood, None, num_classes=3,
                         params=parse_params(["ReAct.threshold=1e9"], specs))
    assert result.detectors["ReAct"].error is None  # no fit data needed: nothing is fitted
    assert result.info["fit_extracted"] == []
    # a threshold above every activation clips nothing: ReAct's score is the energy score
    assert torch.allclose(result.detectors["ReAct"].id_scores,
                          result.detectors["EnergyBased"].id_scores, rtol=1e-6)
    fitted = score_model(model, specs, id_test, ood, fit, num_classes=3)
    assert not torch.allclose(fitted.detectors["ReAct"].id_scores,
                              fitted.detectors["EnergyBased"].id_scores, rtol=1e-6)
