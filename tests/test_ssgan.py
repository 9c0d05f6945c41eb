"""SSGAN rotation loss: quarter labels, exact rotations, cross-entropy at chosen logits.

Checked once against torch-mimicry 0.1.16 (``SSGANBaseDiscriminator._rotate_batch`` and
``compute_ss_loss``) on random batches of 4, 6, 8 and 64: identical images, labels and losses.
"""

import math

import pytest
import torch

from robustrep.ssgan import (SSGAN, RotationHead, rotate, rotate_quarters, rotation_labels,
                             rotation_loss)
from robustrep.nets.dcgan import dcgan_discriminator
from robustrep.nets.sngan import sngan_discriminator


@pytest.mark.parametrize("n, expected", [(8, [0, 0, 1, 1, 2, 2, 3, 3]), (6, [0, 0, 1, 2, 2, 3]),
                                         (4, [0, 1, 2, 3])])
def test_labels_are_batch_quarters(n, expected):
    assert rotation_labels(n).tolist() == expected


def test_rotations_are_exact_quarter_turns():
    img = torch.arange(9.0).reshape(1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    by_hand = {0: [[0, 1, 2], [3, 4, 5], [6, 7, 8]],
               1: [[2, 5, 8], [1, 4, 7], [0, 3, 6]],  # counter-clockwise as displayed
               2: [[8, 7, 6], [5, 4, 3], [2, 1, 0]],
               3: [[6, 3, 0], [7, 4, 1], [8, 5, 2]]}
    x = img.repeat(4, 2, 1, 1)
    out = rotate(x, torch.arange(4))
    for k, grid in by_hand.items():
        assert out[k].tolist() == [grid, grid]
        assert torch.equal(out[k], torch.rot90(x[k], k, dims=(-2, -1)))


def test_rotate_quarters_rotates_each_sample_by_its_label():
    x = torch.randn(8, 3, 5, 5)
    out, labels = rotate_quarters(x)
    for i in range(8):
        assert torch.equal(out[i], torch.rot90(x[i], int(labels[i]), dims=(-2, -1)))


def test_rotation_loss_at_chosen_logits():
    logits = torch.tensor([[math.log(3.0), 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
                          dtype=torch.float64)
    # row 0: -log(3 / (3 + 3)) = log 2; row 1: -log(1 / 4) = log 4; mean 1.5 log 2
    loss = rotation_loss(logits, torch.tensor([0, 2]), scale=0.2)
    assert loss.item() == pytest.approx(0.2 * 1.5 * math.log(2.0), abs=1e-12)


def test_rotation_loss_rejects_wrong_width():
    with pytest.raises(ValueError, match="4 columns"):
        rotation_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))


def test_d_and_g_terms_use_their_scales_and_the_rotated_batch():
    torch.manual_seed(0)
    d = SSGAN(sngan_discriminator((3, 32, 32), 8), feature_dim=8, ss_loss_scale=1.0,
              g_ss_loss_scale=0.2)
    d.eval()  # spectral norm's power iteration would move between the passes in train mode
    x = torch.randn(8, 3, 32, 32)
    x_rot, labels = rotate_quarters(x)
    ce = torch.nn.functional.cross_entropy(d.rotation_head(d.features(x_rot)), labels)
    assert torch.allclose(d.d_loss(x)["loss"], ce)
    assert torch.allclose(d.g_loss(x)["loss"], 0.2 * ce)


def test_g_term_reaches_the_fakes_and_forward_is_the_gan_logit():
    torch.manual_seed(0)
    base = dcgan_discriminator((3, 32, 32), 8, spectral_norm=True, batchnorm=False)
    d = SSGAN(base, feature_dim=32 * 16)  # the DCGAN trunk ends at a 4x4 map of 4*width
    fakes = torch.randn(4, 3, 32, 32, requires_grad=True)
    d.g_loss(fakes)["loss"].backward()
    assert fakes.grad is not None and fakes.grad.abs().sum() > 0
    d.eval()
    assert torch.equal(d(fakes), base(fakes))


def test_wrap_probes_a_float64_discriminator_in_its_dtype():
    # Was: the probe batch was float32 zeros: "Input type (float) and bias type (double)"
    from robustrep.registry import create_regularizer
    d = dcgan_discriminator((3, 16, 16), 4).double()
    wrapped = create_regularizer("ssgan").wrap(d, (3, 16, 16))
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    assert wrapped.d_loss(x)["loss"].dtype == torch.float64


# --- pinned by mutation testing (scripts/mutation.py ssgan) --------------------------------------


@pytest.mark.parametrize("call,message", [
    (lambda: rotate(torch.zeros(4, 3, 3), torch.arange(4)), "x must have rank 4, got rank 3"),
    (lambda: rotate(torch.zeros(2, 1, 3, 4), torch.arange(2)),
     r"x must hold square images to rotate, got \(2, 1, 3, 4\)$"),
    (lambda: rotate(torch.zeros(4, 3, 2, 2), torch.arange(3)),
     r"labels must have shape \(4,\), got \(3,\)$"),
    (lambda: rotation_loss(torch.zeros(2, 4, 1), torch.zeros(2, dtype=torch.long)),
     "logits must have rank 2, got rank 3"),
    (lambda: rotation_loss(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, dtype=torch.long)),
     "logits must be a floating-point tensor"),
    (lambda: rotation_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)),
     r"logits must have 4 columns, got \(2, 3\)$"),
    (lambda: SSGAN(dcgan_discriminator((3, 16, 16), 4), 128, ss_loss_scale=-1.0),
     "ss_loss_scale must be >= 0, got -1.0$"),
    (lambda: SSGAN(dcgan_discriminator((3, 16, 16), 4), 128, g_ss_loss_scale=-1.0),
     "g_ss_loss_scale must be >= 0, got -1.0$"),
])
def test_bad_arguments_are_named_with_what_is_accepted(call, message):
    with pytest.raises((ValueError, TypeError), match=f"^{message}"):
        call()


def test_labels_are_made_on_the_inputs_device(monkeypatch):
    # meta stands in for an accelerator (rotate itself needs nonzero, which meta lacks)
    import robustrep.ssgan as ssgan
    assert rotation_labels(4, "meta").device.type == "meta"
    monkeypatch.setattr(ssgan, "rotate", lambda x, labels: x)
    _, labels = ssgan.rotate_quarters(torch.zeros(4, 3, 2, 2, device="meta"))
    assert labels.device.type == "meta"


def test_rotation_loss_default_scale_is_one():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    labels = rotation_labels(6)
    torch.testing.assert_close(rotation_loss(logits, labels),
                               torch.nn.functional.cross_entropy(logits, labels))


def _xavier_bound(linear):
    return math.sqrt(6.0 / (linear.in_features + linear.out_features))


@pytest.mark.parametrize("spectral_norm", [None, True, False])
def test_head_is_xavier_uniform_with_spectral_norm_by_default(spectral_norm):
    from torch.nn.utils import parametrize
    torch.manual_seed(0)
    kw = {} if spectral_norm is None else dict(spectral_norm=spectral_norm)
    d = SSGAN(dcgan_discriminator((3, 16, 16), 4), 128, **kw)
    linear = d.rotation_head.linear
    assert parametrize.is_parametrized(linear) == (spectral_norm is not False)
    raw = linear.parametrizations.weight.original if spectral_norm is not False else linear.weight
    assert 0.95 * _xavier_bound(linear) < raw.abs().max() <= _xavier_bound(linear)
    assert parametrize.is_parametrized(RotationHead(8).linear)  # the reference's SNLinear


def test_ssgan_defaults_are_the_references_and_head_is_ds():
    base = dcgan_discriminator((3, 16, 16), 4)
    d = SSGAN(base, 128)
    assert (d.ss_loss_scale, d.g_ss_loss_scale) == (1.0, 0.2)
    z = torch.randn(3, 8, 4, 4)
    assert torch.equal(d.head(z), base.head(z))


def test_registered_task_defaults_scales_and_losses():
    from robustrep.registry import create_regularizer
    task = create_regularizer("ssgan")
    assert (task.d_scale, task.g_scale) == (1.0, 0.2)
    task = create_regularizer("ssgan", d_scale=0.7, g_scale=0.3)
    torch.manual_seed(0)
    wrapped = task.wrap(dcgan_discriminator((3, 16, 16), 4), (3, 16, 16)).eval()
    assert (wrapped.ss_loss_scale, wrapped.g_ss_loss_scale) == (0.7, 0.3)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    x_rot, labels = rotate_quarters(x)
    ce = torch.nn.functional.cross_entropy(wrapped.rotation_logits(x_rot), labels)
    torch.testing.assert_close(task.d_aux_loss(wrapped, x), 0.7 * ce)
    torch.testing.assert_close(task.g_aux_loss(wrapped, x), 0.3 * ce)
