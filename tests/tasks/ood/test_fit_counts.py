"""ViM fitted on no more images than its principal dimension ``d`` is refused before any feature
is extracted (tasks/ood/detector_params.py ``check_fit_counts``, called from score.py's
``score_model``, score_checks.py's ``check_options`` and ``check_model`` and score_sets.py's
``choose_fit_set``); Mahalanobis and RMD fitted on fewer images than the features need for a
full-rank covariance get a note (tasks/ood/checks.py ``covariance_note``). Was: 5 fit images of
96-d features, d = 48, AUROC 0.00 at exit 0."""

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.ood.detector_params import check_fit_counts
from robustrep.tasks.ood.detectors import parse_detectors

SCORE = ["--ood", "gaussian", "--max-samples", "8", "--no-plots", "--quiet", "--device", "cpu"]


class _Extracted(Exception):
    """Raised in place of the extraction: the call got past every check."""


def _no_extraction(monkeypatch):
    from robustrep.tasks.ood import score

    def extract(*args, **kwargs):
        raise _Extracted

    monkeypatch.setattr(score, "extract", extract)


def _no_data(monkeypatch):
    """Reading any ID data fails the test: the refusal must come before it."""
    from robustrep.tasks.ood import datasets

    def read(*args, **kwargs):
        raise AssertionError("the ID data was read before the refusal")

    monkeypatch.setattr(datasets, "whole_id_dataset", read)


@pytest.mark.parametrize("size, params, feature_dim, refused", [
    (48, {}, 96, True),  # the default d: half the features
    (49, {}, 96, False),
    (8, {"ViM": {"d": 8}}, None, True),  # a d given is checked without the feature size
    (9, {"ViM": {"d": 8}}, None, False),
    (3, {}, None, False),  # the default's feature size unknown yet: checked later
])
def test_vim_needs_more_fit_images_than_d(size, params, feature_dim, refused):
    specs = parse_detectors("ViM")
    if not refused:
        check_fit_counts(specs, params, size, "SOURCE", feature_dim=feature_dim)
        return
    with pytest.raises(ConfigError) as err:
        check_fit_counts(specs, params, size, "SOURCE", "MORE", feature_dim)
    head = ("--param ViM.d=8" if params else "ViM.d (default 48, half the 96-d features)")
    fix = "lower it to 7 or below" if params else "give --param ViM.d=47 or lower"
    assert str(err.value) == (
        f"{head}: ViM scores what lies outside the {8 if params else 48} principal directions "
        f"of its fit images' features, so it needs more fit images than ViM.d, and it is "
        f"fitted on SOURCE: N images span at most N directions, which leaves it nothing to "
        f"score; {fix}, or MORE")


def test_one_fit_image_leaves_vim_no_d():
    with pytest.raises(ConfigError, match="nothing to score; no ViM.d suits one image$"):
        check_fit_counts(parse_detectors("ViM"), {}, 1, "SOURCE", feature_dim=96)


def test_a_d_given_above_max_fit_is_refused_before_the_model_is_loaded(tmp_path, capsys):
    run = str(tmp_path / "no-run-needed")
    assert main(["ood", "score", run, "--detectors", "ViM", "--max-fit", "5", "--param",
                 "ViM.d=8"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: --param ViM.d=8: ViM scores what lies outside the 8 "
        "principal directions of its fit images' features, so it needs more fit images than "
        "ViM.d, and it is fitted on at most 5 (--max-fit 5): N images span at most N "
        "directions, which leaves it nothing to score; lower it to 4 or below, or raise "
        "--max-fit\n")


def test_max_fit_at_vims_default_d_is_refused_before_any_data_is_read(fake_run, tmp_path,
                                                                      monkeypatch, capsys):
    # the fake run's test_resnet has 96-d features: ViM's default d is 48, known once the
    # model is built; --max-fit 3 was accepted too
    _no_data(monkeypatch)
    for max_fit in (3, 48):
        assert main(["ood", "score", str(fake_run), "--detectors", "ViM", "--max-fit",
                     str(max_fit), "--out", str(tmp_path / "o"), *SCORE]) == 2
        assert capsys.readouterr().err == (
            f"robustrep ood score: error: ViM.d (default 48, half the 96-d features): ViM "
            f"scores what lies outside the 48 principal directions of its fit images' "
            f"features, so it needs more fit images than ViM.d, and it is fitted on at most "
            f"{max_fit} (--max-fit {max_fit}): N images span at most N directions, which leaves "
            f"it nothing to score; give --param ViM.d={max_fit - 1} or lower, or raise "
            f"--max-fit\n")
    assert not (tmp_path / "o").exists()


def test_max_fit_above_vims_default_d_gets_to_the_extraction(fake_run, tmp_path, monkeypatch):
    _no_extraction(monkeypatch)
    with pytest.raises(_Extracted):
        main(["ood", "score", str(fake_run), "--detectors", "ViM", "--max-fit", "49", "--out",
              str(tmp_path / "o"), *SCORE])


def test_score_run_hands_the_feature_size_it_checked_on(fake_run, tmp_path, monkeypatch):
    """D is read once, from two blank images before any data: score_model read it again from
    a real image (one more forward pass) and checked ViM's d and fit count a second time."""
    from robustrep.tasks.ood import score
    _no_extraction(monkeypatch)
    monkeypatch.setattr(score, "_feature_dim", lambda *args: pytest.fail("D read twice"))
    with pytest.raises(_Extracted):
        main(["ood", "score", str(fake_run), "--detectors", "ViM", "--max-fit", "49", "--out",
              str(tmp_path / "o"), *SCORE])


def _png_folder(folder, count):
    import numpy as np
    from PIL import Image
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (16, 16)).astype(np.uint8), "L").save(
            folder / f"{i}.png")
    return folder


def test_a_fit_folder_of_five_images_is_refused_before_extraction(fake_run, tmp_path,
                                                                  monkeypatch, capsys):
    # the tester's case: --fit-data of 5 images, 96-d features, d = 48: AUROC 0.00, exit 0
    fit = _png_folder(tmp_path / "fit", 5)
    _no_extraction(monkeypatch)
    assert main(["ood", "score", str(fake_run), "--detectors", "ViM", "--fit-data",
                 f"imagefolder:{fit}", "--out", str(tmp_path / "o"), *SCORE]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: ViM.d (default 48, half the 96-d features): ViM scores "
        f"what lies outside the 48 principal directions of its fit images' features, so it "
        f"needs more fit images than ViM.d, and it is fitted on 5 in --fit-data "
        f"imagefolder:{fit}: N images span at most N directions, which leaves it nothing to "
        f"score; give --param ViM.d=4 or lower, or fit on more images (--fit-data)\n")


def test_score_model_refuses_too_few_fit_images_before_extraction(tiny_classifier, tiny_data,
                                                                  monkeypatch):
    from robustrep.data import ImageTensorDataset
    from robustrep.tasks.ood import score
    from robustrep.tasks.ood.extract import as_ood_model
    fit, id_test, ood = tiny_data
    _no_extraction(monkeypatch)
    few = ImageTensorDataset(fit.images[:5], fit.targets[:5])
    with pytest.raises(ConfigError, match=r"fitted on 5 \(the fit set\): N images span"):
        score.score_model(as_ood_model(tiny_classifier), parse_detectors("ViM"), id_test, ood,
                          few, num_classes=3)


def test_vim_fitted_on_more_images_than_d_scores(tiny_classifier, tiny_data):
    from robustrep.tasks.ood.extract import as_ood_model
    from robustrep.tasks.ood.score import score_model
    fit, id_test, ood = tiny_data  # 60 fit images, 96-d features: d = 48
    result = score_model(as_ood_model(tiny_classifier), parse_detectors("ViM"), id_test, ood,
                         fit, num_classes=3)
    assert not result.detectors["ViM"].error


def test_mahalanobis_on_a_rank_deficient_covariance_gets_a_note(tiny_classifier, tiny_data):
    # 60 fit images of 3 classes: a shared covariance of rank at most 57 for 96-d features
    from robustrep.tasks.ood.extract import as_ood_model
    from robustrep.tasks.ood.score import score_model
    fit, id_test, ood = tiny_data
    result = score_model(as_ood_model(tiny_classifier), parse_detectors("Mahalanobis,RMD"),
                         id_test, ood, fit, num_classes=3)
    assert not any(r.error for r in result.detectors.values())  # scored: a note, no refusal
    assert result.notes == [
        "Mahalanobis and RMD fitted on 60 images of 3 classes: the shared class covariance has "
        "rank at most 57 (images - classes), below the 96-d features, and pytorch-ood's small "
        "ridge makes the directions the fit images do not span dominate the distances; fit on "
        "at least 99 images (--fit-data, --max-fit) for a full-rank covariance"]


def test_no_covariance_note_with_enough_fit_images():
    from robustrep.tasks.ood.checks import covariance_note
    specs = parse_detectors("Mahalanobis")
    labels = torch.arange(20) % 3
    assert covariance_note(specs, torch.randn(20, 17), labels) is None  # 20 - 3 = 17
    assert covariance_note(specs, torch.randn(20, 18), labels).startswith(
        "Mahalanobis fitted on 20 images of 3 classes: the shared class covariance has rank "
        "at most 17")
    assert covariance_note(parse_detectors("KNN"), torch.randn(20, 18), labels) is None
