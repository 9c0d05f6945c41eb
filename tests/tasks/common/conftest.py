"""Shared by the tests of tasks/common: a registered probe regularizer."""

import pytest

from robustrep import registry
from robustrep.registry import register_regularizer


@pytest.fixture
def probe():
    """``test-probe``: a classify feature regularizer with one option of each kind."""
    @register_regularizer("test-probe", paper="nobody 2026",
                          acts={"classify": "feature shrinkage"})
    class Probe:
        """A probe.

        Args:
            weight: factor on the term.
            steps: how many.
            on: a switch.
            mode: a word.
            cap: an optional bound.
            span: not a scalar.
        """

        def __init__(self, weight: float = 0.123456789, steps: int = 3, on: bool = False,
                     mode: str = "a", cap: float | None = None,
                     span: tuple[float, float] = (0.0, 1.0), note=None, fuse_passes: bool = False):
            if weight < 0:
                raise ValueError(f"weight must be >= 0, got {weight}")
            self.kwargs = dict(weight=weight, steps=steps, on=on, mode=mode, cap=cap, span=span,
                               note=note, fuse_passes=fuse_passes)

        def feature_terms(self, model, x, generator=None):
            return {}
    yield Probe
    registry._REGISTRY.pop("test-probe")
    registry._LIVE.pop("test-probe")
