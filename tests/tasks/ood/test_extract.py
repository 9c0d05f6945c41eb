"""Streaming extraction: one pass, buffers on the CPU, batch size does not change the result."""

import pytest
import torch
from torch.utils.data import DataLoader

from robustrep.tasks.ood.extract import OODModel, as_ood_model, extract


def test_uneven_batches_equal_one_batch(tiny_classifier, tiny_data):
    model = as_ood_model(tiny_classifier)
    _, id_test, _ = tiny_data  # 12 samples: batches of 5 leave a remainder of 2
    what = ("logits", "features", "maps")
    streamed = extract(model, id_test, what, batch_size=5)
    whole = extract(model, id_test, what, batch_size=len(id_test))
    for name in what:
        got, want = getattr(streamed, name), getattr(whole, name)
        assert got.device.type == "cpu" and got.shape[0] == len(id_test)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.equal(streamed.labels, id_test.targets)


def test_outputs_match_the_classifier(tiny_classifier, tiny_data):
    model = as_ood_model(tiny_classifier)
    x = tiny_data[1].images
    out = extract(model, tiny_data[1], ("logits", "features"), batch_size=4)
    with torch.no_grad():
        torch.testing.assert_close(out.logits, tiny_classifier(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.features, tiny_classifier.features(x), rtol=1e-5, atol=1e-5)
        # the feature-map detectors' backbone -> head path is the classifier again
        torch.testing.assert_close(model.maps_head(model.backbone(x)), tiny_classifier(x),
                                   rtol=1e-5, atol=1e-5)
    assert out.maps is None  # maps only when asked for


def test_loader_input_and_pooled_maps(tiny_classifier, tiny_data):
    model = as_ood_model(tiny_classifier, "pooled")
    loader = DataLoader(tiny_data[1], batch_size=7)
    out = extract(model, loader, ("features", "maps"))
    assert out.maps.shape == (*out.features.shape, 1, 1)
    torch.testing.assert_close(out.maps.flatten(1), out.features)
    with torch.no_grad():
        x = tiny_data[1].images
        torch.testing.assert_close(model.maps_head(model.backbone(x)), tiny_classifier(x),
                                   rtol=1e-5, atol=1e-5)


def test_bad_inputs(tiny_classifier, tiny_data):
    with pytest.raises(TypeError, match="cannot view"):
        as_ood_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown representation"):
        extract(as_ood_model(tiny_classifier), tiny_data[1], ("pixels",))
    with pytest.raises(ValueError, match="map_mode"):
        OODModel(tiny_classifier, tiny_classifier.feature_maps, lambda m: m,
                 tiny_classifier.model.get_classifier(), "both")


def test_token_maps_need_pooled_mode():
    """A transformer's forward_features gives tokens [B, N, D]: a clear error, not a crash."""
    net = torch.nn.Linear(4, 2)
    model = OODModel(net, lambda x: x.view(x.shape[0], 2, 4), lambda m: m.mean(1), net)
    with pytest.raises(ValueError, match="--feature-maps pooled"):
        model.backbone(torch.rand(3, 8))
