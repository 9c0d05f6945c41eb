"""Hints for a flag a command does not have: ours for a peer project's flag of the same meaning
(timm ``train.py``'s ``--mixup 0.8``: ``--reg mixup --mix-alpha 0.8``), a note where none of
ours means it (stylegan2-ada's ``--kimg``), else the closest of the command's own
(``--weight_decay``: ``--weight-decay``). The parser's error
(:class:`robustrep.tasks.common.cli.ArgumentParser`) adds them to its one line.
"""

from __future__ import annotations

import re
from typing import Any

# timm train.py's flags (its argparse, huggingface/pytorch-image-models) that mean what one of
# ours means, by timm's name: {} is the value given. Only those whose flags this parser has are
# offered (classify train's; gan train and classify eval share a few). Not here, as ours differ
# (TIMM_NOTES has some): --decay-milestones (timm: epochs; --milestones: fractions of --steps),
# --mixup-mode pair/elem (--mixup-per-sample is elem only).
TIMM_FLAGS = {
    "-b": "--batch-size {}", "-j": "--workers {}", "-c": "--config {}",
    "--img-size": "--image-size {}", "--in-chans": "--channels {}",
    "--data-dir": "--data-root {}", "--pretrained-path": "--pretrained-file {}",
    "--drop": "--drop-rate {}",  # timm's drop_rate, ours too; argparse: "ambiguous"
    "--mixup": "--reg mixup --mix-alpha {}", "--cutmix": "--reg cutmix --mix-alpha {}",
    "--mixup-prob": "--mix-prob {}", "--mixup-switch-prob": "--mix-switch-prob {}",
    "--model-ema": "--ema-decay 0.9998",  # timm's default decay; ours is off at 0
    "--model-ema-decay": "--ema-decay {}",
    "--decay-rate": "--lr-decay {}", "--dr": "--lr-decay {}",  # timm's multistep factor too
    "--log-interval": "--log-every {}",  # both count optimizer steps
    "--amp-dtype": "--amp {}", "--torchcompile": "--compile", "--log-wandb": "--log wandb",
}
_TIMM_VALUES = {"--amp-dtype": {"float16": "fp16", "bfloat16": "bf16"}}

# Flags of peer projects that no flag of ours means (or ours only in part), by the peer's name:
# (the flags a command must have for the note to be about it, how many values the peer's flag
# takes, what to give instead: {} is the value given, N without one) for each command it is said
# in, the first whose flags the command has. Notes, as no flag of ours does what theirs does;
# difflib's guess misled (timm's --hflip: --help, --crop-pct: --drop-path, --output: --out).
Notes = dict[str, tuple[tuple[tuple[str, ...], int, str], ...]]
TIMM_NOTES: Notes = {  # timm train.py's
    "--checkpoint-hist": ((("--keep-ckpts",), 1, "--keep-ckpts {} keeps the newest {} step "
                           "checkpoints (timm's keeps the best {} by eval metric)"),),
    "--output": ((("--out",), 1, "--out names the output folder itself (timm's --output is the "
                  "parent of its run folders)"),),
    "--initial-checkpoint": ((("--pretrained-file",), 1, "--pretrained-file FILE loads a "
                              "weights file with the head re-initialised; none loads a whole "
                              "model (head included) to train on"),),
    "--val-split": ((("--val-fraction",), 1, "the evaluation split is --data-root's val/ (or "
                     "valid/, validation/, eval/, evaluation/, test/) beside its train/, a "
                     "built-in dataset's test split, or --val-fraction F of the training split "
                     "(0.2 of a folder without one)"),),
    "--input-size": ((("--image-size", "--channels"), 3, "--image-size SIZE (square; the "
                      "channels are the data's, or --channels 1|3)"),),
    "--lr-base": ((("--lr",), 1, "--lr LR, used as given: no batch scaling (timm without --lr "
                   "takes --lr-base x global batch / 256, the square root of the ratio for ada*/"
                   "lamb)"),),
    "--hflip": ((("--augment", "--model"), 1, "--augment flips horizontally with probability "
                 "0.5 (fixed) after a random crop of the image padded by 4 pixels"),),
    "--scale": ((("--augment", "--model"), 2, "no random-resized crop: --augment crops at full "
                 "size from the image padded by 4 pixels, and flips with probability 0.5"),),
    "--crop-pct": ((("--image-size", "--model"), 1, "no crop margin: evaluation resizes the "
                    "shorter side to --image-size and keeps the centre square, as timm with "
                    "--crop-pct 1.0 (its validate.py default 0.875 scores otherwise)"),),
    "--fast-norm": ((("--model",), 0, "no equivalent (--model's normalisation layers are "
                     "timm's defaults)"),),
}
# timm: one alpha each, 0 = off; ours: --mix-alpha for all, or --mixup-alpha, --cutmix-alpha
_MIXES = ("--mixup", "--cutmix")

# stylegan2-ada-pytorch's (train.py, generate.py, calc_metrics.py); difflib guessed --kimg:
# --ema-kimg (the EMA half-life), --p: --pl-*. Names that are ours too (--seeds, --trunc,
# --outdir, --resume) are not here.
_GAN_TRAIN = ("--ema-kimg", "--steps", "--batch-size")  # gan train's, which no other command has
SG2_NOTES: Notes = {
    "--kimg": ((_GAN_TRAIN, 1, "--steps N, N = kimg x 1000 / --batch-size (--ema-kimg is the "
                               "G-EMA half-life, not the length)"),),
    "--p": ((_GAN_TRAIN + ("--augment", "--augment-p"), 1, "--augment fixed --augment-p P (a "
             "fixed ADA probability; with --augment ada, the initial p)"),),
    "--snap": ((_GAN_TRAIN + ("--ckpt-every", "--eval-every"), 1, "--ckpt-every N, in steps (a "
                "stylegan2-ada tick is 4 kimg: N = snap x 4000 / --batch-size); --eval-every N "
                "evaluates"),),
    "--metrics": (
        (_GAN_TRAIN + ("--eval-every",), 1, "the run evaluates every --eval-every N steps; "
         "fid50k_full of a run: robustrep gan eval RUN --num 50000 --real all"),
        (("--real", "--num"), 1, "FID, KID and precision/recall are always scored; fid50k_full: "
         "--num 50000 --real all"),
        (("--save-stats", "--num"), 1, "gan fid scores FID, KID and precision/recall of A "
         "against B; fid50k_full of a run: robustrep gan eval RUN --num 50000 --real all; of a "
         "network pickle: robustrep gan fid NET.pkl DATA --num 50000 (DATA: the dataset's zip "
         "or folder, read whole)")),
    "--cond": ((_GAN_TRAIN, 1, "robustrep trains unconditional GANs only (a conditional "
                               "stylegan2-ada pickle samples with robustrep gan sample NET.pkl "
                               "--class N)"),),
    "--gpus": ((_GAN_TRAIN, 1, "torchrun --nproc_per_node N -m robustrep.tasks.cli gan train "
                               "... (--batch-size is the global batch, split across the "
                               "processes)"),),
    "--network": (
        (("--noise-mode", "--class"), 1, "the pickle is the positional RUN: robustrep gan sample "
         "NET.pkl"),
        (("--save-stats",), 1, "the pickle is A or B itself: robustrep gan fid NET.pkl DATA"),
        (("--real",), 1, "gan eval scores a run folder; a network pickle: robustrep gan fid "
         "NET.pkl DATA --num 50000")),
}
# every peer's flags in that shape, by the peer's name as said: TIMM_FLAGS' templates need the
# flags they name and take a value where they say one
_PEERS = {"timm train.py": TIMM_NOTES | {
    flag: ((tuple(re.findall(r"--[a-z][\w-]*", t)), int("{}" in t), t),)
    for flag, t in TIMM_FLAGS.items()}, "stylegan2-ada": SG2_NOTES}
Hit = tuple[str, str, str | None, str]  # (peer, flag, value or None, ours for it)


def peer_hits(words: list[str], ours: dict[str, Any]) -> list[Hit]:
    """A :data:`Hit` for each peer's flag in ``words`` (:data:`_PEERS`) that ``ours`` (a
    parser's option strings) lacks while having every flag an entry needs (the first such); the
    value is the words the peer's flag takes (``--input-size 3 224 224``), up to a flag. Looked
    for before argparse parses, whose prefix matching and positionals took them apart
    (``--mixup 0.8``: "ambiguous"; ``gan fid --metrics fid50k_full A``: fid50k_full as A)."""
    hits = []
    for i, word in enumerate(words):
        if word == "--":  # positionals only after it
            break
        flag, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if not flag.startswith("--") and flag[:2] in TIMM_FLAGS and len(flag) > 2:  # -b32
            flag, eq, value = flag[:2], "=", flag[2:]
        found = None if flag in ours else next((
            (peer, arity, text) for peer, entries in _PEERS.items()
            for needs, arity, text in entries.get(flag, ()) if all(f in ours for f in needs)), None)
        if found is None:
            continue
        peer, arity, text = found
        if not eq and arity:
            after = words[i + 1:i + 1 + arity]
            taken = next((n for n, w in enumerate(after) if _is_flag(w)), len(after))
            value = " ".join(after[:taken])
        hits.append((peer, flag, value if (eq or value) else None, text))
    return hits


def _is_flag(word: str) -> bool:
    """A flag, not a value: ``-5`` and ``-0.5`` are values (argparse reads them so too)."""
    return word.startswith("-") and not re.fullmatch(r"-\d[\d.e+-]*", word)


def peer_hint(hits: list[Hit]) -> str:
    """``-b 32 (timm train.py's flag); here: --batch-size 32`` for ``hits`` (:func:`peer_hits`),
    each peer's together: ours as one command-line fragment, then the notes."""
    parts = []
    for peer in dict.fromkeys(hit[0] for hit in hits):
        own = [hit[1:] for hit in hits if hit[0] == peer]
        given = " ".join(flag if value is None else f"{flag} {value}" for flag, value, _ in own)
        parts.append(f"{given} ({peer}'s flag{'s' * (len(own) > 1)}); here: {_here(own)}")
    return "; ".join(parts)


def _here(hits: list[tuple[str, str | None, str]]) -> str:
    """Ours for one peer's ``(flag, value, text)``: timm's --mixup and --cutmix together are
    ``--reg mixup,cutmix`` with one ``--mix-alpha`` where their alphas are equal, else each its
    own (``--mixup-alpha 0.8 --cutmix-alpha 1.0``); 0 turns one off."""
    given = {flag: value for flag, value, _ in hits}
    ours, notes = [], []
    mixes = [f for f in _MIXES if f in given]
    on = [f for f in mixes if not _zero(given[f])]
    notes += [f"leave out --reg {f[2:]} (timm's 0 is off)" for f in mixes if f not in on]
    if on:
        alphas = [given[f] or "ALPHA" for f in on]
        each = (f"--mix-alpha {alphas[0]}" if len(set(alphas)) == 1 else
                " ".join(f"{f}-alpha {a}" for f, a in zip(on, alphas)))
        ours.append(f"--reg {','.join(f[2:] for f in on)} {each}")
    for flag, value, text in hits:
        if flag not in TIMM_FLAGS:  # a note
            notes.append(text.replace("{}", value or "N"))
            continue
        if flag in _MIXES or (flag == "--model-ema" and "--model-ema-decay" in given):
            continue
        value = _TIMM_VALUES.get(flag, {}).get(value, value) if value else "VALUE"
        ours.append(text.format(value))
    return "; ".join([" ".join(ours)] * bool(ours) + notes)


def _zero(value: str | None) -> bool:
    try:
        return value is not None and float(value) == 0
    except ValueError:
        return False


def did_you_mean(extras: list[str], ours: dict[str, Any]) -> str:
    """``; did you mean --weight-decay?`` for the first unknown flag of ``extras`` with a close
    flag in ``ours``: the same with ``-`` for ``_`` (timm's config keys, Python's names), the
    flags it abbreviates (up to 3; flags are never abbreviated), else the closest by difflib;
    ``""`` when none is close."""
    import difflib
    flags = [w.partition("=")[0] for w in extras if w.startswith("--")]
    longs = [o for o in ours if o.startswith("--")]
    for flag in flags:
        same = flag.replace("_", "-")
        close = ([same] if same in ours else sorted(o for o in longs if o.startswith(same))
                 or difflib.get_close_matches(flag, longs, n=1, cutoff=0.75))
        if close:
            return f"; did you mean {' or '.join(close[:3])}?"
    return ""
