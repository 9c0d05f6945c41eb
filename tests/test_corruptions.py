"""On-the-fly corruptions against NumPy/SciPy/PIL transcriptions of make_cifar_c.py."""

import colorsys
import io

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image

from robustrep.corruptions import (BENCHMARK, CORRUPTIONS, corrupt, hsv_to_rgb,
                                   mean_corruption_error, rgb_to_hsv)


@pytest.fixture(scope="module")
def image():
    """A fixed 32x32 RGB image on the 8-bit grid, as tensor [1, 3, H, W] and array HxWx3."""
    a = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    return torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255, a.astype(np.float64) / 255


def _hwc(t):
    return t[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_contrast_uses_per_channel_means(image, severity):
    x, a = image
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    means = np.mean(a, axis=(0, 1), keepdims=True)
    ref = np.clip((a - means) * c + means, 0, 1)
    np.testing.assert_allclose(_hwc(corrupt(x, "contrast", severity)), ref, atol=1e-12)


@pytest.mark.parametrize("severity", [1, 5])
def test_brightness_adds_to_the_hsv_value(image, severity):
    x, a = image
    c = [.05, .1, .15, .2, .3][severity - 1]
    # Raising V with H and S fixed scales the pixel by V'/V (black pixels become grey V').
    v = a.max(axis=2, keepdims=True)
    v_new = np.clip(v + c, 0, 1)
    ref = np.where(v > 0, a * v_new / np.maximum(v, 1e-12), v_new)
    np.testing.assert_allclose(_hwc(corrupt(x, "brightness", severity)), ref, atol=1e-9)


def test_hsv_matches_colorsys_and_round_trips(image):
    x, a = image
    hsv = rgb_to_hsv(x)
    ref = np.array([colorsys.rgb_to_hsv(*p) for p in a.reshape(-1, 3)]).reshape(32, 32, 3)
    np.testing.assert_allclose(_hwc(hsv), ref, atol=1e-12)
    torch.testing.assert_close(hsv_to_rgb(hsv), x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("severity", [1, 5])
def test_gaussian_blur_matches_scipy_nearest_truncate4(image, severity):
    x, a = image
    sigma = [.4, .6, 0.7, .8, 1][severity - 1]
    ref = np.clip(ndi.gaussian_filter(a, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0),
                  0, 1)
    np.testing.assert_allclose(_hwc(corrupt(x, "gaussian_blur", severity)), ref, atol=1e-12)


def _ref_disk(radius, alias_blur):
    """make_cifar_c.py's disk(), with cv2.GaussianBlur(ksize 3) written out in SciPy."""
    L = np.arange(-8, 8 + 1)
    X, Y = np.meshgrid(L, L)
    d = np.array((X ** 2 + Y ** 2) <= radius ** 2, dtype=np.float64)
    d /= np.sum(d)
    g = np.exp(-np.arange(-1, 2) ** 2 / (2 * alias_blur ** 2))
    g /= g.sum()
    return ndi.correlate(d, np.outer(g, g), mode="mirror")  # cv2's BORDER_REFLECT_101


@pytest.mark.parametrize("severity", [1, 4, 5])
def test_defocus_blur_matches_the_disk_kernel(image, severity):
    x, a = image
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    k = _ref_disk(radius, alias)
    ref = np.stack([ndi.correlate(a[:, :, d], k, mode="mirror") for d in range(3)], 2)
    np.testing.assert_allclose(_hwc(corrupt(x, "defocus_blur", severity)), np.clip(ref, 0, 1),
                               atol=1e-12)


@pytest.mark.parametrize("severity", [2, 5])
def test_pixelate_and_jpeg_match_pil(image, severity):
    x, a = image
    img = Image.fromarray((a * 255).round().astype(np.uint8))
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    pix = img.resize((int(32 * c), int(32 * c)), Image.BOX).resize((32, 32), Image.BOX)
    np.testing.assert_array_equal(_hwc(corrupt(x, "pixelate", severity)) * 255, np.asarray(pix))
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=[80, 65, 58, 50, 40][severity - 1])
    jpg = np.asarray(Image.open(buffer))
    np.testing.assert_array_equal(_hwc(corrupt(x, "jpeg_compression", severity)) * 255, jpg)


def test_noise_statistics_follow_the_reference_parameters():
    x = torch.full((4, 3, 64, 64), 0.5, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    noise = corrupt(x, "gaussian_noise", 4, gen) - x  # c = 0.09; 0.5 +- 5c is never clipped
    assert abs(noise.mean().item()) < 2e-3 and noise.std().item() == pytest.approx(0.09, rel=0.02)
    shot = corrupt(x, "shot_noise", 5, gen)  # Poisson(0.5 * 50) / 50: mean 0.5, var 0.5 / 50
    assert shot.mean().item() == pytest.approx(0.5, abs=3e-3)
    assert shot.var().item() == pytest.approx(0.5 / 50, rel=0.05)
    imp = corrupt(x, "impulse_noise", 5, gen)  # 7% of values flipped, half to 0, half to 1
    changed = imp != x
    assert changed.double().mean().item() == pytest.approx(0.07, abs=0.005)
    assert imp[changed].mean().item() == pytest.approx(0.5, abs=0.05)
    speckle = corrupt(x, "speckle_noise", 5, gen) - x  # x * N(0, 0.2^2): std 0.1
    assert speckle.std().item() == pytest.approx(0.1, rel=0.02)
    a = corrupt(x, "shot_noise", 1, torch.Generator().manual_seed(7))
    assert torch.equal(a, corrupt(x, "shot_noise", 1, torch.Generator().manual_seed(7)))


def test_grey_images_and_arguments():
    grey = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    for name in CORRUPTIONS:
        out = corrupt(grey, name, 3, torch.Generator().manual_seed(0))
        assert out.shape == grey.shape and out.min() >= 0 and out.max() <= 1, name
    torch.testing.assert_close(corrupt(grey, "brightness", 2), (grey + 0.1).clamp(0, 1))
    with pytest.raises(ValueError, match="name must be one of"):
        corrupt(grey, "fog", 1)
    with pytest.raises(ValueError, match="1..5"):
        corrupt(grey, "contrast", 6)
    assert len(BENCHMARK) == 15 and len(set(BENCHMARK) & set(CORRUPTIONS)) == 8


def test_mean_corruption_error_by_hand():
    acc = {"a": {1: 0.9, 2: 0.7}, "b": {1: 0.5, 2: 0.5}}
    out = mean_corruption_error(acc, clean_acc=0.95)
    # CE_a = mean(0.1, 0.3) = 0.2, CE_b = 0.5 -> mCE 0.35; relative: (0.15 + 0.45) / 2 = 0.3.
    assert out["mce"] == pytest.approx(0.35) and out["relative_mce"] == pytest.approx(0.3)
    assert out["mean_acc"] == pytest.approx(0.65) and out["clean_error"] == pytest.approx(0.05)
