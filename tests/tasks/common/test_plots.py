"""Pictures are written atomically: a failure while writing leaves the earlier file as it was
and no temporary file behind; the format follows the suffix."""

import matplotlib.axes
import matplotlib.figure
import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.tasks.common import plots
from robustrep.tasks.common.runfiles import TMP_SUFFIX


def _fail_after_half(write_half):
    def fail(*args, **kwargs):
        write_half(args, kwargs)
        raise RuntimeError("killed mid-write")
    return fail


def test_a_failed_plot_keeps_the_earlier_picture(tmp_path, monkeypatch):
    path = tmp_path / "roc.png"
    plots.roc_curves({"A": ([0, 1], [0, 1], 0.5)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _fail_after_half(
        lambda args, kw: args[1].write(b"\x89PNG half")))
    with pytest.raises(RuntimeError, match="killed mid-write"):
        plots.roc_curves({"B": ([0, 1], [0, 1], 0.5)}, path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(f"*{TMP_SUFFIX}"))


def test_a_failed_grid_keeps_the_earlier_grid(tmp_path, monkeypatch):
    path = tmp_path / "grid.png"
    plots.image_grid(torch.rand(4, 3, 8, 8), path, nrow=2)
    before = path.read_bytes()
    monkeypatch.setattr(plots, "save_image", _fail_after_half(
        lambda args, kw: args[1].write(b"\x89PNG half")))
    with pytest.raises(RuntimeError, match="killed mid-write"):
        plots.image_grid(torch.rand(4, 3, 8, 8), path, nrow=2)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(f"*{TMP_SUFFIX}"))


@pytest.mark.parametrize("suffix, kind", [(".png", "PNG"), (".jpg", "JPEG"), (".JPEG", "JPEG"),
                                          (".webp", "WEBP")])
def test_a_grid_is_written_in_its_suffix_format(tmp_path, suffix, kind):
    images = torch.rand(4, 3, 8, 8)
    path = plots.image_grid(images, tmp_path / f"grid{suffix}", nrow=2)
    with Image.open(path) as img:
        assert img.format == kind and img.size == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)
    if kind == "PNG":  # lossless: the grid's pixels are torchvision's make_grid of the images
        from torchvision.utils import make_grid
        want = make_grid(images, nrow=2, padding=2).mul(255).add(0.5).clamp(0, 255).byte()
        with Image.open(path) as img:
            got = torch.from_numpy(np.array(img)).permute(2, 0, 1)
        assert torch.equal(got, want)


def test_bars_of_one_seed_draw_no_error_bars(tmp_path, monkeypatch):
    # matplotlib 3.7.0 (the floor) stopped with StopIteration on error bars that are all NaN:
    # `ood bench --seeds 0` failed after every run, at its last plot
    drawn = []
    bar = matplotlib.axes.Axes.bar
    monkeypatch.setattr(matplotlib.axes.Axes, "bar",
                        lambda self, *a, yerr=None, **k: drawn.append(yerr) or bar(self, *a, **k))
    nan = float("nan")
    plots.grouped_bars({"auroc": {"KNN": {"none": (0.9, nan)}}}, tmp_path / "a.png")
    plots.bar_table({"none": {"acc": (0.5, nan)}, "mix": {"acc": (0.6, nan)}}, tmp_path / "b.png")
    plots.bar_table({"none": {"acc": (0.5, 0.1)}, "mix": {"acc": (0.6, nan)}}, tmp_path / "c.png")
    assert drawn[:2] == [None, None] and drawn[2][0] == 0.1


def test_bars_with_run_counts_say_what_their_spread_is_and_mark_a_single_run(tmp_path,
                                                                            monkeypatch):
    """Was: error bars with no word of what they are, and a one-run bar drawn as a bar of zero
    spread, like a mean of seeds that agreed."""
    figures = []
    monkeypatch.setattr(plots, "_finish", lambda fig, path: figures.append(fig) or path)
    plots.bar_table({"none": {"FID": (3.0, 0.5, 3)}, "dat": {"FID": (4.0, 0.0, 1)}},
                    tmp_path / "b.png")
    (fig,) = figures
    try:
        texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert texts == ["error bar: ±1 sample std over seeds (ddof 1)",
                         "1 run: no spread (hatched, a diamond at its mean)"]
        ax = fig.axes[0]
        spread, single = ax.patches[:2]
        assert not spread.get_hatch() and single.get_hatch() == "///"
        (lines,) = [c for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]
        spread_segment, single_segment = lines.lines[2][0].get_segments()
        assert list(spread_segment[:, 1]) == [2.5, 3.5]  # ±1 std around the mean
        assert single_segment.size == 0  # one run: no bar of a zero spread
        assert any(line.get_marker() == "D" for line in ax.lines)  # the one run's mean
    finally:
        plots.plt.close(fig)
