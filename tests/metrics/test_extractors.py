"""FID Inception-v3 loading from a local file, its TF-specific pools, and the digits CNN."""

import pickle
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import InceptionA, InceptionE

from robustrep.metrics import (FID_WEIGHTS_FILE, DigitsFeatureNet, FIDInceptionV3,
                               load_fid_inception, train_digits_feature_net)
from robustrep.metrics.extractors import (FIDELITY_WEIGHTS_FILE, _check_fits, _describe,
                                          _FIDInceptionA, _FIDInceptionE, _init_weights,
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


@pytest.fixture(scope="module")
def fid_file(fid_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("fid") / FID_WEIGHTS_FILE
    torch.save(fid_model.state_dict(), path)
    return path


def test_load_round_trip_and_output_shape(fid_model, fid_file):
    path = fid_file
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


def test_a_float64_file_without_batch_counters_loads_as_the_float32_model(fid_model, tmp_path):
    """The model is built without initial draws and the file's tensors assigned: they are cast
    to the model's dtypes and BatchNorm's counters filled in, as a copying load does."""
    state = {k: v.double() for k, v in fid_model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "w.pth")
    loaded = load_fid_inception(tmp_path / "w.pth")
    entries = loaded.state_dict()
    assert {str(v.device) for v in entries.values()} == {"cpu"}
    assert {k: v.dtype for k, v in entries.items()} == {
        k: v.dtype for k, v in fid_model.state_dict().items()}
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded(x), fid_model(x))


def test_missing_file_names_path_and_expected_file(tmp_path):
    path = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(FileNotFoundError) as err:
        load_fid_inception(path)
    assert str(err.value) == (
        f"FID Inception weights not found at {str(path)!r}. Expected pytorch-fid's weight file "
        f"{FID_WEIGHTS_FILE} (from https://github.com/mseitzer/pytorch-fid/releases (tag "
        f"fid_weights), or torch-fidelity's {FIDELITY_WEIGHTS_FILE} (release v0.2.0)); this "
        "function reads local files only (the programs fetch it into their cache on first use).")
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
    assert msg.startswith(f"{str(path)!r} does not fit the FID Inception-v3")  # the file named
    assert "fc.weight (1000, 2048) (expected (1008, 2048))" in msg
    assert "AuxLogits.fc.weight" in msg and "Mixed_5b" in msg
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError) as err:
        load_fid_inception(tmp_path / "list.pth")
    assert str(err.value) == (f"{str(tmp_path / 'list.pth')!r} holds a list, not a state dict; "
                              f"expected {FID_WEIGHTS_FILE}")


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

def _uint8_images(n=1, side=32, seed=1):
    # one image: an Inception forward at 299x299 costs 0.15 s an image on a CPU; the batch
    # dimension is checked by test_load_round_trip_and_output_shape
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


@pytest.fixture(scope="module")
def fidelity_ref(fid_file):
    """torch-fidelity's extractor on our random weights (built once: 0.25 s; the tests only
    read it)."""
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    return fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                feature_extractor_weights_path=str(fid_file))


def test_tf_mode_features_equal_torch_fidelity(fid_model, fid_file, fidelity_ref, tmp_path):
    ours_file = fid_file
    ref = fidelity_ref
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


def test_pytorch_fid_mode_features_equal_pytorch_fid(fid_file, pytorch_fid_ref):
    ref = pytorch_fid_ref
    path = fid_file
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


# --- pinned by mutation testing (docs/mutation.md, metrics_extractors) -----------------------

class _Stop(Exception):
    """Raised by a hook to stop a network at its first convolution."""


def _network_input(conv, run):
    """The tensor ``run()`` feeds ``conv`` (the resized, normalised image); the rest of the
    network does not run, so the input conventions are compared in milliseconds."""
    seen = []

    def hook(module, args):
        seen.append(args[0])
        raise _Stop

    handle = conv.register_forward_pre_hook(hook)
    try:
        with pytest.raises(_Stop), torch.no_grad():
            run()
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("input_range", [(-1.0, 1.0), (-3.0, 5.0)])
def test_tf_input_is_torch_fidelitys_8_bit_image_for_any_range(fidelity_ref, input_range):
    # torch-fidelity takes the uint8 image; ours must round to it from any range, clamp what lies
    # outside (as stylegan2-ada quantises), repeat a grey channel, and resize it as TF1 does.
    ref = fidelity_ref
    ours = FIDInceptionV3(input_range)
    low, high = input_range
    gen = torch.Generator().manual_seed(2)
    # 299x299 is not resized; one side 299 and the other not is
    for channels, side in ((3, (20, 13)), (1, (20, 13)), (3, (300, 299)), (1, (299, 300))):
        u = torch.randint(0, 256, (1, channels, *side), generator=gen, dtype=torch.uint8)
        u[..., 0, :2] = torch.tensor([0, 255], dtype=torch.uint8)
        offset = (torch.rand(u.shape, generator=gen) - 0.5) * 0.8  # < half a level: rounds away
        x = low + (u + offset) * ((high - low) / 255)
        x[..., 0, :2] = torch.tensor([low - (high - low) / 2, high + (high - low) / 2])
        want = _network_input(ref.Conv2d_1a_3x3, lambda: ref(u.expand(-1, 3, -1, -1)))
        got = _network_input(ours.Conv2d_1a_3x3, lambda: ours(x))
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.fixture(scope="module")
def pytorch_fid_ref(fid_model):
    """pytorch-fid's InceptionV3 on our random weights (built once: 0.25 s; the tests only read
    it)."""
    pfid = pytest.importorskip("pytorch_fid.inception")
    with pytest.MonkeyPatch.context() as patch:
        # pytorch-fid fetches its weights by URL; hand it our random state dict instead.
        patch.setattr(pfid, "load_state_dict_from_url", lambda *a, **k: fid_model.state_dict())
        return pfid.InceptionV3([3], resize_input=True, normalize_input=True,
                                use_fid_inception=True).eval()


@pytest.mark.parametrize("input_range", [(-1.0, 1.0), (-3.0, 5.0)])
def test_pytorch_fid_input_is_pytorch_fids_for_any_range(pytorch_fid_ref, input_range):
    # pytorch-fid takes [0, 1] images; ours the same images in input_range, also grey ones
    ours = FIDInceptionV3(input_range, resize="pytorch-fid")
    low, high = input_range
    gen = torch.Generator().manual_seed(3)
    for channels, side in ((3, (20, 13)), (1, (20, 13)), (3, (300, 299)), (1, (299, 300))):
        images = torch.rand(1, channels, *side, generator=gen)
        want = _network_input(pytorch_fid_ref.blocks[0][0],
                              lambda: pytorch_fid_ref(images.expand(-1, 3, -1, -1)))
        got = _network_input(ours.Conv2d_1a_3x3, lambda: ours(low + (high - low) * images))
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(7, 5), (5, 40)])
def test_tf1_resize_to_a_non_square_size_equals_torch_fidelity(size):
    compat = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    x = 255 * torch.rand(1, 2, 9, 6, generator=torch.Generator().manual_seed(4))
    want = compat.interpolate_bilinear_2d_like_tensorflow1x(x, size=size, align_corners=False)
    torch.testing.assert_close(resize_bilinear_tf1(x, size), want, rtol=0, atol=0)


def test_tf1_resize_keeps_the_inputs_dtype_and_device():
    x = 255 * torch.rand(1, 2, 9, 6, generator=torch.Generator().manual_seed(5))
    want = resize_bilinear_tf1(x, (7, 5))
    for dtype, tol in ((torch.float64, 1e-4), (torch.bfloat16, 2.0)):
        got = resize_bilinear_tf1(x.to(dtype), (7, 5))
        assert got.dtype == dtype  # the blend weights are cast, not the image promoted
        torch.testing.assert_close(got.float(), want, rtol=0, atol=tol)
    # a meta tensor stands in for an accelerator: every index is made on the input's device
    meta = resize_bilinear_tf1(torch.empty(1, 2, 9, 6, device="meta"), (7, 5))
    assert meta.device.type == "meta" and meta.shape == (1, 2, 7, 5)


@pytest.mark.parametrize("entry", ["fid", "resize", "digits"])
def test_image_entries_refuse_non_tensors_other_ranks_and_integer_images(entry, fid_model):
    call = {"fid": fid_model, "resize": lambda x: resize_bilinear_tf1(x, (4, 4)),
            "digits": DigitsFeatureNet(width=2, feature_dim=2).features}[entry]
    for bad, error, message in [
            ([0.5], TypeError, "x must be a torch.Tensor, got list"),
            (torch.rand(1, 8, 8), ValueError,
             "x must have rank 4, got rank 3 with shape (1, 8, 8)"),
            (torch.zeros(1, 1, 8, 8, dtype=torch.uint8), TypeError,
             "x must be a floating-point tensor, got dtype torch.uint8")]:
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            call(bad)
    if entry == "fid":
        with pytest.raises(ValueError,
                           match=r"^x must have 1 or 3 channels, got shape \(1, 2, 8, 8\)$"):
            call(torch.rand(1, 2, 8, 8))


def test_fid_inception_is_built_without_warnings_and_checks_its_range():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchvision warns unless init_weights is given
        FIDInceptionV3(input_range=(-1, 1), resize="pytorch-fid")
    with pytest.raises(ValueError, match=r"^input_range must be finite with low < high, got "
                                         r"\(1\.0, 0\.0\)"):
        FIDInceptionV3(input_range=(1, 0))


def test_each_kind_of_mismatch_alone_is_refused(fid_model):
    expected = fid_model.state_dict()
    head = f"'w.pth' does not fit the FID Inception-v3 (expected {FID_WEIGHTS_FILE}): "
    for state, rest in [
            ({k: v for k, v in expected.items() if k != "fc.bias"},
             "missing keys [fc.bias], unexpected keys [], wrong shapes []"),
            ({**expected, "extra": torch.zeros(1)},
             "missing keys [], unexpected keys [extra], wrong shapes []"),
            ({**expected, "fc.bias": torch.zeros(1000)},
             "missing keys [], unexpected keys [], wrong shapes [fc.bias (1000,) (expected "
             "(1008,))]")]:
        with pytest.raises(ValueError) as err:
            _check_fits("w.pth", state, expected)
        assert str(err.value) == head + rest
    # files saved before BatchNorm counted its batches fit (load_state_dict fills the counter)
    _check_fits("w.pth", {k: v for k, v in expected.items()
                          if not k.endswith("num_batches_tracked")}, expected)


def test_long_key_lists_show_eight_and_count_the_rest():
    keys = [f"k{i}" for i in range(9)]
    assert _describe([]) == "[]"
    assert _describe(keys[:8]) == "[k0, k1, k2, k3, k4, k5, k6, k7]"
    assert _describe(keys) == "[k0, k1, k2, k3, k4, k5, k6, k7, ... (1 more)]"


def test_a_file_saved_on_a_gpu_loads_on_the_device_asked_for(fid_model, tmp_path, monkeypatch):
    # Tag every storage as CUDA's, as torch.save does on a GPU: without map_location="cpu" a
    # machine without CUDA could not read the file. Saved without the BatchNorm counters.
    state = {k: v for k, v in fid_model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, tmp_path / "gpu.pth")
    model = load_fid_inception(tmp_path / "gpu.pth", device="meta")
    assert {p.device.type for p in model.state_dict().values()} == {"meta"}


_CALLS = []


def _record(*args):
    _CALLS.append(args)


class _RunsCode:
    def __reduce__(self):
        return _record, ("unpickled",)


def test_a_weight_file_is_never_unpickled_as_code(tmp_path):
    torch.save({"fc.weight": _RunsCode()}, tmp_path / "code.pth")
    with pytest.raises(pickle.UnpicklingError):  # weights_only=True (torch < 2.6: not default)
        load_fid_inception(tmp_path / "code.pth")
    assert _CALLS == []


# --- the digits CNN: architecture, initialisation and training written out -------------------

def test_digits_feature_net_defaults_and_parameter_shapes():
    # the shapes a cached trained network (gan eval's digits features) is loaded into
    net = DigitsFeatureNet()
    want = {"head.weight": (10, 128), "head.bias": (10,)}
    for conv, c_in, c_out in ((0, 1, 32), (4, 32, 64), (8, 64, 128)):
        want[f"trunk.{conv}.weight"] = (c_out, c_in, 3, 3)
        for name in ("weight", "bias", "running_mean", "running_var"):
            want[f"trunk.{conv + 1}.{name}"] = (c_out,)
        want[f"trunk.{conv + 1}.num_batches_tracked"] = ()
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == want
    assert (net.in_channels, net.feature_dim, net.input_range) == (1, 128, (0.0, 1.0))


def test_digits_features_are_the_written_out_cnn():
    torch.manual_seed(0)
    net = _randomise(DigitsFeatureNet(2, num_classes=3, width=3, feature_dim=5,
                                      input_range=(0.5, 4.5))).eval()
    x = 0.5 + 4 * torch.rand(2, 2, 12, 12)
    t = net.trunk

    def stage(h, conv, bn):  # 3x3 conv, padding 1, no bias; BatchNorm; ReLU
        h = F.conv2d(h, conv.weight, padding=1)
        return F.relu(F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                   eps=bn.eps))

    h = (x - 0.5) / 2 - 1  # the input range mapped to [-1, 1]
    h = F.max_pool2d(stage(h, t[0], t[1]), 2)
    h = F.max_pool2d(stage(h, t[4], t[5]), 2)
    h = stage(h, t[8], t[9]).mean((2, 3))
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), h)
        torch.testing.assert_close(net(x), F.linear(h, net.head.weight, net.head.bias))


@pytest.mark.parametrize("name", ["in_channels", "num_classes", "width", "feature_dim"])
def test_digits_feature_net_sizes_are_positive_ints(name):
    with pytest.raises(ValueError, match=f"^{name} must be > 0, got 0$"):
        DigitsFeatureNet(**{name: 0})
    with pytest.raises(TypeError, match=f"^{name} must be a positive int, got float$"):
        DigitsFeatureNet(**{name: 2.0})
    with pytest.raises(ValueError, match=r"^input_range must be finite with low < high"):
        DigitsFeatureNet(input_range=(1, 0))


@pytest.mark.parametrize("num_classes", [1, 10])
def test_init_weights_is_pytorchs_default_init_drawn_from_the_generator(num_classes):
    sizes = dict(num_classes=num_classes, width=4, feature_dim=8)
    with torch.random.fork_rng():
        torch.manual_seed(7)  # the global generator, seeded alike, draws the same numbers
        want = DigitsFeatureNet(**sizes).state_dict()
    net = DigitsFeatureNet(**sizes)
    _init_weights(net, torch.Generator().manual_seed(7))
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, want[k], rtol=0, atol=0)


def _trained_by_hand(images, labels, epochs, batch_size, lr, num_classes, input_range, seed,
                     **net_kwargs):
    """train_digits_feature_net written out: PyTorch's default init, then the batch orders,
    drawn from one generator seeded with ``seed``; Adam on the cross-entropy."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = DigitsFeatureNet(images.shape[1], num_classes, input_range=input_range,
                               **net_kwargs)
        gen = torch.Generator().set_state(torch.get_rng_state())  # after the init draws
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sizes = []
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=gen).split(batch_size):
            opt.zero_grad()
            F.cross_entropy(net(images[batch]), labels[batch]).backward()
            opt.step()
            sizes.append(len(batch))
    return net.eval(), sizes


@pytest.mark.parametrize("options", [
    {},  # the defaults; 130 images are one batch of 128 and one of 2
    dict(epochs=2, batch_size=50, lr=5e-3, num_classes=3, input_range=(-1.0, 1.0), seed=4)])
def test_training_is_adam_on_cross_entropy_in_the_drawn_order(options):
    args = dict(epochs=5, batch_size=128, lr=1e-3, num_classes=10, input_range=(0.0, 1.0),
                seed=0) | options
    images, _ = _toy_digits(n=130)
    labels = torch.arange(130) % 3  # classes 0..2: also valid for the 3-class run
    low, high = args["input_range"]
    images = low + (high - low) * images
    sizes = []
    net = train_digits_feature_net(images, labels, on_batch=sizes.append, width=2,
                                   feature_dim=4, **options)
    want, want_sizes = _trained_by_hand(images, labels, width=2, feature_dim=4, **args)
    assert sizes == want_sizes
    assert not net.training
    for k, v in want.state_dict().items():
        torch.testing.assert_close(net.state_dict()[k], v, rtol=1e-6, atol=1e-7)


def test_training_refuses_bad_arguments_naming_them():
    images, labels = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    per_image = "labels must be int64 with one entry per image (4), got dtype"
    for error, message, bad in [
            (TypeError, "images must be a torch.Tensor, got list", dict(images=[0.5])),
            (ValueError, "images must have rank 4, got rank 3 with shape (4, 8, 8)",
             dict(images=images[:, 0])),
            (TypeError, "images must be a floating-point tensor, got dtype torch.uint8",
             dict(images=images.to(torch.uint8))),
            (TypeError, "labels must be a torch.Tensor, got list", dict(labels=[0, 0, 0, 0])),
            (ValueError, "labels must have rank 1, got rank 2 with shape (4, 1)",
             dict(labels=labels[:, None])),
            (ValueError, f"{per_image} torch.int32 and shape (4,)", dict(labels=labels.int())),
            (ValueError, f"{per_image} torch.int64 and shape (3,)", dict(labels=labels[:3])),
            (ValueError, "epochs must be > 0, got 0", dict(epochs=0)),
            (TypeError, "epochs must be a positive int, got float", dict(epochs=2.0)),
            (ValueError, "batch_size must be > 0, got 0", dict(batch_size=0)),
            (TypeError, "batch_size must be a positive int, got float", dict(batch_size=2.0)),
            (ValueError, "lr must be > 0, got 0", dict(lr=0)),
            (TypeError, "generator must be a torch.Generator or None, got int",
             dict(generator=0)),
            (ValueError, "generator is on cpu but the tensors are on meta; pass a generator "
             "created on the tensors' device",
             dict(images=images.to("meta"), generator=torch.Generator()))]:
        kwargs = dict(images=images, labels=labels, epochs=1, width=2, feature_dim=2) | bad
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            train_digits_feature_net(**kwargs)
