"""Cached real features are keyed by the files they were read from (their sizes and mtimes,
``feature_nets.files_fingerprint``): an edited data file is read again, an unchanged one is
read from the cache.

Was: the key was the path, the image count and the shape, so after the CIFAR test batch was
rewritten (pixels divided by 4) ``gan fid cifar10-test digits`` printed the old 349.63 (an empty
cache: 25.14), and ``gan eval`` of an image-folder run printed the old 134.07 after every PNG of
its data was inverted (an empty cache: 89.25)."""

import pickle

import numpy as np
import torch
from PIL import Image, ImageOps

from robustrep.tasks.cli import build_parser
from robustrep.tasks.gan import evaluate, fid
from robustrep.tasks.gan.evaluate import evaluate_run
from robustrep.tasks.gan.feature_nets import data_files, files_fingerprint
from robustrep.tasks.gan.train import train


def _write_cifar10_test(root, n=40):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             "labels": rng.integers(0, 10, n).tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in
                                                                        range(10)]}))
    return folder / "test_batch"


def _projection(cfg, data, device, *args, **kwargs):
    """A fixed random projection as the feature network: the cache's logic without training
    the digits network at 32x32 (the CIFAR side's size)."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 8))
    with torch.no_grad():
        net[1].weight.copy_(torch.randn(8, 3 * 32 * 32, generator=torch.Generator()
                                        .manual_seed(0)))
        net[1].bias.zero_()
    return net.to(device), {"extractor": "projection", "fid_features": "digits",
                            "fid_convention": "a fixed random projection (test)"}


def _fid(*argv):
    args = build_parser("gan").parse_args(["gan", "fid", *map(str, argv), "--quiet"])
    args.torch_device = torch.device("cpu")
    return fid.compare(args)["fid"]


def test_a_rewritten_cifar_batch_is_read_again_and_an_unchanged_one_from_the_cache(
        tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(evaluate, "cache_dir", lambda: cache)
    monkeypatch.setattr(fid, "build_extractor", _projection)
    batch = _write_cifar10_test(tmp_path / "data")
    samples = tmp_path / "a.npy"
    np.save(samples, np.random.default_rng(1).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8))
    argv = (samples, "cifar10-test", "--data-root", tmp_path / "data")
    before = _fid(*argv)
    kept = sorted(cache.iterdir())
    assert len(kept) == 1
    assert _fid(*argv) == before and sorted(cache.iterdir()) == kept  # read from the cache
    entry = pickle.loads(batch.read_bytes())
    entry["data"] //= 4
    batch.write_bytes(pickle.dumps(entry))
    after = _fid(*argv)
    assert after != before and len(list(cache.iterdir())) == 2
    assert _fid(*argv) == after and len(list(cache.iterdir())) == 2
    monkeypatch.setattr(evaluate, "cache_dir", lambda: tmp_path / "empty")
    assert _fid(*argv) == after  # what an empty cache gives


def test_the_files_are_those_the_dataset_reads(tmp_path):
    from robustrep.data import create_dataset
    batch = _write_cifar10_test(tmp_path / "data")
    ds = create_dataset("cifar10", root=tmp_path / "data", train=False)
    assert data_files(ds) == [str(batch), str(batch.parent / "batches.meta")]
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(folder / f"{i}.png")
    images = create_dataset("imagefolder", root=folder, size=4, verify=True)
    assert data_files(torch.utils.data.Subset(images, [0])) == [str(folder / f"{i}.png")
                                                               for i in range(3)]
    key = files_fingerprint(images)
    assert key.startswith("3 files, sha1 ") and files_fingerprint(images) == key
    (folder / "1.png").write_bytes((folder / "1.png").read_bytes() + b"\0")  # one byte more
    assert files_fingerprint(images) != key
    assert files_fingerprint(create_dataset("digits", train=None)) is None  # no file


def test_gan_eval_reads_an_edited_image_folder_again(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "cache_dir", lambda: tmp_path / "cache")
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        ramp = np.linspace(0, 255, 16)[None, :, None] * rng.random((16, 16, 1))
        Image.fromarray(ramp.astype(np.uint8).repeat(3, 2)).save(folder / f"{i:02d}.png")
    run = tmp_path / "run"
    train(tiny_cfg(dataset="imagefolder", data_root=str(folder), fid_features="digits",
                   num_workers=0, out=str(run)), show_progress=False)
    score = lambda: evaluate_run(run, num_samples=16, show_progress=False)["fid"]  # noqa: E731
    before = score()
    kept = sorted((tmp_path / "cache").iterdir())
    assert score() == before and sorted((tmp_path / "cache").iterdir()) == kept
    for path in folder.iterdir():
        with Image.open(path) as image:
            inverted = ImageOps.invert(image.convert("RGB"))
        inverted.save(path)
    after = score()
    assert after != before and len(list((tmp_path / "cache").iterdir())) == len(kept) + 1
    monkeypatch.setattr(evaluate, "cache_dir", lambda: tmp_path / "empty")
    assert score() == after
