"""Flags users bring from stylegan2-ada-pytorch get a note on what to give instead, only in the
commands where it holds: difflib's guess misled (``gan train --kimg 1``: "did you mean
--ema-kimg?", the EMA half-life; ``--p 0.2``: the --pl-* options), and ``gan fid --metrics
fid50k_full NET.pkl fa`` left ``--metrics fa`` over with no word on fid50k_full."""

import argparse
import re
import shlex

import pytest

from robustrep.tasks import cli
from robustrep.tasks.common.flag_hints import SG2_NOTES

from .test_timm_flags import _error, _parser


def _commands() -> dict[tuple[str, str], argparse.ArgumentParser]:
    """Every ``robustrep PROGRAM COMMAND``'s parser."""
    found = {}
    for program in cli.PROGRAMS:
        top = cli.build_parser(program)
        sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
        for command in _subs(sub.choices[program]):
            found[(program, command)] = _parser(program, command)
    return found


def _subs(parser: argparse.ArgumentParser) -> list[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(subs[0].choices) if subs else []


@pytest.mark.parametrize(("argv", "message"), [
    ("gan train --kimg 1", "--kimg 1 (stylegan2-ada's flag); here: --steps N, N = kimg x 1000 / "
                           "--batch-size (--ema-kimg is the G-EMA half-life, not the length)"),
    ("gan train --p=0.2", "--p 0.2 (stylegan2-ada's flag); here: --augment fixed --augment-p P "
                          "(a fixed ADA probability; with --augment ada, the initial p)"),
    ("gan train --snap 10", "--snap 10 (stylegan2-ada's flag); here: --ckpt-every N, in steps (a "
                            "stylegan2-ada tick is 4 kimg: N = snap x 4000 / --batch-size); "
                            "--eval-every N evaluates"),
    ("gan train --metrics fid50k_full", "--metrics fid50k_full (stylegan2-ada's flag); here: the "
                                        "run evaluates every --eval-every N steps; fid50k_full "
                                        "of a run: robustrep gan eval RUN --num 50000 --real "
                                        "all"),
    ("gan train --cond 1", "--cond 1 (stylegan2-ada's flag); here: robustrep trains "
                           "unconditional GANs only (a conditional stylegan2-ada pickle samples "
                           "with robustrep gan sample NET.pkl --class N)"),
    ("gan train --gpus 2", "--gpus 2 (stylegan2-ada's flag); here: torchrun --nproc_per_node N "
                           "-m robustrep.tasks.cli gan train ... (--batch-size is the global "
                           "batch, split across the processes)"),
    ("gan sample --network X.pkl", "--network X.pkl (stylegan2-ada's flag); here: the pickle is "
                                   "the positional RUN: robustrep gan sample NET.pkl"),
    # looked for before argparse, which took fid50k_full as A and left --metrics fa over
    ("gan fid --metrics fid50k_full NET.pkl fa", "--metrics fid50k_full (stylegan2-ada's flag); "
                                                 "here: gan fid scores FID, KID and "
                                                 "precision/recall of A against B; fid50k_full "
                                                 "of a run: robustrep gan eval RUN --num 50000 "
                                                 "--real all; of a network pickle: robustrep "
                                                 "gan fid NET.pkl DATA --num 50000 (DATA: the "
                                                 "dataset's zip or folder, read whole)"),
    ("gan eval RUN --metrics fid50k_full", "--metrics fid50k_full (stylegan2-ada's flag); here: "
                                           "FID, KID and precision/recall are always scored; "
                                           "fid50k_full: --num 50000 --real all"),
    ("gan train --kimg 1 --gpus 2", "--kimg 1 --gpus 2 (stylegan2-ada's flags); here: --steps N, "
                                    "N = kimg x 1000 / --batch-size (--ema-kimg is the G-EMA "
                                    "half-life, not the length); torchrun --nproc_per_node N -m "
                                    "robustrep.tasks.cli gan train ... (--batch-size is the "
                                    "global batch, split across the processes)"),
    # each project's flags said in turn, in the order first given
    ("gan train --kimg 1 -b 32", "--kimg 1 (stylegan2-ada's flag); here: --steps N, N = kimg x "
                                 "1000 / --batch-size (--ema-kimg is the G-EMA half-life, not "
                                 "the length); -b 32 (timm train.py's flag); here: --batch-size "
                                 "32"),
])
def test_a_stylegan2_ada_flag_gets_a_note(argv, message, capsys):
    words = shlex.split(argv)
    command = " ".join(words[:2])
    assert _error(words, capsys) == (f"robustrep {command}: error: unrecognized arguments: "
                                     f"{message} (see 'robustrep {command} --help')")


def test_a_note_is_said_only_where_it_holds(capsys):
    # classify train has --steps and --batch-size, but its length is no stylegan2-ada kimg
    assert _error(["classify", "train", "--kimg", "1"], capsys).endswith(
        "unrecognized arguments: --kimg 1 (see 'robustrep classify train --help')")
    assert "stylegan2-ada" not in _error(["classify", "train", "--snap", "1"], capsys)
    assert "stylegan2-ada" not in _error(["gan", "sample", "RUN", "--kimg", "1"], capsys)


# the placeholders the notes write, as values the commands accept
PLACEHOLDERS = {"N": "2", "P": "0.2"}
COMMAND = re.compile(r"(?:torchrun --nproc_per_node N -m robustrep\.tasks\.cli|robustrep) "
                     rf"({'|'.join(cli.PROGRAMS)}) (\w+)((?: [^\s;,()]+)*)")


@pytest.mark.parametrize("flag", sorted(SG2_NOTES))
def test_each_note_is_said_somewhere_and_names_what_is_there(flag):
    """Each entry is the first whose flags some command has (else it is dead), that command
    lacks stylegan2-ada's name, the flags the note names outside a command line are its own,
    and each command line in the note parses."""
    commands = _commands()
    for needs, _, note in SG2_NOTES[flag]:
        said = [name for name, parser in commands.items() if next(
            (n for ns, _, n in SG2_NOTES[flag] if all(f in parser._option_string_actions
                                                   for f in ns)), None) == note]
        assert said, note
        for name in said:
            ours = commands[name]._option_string_actions
            assert flag not in ours and all(f in ours for f in needs)
            rest = COMMAND.sub("", note)
            assert all(f in ours for f in re.findall(r"--[a-z][\w-]*", rest)), (name, note)
        for program, command, args in COMMAND.findall(note):
            words = [PLACEHOLDERS.get(w, w) for w in args.split() if w != "..."]
            _parser(program, command).parse_args(words)
