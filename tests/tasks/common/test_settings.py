"""Settings of the programs that compare regularizers (tasks/common/settings.py): methods, then
options of that setting alone after '@'."""

import pytest

from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.common.settings import parse_opts, split_setting


def test_a_setting_splits_into_its_methods_and_its_own_options():
    assert split_setting("none") == ("none", {})
    assert split_setting("mixup+cutmix@mixup_alpha=0.8@cutmix-alpha=1") == (
        "mixup+cutmix", {"mixup_alpha": 0.8, "cutmix_alpha": 1})


def test_a_malformed_setting_names_the_flag_the_program_and_the_owner():
    with pytest.raises(ConfigError) as err:
        split_setting("mixup@foo", "--gan-regs", "gan")
    assert str(err.value) == (
        "--gan-regs 'mixup@foo': a setting is a gan --reg value (methods joined by '+'), each "
        "of its own gan options after an '@' as NAME=VALUE (e.g. adaptivemix@am_weight=2, "
        "mixup+cutmix@mixup_alpha=0.8); got '@foo'")
    with pytest.raises(ConfigError, match="^--classify-regs '@seed=1': a setting starts with"):
        split_setting("@seed=1", "--classify-regs")
    with pytest.raises(ConfigError) as err:
        split_setting("none@seed=1", "--classify-regs", own={"seed": "from --seeds"},
                      owner="report")
    assert str(err.value) == ("--classify-regs 'none@seed=1': seed=1: seed is the report's to "
                              "set for each run (from --seeds); drop it")
    with pytest.raises(ConfigError, match="^bad: x$"):
        parse_opts(["x"], "--train-opt", {}, "bench", lambda item: f"bad: {item}")


def test_a_key_given_twice_is_refused_and_a_folder_name_is_one_folder():
    from robustrep.tasks.common.settings import folder_name
    with pytest.raises(ConfigError, match="mixup_alpha is given twice; give it once$"):
        split_setting("mixup@mixup_alpha=0.8@mixup-alpha=0.5")  # the last had won, unsaid
    # a '/' had made folders, and '..' put the run outside --out
    assert folder_name("none@config=/tmp/../../x y.json") == "none_config-_tmp_.._.._x_y.json"
    assert folder_name("mixup,cutmix@mixup_alpha=0.8") == "mixup,cutmix_mixup_alpha-0.8"
