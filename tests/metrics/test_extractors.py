"""FID Inception-v3 loading from a local file, its TF-specific pools, and the digits CNN."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import InceptionA, InceptionE

from robustrep.metrics import (FID_WEIGHTS_FILE, DigitsFeatureNet, FIDInceptionV3,
                               load_fid_inception, train_digits_feature_net)
from robustrep.metrics.extractors import (FIDELITY_WEIGHTS_FILE, _FIDInceptionA, _FIDInceptionE,
                                          resize_bilinear_tf1)


def _randomise(model):
    # Kaiming-normal convs and random BN statistics keep activations O(1) through all 94 layers
    # (PyTorch's default init shrinks them to ~1e-7), so output comparisons mean something.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


@pytest.fixture(scope="module")
def fid_model():
    torch.manual_seed(0)
    return _randomise(FIDInceptionV3()).eval()


def test_load_round_trip_and_output_shape(fid_model, tmp_path):
    path = tmp_path / FID_WEIGHTS_FILE
    torch.save(fid_model.state_dict(), path)
    loaded = load_fid_inception(path)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = fid_model(x), loaded(x)
        # the same images given in [-1, 1] to a model told so
        sym = load_fid_inception(str(path), input_range=(-1, 1))(2 * x - 1)
    assert got.shape == (2, 2048) and got.dtype == torch.float32
    assert want.std() > 1e-3  # a meaningful comparison, not of near-zero activations
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(sym, want, rtol=1e-4, atol=1e-5)


def test_missing_file_names_path_and_expected_file(tmp_path):
    path = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(FileNotFoundError) as err:
        load_fid_inception(path)
    assert str(path) in str(err.value) and FID_WEIGHTS_FILE in str(err.value)
    with pytest.raises(FileNotFoundError, match=f"'{tmp_path}' is a folder; give the weight "
                                                f"file {FID_WEIGHTS_FILE}"):  # was "not found"
        load_fid_inception(tmp_path)


def test_nan_weights_are_named_not_turned_into_nan_features(fid_model, tmp_path):
    state = fid_model.state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(ValueError, match=rf"nan\.pth' holds NaN weights \({key}\)"):
        load_fid_inception(tmp_path / "nan.pth")


def test_wrong_state_dict_raises_value_error(fid_model, tmp_path):
    state = {k: v for k, v in fid_model.state_dict().items() if not k.startswith("Mixed_")}
    state["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's 1000 classes, not 1008
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        load_fid_inception(path)
    msg = str(err.value)
    assert "fc.weight (1000, 2048) (expected (1008, 2048))" in msg
    assert "AuxLogits.fc.weight" in msg and "Mixed_5b" in msg
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="not a state dict"):
        load_fid_inception(tmp_path / "list.pth")


def test_fid_blocks_use_tf_pools():
    torch.manual_seed(0)
    x = torch.randn(1, 192, 7, 7)
    ours, tv = _randomise(_FIDInceptionA(192, pool_features=32)), _randomise(InceptionA(192, 32))
    tv.load_state_dict(ours.state_dict())
    with torch.no_grad():
        a, b = ours.eval()(x), tv.eval()(x)
    # Only the pool branch (last 32 channels) differs, and only where the window meets padding.
    torch.testing.assert_close(a[:, :-32], b[:, :-32])
    torch.testing.assert_close(a[:, -32:, 1:-1, 1:-1], b[:, -32:, 1:-1, 1:-1])
    assert not torch.allclose(a[:, -32:, 0], b[:, -32:, 0])
    # Mixed_7c max-pools: equal to torchvision's InceptionE fed through a max pool branch
    e = _randomise(_FIDInceptionE(64, max_pool=True)).eval()
    tv_e = InceptionE(64).eval()
    tv_e.load_state_dict(e.state_dict())
    x = torch.randn(1, 64, 5, 5)
    with torch.no_grad():
        want = tv_e.branch_pool(F.max_pool2d(x, 3, 1, 1))
        assert torch.allclose(e(x)[:, -192:], want)
    model = FIDInceptionV3()
    assert model.Mixed_7c.max_pool and not model.Mixed_7b.max_pool
    assert model.fc.out_features == 1008 and model.AuxLogits is None


def _toy_digits(n=64, channels=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.1 * torch.rand(n, channels, 32, 32, generator=gen)
    images[labels == 0, :, :, :16] += 0.8  # class 0: bright left half
    images[labels == 1, :, :, 16:] += 0.8  # class 1: bright right half
    return images, labels


def test_digits_feature_net_trains_and_is_reproducible():
    images, labels = _toy_digits()
    rng_before = torch.get_rng_state()
    net = train_digits_feature_net(images, labels, epochs=3, batch_size=16, num_classes=2, seed=0)
    assert torch.equal(torch.get_rng_state(), rng_before)  # global RNG untouched
    assert isinstance(net, DigitsFeatureNet) and not net.training
    with torch.no_grad():
        feats = net.features(images)
        acc = (net(images).argmax(1) == labels).float().mean()
    assert feats.shape == (64, 128)
    assert acc > 0.9
    again = train_digits_feature_net(images, labels, epochs=3, batch_size=16, num_classes=2, seed=0)
    other = train_digits_feature_net(images, labels, epochs=3, batch_size=16, num_classes=2, seed=1)
    with torch.no_grad():
        assert torch.equal(again.features(images), feats)
        assert not torch.allclose(other.features(images), feats)


def test_digits_feature_net_rgb_and_channel_check():
    images, labels = _toy_digits(n=16, channels=3)
    net = train_digits_feature_net(images, labels, epochs=1, batch_size=8,
                                   generator=torch.Generator().manual_seed(0), feature_dim=32)
    with torch.no_grad():
        assert net.features(images).shape == (16, 32)
    with pytest.raises(ValueError, match="3 channels"):
        net.features(torch.rand(2, 1, 32, 32))


# --- the two FID input conventions, checked against the libraries that define them -----------

def _uint8_images(n=2, side=32, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, side, side), generator=gen, dtype=torch.uint8)


def test_tf1_resize_equals_torch_fidelity_resize():
    compat = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    x = 255 * torch.rand(2, 3, 32, 17, generator=torch.Generator().manual_seed(3))
    want = compat.interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299),
                                                            align_corners=False)
    got = resize_bilinear_tf1(x, (299, 299))
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # not the torch resize: TF1 has no half-pixel offset
    torch_resize = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert (got - torch_resize).abs().mean() > 0.1


def test_tf_mode_features_equal_torch_fidelity(fid_model, tmp_path):
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    ours_file = tmp_path / FID_WEIGHTS_FILE
    torch.save(fid_model.state_dict(), ours_file)
    ref = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(ours_file))
    # torch-fidelity's own state dict, saved under its file name, loads into ours as it is
    theirs_file = tmp_path / FIDELITY_WEIGHTS_FILE
    torch.save(ref.state_dict(), theirs_file)
    images = _uint8_images()
    with torch.no_grad():
        want = ref(images)[0]
        got = load_fid_inception(theirs_file)(images.float() / 255)  # resize="tf" by default
        # the same images in [-1, 1]: quantised back to the same uint8 values
        sym = load_fid_inception(ours_file, input_range=(-1, 1))(images.float() / 127.5 - 1)
    assert want.std() > 0.1
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)  # measured: max |diff| = 0
    torch.testing.assert_close(sym, want, rtol=0, atol=1e-4)


def test_pytorch_fid_mode_features_equal_pytorch_fid(fid_model, tmp_path, monkeypatch):
    pfid = pytest.importorskip("pytorch_fid.inception")
    # pytorch-fid fetches its weights by URL; hand it our random state dict instead.
    monkeypatch.setattr(pfid, "load_state_dict_from_url", lambda *a, **k: fid_model.state_dict())
    ref = pfid.InceptionV3([3], resize_input=True, normalize_input=True,
                           use_fid_inception=True).eval()
    path = tmp_path / FID_WEIGHTS_FILE
    torch.save(fid_model.state_dict(), path)
    images = _uint8_images().float() / 255
    with torch.no_grad():
        want = ref(images)[0].flatten(1)
        got = load_fid_inception(path, resize="pytorch-fid")(images)
        tf = load_fid_inception(path)(images)
    assert want.std() > 0.1
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)  # measured: max |diff| = 0
    # the two conventions are different features (issue 9 measured up to ~0.5 on 32x32)
    assert (tf - got).abs().max() > 0.05


def test_unknown_resize_is_refused():
    with pytest.raises(ValueError, match="resize must be one of 'tf', 'pytorch-fid'"):
        FIDInceptionV3(resize="tf2")
