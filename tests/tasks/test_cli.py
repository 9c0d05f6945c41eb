import re
import subprocess
import sys

import pytest

import robustrep
from robustrep.tasks import cli


def test_version_and_help_list_every_program(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"robustrep {robustrep.__version__}"
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.PROGRAMS)


@pytest.mark.parametrize("program", sorted(cli.PROGRAMS))
def test_each_program_has_help_with_subcommands(program, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([program, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: robustrep {program}" in capsys.readouterr().out


@pytest.mark.subprocess
def test_python_dash_m_runs_the_cli(tmp_path):
    # From a temporary folder, so the checkout's robustrep/ cannot shadow the installed package.
    out = subprocess.run([sys.executable, "-m", "robustrep.tasks.cli", "report", "--help"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert "usage: robustrep report" in out


@pytest.mark.subprocess
def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path):
    """`robustrep classify train --dry-run | head` ended in a BrokenPipeError traceback: the
    command now stops as a process killed by SIGPIPE would, with nothing on stderr."""
    import os
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        out = subprocess.run([sys.executable, "-m", "robustrep.tasks.cli", "classify", "train",
                              "--dry-run"], stdout=write, stderr=subprocess.PIPE, text=True,
                             cwd=tmp_path)
    finally:
        os.close(write)
    assert (out.returncode, out.stderr) == (141, "")


# Ctrl-C in the interpreter's shutdown, as torch's atexit finalizers run: once the command is done
_CTRL_C_AT_EXIT = """
import atexit, os, signal, sys, time
atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5)))
from robustrep.tasks.cli import main
sys.argv[1:] = ["report", "--quick", "--seeds", "0", "--gan-regs", "none", "--classify-regs",
                "none", "--out", "r", "--dry-run"]
sys.exit(main())
"""


@pytest.mark.subprocess
def test_ctrl_c_as_the_process_exits_ends_it_quietly_with_its_output(tmp_path):
    """Was: Ctrl-C just as `gan sample ... --grid g.png` or `classify eval` ended printed
    "Exception ignored in atexit callback" and a KeyboardInterrupt traceback, exit 0. Now the
    process ends by the signal (a shell's 130), without a word, its output written whole."""
    import os
    import signal
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered
    out = subprocess.run([sys.executable, "-c", _CTRL_C_AT_EXIT], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120, env=env)
    assert (out.returncode, out.stderr) == (-signal.SIGINT, "")
    assert len(out.stdout.splitlines()) == 4  # robustrep gan train ...; classify x 3


@pytest.mark.subprocess
def test_only_the_named_program_is_imported(tmp_path):
    code = ("import sys; from robustrep.tasks import cli; cli.build_parser('gan'); "
            "print(sorted(m for m in sys.modules if m.startswith('robustrep.tasks.') "
            "and m.count('.') == 3 and m.endswith('.cli') and '.common.' not in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert out.strip() == "['robustrep.tasks.gan.cli']"


@pytest.mark.subprocess
def test_import_robustrep_is_light_and_hooks_nothing(tmp_path):
    code = ("import sys; before = list(sys.meta_path); import robustrep; "
            "assert sys.meta_path == before, 'meta_path changed'; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "robustrep.AdaptiveMix; robustrep.create_regularizer; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.stdout.strip() == "ok", out.stderr


def test_unknown_program_is_rejected_with_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["gann"])
    assert "invalid choice: 'gann'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [("gan", "train"), ("gan", "eval"), ("gan", "sample"),
                                     ("gan", "fid"), ("classify", "train"),
                                     ("classify", "eval"), ("ood", "score"), ("ood", "bench"),
                                     ("report",), ("data", "pack")],
                         ids=" ".join)
def test_help_states_each_default_once(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    text = capsys.readouterr().out
    # One block per option: from a line starting with "  -" to the next one.
    blocks = re.split(r"\n  (?=-)", text)
    twice = [b.split()[0] for b in blocks if b.count("(default") > 1]
    assert not twice, twice


@pytest.mark.parametrize("program, title, flag", [
    ("gan", "--reg adaptivemix options (D function; Liu et al., AdaptiveMix, CVPR 2023)",
     "--am-alpha"),
    ("classify", "--reg pgd/fgsm/free options (adversarial inputs; Madry et al.", "--adv-steps"),
])
def test_help_groups_regularizer_options_under_their_registry_entry(program, title, flag,
                                                                     capsys):
    with pytest.raises(SystemExit):
        cli.main([program, "train", "--help"])
    out = capsys.readouterr().out
    section = out[out.index(title):]
    assert flag in section.split("\n\n")[0]  # the option sits in its method's section


def _commands() -> list[tuple[str, ...]]:
    """Every command of every program, read from the parsers (a program without sub-commands,
    report, is its own command)."""
    import argparse
    out = []
    for program in cli.PROGRAMS:
        parser = cli.build_parser(program)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        inner = [a for a in sub.choices[program]._actions
                 if isinstance(a, argparse._SubParsersAction)]
        out += [(program, c) for c in inner[0].choices] if inner else [(program,)]
    return out


def _command_parser(command: tuple[str, ...]):
    import argparse
    parser = cli.build_parser(*command)
    for word in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_an_unknown_option_is_the_error_of_its_own_command(command, capsys):
    # argparse hands a sub-command's unknown options up to the top parser ("robustrep: error")
    required = [part for a in _command_parser(command)._actions if a.required
                for part in (*a.option_strings[:1], "1")]  # "1": a path and a number
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, *required, "--no-such-option"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith(
        f"robustrep {' '.join(command)}: error: unrecognized arguments: --no-such-option")


def _device_mistakes(command: tuple[str, ...]) -> list[list[str]]:
    """Command lines whose --device/--amp mistake the words alone show (the required arguments
    given, so that the command runs), for the commands that take them."""
    parser = _command_parser(command)
    flags = {f for a in parser._actions for f in a.option_strings}
    required = [part for a in parser._actions if a.required
                for part in (*a.option_strings[:1], "1")]  # "1": a path and a number
    out = [[*required, "--device", d] for d in ("gpu", "cuda:x")]
    if "--amp" in flags:
        out.append([*required, "--amp", "fp16", "--device", "cpu"])
    return out if "--device" in flags else []


DEVICE_COMMANDS = [c for c in _commands() if _device_mistakes(c)]


def test_device_mistakes_are_checked_in_the_commands_that_have_them():
    assert {("gan", "train"), ("gan", "fid"), ("gan", "sample"), ("classify", "train"),
            ("classify", "eval"), ("ood", "score")} <= set(DEVICE_COMMANDS)


@pytest.mark.parametrize("command", DEVICE_COMMANDS, ids=" ".join)
def test_device_mistakes_are_refused_before_the_command_imports_torch(command, monkeypatch,
                                                                        capsys):
    # Every command imports resolve_device (and torch with it) before its work; blocked here, so
    # a mistake not refused from the words alone fails the test with an ImportError.
    monkeypatch.setitem(sys.modules, "robustrep.tasks.common.runtime", None)
    for argv in _device_mistakes(command):
        assert cli.main([*command, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("--device must be auto, cpu, cuda or cuda:N" in err
                                         or "--amp fp16 needs a CUDA device" in err), err


def test_a_config_files_device_and_amp_are_checked_before_torch(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "robustrep.tasks.common.runtime", None)
    (tmp_path / "cpu.json").write_text('{"device": "cpu"}')
    for program in ("gan", "classify"):
        argv = [program, "train", "--config", str(tmp_path / "cpu.json"), "--amp", "fp16"]
        assert cli.main([*argv, "--dry-run"]) == 2
        assert "--amp fp16 needs a CUDA device" in capsys.readouterr().err


HEAVY = ("torch", "timm", "numpy")
# In a fresh interpreter: `--help`, a wrong option and a wrong --device/--amp through main, then
# the heavy modules.
_NO_HEAVY = """
import contextlib, io, sys
from robustrep.tasks.cli import main
for extra in (["--help"], ["--no-such-option"], *MISTAKES):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = main(ARGV + extra)
        except SystemExit as stop:
            code = stop.code
    assert code == (0 if extra == ["--help"] else 2), (extra, code)
print(sorted(m for m in HEAVY if m in sys.modules))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_and_argument_errors_import_no_torch(command, tmp_path):
    code = (f"ARGV = {list(command)!r}; HEAVY = {HEAVY!r}; "
            f"MISTAKES = {_device_mistakes(command)!r}" + _NO_HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", (command, out.stdout)


def test_every_command_is_checked_for_torch_free_help():
    # the subprocess test above reads the commands from the parsers: all of them are there
    assert {("classify", "eval"), ("ood", "score"), ("ood", "bench"), ("gan", "fid"),
            ("report",), ("data", "pack"), ("gan", "train")} <= set(_commands())
    assert len(_commands()) >= 10


def _help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse's line wrapping undone


def test_time_claims_in_help_are_the_readmes_measured_figures(capsys):
    from pathlib import Path
    readme = Path(__file__).resolve().parents[2] / "README.md"
    if not readme.is_file():
        pytest.skip("README not beside the tests (installed test run)")
    text = " ".join(readme.read_text().split())
    gan = re.search(r"trains the default GAN.*?: (\d+) s on a 2-core CPU", text).group(1)
    quick = re.search(r"`--quick` \(.*?\) took \*\*([\d.]+) minutes\*\*", text).group(1)
    measured = {f"{gan} s measured on 2 CPU cores", f"{quick} minutes measured on 2 CPU cores"}
    helps = [_help_text(list(argv), capsys)
             for argv in [(p,) for p in cli.PROGRAMS] + _commands()]
    claims = {m.group(0) for h in helps for m in re.finditer(
        r"(about|a few|[\d.]+) (s|seconds?|minutes?|hours?)\b( measured on 2 CPU cores)?", h)}
    assert claims == measured, claims


def test_help_texts_show_no_format_escapes(capsys):
    """argparse %-formats argument help but not descriptions: a '%%' in a description (or a
    '%(prog)s' left unformatted) shows as written."""
    for argv in [(p,) for p in cli.PROGRAMS] + _commands():
        text = _help_text(list(argv), capsys)
        assert "%%" not in text and "%(" not in text, (argv, text)
