"""Compare ``robustrep.ada.ada_augment`` with stylegan2-ada-pytorch's ``AugmentPipe`` on CPU.

Both draw from torch's global generator in the same order when ``generator=None``, so with the
same seed they must produce the same images. Needs a checkout of NVlabs/stylegan2-ada-pytorch
(its ``training/augment.py`` imports ``torch_utils`` and ``dnnlib``; ``dnnlib`` imports
``requests``, which this script stubs if it is missing). Nothing of the reference is copied here:
it is imported from ``--ref``.

    python scripts/ada_reference_check.py --ref path/to/stylegan2-ada-pytorch

Prints the largest absolute difference per pipeline and channel count (measured against
stylegan2-ada-pytorch d72cc7d: at most 6.2e-6 on 16x16 standard-normal images, p = 0.7; exit 1
above 1e-4).
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch

from robustrep import ada
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import reference_checkout  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", required=True, type=reference_checkout,
                   help="stylegan2-ada-pytorch checkout")
    p.add_argument("--p", type=float, default=0.7, help="augmentation probability (0.7)")
    args = p.parse_args(argv)
    sys.path.insert(0, args.ref)
    sys.modules.setdefault("requests", types.ModuleType("requests"))
    from training.augment import AugmentPipe  # the reference, from --ref

    worst = 0.0
    for name in ("blit", "geom", "color", "bgc"):
        spec = ada.PIPELINES[name]
        for channels in (1, 3):
            pipe = AugmentPipe(**{k: int(v) for k, v in spec.items()})
            pipe.p.copy_(torch.tensor(args.p))
            x = torch.randn(8, channels, 16, 16, generator=torch.Generator().manual_seed(0))
            torch.manual_seed(1)
            ref = pipe(x)
            torch.manual_seed(1)
            ours = ada.ada_augment(x, args.p, spec)
            diff = (ref - ours).abs().max().item()
            worst = max(worst, diff)
            print(f"{name:6s} C={channels}: max |ours - reference| = {diff:.2e} "
                  f"(max |augmented - input| = {(ref - x).abs().max().item():.2f})")
    print(f"worst: {worst:.2e}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
