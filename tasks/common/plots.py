"""PNG pictures shared by the programs: image grids, metric curves, 2-D scatter, ROC, histograms.

Matplotlib runs on the Agg backend (no display). Each function writes one file, atomically, and
returns its path.
"""

from __future__ import annotations

import math
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robustrep.tasks.common.runfiles import can_write, write_atomic


def _matplotlib_defaults() -> list[Path] | None:
    """matplotlib's own config and cache folders (``matplotlib.get_configdir``,
    ``get_cachedir``) where ``MPLCONFIGDIR`` is not set; None where there is no home."""
    try:
        if sys.platform.startswith(("linux", "freebsd")):
            config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
            cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            return [Path(config, "matplotlib"), Path(cache, "matplotlib")]
        return [Path.home() / ".matplotlib"]
    except RuntimeError:  # no HOME and no passwd entry
        return None


def _own_folder() -> Path | None:
    """A folder of this user's in the temporary folder, kept between runs (matplotlib's font
    list is built in it once, not at every run); None where none can be made ours."""
    try:
        folder = Path(tempfile.gettempdir()) / f"robustrep-matplotlib-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except (OSError, AttributeError):  # no temporary folder; no getuid (Windows)
        return None
    # a shared /tmp: a folder (or a link) of that name that another user made is not ours
    ours = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    return folder if ours and os.access(folder, os.W_OK | os.X_OK) else None


def use_writable_matplotlib_folder() -> None:
    """Set ``MPLCONFIGDIR`` to a folder of ours when matplotlib's default ones cannot be
    written (HOME unwritable or missing, as on clusters and in containers) and the user set
    none: matplotlib would print a warning of several lines into the program's output, then
    use a temporary folder anyway (and set ``MPLCONFIGDIR`` itself). Called before matplotlib
    is imported, here in the programs: the library imports nothing that draws."""
    if os.environ.get("MPLCONFIGDIR"):  # the user's choice ("" is unset to matplotlib too)
        return
    defaults = _matplotlib_defaults()
    if defaults is not None and all(can_write(folder) for folder in defaults):
        return
    folder = _own_folder()
    if folder is not None:
        os.environ["MPLCONFIGDIR"] = str(folder)


use_writable_matplotlib_folder()
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import save_image  # noqa: E402


def _finish(fig, path: str | Path, replace: bool = True) -> Path:
    """Save ``fig`` to ``path`` atomically (a picture is never left half-written), close it;
    ``replace=False``: a new file only (:func:`~robustrep.tasks.common.runfiles.write_atomic`)."""
    path = Path(path)
    fig.tight_layout()
    try:
        return write_atomic(path, lambda handle: fig.savefig(
            handle, dpi=110, format=path.suffix[1:].lower() or "png", bbox_inches="tight"),
            replace)
    finally:
        plt.close(fig)


def image_grid(images: torch.Tensor, path: str | Path, nrow: int = 8,
               replace: bool = True) -> Path:
    """Save images in [0, 1] ([N, C, H, W]) as one grid, in the format of ``path``'s suffix
    (PNG when it has none), atomically (``replace=False``: a new file only)."""
    from PIL import Image
    path = Path(path)
    kind = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    grid = images.detach().float().clamp(0, 1).cpu()
    return write_atomic(path, lambda handle: save_image(grid, handle, format=kind, nrow=nrow,
                                                        padding=2), replace)


def curves(records: Sequence[dict[str, Any]], keys: Sequence[str], path: str | Path,
           title: str = "", x: str = "step") -> Path | None:
    """Plot each key present in ``records`` against ``x``; one panel per key."""
    keys = [k for k in keys if any(k in r for r in records)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(r[x], r[key]) for r in records if key in r and isinstance(r[key], (int, float))]
        if pts:
            ax.plot(*zip(*pts), marker="." if len(pts) < 30 else None)
        ax.set_title(key)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def scatter2d(samples: torch.Tensor, centers: torch.Tensor | None, path: str | Path,
              title: str = "", replace: bool = True) -> Path:
    fig, ax = plt.subplots(figsize=(4, 4))
    pts = samples.detach().float().cpu()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, label="samples")
    if centers is not None:
        c = centers.detach().float().cpu()
        ax.scatter(c[:, 0], c[:, 1], s=30, marker="x", color="red", label="modes")
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    return _finish(fig, path, replace)


def roc_curves(curves_by_name: dict[str, tuple[Any, Any, float]], path: str | Path,
               title: str = "") -> Path:
    """``curves_by_name[name] = (fpr, tpr, auroc)``."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (fpr, tpr, auc) in curves_by_name.items():
        ax.plot(fpr, tpr, label=f"{name} (AUROC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return _finish(fig, path)


def histograms(scores_by_name: dict[str, Any], path: str | Path, title: str = "",
               xlabel: str = "score") -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, scores in scores_by_name.items():
        ax.hist(torch.as_tensor(scores).float().cpu().numpy(), bins=40, alpha=0.5, density=True,
                label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _finish(fig, path)


def reliability_diagram(confidence, accuracy, counts, path: str | Path, ece: float,
                        title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    n_bins = len(counts)
    centers = [(i + 0.5) / n_bins for i in range(n_bins)]
    acc = [a if c > 0 else 0.0 for a, c in zip(accuracy, counts)]
    ax.bar(centers, acc, width=1.0 / n_bins, edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} ECE {ece:.3f}".strip())
    ax.legend(fontsize=7, loc="upper left")
    return _finish(fig, path)


def _panels(count: int, cols: int, size: tuple[float, float]) -> tuple[Any, list]:
    """A figure of ``count`` panels, ``cols`` a row (fewer when there are fewer), each ``size``
    inches; the panels of the last row that stay empty are hidden."""
    cols = max(1, min(cols, count))
    lines = (count + cols - 1) // cols
    fig, axes = plt.subplots(lines, cols, figsize=(size[0] * cols, size[1] * lines),
                             squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def _spread(vals: list[tuple[float, float]]) -> list[float] | None:
    """The error bars of ``(mean, std)`` pairs, or None when no std is a number (one seed):
    matplotlib 3.7.0 stops with StopIteration on error bars that are all NaN."""
    spread = [v[1] for v in vals]
    return spread if any(math.isfinite(x) for x in spread) else None


SPREAD = "error bar: ±1 sample std over seeds (ddof 1)"
ONE_RUN = "1 run: no spread (hatched, a diamond at its mean)"


def bar_table(rows: dict[str, dict[str, tuple]], path: str | Path, title: str = "",
              ylabel: str = "", cols: int = 4) -> Path:
    """Grouped bars with error bars: ``rows[method][metric] = (mean, std)``, one panel per
    metric, ``cols`` panels a row (every metric is drawn, however many). With a run count,
    ``(mean, std, runs)``, the spread is the sample std over seeds, said in a legend, and a
    one-run bar is hatched with a diamond at its mean: a spread of zero it is not."""
    methods = list(rows)
    metrics = sorted({m for r in rows.values() for m in r})
    counted = any(len(v) > 2 for r in rows.values() for v in r.values())
    fig, axes = _panels(len(metrics), cols, (3.2, 3.2))
    for ax, metric in zip(axes, metrics):
        vals = [rows[m].get(metric, (float("nan"), 0.0, 0)) for m in methods]
        if counted:  # a spread only where two or more runs give one
            vals = [(v[0], v[1] if v[2] > 1 else float("nan"), v[2]) for v in vals]
        drawn = ax.bar(range(len(methods)), [v[0] for v in vals], yerr=_spread(vals), capsize=3)
        if counted:
            _mark_single_runs(ax, drawn.patches, vals)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=7)
        ax.set_title(metric)
        ax.set_ylabel(ylabel)
    if counted:
        _spread_legend(fig)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def _mark_single_runs(ax, patches, vals: list[tuple]) -> None:
    for patch, (mean, _, runs) in zip(patches, vals):
        if runs == 1:
            patch.set_facecolor("white")
            patch.set_edgecolor("C0")
            patch.set_hatch("///")
            ax.plot(patch.get_x() + patch.get_width() / 2, mean, marker="D", color="C0",
                    markersize=5)


def _spread_legend(fig) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    spread = Line2D([], [], color="black", marker="|", markersize=12, linestyle="None")
    one = (Patch(facecolor="white", edgecolor="C0", hatch="///"),
           Line2D([], [], color="C0", marker="D", markersize=5, linestyle="None"))
    # under the panels, outside the figure: the tight bounding box of the saved file takes it in
    fig.legend([spread, one], [SPREAD, ONE_RUN], loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=2, fontsize=8, frameon=False)


def histogram_grid(panels: dict[str, dict[str, Any]], path: str | Path, title: str = "",
                   xlabel: str = "score", cols: int = 4) -> Path:
    """One histogram panel per key: ``panels[panel][series] = scores`` (e.g. ID vs OOD scores)."""
    names = list(panels)
    fig, axes = _panels(len(names), cols, (3.4, 2.6))
    for ax, name in zip(axes, names):
        for series, scores in panels[name].items():
            values = torch.as_tensor(scores).double().cpu()
            values = values[torch.isfinite(values)].numpy()
            if values.size:
                ax.hist(values, bins=40, alpha=0.5, density=True, label=series)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(5))  # long tick labels (ODIN's) stay apart
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def grouped_bars(panels: dict[str, dict[str, dict[str, tuple[float, float]]]], path: str | Path,
                 title: str = "", ylabel: str = "",
                 ylim: tuple[float, float] | None = None) -> Path:
    """Grouped bars with error bars, one panel per key.

    ``panels[panel][group][series] = (mean, std)``: within a panel, one cluster of bars per group
    (e.g. detector) and one coloured bar per series (e.g. regularizer), with a shared legend.
    """
    names = list(panels)
    series = list(dict.fromkeys(s for p in panels.values() for g in p.values() for s in g))
    most_groups = max((len(p) for p in panels.values()), default=1)
    fig_width = max(6.0, 0.9 * most_groups * max(1, len(series)) / 2.5)
    fig, axes = plt.subplots(len(names), 1, figsize=(fig_width, 2.8 * len(names)), squeeze=False)
    width = 0.8 / max(1, len(series))
    for ax, name in zip(axes[:, 0], names):
        groups = list(panels[name])
        for k, s in enumerate(series):
            vals = [panels[name][g].get(s, (float("nan"), 0.0)) for g in groups]
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
            ax.bar(xs, [v[0] for v in vals], width, yerr=_spread(vals), capsize=2, label=s)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def roc_curves_many(curves_by_name: dict[str, tuple[Any, Any, float]], path: str | Path,
                    title: str = "") -> Path:
    """:func:`roc_curves` for many curves: the legend goes beside the axes, two columns if long."""
    fig, ax = plt.subplots(figsize=(11.0, 5.0))
    cmap = plt.get_cmap("tab20")
    for k, (name, (fpr, tpr, auc)) in enumerate(curves_by_name.items()):
        ax.plot(fpr, tpr, color=cmap(k % 20), ls="-" if k < 20 else "--",
                label=f"{name} ({auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              ncol=2 if len(curves_by_name) > 16 else 1, title="detector (AUROC)",
              title_fontsize=7)
    return _finish(fig, path)
