"""robustrep.uos: the frozen orthogonal |Wv| head and the UoS angle score."""

import math

import numpy as np
import pytest
import torch
from pytorch_ood.api import RequiresFittingException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from robustrep.uos import UoS, UoSHead, first_singular_vectors, subspace_angles


def _class_data(seed=0, n=40, d=12, k=3):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n * k, d, generator=gen, dtype=torch.float64)
    y = torch.arange(k).repeat_interleave(n)
    return z, y


def test_first_singular_vector_equals_numpy_svd_up_to_sign():
    z, y = _class_data()
    vectors, classes = first_singular_vectors(z, y)
    assert classes.tolist() == [0, 1, 2]
    for c in range(3):
        u = np.linalg.svd(z[y == c].numpy().T)[0][:, 0]  # D x N_c, first left singular vector
        got = vectors[c].numpy()
        assert abs(abs(float(got @ u)) - 1.0) < 1e-10
        np.testing.assert_allclose(np.abs(got), np.abs(u), atol=1e-10)


def test_negative_labels_are_ignored_when_fitting():
    z, y = _class_data()
    y_ood = torch.cat([y, torch.full((5,), -1)])
    z_ood = torch.cat([z, 100 * torch.ones(5, z.shape[1], dtype=z.dtype)])
    a, _ = first_singular_vectors(z, y)
    b, classes = first_singular_vectors(z_ood, y_ood)
    assert classes.tolist() == [0, 1, 2]
    torch.testing.assert_close(a.abs(), b.abs())


def test_feature_on_a_class_direction_scores_zero_and_orthogonal_scores_half_pi():
    z, y = _class_data()
    det = UoS().fit_features(z, y)
    u = det.vectors
    on = torch.stack([u[1], -3.0 * u[2]])  # either sign of the subspace, any length
    torch.testing.assert_close(det.predict_features(on), torch.zeros(2, dtype=torch.float64),
                               atol=1e-6, rtol=0)
    # A vector orthogonal to every class direction is at pi/2 from all of them.
    q, _ = torch.linalg.qr(torch.cat([u.T, torch.randn(12, 1, dtype=u.dtype)], dim=1))
    orth = q[:, 3:].T
    torch.testing.assert_close(det.predict_features(orth),
                               torch.full((1,), math.pi / 2, dtype=torch.float64))


def test_score_is_the_smallest_angle():
    u = torch.eye(4, dtype=torch.float64)[:2]  # class directions e0, e1
    det = UoS()
    det.vectors = u
    theta = 0.3
    z = torch.tensor([[math.cos(theta), 0.0, math.sin(theta), 0.0]], dtype=torch.float64)
    torch.testing.assert_close(det.predict_features(z), torch.tensor([theta],
                                                                     dtype=torch.float64))
    angles = subspace_angles(z, u)
    torch.testing.assert_close(angles, torch.tensor([[theta, math.pi / 2]], dtype=torch.float64))


def test_scores_are_invariant_to_feature_scaling():
    z, y = _class_data()
    det = UoS().fit_features(z, y)
    test = torch.randn(16, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    base = det.predict_features(test)
    for scale in (1e-3, 0.5, 7.0, 1e4):
        torch.testing.assert_close(det.predict_features(scale * test), base)
    assert bool((base >= 0).all()) and bool((base <= math.pi / 2).all())


def test_fit_on_a_loader_through_the_encoder_equals_fit_features():
    z, y = _class_data()
    encoder = nn.Linear(12, 8).double()
    loader = DataLoader(TensorDataset(z, y), batch_size=32)
    a = UoS(encoder).fit(loader)
    with torch.no_grad():
        b = UoS().fit_features(encoder(z), y)
    torch.testing.assert_close(a.vectors, b.vectors)
    torch.testing.assert_close(a.predict(z[:5]), b.predict_features(encoder(z[:5]).detach()))


def test_predict_before_fit_raises():
    with pytest.raises(RequiresFittingException):
        UoS().predict_features(torch.randn(2, 3))


def test_head_logits_are_abs_of_W_times_unit_feature_and_lie_in_0_1():
    torch.manual_seed(0)
    head = UoSHead(32, 10)
    z = 5 * torch.randn(64, 32)
    logits = head(z)
    expected = (z / z.norm(dim=1, keepdim=True)) @ head.weight.T
    torch.testing.assert_close(logits, expected.abs())
    assert float(logits.min()) >= 0 and float(logits.max()) <= 1 + 1e-6
    torch.testing.assert_close(head(0.01 * z), logits)  # scale invariant
    # project() does not renormalise: AdaptiveMix's mixed unit features keep their length.
    v = head.embed(z)
    torch.testing.assert_close(head.project(0.5 * v), 0.5 * logits)
    scaled = UoSHead(32, 10, scale=4.0)
    torch.testing.assert_close(scaled(z), 4.0 * (head.embed(z) @ scaled.weight.T).abs())


def test_head_is_orthogonal_frozen_saved_and_unchanged_by_an_optimizer_step():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), UoSHead(16, 4))
    head = net[1]
    w0 = head.weight.detach().clone()
    torch.testing.assert_close(w0 @ w0.T, torch.eye(4), atol=1e-5, rtol=0)
    assert head.weight.requires_grad is False
    assert "1.weight" in net.state_dict() and "1.bias" not in net.state_dict()
    opt = torch.optim.SGD(net.parameters(), lr=1.0, momentum=0.9, weight_decay=0.1)
    loss = nn.functional.cross_entropy(net(torch.randn(8, 6)), torch.arange(8) % 4)
    loss.backward()
    opt.step()
    assert torch.equal(head.weight, w0)
    assert not torch.equal(net[0].weight.grad, torch.zeros_like(net[0].weight))


def test_head_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        UoSHead(4, 2, scale=0.0)
    with pytest.raises(ValueError, match="in_features"):
        UoSHead(0, 2)


class _DropoutEncoder(torch.nn.Module):
    """Features through a dropout layer: each pass in training mode draws another mask."""

    def __init__(self, p=0.5):
        super().__init__()
        self.drop = torch.nn.Dropout(p)

    def forward(self, x):
        return self.drop(x)


def test_mc_dropout_takes_the_minimum_over_passes_with_dropout_on():
    gen = torch.Generator().manual_seed(0)
    train, labels = torch.randn(60, 6, generator=gen), torch.arange(60) % 3
    x = torch.randn(5, 6, generator=gen)
    enc = _DropoutEncoder().eval()
    uos = UoS(enc, mc_dropout=7).fit_features(train, labels)
    torch.manual_seed(3)
    got = uos.predict(x)
    assert not enc.drop.training  # put back in eval mode
    torch.manual_seed(3)
    enc.drop.train()
    passes = torch.stack([uos.predict_features(enc(x)) for _ in range(7)])
    enc.drop.eval()
    torch.testing.assert_close(got, passes.min(0).values)
    assert (passes.max(0).values > got).all()  # the passes really differ
    one = UoS(enc).fit_features(train, labels)
    torch.testing.assert_close(one.predict(x), one.predict_features(x))  # one pass: eval mode


def test_mc_dropout_needs_dropout_and_a_positive_count():
    uos = UoS(torch.nn.Identity(), mc_dropout=3).fit_features(torch.randn(9, 4),
                                                               torch.arange(9) % 3)
    assert uos.scores_images and not UoS().scores_images
    with pytest.raises(ValueError, match="dropout"):
        uos.predict(torch.randn(2, 4))
    with pytest.raises(ValueError, match="mc_dropout"):
        UoS(mc_dropout=0)


def test_head_arguments_boundaries_and_messages():
    head = UoSHead(1, 1)  # one feature, one class: the smallest head
    assert head.bias is None and head.weight.shape == (1, 1)
    for args in ((0, 2), (2, 0)):
        with pytest.raises(ValueError) as err:
            UoSHead(*args)
        assert str(err.value) == (f"in_features and num_classes must be >= 1, got in_features="
                                  f"{args[0]}, num_classes={args[1]}")
    with pytest.raises(ValueError) as err:
        UoSHead(4, 2, scale=float("inf"))
    assert str(err.value) == "scale must be a finite number > 0, got inf"


def test_head_gain_scales_the_orthogonal_rows():
    torch.manual_seed(0)
    w = UoSHead(16, 4, gain=2.0).weight
    torch.testing.assert_close(w @ w.T, 4 * torch.eye(4), atol=1e-5, rtol=0)


def test_head_normalises_the_last_dimension_and_follows_the_features_dtype():
    torch.manual_seed(0)
    head = UoSHead(8, 3)
    z = torch.randn(2, 5, 8)  # any leading dimensions: the feature is the last one
    v = head.embed(z)
    torch.testing.assert_close(v, z / z.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(head(z), (v @ head.weight.T).abs())
    z64 = torch.randn(4, 8, dtype=torch.float64)
    out = head(z64)  # the float32 weight is cast to the features' dtype
    assert out.dtype == torch.float64
    expect = ((z64 / z64.norm(dim=1, keepdim=True)) @ head.weight.double().T).abs()
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-12)


@pytest.mark.parametrize("z,labels,message", [
    (torch.zeros(6, 4, 1), torch.zeros(6), "got z (6, 4, 1), labels (6,)"),
    (torch.zeros(6, 4), torch.zeros(6, 1), "got z (6, 4), labels (6, 1)"),
    (torch.zeros(6, 4), torch.zeros(5), "got z (6, 4), labels (5,)"),
])
def test_first_singular_vectors_names_bad_shapes(z, labels, message):
    with pytest.raises(ValueError) as err:
        first_singular_vectors(z, labels)
    assert str(err.value) == "z must be [N, D] and labels [N]; " + message


def test_only_ood_labels_are_refused_saying_why():
    with pytest.raises(ValueError) as err:
        first_singular_vectors(torch.randn(3, 4), torch.full((3,), -1))
    assert str(err.value) == "labels hold no in-distribution sample (all are negative)"


def test_detector_messages_and_arguments():
    det = UoS()
    assert det.vectors is None and det.classes is None
    with pytest.raises(RequiresFittingException) as err:
        det.predict_features(torch.randn(2, 3))
    assert str(err.value) == "UoS must be fitted (fit or fit_features) first"
    for call, name in ((lambda: det.fit([]), "fit"), (lambda: det.predict(torch.zeros(1)),
                                                        "predict")):
        with pytest.raises(Exception) as err:
            call()
        assert type(err.value).__name__ == "ModelNotSetException"
        assert str(err.value) == f"UoS.{name} needs an encoder (images -> features)"
    z, y = _class_data(d=4)
    det.fit_features(z, y)
    assert det.classes.tolist() == [0, 1, 2]
    for bad in (torch.zeros(2, 4, 1), torch.zeros(2, 5), torch.zeros(4)):
        with pytest.raises(ValueError) as err:
            det.predict_features(bad)
        assert str(err.value) == f"features must be [B, 4], got {tuple(bad.shape)}"
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ValueError) as err:
            UoS(mc_dropout=bad)
        assert str(err.value) == f"mc_dropout must be an integer >= 1, got {bad!r}"


class _DeviceProbe(nn.Module):
    """An encoder held on ``meta`` (standing in for an accelerator): records the device of the
    images it gets and answers fixed CPU features, so that the fit itself can run."""

    def __init__(self, feats):
        super().__init__()
        self.register_buffer("anchor", torch.zeros(1, device="meta"))
        self.feats, self.seen = feats, []

    def forward(self, x):
        self.seen.append(x.device.type)
        return self.feats[: x.shape[0]]


def test_images_and_class_directions_go_to_the_encoders_device():
    z, y = _class_data(n=4, d=5)
    enc = _DeviceProbe(z)
    det = UoS(enc).fit(DataLoader(TensorDataset(torch.zeros(12, 2), y), batch_size=12))
    assert enc.seen == ["meta"]
    assert det.vectors.device.type == "meta" and det.classes.tolist() == [0, 1, 2]
    det.predict(torch.zeros(3, 2))
    assert enc.seen == ["meta", "meta"]


@pytest.mark.parametrize("passes", [2, 5])
def test_mc_dropout_from_two_passes_on(passes):
    gen = torch.Generator().manual_seed(1)
    train, labels = torch.randn(60, 6, generator=gen), torch.arange(60) % 3
    x = torch.randn(8, 6, generator=gen)
    enc = _DropoutEncoder().eval()
    uos = UoS(enc, mc_dropout=passes).fit_features(train, labels)
    torch.manual_seed(4)
    got = uos.predict(x)
    torch.manual_seed(4)
    enc.drop.train()
    expect = torch.stack([uos.predict_features(enc(x)) for _ in range(passes)]).min(0).values
    enc.drop.eval()
    torch.testing.assert_close(got, expect)
    assert not torch.equal(got, uos.predict_features(x))  # not the deterministic pass
