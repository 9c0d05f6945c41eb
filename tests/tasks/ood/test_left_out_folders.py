"""`ood score` says what of an image folder in timm's split layout it leaves out
(tasks/ood/score_sets.py ``left_out_notes``), once a folder whatever roles read it."""

import numpy as np
from PIL import Image

from robustrep.tasks.cli import main


def _tree(root, parts, seed):
    noise = np.random.default_rng(seed)
    for part in parts:
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noise.integers(0, 256, (16, 16), np.uint8), "L").save(root / part)
    return root


def _left_out(err):
    return [line for line in err.splitlines() if line.endswith("left out")]


def test_folders_beside_the_splits_read_are_named_once_a_folder(fake_run, tmp_path, capsys,
                                                                monkeypatch):
    # Was: extra/ and loose.png beside an ID folder's train/ and val/, and an OOD folder's
    # train/ (it scores val/), left out without a word
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path / "idf", [f"{split}/{c}/{i}.png" for split in ("train", "val")
                             for c in range(3) for i in range(3)]
          + ["extra/0/0.png", "loose.png"], seed=0)
    _tree(tmp_path / "oodf", ["train/x/0.png", "val/x/0.png", "val/x/1.png"], seed=1)
    argv = ["ood", "score", str(fake_run), "--id", "imagefolder:idf", "--ood",
            "imagefolder:oodf", "--max-samples", "8", "--no-plots", "--quiet", "--device", "cpu"]
    assert main([*argv, "--detectors", "KNN", "--param", "KNN.k=3", "--fit-data",
                 f"imagefolder:{tmp_path}/./idf/", "--out", "a"]) == 0  # idf, spelt otherwise
    assert _left_out(capsys.readouterr().err) == [
        "note: imagefolder:idf holds extra/, loose.png beside train/ and val/, read as timm's "
        "training and evaluation splits: they are left out",
        "note: imagefolder:oodf holds train/ beside val/, read as timm's evaluation split: it "
        "is left out"]
    # no detector fitted: the ID folder's train/ is read by none
    assert main([*argv, "--detectors", "MaxSoftmax", "--out", "b"]) == 0
    assert _left_out(capsys.readouterr().err)[0] == (
        "note: imagefolder:idf holds extra/, loose.png, train/ beside val/, read as timm's "
        "evaluation split: they are left out")
