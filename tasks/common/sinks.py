"""Where a run's scalars go besides ``metrics.jsonl``: ``--log jsonl`` (default) or ``tensorboard``.

``metrics.jsonl`` stays the source of truth (resume truncates and re-appends it, tests and reports
read it); a TensorBoard sink mirrors every numeric value of each record under the record's step,
as timm's ``--log-wandb`` and stylegan2-ada's ``stats.jsonl`` + TensorBoard do. TensorBoard is an
optional dependency (``pip install 'robustrep[tensorboard]'``); asking for it without the package
is a one-line error before the run starts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from robustrep.tasks.common.errors import UserError

LOG_CHOICES = ("jsonl", "tensorboard")


class Sink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class TensorBoardSink:
    """Mirror numeric values of each metrics record into ``RUN/tensorboard``."""

    def __init__(self, folder: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--log tensorboard needs the tensorboard package: "
                            "pip install 'robustrep[tensorboard]' (or use --log jsonl)") from None
        self.writer = SummaryWriter(log_dir=str(folder))

    def write(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        for key, value in _scalars(record):
            self.writer.add_scalar(key, value, step)
        self.writer.flush()  # a killed run keeps what it logged, as metrics.jsonl does

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def _scalars(record: dict[str, Any], prefix: str = ""):
    """``(tag, value)`` for each finite number in ``record``; nested dicts become ``a/b`` tags."""
    for key, value in record.items():
        if key == "step":
            continue
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _scalars(value, f"{tag}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            yield tag, float(value)


def make_sinks(log: str | None, run_path: str | Path) -> list[Sink]:
    """The extra sinks for ``--log`` (``None``/``"jsonl"``: none beyond ``metrics.jsonl``)."""
    if log in (None, "jsonl"):
        return []
    if log == "tensorboard":
        return [TensorBoardSink(Path(run_path) / "tensorboard")]
    raise UserError(f"--log must be one of {', '.join(LOG_CHOICES)}; got {log!r}")
