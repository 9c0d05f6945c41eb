"""The ``robustrep`` console script: one door to the three programs.

    robustrep gan train|eval|sample ...
    robustrep classify train|eval ...
    robustrep ood score|bench ...

Each program lives in ``robustrep.tasks.<name>.cli`` and exposes ``add_parser(subparsers)``; the
parser it adds sets ``func`` to the callable that runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

import robustrep

PROGRAMS = {
    "gan": "train GANs with the regularizers, evaluate FID/KID/precision-recall, draw samples",
    "classify": "fine-tune timm classifiers with the regularizers, measure clean and robust accuracy",
    "ood": "score OOD detection with pytorch-ood detectors on trained classifiers",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustrep",
        description="Regularizers for robust learned representations: AdaptiveMix, Mixup/CutMix/"
                    "SRMix, symmetric adversarial training (DAT, AS-GAN) and random-projection "
                    "discriminators, for GANs, timm classifiers and OOD detection.")
    parser.add_argument("--version", action="version", version=f"robustrep {robustrep.__version__}")
    sub = parser.add_subparsers(dest="program", metavar="PROGRAM")
    for name, summary in PROGRAMS.items():
        module_name = f"robustrep.tasks.{name}.cli"
        if importlib.util.find_spec(module_name) is None:
            continue  # program not installed in this build
        importlib.import_module(module_name).add_parser(sub, name, summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.program is None else 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
