"""Flags users bring from timm's train.py get ours in the one-line error, and other unknown flags
the closest of the command's: ``--mixup 0.8`` said "ambiguous option: --mixup could match
--mixup-per-sample, --mixup-partner" (argparse's prefix matching), pointing away from ``--reg
mixup --mix-alpha 0.8`` (with ``--cutmix 1.0``: ``--mixup-alpha 0.8 --cutmix-alpha 1.0``), and
``-b 32``, ``--img-size 64``, ``--weight_decay 0.1`` a bare "unrecognized arguments"."""

import argparse
import json
import re
import shlex

import pytest

from robustrep.tasks import cli
from robustrep.tasks.common.flag_hints import TIMM_FLAGS, TIMM_NOTES, did_you_mean, peer_hits

SEE = " (see 'robustrep classify train --help')"


def _parser(*command: str) -> argparse.ArgumentParser:
    parser = cli.build_parser(*command)
    for word in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def _error(argv: list[str], capsys) -> str:
    """The one line of ``robustrep ARGV``'s argparse error (exit 2)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize(("args", "message"), [
    ("--mixup 0.8", "--mixup 0.8 (timm train.py's flag); here: --reg mixup --mix-alpha 0.8"),
    ("--cutmix=1.0", "--cutmix 1.0 (timm train.py's flag); here: --reg cutmix --mix-alpha 1.0"),
    # Was: "--mix-alpha 0.8 (one alpha for both: pick one of 0.8 and 1.0)"
    ("--mixup 0.8 --cutmix 1.0", "--mixup 0.8 --cutmix 1.0 (timm train.py's flags); here: --reg "
                                 "mixup,cutmix --mixup-alpha 0.8 --cutmix-alpha 1.0"),
    ("--cutmix 1.0 --mixup 1.0", "--cutmix 1.0 --mixup 1.0 (timm train.py's flags); here: --reg "
                                 "mixup,cutmix --mix-alpha 1.0"),
    ("--mixup 0 --cutmix 1.0", "--mixup 0 --cutmix 1.0 (timm train.py's flags); here: --reg "
                               "cutmix --mix-alpha 1.0; leave out --reg mixup (timm's 0 is off)"),
    ("--model-ema --model-ema-decay 0.999", "--model-ema --model-ema-decay 0.999 (timm train.py's "
                                            "flags); here: --ema-decay 0.999"),
    ("--lr 0.1 -b 32 --img-size 64", "-b 32 --img-size 64 (timm train.py's flags); here: "
                                     "--batch-size 32 --image-size 64"),
    ("-b32", "-b 32 (timm train.py's flag); here: --batch-size 32"),
    ("--drop 0.2", "--drop 0.2 (timm train.py's flag); here: --drop-rate 0.2"),  # "ambiguous"
    ("--amp-dtype bfloat16", "--amp-dtype bfloat16 (timm train.py's flag); here: --amp bf16"),
    ("--weight_decay 0.1", "--weight_decay 0.1; did you mean --weight-decay?"),
    ("--stepz 3", "--stepz 3; did you mean --steps?"),
    ("--no-such-option", "--no-such-option"),  # nothing close: no guess
    # Was: read as --ema-decay 0.5 (argparse's abbreviations), which a later --ema-* flag
    # would have made "ambiguous" in a script that had worked
    ("--ema 0.5 --dry-run", "--ema 0.5; did you mean --ema-decay?"),
    ("--adv-step 3 --dry-run", "--adv-step 3; did you mean --adv-step-size or --adv-steps?"),
    # timm's flags whose meaning ours has in part or not at all (TIMM_NOTES). Were: no word, or
    # difflib's wrong guess (--output: "did you mean --out?", --hflip: --help, --crop-pct:
    # --drop-path, --scale: --uos-scale, --fast-norm: --fgsm-norm)
    ("--checkpoint-hist 3", "--checkpoint-hist 3 (timm train.py's flag); here: --keep-ckpts 3 "
                            "keeps the newest 3 step checkpoints (timm's keeps the best 3 by eval "
                            "metric)"),
    ("--checkpoint-hist --dry-run", "--checkpoint-hist (timm train.py's flag); here: "
                                    "--keep-ckpts N keeps the newest N step checkpoints (timm's "
                                    "keeps the best N by eval metric)"),
    ("--initial-checkpoint w.pth", "--initial-checkpoint w.pth (timm train.py's flag); here: "
                                   "--pretrained-file FILE loads a weights file with the head "
                                   "re-initialised; none loads a whole model (head included) to "
                                   "train on"),
    ("--val-split validation", "--val-split validation (timm train.py's flag); here: the "
                               "evaluation split is --data-root's val/ (or valid/, validation/, "
                               "eval/, evaluation/, test/) beside its train/, a built-in "
                               "dataset's test split, or --val-fraction F of the training split "
                               "(0.2 of a folder without one)"),
    ("--input-size 3 224 224", "--input-size 3 224 224 (timm train.py's flag); here: "
                               "--image-size SIZE (square; the channels are the data's, or "
                               "--channels 1|3)"),
    ("--lr-base 0.1", "--lr-base 0.1 (timm train.py's flag); here: --lr LR, used as given: no "
                      "batch scaling (timm without --lr takes --lr-base x global batch / 256, the "
                      "square root of the ratio for ada*/lamb)"),
    ("--output runs", "--output runs (timm train.py's flag); here: --out names the output folder "
                      "itself (timm's --output is the parent of its run folders)"),
    ("--hflip 0.5", "--hflip 0.5 (timm train.py's flag); here: --augment flips horizontally "
                    "with probability 0.5 (fixed) after a random crop of the image padded by 4 "
                    "pixels"),
    ("--scale 0.08 1", "--scale 0.08 1 (timm train.py's flag); here: no random-resized crop: "
                       "--augment crops at full size from the image padded by 4 pixels, and "
                       "flips with probability 0.5"),
    ("--crop-pct 0.9", "--crop-pct 0.9 (timm train.py's flag); here: no crop margin: evaluation "
                       "resizes the shorter side to --image-size and keeps the centre square, as "
                       "timm with --crop-pct 1.0 (its validate.py default 0.875 scores "
                       "otherwise)"),
    ("--fast-norm --dry-run", "--fast-norm (timm train.py's flag); here: no equivalent "
                              "(--model's normalisation layers are timm's defaults)"),
    ("-b 32 --lr-base 0.1", "-b 32 --lr-base 0.1 (timm train.py's flags); here: --batch-size 32; "
                            "--lr LR, used as given: no batch scaling (timm without --lr takes "
                            "--lr-base x global batch / 256, the square root of the ratio for "
                            "ada*/lamb)"),
])
def test_an_unknown_flag_gets_ours(args, message, capsys):
    line = _error(["classify", "train", *shlex.split(args)], capsys)
    assert line == f"robustrep classify train: error: unrecognized arguments: {message}{SEE}"


def test_timms_two_mixing_alphas_run_as_given(capsys):
    """The hint for timm's DeiT recipe is a run of it: each method its own alpha."""
    line = _error(["classify", "train", "--mixup", "0.8", "--cutmix", "1.0"], capsys)
    hint = re.search(r"; here: (.*) \(see ", line)[1]
    assert cli.main(["classify", "train", *shlex.split(hint), "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["reg"], cfg["mix_alpha"], cfg["reg_options"]) == (
        "mixup,cutmix", None, {"mixup": {"alpha": 0.8}, "cutmix": {"alpha": 1.0}})


def test_underscores_for_hyphens_are_named_however_many():
    # difflib alone finds --weight-decay for --weight_decay, not a flag of many words
    assert did_you_mean(["--a_b_c_d", "1"], {"--a-b-c-d": None, "--abcd": None}) == \
        "; did you mean --a-b-c-d?"


# a value each of ours accepts, by timm's flag
VALUES = {"-c": "c.yaml", "--data-dir": "data", "--pretrained-path": "w.pth", "--in-chans": "3",
          "--amp-dtype": "float16", "-b": "32", "-j": "2", "--img-size": "64", "--drop": "0.1",
          "--mixup": "0.8", "--cutmix": "1.0", "--mixup-prob": "0.5", "--model-ema-decay": "0.99",
          "--mixup-switch-prob": "0.5", "--decay-rate": "0.1", "--dr": "0.1",
          "--log-interval": "5"}


@pytest.mark.parametrize("flag", sorted(TIMM_FLAGS))
def test_each_timm_flag_is_not_ours_and_its_hint_parses(flag, capsys):
    """classify train has none of timm's names (else the entry is dead) and accepts what the
    hint says instead, with the value given."""
    ours = _parser("classify", "train")._option_string_actions
    assert flag not in ours
    given = [flag, VALUES[flag]] if flag in VALUES else [flag]
    line = _error(["classify", "train", *given], capsys)
    hint = re.search(r"; here: (.*) \(see ", line)[1]
    assert "VALUE" not in hint
    _parser("classify", "train").parse_args(shlex.split(hint))


@pytest.mark.parametrize("flag", sorted(TIMM_NOTES))
def test_each_timm_note_is_about_a_flag_we_lack_and_names_ours(flag):
    """classify train has none of timm's noted names (else the note is dead) and every flag the
    note needs (else it is never said there)."""
    ours = _parser("classify", "train")._option_string_actions
    for needs, _, note in TIMM_NOTES[flag]:
        assert flag not in ours and all(f in ours for f in needs)
        assert all(f in ours for f in re.findall(r"--[a-z][\w-]*", note) if f != flag), note


def test_a_note_is_said_only_where_its_flags_mean_it(capsys):
    # gan train's --augment is ADA, not crop + flip: its --hflip gets no note about it
    assert "timm train.py" not in _error(["gan", "train", "--hflip", "0.5"], capsys)
    # classify eval has --image-size and --model: the evaluation's crop is its own too
    line = _error(["classify", "eval", "RUN", "--crop-pct", "0.875"], capsys)
    assert "--crop-pct 0.875 (timm train.py's flag); here: no crop margin" in line


@pytest.mark.parametrize(("argv", "message"), [
    # Was: "expected one argument" alone; the choices were in the usage line, not printed
    (["classify", "train", "--amp"], "argument --amp: expected one argument, one of off, bf16, "
                                     "fp16"),
    (["classify", "train", "--channels", "--dry-run"], "argument --channels: expected one "
                                                       "argument, one of 1, 3"),
    (["classify", "eval", "RUN", "--norm"], "argument --norm: expected one argument, one of "
                                            "Linf, L2"),
    # a value with '-' is no choice: the choices, not "write --amp=-x"
    (["classify", "train", "--amp", "-x"], "argument --amp: expected one argument, one of off, "
                                           "bf16, fp16"),
    (["classify", "train", "--lr"], "argument --lr: expected one argument"),  # no choices
])
def test_a_missing_value_of_choices_names_them(argv, message, capsys):
    command = " ".join(argv[:2])
    assert _error(argv, capsys) == (f"robustrep {command}: error: {message} (see 'robustrep "
                                    f"{command} --help')")


def test_only_the_flags_a_command_has_are_offered(capsys):
    # classify eval has --batch-size but no --reg; gan train's own --mixup-switch-prob stays
    line = _error(["classify", "eval", "RUN", "-b", "32", "--mixup", "0.8"], capsys)
    assert "unrecognized arguments: -b 32 (timm train.py's flag); here: --batch-size 32 " in line
    args = _parser("gan", "train").parse_args(["--mixup-switch-prob", "0.3"])
    assert args.regopt__mixup__switch_prob == 0.3
    assert "timm train.py" not in _error(["classify", "eval", "RUN", "--mixup", "0.8"], capsys)
    # a command that has timm's flag itself keeps it
    assert peer_hits(["--mixup-prob", "0.5"], {"--mixup-prob": None, "--mix-prob": None}) == []


def test_help_beside_a_timm_flag_is_the_help(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["classify", "train", "-b", "32", "--help"])
    assert stop.value.code == 0 and "--batch-size" in capsys.readouterr().out
