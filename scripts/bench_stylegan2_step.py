"""Time and count one StyleGAN2 training step of the GAN program, phase by phase.

Builds the program's own step context (``tasks/gan/steps.py``, ``lazy_reg.py``: style mixing, lazy
R1 every 16 D steps, path length every 4 G steps, as the presets) for a StyleGAN2 G and D at
``--res`` and times each phase: D main step, D step with R1 due (main + Dreg), G main step, G step
with path length due (Gmain + Greg). The amortised iteration is
``Dmain + Gmain + Dreg/16 + Greg/4``. It also counts the aten operations each phase dispatches (a
``TorchDispatchMode``; the CPU guard ``tests/tasks/gan/test_stylegan2_ops.py`` uses the same count)
and, with ``--profile``, prints a ``torch.profiler`` table of the top operators of one amortised
iteration.

    python scripts/bench_stylegan2_step.py [--device cpu] [--res 32] [--batch 16] [--iters 5]
                                           [--compile] [--reg none,adaptivemix]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.runtime import maybe_compile
from robustrep.tasks.gan import lazy_reg, steps
from robustrep.tasks.gan.config import GanConfig
from robustrep.tasks.gan.models import build_discriminator, build_generator
from robustrep.tasks.gan.presets import PRESETS
from robustrep.tasks.gan.regs import build_regs
from robustrep.tasks.gan.train import _optimizers
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import (device as device_arg, int_at_least,  # noqa: E402
                  machine as machine_name, power_of_two)

PHASES = ("d_main", "d_r1", "g_main", "g_pl")


def make_context(res: int = 32, batch: int = 16, channel_base: int = 512, channel_max: int = 64,
                 device: str = "cpu", seed: int = 0, **overrides) -> tuple:
    """(StepContext, a function drawing a real batch) for the digits-stylegan2 recipe at
    ``res`` with 3 channels; ``overrides`` go to the config (e.g. ``amp``, ``fp16_res``)."""
    cfg = GanConfig(**{**PRESETS["digits-stylegan2"], "image_size": res, "batch_size": batch,
                       "channel_base": channel_base, "channel_max": channel_max,
                       "device": device, "preset": "digits-stylegan2", **overrides})
    dev = torch.device(device)
    torch.manual_seed(seed)
    shape = (3, res, res)
    G, D = build_generator(cfg, shape).to(dev), build_discriminator(cfg, shape).to(dev)
    opt_g, opt_d = _optimizers(cfg, G, D)
    gens = {"z": torch.Generator(dev).manual_seed(seed + 1),
            "reg": torch.Generator(dev).manual_seed(seed + 2)}
    ctx = steps.StepContext(
        cfg=cfg, G=G, D=D, g_fn=maybe_compile(steps.g_forward(cfg, G, gens["z"]), cfg.compile),
        d_fn=maybe_compile(D, cfg.compile), opt_g=opt_g, opt_d=opt_d,
        scaler=torch.amp.GradScaler(dev.type, enabled=cfg.amp == "fp16"),
        regs=build_regs(cfg), device=dev, gens=gens)
    real_gen = torch.Generator(dev).manual_seed(seed + 3)
    return ctx, lambda: torch.randn(batch, *shape, generator=real_gen, device=dev)


def run_phase(ctx, real, phase: str) -> None:
    """One phase; ``d_r1``/``g_pl`` put the schedule where the penalty is due."""
    if phase.startswith("d"):
        r1 = ctx.cfg.r1_every
        ctx.d_steps = 0 if phase == "d_r1" else (1 if r1 > 1 else 0)
        steps.d_step(ctx, real())
    else:
        batch = ctx.cfg.batch_size
        steps.g_step(ctx, batch)
        if phase == "g_pl":
            lazy_reg.g_reg_step(ctx, batch, iteration=0)


class CountOps(TorchDispatchMode):
    """Counts every aten operation dispatched inside the block (forward, backward, optimizer)."""

    def __init__(self):
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_ops(ctx, real, phase: str) -> collections.Counter:
    """The aten ops of one ``phase``, after one untimed run (the optimizers' state exists)."""
    run_phase(ctx, real, phase)
    with CountOps() as counter:
        run_phase(ctx, real, phase)
    return counter.counts


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_phases(ctx, real, iters: int, warmup: int) -> dict[str, float]:
    """Median seconds per phase, phases interleaved round by round."""
    return time_variants({"": (ctx, real)}, iters, warmup)[""]


def time_variants(variants: dict, iters: int, warmup: int) -> dict[str, dict[str, float]]:
    """:func:`time_phases` for several ``name -> (ctx, real)`` at once, interleaved round by
    round, so that their ratios hold on a machine whose speed drifts."""
    for _ in range(warmup):
        for ctx, real in variants.values():
            for phase in PHASES:
                run_phase(ctx, real, phase)
    times = {name: {p: [] for p in PHASES} for name in variants}
    for _ in range(iters):
        for name, (ctx, real) in variants.items():
            for phase in PHASES:
                _sync(ctx.device)
                start = time.perf_counter()
                run_phase(ctx, real, phase)
                _sync(ctx.device)
                times[name][phase].append(time.perf_counter() - start)
    return {name: {p: statistics.median(v) for p, v in t.items()} for name, t in times.items()}


def amortised(t: dict[str, float], r1_every: int = 16, pl_every: int = 4) -> float:
    """Seconds per iteration as the presets schedule the penalties."""
    return (t["d_main"] + t["g_main"] + (t["d_r1"] - t["d_main"]) / r1_every
            + (t["g_pl"] - t["g_main"]) / pl_every)


def profile_table(ctx, real, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ctx.device.type == "cuda"
                                     else [])
    with profile(activities=acts) as prof:
        for phase in PHASES:
            run_phase(ctx, real, phase)
        _sync(ctx.device)
    key = "cuda_time_total" if ctx.device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def machine() -> str:
    return f"{machine_name()}; torch {torch.__version__}; CUDA {torch.version.cuda}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", type=device_arg, default="cpu")
    p.add_argument("--res", type=power_of_two, default=32)
    p.add_argument("--batch", type=int_at_least(2), default=16)
    p.add_argument("--channel-base", type=int_at_least(1), default=512)
    p.add_argument("--channel-max", type=int_at_least(1), default=64)
    p.add_argument("--amp", default="off", choices=("off", "bf16", "fp16"))
    p.add_argument("--fp16-res", type=int, default=None)
    p.add_argument("--reg", default="none",
                   help="the program's --reg; a comma list (none,adaptivemix) times each, "
                        "interleaved, and prints each amortised iteration over the first's")
    p.add_argument("--iters", type=int_at_least(1), default=5)
    p.add_argument("--warmup", type=int_at_least(0), default=1)
    p.add_argument("--threads", type=int_at_least(1), default=None)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile G's training forward and D (the program's --compile); "
                        "the first warm-up round, timed apart, compiles")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", default=None, help="JSON file for the figures")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def measure(args, reg: str, ctx, real, t: dict[str, float], first: float | None) -> dict:
    """One variant's figures; aten ops of the eager step (a compiled one runs fused kernels)."""
    ops = {} if args.compile else {phase: sum(count_ops(ctx, real, phase).values())
                                   for phase in PHASES}
    return {"machine": machine(), "res": args.res, "batch": args.batch, "amp": args.amp,
            "fp16_res": args.fp16_res, "reg": reg, "compile": args.compile,
            "compile_round_s": first, "seconds": t, "amortised_s": amortised(t),
            "aten_ops": ops}


def report(args, result: dict, baseline: dict | None) -> None:
    ops, t, first = result["aten_ops"], result["seconds"], result["compile_round_s"]
    print(f"{result['machine']}; {args.res}x{args.res}, batch {args.batch}, amp {args.amp}, "
          f"reg {result['reg']}"
          + (f", compiled (first round {first:.1f} s)" if args.compile else ""))
    for phase in PHASES:
        count = f"{ops[phase]:6d} aten ops" if ops else ""
        print(f"  {phase:7s} {t[phase] * 1000:9.1f} ms  {count}")
    ratio = ("" if baseline is None else
             f" = {result['amortised_s'] / baseline['amortised_s']:.2f}x reg {baseline['reg']}")
    print(f"  amortised iteration (R1 every 16, PL every 4): "
          f"{result['amortised_s'] * 1000:.1f} ms{ratio}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # as the trainers (runtime.tune_backends)
    over = {"amp": args.amp, "compile": args.compile} | (
        {"fp16_res": args.fp16_res} if args.fp16_res is not None else {})
    regs = args.reg.split(",")
    try:
        variants = {reg: make_context(args.res, args.batch, args.channel_base, args.channel_max,
                                      args.device, reg=reg, **over) for reg in regs}
    except ConfigError as err:  # a bad --reg or --fp16-res: one line and exit 2, not a traceback
        build_parser().error(str(err))
    first = {reg: None for reg in regs}
    if args.compile:  # compile every phase's graphs before anything is timed or counted
        for reg, (ctx, real) in variants.items():
            start = time.perf_counter()
            for phase in PHASES:
                run_phase(ctx, real, phase)
            first[reg] = time.perf_counter() - start
    times = time_variants(variants, args.iters, args.warmup)
    results = [measure(args, reg, *variants[reg], times[reg], first[reg]) for reg in regs]
    for result in results:
        report(args, result, None if result is results[0] else results[0])
    if args.profile:
        print(profile_table(*variants[regs[0]]))
    result = results[0] if len(results) == 1 else {r["reg"]: r for r in results}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
