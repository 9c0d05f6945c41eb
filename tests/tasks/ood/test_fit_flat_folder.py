"""``--fit-data`` a flat image folder: its images carry no class labels, so the detectors that
fit one model per class are refused saying so, not that it holds class 0."""

import numpy as np

from robustrep.tasks.cli import main
from robustrep.tasks.ood import score


def _no_extraction(*args, **kwargs):
    raise AssertionError("refused before any feature is extracted")


def test_a_flat_fit_folder_is_said_to_carry_no_labels(fake_run, tmp_path, capsys, monkeypatch):
    # Was: "--fit-data imagefolder:F holds no image of ID classes 1, 2 (it holds 0)"
    from PIL import Image
    flat = tmp_path / "hidden"
    flat.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16), 40 * i, np.uint8), "L").save(flat / f"img{i}.png")
    monkeypatch.setattr(score, "extract", _no_extraction)
    argv = ["ood", "score", str(fake_run), "--ood", "gaussian", "--fit-data",
            f"imagefolder:{flat}", "--no-plots", "--quiet", "--device", "cpu"]
    assert main([*argv, "--detectors", "Mahalanobis"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --fit-data imagefolder:{flat} is a flat folder (no class "
        f"subfolders), whose images carry no class labels; Mahalanobis fits one model per class: "
        f"give a folder of class subfolders\n")
    assert main([*argv, "--detectors", "Mahalanobis,RMD"]) == 2
    assert "; Mahalanobis, RMD fit one model per class: " in capsys.readouterr().err
