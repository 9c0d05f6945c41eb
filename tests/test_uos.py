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
