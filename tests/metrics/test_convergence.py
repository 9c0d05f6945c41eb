"""Steps/images to an FID level and the area under the FID curve, on hand-computed curves."""

import math

import pytest

from robustrep.metrics.convergence import Crossing, fid_area, first_crossings

# (step, images_seen, fid): batch 64, an evaluation every 100 steps; FID dips, rises, falls.
CURVE = [(0, 0, 100.0), (100, 6400, 50.0), (200, 12800, 30.0), (300, 19200, 40.0),
         (400, 25600, 20.0)]


def test_first_crossings_at_or_below_each_level():
    got = first_crossings(reversed(CURVE), [60, 50, 35, 25, 10])  # order of records is free
    assert got == [Crossing(60.0, 100, 6400), Crossing(50.0, 100, 6400),  # 50 <= 50 counts
                   Crossing(35.0, 200, 12800), Crossing(25.0, 400, 25600),  # 40 at 300 > 25
                   Crossing(10.0, None, None)]


def test_non_finite_fid_never_crosses():
    assert first_crossings([(0, 0, math.nan), (1, 64, 5.0)], [10]) == [Crossing(10.0, 1, 64)]


def test_area_by_trapezoids_over_images():
    # 6400 * [(100+50) + (50+30) + (30+40) + (40+20)] / 2 = 6400 * 180 = 1,152,000
    assert fid_area(CURVE) == pytest.approx(1_152_000)
    assert fid_area(CURVE, normalized=True) == pytest.approx(45.0)  # / 25,600 images


def test_area_cut_at_a_common_budget_interpolates_the_last_segment():
    # first two segments 736,000; 12,800 -> 16,000 runs from FID 30 to 35: 32.5 * 3200 = 104,000
    assert fid_area(CURVE, until_images=16000) == pytest.approx(840_000)
    assert fid_area(CURVE, until_images=16000, normalized=True) == pytest.approx(52.5)
    assert fid_area(CURVE, until_images=12800) == pytest.approx(736_000)
    assert fid_area(CURVE[:1]) == 0.0


@pytest.mark.parametrize("records, match", [
    ([(0, 0, 1.0), (0, 64, 2.0)], "distinct steps"),
    ([(0, 64, 1.0), (1, 0, 2.0)], "never decrease"),
    ([(0, 0, 1.0, 3)], "must be"),
    ([(0, 0, math.inf), (1, 64, 1.0)], "finite"),
    ([], "at least one"),
])
def test_area_rejects_bad_records(records, match):
    with pytest.raises(ValueError, match=match):
        fid_area(records)


def test_area_rejects_a_budget_outside_the_curve():
    with pytest.raises(ValueError, match="within the recorded images"):
        fid_area(CURVE, until_images=30000)
