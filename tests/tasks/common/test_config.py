import argparse
import dataclasses
import json
import typing
from typing import Optional

import pytest

from robustrep.tasks.common import config as C
from robustrep.tasks.common.config import (ConfigError, OptionSpec, OptionValueError,
                                           convert_value, load_config_file, option, option_specs,
                                           overrides_from_args, resolve_config)
from robustrep.tasks.common.config_flags import add_config_args, arg_type, option_type
from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.optionspec import INT_MAX


@dataclasses.dataclass
class Cfg:
    preset: str = "a"
    steps: int = 10
    lr: float = 1e-3
    loss: str = dataclasses.field(default="ns", metadata={"choices": ("ns", "hinge")})
    amp: bool = False


PRESETS = {"a": {}, "b": {"steps": 99, "loss": "hinge"}}


def test_precedence_defaults_preset_file_flags(tmp_path):
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"lr": 0.5, "steps": 7}))
    cfg = resolve_config(Cfg, PRESETS, "b", cfg_file, {"steps": 3, "lr": None})
    assert (cfg.preset, cfg.steps, cfg.lr, cfg.loss) == ("b", 3, 0.5, "hinge")


def test_a_config_file_naming_its_preset_gets_it(tmp_path):
    # Was: the file's "preset" ignored (the default preset's options trained) and overwritten
    # in the saved config by the default's name
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"preset": "b", "lr": 0.5}))
    cfg = resolve_config(Cfg, PRESETS, None, path, default_preset="a")
    assert (cfg.preset, cfg.steps, cfg.loss, cfg.lr) == ("b", 99, "hinge", 0.5)
    assert resolve_config(Cfg, PRESETS, "b", path).preset == "b"  # the same one: fine
    with pytest.raises(ConfigError, match="names preset 'b' but --preset is 'a'"):
        resolve_config(Cfg, PRESETS, "a", path)
    path.write_text(json.dumps({"preset": "zzz"}))
    with pytest.raises(ConfigError, match=r"names preset 'zzz', which is not one of .*: a, b"):
        resolve_config(Cfg, PRESETS, None, path)
    assert resolve_config(Cfg, PRESETS, None, default_preset="b").steps == 99


def test_unknown_preset_lists_valid():
    with pytest.raises(ConfigError, match="valid presets: a, b"):
        resolve_config(Cfg, PRESETS, "zzz")


def test_unknown_option_in_file_names_the_closest(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"stepz": 1}))
    with pytest.raises(ConfigError, match=f"unknown option\\(s\\) stepz in config file {path}; "
                                          f"did you mean 'steps'\\?$"):
        resolve_config(Cfg, PRESETS, "a", path)
    path.write_text(json.dumps({"qqqqqq": 1}))
    with pytest.raises(ConfigError, match="none of the .* options is close"):
        resolve_config(Cfg, PRESETS, "a", path)


@pytest.mark.parametrize("name, text", [
    ("c.json", '{"steps": 1, "steps": 5}'),
    ("c.yaml", "steps: 1\nsteps: 5\n"),
])
def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"config file {path}: option 'steps' is given twice"):
        resolve_config(Cfg, PRESETS, "a", path)


@pytest.mark.parametrize("text, problem", [
    # YAML 1.1 (PyYAML) reads these as other numbers than YAML 1.2 and the command line do
    ("steps: 010\n", r"'010' \(line 1\) is 8 to YAML 1.1 \(octal, as PyYAML reads it\)"),
    ("steps: 1:30\n", r"'1:30' \(line 1\) is 90 to YAML 1.1 \(base 60, as PyYAML reads it\)"),
    ("lr: 1:30.5\n", r"'1:30.5' \(line 1\) is 90.5 to YAML 1.1 \(base 60"),
    # keys that name no option: a traceback before
    ("1: 2\n", r"1 is no option name \(a key of int\)"),
    ("null: 3\n", r"None is no option name \(a key of NoneType\)"),
    ("[1, 2]: 3\n", r"a list as a key \(mapping at line 1\) is no option name"),
])
def test_a_yaml_value_read_otherwise_than_written_is_refused(tmp_path, text, problem):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^config file {path}: {problem}"):
        resolve_config(Cfg, PRESETS, "a", path)


def test_yaml_numbers_read_alike_in_every_version_are_taken(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 0\nlr: 0.5\n")
    assert (resolve_config(Cfg, PRESETS, "a", path).steps,
            resolve_config(Cfg, PRESETS, "a", path).lr) == (0, 0.5)


def test_a_large_integer_from_a_file_is_kept_exactly():
    spec = dataclasses.replace(C.option_specs(Cfg)["steps"], max=None)  # a field stating no max
    assert C.convert_value(spec, 12345678901234567891) == 12345678901234567891


def test_an_integer_field_without_a_max_takes_at_most_int_max():
    # --z-dim 1e23 was converted exactly and then overflowed inside torch (a C++ traceback)
    spec = C.option_specs(Cfg)["steps"]
    assert C.convert_value(spec, "2147483647") == INT_MAX == 2**31 - 1
    for big in ("2147483648", "1e23", 10**20):
        with pytest.raises(OptionValueError, match=r"^must be an integer <= 2147483647; got "):
            C.convert_value(spec, big)
    assert C.option_specs(Typed)["x"].max == 1  # a float keeps its own (none: none)
    assert C.option_specs(Cfg)["lr"].max is None


def test_bad_choice_in_preset_is_rejected():
    with pytest.raises(ConfigError, match="loss must be one of ns, hinge"):
        resolve_config(Cfg, {"x": {"loss": "bce"}}, "x")


def test_flags_default_to_none_and_parse_types():
    parser = argparse.ArgumentParser()
    add_config_args(parser, Cfg)
    args = parser.parse_args(["--steps", "5", "--amp", "true"])
    assert overrides_from_args(Cfg, args) == {"steps": 5, "amp": True}
    with pytest.raises(SystemExit):
        parser.parse_args(["--loss", "bce"])


def test_missing_config_file_names_path(tmp_path):
    with pytest.raises(ConfigError, match="nope.json does not exist"):
        resolve_config(Cfg, PRESETS, "a", tmp_path / "nope.json")


def test_boolean_options_are_switches():
    parser = argparse.ArgumentParser()
    add_config_args(parser, Cfg)
    assert parser.parse_args(["--amp"]).amp is True
    assert parser.parse_args(["--amp", "false"]).amp is False
    assert parser.parse_args([]).amp is None


def test_merge_for_resume_allows_only_resumable_changes():
    from robustrep.tasks.common.config import merge_for_resume
    saved = {"steps": 10, "lr": 0.1}
    assert merge_for_resume(saved, {"steps": 20, "lr": 0.1}, ("steps",), "RUN") == \
        {"steps": 20, "lr": 0.1}
    with pytest.raises(ConfigError, match="cannot change lr when resuming RUN.*may change: steps"):
        merge_for_resume(saved, {"lr": 0.5}, ("steps",), "RUN")


# --- the typed-options layer -------------------------------------------------------------------


@dataclasses.dataclass
class Typed:
    n: int = option(1, "an int", min=1)
    x: float | None = option(None, "a ratio", min=0, max=1, max_exclusive=True)
    y: Optional[float] = option(None, "old-style optional",  # noqa: UP007
                                min=0, min_exclusive=True)
    flag: bool = option(False, "a switch")
    mode: str | None = option(None, "a choice", ("a", "b"))
    mean: list[float] | None = option(None, "per channel")
    pair: tuple[int, int] = option((1, 2), "two ints", min=0)


def test_specs_unwrap_both_union_spellings():
    specs = option_specs(Typed)
    assert (specs["x"].kind, specs["x"].optional) == (float, True)
    assert (specs["y"].kind, specs["y"].optional) == (float, True)
    assert (specs["mean"].sequence, specs["mean"].kind) == (list, float)
    assert (specs["pair"].sequence, specs["pair"].length) == (tuple, 2)


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("n", "3", 3), ("n", 3.0, 3), ("n", "1e3", 1000), ("x", "0.5", 0.5), ("x", 0, 0.0),
    ("x", None, None), ("y", "1e-3", 1e-3), ("flag", "yes", True), ("flag", "OFF", False),
    ("flag", True, True), ("mode", "b", "b"), ("mean", "0.5,0.25", [0.5, 0.25]),
    ("mean", [0.5, "0.25"], [0.5, 0.25]), ("mean", 0.5, [0.5]), ("pair", "3 4", (3, 4)),
])
def test_convert_value_types(name, raw, expected):
    got = convert_value(option_specs(Typed)[name], raw)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("name", "raw", "accepted"), [
    ("n", "abc", "an integer in [1, 2147483647]"), ("n", 0, "an integer in [1, 2147483647]"),
    ("n", 2.5, "an integer in [1, 2147483647]"), ("n", True, "an integer in [1, 2147483647]"),
    ("n", None, "an integer in [1, 2147483647]"), ("n", 2**31, "an integer in [1, 2147483647]"),
    ("x", "nan", "a finite number in [0, 1)"), ("x", 1.0, "a finite number in [0, 1)"),
    ("x", float("-inf"), "a finite number in [0, 1)"), ("y", 0, "a finite number > 0"),
    ("flag", "maybe", "true or false"), ("flag", 2, "true or false"), ("mode", "c", "one of a, b"),
    ("mean", "0.5,abc", "a list of values, each a finite number"),
    ("pair", "1 2 3", "a list of 2 values, each an integer in [0, 2147483647]"),
])
def test_convert_value_rejects_with_what_is_accepted(name, raw, accepted):
    with pytest.raises(OptionValueError) as info:
        convert_value(option_specs(Typed)[name], raw)
    assert str(info.value).startswith(f"must be {accepted}")
    assert str(info.value).endswith(f"; got {raw!r}")


def test_config_error_is_a_user_error_and_a_value_error():
    assert issubclass(ConfigError, UserError) and issubclass(ConfigError, ValueError)


def test_option_rejects_unknown_bound_names():
    with pytest.raises(TypeError, match="minimum"):
        option(1, "x", minimum=0)


@pytest.mark.parametrize(("name", "text", "where"), [
    ("c.json", '{"steps": 1,\n "lr": }', "line 2, column 8: JSON syntax error"),
    ("c.yaml", "steps: 1\nlr: [0.1\n", "line 3, column 1: YAML syntax error"),
    ("c.yaml", "- 1\n- 2\n", "must hold a mapping"),
])
def test_config_file_errors_are_one_line_with_the_place(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert str(path) in str(info.value) and where in str(info.value)
    assert "\n" not in str(info.value)


def test_config_file_values_are_converted_and_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: '12'\nlr: 1e-2\n")  # YAML reads 1e-2 as text
    cfg = resolve_config(Cfg, PRESETS, "a", path)
    assert (cfg.steps, cfg.lr) == (12, 0.01)
    path.write_text("steps: twelve\n")
    with pytest.raises(ConfigError, match=f"config file {path}: steps must be an integer <= "
                                          "2147483647; got 'twelve'"):
        resolve_config(Cfg, PRESETS, "a", path)


def test_list_flags_take_spaces_or_commas():
    parser = argparse.ArgumentParser()
    add_config_args(parser, Typed)
    assert parser.parse_args(["--mean", "0.5", "0.25,0.125"]).mean == [0.5, 0.25, 0.125]
    assert parser.parse_args(["--pair", "3,4"]).pair == (3, 4)
    assert parser.parse_args(["--x", "0.5"]).x == 0.5


# --- what each piece must compute: accepted values, boundaries, messages --------------------------


def _spec(kind=float, **kw):
    return OptionSpec(name="opt_name", kind=kind, **kw)


def test_parse_literal_reads_python_literals_else_text():
    assert C.parse_literal("3") == 3 and C.parse_literal("[1, 2]") == [1, 2]
    assert C.parse_literal("True") is True
    assert C.parse_literal("abc") == "abc" and C.parse_literal("1 +") == "1 +"


def test_the_flag_is_the_name_with_dashes_unless_flags_are_given():
    assert _spec().flag == "--opt-name"
    assert _spec(flags=("--num", "-n")).flag == "--num"


@pytest.mark.parametrize("kw, accepted", [
    (dict(kind=dict), 'a mapping, e.g. {"toy": {"weight": 0.5}} (JSON on the command line)'),
    (dict(kind=str, choices=("a", 1), nothing="none"), "one of a, 1, or none"),
    (dict(kind=bool), "true or false"), (dict(kind=str), "a non-empty string"),
    (dict(kind=int), "an integer"), (dict(finite=False), "a number"),
    (dict(min=0, max=1.5), "a finite number in [0, 1.5]"),
    (dict(min=0, max=1, min_exclusive=True, max_exclusive=True), "a finite number in (0, 1)"),
    (dict(min=2.0), "a finite number >= 2"),
    (dict(min=0, min_exclusive=True), "a finite number > 0"),
    (dict(max=1), "a finite number <= 1"), (dict(max=1, max_exclusive=True), "a finite number < 1"),
    (dict(kind=int, sequence=list),
     "a list of values, each an integer (space- or comma-separated)"),
    (dict(kind=int, sequence=tuple, length=2, min=0),
     "a list of 2 values, each an integer >= 0 (space- or comma-separated)"),
    (dict(kind=int, sequence=list, one_token=True, nothing="all"),
     "a list of values, each an integer (comma-separated), or all"),
    (dict(kind=str, sequence=list, split=False), "a list of values, each a non-empty string"),
])
def test_accepted_says_what_is_accepted(kw, accepted):
    assert _spec(**kw).accepted() == accepted


@dataclasses.dataclass
class Shapes:
    mapping: dict | None = None
    ints: tuple[int, ...] = (1,)
    rep: list[str] = option([], "repeated", repeat=True)
    star: list[int] = option([], "may be empty", nargs="*")
    token: list[int] | None = option(None, "one token", nargs=None, nothing="all", flags=["--tok"])


def test_fields_become_specs_with_their_cli_metadata():
    s = option_specs(Shapes)
    assert (s["mapping"].kind, s["mapping"].optional) == (dict, True)
    assert (s["ints"].sequence, s["ints"].length, s["ints"].kind) == (tuple, None, int)
    rep, star, token = s["rep"], s["star"], s["token"]
    assert (rep.allow_empty, rep.split, rep.one_token) == (True, False, False)
    assert (star.allow_empty, star.split, star.one_token) == (True, True, False)
    assert (token.allow_empty, token.one_token, token.nothing, token.flags) == (
        True, True, "all", ("--tok",))
    assert option_specs(Typed)["n"].allow_empty is False
    assert (option_specs(Typed)["x"].min, option_specs(Typed)["x"].max_exclusive) == (0, True)
    assert option_specs(Typed)["flag"].finite is True


def test_unsupported_field_types_are_named():
    @dataclasses.dataclass
    class Two:
        both: typing.Union[int, str] = 1  # noqa: UP007

    @dataclasses.dataclass
    class Obj:
        thing: object = None
    with pytest.raises(TypeError, match="one type or one type | None"):
        option_specs(Two)
    with pytest.raises(TypeError, match="^option thing: unsupported type"):
        option_specs(Obj)


def test_option_builds_fields_with_fresh_list_defaults_and_required_ones():
    @dataclasses.dataclass
    class D:
        need: int = option(C.REQUIRED, "needed")
        xs: list[int] = option([1], "xs", ("a", "b"), min=0)
    a, b = D(need=1), D(need=2)
    a.xs.append(2)
    assert b.xs == [1]
    with pytest.raises(TypeError):
        D()
    meta = dataclasses.fields(D)[1].metadata
    assert dict(meta) == {"help": "xs", "min": 0, "choices": ("a", "b")}
    with pytest.raises(TypeError) as err:
        option(1, "x", mininum=0, zz=1)
    assert str(err.value) == ("option(): unknown keyword(s) mininum, zz; valid: min, max, "
                              "min_exclusive, max_exclusive, finite, flags, positional, nargs, "
                              "repeat, nothing, metavar, group, bare, ranges, check")


@pytest.mark.parametrize("spec, raw, want", [
    (_spec(bool), 1, True), (_spec(bool), 0, False), (_spec(bool), " Yes ", True),
    (_spec(bool), "on", True), (_spec(bool), "no", False), (_spec(bool), "0", False),
    (_spec(str, choices=("on", "off")), False, "off"), (_spec(str), 3, "3"),
    (_spec(str), 0.5, "0.5"),
    (_spec(int), " 7 ", 7), (_spec(int), "1e5", 100000), (_spec(int), 2.0, 2),
    (_spec(float), " 2.5 ", 2.5), (_spec(float), 3, 3.0),
    (_spec(float), "8/255", 8 / 255), (_spec(float, max=1), " 1/2 ", 0.5),  # radii as written
    (_spec(float, finite=False), "inf", float("inf")),
    (_spec(float, min=0), 0, 0.0), (_spec(float, max=1), 1, 1.0),
    (_spec(int, min=1, min_exclusive=True), 2, 2), (_spec(int, max=3, max_exclusive=True), 2, 2),
    (_spec(float, choices=(0.5, 1.0)), "0.5", 0.5),
    (_spec(str, nothing="none", optional=True), " none ", None),
    (_spec(int, sequence=list, nothing="none", allow_empty=True), "none", []),
    (_spec(str, sequence=list, split=False), ("a=1,2", "b"), ["a=1,2", "b"]),
    (_spec(int, sequence=list), ["1, 2", 3], [1, 2, 3]),
    (_spec(int, sequence=list, allow_empty=True), "", []),
    (_spec(dict), '{"a": {"w": 1}}', {"a": {"w": 1}}),
])
def test_scalar_and_list_conversion(spec, raw, want):
    got = convert_value(spec, raw)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("spec, raw", [
    (_spec(bool), "2"), (_spec(bool), 0.0), (_spec(str), True), (_spec(str, choices=("a",)), False),
    (_spec(str), None), (_spec(str), [1]), (_spec(int), "inf"), (_spec(int), float("nan")),
    (_spec(int), "1.5"), (_spec(float), True), (_spec(float), [1.0]), (_spec(float), "abc"),
    (_spec(float), "8/0"), (_spec(float), "8/"), (_spec(float), "1/2/3"), (_spec(int), "8/2"),
    (_spec(float, max=1), "300/255"),
    (_spec(float, min=0, min_exclusive=True), 0), (_spec(float, min=0), -1e-9),
    (_spec(float, max=1, max_exclusive=True), 1), (_spec(float, max=1), 1.0000001),
    (_spec(float), float("inf")), (_spec(int, choices=(1, 2)), 3),
    (_spec(int, sequence=list), ""), (_spec(int, sequence=tuple, length=2), [1]),
    (_spec(int, sequence=list), "1,x"), (_spec(int, sequence=list, min=2), "3,1"),
    (_spec(dict), "{bad json"), (_spec(dict), '{"a": 1}'), (_spec(dict), "[1]"),
    (_spec(dict), {1: {}}),
])
def test_conversion_refuses_with_the_whole_value(spec, raw):
    with pytest.raises(OptionValueError) as err:
        convert_value(spec, raw)
    assert str(err.value) == f"must be {spec.accepted()}; got {raw!r}"


def test_mappings_are_copied():
    inner = {"w": 1}
    out = convert_value(_spec(dict), {"toy": inner})
    out["toy"]["w"] = 2
    assert inner == {"w": 1}


def test_check_fields_converts_in_place_and_names_the_field():
    cfg = Typed(n="4", mean="0.5,0.25")
    C.check_fields(cfg)
    assert (cfg.n, cfg.mean) == (4, [0.5, 0.25])
    with pytest.raises(ConfigError) as err:
        C.check_fields(Typed(n=0))
    assert str(err.value) == "n must be an integer in [1, 2147483647]; got 0"


def test_arg_type_converts_one_token_and_names_what_is_accepted():
    t = arg_type(option_specs(Shapes)["token"])
    assert t("all") == [] and t("1,2") == [1, 2] and t.__name__ == "int"
    with pytest.raises(argparse.ArgumentTypeError) as err:
        t("1,x")
    assert str(err.value) == ("must be a list of values, each an integer <= 2147483647 "
                              "(comma-separated), or all; got '1,x'")
    assert arg_type(option_specs(Typed)["mean"])("0.5,0.25") == [0.5, 0.25]
    assert arg_type(option_specs(Typed)["x"])("0.5") == 0.5
    none_word = arg_type(_spec(float, optional=True, nothing="off", min=0))
    assert none_word(" off ") is None
    with pytest.raises(argparse.ArgumentTypeError, match="got '-1'"):
        none_word("-1")


def test_option_type_is_a_checked_plain_type():
    t = option_type(int, min=1)
    assert t(" 3 ") == 3 and t.__name__ == "int"
    with pytest.raises(argparse.ArgumentTypeError) as err:
        t("0")
    assert str(err.value) == "must be an integer >= 1; got '0'"


@dataclasses.dataclass
class Cmd:
    path: str = option(C.REQUIRED, "input", positional=True)
    other: int = option(C.REQUIRED, "other")
    out: str | None = option(None, "output path", positional=True, metavar="OUT")
    am_alpha: float = option(1.0, "alpha")
    am_beta: float | None = option(None, "beta (core: 0.5)")
    seed: int = option(0, "seed; default: random")
    quiet: bool = option(False, "quiet", group="Output")
    tags: list[str] = option([], "tags", repeat=True)
    ids: list[int] | None = option(None, "ids", nargs=None)
    mean: list[float] = option([0.5], "mean")
    extra: dict | None = option(None, "extra")
    kind: str = option("a", "kind", ("a", "b"))


def _actions(parser):
    return {a.dest: a for a in parser._actions}


def test_trainer_flags_default_to_none_and_state_the_default_once():
    p = argparse.ArgumentParser()
    add_config_args(p, Cmd, skip=("path", "out", "other"), groups={"am_": "AdaptiveMix"})
    a = _actions(p)
    assert "path" not in a and a["am_alpha"].default is None
    assert a["am_alpha"].help == "alpha (default: 1.0)"
    assert a["am_beta"].help == "beta (core: 0.5)"  # None stands for the core's value
    assert a["seed"].help == "seed; default: random"
    titles = {g.title: [x.dest for x in g._group_actions] for g in p._action_groups}
    assert titles["AdaptiveMix"] == ["am_alpha", "am_beta"]
    assert titles["Output"] == ["quiet"]
    assert "seed" in titles["options (override the preset)"]
    assert (a["quiet"].nargs, a["quiet"].const, a["quiet"].metavar) == ("?", True, "BOOL")
    assert (a["tags"].metavar, a["ids"].metavar, a["mean"].metavar) == ("NAME=VALUE", "INT,...",
                                                                        "FLOAT")
    assert (a["extra"].metavar, a["kind"].metavar) == ("JSON", "{a,b}")
    args = p.parse_args(["--tags", "a=1,2", "--tags", "b", "--ids", "1,2", "--mean", "1", "2,3",
                         "--extra", '{"t": {}}', "--kind", "b"])
    assert (args.tags, args.ids, args.mean, args.extra) == (["a=1,2", "b"], [1, 2],
                                                            [1.0, 2.0, 3.0], {"t": {}})
    assert p.parse_args([]).tags is None


def test_command_flags_take_real_defaults_positionals_and_switches():
    p = argparse.ArgumentParser()
    add_config_args(p, Cmd, real_defaults=True)
    a = _actions(p)
    assert a["am_alpha"].help == "alpha" and a["am_alpha"].default == 1.0
    assert a["other"].required and not a["am_alpha"].required
    assert a["path"].metavar == "PATH" and a["path"].nargs is None
    assert (a["out"].metavar, a["out"].nargs, a["out"].default) == ("OUT", "?", None)
    args = p.parse_args(["in.txt", "--quiet", "--other", "3"])
    assert (args.path, args.out, args.quiet, args.other, args.mean) == (
        "in.txt", None, True, 3, [0.5])
    assert p.parse_args(["in", "o", "--other", "1"]).quiet is False


def test_config_files_unreadable_or_of_another_kind_are_named(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=f"^config file {bad} cannot be read: "):
        load_config_file(bad)
    txt = tmp_path / "c.txt"
    txt.write_text("a: 1")
    with pytest.raises(ConfigError) as err:
        load_config_file(txt)
    assert str(err.value) == f"config file {txt} must end in .json, .yaml or .yml"
    with pytest.raises(ConfigError, match="is a folder"):
        load_config_file(tmp_path)  # a folder
    yml = tmp_path / "c.yml"
    yml.write_text("a: 1\nb:\n  c: 2\n  c: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config_file(yml)
    assert str(err.value) == (f"config file {yml}: option 'c' is given twice (mapping at line 3);"
                              f" keep one")
    yml.write_text("a: [1, {b: 2}]\n")
    assert load_config_file(yml) == {"a": [1, {"b": 2}]}
    js = tmp_path / "d.json"
    js.write_text("[1]")
    with pytest.raises(ConfigError, match="must hold a mapping of option names to values$"):
        load_config_file(js)


def test_each_source_is_named_in_its_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve_config(Cfg, {"x": {"steps": "many"}}, "x")
    assert str(err.value) == "preset 'x': steps must be an integer <= 2147483647; got 'many'"
    with pytest.raises(ConfigError, match=r"^unknown option\(s\) stepz in preset 'x'; did you"):
        resolve_config(Cfg, {"x": {"stepz": 1}}, "x")
    with pytest.raises(ConfigError) as err:
        resolve_config(Cfg, PRESETS, None, overrides={"steps": "many"})
    assert str(err.value) == "--steps must be an integer <= 2147483647; got 'many'"
    with pytest.raises(ConfigError, match=r"in the command line; did you mean 'steps'"):
        resolve_config(Cfg, PRESETS, None, overrides={"stepz": 1})
    with pytest.raises(ConfigError, match=r"none of the 5 options is close"):
        resolve_config(Cfg, PRESETS, None, overrides={"qqqqqq": 1})


def test_resolve_config_without_a_preset_keeps_the_defaults_and_checks_them():
    assert resolve_config(Cfg, PRESETS, None) == Cfg()
    assert resolve_config(Typed, {"p": {"n": "5"}}, "p").n == 5  # no preset field: not set

    @dataclasses.dataclass
    class BadDefault:
        n: int = option(0, "n", min=1)
    with pytest.raises(ConfigError, match=r"^n must be an integer in \[1, 2147483647\]; got 0$"):
        resolve_config(BadDefault, {}, None)  # the resolved config is checked as a whole


def test_generated_flags_merge_into_reg_options():
    @dataclasses.dataclass
    class R:
        reg_options: dict | None = None
        steps: int = 1
    args = argparse.Namespace(steps=None, reg_options={"a": {"x": 1}, "b": {"y": 2}},
                              **{"regopt__a__z": 3, "regopt__c__w_v": 4, "regopt__d__q": None})
    assert overrides_from_args(R, args) == {  # option by option: a's x stays beside z
        "reg_options": {"a": {"x": 1, "z": 3}, "b": {"y": 2}, "c": {"w_v": 4}}}
    assert overrides_from_args(R, argparse.Namespace(steps=2, regopt__a__z=None)) == {"steps": 2}


def test_reg_options_merge_option_by_option_across_preset_file_and_flags(tmp_path):
    """A flag sets one option of a method; the file's other options of it stay (defaults <
    preset < config file < flags, per option)."""
    @dataclasses.dataclass
    class R:
        reg_options: dict | None = None
        preset: str = "p"
    presets = {"p": {"reg_options": {"a": {"x": 0, "y": 0}}}}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"reg_options": {"a": {"y": 1}, "b": {"w": 2}}}))
    cfg = resolve_config(R, presets, "p", path, {"reg_options": {"a": {"x": 3}}})
    assert cfg.reg_options == {"a": {"x": 3, "y": 1}, "b": {"w": 2}}

    @dataclasses.dataclass
    class NoReg:
        steps: int = 1
    assert overrides_from_args(NoReg, argparse.Namespace(steps=None, regopt__a__z=3)) == {}


def test_resume_message_names_each_fixed_option_and_flag():
    from robustrep.tasks.common.config import merge_for_resume
    saved = {"steps": 10, "lr_g": 0.1, "seed": 1, "amp": False}
    assert merge_for_resume(saved, {"lr_g": None, "seed": 1}, (), "R") == saved
    with pytest.raises(ConfigError) as err:
        merge_for_resume(saved, {"seed": 2, "lr_g": 0.2, "steps": 10}, ("steps", "amp"), "R")
    assert str(err.value) == ("cannot change lr_g, seed when resuming R: the saved config is kept, "
                              "and these options differ from it: lr_g, seed (--lr-g, --seed). "
                              "Options that may change: amp, steps")
    with pytest.raises(ConfigError, match=r"\(--reg-options or the --NAME-OPTION flags\)"):
        merge_for_resume({"reg_options": None}, {"reg_options": {"toy": {"weight": 0.9}}}, (), "R")


def test_a_saved_config_round_trips_and_names_its_source():
    cfg = Cfg(steps=3, loss="hinge")
    assert C.to_dict(cfg) == {"preset": "a", "steps": 3, "lr": 1e-3, "loss": "hinge",
                              "amp": False}
    assert C.from_dict(Cfg, {**C.to_dict(cfg), "steps": "4"}) == Cfg(steps=4, loss="hinge")
    with pytest.raises(ConfigError) as err:
        C.from_dict(Cfg, {"steps": "x"}, "run/config.json")
    assert str(err.value) == "run/config.json: steps must be an integer <= 2147483647; got 'x'"
    with pytest.raises(ConfigError, match=r"in the saved config; did you mean 'steps'"):
        C.from_dict(Cfg, {"stepz": 1})


def _fresh_specs(cls):
    """option_specs without its per-class cache (each call derives every spec again)."""
    hints = typing.get_type_hints(cls)
    return {f.name: C.spec_from_field(f, hints[f.name]) for f in dataclasses.fields(cls)}


def test_spec_from_field_reads_every_type_and_metadata_key():
    @dataclasses.dataclass
    class Every:
        plain: int = 1
        opt: float | None = option(None, "h", ("x",), min=-1, max=2, min_exclusive=True,
                                   max_exclusive=True, finite=False, nothing="none")
        old: Optional[str] = None  # noqa: UP007
        mapping: dict[str, dict] = dataclasses.field(default_factory=dict)
        bare_map: dict | None = None
        ints: tuple[int, ...] = (1,)
        pair: tuple[float, float] = (0.0, 1.0)
        rep: list[int] = option([], "r", repeat=True)
        star: list[int] = option([], "s", nargs="*")
        token: list[int] = option([1], "t", nargs=None, flags=["--tok", "-t"])
        plus: list[int] = option([1], "p", nargs="+")
    s = _fresh_specs(Every)
    assert s["plain"] == OptionSpec(name="plain", kind=int, max=INT_MAX)  # the default bound
    assert s["opt"] == OptionSpec(name="opt", kind=float, optional=True, choices=("x",), min=-1,
                                  max=2, min_exclusive=True, max_exclusive=True, finite=False,
                                  nothing="none", allow_empty=True)
    assert s["old"] == OptionSpec(name="old", kind=str, optional=True)
    assert s["mapping"] == OptionSpec(name="mapping", kind=dict)
    assert s["bare_map"] == OptionSpec(name="bare_map", kind=dict, optional=True)
    assert s["ints"] == OptionSpec(name="ints", kind=int, sequence=tuple, max=INT_MAX)
    assert s["pair"] == OptionSpec(name="pair", kind=float, sequence=tuple, length=2)
    assert s["rep"] == OptionSpec(name="rep", kind=int, sequence=list, allow_empty=True,
                                  split=False, max=INT_MAX)
    assert s["star"] == OptionSpec(name="star", kind=int, sequence=list, allow_empty=True,
                                   max=INT_MAX)
    assert s["token"] == OptionSpec(name="token", kind=int, sequence=list, one_token=True,
                                    flags=("--tok", "-t"), max=INT_MAX)
    assert s["plus"] == OptionSpec(name="plus", kind=int, sequence=list, max=INT_MAX)


def test_unsupported_unions_are_named_freshly():
    field = dataclasses.field(default=1)
    field.name = "both"
    with pytest.raises(TypeError) as err:
        C.spec_from_field(field, typing.Union[int, str, None])  # noqa: UP007
    assert str(err.value) == ("unsupported option type typing.Union[int, str, NoneType]: one type "
                              "or one type | None")
    with pytest.raises(TypeError, match="one type or one type"):
        C.spec_from_field(field, int | str)


def test_off_is_only_yaml_false_and_nothing_only_the_word():
    onoff = _spec(str, choices=("on", "off"))
    assert convert_value(onoff, "on") == "on" and convert_value(onoff, False) == "off"
    listed = _spec(int, sequence=list, nothing="all", allow_empty=True)
    assert convert_value(listed, [1, 2]) == [1, 2] and convert_value(listed, "all") == []


def test_a_choice_in_another_case_is_read_as_the_choice_is_spelt():
    # Was: `--norm linf` and `--threat-model l2` refused (argparse compares exactly)
    norm = _spec(str, choices=("Linf", "L2", "corruptions"))
    assert [convert_value(norm, v) for v in ("linf", "LINF", "l2", "Corruptions")] == [
        "Linf", "Linf", "L2", "corruptions"]
    with pytest.raises(OptionValueError, match="one of Linf, L2, corruptions"):
        convert_value(norm, "l1")
    # choices that differ only by case: another case names neither, and stays refused
    ambiguous = _spec(str, choices=("a", "A"))
    assert convert_value(ambiguous, "A") == "A"
    with pytest.raises(OptionValueError):
        convert_value(_spec(str, choices=("ab", "AB")), "Ab")


def test_a_config_file_and_the_command_line_both_read_another_case(tmp_path):
    from robustrep.tasks.classify.config import EvalOptions
    spec = option_specs(EvalOptions)
    assert convert_value(spec["norm"], "l2") == "L2"
    assert convert_value(spec["threat_model"], "linf") == "Linf"


def test_several_unknown_options_are_listed():
    with pytest.raises(ConfigError, match=r"^unknown option\(s\) a, b in x; none of the 5"):
        C.convert_values(Cfg, {"b": 1, "a": 2, "steps": 1}, lambda n: "x")


def test_argparse_details_of_each_kind():
    @dataclasses.dataclass
    class Kinds:
        count: int = option(1, "how many", flags=["--num"])
        plain: int = 3
        ratio: float | None = option(None, "a ratio")
        pair: tuple[int, int] = option((1, 2), "two")
        reps: list[int] = option([], "repeated", repeat=True)
        star: list[int] = option([1], "any", nargs="*")
        named: str = option("x", "named", metavar="NAME")
        src: str = option("in.txt", "source", positional=True, metavar="SRC")
    p = argparse.ArgumentParser()
    add_config_args(p, Kinds)
    a = _actions(p)
    assert a["count"].option_strings == ["--num"]
    assert a["plain"].help == "(default: 3)"
    assert a["ratio"].help == "a ratio (default: None)"
    assert a["named"].metavar == "NAME" and a["src"].metavar == "SRC"
    assert (a["src"].nargs, a["src"].default) == ("?", "in.txt")
    args = p.parse_args(["--num", "2", "--pair", "3", "4", "--reps", "5", "--reps", "6",
                         "--star"])
    assert (args.count, args.pair, args.reps, args.star, args.src) == (2, (3, 4), [5, 6], [],
                                                                        "in.txt")
    assert None not in [g.title for g in p._action_groups]
    q = argparse.ArgumentParser()
    add_config_args(q, Kinds, real_defaults=True)
    assert "options (override the preset)" not in [g.title for g in q._action_groups]


def test_generated_option_names_may_hold_double_underscores():
    @dataclasses.dataclass
    class R:
        reg_options: dict | None = None
    args = argparse.Namespace(reg_options=None, **{"regopt__a__w__v": 1})
    assert overrides_from_args(R, args) == {"reg_options": {"a": {"w__v": 1}}}


def test_config_file_syntax_errors_say_what_the_parser_found(tmp_path):
    import yaml
    path = tmp_path / "c.yaml"
    path.write_text("steps: 1\nlr: [0.1\n")
    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        problem = err.problem
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert str(err.value) == f"config file {path} line 3, column 1: YAML syntax error: {problem}"
    js = tmp_path / "c.json"
    js.write_text('{"steps": 1, "steps": 2}')
    with pytest.raises(ConfigError) as err:
        load_config_file(js)
    assert str(err.value) == f"config file {js}: option 'steps' is given twice; keep one"


def test_a_required_option_keeps_its_help():
    @dataclasses.dataclass
    class D:
        need: int = option(C.REQUIRED, "needed", min=1)
    assert dict(dataclasses.fields(D)[0].metadata) == {"help": "needed", "min": 1}


def test_a_yaml_error_without_a_position_is_still_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\x07\n")  # yaml's reader refuses control characters; no line/column
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert str(err.value) == (f"config file {path}: YAML syntax error: unacceptable character "
                              f"#x0007: special characters are not allowed")


@pytest.mark.parametrize("raw", ["1,,2", "1,2,", ",", " ,3", "1, ,2", ["1", " ", "2"], ["1,,2"]])
def test_an_empty_list_item_is_refused_not_dropped(raw):
    # Was: 1,,2 read as 1,2 (a seed the user meant to give, left out without a word)
    seeds = _spec(int, sequence=list, min=0, ranges=True)
    with pytest.raises(OptionValueError) as err:
        convert_value(seeds, raw)
    assert str(err.value) == f"must be {seeds.accepted()}; got {raw!r} (an empty item)"
    assert convert_value(seeds, "1, 2 ,3") == [1, 2, 3]  # spaces beside a comma are no item


def test_an_empty_list_item_is_one_line_from_flags_and_files(tmp_path, capsys):
    from robustrep.tasks.cli import main
    with pytest.raises(SystemExit) as stop:  # argparse's refusal
        main(["gan", "sample", "RUN", "--seeds", "1,,2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "argument --seeds:" in err and "got '1,,2' (an empty item)" in err
    assert len(err.splitlines()) == 1
    parser = argparse.ArgumentParser()
    add_config_args(parser, Typed)
    with pytest.raises(SystemExit):
        parser.parse_args(["--mean", "0.5", "0.25,"])
    assert "argument --mean: must be" in capsys.readouterr().err
    path = tmp_path / "c.yaml"
    path.write_text("mean: 0.5,,0.25\n")
    with pytest.raises(ConfigError, match=rf"^config file {path}: mean must be .*; got "
                                          r"'0.5,,0.25' \(an empty item\)$"):
        resolve_config(Typed, {}, None, path)


def test_an_option_a_higher_layer_turns_off_gives_way(tmp_path):
    @dataclasses.dataclass
    class Opt:
        loss: str = "ns"
        gp: Optional[float] = None  # acts with loss "wgan" only

    def unused(values):
        return {"--loss wgan": ["gp"]} if values["gp"] is not None and \
            values["loss"] != "wgan" else {}

    presets = {"w": {"loss": "wgan", "gp": 10.0}}
    assert resolve_config(Opt, presets, "w", None, {"loss": "ns"}, unused=unused).gp is None
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"loss": "hinge"}))  # the file over the preset
    assert resolve_config(Opt, presets, "w", path, unused=unused).gp is None
    path.write_text(json.dumps({"gp": 5.0}))  # the file's own option stays
    assert resolve_config(Opt, presets, "w", path, {"gp": None}, unused=unused).gp == 5.0
    kept = resolve_config(Opt, presets, "w", None, {"loss": "ns", "gp": 1.0}, unused=unused)
    assert kept.gp == 1.0  # given with the flag that turns it off: left for the check
    assert resolve_config(Opt, presets, "w", None, {"loss": "ns"}).gp == 10.0  # no hook
    path.write_text(json.dumps({"loss": "hinge"}))  # a preset's own contradiction is not hidden
    assert resolve_config(Opt, {"bad": {"gp": 3.0}}, "bad", path, unused=unused).gp == 3.0


def test_integer_ranges_expand_only_where_the_option_takes_them():
    # stylegan2-ada's --seeds 0-7 (both ends in); pinned here, not only through gan sample
    @dataclasses.dataclass
    class R:
        seeds: list[int] = option([0], "seeds", ranges=True, min=0, max=100)
        plain: list[int] = option([0], "no ranges")

    specs = option_specs(R)
    assert convert_value(specs["seeds"], "0-3,7") == [0, 1, 2, 3, 7]
    assert convert_value(specs["seeds"], ["2-4", 9, "5"]) == [2, 3, 4, 9, 5]
    assert convert_value(specs["seeds"], "6-6") == [6]
    assert arg_type(specs["seeds"])("1-2,5") == [1, 2, 5]
    for bad in ("5-3", "90-101", "0-x", "-1-3"):
        with pytest.raises(OptionValueError, match=r"or ranges a-b \(0-7,12\) of at most "
                                                   r"1,000,000 values; got"):
            convert_value(specs["seeds"], bad)
    wide = dataclasses.replace(specs["seeds"], max=None)
    with pytest.raises(OptionValueError, match="got '0-1000000'"):  # 1,000,001 values
        convert_value(wide, "0-1000000")
    with pytest.raises(OptionValueError, match="got '0-3'"):
        convert_value(specs["plain"], "0-3")
    assert "ranges" not in specs["plain"].accepted()


def test_a_fields_check_bare_value_and_empty_list_reach_the_command_line(capsys):
    def small(value):
        if value > 3:
            raise UserError(f"{value} is over 3")

    @dataclasses.dataclass
    class Cli:
        n: int = option(1, "n", check=small)
        resume: Optional[str] = option(None, "resume", bare="last")
        xs: list[float] = option([1.0], "xs", nothing="none")
        ids: list[int] = option([1], "ids", nargs=None)

    p = argparse.ArgumentParser()
    add_config_args(p, Cli, real_defaults=True)
    args = p.parse_args(["--n", "2", "--resume", "--xs", "none", "--ids", "3,4"])
    assert (args.n, args.resume, args.xs, args.ids) == (2, "last", [], [3, 4])
    assert p.parse_args(["--resume", "r1"]).resume == "r1"
    assert p.parse_args([]).resume is None
    for argv, words in ((["--n", "5"], "argument --n: 5 is over 3"),
                        (["--xs", ""], "argument --xs: must be a list of values, each a finite "
                                       "number (space- or comma-separated), or none; got an "
                                       "empty value (write none for no values)"),
                        (["--xs", "none", "2"], "argument --xs: none cannot be combined with "
                                                "other values; give none alone"),
                        (["--ids", "1", "2"], "unrecognized arguments: 2")):
        with pytest.raises(SystemExit):
            p.parse_args(argv)
        assert words in capsys.readouterr().err


@pytest.mark.parametrize("program", ["classify", "gan"])
def test_a_run_flag_in_a_config_file_is_named_as_a_flag(program, tmp_path, capsys):
    # was "unknown option(s) resume ...; did you mean 'preset'?"
    from robustrep.tasks.cli import main
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"resume": "runs/x", "stop_after": 3}))
    assert main([program, "train", "--config", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"config file {path}: resume is the command-line flag --resume of a run, not an option "
        f"a config file sets; give --resume on the command line")
