"""``--compile`` for StyleGAN2 (issue 22): the D and G steps call the compiled G training
forward (style-mixed mapping and synthesis) and D, the lazy penalties (R1 and path length,
double backward, which AOTAutograd does not support) the eager modules; a compiled run equals
the eager one within float tolerance and compiles nothing after its first iteration."""

import pytest
import torch
from torch import nn

from robustrep.tasks.gan.train import train

from .conftest import read_records
from .test_stylegan2 import tiny_sg2

LAZY = dict(r1_gamma=1.0, r1_every=2, pl_every=2, ckpt_every=100)


def test_compiled_functions_run_the_main_losses_and_eager_modules_the_penalties(
        tiny_cfg, tmp_path, monkeypatch):
    calls = []

    def fake_compile(fn, **kwargs):  # records which compiled function runs, with or without grad
        name = "D" if isinstance(fn, nn.Module) else "G"

        def compiled(*args, **kw):
            calls.append((name, torch.is_grad_enabled()))
            return fn(*args, **kw)
        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    run = tmp_path / "run"
    train(tiny_sg2(tiny_cfg, steps=1, compile=True, out=str(run), **LAZY), show_progress=False)
    # Gmain: G and D on the fakes; Greg (path length): eager; Dmain: G without grad for the
    # fakes, D on reals and fakes; Dreg (R1): eager
    assert calls == [("G", True), ("D", True), ("G", False), ("D", True), ("D", True)]
    assert {"loss/g/pl", "loss/d/r1"} <= set(read_records(run)[0])


def _graphs() -> int:
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]


# (config, tolerance of losses and weights): fp32 is equal to rounding; bf16 autocast and fp16
# blocks round differently once fused (inductor keeps intermediates in fp32), so only close
PRECISIONS = {"fp32": ({}, 1e-5),
              "bf16+fp16-blocks": (dict(amp="bf16", fp16_res=1, conv_clamp=256.0), 1e-2)}


@pytest.mark.slow
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_compiled_stylegan2_equals_eager_and_compiles_once(precision, tiny_cfg, tmp_path,
                                                           monkeypatch):
    """About two minutes each on 2 CPU cores with inductor's on-disk cache cold (10 s warm),
    nearly all of it compilation. Inductor's own random
    numbers (the synthesis noise) are replaced by eager's (``fallback_random``) so that the
    runs can be compared."""
    import torch._dynamo
    import torch._inductor.config
    torch._dynamo.reset()
    graphs = []
    from robustrep.tasks.gan.train import Trainer
    one_step = Trainer.one_step
    monkeypatch.setattr(Trainer, "one_step",
                        lambda self, bar: (one_step(self, bar), graphs.append(_graphs())))
    extra, tol = PRECISIONS[precision]
    runs = {}
    for compiled in (False, True):
        runs[compiled] = tmp_path / f"compile_{compiled}"
        with torch._inductor.config.patch(fallback_random=True):
            train(tiny_sg2(tiny_cfg, compile=compiled, out=str(runs[compiled]), steps=4,
                           log_every=1, **LAZY, **extra), show_progress=False)
    eager_graphs, graphs = graphs[:4], graphs[4:]
    assert len(set(eager_graphs)) == 1  # nothing compiled in the eager run
    # the first iteration compiles G (with and without grad) and D (trainable and frozen);
    # iterations 2-4, with and without the penalties, reuse those graphs
    assert graphs[0] > eager_graphs[0] and graphs[1:] == [graphs[0]] * 3, graphs
    eager, comp = (read_records(runs[c]) for c in (False, True))
    for a, b in zip(eager, comp):
        losses = [k for k in a if k.startswith("loss/")]
        assert losses == [k for k in b if k.startswith("loss/")]
        for k in losses:
            assert b[k] == pytest.approx(a[k], rel=tol, abs=tol), (a["step"], k)
    a, b = (torch.load(runs[c] / "checkpoints" / "latest.pt", weights_only=False)
            for c in (False, True))
    for part in ("G", "D", "ema"):
        for key, value in a[part].items():
            torch.testing.assert_close(b[part][key], value, rtol=tol, atol=tol,
                                       msg=f"{part}.{key}")
