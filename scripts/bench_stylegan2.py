"""Benchmark: AdaptiveMix's D step over the baseline D step on the StyleGAN2 discriminator.

The D is ``robustrep/nets/stylegan2.py``'s residual D at 32x32 (``channel_base``/``channel_max`` as
given); its trunk ends at the 4x4 map and minibatch-std is in the head, so AdaptiveMix's two trunk
passes (and the fused single call, ``fuse_passes``) give the reference's three-pass result. A D step
is: D on reals and on fakes (each side mixed within itself under AdaptiveMix, reference mode),
non-saturating loss (+ shrinkage), backward, Adam step. ``--with-g`` adds the G forward that draws
the fakes (no grad), as the program's D step does. Methods are timed interleaved, round by round, in
one process, so the ratios are comparable on a noisy machine.

    python scripts/bench_stylegan2.py [--device cuda] [--batch 32] [--rounds 5] [--with-g]

Prints a table of median seconds per D step and the ratio to the baseline; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from robustrep.adaptivemix import AdaptiveMix, adaptivemix_three_pass
from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import device as device_arg, int_at_least, machine, power_of_two  # noqa: E402


def make_steps(args, device):
    torch.manual_seed(0)
    D = StyleGAN2Discriminator(args.res, 3, channel_base=args.channel_base,
                               channel_max=args.channel_max).to(device)
    G = StyleGAN2Generator(64, args.res, 3, w_dim=128, mapping_layers=2,
                           channel_base=args.channel_base, channel_max=args.channel_max).to(device)
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    real = torch.randn(args.batch, 3, args.res, args.res, device=device)
    gen = torch.Generator(device).manual_seed(0)
    fixed_fake = torch.randn_like(real)

    def fakes():
        if not args.with_g:
            return fixed_fake
        with torch.no_grad():
            return G(torch.randn(args.batch, 64, device=device, generator=gen))

    def step(logit_fn):
        x_fake = fakes()
        opt.zero_grad(set_to_none=True)
        lr, sr = logit_fn(real)
        lf, sf = logit_fn(x_fake)
        (F.softplus(-lr).mean() + F.softplus(lf).mean() + sr + sf).backward()
        opt.step()

    def plain(x):
        return D(x), 0.0

    def am(fuse):
        reg = AdaptiveMix(fuse_passes=fuse)

        def fn(x):
            out = reg(D, x, generator=gen)
            return out["logits"], out["loss"]
        return fn

    def three(x):
        lam = torch.rand((), generator=gen, device=device)
        index = torch.randperm(x.shape[0], generator=gen, device=device)
        out = adaptivemix_three_pass(D, x, lam, index)
        return out["logits"], out["loss"]

    return {"baseline": lambda: step(plain), "adaptivemix_fused": lambda: step(am(True)),
            "adaptivemix_two_pass": lambda: step(am(False)),
            "adaptivemix_three_pass": lambda: step(three)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", type=device_arg, default="cpu")
    # 2+: AdaptiveMix draws each sample's partner from the batch
    p.add_argument("--batch", type=int_at_least(2), default=32)
    p.add_argument("--res", type=power_of_two, default=32)
    p.add_argument("--channel-base", type=int_at_least(1), default=2048)
    p.add_argument("--channel-max", type=int_at_least(1), default=128)
    p.add_argument("--rounds", type=int_at_least(1), default=5)
    p.add_argument("--with-g", action="store_true")
    p.add_argument("--out", default="bench_stylegan2.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    steps = make_steps(args, device)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for fn in steps.values():  # warm-up
        fn()
    for _ in range(args.rounds):
        for name, fn in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"StyleGAN2 D {args.res}x{args.res}, channel_base {args.channel_base}, channel_max "
          f"{args.channel_max}, batch {args.batch}, {'with' if args.with_g else 'without'} G "
          f"forward; {device.type}, {machine(device)}, torch {torch.__version__}")
    print(f"{'method':<26}{'s/step':>10}{'ratio':>8}")
    for name, t in med.items():
        print(f"{name:<26}{t:>10.4f}{t / med['baseline']:>8.2f}")
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "median_s": med,
                   "ratio": {k: v / med["baseline"] for k, v in med.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
