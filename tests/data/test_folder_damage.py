"""Image folders as users leave them: symbolic links, hidden files, 16-bit images, bad files."""

import os

import numpy as np
import pytest
from PIL import Image

from robustrep.data import image_folder
from robustrep.tasks.cli import main


def _png(path, value=128, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def _classes(root, per_class=2):
    for name in ("cat", "dog"):
        for i in range(per_class):
            _png(root / name / f"{i}.png", 60 if name == "cat" else 200)
    return root


def test_a_symlink_loop_is_one_error_naming_the_link(tmp_path):
    root = _classes(tmp_path / "data")
    os.symlink(root, root / "dog" / "again")  # dog/again/cat/... would repeat forever
    with pytest.raises(ValueError, match=f"symbolic link {root / 'dog' / 'again'} would read a "
                                         f"folder twice \\(a loop: it points back to {root}"):
        image_folder(root, 8)


def test_a_second_link_to_a_class_would_mislabel_and_is_refused(tmp_path):
    root = _classes(tmp_path / "data")
    os.symlink(root / "cat", root / "dog" / "more")
    with pytest.raises(ValueError) as err:
        image_folder(root, 8)
    assert str(err.value) == (f"symbolic link {root / 'dog' / 'more'} would read a folder twice "
                              f"(it points to {root / 'cat'}, already read); remove the link or "
                              f"point it elsewhere")


def test_a_linked_image_in_another_class_is_refused(tmp_path):
    # Was: read twice, once under each label
    root = _classes(tmp_path / "data")
    os.symlink(root / "cat" / "0.png", root / "dog" / "9.png")
    with pytest.raises(ValueError, match=f"{root / 'dog' / '9.png'} and {root / 'cat' / '0.png'}"
                                         f" are the same image file"):
        image_folder(root, 8)
    os.remove(root / "dog" / "9.png")
    _png(tmp_path / "elsewhere.png")
    os.symlink(tmp_path / "elsewhere.png", root / "dog" / "9.png")  # a link read once: kept
    assert len(image_folder(root, 8)) == 5


def test_a_linked_image_in_a_flat_folder_is_refused(tmp_path):
    # Was: read twice, as the class layout refuses (the flat layout skipped the check)
    flat = tmp_path / "flat"
    _png(flat / "0.png")
    _png(flat / "1.png")
    os.symlink(flat / "0.png", flat / "2.png")
    with pytest.raises(ValueError, match=f"{flat / '2.png'} and {flat / '0.png'} are the same "
                                         f"image file"):
        image_folder(flat, 8)


def test_a_broken_link_as_a_class_folder_is_refused(tmp_path):
    # Was: the class it named was left out without a word
    root = _classes(tmp_path / "data")
    os.symlink(tmp_path / "gone", root / "fox")
    with pytest.raises(ValueError, match=rf"^{root / 'fox'} is a broken symbolic link \(to "
                                         rf"{tmp_path / 'gone'}\): the class it names would be "
                                         rf"left out"):
        image_folder(root, 8)


def test_a_linked_class_folder_is_read_once(tmp_path):
    root = _classes(tmp_path / "data")
    _png(tmp_path / "elsewhere" / "0.png")
    os.symlink(tmp_path / "elsewhere", root / "fox")
    ds = image_folder(root, 8)
    assert ds.classes == ["cat", "dog", "fox"] and len(ds) == 5


def test_hidden_files_and_folders_are_skipped_in_class_layout(tmp_path):
    root = _classes(tmp_path / "data")
    (root / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    _png(root / ".ipynb_checkpoints" / "0-checkpoint.png")
    _png(root / "dog" / ".cache" / "x.png")
    ds = image_folder(root, 8, verify=True)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    (tmp_path / "flat").mkdir()
    ramp = np.linspace(0, 65535, 64).reshape(8, 8).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "flat" / "0.png")  # a 16-bit greyscale PNG
    assert Image.open(tmp_path / "flat" / "0.png").mode.startswith("I")
    x = image_folder(tmp_path / "flat", 8)[0][0]  # RGB in [0, 1]
    assert x.shape == (3, 8, 8)
    assert x.min() == 0 and x.max() == 1 and abs(float(x.mean()) - 0.5) < 0.01
    assert len(x.unique()) > 50  # the gradient survives (clipping left 2 values)


def test_program_skips_bad_images_with_the_option_it_advises(tmp_path, capsys):
    root = _classes(tmp_path / "data", per_class=4)
    (root / "cat" / "3.png").write_bytes(b"not a png")
    argv = ["classify", "train", "--dataset", "imagefolder", "--data-root", str(root),
            "--image-size", "8", "--model", "test_resnet", "--batch-size", "4", "--steps", "1",
            "--eval-every", "0", "--quiet", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pass --skip-bad-images to skip" in err and "skip_bad" not in err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()
    assert main([*argv, "--skip-bad-images"]) == 0
    assert f"left out 1 unreadable image(s): {root / 'cat' / '3.png'}" in capsys.readouterr().err


def test_a_lone_link_back_to_the_folder_is_refused_not_followed_forever(tmp_path):
    """A folder holding one folder and nothing else is read from inside it; a link back up is
    refused as the scan refuses a loop, not followed in again and again (which hung)."""
    root = tmp_path / "data"
    (root / "only").mkdir(parents=True)
    os.symlink(root, root / "only" / "up")  # only/ holds up/ alone, which holds only/ alone...
    with pytest.raises(ValueError) as err:
        image_folder(root, 8)
    # read from inside only/ (up/ is its one folder, of folders): up/only/ is only/ again
    assert str(err.value).startswith(f"symbolic link {root / 'only' / 'up' / 'only'} would read "
                                     f"a folder twice (a loop: it points back to "
                                     f"{root / 'only'}, already read)")
