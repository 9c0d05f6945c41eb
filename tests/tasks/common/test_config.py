import argparse
import dataclasses
import json

import pytest

from robustrep.tasks.common.config import (ConfigError, add_config_args, overrides_from_args,
                                           resolve_config)


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


def test_unknown_option_in_file_lists_valid(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"stepz": 1}))
    with pytest.raises(ConfigError, match="unknown option.*stepz.*valid options: amp"):
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
