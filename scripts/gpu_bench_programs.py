"""Wall-clock of the programs against their floors, for ``scripts/gpu_check.sh``.

``classify``: ``robustrep classify train`` (digits at 32x32, in memory) against a bare loop of the
same timm model, SGD and loss on one batch already on the device: ms per step each, and the
ratio. ``gan``: ``robustrep gan train`` on a folder of PNGs (written here) with the paper256
recipe at ``--res``/``--batch``: sec/kimg from the run's ``metrics.jsonl`` (wall-clock between
the first and the last loss record, so start-up and the final evaluation are excluded).

    python scripts/gpu_bench_programs.py classify --device cuda [--amp bf16 --channels-last]
    python scripts/gpu_bench_programs.py gan --device cuda --data DIR [--amp bf16] [gan flags]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from robustrep.tasks.cli import main as cli


def per_step(run: Path, batch: int) -> tuple[float, int]:
    """(seconds per step, steps) between the first and last loss records of a run."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    recs = [r for r in recs if any(k.startswith("loss/") for k in r)]
    if len(recs) < 2:
        raise SystemExit(f"{run}: fewer than two loss records; raise --steps")
    first, last = recs[0], recs[-1]
    return (last["time"] - first["time"]) / (last["step"] - first["step"]), last["step"]


def bare_loop(model_name: str, batch: int, steps: int, device, amp: str, channels_last: bool):
    import timm
    import robustrep.nets.wrn  # noqa: F401  (registers the wrn models with timm)
    model = timm.create_model(model_name, num_classes=10).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for _ in range(5):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def classify(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        flags = ["classify", "train", "--dataset", "digits", "--model", args.model,
                 "--batch-size", str(args.batch), "--steps", str(args.steps), "--log-every", "10",
                 "--eval-every", "0", "--device", args.device, "--amp", args.amp,
                 "--channels-last", str(args.channels_last).lower(), "--out", str(run), "--quiet"]
        if cli(flags) != 0:
            raise SystemExit("classify train failed")
        program, _ = per_step(run, args.batch)
    floor = bare_loop(args.model, args.batch, args.steps, torch.device(args.device), args.amp,
                      args.channels_last)
    return {"classify_ms": program * 1000, "bare_loop_ms": floor * 1000,
            "ratio": program / floor}


def gan(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        flags = ["gan", "train", "--preset", args.preset, "--data-root", args.data,
                 "--image-size", str(args.res), "--batch-size", str(args.batch), "--steps",
                 str(args.steps), "--log-every", "5", "--eval-every", "0", "--final-eval",
                 "false", "--device", args.device, "--amp", args.amp, "--out", str(run),
                 "--mirror", "false",  # the reference's train.py runs without --mirror here
                 "--quiet", *args.extra]
        if cli(flags) != 0:
            raise SystemExit("gan train failed")
        sec, steps = per_step(run, args.batch)
    return {"gan_s_per_step": sec, "sec_per_kimg": sec * 1000 / args.batch, "steps": steps}


def main(argv=None) -> int:
    # no abbreviations: the words left over go to the program (--channels was --channels-last)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("what", choices=("classify", "gan"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--amp", default="off")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--model", default="wrn28_10")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--preset", default="ffhq256-stylegan2")
    p.add_argument("--data", default=None)
    p.add_argument("--res", type=int, default=256)
    args, args.extra = p.parse_known_args(argv)  # the rest goes to gan train
    out = classify(args) if args.what == "classify" else gan(args)
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(json.dumps({"what": args.what, "device": dev, "torch": torch.__version__,
                      "cuda": torch.version.cuda, "amp": args.amp, **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
