"""The plugins a process loaded go with the commands it starts in new processes: ``report`` and
``ood bench`` train what the parent accepted (tests/plugins/toy_regularizer.py, ``--reg toy``)."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.common import launch
from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.options import stopped_note
from robustrep.tasks.common.plugins import load_plugins, plugin_args, plugin_env

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "toy_regularizer.py"
TOY_DRY_RUN = ["classify", "train", "--reg", "toy", "--model", "test_resnet", "--dry-run"]


@pytest.fixture(autouse=True)
def _forgotten(plugins_forgotten):
    """Each test's plugins leave the process as it was."""


def test_a_file_plugin_is_passed_on_by_its_absolute_path_once(tmp_path, monkeypatch):
    shutil.copy(PLUGIN, tmp_path / "toy.py")
    monkeypatch.chdir(tmp_path)  # a child starts in another folder: a relative path is lost there
    assert load_plugins(["--plugin", "toy.py", "gan", "--plugin=toy.py", "train"]) == ["gan",
                                                                                        "train"]
    assert plugin_args() == ["--plugin", str(tmp_path / "toy.py")]
    assert launch.command(["gan", "train"]) == ["--plugin", str(tmp_path / "toy.py"), "gan",
                                                "train"]


def test_a_module_plugin_is_passed_on_by_its_name(tmp_path, monkeypatch):
    shutil.copy(PLUGIN, tmp_path / "toy_by_name.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_plugins(["--plugin", "toy_by_name"])
    assert plugin_args() == ["--plugin", "toy_by_name"]


def test_a_module_in_the_working_folder_is_found_as_python_m_finds_it(tmp_path, monkeypatch):
    """The console script has no working folder on sys.path; ``--plugin pkg.toy`` from the
    folder holding ``pkg/`` loads, and a child process (another folder) gets it on PYTHONPATH."""
    (tmp_path / "pkg_toy_here").mkdir()
    (tmp_path / "pkg_toy_here" / "__init__.py").write_text("")
    shutil.copy(PLUGIN, tmp_path / "pkg_toy_here" / "toy.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    load_plugins(["--plugin", "pkg_toy_here.toy"])
    assert plugin_args() == ["--plugin", "pkg_toy_here.toy"]
    # not PYTHONPATH: a checkout's robustrep/ in that folder would shadow the installed package
    env = plugin_env({"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"] == "/elsewhere" and env["ROBUSTREP_PLUGIN_PATH"] == str(tmp_path)
    with pytest.raises(UserError, match="^--plugin pkg_toy_here.nope: cannot import it: "
                                        "ModuleNotFoundError"):
        load_plugins(["--plugin", "pkg_toy_here.nope"])
    with pytest.raises(UserError, match="^--plugin no_such_top_pkg: cannot import it"):
        load_plugins(["--plugin", "no_such_top_pkg"])


def test_a_child_finds_the_parents_module_plugin_at_the_end_of_its_path(tmp_path, monkeypatch):
    """In the child (another folder), the parent's folder goes last on sys.path."""
    (tmp_path / "toy_in_parent_folder.py").write_text(PLUGIN.read_text())
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setattr("sys.path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    monkeypatch.setenv("ROBUSTREP_PLUGIN_PATH", str(tmp_path))
    load_plugins(["--plugin", "toy_in_parent_folder"])
    assert sys.path[-1] == str(tmp_path)


def test_a_module_found_in_the_working_folder_through_python_m_is_passed_on(tmp_path,
                                                                           monkeypatch):
    """Under ``python -m`` (torchrun too) the working folder is sys.path[0]: the import needs no
    fallback, yet a child starting in another folder needs the folder."""
    (tmp_path / "toy_via_dash_m.py").write_text(PLUGIN.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    load_plugins(["--plugin", "toy_via_dash_m"])
    assert plugin_env({})["ROBUSTREP_PLUGIN_PATH"] == str(tmp_path)


def test_the_resume_hint_names_the_plugins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    load_plugins(["--plugin", str(PLUGIN)])
    assert stopped_note("gan", 2, 4, "runs/my run") == (
        "stopped after step 2 of 4 (--stop-after), with a checkpoint; continue with: robustrep "
        f"gan train --resume 'runs/my run' --plugin {PLUGIN}")
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's: the same number of processes again
    assert stopped_note("gan", 2, 4, "r").endswith(f"--plugin {PLUGIN} under torchrun with 2 "
                                                   "processes, as this run")


def test_no_plugin_adds_nothing():
    assert launch.command(["ood", "score", "r"]) == ["ood", "score", "r"]


def test_report_plans_its_commands_with_the_plugin(tmp_path, capsys):
    assert main(["--plugin", str(PLUGIN), "report", "--gan-regs", "toy", "--classify-regs", "toy",
                 "--seeds", "0", "--quick", "--dry-run", "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(ln.startswith(f"robustrep --plugin {PLUGIN} ") for ln in lines), lines
    assert sum("--reg toy" in ln for ln in lines) == 2


def test_report_runs_its_commands_with_the_plugin(tmp_path, monkeypatch):
    seen = []

    class Started:  # what run_robustrep starts, recorded instead of run
        def __init__(self, cmd, **kwargs):
            seen.append(cmd)

        def wait(self):
            return 0

    monkeypatch.setattr(launch.subprocess, "Popen", Started)
    load_plugins(["--plugin", str(PLUGIN)])
    assert launch.run_robustrep(["gan", "train", "--reg", "toy"], tmp_path / "log.txt") == 0
    assert seen[0][3:] == ["--plugin", str(PLUGIN), "gan", "train", "--reg", "toy"]
    assert f"$ robustrep --plugin {PLUGIN} gan train" in (tmp_path / "log.txt").read_text()


@pytest.mark.subprocess
def test_a_child_process_accepts_the_parents_plugin_regularizer():
    code, _, err = launch.check_robustrep(TOY_DRY_RUN)
    assert code == 2 and "unknown regularizer 'toy'" in err, err
    load_plugins(["--plugin", str(PLUGIN)])
    code, out, err = launch.check_robustrep(TOY_DRY_RUN)
    assert code == 0 and json.loads(out), err
