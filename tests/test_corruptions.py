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


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_contrast_uses_per_channel_means(image, severity):
    x, a = image
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    means = np.mean(a, axis=(0, 1), keepdims=True)
    ref = np.clip((a - means) * c + means, 0, 1)
    np.testing.assert_allclose(_hwc(corrupt(x, "contrast", severity)), ref, atol=1e-12)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
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


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
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


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
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


# --- the noise draws replayed, every severity (make_cifar_c.py's tables) -----------------------

NOISE = {  # name: (the reference's parameters, the formula on the generator's draws in order)
    "gaussian_noise": ([0.04, 0.06, .08, .09, .10],
                       lambda x, c, g: (x + torch.randn(x.shape, generator=g,
                                                        dtype=x.dtype) * c).clamp(0, 1)),
    "speckle_noise": ([.06, .1, .12, .16, .2],
                      lambda x, c, g: (x + x * torch.randn(x.shape, generator=g,
                                                           dtype=x.dtype) * c).clamp(0, 1)),
    "shot_noise": ([500, 250, 100, 75, 50],
                   lambda x, c, g: (torch.poisson(x * c, generator=g) / c).clamp(0, 1)),
    "impulse_noise": ([.01, .02, .03, .05, .07],
                      lambda x, c, g: torch.where(torch.rand(x.shape, generator=g) < c,
                                                  (torch.rand(x.shape, generator=g) < 0.5)
                                                  .double(), x)),
}


@pytest.mark.parametrize("name", sorted(NOISE))
@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_noise_equals_the_reference_formula_on_the_same_draws(image, name, severity):
    x, _ = image  # float64: the Gaussian draws must be made in the image's dtype
    table, formula = NOISE[name]
    expect = formula(x, table[severity - 1], torch.Generator().manual_seed(severity))
    out = corrupt(x, name, severity, torch.Generator().manual_seed(severity))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-15)


def _colorsys_saturate(a, scale, shift):
    """make_cifar_c.py's saturate, with colorsys for skimage's rgb2hsv / hsv2rgb."""
    out = []
    for p in a.reshape(-1, 3):
        h, s, v = colorsys.rgb_to_hsv(*p)
        out.append(colorsys.hsv_to_rgb(h, np.clip(s * scale + shift, 0, 1), v))
    return np.clip(np.array(out).reshape(a.shape), 0, 1)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_saturate_scales_and_shifts_the_hsv_saturation(image, severity):
    x, a = image
    scale, shift = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    np.testing.assert_allclose(_hwc(corrupt(x, "saturate", severity)),
                               _colorsys_saturate(a, scale, shift), atol=1e-12)


def test_hue_one_is_hue_zero():
    # skimage's hsv2rgb takes the sector modulo 6, so h = 1 (a full turn) is red's sector
    hsv = torch.tensor([[1.0, 0.5, 0.8], [0.0, 0.5, 0.8]], dtype=torch.float64).view(2, 3, 1, 1)
    rgb = hsv_to_rgb(hsv).flatten(1)
    torch.testing.assert_close(rgb[0], rgb[1])
    torch.testing.assert_close(rgb[1], torch.tensor([0.8, 0.4, 0.4], dtype=torch.float64))


def test_outputs_are_clipped_to_0_1_as_the_reference_even_for_inputs_outside():
    """Each formula ends in the reference's ``np.clip(..., 0, 1)``; an image outside [0, 1]
    (e.g. a GAN's [-1, 1]) shows it. PIL corruptions see the image clipped to 8 bits."""
    gen = torch.Generator().manual_seed(9)
    x = torch.rand(1, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 0.5  # [-0.5, 1.5]
    a = _hwc(x)
    m = a.mean(axis=(0, 1), keepdims=True)
    contrast = (a - m) * 0.75 + m  # reaches below 0 and above 1
    assert contrast.min() < 0 and contrast.max() > 1
    np.testing.assert_allclose(_hwc(corrupt(x, "contrast", 1)), np.clip(contrast, 0, 1),
                               atol=1e-12)
    blur = ndi.gaussian_filter(a, sigma=(1, 1, 0), mode="nearest", truncate=4.0)
    np.testing.assert_allclose(_hwc(corrupt(x, "gaussian_blur", 5)), np.clip(blur, 0, 1),
                               atol=1e-12)
    k = _ref_disk(1.5, 0.1)
    defocus = np.stack([ndi.correlate(a[:, :, d], k, mode="mirror") for d in range(3)], 2)
    np.testing.assert_allclose(_hwc(corrupt(x, "defocus_blur", 5)), np.clip(defocus, 0, 1),
                               atol=1e-12)
    for name in ("gaussian_noise", "speckle_noise"):
        table, formula = NOISE[name]
        torch.testing.assert_close(corrupt(x, name, 5, torch.Generator().manual_seed(1)),
                                   formula(x, table[4], torch.Generator().manual_seed(1)))
    for severity in (1, 5):  # values above 1 keep V: the clip after hsv2rgb matters
        scale, shift = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
        np.testing.assert_allclose(_hwc(corrupt(x, "saturate", severity)),
                                   _colorsys_saturate(a, scale, shift), atol=1e-12)
    img = Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8))
    pix = img.resize((int(16 * 0.65), int(16 * 0.65)), Image.BOX).resize((16, 16), Image.BOX)
    out = corrupt(x, "pixelate", 5)
    assert out.dtype == torch.float64  # PIL's 8 bits come back in the image's dtype
    np.testing.assert_array_equal(_hwc(out) * 255, np.asarray(pix))


def _cv2_gaussian_kernel(ksize, sigma):
    g = np.exp(-(np.arange(ksize) - (ksize - 1) / 2) ** 2 / (2 * sigma ** 2))
    return g / g.sum()


@pytest.mark.parametrize("radius", [8, 9, 10])
def test_disk_at_radius_8_and_above_is_the_references(radius):
    """make_cifar_c.py's disk() for large radii (ImageNet-C's table reaches 10): up to 8 a grid
    of +-8 and a 3x3 Gaussian, above it a grid of +-radius and a 5x5 one; not reached by the
    CIFAR severities, kept to the reference."""
    from robustrep.corruptions import _disk
    grid = np.arange(-max(radius, 8), max(radius, 8) + 1)
    X, Y = np.meshgrid(grid, grid)
    d = np.array((X ** 2 + Y ** 2) <= radius ** 2, dtype=np.float64)
    d /= d.sum()
    g = _cv2_gaussian_kernel(3 if radius <= 8 else 5, 0.5)
    ref = ndi.correlate(d, np.outer(g, g), mode="mirror")
    np.testing.assert_allclose(_disk(radius, 0.5).numpy(), ref, atol=1e-15)


def test_every_corruption_but_pil_ones_stays_on_the_inputs_device():
    # a meta tensor stands in for an accelerator: draws and kernels are made on x's device
    x = torch.zeros(2, 3, 8, 8, device="meta")
    for name in CORRUPTIONS:
        if name not in ("pixelate", "jpeg_compression"):  # PIL runs on the CPU copy
            assert corrupt(x, name, 1).device.type == "meta", name


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_bad_severity_names_the_corruption(name):
    x = torch.full((1, 3, 8, 8), 0.5)
    for bad in (0, 6, True, 2.0, "3"):
        with pytest.raises(ValueError) as err:
            corrupt(x, name, bad)
        assert str(err.value) == f"{name} severity must be an integer 1..5; got {bad!r}"


def test_a_non_tensor_image_is_a_type_error():
    with pytest.raises(TypeError) as err:
        corrupt([[0.5]], "contrast", 1)
    assert str(err.value) == "x must be float images [B, 1 or 3, H, W] in [0, 1]; got list"


@pytest.mark.parametrize("x,got", [
    (torch.zeros(3, 8, 8), "torch.float32 (3, 8, 8)"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "torch.uint8 (1, 3, 8, 8)"),
    (torch.zeros(1, 2, 8, 8), "torch.float32 (1, 2, 8, 8)"),
])
def test_bad_images_and_names_are_refused_saying_what_is_accepted(x, got):
    with pytest.raises(ValueError) as err:
        corrupt(x, "contrast", 1)
    assert str(err.value) == f"x must be float images [B, 1 or 3, H, W] in [0, 1]; got {got}"
    with pytest.raises(ValueError) as err:
        corrupt(torch.zeros(1, 3, 8, 8), "fog", 1)
    assert str(err.value) == ("name must be one of gaussian_noise, shot_noise, impulse_noise, "
                              "defocus_blur, brightness, contrast, pixelate, jpeg_compression, "
                              "gaussian_blur, speckle_noise, saturate; got 'fog'")


def test_mean_corruption_error_refuses_empty_input_saying_what():
    with pytest.raises(ValueError) as err:
        mean_corruption_error({}, 0.9)
    assert str(err.value) == "accuracy must hold at least one corruption"
    with pytest.raises(ValueError) as err:
        mean_corruption_error({"fog": {}}, 0.9)
    assert str(err.value) == "accuracy['fog'] holds no severity"


@pytest.mark.parametrize("bad,name", [
    ({"contrast": {1: 95.0}}, "accuracy['contrast'][1]"),  # percent, not a fraction
    ({"contrast": {1: float("nan")}}, "accuracy['contrast'][1]"),
    ({"contrast": {"1": "0.9"}}, "accuracy['contrast']['1']"),
    ({"contrast": {1: True}}, "accuracy['contrast'][1]"),
])
def test_mean_corruption_error_takes_accuracies_as_fractions(bad, name):
    with pytest.raises(ValueError) as err:
        mean_corruption_error(bad, 0.9)
    assert str(err.value) == (f"{name} must be an accuracy as a fraction in [0, 1]; "
                              f"got {bad['contrast'][next(iter(bad['contrast']))]!r}")
    with pytest.raises(ValueError, match=r"^clean_acc must be an accuracy as a fraction"):
        mean_corruption_error({"contrast": {1: 0.5}}, 95.2)
    out = mean_corruption_error({"contrast": {1: np.float32(0.5)}}, 1)  # numpy and int taken
    assert out["mce"] == 0.5 and out["clean_error"] == 0.0
