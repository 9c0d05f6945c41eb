"""scripts/bench_stylegan2_step.py times several --reg variants in one run and relates them."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_stylegan2_step.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_stylegan2_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_are_timed_side_by_side(bench, tmp_path, capsys):
    out = tmp_path / "step.json"
    with torch.random.fork_rng():
        result = bench.main(["--res", "16", "--batch", "2", "--channel-base", "64",
                             "--channel-max", "8", "--iters", "1", "--warmup", "0",
                             "--reg", "none,adaptivemix", "--out", str(out)])
    assert set(result) == {"none", "adaptivemix"}
    assert json.loads(out.read_text())["adaptivemix"]["reg"] == "adaptivemix"
    # AdaptiveMix adds its mixed pass to D's step: more aten ops than the baseline's
    ops = {reg: r["aten_ops"] for reg, r in result.items()}
    assert ops["adaptivemix"]["d_main"] > ops["none"]["d_main"]
    ratio = result["adaptivemix"]["amortised_s"] / result["none"]["amortised_s"]
    assert f"= {ratio:.2f}x reg none" in capsys.readouterr().out


def test_amortised_schedules_the_lazy_penalties(bench):
    t = {"d_main": 1.0, "d_r1": 3.0, "g_main": 2.0, "g_pl": 6.0}
    assert bench.amortised(t) == pytest.approx(1.0 + 2.0 + 2.0 / 16 + 4.0 / 4)
