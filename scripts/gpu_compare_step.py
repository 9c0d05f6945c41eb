"""robustrep's StyleGAN2 training step against stylegan2-ada-pytorch's own networks and loss.

Same weights (the reference's, mapped into robustrep's networks), same batch and resolution, the
same phases and schedule: Gmain, Greg (path length every 4), Dmain, Dreg (R1 every 16), each
followed by its Adam step. The reference side runs ``training/loss.py``'s
``StyleGAN2Loss.accumulate_gradients`` per phase as ``training_loop.py`` does (including
``nan_to_num`` of the gradients); robustrep's side runs the GAN program's phases
(``scripts/bench_stylegan2_step.py``). Printed per precision: each phase's median seconds and
the amortised iteration, ``Dmain + Gmain + Dreg/16 + Greg/4``, as sec/kimg.

Precisions: ``fp32`` (both sides fp32); ``mixed``: the reference's fp16 in the 4 highest
resolutions with ``conv_clamp`` 256 against robustrep's ``--fp16-res 4 --conv-clamp 256`` and
against robustrep's ``--amp bf16``.

Needs a copy of ``NVlabs/stylegan2-ada-pytorch`` at ``--ref`` (``scripts/gpu_check.sh`` patches
one for torch 2.11). ``--device cpu --res 32`` runs it at toy size (the reference's ops then use
their reference implementations).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_stylegan2_step as bench  # noqa: E402
from _cli import reference_checkout  # noqa: E402

from robustrep.stylegan2_pickle import generator_name, discriminator_name, load_mapped  # noqa: E402

R1_EVERY, PL_EVERY = 16, 4


def reference_modules(path: str):
    sys.path.insert(0, str(Path(path).resolve()))
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib imports it
    from training import loss, networks
    return networks, loss


def reference_side(nets_mod, loss_mod, args, fp16: bool, device):
    mix = dict(num_fp16_res=4, conv_clamp=256) if fp16 else dict(num_fp16_res=0, conv_clamp=None)
    G = nets_mod.Generator(z_dim=args.z_dim, c_dim=0, w_dim=args.w_dim,
                           img_resolution=args.res, img_channels=3,
                           mapping_kwargs=dict(num_layers=args.mapping_layers),
                           synthesis_kwargs=dict(channel_base=args.channel_base,
                                                 channel_max=args.channel_max, **mix))
    D = nets_mod.Discriminator(c_dim=0, img_resolution=args.res, img_channels=3,
                               architecture="resnet", channel_base=args.channel_base,
                               channel_max=args.channel_max, **mix,
                               epilogue_kwargs=dict(mbstd_group_size=args.mbstd))
    G, D = G.to(device).train(), D.to(device).train()
    loss = loss_mod.StyleGAN2Loss(device, G.mapping, G.synthesis, D, r1_gamma=args.r1_gamma,
                                  style_mixing_prob=0.9, pl_weight=2.0)
    opts = {}
    for name, module, every in (("G", G, PL_EVERY), ("D", D, R1_EVERY)):
        c = every / (every + 1)
        opts[name] = torch.optim.Adam(module.parameters(), lr=0.0025 * c, betas=(0.0, 0.99 ** c))
    real = torch.randn(args.batch, 3, args.res, args.res, device=device)
    c0 = torch.zeros(args.batch, 0, device=device)

    def phase(name):
        module, opt = (G, opts["G"]) if name.startswith("G") else (D, opts["D"])
        gain = {"Gmain": 1, "Greg": PL_EVERY, "Dmain": 1, "Dreg": R1_EVERY}[name]
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        z = torch.randn(args.batch, args.z_dim, device=device)
        loss.accumulate_gradients(name, real, c0, z, c0, sync=True, gain=gain)
        module.requires_grad_(False)
        for p in module.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

    runs = {"d_main": lambda: phase("Dmain"), "d_r1": lambda: (phase("Dmain"), phase("Dreg")),
            "g_main": lambda: phase("Gmain"), "g_pl": lambda: (phase("Gmain"), phase("Greg"))}
    return G, D, runs


def robustrep_side(G_ref, D_ref, args, device, **overrides):
    ctx, real = bench.make_context(
        args.res, args.batch, args.channel_base, args.channel_max, str(device), z_dim=args.z_dim,
        w_dim=args.w_dim, mapping_layers=args.mapping_layers, mbstd_group=args.mbstd,
        r1_gamma=args.r1_gamma, **overrides)
    load_mapped(ctx.G, copy.deepcopy(G_ref.state_dict()), generator_name)
    load_mapped(ctx.D, copy.deepcopy(D_ref.state_dict()),
                lambda n: discriminator_name(n, args.res))
    return {p: (lambda p=p: bench.run_phase(ctx, real, p)) for p in bench.PHASES}


def time_runs(runs, device, iters, warmup):
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    out = {}
    for name, fn in runs.items():
        times = []
        for _ in range(iters):
            bench._sync(device)
            start = time.perf_counter()
            fn()
            bench._sync(device)
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, type=reference_checkout)
    p.add_argument("--device", default="cuda")
    p.add_argument("--res", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--z-dim", type=int, default=512)
    p.add_argument("--w-dim", type=int, default=512)
    p.add_argument("--mapping-layers", type=int, default=8)
    p.add_argument("--mbstd", type=int, default=8)
    p.add_argument("--r1-gamma", type=float, default=1.0)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precisions", default="fp32,mixed")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the reference's training_loop
    nets_mod, loss_mod = reference_modules(args.ref)
    from torch_utils.ops import bias_act, upfirdn2d  # the reference's, after reference_modules
    fused = device.type == "cuda" and bias_act._init() and upfirdn2d._init()
    print("stylegan2-ada ops: " + ("fused CUDA kernels (bias_act, upfirdn2d)" if fused else
                                   "its pure-PyTorch reference implementations"))
    print(f"{bench.machine()}; {args.res}x{args.res}, batch {args.batch}; paper256 networks "
          f"(channel_base {args.channel_base}); R1 every {R1_EVERY}, PL every {PL_EVERY}")
    results = {}
    for precision in args.precisions.split(","):
        torch.manual_seed(0)
        G_ref, D_ref, ref_runs = reference_side(nets_mod, loss_mod, args, precision == "mixed",
                                                device)
        sides = {"stylegan2-ada": ref_runs}
        if precision == "mixed":
            sides["robustrep fp16-res 4"] = robustrep_side(G_ref, D_ref, args, device,
                                                           fp16_res=4, conv_clamp=256.0)
            if device.type == "cuda":
                sides["robustrep amp bf16"] = robustrep_side(G_ref, D_ref, args, device,
                                                             amp="bf16")
        else:
            sides["robustrep"] = robustrep_side(G_ref, D_ref, args, device)
        for side, runs in sides.items():
            t = time_runs(runs, device, args.iters, args.warmup)
            it = bench.amortised(t, R1_EVERY, PL_EVERY)
            results[f"{precision} / {side}"] = {**t, "amortised_s": it,
                                               "sec_per_kimg": it * 1000 / args.batch}
            print(f"  {precision:5s} {side:22s} " + "  ".join(
                f"{k} {v * 1000:8.1f} ms" for k, v in t.items())
                + f"  | {it * 1000:8.1f} ms/iter = {it * 1000 / args.batch:6.2f} s/kimg")
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": bench.machine(), **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
