"""A config file's key that names a generated ``--NAME-OPTION`` flag (``pgd_norm: l2``, as timm's
``-c`` files give flags' names) is that flag's value in ``reg_options`` (``arch_options`` for a
plugin network family): converted as the flag converts it, merged option by option with the
file's own ``reg_options`` and the flags. It was "unknown option(s) pgd_norm ...; none of the 71
options is close", while ``--help`` lists ``--pgd-norm``."""

import json
from pathlib import Path

import pytest

from robustrep.tasks.cli import main

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "tiny_gan.py"


def _dry_run(argv: list[str], text: str, tmp_path, capsys) -> tuple[int, dict | str]:
    """(exit code, the printed config or the one error line) of a dry run with a config file
    holding ``text``."""
    path = tmp_path / "c18.yaml"
    path.write_text(text)
    capsys.readouterr()
    try:
        code = main([*argv, "--config", str(path), "--dry-run"])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    if code == 0:
        return code, json.loads(out)
    assert len(err.strip().splitlines()) == 1, err
    return code, err.strip().split(": error: ", 1)[1].replace(str(path), "c18.yaml")


@pytest.mark.parametrize("key", ["pgd_norm", "pgd-norm"])
def test_a_generated_flags_name_is_its_reg_option(key, tmp_path, capsys):
    # L2: the flag's choice spelt as the flag spells it (--pgd-norm L2 is l2)
    code, cfg = _dry_run(["classify", "train"], f"reg: pgd\n{key}: L2\n", tmp_path, capsys)
    assert code == 0 and cfg["reg_options"] == {"pgd": {"norm": "l2"}}


@pytest.mark.parametrize(("flags", "start"), [([], False), (["--pgd-random-start"], True)])
def test_folded_keys_merge_with_the_files_reg_options_and_the_flags(flags, start, tmp_path,
                                                                   capsys):
    # "no" read as the flag reads it; the file's own norm kept; the flag over the file
    text = 'reg: pgd\npgd_random_start: "no"\nreg_options: {pgd: {norm: l2}}\n'
    code, cfg = _dry_run(["classify", "train", *flags], text, tmp_path, capsys)
    assert code == 0 and cfg["reg_options"] == {"pgd": {"norm": "l2", "random_start": start}}


@pytest.mark.parametrize(("text", "line"), [
    ("reg: pgd\npgd_norm: l2\nreg_options: {pgd: {norm: linf}}\n",
     "config file c18.yaml sets pgd's 'norm' twice, as pgd_norm (--pgd-norm) and in "
     "reg_options: {pgd: {norm: ...}}; keep one"),
    ("reg: pgd\npgd_norm: l2\npgd-norm: l2\n",
     "config file c18.yaml: pgd_norm and pgd-norm both set --pgd-norm; keep one"),
    ("reg: pgd\npgd-norm: L3\n",
     "config file c18.yaml: pgd-norm (--pgd-norm) must be one of linf, l2; got 'L3'"),
    ("reg: pgd\npgd_nrom: l2\n",
     "unknown option(s) pgd_nrom in config file c18.yaml; did you mean 'pgd_norm'?"),
    # folded as the flag would be: refused where the flag is (--reg does not list pgd)
    ("reg: mixup\npgd_norm: l2\n",
     "reg_options (--pgd-...) set options of pgd, which --reg does not list (it lists: mixup)"),
])
def test_a_folded_key_is_refused_in_one_line(text, line, tmp_path, capsys):
    assert _dry_run(["classify", "train"], text, tmp_path, capsys) == (2, line)


def test_gans_generated_flags_fold_too(tmp_path, capsys):
    code, cfg = _dry_run(["gan", "train"], 'reg: dat\ndat_clamp_real: "no"\n', tmp_path, capsys)
    assert code == 0 and cfg["reg_options"] == {"dat": {"clamp_real": False}}


def test_a_plugin_familys_flags_fold_into_arch_options(tmp_path, capsys, plugins_forgotten):
    argv = ["gan", "train", "--plugin", str(PLUGIN), "--arch", "tinyconv"]
    code, cfg = _dry_run(argv, "tinyconv_kernel: 5\n", tmp_path, capsys)
    assert code == 0 and cfg["arch_options"] == {"tinyconv": {"kernel": 5}}


@pytest.mark.parametrize("program", ["classify", "gan"])
def test_resolve_config_folds_without_a_command_line(program, tmp_path):
    """From Python, no parser built: the keys fold the same. They were "unknown option(s)"
    unless the command's parser had been built once in the process (it recorded its flags)."""
    import importlib

    from robustrep.tasks.common.config import resolve_config
    config = importlib.import_module(f"robustrep.tasks.{program}.config")
    cls = config.ClassifyConfig if program == "classify" else config.GanConfig
    presets = importlib.import_module(f"robustrep.tasks.{program}.presets").PRESETS
    reg, key, value = ("pgd", "pgd_norm", "l2") if program == "classify" else (
        "dat", "dat_clamp_real", False)
    path = tmp_path / "c.yaml"
    path.write_text(f"reg: {reg}\n{key}: {str(value).lower()}\n")
    cfg = resolve_config(cls, presets, None, path)
    assert cfg.reg_options == {reg: {key.split("_", 1)[1]: value}}


def test_a_generated_flag_a_run_flag_takes_folds_nothing(tmp_path, capsys, plugins_forgotten):
    """A plugin ``stop`` with option ``after``: the trainer's parser gives it no --stop-after
    (the run flag's); a file's stop_after stays the run flag's refusal, as before the keys were
    read from the config class (it folded into reg_options: {stop: {after: 3}})."""
    plugin = tmp_path / "stopreg.py"
    plugin.write_text(
        'from robustrep.registry import register_regularizer\n\n\n'
        '@register_regularizer("stop", paper="nobody", acts={"classify": "feature shrinkage"})\n'
        'class Stop:\n'
        '    """A plugin whose option meets a run flag.\n\n'
        '    Args:\n        after: steps before the term acts.\n    """\n\n'
        '    def __init__(self, after: int = 0):\n        self.after = after\n\n'
        '    def feature_terms(self, model, x, generator=None):\n        return {}\n')
    argv = ["classify", "train", "--plugin", str(plugin)]
    assert _dry_run(argv, "reg: stop\nstop_after: 3\n", tmp_path, capsys) == (
        2, "config file c18.yaml: stop_after is the command-line flag --stop-after of a run, not "
           "an option a config file sets; give --stop-after on the command line")
