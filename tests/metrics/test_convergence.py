"""Steps/images to an FID level and the area under the FID curve, on hand-computed curves."""

import math
import re

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


# --- what mutation testing found unpinned: boundaries of the records and of the range ---

@pytest.mark.parametrize("records, bad", [
    ([(0, 0, 5.0), (-1, 64, 4.0)], "(-1, 64, 4.0)"),   # a negative step alone
    ([(0, 0, 5.0), (1, -64, 4.0)], "(1, -64, 4.0)"),   # negative images alone
])
def test_a_negative_step_or_image_count_is_refused(records, bad):
    with pytest.raises(ValueError, match=r"^record 1: step and images_seen must be >= 0, got "
                                         + re.escape(bad) + "$"):
        fid_area(records)


def test_equal_images_at_two_steps_are_a_zero_width_segment():
    # images_seen never decreases, but may stay (an evaluation twice at one count); a step
    # equal to another record's image count is no clash
    records = [(0, 0, 5.0), (1, 0, 4.0), (64, 64, 3.0)]
    assert fid_area(records) == 0.5 * (4.0 + 3.0) * 64
    assert first_crossings([(0, 100, 5.0), (100, 200, 4.0)], [4.5]) == [Crossing(4.5, 100, 200)]


def test_a_range_ending_on_a_record_is_not_interpolated():
    # f0 + (f1 - f0) * 1 is 86.29999999999998, not 86.3: the records' own values are summed
    records = [(0, 0, 22.1), (1, 100, 86.3), (2, 200, 50.0)]
    assert fid_area(records, until_images=100) == 0.5 * (22.1 + 86.3) * 100


def test_normalized_area_divides_by_the_width_from_the_first_record():
    late = [(s + 1, n + 6400, f) for s, n, f in CURVE]  # evaluation starts after 6400 images
    assert fid_area(late, normalized=True) == pytest.approx(45.0)
    assert fid_area([(0, 0, 10.0), (1, 1, 20.0)], normalized=True) == 15.0  # one image wide
    with pytest.raises(ValueError, match="^normalized fid_area needs records spanning more than "
                                         "one images_seen$"):
        fid_area(CURVE[:1], normalized=True)


def test_area_messages_state_the_accepted_range():
    with pytest.raises(ValueError, match=r"^until_images must lie within the recorded images "
                                         r"\[6400, 19200\], got 30000$"):
        fid_area(CURVE[1:4], until_images=30000)
    with pytest.raises(ValueError, match="^fid_area needs at least one record$"):
        fid_area([])
