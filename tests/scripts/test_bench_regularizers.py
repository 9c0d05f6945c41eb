"""The benchmark script runs end to end at toy size and reports a ratio for every method."""

import json
import runpy
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_regularizers.py"


def test_bench_runs_and_reports_ratios(tmp_path, monkeypatch):
    out = tmp_path / "bench.json"
    # As `python scripts/bench_regularizers.py ...`, in this process (a new one costs more than
    # the toy run); fork_rng keeps the script's manual_seed from leaking into later tests.
    monkeypatch.setattr(sys, "argv", [
        str(SCRIPT), "--device", "cpu", "--batch", "4", "--rounds", "1", "--steps", "1",
        "--warmup", "0", "--views", "1", "2", "--rp-width", "4", "--fid-samples", "200",
        "--fid-dim", "16", "--out", str(out)])
    with torch.random.fork_rng():
        runpy.run_path(str(SCRIPT), run_name="__main__")
    result = json.loads(out.read_text())
    ratios = result["d_step_ratio"]
    assert ratios["baseline"] == 1.0
    assert {"adaptivemix (2 passes)", "dat", "asgan (one step)", "srmix"} <= set(ratios)
    assert all(v > 0 for v in ratios.values())
    assert set(result["ensemble_seconds"]) == {f"{k}/{fmt}" for k in (1, 2)
                                               for fmt in ("contiguous", "channels_last")}
    fid = result["fid"]
    assert abs(fid["robustrep_fid"] - fid["scipy_fid"]) < 1e-6 * abs(fid["scipy_fid"])
