"""A path given where a dataset name is expected (``--ood f/hidden``): the refusal says which
prefix reads it."""

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.ood import datasets as ds

CTX = ds.DataContext(shape=(1, 16, 16), classes=[0, 1, 2])


@pytest.mark.parametrize("name, hint", [
    ("f/hidden", " (a folder: did you mean imagefolder:f/hidden?)"),
    ("set.zip", " (a dataset zip: did you mean imagefolder:set.zip?)"),
    ("list.txt", " (an image list: did you mean imagelist:ROOT:list.txt, ROOT the folder its "
                 "paths are relative to?)"),
    ("absent", ""),  # no such path: the names alone
    ("nothing.zip", ""),
])
def test_a_path_as_a_dataset_name_gets_its_prefix(name, hint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f" / "hidden").mkdir(parents=True)
    (tmp_path / "set.zip").write_bytes(b"")
    (tmp_path / "list.txt").write_text("a.png 0\n")
    want = f"unknown dataset {name!r}{hint}; valid names: digits, "
    for build in (lambda: ds.ood_dataset(name, CTX),  # --ood
                  lambda: ds.whole_id_dataset(name, CTX, train=False),  # --id
                  lambda: ds.id_dataset(name, CTX, train=True)):  # --fit-data
        with pytest.raises(ValueError) as err:
            build()
        assert str(err.value).startswith(want)


def test_a_folder_given_to_ood_is_answered_with_imagefolder(fake_run, tmp_path, monkeypatch,
                                                            capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f" / "hidden").mkdir(parents=True)
    assert main(["ood", "score", str(fake_run), "--ood", "f/hidden", "--detectors",
                 "MaxSoftmax", "--quiet", "--no-plots", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robustrep ood score: error: unknown dataset 'f/hidden' (a folder: did "
                          "you mean imagefolder:f/hidden?); valid names: ")
    assert err.count("\n") == 1
