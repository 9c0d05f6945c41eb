"""Runs read back in one schema (run_records.read_run): a damaged file is one line naming it."""

import pytest

from robustrep.tasks.common import run_records
from robustrep.tasks.common.errors import RunFolderError


def test_a_damaged_config_json_is_not_called_a_folder_that_is_no_run(tmp_path):
    """`report` reads each run with read_run: a run folder whose config.json a disk error cut
    was "damaged (...); it is not a robustrep run folder; restore it ..."."""
    (tmp_path / "config.json").write_text('{"steps": 1')
    with pytest.raises(RunFolderError) as err:
        run_records.read_run(tmp_path)
    assert str(err.value) == (f"{tmp_path}/config.json is damaged (not JSON: Expecting ',' "
                              f"delimiter: line 1 column 12 (char 11)); restore it or run again "
                              f"into another folder")
    (tmp_path / "config.json").unlink()
    with pytest.raises(RunFolderError, match=r"config.json is missing; it is not a "
                                             r"robustrep run folder$"):
        run_records.read_run(tmp_path)
