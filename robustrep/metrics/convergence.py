r"""Convergence speed of a GAN run, read off its FID curve.

The sample-mixing papers claim speed ("a given quality sooner"); two figures state it from the FID
a run records during training, each record being ``(step, images_seen, fid)``:

- **First crossing** (:func:`first_crossings`): for each level, the step and the number of real
  images seen at the first record whose FID is at or below the level (``fid <= level``), in step
  order. Only evaluated records count, so the answer is "by this evaluation", never interpolated
  between two; ``None`` when the run never reaches the level. Non-finite FIDs never reach a level.
- **Area under the FID curve** (:func:`fid_area`): the trapezoid rule over images seen,

  .. math::

      A = \sum_i \tfrac12\,(\mathrm{FID}_i + \mathrm{FID}_{i+1})\,(n_{i+1} - n_i),

  from the first record to the last (or to ``until_images``, the curve being linear between
  records), in FID x images; lower is faster and better. ``normalized=True`` divides by the
  width of the range, giving the image-weighted mean FID over it. Two runs compare only over the
  same range: pass the same ``until_images`` (and start both at the same first evaluation).

"Images seen" is what the run counts (real images drawn for D, summed over processes); the
functions take it as given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Crossing:
    """The first record at or below ``level``; ``step``/``images`` are None if never reached."""

    level: float
    step: int | None
    images: int | None


def _records(records: Iterable[Sequence[float]]) -> list[tuple[int, int, float]]:
    """Validated ``(step, images, fid)`` tuples sorted by step."""
    rows = []
    for i, rec in enumerate(records):
        if len(rec) != 3:
            raise ValueError(f"record {i} must be (step, images_seen, fid), got {rec!r}")
        step, images, fid = rec
        if step < 0 or images < 0:
            raise ValueError(f"record {i}: step and images_seen must be >= 0, got {rec!r}")
        rows.append((int(step), int(images), float(fid)))
    rows.sort(key=lambda r: r[0])
    for a, b in zip(rows, rows[1:]):
        if a[0] == b[0] or b[1] < a[1]:
            raise ValueError(f"records must have distinct steps and images_seen that never "
                             f"decrease, got {a} and {b}")
    return rows


def first_crossings(records: Iterable[Sequence[float]],
                    levels: Iterable[float]) -> list[Crossing]:
    """For each level (in the order given), the first record with ``fid <= level``."""
    rows = _records(records)
    out = []
    for level in levels:
        hit = next((r for r in rows if r[2] <= level), None)
        out.append(Crossing(float(level), hit[0] if hit else None, hit[1] if hit else None))
    return out


def fid_area(records: Iterable[Sequence[float]], until_images: int | None = None,
             normalized: bool = False) -> float:
    """Trapezoid area under FID over images seen (see the module docstring)."""
    rows = _records(records)
    if not rows:
        raise ValueError("fid_area needs at least one record")
    bad = next((r for r in rows if not math.isfinite(r[2])), None)
    if bad is not None:
        raise ValueError(f"fid_area needs finite FIDs, got {bad}")
    end = rows[-1][1] if until_images is None else until_images
    if not rows[0][1] <= end <= rows[-1][1]:
        raise ValueError(f"until_images must lie within the recorded images "
                         f"[{rows[0][1]}, {rows[-1][1]}], got {until_images}")
    area = 0.0
    for (_, n0, f0), (_, n1, f1) in zip(rows, rows[1:]):
        if n0 >= end:
            break
        if n1 > end:  # cut the last segment at `end`, the FID linear in between
            f1 = f0 + (f1 - f0) * (end - n0) / (n1 - n0)
            n1 = end
        area += 0.5 * (f0 + f1) * (n1 - n0)
    if not normalized:
        return area
    width = end - rows[0][1]
    if width == 0:
        raise ValueError("normalized fid_area needs records spanning more than one images_seen")
    return area / width
