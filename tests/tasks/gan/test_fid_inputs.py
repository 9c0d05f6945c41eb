"""``robustrep gan fid`` on a researcher's own inputs: images too small for the digits network,
a folder named like a built-in reference, a training checkpoint given as samples
(tasks/gan/fid.py, tasks/gan/fid_sources.py)."""

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.tasks.cli import main
from robustrep.tasks.gan import feature_nets
from robustrep.tasks.gan.fid_sources import open_source
from robustrep.tasks.gan.train import train

from .conftest import tiny_config


def _folder(path, n, side, seed=0):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray((rng.random((side, side, 3)) * 255).astype(np.uint8)).save(
            path / f"{i}.png")
    return path


@pytest.fixture
def no_training(monkeypatch):
    """The digits network must not be trained (nor read) for a size it cannot take."""
    def train(*args, **kwargs):
        raise AssertionError("the digits network was trained for images it cannot take")
    monkeypatch.setattr(feature_nets, "_train_digits_net", train)
    monkeypatch.setattr(feature_nets, "read_cache", lambda path: None)


@pytest.mark.parametrize("side", [1, 3])
def test_images_too_small_for_the_digits_network_are_one_line(side, tmp_path, monkeypatch,
                                                              capsys, no_training):
    """Was torch's traceback from inside the network's training, "Output size is too small"
    (exit 1), after the folders were read; a side of 4 halves twice to 1x1 and is taken."""
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "a", 3, side, seed=1)
    _folder(tmp_path / "b", 3, side, seed=2)
    code = main(["gan", "fid", "a", "b", "--fid-features", "digits", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert (f"a and b: images compared at {side}x{side}, too small for the digits feature "
            f"network, which takes 4x4 or larger (it halves them twice); give --resolution 4 "
            f"or more to resize a folder's or zip's images up, or score them with "
            f"--fid-features inception") in err


def test_small_samples_files_are_told_to_be_resized(tmp_path, monkeypatch, capsys,
                                                   no_training):
    """--resolution sizes only folders and zips (it is refused beside samples files alone), so
    the advice for samples files is to resize them."""
    monkeypatch.chdir(tmp_path)
    np.save("s.npy", np.random.default_rng(0).random((5, 2, 2)).astype(np.float32))
    code = main(["gan", "fid", "s.npy", "s.npy", "--fid-features", "digits", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "images compared at 2x2" in err and "resize the samples to 4x4 or more" in err
    assert "--resolution" not in err


def test_a_folder_named_like_a_reference_is_noted(tmp_path, monkeypatch, capsys):
    """A folder ./digits was left unread without a word and the built-in digits scored in its
    place; the reference is still what the name reads (as documented), with a note, and
    ./digits reads the folder."""
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "digits", 3, 8)
    args = SimpleNamespace(data_root=None, resolution=None, num=64, range=None)
    source = open_source("digits", args)
    assert source.what.startswith("digits (1797 images")
    assert capsys.readouterr().err == (
        "note: digits is read as the named reference, not as the folder ./digits here; write "
        "./digits to read the folder\n")
    source = open_source("./digits", args)
    assert source.what.startswith("image folder digits (3 images")
    assert capsys.readouterr().err == ""


def test_no_note_without_such_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = SimpleNamespace(data_root=None, resolution=None, num=64, range=None)
    open_source("digits", args)
    assert capsys.readouterr().err == ""



class _Foreign:
    """A class no safe load rebuilds, as a researcher's own objects saved with torch.save."""


def test_a_pt_of_objects_says_how_to_save_samples(tmp_path, monkeypatch, capsys):
    """The refusal ended "use a file written by this version of robustrep", advice for a
    checkpoint, not for a researcher's own samples file."""
    import torch
    monkeypatch.chdir(tmp_path)
    torch.save([_Foreign()], "s.pt")
    code = main(["gan", "fid", "s.pt", "s.pt", "--fid-features", "digits", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "samples file s.pt holds Python objects" in err
    assert err.rstrip().endswith("save the samples as one tensor [N, C, H, W] (torch.save(x, "
                                 "FILE)), or a dict with 'samples' as gan sample --pt writes")
    assert "version of robustrep" not in err


def test_a_training_checkpoint_is_told_how_to_be_scored(tmp_path, monkeypatch, capsys):
    """Was read as a samples file: "a dict of samples needs the key 'samples' ... found keys
    ['D', 'G', ...]"; now named, with the gan eval and gan sample lines that score it (the
    run's own folder when it is in its run, RUN when copied out)."""
    monkeypatch.chdir(tmp_path)
    train(tiny_config("grid-mlp", steps=1, out="runs/b"), show_progress=False)
    step = "runs/b/checkpoints/step_00000001.pt"
    shutil.copy(step, "copy.pt")
    torch.save({"step": 5, "model": {}, "config": {}}, "classify.pt")
    lines = []
    for given in (step, "copy.pt", "classify.pt"):
        assert main(["gan", "fid", given, "digits", "--quiet"]) == 2
        lines.append(capsys.readouterr().err)
    assert lines[0] == (f"robustrep gan fid: error: {step} is a gan train checkpoint (step 1), not "
                        f"samples: score it with robustrep gan eval runs/b --checkpoint "
                        f"step_00000001.pt, or draw samples with robustrep gan sample runs/b "
                        f"--checkpoint step_00000001.pt --pt FILE.pt and give FILE.pt to gan "
                        f"fid\n")
    assert lines[1].count("\n") == 1 and lines[1].rstrip().endswith(
        "robustrep gan eval RUN --checkpoint copy.pt, or draw samples with robustrep gan sample "
        "RUN --checkpoint copy.pt --pt FILE.pt and give FILE.pt to gan fid (RUN: the run folder "
        "it was saved in)")
    assert lines[2] == ("robustrep gan fid: error: classify.pt is a classify train checkpoint "
                        "(step 5), not samples: gan fid compares images (a classify run gives "
                        "the features with --fid-features run:RUN)\n")


def test_colour_is_made_grey_as_pil_makes_it():
    """The digits features of colour images are those of their BT.601 grey, PIL's convert("L")
    (was the channels' mean: a folder of PIL-grey copies scored FID 5.9 against its colour
    originals); grey read as RGB is its first channel, exactly."""
    import torch

    from robustrep.metrics.extractors import DigitsFeatureNet
    torch.manual_seed(0)
    features = feature_nets._Features(DigitsFeatureNet().eval())
    rgb = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    grey = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])
    as_tensor = lambda a: torch.from_numpy(a).float() / 255  # noqa: E731
    with torch.no_grad():
        got = features(as_tensor(rgb).permute(0, 3, 1, 2))
        want = features(as_tensor(grey)[:, None])
        # PIL rounds its grey to 8 bits: features agree to that rounding, the mean did not
        assert (got - want).abs().max() < 0.02 * want.abs().max()
        mean = features(as_tensor(rgb).permute(0, 3, 1, 2).mean(1, keepdim=True))
        assert (mean - want).abs().max() > 5 * (got - want).abs().max()
        same = as_tensor(grey)[:, None].expand(-1, 3, -1, -1)
        assert torch.equal(features(same), want)


@pytest.mark.parametrize("b", ["b", "digits"])
def test_data_root_without_a_reference_that_reads_it_is_refused(b, tmp_path, monkeypatch,
                                                                capsys):
    """--data-root was ignored without a word where no side is a named reference read from it
    (digits is built in); refused before any side is read."""
    from robustrep.tasks.gan import fid

    def opened(spec, args):
        raise AssertionError(f"{spec} was read")
    monkeypatch.setattr(fid, "open_source", opened)
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "a", 2, 8)
    _folder(tmp_path / "b", 2, 8)
    assert main(["gan", "fid", "a", b, "--data-root", "data", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        "robustrep gan fid: error: --data-root data is where the named references "
        "cifar10-train, cifar10-test, cifar100-train, cifar100-test, svhn-train, svhn-test are "
        "read from, and neither A nor B is one: drop it\n")


def test_data_root_beside_a_reference_that_reads_it_is_taken(tmp_path, monkeypatch):
    from robustrep.tasks.gan import fid

    class Opened(Exception):
        """Past the option checks: nothing further is needed."""

    def opened(spec, args):
        raise Opened(spec)
    monkeypatch.setattr(fid, "open_source", opened)
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "a", 2, 8)
    with pytest.raises(Opened):
        fid.compare(SimpleNamespace(a="a", b="cifar10-test", data_root="data", num=10000,
                                    range=None, resolution=None, save_stats=None, force=False))
