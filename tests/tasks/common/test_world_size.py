"""world_size_from_env (tasks/common/distributed.py): torchrun's WORLD_SIZE, read in one place."""

import pytest

from robustrep.tasks.common.distributed import world_size_from_env
from robustrep.tasks.common.errors import UserError


def test_the_number_of_processes_is_torchruns_or_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_size_from_env() == 1
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert world_size_from_env() == 4


@pytest.mark.parametrize("value", ["abc", "", "0", "-2", "1.5"])
def test_a_bad_world_size_is_one_line_naming_the_variable(value, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", value)
    with pytest.raises(UserError) as info:
        world_size_from_env()
    assert str(info.value) == (f"WORLD_SIZE={value}: the number of processes (set by torchrun) "
                               f"must be a whole number >= 1; unset WORLD_SIZE or start the "
                               f"command with torchrun")


@pytest.mark.parametrize("argv", [
    # the dry run's epochs -> steps (classify's cli), the --download check (download.py)
    ["classify", "train", "--epochs", "1", "--dry-run"],
    ["gan", "train", "--dataset", "cifar10", "--data-root", "d", "--download", "--dry-run"],
])
def test_a_bad_world_size_stops_the_command_with_exit_2(argv, monkeypatch, tmp_path, capsys):
    # was: a ValueError traceback from int() (exit 1)
    from robustrep.tasks.cli import main
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "abc")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "WORLD_SIZE=abc: the number of processes" in err


@pytest.mark.parametrize("env, words", [
    ({"RANK": "x"}, "RANK=x: this process's rank (set by torchrun) must be a whole number >= 0"),
    ({"RANK": "-1"}, "RANK=-1: this process's rank"),
    ({"RANK": "2"}, "RANK=2 is not below WORLD_SIZE=2: torchrun numbers the processes 0 to "
                    "WORLD_SIZE - 1"),
    ({"RANK": "1", "LOCAL_RANK": "one"}, "LOCAL_RANK=one: this process's rank on its machine"),
])
def test_torchruns_other_variables_are_checked_before_the_process_group(env, words,
                                                                        monkeypatch):
    # were int() tracebacks; a rank >= WORLD_SIZE waited in init_process_group until timeout
    from robustrep.tasks.common.distributed import init_distributed
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        init_distributed("cpu")
