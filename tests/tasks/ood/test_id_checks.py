"""`ood score` checks the ID classes against the classifier's head and the fit data, and refuses
an OOD set that is the ID data, before any feature is extracted."""

import json

import pytest
from PIL import Image

from robustrep.tasks.cli import main
from robustrep.tasks.ood import score


def _folder(root, classes, per_class=3):
    for c in classes:
        (root / str(c)).mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (16, 16), 40 * c + 5 * i).save(root / str(c) / f"{i}.png")
    return root


def _extract(*args, **kwargs):
    raise AssertionError("features were extracted before the check")


@pytest.fixture
def no_extraction(monkeypatch):
    """Fail the test if any feature is extracted: the checks come first."""
    monkeypatch.setattr(score, "extract", _extract)


def _score(*argv):
    return main(["ood", "score", *argv, "--max-samples", "8", "--no-plots", "--quiet",
                 "--device", "cpu"])


def test_a_head_that_does_not_match_the_id_classes_is_refused(fake_run, tmp_path, capsys,
                                                              monkeypatch):
    # Was: a 3-output checkpoint scored against all ten digits (no --classes), or with
    # --classes naming fewer than it was trained on: exit 0, "ID test accuracy n/a", a table
    model = ["--model", "test_resnet", "--checkpoint", str(fake_run / "checkpoints" / "latest.pt"),
             "--image-size", "16", "--detectors", "MaxSoftmax,Mahalanobis", "--ood", "gaussian"]
    with monkeypatch.context() as patch:
        patch.setattr(score, "extract", _extract)  # refused before any extraction
        assert _score(*model, "--out", str(tmp_path / "a")) == 2
        err = capsys.readouterr().err
        assert err == ("robustrep ood score: error: the ID data digits holds classes 0, 1, 2, 3, "
                       "4, 5, 6, 7, 8, 9 but the classifier has 3 outputs (classes 0-2): classes "
                       "3, 4, 5, 6, 7, 8, 9 have none; name the classes it was trained on with "
                       "--classes, or give --id data of those classes\n")
        assert _score(*model, "--classes", "0", "1", "--out", str(tmp_path / "b")) == 2
        err = capsys.readouterr().err
        assert err.startswith("robustrep ood score: error: --classes 0 1 leaves the classifier's "
                              "output 2 without ID data (3 outputs)") and err.count("\n") == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert _score(*model, "--classes", "0", "1", "2", "--out", str(tmp_path / "c")) == 0
    assert json.loads((tmp_path / "c" / "results.json").read_text())["id_accuracy"] is not None


def test_fit_data_missing_an_id_class_is_refused_for_per_class_detectors(
        fake_run, tmp_path, capsys, monkeypatch):
    # Was: Mahalanobis fitted on digits 0-3 of a 0-4 run (pytorch-ood asserts only that the
    # labels it gets skip none) and flagged the ID digit 4 as OOD, exit 0
    fit = str(_folder(tmp_path / "fit01", [0, 1]))
    argv = [str(fake_run), "--ood", "gaussian", "--fit-data", f"imagefolder:{fit}"]
    with monkeypatch.context() as patch:
        patch.setattr(score, "extract", _extract)
        assert _score(*argv, "--detectors", "KNN,Mahalanobis") == 2
        assert capsys.readouterr().err == (
            f"robustrep ood score: error: --fit-data imagefolder:{fit} holds no image of ID class "
            f"2 (it holds 0, 1): Mahalanobis fits one model per class and would flag that class's "
            f"ID images as OOD; give fit data of every ID class (0, 1, 2)\n")
    # detectors that use the labels only to drop OOD samples fit on it as before
    assert _score(*argv, "--detectors", "KNN,ViM", "--param", "KNN.k=2", "--param",
                  "ViM.d=2") == 0  # ViM.d below the fit images' count (test_fit_counts.py)


def test_fit_data_of_classes_the_head_lacks_is_refused(fake_run, tmp_path, capsys,
                                                       no_extraction):
    config = json.loads((fake_run / "config.json").read_text())  # a run on all of its folder
    (fake_run / "config.json").write_text(json.dumps({**config, "classes": None,
                                                      "dataset": "imagefolder"}))
    ident, fit = _folder(tmp_path / "id", [0, 1, 2]), _folder(tmp_path / "fit", [0, 1, 2, 3])
    assert _score(str(fake_run), "--id", f"imagefolder:{ident}", "--fit-data",
                  f"imagefolder:{fit}", "--ood", "gaussian", "--detectors", "KNN") == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --fit-data imagefolder:{fit} holds classes 0, 1, 2, 3 but "
        f"the classifier has 3 outputs (classes 0-2); give fit data of the classes it was trained "
        f"on\n")


def test_every_per_class_detector_is_a_registered_one():
    from robustrep.tasks.ood.detectors import PER_CLASS, registry
    assert PER_CLASS <= set(registry())


@pytest.mark.parametrize("d", ["96", "5000"])
def test_vim_d_must_be_below_the_feature_size(fake_run, capsys, no_extraction, d):
    # Was: d = D failed after extraction; d > D was set to D // 2 by pytorch-ood while
    # results.json recorded the d given
    assert _score(str(fake_run), "--ood", "gaussian", "--detectors", "ViM", "--param",
                  f"ViM.d={d}") == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --param ViM.d={d}: ViM.d must be in 1..95 for this "
        f"classifier's 96-d features (it keeps d dimensions and scores the other D - d)\n")


def test_an_ood_set_that_is_the_id_data_is_refused(fake_run, tmp_path, capsys, monkeypatch):
    # Was: accepted, AUROC 50
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "idf", [0, 1, 2])
    _folder(tmp_path / "fit", [0, 1, 2])
    argv = [str(fake_run), "--detectors", "KNN", "--id", "imagefolder:idf"]
    assert _score(*argv, "--ood", "gaussian", "imagefolder:./idf/") == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: --ood imagefolder:./idf/ reads the in-distribution data (--id "
        "imagefolder:idf): ID images scored as OOD give an AUROC of about 50 that measures "
        "nothing; give OOD data that is not an ID set\n")
    assert _score(*argv, "--fit-data", "imagefolder:fit", "--ood", "imagefolder:fit") == 2
    assert "--ood imagefolder:fit reads the in-distribution data (--fit-data imagefolder:fit)" \
        in capsys.readouterr().err
    assert not (fake_run / "ood").exists()


@pytest.mark.parametrize("ood, role", [("idf/val", "test images are under {}/idf/val"),
                                       ("idf/train", "train images are under {}/idf/train"),
                                       ("idf/val/1", "test images are under {}/idf/val")])
def test_an_ood_folder_inside_the_id_folder_is_refused(fake_run, tmp_path, capsys, monkeypatch,
                                                       no_extraction, ood, role):
    # Was: --id imagefolder:idf (timm's train/ + val/ layout) with --ood imagefolder:idf/val
    # (the ID test images themselves), idf/train or a class folder of them: exit 0, a table
    monkeypatch.chdir(tmp_path)
    for split in ("train", "val"):
        _folder(tmp_path / "idf" / split, [0, 1, 2])
    assert _score(str(fake_run), "--detectors", "KNN", "--id", "imagefolder:idf", "--ood",
                  "gaussian", f"imagefolder:{ood}") == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --ood imagefolder:{ood} reads the in-distribution data (--id "
        f"imagefolder:idf, whose {role.format(tmp_path.resolve())}): ID images scored as OOD "
        f"give an AUROC of about 50 that measures nothing; give OOD data that is not an ID "
        f"set\n")


def test_an_ood_folder_holding_the_id_folder_is_refused(fake_run, tmp_path, capsys,
                                                        monkeypatch):
    # a class layout reads every image below its root: data/ holds data/id's images
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "data" / "id", [0, 1, 2])
    _folder(tmp_path / "data" / "other", [0])
    _folder(tmp_path / "apart", [0])
    argv = [str(fake_run), "--detectors", "MaxSoftmax", "--id", "imagefolder:data/id"]
    with monkeypatch.context() as patch:
        patch.setattr(score, "extract", _extract)  # refused before any extraction
        assert _score(*argv, "--ood", "imagefolder:data") == 2
    assert "--ood imagefolder:data reads the in-distribution data (--id imagefolder:data/id, " \
        "whose test images are under " in capsys.readouterr().err
    # a sibling folder and one elsewhere are scored
    assert _score(*argv, "--ood", "imagefolder:data/other", "imagefolder:apart", "--out",
                  str(tmp_path / "out")) == 0


def test_one_ood_set_written_two_ways_is_refused(fake_run, tmp_path, capsys, monkeypatch,
                                                 no_extraction):
    # Was: scored twice, two rows of one measurement (the same name twice is refused already)
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "far", [0])
    assert _score(str(fake_run), "--detectors", "MaxSoftmax", "--ood", "imagefolder:far",
                  "gaussian", "imagefolder:./far/") == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: --ood imagefolder:far and imagefolder:./far/ read the same "
        "data: it would be scored twice; give it once\n")
