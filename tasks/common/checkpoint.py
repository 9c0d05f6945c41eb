"""Atomic checkpoints and the RNG state that makes a resumed run equal the uninterrupted one.

A checkpoint is one ``torch.save`` of a dict (models, optimizers, EMA, AMP scaler, regularizer
state, step, RNG states). It is written to a temporary file in the same folder and moved into
place with ``os.replace``, so a crash mid-write never leaves a truncated ``latest.pt``.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

LATEST = "latest.pt"


def save_atomic(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(state: dict[str, Any], folder: str | Path, step: int, keep: int = 3) -> Path:
    """Write ``step_<step>.pt`` and ``latest.pt`` atomically; keep the newest ``keep`` steps."""
    folder = Path(folder)
    path = save_atomic(state, folder / f"step_{step:08d}.pt")
    save_atomic(state, folder / LATEST)
    steps = sorted(folder.glob("step_*.pt"))
    for old in steps[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (expected a file written by robustrep, "
                                f"e.g. RUN/checkpoints/{LATEST})")
    return torch.load(path, map_location=map_location, weights_only=False)


def latest_checkpoint(folder: str | Path) -> Path | None:
    path = Path(folder) / LATEST
    return path if path.is_file() else None


def checkpoint_step(path: str | Path) -> int | None:
    match = re.search(r"step_(\d+)\.pt$", str(path))
    return int(match.group(1)) if match else None


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every RNG a training step may draw from: Python, NumPy, torch CPU/CUDA, named generators."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any],
                  generators: dict[str, torch.Generator] | None = None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in (generators or {}).items():
        if name not in state["generators"]:
            raise KeyError(f"checkpoint has no state for generator {name!r}; "
                           f"it has {sorted(state['generators'])}")
        gen.set_state(state["generators"][name])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
