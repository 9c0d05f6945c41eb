"""A researcher's own files in ``robustrep gan``: statistics written by torch-fidelity and
stylegan2-ada, network pickles that do not fit ``--init``, ``--outdir`` folders that already
hold images, CIFAR folders holding the train split only, and the offline Inception refusal.

Statistics are random (no feature network is needed to compare two statistics files); the
references are torch-fidelity's own ``fid_statistics_to_metric`` and, for stylegan2-ada's
cache, the format ``metrics/metric_utils.py`` ``FeatureStats.save`` writes (a pickle of the
object's ``__dict__``: sums of the features and of their outer products)."""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pytest
import torch

from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from robustrep.tasks.cli import main


def _features(n=30, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)


def _fid(capsys) -> float:
    return float(re.search(r"^fid\s+(\S+)", capsys.readouterr().out, re.M)[1])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def _feature_stats(feats, capture_all=False):
    """stylegan2-ada's FeatureStats.__dict__ after appending ``feats`` (float32, as it casts)."""
    x = np.asarray(feats, dtype=np.float32)
    x64 = x.astype(np.float64)
    return {"capture_all": capture_all, "capture_mean_cov": not capture_all, "max_items": None,
            "num_items": len(x), "num_features": x.shape[1],
            "all_features": [x[:10], x[10:]] if capture_all else [],
            "raw_mean": None if capture_all else x64.sum(0),
            "raw_cov": None if capture_all else x64.T @ x64}


def test_torch_fidelity_statistics_cache_is_read(tmp_path, capsys):
    """torch-fidelity caches FID statistics as torch.save of numpy arrays (``utils_torch.py``
    ``torch_atomic_save`` of ``metric_fid.fid_features_to_statistics``' dict); the safe
    torch.load refused them ("use a file written by this version of robustrep"), and a .pt of
    mu/sigma tensors was refused as "a dict of samples needs the key 'samples'". Both give the
    FID of the same arrays in a pytorch-fid .npz (checked against pytorch-fid in test_fid)."""
    a, b = ({"mu": f.mean(0), "sigma": np.cov(f, rowvar=False)}
            for f in (_features(seed=0), _features(seed=1)))
    cache = tmp_path / "cifar10-train-inception-v3-compat-stat-fid-2048.pt"
    torch.save(a, cache)
    np.savez(tmp_path / "a.npz", **a)
    np.savez(tmp_path / "b.npz", **b)
    torch.save({k: torch.from_numpy(v) for k, v in b.items()}, tmp_path / "b_tensors.pt")
    assert main(["gan", "fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 0
    want = _fid(capsys)
    assert want > 1
    for other in ("b.npz", "b_tensors.pt"):
        assert main(["gan", "fid", str(cache), str(tmp_path / other)]) == 0
        assert _fid(capsys) == want


def test_stylegan2_ada_feature_stats_pickle_is_read_in_the_unbiased_convention(tmp_path,
                                                                              capsys):
    """stylegan2-ada's cache divides the covariance by N; read as is, the same features gave
    a FID of 0.06 against their own np.cov statistics (rescaled: 0)."""
    feats = _features(n=12)
    np.savez(tmp_path / "ref.npz", mu=feats.astype(np.float32).astype(np.float64).mean(0),
             sigma=np.cov(feats.astype(np.float32).astype(np.float64), rowvar=False))
    for capture_all in (False, True):  # FID's cache, and a KID/precision one (features kept)
        path = tmp_path / f"cifar10-inception-2015-12-05-{capture_all}.pkl"
        path.write_bytes(pickle.dumps(_feature_stats(feats, capture_all)))
        assert main(["gan", "fid", str(path), str(tmp_path / "ref.npz")]) == 0
        out = capsys.readouterr().out
        assert f"stylegan2-ada statistics {path} (6-d, 12 images)" in out
        assert abs(float(re.search(r"^fid\s+(\S+)", out, re.M)[1])) < 1e-4


def test_a_feature_stats_pickle_is_read_without_running_it(tmp_path, capsys):
    marker = tmp_path / "RAN"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    stats = _feature_stats(_features())
    path = tmp_path / "stats.pkl"
    path.write_bytes(pickle.dumps({**stats, "raw_mean": Evil()}))
    np.savez(tmp_path / "ref.npz", mu=np.zeros(6), sigma=np.eye(6))
    assert main(["gan", "fid", str(path), str(tmp_path / "ref.npz")]) == 2
    assert "refuses the global" in _one_line_error(capsys)
    assert not marker.exists()
    for change, expect in (({"num_items": 1}, "counting 1 image(s) (num_items); FID needs at "
                                              "least 2"),
                           ({"raw_mean": "text"}, "sums or features are not arrays of numbers"),
                           ({"capture_mean_cov": False}, "neither the mean and covariance nor "
                                                         "the features")):
        path.write_bytes(pickle.dumps({**stats, **change}))
        assert main(["gan", "fid", str(path), str(tmp_path / "ref.npz")]) == 2
        assert expect in _one_line_error(capsys)
    path.write_bytes(pickle.dumps(stats))  # statistics: there is nothing to draw --num from
    assert main(["gan", "fid", str(path), str(tmp_path / "ref.npz"), "--num", "50"]) == 2
    assert "--num 50 sets the samples drawn" in _one_line_error(capsys)


def test_a_network_name_stored_as_bytes_is_the_name(tmp_path, capsys):
    """A name saved as np.bytes_ read as "np.bytes_(b'digits')", another network than digits."""
    mu, sigma = np.zeros(4), np.eye(4)
    np.savez(tmp_path / "a.npz", mu=mu, sigma=sigma, fid_features=np.bytes_(b"digits"))
    np.savez(tmp_path / "b.npz", mu=mu + 1, sigma=sigma, fid_features=np.array("digits"))
    assert main(["gan", "fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^fid_features\s+digits$", out, re.M)
    assert re.search(r"^fid\s+4\.0000$", out, re.M)


def _generator(c_dim=0, res=16, channels=1):
    torch.manual_seed(0)
    return StyleGAN2Generator(16, res, channels, c_dim=c_dim, w_dim=16, mapping_layers=2,
                              channel_base=128, channel_max=16).eval()


INIT_RUN = ["--preset", "digits-stylegan2", "--image-size", "16", "--z-dim", "16", "--w-dim",
            "16", "--mapping-layers", "2", "--channel-base", "128", "--channel-max", "16",
            "--mbstd-group", "4", "--batch-size", "8", "--steps", "1", "--eval-every", "0",
            "--final-eval", "false", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("net, extra, expect", [
    (dict(c_dim=4), [], "is a conditional network (4 classes); gan train trains unconditional "
                        "ones"),
    (dict(res=32, channels=3), [], "set --image-size 32 (this run: 16), --channels 3 (this "
                                   "run: 1)"),
    (dict(), ["--z-dim", "8"], "set --z-dim 16 (this run: 8)"),
])
def test_init_names_what_does_not_fit(tmp_path, monkeypatch, capsys, net, extra, expect):
    """Was: "(first: mapping.layers.0.weight); set --image-size, --z-dim, ... and --d-arch to
    the pickle's" for a conditional pickle (no option makes the run's G take classes) and for
    another channel count (--channels was not among the options named)."""
    from robustrep.tasks.gan import pickles
    G = _generator(**net)
    D = StyleGAN2Discriminator(G.img_resolution, G.img_channels, c_dim=G.c_dim,
                               channel_base=128, channel_max=16, mbstd_group=4)
    monkeypatch.setattr(pickles, "load_pickle", lambda *a, **k: {"G": G, "D": D, "G_ema": G})
    (tmp_path / "net.pkl").write_bytes(b"read by the patched loader")
    run = tmp_path / "run"
    assert main(["gan", "train", *INIT_RUN, *extra, "--init", str(tmp_path / "net.pkl"),
                 "--out", str(run)]) == 2
    assert expect in _one_line_error(capsys)
    assert not run.exists()


def test_outdir_holding_other_images_is_noted(tmp_path, monkeypatch, capsys):
    """A rerun with --force and a smaller --num left 000002.png... of the earlier run beside
    the new images, and gan fid DIR scored both sets as one, without a word."""
    from robustrep.tasks.gan import pickles
    monkeypatch.setattr(pickles, "pickle_generator", lambda *a, **k: _generator())
    (tmp_path / "net.pkl").write_bytes(b"read by the patched loader")
    out = tmp_path / "out"
    base = ["gan", "sample", str(tmp_path / "net.pkl"), "--outdir", str(out), "--quiet"]
    assert main(base + ["--num", "4"]) == 0
    assert capsys.readouterr().err == ""
    (out / "notes.txt").write_text("not an image")
    assert main(base + ["--num", "4", "--force", "--seed", "1"]) == 0  # the same four files
    assert capsys.readouterr().err == ""
    assert main(base + ["--num", "2", "--force", "--seed", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"note: --outdir {out} also holds 2 image(s) this command " \
                                     f"does not write (the first: 000002.png)" in err
    assert main(base + ["--seeds", "0-1"]) == 0  # generate.py's names beside the numbered ones
    assert "also holds 4 image(s)" in capsys.readouterr().err


@pytest.mark.parametrize("dataset, files", [("cifar10", "{data_batch_1..5,batches.meta}"),
                                            ("cifar100", "{train,meta}")])
def test_cifar_layout_names_the_train_split_files(dataset, files, tmp_path, capsys):
    """GAN training reads the train split only; the layout asked for test_batch (test) too."""
    preset = f"{dataset}-dcgan"
    assert main(["gan", "train", "--preset", preset, "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert files in err and ("test_batch is not read" if dataset == "cifar10" else
                             "test is not read") in err


def test_a_cifar10_folder_without_test_batch_trains(tiny_cfg, tmp_path):
    from robustrep.tasks.gan.train import train
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, 4).tolist()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcdefghij")}))
    cfg = tiny_cfg("cifar10-dcgan", image_size=32, g_width=4, d_width=4, num_workers=0, steps=1,
                   data_root=str(tmp_path / "data"), out=str(tmp_path / "run"))
    assert train(cfg, show_progress=False)["step"] == 1


def test_offline_inception_refusal_names_the_switches(tmp_path, monkeypatch, capsys):
    """Offline without the weights file: one line naming --inception-weights and, where no
    statistics file fixes the network, --fid-features (a network that needs no download)."""
    monkeypatch.setenv("ROBUSTREP_OFFLINE", "1")
    monkeypatch.delenv("ROBUSTREP_INCEPTION", raising=False)
    for name in ("a", "b"):
        torch.save(torch.rand(4, 3, 8, 8), tmp_path / f"{name}.pt")
    assert main(["gan", "fid", str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]) == 2
    err = _one_line_error(capsys)
    assert "--inception-weights" in err and "ROBUSTREP_OFFLINE" in err
    assert "another network with --fid-features (digits" in err
    np.savez(tmp_path / "inception.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    assert main(["gan", "fid", str(tmp_path / "a.pt"), str(tmp_path / "inception.npz")]) == 2
    err = _one_line_error(capsys)
    assert "--inception-weights" in err and "--fid-features" not in err


def test_fid_help_lists_every_accepted_input(capsys):
    with pytest.raises(SystemExit):
        main(["gan", "fid", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "stylegan2-ada network pickle (.pkl)" in text and "torch-fidelity's cached .pt" in text
