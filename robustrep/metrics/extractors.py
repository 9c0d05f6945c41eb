"""Feature extractors for FID/KID/precision-recall: the FID Inception-v3, and a small digits CNN.

**FID Inception-v3.** FID (Heusel et al., NeurIPS 2017) is defined on the 2048-d pool features of
the TensorFlow Inception-v3 graph ``inception-2015-12-05`` (Szegedy et al., "Rethinking the
Inception Architecture for Computer Vision", CVPR 2016). pytorch-fid (``mseitzer/pytorch-fid``,
``src/pytorch_fid/inception.py``) ported those weights to the file
``pt_inception-2015-12-05-6726825d.pth``; :class:`FIDInceptionV3` is the architecture that file
fits, checked against that module: torchvision's ``Inception3`` with 1008 classes and no auxiliary
head, where the TF graph differs from torchvision in the branch pools: Mixed_5b-d, Mixed_6b-e and
Mixed_7b average without counting the zero padding, and Mixed_7c max-pools. The weights are only
ever read from a local file (:func:`load_fid_inception`); nothing is downloaded. torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth`` (``toshas/torch-fidelity``,
``feature_extractor_inceptionv3.py``) has the same parameter names and shapes, so either file loads.

Two input conventions, chosen by ``resize`` (the network is the same; only the way a 32x32 image
becomes a 299x299 input differs, which moves features by up to ~0.5 on 32x32 images):

- ``"tf"`` (default): the original TF FID graph and torch-fidelity. Images are quantised to 8
  bits (TF FID and torch-fidelity take uint8 images), resized on the 0..255 scale with TF1's
  ``resize_bilinear(align_corners=False)`` (source pixel ``dst * in / out``, no half-pixel
  offset, the upper neighbour clamped to the border; torch-fidelity's
  ``interpolate_bilinear_2d_like_tensorflow1x``), then mapped by ``(x - 128) / 128``. The resize
  is reimplemented here (a few lines of index arithmetic) rather than imported, so torch-fidelity
  is a test-only dependency; ``tests/metrics/test_extractors.py`` checks the features against
  ``FeatureExtractorInceptionV3`` on one state dict.
- ``"pytorch-fid"``: ``mseitzer/pytorch-fid``'s ``InceptionV3(resize_input=True,
  normalize_input=True)``: ``F.interpolate(bilinear, align_corners=False)`` (half-pixel centres,
  no quantisation), then ``2x - 1``.

**Digits feature network.** For 32x32 digits an ImageNet network is a poor feature space, and the
tasks use :class:`DigitsFeatureNet`, a small CNN trained as a digit classifier by
:func:`train_digits_feature_net`; its 128-d globally pooled features play the role of Inception's
pool features. FIDs measured with it are on another scale and are **not comparable** with
Inception FIDs or with numbers from papers; compare them only with each other, with the same
trained network.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import (BasicConv2d, Inception3, InceptionA, InceptionAux,
                                          InceptionB, InceptionC, InceptionD, InceptionE)

from robustrep._validate import (check_choice, check_generator, check_positive, check_range,
                                 check_tensor, nan_tensors)

__all__ = ["FID_WEIGHTS_FILE", "FIDELITY_WEIGHTS_FILE", "FID_RESIZES", "FIDInceptionV3",
           "load_fid_inception", "resize_bilinear_tf1", "DigitsFeatureNet",
           "train_digits_feature_net"]

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FIDELITY_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
_FID_WEIGHTS_SOURCE = ("https://github.com/mseitzer/pytorch-fid/releases (tag fid_weights), or "
                       f"torch-fidelity's {FIDELITY_WEIGHTS_FILE} (release v0.2.0)")
# The input conventions of FIDInceptionV3 and the convention each one reproduces.
FID_RESIZES = {"tf": "TF-FID (TF1 bilinear resize of 8-bit images, as torch-fidelity)",
               "pytorch-fid": "pytorch-fid (torch bilinear resize, align_corners=False)"}


def _tf1_source_index(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, ...]:
    # TF1 (align_corners=False) samples output pixel i at i * in / out, computed in float32 as
    # torch-fidelity does, so the weights agree bit for bit.
    pos = torch.arange(out_size, dtype=torch.float32, device=device) * torch.tensor(
        in_size / out_size, dtype=torch.float32)
    lo = pos.long()
    return lo, (lo + 1).clamp_max(in_size - 1), pos - lo.float()


def resize_bilinear_tf1(x: Tensor, size: tuple[int, int]) -> Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)`` of ``[N, C, H, W]`` float images.

    Unlike ``F.interpolate(align_corners=False)`` it has no half-pixel offset: output pixel ``i``
    reads input position ``i * in / out`` (so the image shifts by up to half an input pixel),
    blending the two neighbours with the upper one clamped at the border.
    """
    check_tensor("x", x, ndim=4, floating=True)
    y_lo, y_hi, dy = _tf1_source_index(x.shape[2], size[0], x.device)
    x_lo, x_hi, dx = _tf1_source_index(x.shape[3], size[1], x.device)
    rows_lo, rows_hi = x[:, :, y_lo], x[:, :, y_hi]
    top = rows_lo[..., x_lo] + (rows_lo[..., x_hi] - rows_lo[..., x_lo]) * dx.to(x.dtype)
    bottom = rows_hi[..., x_lo] + (rows_hi[..., x_hi] - rows_hi[..., x_lo]) * dx.to(x.dtype)
    return top + (bottom - top) * dy.to(x.dtype).view(-1, 1)


def _avg_pool_no_pad(x: Tensor) -> Tensor:
    # TF's average pool divides by the number of real (unpadded) inputs in the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _FIDInceptionA(InceptionA):
    def _forward(self, x: Tensor) -> list[Tensor]:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_no_pad(x))]


class _FIDInceptionC(InceptionC):
    def _forward(self, x: Tensor) -> list[Tensor]:
        b7 = x
        for conv in (self.branch7x7_1, self.branch7x7_2, self.branch7x7_3):
            b7 = conv(b7)
        b7d = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = conv(b7d)
        return [self.branch1x1(x), b7, b7d, self.branch_pool(_avg_pool_no_pad(x))]


class _FIDInceptionE(InceptionE):
    """InceptionE whose pool branch averages without padding, or max-pools (the TF Mixed_7c)."""

    def __init__(self, in_channels: int, max_pool: bool = False):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x: Tensor) -> list[Tensor]:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = (F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool
                  else _avg_pool_no_pad(x))
        return [self.branch1x1(x), b3, b3d, self.branch_pool(pooled)]


class FIDInceptionV3(Inception3):
    """Inception-v3 as in the TF FID graph; ``forward`` returns 2048-d pool features ``[N, 2048]``.

    The parameter names and shapes are those of pytorch-fid's weight file (``fc`` has 1008
    outputs and is kept only so that the file fits; it is not used by ``forward``). Build it with
    :func:`load_fid_inception`; constructed directly its weights are random.

    Args:
        input_range: the range of the input images, e.g. ``(0, 1)`` or ``(-1, 1)``. Inputs may
            have 1 channel (repeated to 3) or 3, and any size (resized to 299x299).
        resize: ``"tf"`` (TF FID / torch-fidelity) or ``"pytorch-fid"``; see the module
            docstring.
    """

    def __init__(self, input_range: tuple[float, float] = (0.0, 1.0), resize: str = "tf"):
        blocks = [BasicConv2d, _FIDInceptionA, InceptionB, _FIDInceptionC, InceptionD,
                  _FIDInceptionE, InceptionAux]
        super().__init__(num_classes=1008, aux_logits=False, transform_input=False,
                         inception_blocks=blocks, init_weights=False)
        self.Mixed_7c = _FIDInceptionE(2048, max_pool=True)
        self.input_range = check_range("input_range", input_range)
        check_choice("resize", resize, tuple(FID_RESIZES))
        self.resize = resize

    def _tf_input(self, x: Tensor) -> Tensor:
        low, high = self.input_range
        x = ((x - low) * (255.0 / (high - low))).clamp(0, 255).round()  # the uint8 image
        if tuple(x.shape[-2:]) != (299, 299):
            x = resize_bilinear_tf1(x, (299, 299))
        return (x - 128) / 128

    def _pytorch_fid_input(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        low, high = self.input_range
        return (x - low) * (2.0 / (high - low)) - 1.0

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        check_tensor("x", x, ndim=4, floating=True)
        if x.shape[1] not in (1, 3):
            raise ValueError(f"x must have 1 or 3 channels, got shape {tuple(x.shape)}")
        x = x.expand(-1, 3, -1, -1)
        x = self._tf_input(x) if self.resize == "tf" else self._pytorch_fid_input(x)
        for layer in (self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3, self.maxpool1,
                      self.Conv2d_3b_1x1, self.Conv2d_4a_3x3, self.maxpool2,
                      self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c, self.avgpool):
            x = layer(x)
        return x.flatten(1)


def _describe(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... ({len(keys) - limit} more)' if len(keys) > limit else ''}]"


def _check_fits(path: str, state: Mapping, expected: Mapping) -> None:
    """Raise ValueError naming what of the file's ``state`` does not fit ``expected``."""
    # Files saved before BatchNorm tracked num_batches_tracked lack it; load_state_dict fills it.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
             for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path!r} does not fit the FID Inception-v3 (expected {FID_WEIGHTS_FILE}): "
            f"missing keys {_describe(missing)}, unexpected keys {_describe(unexpected)}, "
            f"wrong shapes {_describe(wrong)}")


def load_fid_inception(path: str | os.PathLike, input_range: tuple[float, float] = (0.0, 1.0),
                       device: str | torch.device = "cpu", resize: str = "tf") -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` from a local copy of pytorch-fid's or torch-fidelity's
    weight file (same names and shapes); ``resize`` picks the input convention.

    Returns the model on ``device``, in eval mode, with ``requires_grad`` off. Never downloads.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names the file to fetch).
        ValueError: the file is not a state dict that fits (missing, unexpected or
            wrongly-shaped entries are listed).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FileNotFoundError(f"FID Inception weights {path!r} is a folder; give the weight "
                                f"file {FID_WEIGHTS_FILE} (from {_FID_WEIGHTS_SOURCE})")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"FID Inception weights not found at {path!r}. Expected pytorch-fid's weight file "
            f"{FID_WEIGHTS_FILE} (from {_FID_WEIGHTS_SOURCE}); this function reads local files "
            "only (the programs fetch it into their cache on first use).")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path!r} holds a {type(state).__name__}, not a state dict; expected "
                         f"{FID_WEIGHTS_FILE}")
    with torch.device("meta"):  # no initial draws (a quarter second): the file sets every entry
        model = FIDInceptionV3(input_range, resize)
    expected = model.state_dict()
    _check_fits(path, state, expected)
    nan = nan_tensors(state)
    if nan:  # every feature would be NaN, and the error would name no file
        raise ValueError(f"{path!r} holds NaN weights ({nan[0]}); expected {FID_WEIGHTS_FILE}")
    # assigned, not copied, so cast to the model's dtypes as a copy would (a float64 file still
    # gives float32 features); a missing num_batches_tracked is filled by BatchNorm's loader
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, assign=True)
    return model.to(device).eval().requires_grad_(False)


class DigitsFeatureNet(nn.Module):
    """A small CNN for 32x32 digits: three conv stages, global average pooling, a linear head.

    ``features(x)`` returns the pooled ``[N, feature_dim]`` activations (after BatchNorm and ReLU,
    like Inception's pool features); ``forward(x)`` returns class logits.

    Args:
        in_channels: 1 (grayscale digits) or 3.
        input_range: range of the input images; mapped to [-1, 1].
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32,
                 feature_dim: int = 128, input_range: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes),
                        ("width", width), ("feature_dim", feature_dim)):
            check_positive(name, v, integer=True)
        self.in_channels = in_channels
        self.feature_dim = feature_dim
        self.input_range = check_range("input_range", input_range)

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]

        self.trunk = nn.Sequential(
            *stage(in_channels, width), nn.MaxPool2d(2),          # 16x16
            *stage(width, 2 * width), nn.MaxPool2d(2),            # 8x8
            *stage(2 * width, feature_dim), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        check_tensor("x", x, ndim=4, floating=True)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        low, high = self.input_range
        return self.trunk((x - low) * (2.0 / (high - low)) - 1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation, with the conv/linear draws taken from ``generator``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1.0 / math.sqrt(m.weight[0].numel())
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # deterministic: unit scale, zero shift, fresh statistics


def train_digits_feature_net(images: Tensor, labels: Tensor, epochs: int = 5,
                             batch_size: int = 128, lr: float = 1e-3, num_classes: int = 10,
                             input_range: tuple[float, float] = (0.0, 1.0), seed: int = 0,
                             generator: torch.Generator | None = None,
                             on_batch: Callable[[int], Any] | None = None,
                             **net_kwargs) -> DigitsFeatureNet:
    """Train a :class:`DigitsFeatureNet` as a digit classifier (Adam, cross-entropy); eval mode.

    Pure: the inputs are not modified and the global RNG is not used; the initial weights and
    the batch order come from ``generator`` (on the images' device), or from a fresh generator
    seeded with ``seed`` when none is given. Trains on the images' device.

    Args:
        images: ``[N, C, 32, 32]`` in ``input_range``.
        labels: ``[N]`` int64 class indices in ``[0, num_classes)``.
        on_batch: called with the batch's size after each step (a progress bar's ``update``:
            ``epochs * N`` images in all).
        net_kwargs: passed to :class:`DigitsFeatureNet` (``width``, ``feature_dim``).
    """
    _check_training_set(images, labels)
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        check_positive(name, v, integer=True)
    check_positive("lr", lr)
    device = images.device
    check_generator(generator, device)
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(seed)
    # Built on the meta device and initialised from `generator`: module constructors would
    # otherwise draw their default initialisation from the global RNG.
    with torch.device("meta"):
        model = DigitsFeatureNet(images.shape[1], num_classes, input_range=input_range,
                                 **net_kwargs)
    model = model.to_empty(device=device)
    _init_weights(model, generator)
    _fit_classifier(model, images, labels.to(device), epochs, batch_size, lr, generator,
                    on_batch)
    return model.eval()


def _check_training_set(images: Tensor, labels: Tensor) -> None:
    check_tensor("images", images, ndim=4, floating=True)
    check_tensor("labels", labels, ndim=1)
    if labels.dtype != torch.long or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be int64 with one entry per image ({images.shape[0]}), got "
                         f"dtype {labels.dtype} and shape {tuple(labels.shape)}")


def _fit_classifier(model: nn.Module, images: Tensor, labels: Tensor, epochs: int,
                    batch_size: int, lr: float, generator: torch.Generator,
                    on_batch: Callable[[int], Any] | None) -> None:
    """Adam on the cross-entropy, ``epochs`` passes in an order drawn from ``generator``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(images.shape[0], generator=generator, device=images.device)
            for batch in order.split(batch_size):
                loss = F.cross_entropy(model(images[batch]), labels[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if on_batch is not None:
                    on_batch(len(batch))
