"""Flags users bring from timm's train.py get ours in the one-line error, and other unknown flags
the closest of the command's: ``--mixup 0.8`` said "ambiguous option: --mixup could match
--mixup-per-sample, --mixup-partner" (argparse's prefix matching), pointing away from ``--reg
mixup --mix-alpha 0.8``, and ``-b 32``, ``--img-size 64``, ``--weight_decay 0.1`` a bare
"unrecognized arguments"."""

import argparse
import re
import shlex

import pytest

from robustrep.tasks import cli
from robustrep.tasks.common.flag_hints import TIMM_FLAGS, did_you_mean, timm_hits

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
    ("--mixup 0.8 --cutmix 1.0", "--mixup 0.8 --cutmix 1.0 (timm train.py's flags); here: --reg "
                                 "mixup,cutmix --mix-alpha 0.8 (one alpha for both: pick one of "
                                 "0.8 and 1.0)"),
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
])
def test_an_unknown_flag_gets_ours(args, message, capsys):
    line = _error(["classify", "train", *shlex.split(args)], capsys)
    assert line == f"robustrep classify train: error: unrecognized arguments: {message}{SEE}"


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


def test_only_the_flags_a_command_has_are_offered(capsys):
    # classify eval has --batch-size but no --reg; gan train's own --mixup-switch-prob stays
    line = _error(["classify", "eval", "RUN", "-b", "32", "--mixup", "0.8"], capsys)
    assert "unrecognized arguments: -b 32 (timm train.py's flag); here: --batch-size 32 " in line
    args = _parser("gan", "train").parse_args(["--mixup-switch-prob", "0.3"])
    assert args.regopt__mixup__switch_prob == 0.3
    assert "timm train.py" not in _error(["classify", "eval", "RUN", "--mixup", "0.8"], capsys)
    # a command that has timm's flag itself keeps it
    assert timm_hits(["--mixup-prob", "0.5"], {"--mixup-prob": None, "--mix-prob": None}) == []


def test_help_beside_a_timm_flag_is_the_help(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["classify", "train", "-b", "32", "--help"])
    assert stop.value.code == 0 and "--batch-size" in capsys.readouterr().out
