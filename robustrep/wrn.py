"""Old path of :mod:`robustrep.nets.wrn`: ``import robustrep.wrn`` still registers the CIFAR wide
ResNets with timm and is that same module."""

import sys

from robustrep.nets import wrn as _wrn

sys.modules[__name__] = _wrn
