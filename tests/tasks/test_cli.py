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
                                     ("classify", "train"), ("classify", "eval"),
                                     ("ood", "score"), ("ood", "bench")],
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
