"""Old path of :mod:`robustrep.nets.stylegan2`: ``from robustrep.stylegan2 import X`` still works
and gives that same module's objects."""

import sys

from robustrep.nets import stylegan2 as _stylegan2

sys.modules[__name__] = _stylegan2
