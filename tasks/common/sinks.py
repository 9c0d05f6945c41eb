"""Where a run's scalars go besides ``metrics.jsonl``: ``--log jsonl`` (default), ``tensorboard``
or ``wandb``.

``metrics.jsonl`` stays the source of truth (resume truncates and re-appends it, tests and reports
read it); a TensorBoard sink mirrors every numeric value of each record under the record's step,
as timm's ``--log-wandb`` and stylegan2-ada's ``stats.jsonl`` + TensorBoard do. TensorBoard is an
optional dependency (``pip install 'robustrep[tensorboard]'``); asking for it without the package
is a one-line error before the run starts. Weights & Biases likewise (``pip install
'robustrep[wandb]'``): a wandb run kept under ``RUN/wandb`` (``WANDB_MODE=offline`` keeps it
local), as timm's ``train.py --log-wandb`` logs its summaries.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any, Protocol

from robustrep.tasks.common.errors import UserError

LOG_CHOICES = ("jsonl", "tensorboard", "wandb")


class Sink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


# --log backend -> (module it needs, the pip extra that installs it)
_NEEDS = {"tensorboard": ("torch.utils.tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}


def check_sinks(log: str | None) -> None:
    """Raise the one-line UserError of an unknown ``--log`` or a backend that is not installed;
    called before the run folder is made, so that such a run leaves nothing behind."""
    if log in (None, "jsonl"):
        return
    if log not in _NEEDS:
        raise UserError(f"--log must be one of {', '.join(LOG_CHOICES)}; got {log!r}")
    module, extra = _NEEDS[log]
    try:
        importlib.import_module(module)
    except ImportError:
        raise UserError(f"--log {log} needs the {extra} package: pip install "
                        f"'robustrep[{extra}]' (or use --log jsonl)") from None


class TensorBoardSink:
    """Mirror numeric values of each metrics record into ``RUN/tensorboard``."""

    def __init__(self, folder: str | Path):
        check_sinks("tensorboard")
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(folder))

    def write(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        for key, value in _scalars(record):
            self.writer.add_scalar(key, value, step)
        self.writer.flush()  # a killed run keeps what it logged, as metrics.jsonl does

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class WandbSink:
    """Mirror numeric values of each metrics record into a Weights & Biases run in ``folder``.

    The wandb run id is kept in ``folder/run_id``, so a resumed robustrep run continues the same
    wandb run; the project is ``$WANDB_PROJECT`` or ``robustrep``, the name the run folder's.
    """

    def __init__(self, folder: str | Path, name: str, config: dict[str, Any] | None = None):
        check_sinks("wandb")
        import wandb
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        if not id_file.is_file():
            tmp = id_file.with_suffix(".tmp")
            tmp.write_text(run_id + "\n")
            os.replace(tmp, id_file)  # atomic, as every file robustrep writes
        from robustrep.tasks.common.download import offline_reason
        # the offline switch forbids every connection, wandb's too: its run is kept in folder
        # (``wandb sync`` uploads it later), as under WANDB_MODE=offline
        offline = {"mode": "offline"} if offline_reason() else {}
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "robustrep", name=name,
                              id=run_id, resume="allow", dir=str(folder), config=config,
                              **offline)

    def write(self, record: dict[str, Any]) -> None:
        self.run.log(dict(_scalars(record)), step=int(record.get("step", 0)))

    def close(self) -> None:
        self.run.finish()


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
    if log == "wandb":
        config_file = Path(run_path) / "config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else None
        return [WandbSink(Path(run_path) / "wandb", Path(run_path).name, config)]
    raise UserError(f"--log must be one of {', '.join(LOG_CHOICES)}; got {log!r}")
