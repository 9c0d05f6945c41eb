"""Every option of every program's config, through the real parser: typed, checked, one line.

For each field of GanConfig and ClassifyConfig a valid value given as text (on the command line,
and as a string in a YAML config file) must arrive as the field's Python type, and an invalid one
must be refused in one line naming the option. Every field and value goes through the program's
parser and the config-file conversion; one field of each *kind* (type, range, choice, bool,
text, list; see ``kind_of``) goes the whole way through ``main`` (``--dry-run`` JSON, exit 2).

The other commands (``classify eval``, ``ood score``, ``gan fid``, ``report``...) declare their
options as one dataclass each: every field has help and a default of its type that its flag
written out parses back to, every invalid value of its kind is one line naming the flag, and an
option several commands share has one spec and one help. The trainers' run flags (``--preset``,
``--out``, ``--resume``, ``--stop-after``...) get the same checks, and are one spec, one argparse
form and one help in ``gan train`` and ``classify train`` (their behaviour: test_run_flags.py).
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.cli import build_parser, main
from robustrep.tasks.common.config import (ConfigError, OptionSpec, OptionValueError,
                                           convert_value, convert_values, option_specs)
from robustrep.tasks.common.optionspec import INT_MAX
from robustrep.tasks.gan.config import GanConfig
from robustrep.tasks.gan.config_checks import STYLEGAN2_ONLY

PROGRAMS = {"gan": GanConfig, "classify": ClassifyConfig}
# Free-text options: a value that the config's cross-field checks accept.
TEXT = {"reg": "none", "model": "resnet10t", "device": "cpu", "data_root": "some/folder",
        "out": "some/run", "inception_weights": "w.pth", "pretrained_file": "w.pth",
        "fid_features": "digits", "diffaugment": "color,translation",
        "lsun_classes": "church_outdoor_train",
        "aa": "rand-m9-mstd0.5", "init": "net.pkl", "arch": "dcgan", "optimizer": "adamw"}
# Mappings: a method's options; a network family's (a built-in family takes none of its own)
DICTS = {"reg_options": '{"mixup": {"partner": "flip"}}', "arch_options": '{"dcgan": {}}'}
# Choices whose other values need other options too (arch mlp needs 2-D data): keep the default.
KEEP_DEFAULT = {"dataset", "arch"}


def _inside(spec: OptionSpec) -> float:
    """A number inside the field's range, away from its ends (near the low end where an
    integer's bound is the default one: a value a user gives, not a billion steps)."""
    lo, hi = spec.min, None if spec.kind is int and spec.max == INT_MAX else spec.max
    if lo is not None and hi is not None:
        return (lo + hi) / 4 if spec.kind is float else int(lo + (hi - lo) // 2)
    if lo is not None:
        return lo + (0.5 if spec.kind is float else 1)
    return 3 if spec.kind is int else 0.75


def valid_case(cls: type, spec: OptionSpec) -> tuple[list[str], object]:
    """(the text tokens after the flag, the typed value expected in the config)."""
    default = {f.name: f.default for f in dataclasses.fields(cls)}[spec.name]
    if spec.kind is dict:  # reg_options, arch_options: a JSON mapping of name -> options
        return [DICTS[spec.name]], json.loads(DICTS[spec.name])
    if spec.sequence is not None:
        if spec.kind is int:
            return ["0,2", "3"], [0, 2, 3]
        if spec.kind is str:  # class_names: folder names
            return ["cat,dog", "fox"], ["cat", "dog", "fox"]
        return ["0.5,0.25", "0.125"], [0.5, 0.25, 0.125]
    if spec.choices is not None:
        value = default if spec.name in KEEP_DEFAULT and default is not None else spec.choices[-1]
        return [str(value)], value
    if spec.kind is bool:
        value = not bool(default)
        return [str(value).lower()], value
    if spec.kind is str:
        return [TEXT[spec.name]], TEXT[spec.name]
    value = _inside(spec)
    if spec.name == "image_size":
        value = 16  # a power of two (a cross-field rule of the GAN)
    if spec.kind is float:
        return [f"{float(value)!r}"], float(value)
    return [str(int(value))], int(value)


def invalid_cases(spec: OptionSpec) -> list[str]:
    if spec.kind is dict:
        return ["abc", "[1]", '{"mixup": 1}']
    if spec.choices is not None:
        return ["zzz"]
    if spec.kind is bool:
        return ["maybe"]
    if spec.kind is str:
        return []
    bad = ["abc"] + (["nan", "inf"] if spec.kind is float else ["2.5"])
    if spec.min is not None:
        bad.append(str(spec.min if spec.min_exclusive else spec.min - 1))
    if spec.max is not None:
        bad.append(str(spec.max if spec.max_exclusive else spec.max + 1))
    return bad


def context(program: str, spec: OptionSpec) -> list[str]:
    """Other options a field needs to be valid at all (StyleGAN2's own options need its arch)."""
    if program == "gan" and spec.name in STYLEGAN2_ONLY:
        return ["--preset", "digits-stylegan2"]
    if program == "gan" and spec.name in ("augment_p", "ada_target", "ada_interval", "ada_kimg"):
        return ["--augment", "ada"]  # ADA's options need ADA on
    if program == "gan" and spec.name == "augment":
        return ["--augment-p", "0.5"]  # "fixed" needs its p
    if program == "gan" and spec.name in ("lazy_reg", "r1_every"):
        return ["--r1-gamma", "1"]  # outside StyleGAN2 lazy regularisation is R1's
    if program == "classify" and spec.name == "mix_switch_prob":
        return ["--reg", "mixup,cutmix"]  # a switch needs two mixing methods
    if program == "classify" and spec.name == "final_act":
        return ["--model", "wrn16_2"]  # the switch exists on the wrn* models only
    # --dry-run checks the built-in digits against these: 3 channels, 3 classes
    if program == "classify" and spec.name in ("mean", "std"):
        return ["--channels", "3"]
    if program == "classify" and spec.name == "min_lr":
        return ["--lr", "1e9"]  # the floor must be below the peak
    if program == "classify" and spec.name == "num_classes":
        return ["--classes", "0,1,2"]
    if spec.name == "reg_options":  # --dry-run builds the methods: DICTS' needs its method on
        return ["--reg", "mixup"]
    if program in ("classify", "gan"):  # options that act only with another option's value
        if program == "classify":
            from robustrep.tasks.classify.config import OPTION_FIELDS
            from robustrep.tasks.classify.option_checks import ONLY_WITH
        else:
            from robustrep.tasks.gan.config_checks import ONLY_WITH
            from robustrep.tasks.gan.regs import OPTION_FIELDS
        if spec.name in ONLY_WITH:
            other, accepted = ONLY_WITH[spec.name]
            return [f"--{other}", accepted[0]]
        methods = [n for n, fields in OPTION_FIELDS.items() if spec.name in fields.values()]
        if methods:
            return ["--reg", methods[0]]
    return []


def kind_of(spec: OptionSpec) -> str:
    """The kind of check a field gets: its type, and for numbers which ends of a range it has
    and whether they are open (``float>min<max|None``)."""
    if spec.sequence is not None:
        kind = f"{spec.sequence.__name__}[{spec.kind.__name__}]"
        kind += f"x{spec.length}" if spec.length else ""
    elif spec.choices is not None:
        kind = "choice"
    elif spec.kind in (bool, str):
        kind = {bool: "bool", str: "text"}[spec.kind]
    else:
        kind = spec.kind.__name__
        kind += "" if spec.min is None else (">" if spec.min_exclusive else ">=") + "min"
        kind += "" if spec.max is None else ("<" if spec.max_exclusive else "<=") + "max"
        kind += "" if spec.finite else "-nonfinite"
    return kind + ("|None" if spec.optional else "")


# Every kind of field the configs have. A field of a new kind fails
# test_every_field_is_of_a_kind_tested_here until its kind is added (and so tested) here.
KINDS = {
    "text", "text|None", "bool", "bool|None", "choice", "choice|None",
    "int>=min<=max", "int>=min<=max|None",
    "float>min", "float>min|None", "float>=min", "float>=min|None",
    "float>=min<max", "float>=min<max|None", "float>=min<=max", "float>=min<=max|None",
    "float>min<=max|None",
    "list[int]|None", "list[float]|None", "list[str]|None", "dict|None",
}


def _fields():
    for program, cls in PROGRAMS.items():
        for name, spec in option_specs(cls).items():
            if name != "preset":
                yield program, cls, spec


def _one_per_kind():
    """The first field of each kind in each program: the cases that run through main."""
    seen = set()
    for program, cls, spec in FIELDS:
        if (program, kind_of(spec)) not in seen:
            seen.add((program, kind_of(spec)))
            yield program, cls, spec


FIELDS = list(_fields())
BY_KIND = list(_one_per_kind())
IDS = [f"{p}-{kind_of(s)}-{s.name}" for p, _, s in BY_KIND]
INVALID = [(p, s, bad) for p, _, s in BY_KIND for bad in invalid_cases(s)]


def _dry_run(capsys, program: str, *args: str) -> dict:
    assert main([program, "train", *args, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def _same_typed(got, expected) -> bool:
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(
            _same_typed(g, e) for g, e in zip(got, expected))
    return type(got) is type(expected) and got == expected


def test_every_field_is_of_a_kind_tested_here():
    untested = {f"{p}.{s.name}: {kind_of(s)}" for p, _, s in FIELDS} - {
        f"{p}.{s.name}: {k}" for p, _, s in FIELDS for k in KINDS}
    assert not untested, sorted(untested)
    # every kind in the table is exercised through main by at least one field
    assert {kind_of(s) for _, _, s in BY_KIND} == KINDS


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_field_converts_and_checks_by_its_spec(program, capsys):
    # Every field, every value, without a run per case: the program's parser (built once) turns
    # the valid text into the typed value and refuses each invalid one in one line naming the
    # flag; a config file's text converts the same way. main runs one field per kind (below).
    cls = PROGRAMS[program]
    parser = build_parser(program)
    for _, _, spec in (f for f in FIELDS if f[0] == program):
        tokens, expected = valid_case(cls, spec)
        got = getattr(parser.parse_args([program, "train", spec.flag, *tokens]), spec.name)
        assert _same_typed(got, expected), (spec.name, got, expected)
        from_file = convert_values(cls, {spec.name: ",".join(tokens)}, lambda n: f"file: {n}")
        assert _same_typed(from_file[spec.name], expected), (spec.name, from_file, expected)
        for bad in invalid_cases(spec):
            with pytest.raises(SystemExit) as exit_info:
                parser.parse_args([program, "train", spec.flag, bad])
            assert exit_info.value.code == 2
            err = capsys.readouterr().err
            flags = "/".join(spec.flags or [spec.flag])
            assert err.count("\n") == 1 and f"argument {flags}: must be " in err, err
            assert repr(bad) in err, err
            with pytest.raises(ConfigError, match=f"^file: {spec.name} must be "):
                convert_values(cls, {spec.name: bad}, lambda n: f"file: {n}")


@pytest.mark.parametrize(("program", "cls", "spec"), BY_KIND, ids=IDS)
def test_valid_flag_arrives_typed(program, cls, spec, capsys):
    tokens, expected = valid_case(cls, spec)
    cfg = _dry_run(capsys, program, *context(program, spec), spec.flag, *tokens)
    assert _same_typed(cfg[spec.name], expected), (cfg[spec.name], expected)


@pytest.mark.parametrize(("program", "cls", "spec"), BY_KIND, ids=IDS)
def test_config_file_text_converts_like_the_flag(program, cls, spec, tmp_path, capsys):
    tokens, expected = valid_case(cls, spec)
    path = tmp_path / "options.yaml"
    path.write_text(f"{spec.name}: {json.dumps(','.join(tokens))}\n")  # always a YAML string
    cfg = _dry_run(capsys, program, *context(program, spec), "--config", str(path))
    assert _same_typed(cfg[spec.name], expected), (cfg[spec.name], expected)


@pytest.mark.parametrize(("program", "spec", "bad"), INVALID,
                         ids=[f"{p}-{kind_of(s)}-{s.name}-{b}" for p, s, b in INVALID])
def test_invalid_flag_is_one_line_naming_the_option(program, spec, bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([program, "train", spec.flag, bad, "--dry-run"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    named = "/".join(spec.flags or (spec.flag,))  # argparse names every alias
    assert f"argument {named}: must be " in err and repr(bad) in err


@pytest.mark.parametrize(("program", "spec", "bad"), INVALID,
                         ids=[f"{p}-{kind_of(s)}-{s.name}-{b}" for p, s, b in INVALID])
def test_invalid_config_file_value_names_file_and_option(program, spec, bad, tmp_path, capsys):
    path = tmp_path / "options.json"
    path.write_text(json.dumps({spec.name: bad}))
    assert main([program, "train", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"robustrep {program} train: error: config file {path}: {spec.name} "
                          f"must be ")
    assert repr(bad) in err


def test_numbers_from_yaml_and_json_keep_their_meaning(tmp_path, capsys):
    # YAML 1.1 reads an unquoted 1e-3 as the string "1e-3": it must still be the number.
    path = tmp_path / "c.yaml"
    path.write_text("lr_g: 1e-3\nlr_d: '2e-4'\nsteps: 1e3\nspectral_norm: yes\namp: off\n")
    cfg = _dry_run(capsys, "gan", "--config", str(path))
    assert (cfg["lr_g"], cfg["lr_d"], cfg["steps"]) == (1e-3, 2e-4, 1000)
    assert cfg["spectral_norm"] is True and cfg["amp"] == "off"


def test_bad_values_in_the_issue(tmp_path, capsys):
    cases = {"steps: abc\n": "config file {p}: steps must be an integer in [1, 2147483647]; "
                             "got 'abc'",
             "spectral_norm: maybe\n": "config file {p}: spectral_norm must be true or false; "
                                       "got 'maybe'",
             "steps: [1,\n": "config file {p} line 2, column 1: YAML syntax error"}
    for text, message in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(text)
        assert main(["gan", "train", "--config", str(path), "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"robustrep gan train: error: {message.format(p=path)}")
        assert err.count("\n") == 1


def test_done_when_am_options_and_channels_are_numbers(capsys):
    cfg = _dry_run(capsys, "gan", "--reg", "adaptivemix", "--am-alpha", "0.5", "--am-noise-std",
                   "0.1", "--channels", "1")
    assert (cfg["am_alpha"], cfg["am_noise_std"], cfg["channels"]) == (0.5, 0.1, 1)
    assert isinstance(cfg["channels"], int)


def test_mean_and_std_as_lists(capsys):
    cfg = _dry_run(capsys, "classify", "--mean", "0.5", "0.5", "0.5", "--std", "0.25,0.25,0.25",
                   "--channels", "3")
    assert cfg["mean"] == [0.5] * 3 and cfg["std"] == [0.25] * 3
    assert _dry_run(capsys, "classify", "--mean", "0.5")["mean"] == [0.5]


def test_saved_config_is_checked_on_resume(tmp_path, capsys):
    from robustrep.tasks.common.config import to_dict
    run = tmp_path / "run"
    run.mkdir()
    saved = to_dict(GanConfig())
    saved["lr_d"] = float("nan")
    (run / "config.json").write_text(json.dumps(saved))
    assert main(["gan", "train", "--resume", str(run), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{run}/config.json: lr_d must be a finite number > 0; got nan" in err


def test_resume_may_change_learning_rates(tmp_path, capsys):
    from robustrep.tasks.common.config import to_dict
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(to_dict(GanConfig())))
    cfg = _dry_run(capsys, "gan", "--resume", str(run), "--lr-d", "1e-3", "--beta1", "0")
    assert cfg["lr_d"] == 1e-3 and cfg["beta1"] == 0.0
    assert main(["gan", "train", "--resume", str(run), "--z-dim", "7", "--dry-run"]) == 2
    assert "cannot change z_dim" in capsys.readouterr().err


def test_every_float_field_rejects_non_finite_in_code():
    for cls in PROGRAMS.values():
        for name, spec in option_specs(cls).items():
            if spec.kind is float and spec.sequence is None:
                with pytest.raises(ValueError, match=f"^{name} must be"):
                    cls(**{name: math.inf})


# ---------------------------------------------------------------------------------------------
# The commands that are not trainers: one options dataclass each, generated into argparse by the
# same add_config_args, with the flag's default the field's default. Tested by kind: every field
# of every command, through the command's real parser (built once per command).

def _command_options():
    from robustrep.tasks.classify.config import EvalOptions
    from robustrep.tasks.data.config import PackOptions
    from robustrep.tasks.gan import config as gan
    from robustrep.tasks.ood.config import BenchOptions, ScoreOptions
    from robustrep.tasks.report.config import ReportOptions
    return {("classify", "eval"): EvalOptions, ("ood", "score"): ScoreOptions,
            ("ood", "bench"): BenchOptions, ("gan", "eval"): gan.EvalOptions,
            ("gan", "sample"): gan.SampleOptions, ("gan", "fid"): gan.FidOptions,
            ("report",): ReportOptions, ("data", "pack"): PackOptions}


COMMAND_OPTIONS = _command_options()


def _train_run_options():
    """The trainers' run flags (--preset, --out, --resume, --stop-after...): the same generic
    checks as a command's options, through the trainers' parsers."""
    from robustrep.tasks.classify.config import TrainOptions as ClassifyRun
    from robustrep.tasks.gan.config import TrainOptions as GanRun
    return {("gan", "train"): GanRun, ("classify", "train"): ClassifyRun}


TRAIN_RUN = _train_run_options()


def _required(cls) -> dict[str, str]:
    """A value for each field without a default (RUN, A, SRC, --resolution...)."""
    return {f.name: "7" if option_specs(cls)[f.name].kind is int else "x"
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def _argv(command: tuple, cls, **given: list[str]) -> list[str]:
    """``command`` with the required arguments and ``given`` (field name -> tokens after the
    flag, or the positional's tokens)."""
    values = {name: [text] for name, text in _required(cls).items()} | given
    argv = list(command)
    for f in dataclasses.fields(cls):
        if f.name in values:
            flag = [] if f.metadata.get("positional") else [option_specs(cls)[f.name].flag]
            argv += flag + values[f.name]
    return argv


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _as_text(spec: OptionSpec, meta, value) -> list[str] | None:
    """The tokens that give ``value`` on the command line (None: it cannot be written)."""
    if value is None:
        return [spec.nothing] if spec.nothing is not None else None
    if spec.sequence is None:
        return [str(value)]
    if not value:
        return [spec.nothing] if spec.nothing is not None else (
            [] if meta.get("nargs") == "*" else None)
    if meta.get("repeat"):
        return None  # a repeated option's default is the empty list (checked below)
    items = [str(v) for v in value]
    return [",".join(items)] if spec.one_token else items


@pytest.mark.parametrize("command", list(COMMAND_OPTIONS | TRAIN_RUN), ids=" ".join)
def test_every_command_option_has_help_a_typed_default_and_parses_its_default(command):
    cls = (COMMAND_OPTIONS | TRAIN_RUN)[command]
    parser = build_parser(command[0], command[1] if len(command) > 1 else None)
    plain = vars(parser.parse_args(_argv(command, cls)))
    for f in dataclasses.fields(cls):
        spec, meta = option_specs(cls)[f.name], f.metadata
        assert meta.get("help", "").strip(), f"{f.name} has no help"
        if f.name in _required(cls):
            continue
        default = _default(f)
        # the default is of the field's type and inside its range and choices
        assert _same_typed(convert_value(spec, default), default), (f.name, default)
        assert _same_typed(plain[f.name], default), (f.name, plain[f.name], default)
        if spec.kind is bool and spec.sequence is None:
            assert default is False  # a switch: given means true
            assert vars(parser.parse_args(_argv(command, cls, **{f.name: []})))[f.name] is True
            continue
        if meta.get("repeat"):  # NAME=VALUE items, kept whole (not split at commas)
            got = parser.parse_args(_argv(command, cls) + [spec.flag, "a=1,2", spec.flag, "b=3"])
            assert getattr(got, f.name) == ["a=1,2", "b=3"], f.name
            continue
        tokens = _as_text(spec, meta, default)
        if tokens is not None:  # the default written out arrives as the default
            got = vars(parser.parse_args(_argv(command, cls, **{f.name: tokens})))[f.name]
            assert _same_typed(got, default), (f.name, tokens, got, default)


@pytest.mark.parametrize("command", list(COMMAND_OPTIONS | TRAIN_RUN), ids=" ".join)
def test_invalid_command_option_is_one_line_naming_the_flag(command, capsys):
    # every invalid value of every field (by its kind: see invalid_cases), parser built once
    cls = (COMMAND_OPTIONS | TRAIN_RUN)[command]
    parser = build_parser(command[0], command[1] if len(command) > 1 else None)
    for name, spec in option_specs(cls).items():
        if spec.kind is bool and spec.sequence is None:
            continue  # a switch takes no value
        for bad in invalid_cases(spec):
            with pytest.raises(SystemExit) as exit_info:
                parser.parse_args(_argv(command, cls, **{name: [bad]}))
            assert exit_info.value.code == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            flags = "/".join(spec.flags or [spec.flag])  # argparse names every alias
            assert f"argument {flags}: must be " in err and repr(bad) in err, err


def _base_help(text: str) -> str:
    return text.split(" (default:")[0]


def test_an_option_several_commands_share_is_declared_once():
    # --device, --seed, --batch-size, --quiet, --out, --no-ema, --amp, --workers, --data-root,
    # --seeds: the same spec (type, range, choices) and help in every command and trainer
    # that has it; only the default (and --out's words for it) may differ. (The trainers'
    # --batch-size and --out are other options: a training batch, a run folder.)
    from robustrep.tasks.common.options import COMMANDS, SHARED
    commands = {" ".join(c): cls for c, cls in COMMAND_OPTIONS.items()}
    for name, (_, base_help, _, _) in (SHARED | COMMANDS).items():
        having = {where: cls for where, cls in {**commands, **PROGRAMS}.items()
                  if name in option_specs(cls) and (name in SHARED or where in commands)}
        specs = {where: dataclasses.replace(option_specs(cls)[name], optional=False)
                 for where, cls in having.items()}  # a default None is the command's own
        assert len(set(specs.values())) <= 1, (name, specs)
        helps = {where: _base_help({f.name: f for f in dataclasses.fields(cls)}[name]
                                   .metadata["help"]) for where, cls in having.items()}
        assert set(helps.values()) <= {base_help}, (name, helps)


def test_a_model_from_elsewhere_has_the_trainers_ranges():
    from robustrep.tasks.common.options import ModelOptions
    for name, spec in option_specs(ModelOptions).items():
        trained = option_specs(ClassifyConfig).get(name)
        if trained is not None and name != "dataset":  # eval reads a subset of the datasets
            bounds = ("kind", "sequence", "min", "max", "min_exclusive", "max_exclusive")
            assert [getattr(spec, b) for b in bounds] == [getattr(trained, b) for b in bounds], \
                name


def _subparser(parser, *names):
    """The parser of ``robustrep NAMES...`` inside the top-level parser."""
    import argparse
    for name in names:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def test_the_trainers_run_flags_are_one_flag_in_both_programs(capsys, monkeypatch):
    # --preset, --config, --out/--run-dir, --resume [RUN], --stop-after, --dry-run, --download,
    # --quiet: one spec, the same argparse form and the shared help in gan train and classify
    # train; a program adds only its own words after the shared help (its presets, its default
    # run folder, what its resume may change).
    from robustrep.tasks.common.options import RESUME_OUT, TrainRunOptions
    shared = option_specs(TrainRunOptions)
    base = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainRunOptions)}
    monkeypatch.setenv("COLUMNS", "2000")  # --help on one line per flag: no hyphen breaks
    parsers = {c[0]: build_parser(*c) for c in TRAIN_RUN}
    forms = {}
    for command, cls in TRAIN_RUN.items():
        assert issubclass(cls, TrainRunOptions)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        actions = {a.dest: a for a in _subparser(parsers[command[0]], *command)._actions}
        for name, spec in shared.items():
            assert option_specs(cls)[name] == spec, (command, name)
            assert fields[name].metadata["help"].startswith(base[name]), (command, name)
            action = actions[name]
            forms.setdefault(name, []).append((action.option_strings, action.nargs,
                                               action.const, action.default, action.metavar))
    for name, (gan, classify) in forms.items():
        assert gan == classify, name
    assert forms["out"][0][0] == ["--out", "--run-dir"]
    for program, parser in parsers.items():
        alone = parser.parse_args([program, "train", "--resume", "--out", "R"])
        given = parser.parse_args([program, "train", "--resume", "R", "--stop-after", "3"])
        assert (alone.resume, alone.out) == (RESUME_OUT, "R")
        assert (given.resume, given.out, given.stop_after) == ("R", None, 3)
        with pytest.raises(SystemExit):  # a step count: step 0 is before any training
            parser.parse_args([program, "train", "--stop-after", "0"])
        assert "argument --stop-after: must be an integer in [1, 2147483647]; got '0'" in \
            capsys.readouterr().err
        with pytest.raises(SystemExit):
            main([program, "train", "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for name, help_text in base.items():
            assert " ".join(help_text.split()) in text, (program, name)


BIG = "an integer in [1, 2147483647]"  # an integer field's default bound (optionspec.INT_MAX)


@pytest.mark.parametrize("argv, flag, accepted, bad", [
    # Were: a C++ traceback from torch (the int converted exactly), a machine out of memory,
    # or a loop without end
    (["gan", "train"], "--z-dim", BIG, "1e23"),
    (["classify", "train"], "--image-size", BIG, "1e20"),
    (["classify", "train"], "--batch-size", BIG, "1e20"),
    (["gan", "train"], "--steps", BIG, "1e308"),
    (["gan", "train"], "--n-dis", BIG, "1e308"),
    (["gan", "train"], "--g-width", BIG, "2147483648"),
    (["gan", "train"], "--mixture-samples", "an integer in [1, 100000000]", "1e308"),
    (["gan", "train"], "--image-size", "an integer in [16, 16384]", "32768"),
    (["gan", "train"], "--mlp-depth", "an integer in [1, 1000]", "1001"),
    (["gan", "train"], "--mapping-layers", "an integer in [1, 1000]", "100000"),
    (["gan", "sample", "RUN"], "--num", BIG, "1e308"),
    (["classify", "eval", "RUN"], "--bins", "an integer in [1, 10000]", "100000000"),
])
def test_sizes_past_their_bound_are_one_line_before_any_work(argv, flag, accepted, bad, tmp_path,
                                                             capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = ["--out", "r"] if argv[1] == "train" else []
    with pytest.raises(SystemExit) as stop:
        main([*argv, *out, flag, bad])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert f"argument {flag}: must be {accepted}; got '{bad}'" in err
    assert not list(tmp_path.iterdir())  # no run folder, nothing written


def test_eval_samples_leave_precision_and_recall_their_neighbours(capsys):
    # Was: --eval-samples 3 accepted; the first evaluation raised (k=3 neighbours need 4 rows)
    with pytest.raises(SystemExit) as exit_info:
        main(["gan", "train", "--eval-samples", "3", "--dry-run"])
    assert exit_info.value.code == 2 and \
        "--eval-samples: must be an integer in [4, 2147483647]" in \
        capsys.readouterr().err
    assert _dry_run(capsys, "gan", "--eval-samples", "4")["eval_samples"] == 4


@pytest.mark.parametrize("program, given, saved", [
    ("gan", " ADAPTIVEMIX ", "adaptivemix"), ("gan", " DAT + Mixup ", "dat,mixup"),
    ("classify", "Mixup+PGD", "mixup,pgd"), ("classify", "NONE", "none"),
])
def test_reg_is_saved_as_the_registry_spells_it(program, given, saved, capsys):
    # Was: saved (and put in the default run-folder name) as typed
    assert _dry_run(capsys, program, "--reg", given)["reg"] == saved


@pytest.mark.parametrize("argv, words", [
    (["gan", "--reg", "dat", "--reg-options", '{"dat": {"input_range": [1, 0]}}'],
     "--reg dat: reg_options: dat's 'input_range' is set by this program"),
    (["gan", "--reg-options", '{"dat": {"bogus": 1}}'], "set options of dat, which --reg does"),
    (["gan", "--reg", "adaptivemix", "--reg-options", '{"adaptivemix": {"partner": "x"}}'],
     "partner must be one of"),
    (["classify", "--reg", "pgd", "--reg-options", '{"pgd": {"bogus": 1}}'],
     "regularizer 'pgd' takes no option(s) bogus"),
], ids=["gan-range", "gan-unlisted", "gan-choice", "classify-unknown"])
def test_dry_run_builds_the_regularizers(argv, words, capsys):
    # Was: exit 0 under --dry-run, exit 2 when the run built them
    program, *rest = argv
    assert main([program, "train", *rest, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["ood", "bench", "--seeds", "0-2", "5"],
                                  ["ood", "bench", "--seeds", "0-2,5"],
                                  ["gan", "sample", "RUN", "--seeds", "0-2,5"]])
def test_seeds_take_stylegan2_adas_ranges_in_every_command(argv):
    assert build_parser(argv[0]).parse_args(argv).seeds == [0, 1, 2, 5]


def test_a_range_item_is_read_only_where_the_option_takes_ranges():
    seeds = OptionSpec(name="seeds", kind=int, sequence=list, min=0, max=9, ranges=True)
    assert convert_value(seeds, "3-5,1") == [3, 4, 5, 1]
    assert convert_value(seeds, ["2-3", 7]) == [2, 3, 7]  # a config file's list
    for bad in ("5-3,1", "0-10", "1-2-3", "-1"):  # backwards, past the maximum, not a range
        with pytest.raises(OptionValueError, match=r"or ranges a-b \(0-7,12\) of at most "
                                                   r"1,000,000 values; got"):
            convert_value(seeds, bad)
    with pytest.raises(OptionValueError, match=r"each an integer >= 0 \(space- or "
                                               r"comma-separated\); got '0-2'"):
        convert_value(dataclasses.replace(seeds, ranges=False, max=None), "0-2")
