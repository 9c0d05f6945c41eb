import argparse
import dataclasses
import json
from typing import Optional

import pytest

from robustrep.tasks.common.config import (ConfigError, OptionValueError, add_config_args,
                                           convert_value, load_config_file, option,
                                           option_specs, overrides_from_args, resolve_config)
from robustrep.tasks.common.errors import UserError


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
    y: Optional[float] = option(None, "old-style optional", min=0, min_exclusive=True)  # noqa: UP007
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
    ("n", "abc", "an integer >= 1"), ("n", 0, "an integer >= 1"), ("n", 2.5, "an integer >= 1"),
    ("n", True, "an integer >= 1"), ("n", None, "an integer >= 1"),
    ("x", "nan", "a finite number in [0, 1)"), ("x", 1.0, "a finite number in [0, 1)"),
    ("x", float("-inf"), "a finite number in [0, 1)"), ("y", 0, "a finite number > 0"),
    ("flag", "maybe", "true or false"), ("flag", 2, "true or false"), ("mode", "c", "one of a, b"),
    ("mean", "0.5,abc", "a list of values, each a finite number"),
    ("pair", "1 2 3", "a list of 2 values, each an integer >= 0"),
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
    with pytest.raises(ConfigError, match=f"config file {path}: steps must be an integer; "
                                          "got 'twelve'"):
        resolve_config(Cfg, PRESETS, "a", path)


def test_list_flags_take_spaces_or_commas():
    parser = argparse.ArgumentParser()
    add_config_args(parser, Typed)
    assert parser.parse_args(["--mean", "0.5", "0.25,0.125"]).mean == [0.5, 0.25, 0.125]
    assert parser.parse_args(["--pair", "3,4"]).pair == (3, 4)
    assert parser.parse_args(["--x", "0.5"]).x == 0.5
