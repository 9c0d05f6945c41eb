"""StyleGAN2 generator and discriminator in plain PyTorch (no custom CUDA extension).

Paper: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, "Analyzing and Improving the Image
Quality of StyleGAN", CVPR 2020, arXiv 1912.04958; the configuration names follow Karras et al.,
"Training Generative Adversarial Networks with Limited Data", NeurIPS 2020, arXiv 2006.06676.
Architecture checked against ``NVlabs/stylegan2-ada-pytorch`` (``training/networks.py``) and the
reference fallbacks of its ops (``torch_utils/ops/upfirdn2d.py``, ``bias_act.py``,
``conv2d_resample.py``; here :mod:`robustrep.nets.stylegan2_ops`); AdaptiveMix's StyleGAN2
code (``WentianZhang-ML/AdaptiveMix``, ``generation/training/networks.py``) uses the same
networks.

What is here:

- Equalized learning rate: weights are stored N(0, 1) (divided by the lr multiplier) and scaled
  by ``lr_mul / sqrt(fan_in)`` at run time, biases by ``lr_mul``.
- Mapping network: 2nd-moment normalised z (and embedded c), ``mapping_layers`` FC+lrelu layers
  with lr multiplier 0.01, a running ``w_avg`` (beta 0.995) for the truncation trick.
- Synthesis ("skip" G): a learned 4x4 constant, per block an up-sampling modulated 3x3 conv and a
  modulated 3x3 conv (weight demodulation, per-pixel noise with a learned strength, bias,
  lrelu * sqrt 2) and a ToRGB 1x1 modulated conv (no demodulation) whose output is added to the
  FIR-up-sampled image of the block below.
- Discriminator (``architecture`` "resnet", "skip" or "orig", as the reference's): FromRGB at
  full resolution, then per block conv3x3 and down-sampling conv3x3; "resnet" adds a
  down-sampling 1x1 skip, summed with gain sqrt(1/2), "skip" a FromRGB of the down-sampled image
  in every block; the epilogue at 4x4 is minibatch-std, conv3x3, fc, out (and the conditioning
  projection when ``c_dim > 0``).
- FIR resampling with the [1, 3, 3, 1] filter exactly as ``upfirdn2d``'s reference path (zero
  insertion, padding, depthwise filter, stride). The up-sampling conv is a true convolution with the
  stored kernel (the reference's ``flip_weight=(up == 1)``), computed as its fast path: a stride-2
  transposed conv, then the filter; down-sampling convs are cross-correlations, as ``F.conv2d``.
- Mixed precision as the reference: ``num_fp16_res`` highest resolutions of G and D in fp16
  (weights cast per call, styles and weights pre-normalised before demodulation, the image and
  D's epilogue in fp32) and ``conv_clamp`` clamping every conv output to +-``conv_clamp``.

The split the project uses (``robustrep/split.py``): D's ``features`` are every block down to the
4x4 map, its ``head`` is the epilogue. Minibatch-std lives in the head, so the trunk is
batch-permutation equivariant and AdaptiveMix's two-pass and fused computations are exact, as in
the reference's ``Discriminator.embedding``/``classifier`` split.

Left out: the "orig"/"resnet" G variants (every published StyleGAN2 G is "skip"), the
reference's fused CUDA kernels (``upfirdn2d``, ``bias_act``: the same arithmetic), its
``conv2d_gradfix`` (R1 and path length differentiate through plain autograd) and
``fp16_channels_last``. ``tests/nets/test_stylegan2.py`` and
``scripts/compare_stylegan2_reference.py`` compare with the reference code on shared weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustrep.nets import _given, register_network
from robustrep.nets._layers import square_side
from robustrep.nets.stylegan2_ops import (LRELU_GAIN, LRELU_SLOPE, conv2d_resample,
                                         downsample2d, fir_filter, normalize_2nd_moment,
                                         upsample2d)


# ---------------------------------------------------------------------------------------------
# equalized-learning-rate layers


class FullyConnected(nn.Module):
    """Linear layer with equalized lr: ``act(x @ (W * lr_mul / sqrt(in)).T + b * lr_mul)``."""

    def __init__(self, in_features: int, out_features: int, act: str = "linear",
                 lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.act = act
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        # the equalized-lr gains and lrelu's gain as addmm's scalars (lrelu(g y) = g lrelu(y),
        # g > 0): one op, no scaled copies of W and b
        g = LRELU_GAIN if self.act == "lrelu" else 1.0
        x = torch.addmm(self.bias.to(x.dtype).unsqueeze(0), x, self.weight.to(x.dtype).t(),
                        beta=self.bias_gain * g, alpha=self.weight_gain * g)
        return F.leaky_relu(x, LRELU_SLOPE) if self.act == "lrelu" else x


class Conv2dLayer(nn.Module):
    """Conv with equalized lr, optional FIR up/down-sampling, bias and activation (D layers)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 act: str = "linear", bias: bool = True, up: int = 1, down: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.act, self.up, self.down, self.conv_clamp = act, up, down, conv_clamp
        self.register_buffer("resample_filter", fir_filter())
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        # bias_act(conv(x, w) , b, act, gain) with the gain folded into w and b and the bias
        # inside the conv: lrelu(g y) = g lrelu(y) for g > 0
        g = (LRELU_GAIN if self.act == "lrelu" else 1.0) * gain
        w = (self.weight * (self.weight_gain * g)).to(x.dtype)
        b = None if self.bias is None else (self.bias * g).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, self.up, self.down, bias=b)
        if self.act == "lrelu":
            x = F.leaky_relu(x, LRELU_SLOPE)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp * gain, self.conv_clamp * gain)
        return x


# ---------------------------------------------------------------------------------------------
# mapping network


class MappingNetwork(nn.Module):
    """z (and c) -> w, broadcast to ``num_ws`` copies ``[B, num_ws, w_dim]``.

    ``w_avg`` follows the batch mean of w in training (``w_avg_beta``) for the truncation trick;
    the style-mixing draw passes ``update_w_avg=False``, as the reference.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None,
                 num_layers: int = 8, lr_mul: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        embed = w_dim if c_dim > 0 else 0
        self.embed = FullyConnected(c_dim, embed) if c_dim > 0 else None
        sizes = [z_dim + embed] + [w_dim] * num_layers
        self.layers = nn.ModuleList(FullyConnected(a, b, "lrelu", lr_mul)
                                    for a, b in zip(sizes[:-1], sizes[1:]))
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor | None, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = True) -> Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"c must be given: the network is conditional (c_dim "
                                 f"{self.c_dim})")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1)
        for layer in self.layers:
            x = layer(x)
        if self.w_avg_beta is not None and self.training and update_w_avg:
            with torch.no_grad():
                mean = x.detach().mean(0).to(self.w_avg.dtype)  # x is bf16 under autocast
                self.w_avg.copy_(mean.lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x = x.clone()
            x[:, :cut] = self.w_avg.lerp(x[:, :cut], truncation_psi)
        return x


# ---------------------------------------------------------------------------------------------
# synthesis network


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, noise: Tensor | None = None,
                     up: int = 1, demodulate: bool = True,
                     resample_filter: Tensor | None = None, fused: bool = False,
                     bias: Tensor | None = None, gain: float = 1.0) -> Tensor:
    """StyleGAN2's modulated conv: per-sample weights ``w * s_in``, then demodulation.

    Demodulation rescales each output channel by ``1 / sqrt(sum (w * s)^2 + 1e-8)``, so
    unit-variance inputs give unit-variance outputs (paper eq. 1-3). ``noise`` ``[B, 1, H, W]``
    (already scaled) and ``bias`` ``[out]`` are added after; ``gain`` multiplies the result (a
    following lrelu's gain, folded in here: one multiply-add instead of three passes).
    ``fused=False`` (the reference's path in training) scales the activations instead of the
    weights, ``conv(x * s, w) * d``, one shared-weight conv for the batch; ``True`` builds
    per-sample weights and runs a grouped conv (the reference's inference path). Both are the
    same linear map.
    """
    batch, in_ch = x.shape[:2]
    out_ch = weight.shape[0]
    f = resample_filter
    if f is None and up > 1:
        f = fir_filter().to(x.device)
    if x.dtype == torch.float16 and demodulate:
        weight, styles = _fp16_prenormalise(weight, styles)
    scale = None  # per sample and output channel: demodulation times gain, [B, out]
    if demodulate:  # sum_{i,k} (w_oik s_i)^2 = sum_i s_i^2 sum_k w_oik^2: a [B, in] x [in, out]
        # product instead of the [B, out, in, k, k] per-sample weights
        scale = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt() * gain
    shift = None if bias is None else (bias * gain).to(x.dtype)
    if noise is not None:
        noise = (noise * gain).to(x.dtype)
    if fused:
        x = _grouped_modconv(x, weight, styles, scale, gain, f, up)
    elif scale is None:  # no demodulation: the gain goes into the weight, the bias into the conv
        x = x * styles.to(x.dtype).reshape(batch, in_ch, 1, 1)
        w = weight if gain == 1 else weight * gain
        x = conv2d_resample(x, w.to(x.dtype), f, up=up, bias=shift)
        shift = None
    else:
        x = x * styles.to(x.dtype).reshape(batch, in_ch, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f, up=up)
        scale = scale.to(x.dtype).reshape(batch, out_ch, 1, 1)
        x = x * scale if noise is None else torch.addcmul(noise, x, scale)
        noise = None
    if noise is not None:
        x = x + noise
    if shift is not None:
        x = x + shift.reshape(1, -1, 1, 1)
    return x


def _fp16_prenormalise(weight: Tensor, styles: Tensor) -> tuple[Tensor, Tensor]:
    """The reference's pre-normalisation of ``weight`` and ``styles`` before an fp16 modulated
    conv: it keeps the per-sample weights from overflowing, and demodulation divides the scale
    out again."""
    fan_in = weight.shape[1:].numel()  # in_channels * kh * kw
    weight = weight * (1 / math.sqrt(fan_in)
                       / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
    return weight, styles / styles.norm(float("inf"), dim=1, keepdim=True)


def _grouped_modconv(x: Tensor, weight: Tensor, styles: Tensor, scale: Tensor | None,
                     gain: float, f: Tensor | None, up: int) -> Tensor:
    """:func:`modulated_conv2d`'s ``fused=True`` path: per-sample weights ``w * s_in * scale``
    (``gain`` alone without demodulation), one grouped conv with a group per sample."""
    batch, in_ch = x.shape[:2]
    out_ch, _, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_ch, 1, 1)
    w = w * (scale.reshape(batch, out_ch, 1, 1, 1) if scale is not None else gain)
    x = x.reshape(1, batch * in_ch, *x.shape[2:])
    w = w.reshape(batch * out_ch, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f, up=up, groups=batch)
    return x.reshape(batch, out_ch, *x.shape[2:])


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally up-sampling), noise, bias, lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", fir_filter())

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":  # the global RNG, saved in every checkpoint
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution,
                                device=x.device) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        # bias and lrelu gain folded into the modulated conv's output pass (lrelu(g y) = g lrelu(y))
        x = modulated_conv2d(x, self.weight, styles, noise, self.up, True, self.resample_filter,
                             bias=self.bias, gain=LRELU_GAIN)
        x = F.leaky_relu(x, LRELU_SLOPE)
        if self.conv_clamp is not None:  # on the output after the gain (the reference's act_clamp)
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation, linear."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, bias=self.bias)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisBlock(nn.Module):
    """One resolution of the skip G: [const | up-conv], conv, ToRGB added to the up-sampled image.

    Uses ``num_conv + 1`` consecutive ws; the next block starts at ``num_conv`` further on, so a
    ToRGB shares its w with the next block's first conv (the reference's indexing).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, conv_clamp: float | None = None, use_fp16: bool = False):
        super().__init__()
        self.in_channels, self.resolution, self.use_fp16 = in_channels, resolution, use_fp16
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor,
                noise_mode: str = "random") -> tuple[Tensor, Tensor]:
        ws = ws.unbind(1)
        dtype = torch.float16 if self.use_fp16 else torch.float32
        if self.conv0 is None:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws[0].shape[0], 1, 1, 1)
            x = self.conv1(x, ws[0], noise_mode)
        else:
            x = self.conv0(x.to(dtype), ws[0], noise_mode)
            x = self.conv1(x, ws[1], noise_mode)
        y = self.torgb(x, ws[self.num_conv]).float()  # the image stays fp32, as the reference
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at ``resolution``: ``min(channel_base // resolution, channel_max)``."""
    return min(channel_base // resolution, channel_max)


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """The lowest resolution run in fp16: the ``num_fp16_res`` highest ones, never below 8 (the
    reference's ``max(2 ** (log2(R) + 1 - num_fp16_res), 8)``); above R when it is 0."""
    if num_fp16_res <= 0:
        return 2 * img_resolution
    return max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)


def _check_resolution(img_resolution: int) -> int:
    log2 = int(math.log2(img_resolution)) if img_resolution > 0 else 0
    if img_resolution < 8 or 2 ** log2 != img_resolution:
        raise ValueError(f"img_resolution must be a power of 2 >= 8, got {img_resolution}")
    return log2


def _check_channels(img_resolution: int, channel_base: int, channel_max: int) -> None:
    """Every layer must have a feature map: the fewest are at the highest resolution."""
    if channels_at(img_resolution, channel_base, channel_max) < 1:
        raise ValueError(f"channel_base {channel_base} and channel_max {channel_max} give the "
                         f"{img_resolution}x{img_resolution} layers no feature maps "
                         f"(min(channel_base // {img_resolution}, channel_max)); give "
                         f"channel_base >= {img_resolution} and channel_max >= 1")


class SynthesisNetwork(nn.Module):
    """ws ``[B, num_ws, w_dim]`` -> image ``[B, img_channels, R, R]`` (skip architecture)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int = 32768, channel_max: int = 512,
                 conv_clamp: float | None = None, num_fp16_res: int = 0):
        super().__init__()
        log2 = _check_resolution(img_resolution)
        _check_channels(img_resolution, channel_base, channel_max)
        self.resolutions = [2 ** i for i in range(2, log2 + 1)]
        fp16_from = fp16_resolution(img_resolution, num_fp16_res)
        self.blocks = nn.ModuleList()
        self.num_ws = 0
        for res in self.resolutions:
            c_in = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            c_out = channels_at(res, channel_base, channel_max)
            block = SynthesisBlock(c_in, c_out, w_dim, res, img_channels, conv_clamp,
                                   use_fp16=res >= fp16_from)
            self.blocks.append(block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last ToRGB

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        x = img = None
        start = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, start:start + block.num_conv + 1], noise_mode)
            start += block.num_conv
        return img


class StyleGAN2Generator(nn.Module):
    """z ``[B, z_dim]`` (and c ``[B, c_dim]``) -> images ``[B, C, R, R]`` (about [-1, 1]).

    ``style_mixing`` is the probability, in training, that the ws after a random cutoff come from
    a second latent (the reference's ``style_mixing_prob``; its draws use ``generator``).
    ``pl_mean`` is the path-length regulariser's running mean, kept here so that it is saved with
    the weights.
    """

    def __init__(self, z_dim: int, img_resolution: int, img_channels: int, c_dim: int = 0,
                 w_dim: int = 512, mapping_layers: int = 8, channel_base: int = 32768,
                 channel_max: int = 512, mapping_lr_mul: float = 0.01,
                 conv_clamp: float | None = None, num_fp16_res: int = 0):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base,
                                          channel_max, conv_clamp, num_fp16_res)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, mapping_layers,
                                      mapping_lr_mul)
        self.register_buffer("pl_mean", torch.zeros([]))

    def mapping_mixed(self, z: Tensor, c: Tensor | None = None, style_mixing: float = 0.0,
                      generator: torch.Generator | None = None) -> Tensor:
        """ws with style mixing: with probability ``style_mixing``, ws from a random cutoff in
        ``[1, num_ws)`` on come from a fresh latent (which does not update ``w_avg``).

        The draws stay on the device and the choice is a mask, so there is no host sync (the
        second latent is mapped every time, as in the reference's ``loss.py``)."""
        ws = self.mapping(z, c)
        if style_mixing <= 0:
            return ws
        dev = generator.device if generator is not None else z.device
        cutoff = torch.randint(1, self.num_ws, (), generator=generator, device=dev)
        mix = torch.rand((), generator=generator, device=dev) < style_mixing
        z2 = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        ws2 = self.mapping(z2, c, update_w_avg=False)
        take = (torch.arange(self.num_ws, device=dev) >= cutoff) & mix
        return torch.where(take.to(ws.device).reshape(1, -1, 1), ws2, ws)

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random") -> Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode)


# ---------------------------------------------------------------------------------------------
# discriminator


D_ARCHS = ("orig", "skip", "resnet")


class DiscriminatorBlock(nn.Module):
    """One D resolution: [FromRGB], conv3x3, down-conv3x3 (stylegan2-ada's ``DiscriminatorBlock``).

    ``architecture``: ``resnet`` adds a down-sampling 1x1 skip and scales both paths by
    sqrt(1/2); ``skip`` has a FromRGB in every block, added to the features, and carries the
    FIR-down-sampled image on; ``orig`` is the plain chain (FromRGB only in the first block).
    Works on ``(x, img)``; ``x`` is None in the first block.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 conv_clamp: float | None = None, architecture: str = "resnet",
                 use_fp16: bool = False):
        super().__init__()
        if architecture not in D_ARCHS:
            raise ValueError(f"architecture must be one of {D_ARCHS}, got {architecture!r}")
        self.architecture, self.use_fp16 = architecture, use_fp16
        self.fromrgb = (Conv2dLayer(img_channels, tmp_channels, 1, "lrelu", conv_clamp=conv_clamp)
                        if in_channels == 0 or architecture == "skip" else None)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, "lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, "lrelu", down=2,
                                 conv_clamp=conv_clamp)
        self.skip = (Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)
                     if architecture == "resnet" else None)

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, Tensor | None]:
        dtype = torch.float16 if self.use_fp16 else torch.float32
        if x is not None:
            x = x.to(dtype)
        if self.fromrgb is not None:
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = (downsample2d(img, self.conv1.resample_filter) if self.architecture == "skip"
                   else None)
        if self.skip is None:
            return self.conv1(self.conv0(x)), img
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x, img


class MinibatchStd(nn.Module):
    """Appends the std over groups of ``group_size`` samples, averaged over channels and pixels.

    Sample n belongs to group ``n % (B / G)`` (the reference's reshape). When ``B`` is not a
    multiple of ``group_size`` the largest divisor of ``B`` below it is used (the reference
    asserts instead).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size else n
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(0)).square().mean(0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [B/G, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorTrunk(nn.Module):
    """Every D block from the image down to the 4x4 map (per sample: no batch statistics).

    For the ``skip`` D the epilogue's FromRGB of the 4x4 image is here (``fromrgb``), so that the
    4x4 map is all the head needs.
    """

    def __init__(self, img_resolution: int, img_channels: int, channel_base: int,
                 channel_max: int, conv_clamp: float | None = None, architecture: str = "resnet",
                 num_fp16_res: int = 0):
        super().__init__()
        log2 = _check_resolution(img_resolution)
        _check_channels(img_resolution, channel_base, channel_max)
        self.img_shape = (img_channels, img_resolution, img_resolution)
        resolutions = [2 ** i for i in range(log2, 2, -1)]
        fp16_from = fp16_resolution(img_resolution, num_fp16_res)
        blocks = []
        for res in resolutions:
            c_in = channels_at(res, channel_base, channel_max) if res < img_resolution else 0
            tmp = channels_at(res, channel_base, channel_max)
            out = channels_at(res // 2, channel_base, channel_max)
            blocks.append(DiscriminatorBlock(c_in, tmp, out, img_channels, conv_clamp,
                                             architecture, use_fp16=res >= fp16_from))
        self.blocks = nn.ModuleList(blocks)
        c4 = channels_at(4, channel_base, channel_max)
        self.fromrgb = (Conv2dLayer(img_channels, c4, 1, "lrelu") if architecture == "skip"
                        else None)

    def forward(self, img: Tensor) -> Tensor:
        # as the reference's misc.assert_shape: another size fails in the epilogue's fc, as a
        # matrix product of sizes that name neither the image nor the resolution
        if img.dim() != 4 or tuple(img.shape[1:]) != self.img_shape:
            want = ", ".join(map(str, self.img_shape))
            raise ValueError(f"the discriminator takes images [B, {want}], got shape "
                             f"{tuple(img.shape)}")
        x = None
        for block in self.blocks:
            x, img = block(x, img)
        x = x.float()  # the epilogue runs in fp32, as the reference's
        if self.fromrgb is not None:
            x = x + self.fromrgb(img.float())
        return x


class DiscriminatorEpilogue(nn.Module):
    """4x4 map -> one logit per sample: minibatch-std, conv3x3, fc, out [, projection on c]."""

    def __init__(self, in_channels: int, cmap_dim: int = 0, mbstd_group: int = 4,
                 mbstd_channels: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStd(mbstd_group, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_channels, in_channels, 3, "lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnected(in_channels * 16, in_channels, "lrelu")
        self.out = FullyConnected(in_channels, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x: Tensor, cmap: Tensor | None = None) -> Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.fc(self.conv(x).flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x.squeeze(1)


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2 D (``architecture`` resnet, skip or orig) seen as ``head(features(x))``;
    ``forward(x[, c])`` -> logits ``[B]``.

    ``features`` is :class:`DiscriminatorTrunk` (``[B, C4, 4, 4]``), ``head`` the epilogue; for a
    conditional D (``c_dim > 0``) pass ``c`` to ``forward``/``head`` (the split's one-argument
    ``head`` then refuses, since the projection needs the labels).
    """

    def __init__(self, img_resolution: int, img_channels: int, c_dim: int = 0,
                 channel_base: int = 32768, channel_max: int = 512, mbstd_group: int = 4,
                 mbstd_channels: int = 1, conv_clamp: float | None = None,
                 architecture: str = "resnet", num_fp16_res: int = 0):
        super().__init__()
        self.c_dim = c_dim
        self.trunk = DiscriminatorTrunk(img_resolution, img_channels, channel_base, channel_max,
                                        conv_clamp, architecture, num_fp16_res)
        c4 = channels_at(4, channel_base, channel_max)
        self.mapping = (MappingNetwork(0, c_dim, c4, None, 8, w_avg_beta=None)
                        if c_dim > 0 else None)
        self.epilogue = DiscriminatorEpilogue(c4, c4 if c_dim > 0 else 0, mbstd_group,
                                              mbstd_channels, conv_clamp)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def head(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        cmap = None
        if self.mapping is not None:
            if c is None:
                raise ValueError(f"c must be given: the discriminator is conditional (c_dim "
                                 f"{self.c_dim})")
            cmap = self.mapping(None, c)
        return self.epilogue(z, cmap)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.head(self.features(x), c)


# ---------------------------------------------------------------------------------------------
# registered factories (robustrep.nets): images of ``shape = (C, R, R)``; None options keep the
# networks' defaults


@register_network("stylegan2", "generator")
def stylegan2_generator(z_dim: int, shape: tuple[int, ...], c_dim: int | None = None,
                        w_dim: int | None = None, mapping_layers: int | None = None,
                        channel_base: int | None = None, channel_max: int | None = None,
                        mapping_lr_mul: float | None = None, conv_clamp: float | None = None,
                        num_fp16_res: int | None = None) -> StyleGAN2Generator:
    """:class:`StyleGAN2Generator` for images of ``shape``."""
    side = square_side(shape, "stylegan2_generator")
    return StyleGAN2Generator(z_dim, side, shape[0], **_given(dict(
        c_dim=c_dim, w_dim=w_dim, mapping_layers=mapping_layers, channel_base=channel_base,
        channel_max=channel_max, mapping_lr_mul=mapping_lr_mul, conv_clamp=conv_clamp,
        num_fp16_res=num_fp16_res)))


@register_network("stylegan2", "discriminator")
def stylegan2_discriminator(shape: tuple[int, ...], c_dim: int | None = None,
                            channel_base: int | None = None, channel_max: int | None = None,
                            mbstd_group: int | None = None, mbstd_channels: int | None = None,
                            conv_clamp: float | None = None, architecture: str | None = None,
                            num_fp16_res: int | None = None) -> StyleGAN2Discriminator:
    """:class:`StyleGAN2Discriminator` for images of ``shape``."""
    side = square_side(shape, "stylegan2_discriminator")
    return StyleGAN2Discriminator(side, shape[0], **_given(dict(
        c_dim=c_dim, channel_base=channel_base, channel_max=channel_max,
        mbstd_group=mbstd_group, mbstd_channels=mbstd_channels, conv_clamp=conv_clamp,
        architecture=architecture, num_fp16_res=num_fp16_res)))
