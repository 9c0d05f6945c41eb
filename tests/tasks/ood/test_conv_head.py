"""A classifier whose last layer is a 1x1 convolution (timm ResNetV2/BiT, DLA, DPN) scored by
every detector (tasks/ood/extract.py ``as_ood_model``/``last_layer``, robustrep/split.py
``ConvClassifier``): the logits are the model's own, and ViM, DICE, NCI and fDBD read its kernel
as the ``[C, D]`` weight of the linear map it is. Was: ``ood score --model resnetv2_18`` failed
in conv2d with a traceback (``got input of size: [8, 512]``), exit 1."""

import json

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.ood.detectors import build_detector, linear_map, parse_detectors
from robustrep.split import ConvClassifier
from robustrep.tasks.ood.extract import as_ood_model


@pytest.fixture(scope="module")
def resnetv2():
    """timm's resnetv2_18 (512-d features, a Conv2d(512, 5, 1) classifier) with a bias that is
    not zero, in eval mode, wrapped with normalisation like a classify run."""
    from robustrep.tasks.common.classifier import create_classifier
    torch.manual_seed(0)
    net = create_classifier("resnetv2_18", 5, in_chans=3).eval()
    torch.nn.init.normal_(net.model.get_classifier().bias)
    return net


def test_a_1x1_conv_head_gives_the_models_own_logits_and_its_linear_map(resnetv2):
    model = as_ood_model(resnetv2)
    assert isinstance(model.classifier, ConvClassifier)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        logits, z, maps = model.outputs(x, maps=True)
        own = resnetv2(x)
        assert torch.equal(logits, own) and torch.equal(model(x), own)
        assert torch.equal(model.maps_head(maps), own)
        w, b = linear_map(model.classifier)
        assert w.shape == (5, 512) and b.shape == (5,)
        torch.testing.assert_close(z @ w.T + b, own)  # the reshaped kernel is the same map
        vim = build_detector(parse_detectors("ViM")[0], model, 5, 512)
        torch.testing.assert_close(vim._get_logits(z), own)  # ViM's W and b: the logits


@pytest.fixture(scope="module")
def tiny_resnetv2():
    """A ResNetV2 as resnetv2_18 is built (basic blocks, a 1x1-conv classifier), 32-d."""
    from timm.layers import BatchNormAct2d, create_conv2d
    from timm.models.resnetv2 import ResNetV2

    from robustrep.nets.classifier import as_classifier
    torch.manual_seed(0)
    net = ResNetV2(layers=(1, 1, 1, 1), channels=(8, 16, 16, 32), num_classes=3, in_chans=1,
                   stem_chs=8, basic=True, bottle_ratio=1.0, conv_layer=create_conv2d,
                   norm_layer=BatchNormAct2d)
    assert isinstance(net.get_classifier(), torch.nn.Conv2d)
    return as_classifier(net, 1, [0.5], [0.5]).eval()


# the detectors that read the last layer (w, b, head, param_filter) or call it on maps
HEAD_READERS = "ViM,DICE,NCI,fDBD,GradNorm,LTS,NNGuide,PNML,ReAct,ASH,MaxSoftmax,Mahalanobis"


def test_every_detector_that_reads_the_head_scores_a_conv_head_model(tiny_resnetv2, tiny_data):
    from robustrep.tasks.ood.score import score_model
    fit, id_test, ood = tiny_data
    result = score_model(as_ood_model(tiny_resnetv2), parse_detectors(HEAD_READERS), id_test,
                         ood, fit, num_classes=3, batch_size=32)
    assert {name: row.error for name, row in result.detectors.items()} == {
        name: None for name in HEAD_READERS.split(",")}


def test_gradnorm_differentiates_the_conv_kernel(tiny_resnetv2):
    from robustrep.tasks.ood.detectors import _classifier_param_filter
    model = as_ood_model(tiny_resnetv2)
    keep = _classifier_param_filter(model, model)
    assert [n for n, _ in model.named_parameters() if keep(n)] == ["net.model.head.fc.weight"]


def test_ood_score_scores_a_resnetv2_model_from_the_command_line(tmp_path):
    import timm
    weights = tmp_path / "rv2.pt"
    torch.save(timm.create_model("resnetv2_18", num_classes=3, in_chans=1).state_dict(), weights)
    out = tmp_path / "o"
    assert main(["ood", "score", "--model", "resnetv2_18", "--checkpoint", str(weights),
                 "--dataset", "digits", "--classes", "0", "1", "2", "--image-size", "16",
                 "--channels", "1", "--mean", "0.5", "--std", "0.5", "--detectors",
                 "MaxSoftmax,ViM,NCI", "--param", "ViM.d=8", "--max-fit", "30", "--ood",
                 "gaussian", "--max-samples", "8", "--out", str(out), "--no-plots", "--quiet",
                 "--device", "cpu"]) == 0
    rows = json.loads((out / "results.json").read_text())["results"]
    assert {r["detector"]: r["error"] for r in rows} == {"MaxSoftmax": "", "ViM": "", "NCI": ""}


def test_a_distilled_models_two_heads_give_its_logits_and_no_linear_map():
    # DeiT's get_classifier() is (head, head_dist): OODModel refused the tuple with a TypeError
    import timm

    from robustrep.nets.classifier import as_classifier
    from robustrep.tasks.ood.checks import check_last_layer
    net = timm.create_model("deit_tiny_distilled_patch16_224", num_classes=3, img_size=32,
                            in_chans=1)
    classifier = as_classifier(net, 1, [0.5], [0.5]).eval()
    model = as_ood_model(classifier)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), classifier(x))
    check_last_layer(parse_detectors("MaxSoftmax,KNN"), model)
    with pytest.raises(ConfigError) as err:
        check_last_layer(parse_detectors("MaxSoftmax,ViM"), model)
    assert str(err.value) == (
        "--detectors ViM: ViM reads the classifier's last layer as a linear map (logits = W z + "
        "b, its weight W and bias b), but this classifier's last layer is two heads averaged "
        "(Linear, Linear), which is not one: the scores would mean something else; drop ViM "
        "from --detectors")


def test_a_linear_head_without_bias_gives_vim_a_zero_bias(tiny_classifier):
    # logits = W z exactly: was "ViM needs 'b' but the classifier's last layer (Linear) has none"
    import copy
    classifier = copy.deepcopy(tiny_classifier)
    fc = classifier.model.get_classifier()
    fc.bias = None
    model = as_ood_model(classifier)
    w, b = linear_map(model.classifier)
    assert w is fc.weight and torch.equal(b, torch.zeros(3))
    build_detector(parse_detectors("ViM")[0], model, 3, 96)
