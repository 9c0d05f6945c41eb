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


def test_a_zip_of_class_folders_as_fit_data_is_told_how_to_label_it(fake_run, tmp_path, capsys,
                                                                     monkeypatch):
    # Was: "holds no image of ID classes 1, 2 (it holds 0)", of a zip holding 0/, 1/, 2/: a zip
    # is a stylegan2-ada dataset zip, whose labels are its dataset.json's (it had none)
    import io
    import zipfile
    from PIL import Image
    tree = tmp_path / "tree.zip"
    with zipfile.ZipFile(tree, "w") as z:
        for label in range(3):
            png = io.BytesIO()
            Image.fromarray(np.full((16, 16), 60 * label, np.uint8), "L").save(png, "PNG")
            z.writestr(f"{label}/img.png", png.getvalue())
    monkeypatch.setattr(score, "extract", _no_extraction)
    assert main(["ood", "score", str(fake_run), "--ood", "gaussian", "--fit-data",
                 f"imagefolder:{tree}", "--no-plots", "--quiet", "--device", "cpu",
                 "--detectors", "Mahalanobis"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood score: error: --fit-data imagefolder:{tree} holds one label (0); "
        f"Mahalanobis fits one model per class: a zip is read as a stylegan2-ada dataset zip, "
        f"labelled by its top-level dataset.json (it has none); for a zip of class folders "
        f"(<class>/<image>), `robustrep data pack {tree} OUT.zip --resolution R` writes one "
        f"labelled by its class folders: give --fit-data imagefolder:OUT.zip\n")
