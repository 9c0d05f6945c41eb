"""``--config`` with another trainer's config.json (``gan train --config CLASSIFY_RUN/config.json``)
is named as such in one line (tasks/common/config.py ``resolve_config``)."""

import contextlib
import dataclasses
import io
import json

import pytest

from robustrep.tasks.cli import main


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    """A config.json of each trainer, as ``--dry-run`` resolves it (a run's holds the same)."""
    folder = tmp_path_factory.mktemp("configs")
    paths = {}
    for program in ("gan", "classify"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main([program, "train", "--dry-run"]) == 0
        paths[program] = folder / f"{program}.json"
        paths[program].write_text(out.getvalue())
    return paths


@pytest.mark.parametrize("program, other", [("gan", "classify"), ("classify", "gan")])
def test_another_trainers_config_is_named_in_one_line(configs, program, other, capsys):
    """Was: "names preset 'digits-ood', which is not one of this program's", and without a
    preset a list of 41 unknown options."""
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.gan.config import GanConfig
    mine = {f.name for f in dataclasses.fields({"gan": GanConfig,
                                                "classify": ClassifyConfig}[program])}
    path = configs[other]
    first = ", ".join([k for k in json.loads(path.read_text()) if k not in mine][:3])
    for data in (None, {**json.loads(path.read_text()), "preset": None}):
        if data is not None:  # the same options, no preset: the list of unknowns
            path = path.with_name(f"{other}-nopreset.json")
            path.write_text(json.dumps(data))
        assert main([program, "train", "--config", str(path), "--dry-run"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"robustrep {program} train: error: config file {path} is the config of a "
                       f"`{other} train` run (its options {first}, ... are {other} train's): "
                       f"give it to `robustrep {other} train --config`; {program} train takes "
                       f"a config of its own options (listed by 'robustrep {program} train "
                       f"--help'), such as a {program} train run's config.json"]


def test_a_few_foreign_options_are_still_named_one_by_one(configs, tmp_path, capsys):
    """A small file with a classify option or two is a typo, not another program's file: the
    line names the option and its nearest match, as before."""
    path = tmp_path / "few.json"
    path.write_text(json.dumps({"lr": 1e-3, "steps": 5}))
    assert main(["gan", "train", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown option(s) lr" in err and "classify train" not in err
    assert main(["gan", "train", "--config", str(configs["gan"]), "--dry-run"]) == 0
