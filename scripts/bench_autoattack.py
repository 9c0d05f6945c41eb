"""Benchmark: robustrep's AutoAttack robust accuracy against pyautoattack called directly.

robustrep's ``robust_accuracy(..., "autoattack")`` runs the official AutoAttack (fra31/
auto-attack, Croce & Hein 2020, through pyautoattack) with its standard settings and adds a
progress hook per batch; this times both on the same model, images and thread count in one
process (ours first, then the reference), and checks they agree on the robust accuracy. The
model is a tiny classifier trained here for a few steps (timm's ``test_resnet`` on sklearn's
digits at 32x32), so the figure is the overhead of the wrapping, not a robustness claim.

    python scripts/bench_autoattack.py [--n 20] [--eps 2/255] [--steps 40] [--threads 2]

Prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _cli.py beside us, however loaded
from _cli import int_at_least, machine  # noqa: E402


def tiny_model(steps: int, folder: Path) -> torch.nn.Module:
    """A digits classifier trained for ``steps`` steps (the classify program's own training)."""
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.classify.train import train
    from robustrep.tasks.common.classifier_run import load_run
    train(ClassifyConfig(model="test_resnet", steps=steps, eval_every=0), folder / "run",
          quiet=True)
    return load_run(folder / "run", "cpu", use_ema=False)[0].eval()


def timed(call) -> tuple[float, float]:
    start = time.perf_counter()
    accuracy = call()
    return time.perf_counter() - start, accuracy


def _radius(text: str) -> float:
    """``2/255`` or ``0.0078``: a Linf radius in (0, 1]."""
    try:
        eps = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        eps = -1.0
    if not 0 < eps <= 1:
        raise argparse.ArgumentTypeError(f"expected a radius in (0, 1] such as 2/255, got "
                                         f"{text!r}")
    return eps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int_at_least(1), default=20, help="test images attacked")
    parser.add_argument("--eps", type=_radius, default="2/255",
                        help="Linf radius in [0, 1] pixel units")
    parser.add_argument("--steps", type=int_at_least(1), default=40,
                        help="training steps of the model")
    parser.add_argument("--threads", type=int_at_least(1), default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from pyautoattack import AutoAttack

    from robustrep.data import digits
    from robustrep.metrics.robust import robust_accuracy
    eps = args.eps
    data = digits(32, 1, train=False)
    x, y = data.images[:args.n], data.targets[:args.n]
    with tempfile.TemporaryDirectory() as folder:
        model = tiny_model(args.steps, Path(folder))
    ours_s, ours = timed(lambda: robust_accuracy(model, (x, y), "autoattack", eps=eps,
                                                 batch_size=250).robust_acc)
    reference = AutoAttack(model, norm="Linf", eps=eps, version="standard", seed=0,
                           device="cpu")
    reference.verbose = False
    ref_s, ref = timed(lambda: float(
        (reference.run_standard_evaluation(x, y, batch_size=250)[1] == y).float().mean()))
    print(f"AutoAttack standard, Linf eps {eps:.5g}, {args.n} digits, on {machine()}")
    print(f"robustrep robust_accuracy: {ours_s:7.1f} s  robust accuracy {ours:.4f}")
    print(f"pyautoattack directly:     {ref_s:7.1f} s  robust accuracy {ref:.4f}")
    print(f"ratio robustrep / pyautoattack: {ours_s / ref_s:.2f}")


if __name__ == "__main__":
    main()
