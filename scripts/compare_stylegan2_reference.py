"""Check robustrep's StyleGAN2 against stylegan2-ada-pytorch's own code on shared weights.

Needs a copy of ``NVlabs/stylegan2-ada-pytorch`` (not part of robustrep; its license forbids
redistribution) at ``--ref``; on a CPU its custom ops fall back to its reference
implementations. For each case the reference networks are built at small sizes, their weights
mapped into robustrep's (``robustrep.stylegan2_pickle``'s name mapping), and compared:

- G images (``noise_mode='const'``), with and without ``conv_clamp``;
- D logits for the ``resnet``, ``skip`` and ``orig`` D;
- a network pickle written by the reference's own ``pickle.dump`` (persistence records with
  embedded source) read back by :func:`load_stylegan2_pickle`: the images of ``G_ema``;
- the path-length penalty's gradient (reference ``loss.py`` arithmetic, including the gradient
  through ``pl_mean.lerp``) against ``tasks.gan.lazy_reg.path_length_penalty``.

    python scripts/compare_stylegan2_reference.py --ref .gpu_carry/stylegan2-ada-pytorch

Prints one line per check with the largest absolute difference; exits 1 if any exceeds --tol.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import types
from pathlib import Path

import torch

from robustrep.stylegan2_pickle import (build_discriminator, build_generator, discriminator_name,
                                        generator_name, load_mapped, load_stylegan2_pickle)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import reference_checkout  # noqa: E402


def _import_reference(path: str):
    sys.path.insert(0, str(Path(path).resolve()))
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib imports it
    from training import networks
    return networks


def _g_kwargs(res, clamp, fp16=0):
    return dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=res, img_channels=3,
                mapping_kwargs=dict(num_layers=2),
                synthesis_kwargs=dict(channel_base=res * 16, channel_max=32, conv_clamp=clamp,
                                      num_fp16_res=fp16))


def _d_kwargs(res, arch, clamp):
    return dict(c_dim=0, img_resolution=res, img_channels=3, architecture=arch,
                channel_base=res * 16, channel_max=32, conv_clamp=clamp,
                epilogue_kwargs=dict(mbstd_group_size=4))


def _randomise(net):
    """Non-trivial values everywhere (biases and noise strengths start at 0)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return net


def compare_g(nets, res, clamp, fp16=0):
    ref = _randomise(nets.Generator(**_g_kwargs(res, clamp, fp16))).eval()
    ours = load_mapped(build_generator(_g_kwargs(res, clamp, fp16)), ref.state_dict(),
                       generator_name).eval()
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = ref(z, None, noise_mode="const")
        b = ours(z, noise_mode="const")
    return (a - b).abs().max().item(), a.std().item()


def compare_d(nets, res, arch, clamp):
    ref = _randomise(nets.Discriminator(**_d_kwargs(res, arch, clamp))).eval()
    ours = load_mapped(build_discriminator(_d_kwargs(res, arch, clamp)), ref.state_dict(),
                       lambda n: discriminator_name(n, res)).eval()
    x = torch.randn(8, 3, res, res, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = ref(x, None).squeeze(1)
        b = ours(x)
    return (a - b).abs().max().item(), a.std().item()


def compare_pickle(nets, res):
    G = _randomise(nets.Generator(**_g_kwargs(res, 256)))
    D = _randomise(nets.Discriminator(**_d_kwargs(res, "resnet", 256)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "network-snapshot.pkl"
        with open(path, "wb") as fh:
            pickle.dump(dict(G=G, D=D, G_ema=G, training_set_kwargs=dict(resolution=res)), fh)
        loaded = load_stylegan2_pickle(path)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a = G.eval()(z, None, noise_mode="const")
        b = loaded["G_ema"](z, noise_mode="const")
    return (a - b).abs().max().item(), a.std().item()


def compare_pl(nets, res):
    """stylegan2-ada loss.py's Gpl arithmetic on the reference G vs robustrep's penalty."""
    from robustrep.tasks.gan.lazy_reg import pl_loss
    ref = _randomise(nets.Generator(**_g_kwargs(res, None)))
    ours = load_mapped(build_generator(_g_kwargs(res, None)), ref.state_dict(), generator_name)
    g = torch.Generator().manual_seed(5)
    z = torch.randn(4, 16, generator=g)
    noise = torch.randn(4, 3, res, res, generator=g) / res
    pl_mean0 = torch.tensor(0.7)
    grads = []
    for net, run in ((ref, lambda ws: ref.synthesis(ws, noise_mode="const")),
                     (ours, lambda ws: ours.synthesis(ws, noise_mode="const"))):
        net.zero_grad()
        ws = net.mapping(z, None) if net is ref else net.mapping(z)
        img = run(ws)
        if net is ref:  # the reference's lines, verbatim in arithmetic
            (pl_grads,) = torch.autograd.grad([(img * noise).sum()], [ws], create_graph=True)
            lengths = pl_grads.square().sum(2).mean(1).sqrt()
            pl_mean = pl_mean0.lerp(lengths.mean(), 0.01)
            loss = (lengths - pl_mean).square().mean()
        else:
            loss, _ = pl_loss(img, ws, noise, pl_mean0, 0.01)
        loss.backward()
        named = {(generator_name(k) if net is ref else k):
                 p.grad if p.grad is not None else torch.zeros_like(p)
                 for k, p in net.named_parameters()}
        grads.append(torch.cat([named[k].flatten() for k in sorted(named)]))
    return (grads[0] - grads[1]).abs().max().item(), grads[0].abs().max().item()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", required=True, type=reference_checkout,
                        help="folder of stylegan2-ada-pytorch")
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    nets = _import_reference(args.ref)
    checks = {
        "G images, conv_clamp None": compare_g(nets, args.res, None),
        "G images, conv_clamp 0.5": compare_g(nets, args.res, 0.5),
        "G images, 2 fp16 blocks, clamp 256 (fp16 tol)": compare_g(nets, args.res, 256, 2),
        "D logits, resnet": compare_d(nets, args.res, "resnet", None),
        "D logits, skip": compare_d(nets, args.res, "skip", None),
        "D logits, orig, conv_clamp 0.5": compare_d(nets, args.res, "orig", 0.5),
        "G_ema images from a reference pickle": compare_pickle(nets, args.res),
        "path-length gradient on G's parameters": compare_pl(nets, args.res),
    }
    worst = 0.0
    for name, (diff, scale) in checks.items():
        print(f"{name:46s} max |diff| {diff:.2e} (scale {scale:.2e})")
        # fp16 blocks round differently on each side: compared relative to fp16's precision
        worst = max(worst, diff * args.tol / (1e-2 * scale) if "fp16" in name else diff)
    verdict = "ok" if worst <= args.tol else "FAIL"
    print(f"torch {torch.__version__}; tolerance {args.tol:g}: {verdict}")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
