"""The run folder every program writes.

    RUN/
      config.json        the resolved config (what --dry-run prints)
      metrics.jsonl      one JSON object per line: step, wall-clock seconds, metric values
      checkpoints/       step_*.pt and latest.pt (see checkpoint.py)
      samples/           image grids (PNG)
      plots/             curves and diagrams (PNG)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class RunDir:
    path: Path
    started: float = field(default_factory=time.time)

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    def create(self) -> "RunDir":
        for sub in (self.path, self.checkpoints, self.samples, self.plots):
            sub.mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, config: dict[str, Any]) -> None:
        (self.path / "config.json").write_text(json.dumps(_jsonable(config), indent=2) + "\n")

    def read_config(self) -> dict[str, Any]:
        path = self.path / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{self.path} is not a robustrep run folder: no config.json")
        return json.loads(path.read_text())

    def log(self, step: int, **values: Any) -> dict[str, Any]:
        record = {"step": step, "time": round(time.time() - self.started, 3), **values}
        with self.metrics_file.open("a") as handle:
            handle.write(json.dumps(_jsonable(record)) + "\n")
        return record

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line]

    def truncate_metrics(self, after_step: int) -> None:
        """Drop records past ``after_step``: a resumed run rewrites what followed its checkpoint."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        self.metrics_file.write_text("".join(json.dumps(r) + "\n" for r in kept))


def default_run_path(root: str | Path, task: str, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / task / f"{name}-{stamp}"
