"""Wide residual networks for 32x32 inputs, registered as timm models.

Paper: Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, arXiv 1605.07146. Reference code:
``szagoruyko/wide-residual-networks`` (the CIFAR WRN-d-k); the same architecture is the backbone of
the Union-of-1-D-Subspaces network (Zaeemzadeh et al., CVPR 2021, ``zaeemzadeh/OOD``
``wideresnet_UoS.py``) and of AdaptiveMix's classifier (``WentianZhang-ML/AdaptiveMix``
``classification/models.py``, ``Wide_ResNet_orthognal``).

WRN-d-k: a 3x3 stem conv to 16 channels, then three groups of ``n = (d - 4) / 6`` pre-activation
basic blocks (BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3, 1x1 conv shortcut where the shape changes)
of widths ``16k, 32k, 64k`` and strides 1, 2, 2, then BN-ReLU, global average pooling and a linear
classifier. Convolutions have no bias (the BN after them makes one redundant).

Importing this module registers ``wrn16_2``, ``wrn16_4``, ``wrn28_2``, ``wrn28_10`` and
``wrn40_2`` with ``timm.models.register_model`` (none clashes with timm's own names: timm has only
``wide_resnet50_2``/``wide_resnet101_2``, the ImageNet bottleneck variants), so
``timm.create_model("wrn28_10", num_classes=10)`` works after ``import robustrep.nets.wrn``.

Choices (where the references differ):

- ``drop_rate`` is the WRN paper's dropout *between the two convolutions of each block* (0.3 in
  the paper; ``zaeemzadeh/OOD`` trains with 0.1, its ``main.sh`` ``--droprate``, and keeps it on
  at test time for its Monte-Carlo UoS score; 0 in AdaptiveMix's classifier), not timm's usual
  dropout before the classifier.
- ``final_act`` (default True, the WRN paper): the BN-ReLU after the last group. Both UoS
  references pool the last block's output directly (the final BN-ReLU is commented out in
  ``wideresnet_UoS.py`` and defined but unused in AdaptiveMix's ``Wide_ResNet_orthognal``);
  ``final_act=False`` reproduces that, so the pooled features can take either sign.
- Input normalisation: the pretrained_cfg mean/std are the CIFAR-10 statistics the UoS code uses,
  ``(125.3, 123.0, 113.9) / 255`` and ``(63.0, 62.1, 66.7) / 255``; no weights are published here.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from timm.models import build_model_with_cfg, register_model
from timm.models._registry import generate_default_cfgs

__all__ = ["WideResNet"]

CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)


class WideBasic(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv(stride)-BN-ReLU-dropout-conv, plus shortcut."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, drop_rate: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.shortcut = (nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)
                         if stride != 1 or in_chs != out_chs else None)

    def forward(self, x: Tensor) -> Tensor:
        act = F.relu(self.bn1(x))
        # Where the shape changes the shortcut reads the activated input, as in the WRN code.
        skip = x if self.shortcut is None else self.shortcut(act)
        out = self.conv1(act)
        out = self.conv2(self.drop(F.relu(self.bn2(out))))
        return out + skip


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor`` for small images, with timm's model interface.

    Args:
        depth: total depth ``6n + 4`` (16, 22, 28, 40, ...).
        widen_factor: ``k``, the width multiplier of the three groups.
        num_classes: classifier outputs; 0 leaves an identity classifier (timm convention).
        in_chans: input channels.
        drop_rate: dropout between the two convolutions of each block (WRN paper).
        final_act: BN-ReLU after the last group (see the module docstring).
        global_pool: ``"avg"`` or ``""`` (no pooling in ``forward_head``).
    """

    def __init__(self, depth: int = 28, widen_factor: int = 10, num_classes: int = 10,
                 in_chans: int = 3, drop_rate: float = 0.0, final_act: bool = True,
                 global_pool: str = "avg"):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 with n >= 1 (16, 22, 28, 40, ...), got {depth}")
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be >= 1, got {widen_factor}")
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        n = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = widths[-1]
        self.conv1 = nn.Conv2d(in_chans, 16, 3, padding=1, bias=False)
        groups, chs = [], 16
        for width, stride in zip(widths, (1, 2, 2)):
            blocks = [WideBasic(chs if i == 0 else width, width, stride if i == 0 else 1,
                                drop_rate) for i in range(n)]
            groups.append(nn.Sequential(*blocks))
            chs = width
        self.layer1, self.layer2, self.layer3 = groups
        self.bn = nn.BatchNorm2d(chs) if final_act else None
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [dict(num_chs=w, reduction=r, module=f"layer{i + 1}")
                             for i, (w, r) in enumerate(zip(widths, (1, 2, 4)))]
        self._init_weights()

    def _init_weights(self) -> None:
        # He-normal convs (fan-out), unit BN, zero biases: the WRN reference initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        """The unpooled map ``[B, 64k, H/4, W/4]`` (8x8 for 32x32 inputs)."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return F.relu(self.bn(x)) if self.bn is not None else x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.global_pool == "avg":
            x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs) -> dict:
    return {"url": "", "num_classes": 10, "input_size": (3, 32, 32), "pool_size": (8, 8),
            "crop_pct": 1.0, "interpolation": "bilinear", "mean": CIFAR_MEAN, "std": CIFAR_STD,
            "first_conv": "conv1", "classifier": "fc", "license": "apache-2.0", **kwargs}


# Architectures only: no tag has weights, so timm never tries to download anything.
default_cfgs = generate_default_cfgs({
    name: _cfg() for name in ("wrn16_2", "wrn16_4", "wrn28_2", "wrn28_10", "wrn40_2")})


def _create(variant: str, depth: int, widen_factor: int, pretrained: bool, **kwargs) -> WideResNet:
    return build_model_with_cfg(WideResNet, variant, pretrained, depth=depth,
                                widen_factor=widen_factor, **kwargs)


@register_model
def wrn16_2(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-16-2 (0.7M parameters at 10 classes)."""
    return _create("wrn16_2", 16, 2, pretrained, **kwargs)


@register_model
def wrn16_4(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-16-4 (2.7M parameters at 10 classes)."""
    return _create("wrn16_4", 16, 4, pretrained, **kwargs)


@register_model
def wrn28_2(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-28-2 (1.5M parameters at 10 classes)."""
    return _create("wrn28_2", 28, 2, pretrained, **kwargs)


@register_model
def wrn28_10(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-28-10 (36.5M parameters at 10 classes), the UoS / AdaptiveMix classifier backbone."""
    return _create("wrn28_10", 28, 10, pretrained, **kwargs)


@register_model
def wrn40_2(pretrained: bool = False, **kwargs) -> WideResNet:
    """WRN-40-2 (2.2M parameters at 10 classes)."""
    return _create("wrn40_2", 40, 2, pretrained, **kwargs)
