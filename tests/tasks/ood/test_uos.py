"""The UoS score inside the OOD program: registry, the scoring path and ``ood score`` on a
``--head uos`` run."""

import json
import math

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.ood.detectors import get_spec, parse_detectors
from robustrep.tasks.ood.extract import as_ood_model, extract
from robustrep.tasks.ood.score import score_model
from robustrep.uos import UoS


def test_uos_is_a_fitted_features_detector_in_the_registry(capsys):
    spec = get_spec("uos")
    assert (spec.name, spec.cls, spec.consumes, spec.fit_on) == ("UoS", UoS, "features",
                                                                 "features")
    assert spec.unsupported is None and "Union of 1-Dimensional Subspaces" in spec.paper
    assert [s.name for s in parse_detectors("UoS,MaxSoftmax")] == ["UoS", "MaxSoftmax"]
    assert main(["ood", "score", "--list"]) == 0
    assert "UoS" in capsys.readouterr().out


def test_scoring_path_gives_the_detectors_own_scores(tiny_classifier, tiny_data):
    fit, id_test, ood = tiny_data
    model = as_ood_model(tiny_classifier)
    result = score_model(model, [get_spec("UoS")], id_test, ood, fit, num_classes=3,
                         batch_size=16)
    scored = result.detectors["UoS"]
    assert scored.error is None
    train = extract(model, fit, ("features",))
    test = extract(model, id_test, ("features",))
    direct = UoS().fit_features(train.features, train.labels).predict_features(test.features)
    torch.testing.assert_close(scored.id_scores, direct.double())
    assert 0 <= scored.metrics["noise"]["AUROC"] <= 1


@pytest.fixture(scope="module")
def uos_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("uos") / "run"
    assert main(["classify", "train", "--model", "wrn16_2", "--head", "uos", "--reg",
                 "adaptivemix", "--image-size", "16", "--classes", "0,1,2,3,4", "--steps", "3",
                 "--batch-size", "8", "--eval-every", "0", "--ckpt-every", "3", "--quiet",
                 "--device", "cpu", "--run-dir", str(run)]) == 0
    return run


def test_ood_score_scores_a_uos_run_from_the_command_line(uos_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["ood", "score", str(uos_run), "--detectors", "UoS,MaxSoftmax", "--ood",
                 "digits59", "gaussian", "--max-samples", "24", "--max-fit", "60", "--out",
                 str(out), "--save-scores", "--no-plots", "--quiet", "--device", "cpu"]) == 0
    assert "| UoS | gaussian |" in capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    rows = [r for r in data["results"] if r["detector"] == "UoS"]
    assert {r["ood"] for r in rows} == {"digits59", "gaussian"}
    assert all(not r["error"] and 0 <= r["AUROC"] <= 1 for r in rows)
    scores = torch.load(out / "scores.pt", weights_only=True)["UoS"]
    for values in scores.values():  # angles in radians
        assert float(values.min()) >= 0 and float(values.max()) <= math.pi / 2 + 1e-9


def test_detectors_that_read_a_linear_heads_weights_are_refused_on_a_uos_head(
        uos_run, tmp_path, monkeypatch, capsys):
    """NCI (signed cosine to W[pred]) and fDBD (distance to a linear boundary) read
    ``head.weight``, ViM and DICE its W and b; a UoS head classifies by |W z| / ||z||: NCI and
    fDBD scored below chance without a word, then failed rows; ViM failed ("needs 'b'") once
    every feature was extracted, in an exit-0 call. Now refused before any data is read."""
    from robustrep.tasks.common.classifier_run import load_run
    from robustrep.tasks.ood import datasets
    from robustrep.tasks.ood.detectors import build_detector

    def read(*args, **kwargs):
        raise AssertionError("the ID data was read before the refusal")

    monkeypatch.setattr(datasets, "whole_id_dataset", read)
    out = tmp_path / "out"
    assert main(["ood", "score", str(uos_run), "--detectors", "NCI,fDBD,ViM,MaxSoftmax", "--ood",
                 "gaussian", "--max-samples", "16", "--max-fit", "60", "--out", str(out),
                 "--no-plots", "--quiet", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: --detectors NCI, fDBD, ViM: NCI, fDBD, ViM read the "
        "classifier's last layer as a linear map (logits = W z + b, its weight W and bias b), "
        "but this classifier's last layer is UoSHead, which is not one: the scores would mean "
        "something else; drop NCI, fDBD, ViM from --detectors (UoS scores a UoS head)\n")
    assert not out.exists()
    model = as_ood_model(load_run(uos_run, "cpu")[0])  # the library's own refusal
    for name in ("NCI", "fDBD", "ViM", "DICE"):
        with pytest.raises(ValueError) as err:
            build_detector(get_spec(name), model, 5, 128)
        assert str(err.value) == (f"{name} reads the last layer's weights as a linear map's "
                                  "(logits = W z + b), but this classifier's last layer is "
                                  "UoSHead: its scores would mean something else"), name


def test_bench_settings_carry_their_own_classify_options():
    from robustrep.tasks.ood.bench_training import split_setting
    assert split_setting("none") == ("none", {})
    assert split_setting("adaptivemix@head=uos@am_weight=2") == ("adaptivemix",
                                                                 {"head": "uos", "am_weight": 2})
    assert split_setting("mixup+pgd@head=uos") == ("mixup+pgd", {"head": "uos"})


def test_mc_dropout_scores_images_in_the_program(tiny_data):
    """``--param UoS.mc_dropout=N`` routes UoS to the images (N stochastic passes through
    ``UoS.predict``), not to the one deterministic feature extraction."""
    from robustrep.tasks.common.classifier import create_classifier
    fit, id_test, ood = tiny_data
    torch.manual_seed(0)
    model = as_ood_model(create_classifier("wrn16_2", 3, in_chans=1, head="uos",
                                           drop_rate=0.3, final_act=False).eval())
    passes = []
    stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    stem.register_forward_hook(lambda _m, args, _out: passes.append(args[0].shape[0]))
    plain = score_model(model, [get_spec("UoS")], id_test, ood, fit, num_classes=3,
                        batch_size=16).detectors["UoS"]
    plain_passes, passes[:] = list(passes), []
    mc = score_model(model, [get_spec("UoS")], id_test, ood, fit, num_classes=3, batch_size=16,
                     params={"UoS": {"mc_dropout": 4}}).detectors["UoS"]
    assert plain.error is None and mc.error is None
    # three more passes over the ID test batch (one extraction + four MC passes, against one)
    assert passes.count(len(id_test)) - plain_passes.count(len(id_test)) >= 3
    assert not torch.allclose(mc.id_scores, plain.id_scores)  # dropout was on in them
    assert not model.training and all(not m.training for m in model.modules())
