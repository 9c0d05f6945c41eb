"""SSGAN rotation loss: quarter labels, exact rotations, cross-entropy at chosen logits.

Checked once against torch-mimicry 0.1.16 (``SSGANBaseDiscriminator._rotate_batch`` and
``compute_ss_loss``) on random batches of 4, 6, 8 and 64: identical images, labels and losses.
"""

import math

import pytest
import torch

from robustrep.ssgan import SSGAN, rotate, rotate_quarters, rotation_labels, rotation_loss
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
