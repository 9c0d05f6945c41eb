"""Benchmark: each regularizer's D-step time over the baseline D step, measured in one run.

A D step here is what the GAN program does once per discriminator update: draw z, run G under
no_grad, run D on reals and fakes with the regularizer, backward, Adam step. The discriminator is
DCGAN-size at 32x32 (64-128-256 channels, BatchNorm, 4x4 head); G is the matching DCGAN G.
Every method is timed in the same process, interleaved round by round, so the ratios are
comparable even on a noisy machine; AdaptiveMix with R1 is timed both ways the GAN program can
take R1 (from the main pass's mixed logit, or from a pass of its own). The second table times
the random-projection ensemble's batched (grouped-conv) forward+backward against the per-member
Python loop at K = 1, 8, 48, in the default (contiguous) and channels-last memory formats.

    python scripts/bench_regularizers.py [--device cuda] [--batch 64] [--rounds 5] [--out FILE]

Prints two tables and writes JSON (default: bench_regularizers.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
import statistics
import time

import torch
from torch import nn

from robustrep.adaptivemix import AdaptiveMix, adaptivemix_three_pass
from robustrep.adversarial import asgan_perturb, dat_perturb
from robustrep.free import FreePerturbation
from robustrep.losses import loss_fake, loss_real, r1_penalty
from robustrep.metrics.fid import frechet_distance
from robustrep.mixing import SampleMix, mixed_gan_loss
from robustrep.projection import ProjectionEnsemble, ensemble_d_loss
from robustrep.split import FeatureSplit
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import device as device_arg, int_at_least, machine as machine_name  # noqa: E402


def dcgan_d(width: int = 64) -> FeatureSplit:
    trunk = nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2))
    head = nn.Sequential(nn.Conv2d(4 * width, 1, 4, 1, 0), nn.Flatten())
    return FeatureSplit(trunk, head)


def dcgan_g(nz: int = 128, width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.ConvTranspose2d(nz, 4 * width, 4, 1, 0), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())


def make_steps(d: FeatureSplit, g: nn.Module, real: torch.Tensor, nz: int, gen: torch.Generator):
    """One closure per method returning the D loss; the driver does backward and the Adam step.

    Returns ``(steps, free, state)``: the closures by name, the carried perturbation of the free
    AS-GAN mode, and a dict through which that closure hands its leaf input to the driver.
    """
    batch, device = real.shape[0], real.device
    amix = AdaptiveMix()
    mixers = {k: SampleMix(kinds=(k,)) for k in ("mixup", "cutmix", "srmix")}
    free = FreePerturbation(eps=0.05, input_range=(-1.0, 1.0))
    state: dict[str, torch.Tensor] = {}

    def fake() -> torch.Tensor:
        with torch.no_grad():
            return g(torch.randn(batch, nz, 1, 1, device=device, generator=gen))

    def baseline_terms(x_real, x_fake):
        return loss_real(d(x_real)).mean() + loss_fake(d(x_fake)).mean()

    def baseline():
        return baseline_terms(real, fake())

    def adaptivemix():
        out_r, out_f = amix(d, real, gen), amix(d, fake(), gen)
        return (loss_real(out_r["logits"]).mean() + out_r["loss"]
                + loss_fake(out_f["logits"]).mean() + out_f["loss"])

    def adaptivemix_3pass():
        total = 0.0
        for x, side in ((real, loss_real), (fake(), loss_fake)):
            index = torch.randperm(batch, generator=gen, device=device)
            lam = torch.rand((), generator=gen, device=device).expand(batch)
            noise = 0.05 * torch.randn(batch, 256 * 4 * 4, generator=gen, device=device)
            out = adaptivemix_three_pass(d, x, lam, index, noise.view(batch, 256, 4, 4))
            total = total + side(out["logits"]).mean() + out["loss"]
        return total

    def adaptivemix_r1(main_pass: bool):
        # R1 every step (gamma 1): from the main pass's mixed logit of the reals (the GAN
        # program's r1_in_main_pass), or from a pass of its own (new lam, partners, trunk passes)
        def step():
            x = real.detach().requires_grad_(True)
            out_r, out_f = amix(d, x if main_pass else real, gen), amix(d, fake(), gen)
            r1_logits = out_r["logits"] if main_pass else amix(d, x, gen)["logits"]
            return (loss_real(out_r["logits"]).mean() + out_r["loss"] + loss_fake(
                out_f["logits"]).mean() + out_f["loss"] + 0.5 * r1_penalty(r1_logits, x).mean())
        return step

    def mixing(kind: str):
        def step():
            x_fake = fake()
            mixed = mixers[kind](real, x_b=x_fake, generator=gen)
            return (baseline_terms(real, x_fake)
                    + mixed_gan_loss(d(mixed.x), mixed.lam, "ns").mean())
        return step

    def dat():
        xr, xf = dat_perturb(d, real, fake())
        return baseline_terms(xr, xf)

    def asgan():
        # The GAN program's default asgan_mode="replace": D sees the perturbed reals instead.
        return baseline_terms(asgan_perturb(d, real), fake())

    def asgan_free():
        # D trains on reals + the carried delta; the same backward updates delta (see driver).
        x_adv = free.attach(real)
        state["free_x"] = x_adv
        return loss_real(d(x_adv)).mean() + loss_fake(d(fake())).mean()

    return {"baseline": baseline, "adaptivemix (2 passes)": adaptivemix,
            "adaptivemix (reference, 3 passes)": adaptivemix_3pass,
            "adaptivemix + R1 (own pass)": adaptivemix_r1(False),
            "adaptivemix + R1 (from main pass)": adaptivemix_r1(True),
            "mixup": mixing("mixup"), "cutmix": mixing("cutmix"), "srmix": mixing("srmix"),
            "dat": dat, "asgan (one step)": asgan, "asgan (free)": asgan_free}, free, state


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_d_steps(args, device: torch.device) -> dict[str, float]:
    gen = torch.Generator(device).manual_seed(0)
    torch.manual_seed(0)
    d, g = dcgan_d().to(device).train(), dcgan_g(args.nz).to(device).train()
    opt = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(args.batch, 3, 32, 32, device=device, generator=gen) * 2 - 1
    steps, free, state = make_steps(d, g, real, args.nz, gen)
    times: dict[str, list[float]] = {name: [] for name in steps}

    def run(name: str, n: int) -> float:
        sync(device)
        start = time.perf_counter()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            steps[name]().backward()
            if name == "asgan (free)":
                free.update(state["free_x"])
            opt.step()
        sync(device)
        return (time.perf_counter() - start) / max(n, 1)

    for name in steps:
        run(name, args.warmup)
    for _ in range(args.rounds):
        for name in steps:
            times[name].append(run(name, args.steps))
    return {name: statistics.median(t) for name, t in times.items()}


def time_ensemble(args, device: torch.device, k: int, channels_last: bool) -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    ens = ProjectionEnsemble(k, 32, base_channels=args.rp_width, generator=gen).to(device)
    real = torch.rand(args.batch, 3, 32, 32, device=device) * 2 - 1
    fake = torch.rand(args.batch, 3, 32, 32, device=device) * 2 - 1
    if channels_last:  # model and inputs, as `--channels-last` does in the programs
        ens = ens.to(memory_format=torch.channels_last)
        real, fake = (t.contiguous(memory_format=torch.channels_last) for t in (real, fake))

    def step(forward):
        ens.zero_grad(set_to_none=True)
        ensemble_d_loss(forward(real), forward(fake)).backward()

    out = {}
    for name, forward in (("grouped", ens.forward), ("loop", ens.forward_loop)):
        for _ in range(args.warmup):
            step(forward)
        samples = []
        for _ in range(args.rounds):
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                step(forward)
            sync(device)
            samples.append((time.perf_counter() - start) / args.steps)
        out[name] = statistics.median(samples)
    return out


def time_fid(samples: int, dim: int) -> dict[str, float]:
    """``frechet_distance`` against pytorch-fid's formula (``scipy.linalg.sqrtm``) on the same
    statistics of ``samples`` x ``dim`` features; both values are returned to show they agree."""
    import numpy as np
    import scipy.linalg

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(samples, dim, generator=gen, dtype=torch.float64)
    mix = torch.eye(dim, dtype=torch.float64) + 0.01 * torch.randn(dim, dim, generator=gen,
                                                                  dtype=torch.float64)
    b = torch.randn(samples, dim, generator=gen, dtype=torch.float64) @ mix
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), torch.cov(a.T), torch.cov(b.T)
    start = time.perf_counter()
    ours = frechet_distance(mu1, s1, mu2, s2)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    c1, c2 = s1.numpy(), s2.numpy()
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    diff = (mu1 - mu2).numpy()
    ref = float(diff @ diff + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean))
    t_ref = time.perf_counter() - start
    return {"robustrep_s": t_ours, "scipy_sqrtm_s": t_ref, "robustrep_fid": ours, "scipy_fid": ref}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=device_arg,
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int_at_least(2), default=64)  # BatchNorm, mixing: 2+
    parser.add_argument("--nz", type=int_at_least(1), default=128)
    parser.add_argument("--rounds", type=int_at_least(1), default=5,
                        help="interleaved timing rounds")
    parser.add_argument("--steps", type=int_at_least(1), default=3,
                        help="steps per method per round")
    parser.add_argument("--warmup", type=int_at_least(0), default=2)
    parser.add_argument("--views", type=int_at_least(1), nargs="+", default=[1, 8, 48])
    parser.add_argument("--rp-width", type=int_at_least(1), default=64,
                        help="ensemble member base channels")
    parser.add_argument("--fid-samples", type=int_at_least(0), default=10_000,
                        help="features per set for the FID timing (0: skip it)")
    parser.add_argument("--fid-dim", type=int_at_least(1), default=2048)
    parser.add_argument("--out", default="bench_regularizers.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    d_times = time_d_steps(args, device)
    base = d_times["baseline"]
    machine = machine_name(device)
    print(f"D step, DCGAN D at 32x32, batch {args.batch}, {machine}, torch {torch.__version__}")
    print(f"{'method':38s} {'ms/step':>9s} {'x baseline':>11s}")
    for name, t in d_times.items():
        print(f"{name:38s} {1e3 * t:9.2f} {t / base:11.2f}")
    r1_own, r1_main = d_times["adaptivemix + R1 (own pass)"], d_times[
        "adaptivemix + R1 (from main pass)"]
    print(f"AdaptiveMix with R1: taking it from the main pass is {r1_own / r1_main:.2f}x as fast "
          "as its own pass")

    ens_rows = {f"{k}/{fmt}": time_ensemble(args, device, k, fmt == "channels_last")
                for k in args.views for fmt in ("contiguous", "channels_last")}
    print(f"\nRandom-projection ensemble D step (forward real+fake, backward), batch {args.batch}")
    print(f"{'K':>4s} {'memory format':>14s} {'grouped ms':>11s} {'loop ms':>9s} "
          f"{'loop/grouped':>13s}")
    for key, row in ens_rows.items():
        k, fmt = key.split("/")
        print(f"{k:>4s} {fmt:>14s} {1e3 * row['grouped']:11.2f} {1e3 * row['loop']:9.2f} "
              f"{row['loop'] / row['grouped']:13.2f}")

    fid = time_fid(args.fid_samples, args.fid_dim) if args.fid_samples else None
    if fid is not None:
        print(f"\nFID from {args.fid_samples} x {args.fid_dim} float64 features: robustrep "
              f"{fid['robustrep_s']:.2f} s, scipy.linalg.sqrtm {fid['scipy_sqrtm_s']:.2f} s "
              f"({fid['scipy_sqrtm_s'] / fid['robustrep_s']:.1f}x faster); values "
              f"{fid['robustrep_fid']:.10g} vs {fid['scipy_fid']:.10g}")

    result = {"machine": machine, "torch": torch.__version__, "batch": args.batch,
              "d_step_seconds": d_times, "d_step_ratio": {k: v / base for k, v in d_times.items()},
              "ensemble_seconds": ens_rows, "fid": fid}
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
