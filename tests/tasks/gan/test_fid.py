"""``robustrep gan fid A B`` on statistics files, samples files and image folders (digits CNN
features, so no weights file is needed). Sets of 40 images have a rank-deficient 64-d
covariance, so a set against itself is 0 only to ~1e-6 (FIDs between digit sets are ~1)."""

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.data import digits
from robustrep.tasks.cli import build_parser, main
from robustrep.tasks.gan.evaluate import fid_name
from robustrep.tasks.gan.fid import compare
from robustrep.tasks.gan.fid_sources import samples_to_unit


def run_fid(*argv):
    """The record ``robustrep gan fid ARGV`` prints, as a dict (digits CNN features unless
    ARGV names others). Quiet: the digits network's training line, printed by whichever test
    first needs the network, broke the one-line checks of the stderr that follows."""
    argv = [*map(str, argv), "--quiet"] + ([] if "--fid-features" in argv else
                                          ["--fid-features", "digits"])
    args = build_parser("gan").parse_args(["gan", "fid", *argv])
    args.torch_device = torch.device("cpu")
    return compare(args)


def random_stats(d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3 * d, d))
    return rng.normal(size=d), a.T @ a / (3 * d)


@pytest.fixture(scope="module")
def images():
    """40 digits at 16x16 as uint8 [N, H, W] (exact in every file format) and another 40."""
    x = digits(16, 1, train=None).images[:80, 0]
    x = (x * 255).round().to(torch.uint8)
    return x[:40], x[40:]


@pytest.fixture
def calculate_frechet_distance(monkeypatch):
    """pytorch-fid's own formula. scipy 1.18 (Python 3.12+) dropped ``sqrtm``'s ``disp``, which
    pytorch-fid passes (``disp=False``: the root and an error estimate it discards), so there
    its ``linalg`` is given the older call; the root is scipy's, unchanged."""
    from pytorch_fid import fid_score
    from scipy import linalg
    if "disp" not in inspect.signature(linalg.sqrtm).parameters:
        def sqrtm(a, disp=True):
            root = linalg.sqrtm(a)
            return root if disp else (root, None)
        monkeypatch.setattr(fid_score, "linalg", SimpleNamespace(sqrtm=sqrtm))
    return fid_score.calculate_frechet_distance


def test_fid_of_two_statistics_files_equals_pytorch_fid(tmp_path, calculate_frechet_distance):
    (mu1, s1), (mu2, s2) = random_stats(16, 0), random_stats(16, 1)
    np.savez(tmp_path / "a.npz", mu=mu1, sigma=s1)
    np.savez(tmp_path / "b.npz", mu=mu2, sigma=s2)
    record = run_fid(tmp_path / "a.npz", tmp_path / "b.npz")
    assert record["fid"] == pytest.approx(calculate_frechet_distance(mu1, s1, mu2, s2),
                                          rel=1e-6)
    assert record["kid"].startswith("n/a")


def test_save_stats_round_trips_through_pytorch_fid(images, tmp_path,
                                                    calculate_frechet_distance):
    from pytorch_fid.fid_score import compute_statistics_of_path
    a, b = images
    np.save(tmp_path / "a.npy", a.numpy())
    torch.save(b, tmp_path / "b.pt")
    stats = tmp_path / "a-stats.npz"
    direct = run_fid(tmp_path / "a.npy", tmp_path / "b.pt", "--save-stats", stats)
    mu, sigma = compute_statistics_of_path(str(stats), None, 1, 0, "cpu")
    assert direct["fid_features"] == "digits" and str(np.load(stats)["fid_features"]) == "digits"
    assert mu.shape == (sigma.shape[0],) and int(np.load(stats)["num"]) == 40
    # B's statistics against the saved A statistics give A-vs-B's FID, in pytorch-fid's formula
    b_stats = tmp_path / "b-stats.npz"
    run_fid(tmp_path / "b.pt", "--save-stats", b_stats)
    mu_b, sigma_b = compute_statistics_of_path(str(b_stats), None, 1, 0, "cpu")
    assert calculate_frechet_distance(mu, sigma, mu_b, sigma_b) == pytest.approx(direct["fid"],
                                                                                rel=1e-5)
    assert run_fid(stats, tmp_path / "b.pt")["fid"] == pytest.approx(direct["fid"], rel=1e-6)
    # 40 samples of 64-d features: a rank-deficient covariance, zero up to ~1e-6
    assert abs(run_fid(tmp_path / "a.npy", stats)["fid"]) < 1e-5 * direct["fid"]


def test_sides_of_two_sizes_give_one_fid_in_either_order(images, tmp_path):
    # Was: everything scored at A's size, so swapping A and B changed the FID (38 vs 111)
    a, b = images
    small = torch.nn.functional.avg_pool2d(a[:, None].float(), 2).round().to(torch.uint8)
    np.save(tmp_path / "a8.npy", small[:, 0].numpy())
    torch.save(b, tmp_path / "b16.pt")
    ab, ba = run_fid(tmp_path / "a8.npy", tmp_path / "b16.pt"), run_fid(tmp_path / "b16.pt",
                                                                        tmp_path / "a8.npy")
    assert ab["fid"] == pytest.approx(ba["fid"], rel=1e-6) and ab["fid"] > 1
    assert ab["kid"] == pytest.approx(ba["kid"], rel=1e-6)
    assert ab["resized_to"] == ba["resized_to"] == "1x16x16"
    assert "resized_to" not in run_fid(tmp_path / "b16.pt", tmp_path / "b16.pt")


def test_three_images_give_fid_and_kid_but_no_neighbours_and_one_is_named(images, tmp_path,
                                                                          capsys):
    # Was: "feats needs more than k=3 rows" for 3 images, "mean_cov needs at least 2 feature
    # vectors" (naming nothing) for 1
    for i, image in enumerate(images[0][:3]):
        Image.fromarray(image.numpy()).save(tmp_path / f"{i}.png")
    torch.save(images[1], tmp_path / "b.pt")  # 3 RGB images against 40 grey: 3x16x16
    record = run_fid(tmp_path, tmp_path / "b.pt")
    assert record["fid"] > 0 and record["kid"] == record["kid"]
    assert record["precision"] == record["recall"] == "n/a (3 samples on a side; needs 4)"
    for name in ("1.png", "2.png"):
        (tmp_path / name).unlink()
    assert main(["gan", "fid", str(tmp_path), str(tmp_path / "b.pt"), "--fid-features",
                 "digits"]) == 2
    assert f"image folder {tmp_path}: FID needs at least 2 samples, got 1" in \
        capsys.readouterr().err


def test_grey_images_score_alike_as_one_channel_or_three(images, tmp_path):
    # a folder of grey PNGs reads as RGB: the digits network of 3 channels gave FID 23 against
    # the statistics of the same pixels saved from 1-channel samples, under one name "digits"
    a, b = images
    np.save(tmp_path / "grey.npy", a.numpy())
    np.save(tmp_path / "rgb.npy", a[..., None].expand(-1, -1, -1, 3).numpy())
    np.save(tmp_path / "b.npy", b.numpy())
    stats = tmp_path / "grey-stats.npz"
    one = run_fid(tmp_path / "grey.npy", tmp_path / "b.npy", "--save-stats", stats)
    three = run_fid(tmp_path / "rgb.npy", tmp_path / "b.npy")
    assert three["fid"] == pytest.approx(one["fid"], rel=1e-12)
    assert abs(run_fid(stats, tmp_path / "rgb.npy")["fid"]) < 1e-5 * one["fid"]
    assert "grey 16x16" in one["fid_convention"]


def test_statistics_in_another_convention_are_refused(images, tmp_path, capsys):
    # the digits network of another image size has the same name and dimension
    a, _ = images
    np.save(tmp_path / "a.npy", a.numpy())
    stats = tmp_path / "a-stats.npz"
    run_fid(tmp_path / "a.npy", "--save-stats", stats)
    arrays = dict(np.load(stats))
    np.savez(tmp_path / "other.npz", **{**arrays, "fid_convention": np.array(
        str(arrays["fid_convention"]).replace("16x16", "32x32"))})
    assert main(["gan", "fid", str(tmp_path / "other.npz"), str(tmp_path / "a.npy"),
                 "--fid-features", "digits"]) == 2
    err = capsys.readouterr().err
    assert ("holds statistics in the convention 'digits CNN features (robustrep) of grey "
            "32x32") in err
    assert err.count("\n") == 1
    # statistics against statistics: was compared (FID 1107 for one set at two sizes)
    assert main(["gan", "fid", str(tmp_path / "other.npz"), str(stats)]) == 2
    err = capsys.readouterr().err
    assert "hold statistics in different conventions (digits CNN features (robustrep) of grey " \
           "16x16" in err and err.count("\n") == 1


def test_network_options_beside_statistics_are_checked_before_any_network(images, tmp_path,
                                                                            capsys):
    # Was: two statistics files compared with --fid-features inception printed "digits" and a
    # FID; an image side against digits statistics fetched the Inception weights first
    a, _ = images
    np.save(tmp_path / "a.npy", a.numpy())
    stats = tmp_path / "a-stats.npz"
    run_fid(tmp_path / "a.npy", "--save-stats", stats)
    assert main(["gan", "fid", str(stats), str(stats), "--fid-features", "inception"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan fid: error: {stats} and {stats} hold statistics of digits, not of "
        f"--fid-features inception: FIDs compare only within one network (drop "
        f"--fid-features)\n")
    weights = tmp_path / "w.pth"  # there (a missing file is refused first), never read
    weights.write_bytes(b"not a weights file")
    assert main(["gan", "fid", str(stats), str(stats), "--inception-weights", str(weights)]) == 2
    assert "--inception-weights loads the network" in capsys.readouterr().err
    assert run_fid(stats, stats)["fid"] == pytest.approx(0, abs=1e-4)  # digits: as recorded
    assert main(["gan", "fid", str(tmp_path / "a.npy"), str(stats), "--fid-features",
                 "inception", "--inception-weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds statistics of the feature network digits, but " \
        "--fid-features inception was asked" in err


def test_inception_weights_missing_or_acting_on_nothing_are_refused(images, tmp_path, capsys):
    # Was: with --fid-features digits a missing --inception-weights FILE was accepted, exit 0
    np.save(tmp_path / "a.npy", images[0].numpy())
    a, missing = str(tmp_path / "a.npy"), tmp_path / "none.pth"
    assert main(["gan", "fid", a, a, "--fid-features", "digits", "--inception-weights",
                 str(missing)]) == 2
    assert capsys.readouterr().err == (
        "robustrep gan fid: error: --inception-weights applies only with the Inception FID "
        "features (--fid-features inception; these are digits); drop it or set that option\n")
    assert main(["gan", "fid", a, a, "--inception-weights", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan fid: error: --inception-weights {missing} does not exist; give the file "
        f"pt_inception-2015-12-05-6726825d.pth (or leave the option out: $ROBUSTREP_INCEPTION, "
        f"else robustrep's cached copy)\n")


def test_options_may_stand_between_a_and_b(images, tmp_path, capsys):
    # "unrecognized arguments: B" blamed a valid B for where the options stood
    np.save(tmp_path / "a.npy", images[0].numpy())
    np.save(tmp_path / "b.npy", images[1].numpy())
    assert main(["gan", "fid", str(tmp_path / "a.npy"), "--fid-features", "digits",
                 str(tmp_path / "b.npy")]) == 0
    assert f"{tmp_path / 'b.npy'}" in capsys.readouterr().out


def test_image_folder_against_itself_is_zero(images, tmp_path):
    for i, image in enumerate(images[0]):
        Image.fromarray(image.numpy()).save(tmp_path / f"{i:03d}.png")
    record = run_fid(tmp_path, tmp_path)
    assert abs(record["fid"]) < 1e-4 and record["precision"] == record["recall"] == 1.0
    assert record["num_a"] == 40 and "16x16" in record["a"]


def test_file_layouts_and_ranges_give_the_same_images(images, tmp_path):
    """uint8 [N, H, W, C] .npy, [-1, 1] float in a gan-sample-style dict, [0, 1] float .npz."""
    a = images[0]
    unit = a.float().unsqueeze(1) / 255
    np.save(tmp_path / "nhwc.npy", a.unsqueeze(-1).numpy())
    torch.save({"samples": unit * 2 - 1, "range": "[-1, 1]"}, tmp_path / "g.pt")
    np.savez(tmp_path / "unit.npz", images=unit.numpy())
    for name in ("g.pt", "unit.npz"):
        assert abs(run_fid(tmp_path / "nhwc.npy", tmp_path / name)["fid"]) < 1e-4
    read, key = samples_to_unit(unit * 2 - 1, "x")  # negatives: [-1, 1]
    assert torch.allclose(read, unit, atol=1e-6) and key == "-1,1"
    # the range each side was read in is named (was not: a tanh generator's samples without
    # a negative value read as [0, 1] without a word)
    record = run_fid(tmp_path / "nhwc.npy", tmp_path / "unit.npz")
    assert record["a"].endswith(", uint8 values read as [0, 255]")
    assert record["b"].endswith(", float32 values read as [0, 1] (no --range: from their values)")
    np.save(tmp_path / "bytes.npy", a.float().numpy())  # floats 0..255: declared
    assert abs(run_fid(tmp_path / "nhwc.npy", tmp_path / "bytes.npy", "--range", "0,255")["fid"]
               ) < 1e-4
    rgb = torch.stack([a, a // 2, 255 - a], -1)  # [N, H, W, 3], three different channels
    np.save(tmp_path / "rgb-nhwc.npy", rgb.numpy())
    torch.save(rgb.permute(0, 3, 1, 2).float() / 255, tmp_path / "rgb-nchw.pt")
    assert abs(run_fid(tmp_path / "rgb-nhwc.npy", tmp_path / "rgb-nchw.pt")["fid"]) < 1e-4


@pytest.mark.parametrize("make, expect", [
    (lambda p: None, "no such file or folder"),
    (lambda p: np.savez(p, x=np.zeros(3), y=np.zeros(3)), "'mu' and 'sigma'"),
    (lambda p: np.savez(p, mu=np.zeros(3)), "needs both 'mu' and 'sigma'"),
    (lambda p: np.savez(p, a=np.zeros((4, 3, 8, 3), np.uint8)), "cannot tell the channel axis"),
    (lambda p: np.savez(p, a=np.full((4, 1, 8, 8), 2.0)), "neither [0, 1] nor [-1, 1]"),
    (lambda p: np.savez(p, mu=np.zeros(3), sigma=np.eye(3)), "different networks"),
    (lambda p: np.savez(p, a=np.where(np.arange(4 * 64).reshape(4, 1, 8, 8) == 70, np.nan,
                                      0.5)), "1 of 4 samples hold NaN or inf"),
])
def test_errors_are_one_line(images, tmp_path, capsys, make, expect):
    from robustrep.tasks.gan import feature_nets
    # trained once per session, by whichever test comes first (its note is a line of its own)
    feature_nets.digits_feature_net((1, 16, 16), torch.device("cpu"))
    bad = tmp_path / "bad.npz"
    make(bad)
    np.save(tmp_path / "a.npy", images[0].numpy())
    assert main(["gan", "fid", str(tmp_path / "a.npy"), str(bad), "--fid-features", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("robustrep gan fid: error:") and expect in err


def _rank_deficient(d=16, n=8):
    """A covariance of fewer samples than dimensions, saved in float32 as pytorch-fid does:
    singular, with eigenvalues a rounding below zero, and valid."""
    x = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    return x.mean(0), np.cov(x, rowvar=False).astype(np.float32)


@pytest.mark.parametrize("damage, expect", [
    (lambda mu, s: (mu, s + np.triu(np.full_like(s, 0.5), 1)), "'sigma' is not symmetric"),
    (lambda mu, s: (mu, s - 0.2 * np.eye(len(s), dtype=s.dtype)), "negative eigenvalues"),
    (lambda mu, s: (mu, np.where(np.eye(len(s)) > 0, np.nan, s)), "'sigma' holds NaN"),
    (lambda mu, s: (mu + 1j, s), "'mu' must hold real numbers, got complex"),
    (lambda mu, s: (mu.astype(str), s), "'mu' must hold real numbers, got <U"),
    # was numpy's "zero-size array to reduction operation maximum", naming no file
    (lambda mu, s: (mu[:0], s[:0, :0]), "'mu' must be [D] and 'sigma' [D, D] with D >= 1, got "
                                        "(0,) and (0, 0)"),
])
def test_statistics_no_features_could_have_are_refused(tmp_path, capsys, damage, expect):
    """A sigma that is not symmetric or not positive semi-definite gave a wrong FID (-121 for
    -I) without a word; complex and text arrays failed deep in the distance or lost their
    imaginary part with a warning. Each is one line naming the file and the key."""
    mu, sigma = _rank_deficient()
    np.savez(tmp_path / "good.npz", mu=mu, sigma=sigma)
    assert run_fid(tmp_path / "good.npz", tmp_path / "good.npz")["fid"] == pytest.approx(
        0, abs=1e-6)
    np.savez(tmp_path / "bad.npz", **dict(zip(("mu", "sigma"), damage(mu, sigma))))
    assert main(["gan", "fid", str(tmp_path / "bad.npz"), str(tmp_path / "good.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'bad.npz'}: " in err and expect in err


def test_float16_statistics_are_read_within_their_rounding(tmp_path, capsys):
    # float16 rounding puts a rank-deficient sigma's zero eigenvalues near -1e-4: refused as "no
    # covariance" (pytorch-fid reads the file); a real negative eigenvalue still is refused
    x = np.random.default_rng(0).normal(size=(40, 64))
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    np.savez(tmp_path / "full.npz", mu=mu, sigma=sigma)
    np.savez(tmp_path / "half.npz", mu=mu.astype(np.float16), sigma=sigma.astype(np.float16))
    assert np.linalg.eigvalsh(np.load(tmp_path / "half.npz")["sigma"].astype(float)).min() < -1e-5
    assert run_fid(tmp_path / "half.npz", tmp_path / "full.npz")["fid"] < 0.1
    bad = (sigma - 0.2 * np.eye(64)).astype(np.float16)
    np.savez(tmp_path / "bad.npz", mu=mu.astype(np.float16), sigma=bad)
    assert main(["gan", "fid", str(tmp_path / "bad.npz"), str(tmp_path / "full.npz")]) == 2
    assert "'sigma' (float16) has negative eigenvalues" in capsys.readouterr().err


def test_a_count_that_is_not_one_number_is_named(tmp_path, capsys):
    mu, sigma = _rank_deficient()
    np.savez(tmp_path / "a.npz", mu=mu, sigma=sigma, num=np.array([1, 2]))
    assert main(["gan", "fid", str(tmp_path / "a.npz"), str(tmp_path / "a.npz")]) == 2
    assert "'num' must be one whole number" in capsys.readouterr().err


def test_statistics_of_different_dimensions_are_refused(tmp_path, capsys):
    np.savez(tmp_path / "a.npz", mu=np.zeros(3), sigma=np.eye(3))
    np.savez(tmp_path / "b.npz", mu=np.zeros(4), sigma=np.eye(4))
    assert main(["gan", "fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 2
    assert "different feature networks" in capsys.readouterr().err
    np.savez(tmp_path / "c.npz", mu=np.zeros(3), sigma=np.eye(3), fid_features="digits")
    np.savez(tmp_path / "d.npz", mu=np.zeros(3), sigma=np.eye(3), fid_features="inception-tf")
    assert main(["gan", "fid", str(tmp_path / "c.npz"), str(tmp_path / "d.npz")]) == 2
    assert "different feature networks (digits, inception-tf)" in capsys.readouterr().err


def test_fid_names_follow_stylegan2_ada():
    assert fid_name(50_000, None) == "fid50k_full"
    assert fid_name(50_000, 50_000) == "fid50k"
    assert fid_name(10_000, 10_000) == "fid10k"
    assert fid_name(500, None) == "fid500_full"


def test_zip_written_by_data_pack_scores_as_its_folder(images, tmp_path):
    (tmp_path / "src").mkdir()
    for i, image in enumerate(images[0]):
        Image.fromarray(image.numpy()).save(tmp_path / "src" / f"{i:03d}.png")
    assert main(["data", "pack", str(tmp_path / "src"), str(tmp_path / "d.zip"),
                 "--resolution", "16"]) == 0
    record = run_fid(tmp_path / "d.zip", tmp_path / "src")
    assert abs(record["fid"]) < 1e-4 and "dataset zip" in record["a"] and record["num_a"] == 40


def test_real_statistics_leave_out_the_mirror_copies():
    """--mirror doubles the training data; FID's reals stay the 1,797 stored digits, as
    stylegan2-ada's fid50k_full reads the dataset with xflip=False."""
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.data import build_data
    from robustrep.tasks.gan.evaluate import real_reference
    from robustrep.tasks.gan.feature_nets import build_extractor
    from robustrep.tasks.gan.presets import PRESETS
    cfg = GanConfig(**{**PRESETS["digits-dcgan"], "image_size": 16, "mirror": True})
    data, cpu = build_data(cfg), torch.device("cpu")
    net, info = build_extractor(cfg, data, cpu)
    assert len(data) == 2 * 1797
    assert real_reference(cfg, data, net, info, cpu, max_real=None)["stats"].num == 1797


def test_options_with_nothing_to_act_on_are_refused(images, tmp_path, capsys):
    # --num with two files, --resolution with no folder: ignored without a word before
    np.save(tmp_path / "a.npy", images[0].numpy())
    for flag, value, needle in (("--num", "500", "--num 500 sets the samples drawn from a GAN run"),
                                ("--resolution", "32", "--resolution 32 sizes the images of a")):
        assert main(["gan", "fid", str(tmp_path / "a.npy"), "digits", flag, value]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
    # --range: ignored for 8-bit samples and for images (FID 19.6441 with or without it)
    assert images[0].dtype == torch.uint8
    assert main(["gan", "fid", str(tmp_path / "a.npy"), "digits", "--range", "0,1"]) == 2
    assert "a.npy: samples are uint8 (0..255), not the declared range 0,1; drop --range" in \
        capsys.readouterr().err
    folder = tmp_path / "png"
    folder.mkdir()
    Image.fromarray(images[0][0].numpy()).save(folder / "0.png")
    assert main(["gan", "fid", str(folder), "digits", "--range", "0,1"]) == 2
    assert "--range 0,1 is the value range of float samples in a .pt/.npy/.npz file, and " \
           "neither A nor B is one" in capsys.readouterr().err


def test_save_stats_replaces_a_file_only_with_force(images, tmp_path, capsys):
    """Was `exists; remove it`, where gan sample offers --force: the same option and words now.
    A file is replaced whole (written beside it, then renamed), never when it is A or B."""
    a, b = images
    np.save(tmp_path / "a.npy", a.numpy())
    np.save(tmp_path / "b.npy", b.numpy())
    stats = tmp_path / "s.npz"
    run_fid(tmp_path / "a.npy", "--save-stats", stats)
    before, a_mu = stats.read_bytes(), np.load(stats)["mu"]
    argv = ["gan", "fid", str(tmp_path / "b.npy"), "--save-stats", str(stats),
            "--fid-features", "digits"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"robustrep gan fid: error: --save-stats {stats} already "
                                       f"exists; pass --force to overwrite it or choose another "
                                       f"name\n")
    assert stats.read_bytes() == before
    assert main([*argv, "--force"]) == 0
    run_fid(tmp_path / "b.npy", "--save-stats", tmp_path / "b-stats.npz")
    b_mu = np.load(tmp_path / "b-stats.npz")["mu"]
    assert np.array_equal(np.load(stats)["mu"], b_mu) and not np.array_equal(a_mu, b_mu)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    samples = tmp_path / "samples.npz"
    np.savez(samples, a=a.numpy())
    kept = samples.read_bytes()
    for sides, side in (([samples], "A"), ([tmp_path / "a.npy", samples], "B")):
        capsys.readouterr()
        assert main(["gan", "fid", *map(str, sides), "--save-stats", str(samples), "--force",
                     "--fid-features", "digits"]) == 2
        assert f"--save-stats {samples} is {side} ({samples}), which the statistics are " \
               f"computed from; choose another name" in capsys.readouterr().err
    assert samples.read_bytes() == kept
    assert main(["gan", "fid", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--force",
                 "--fid-features", "digits"]) == 2
    assert "--force overwrites an existing --save-stats file, and no --save-stats is given" in \
        capsys.readouterr().err


def test_statistics_that_name_no_network_are_said_to_be_scored_by_the_default(images, tmp_path,
                                                                             monkeypatch, capsys):
    # Was: a pytorch-fid --save-stats file (mu, sigma alone) scored in the TF-FID convention
    # without a word (62.06 where pytorch-fid's own network gives 68.62)
    from torch import nn

    from robustrep.tasks.gan import fid as fid_module
    info = {"fid_features": "inception-tf", "fid_convention": "TF-FID (torch-fidelity)"}

    class FirstFour(nn.Module):  # a stand-in network: no Inception weights offline
        def forward(self, x):
            return x.flatten(1)[:, :4].double()

    monkeypatch.setattr(fid_module, "_network", lambda *a: (FirstFour(), info))
    a, _ = images
    np.save(tmp_path / "a.npy", a.numpy())
    np.savez(tmp_path / "bare.npz", mu=np.zeros(4), sigma=np.eye(4))
    args = build_parser("gan").parse_args(["gan", "fid", str(tmp_path / "a.npy"),
                                           str(tmp_path / "bare.npz"), "--quiet"])
    args.torch_device = torch.device("cpu")
    record = compare(args)
    assert capsys.readouterr().err == (
        f"note: {tmp_path / 'bare.npz'} holds mu and sigma that name no network or convention "
        f"(a pytorch-fid --save-stats file, or published statistics): the other side was "
        f"computed with inception-tf (TF-FID (torch-fidelity)); a file pytorch-fid wrote is "
        f"compared with --fid-features inception-pytorch-fid\n")
    # the record too (was: fid_convention TF-FID alone, of a side that may be another)
    unnamed = {"fid_features": "inception-tf for A; B's statistics name none",
               "fid_convention": "TF-FID (torch-fidelity) for A; B's statistics name none"}
    assert {k: record[k] for k in unnamed} == unnamed
    args.fid_features = "inception"  # chosen: nothing assumed, nothing said
    record = compare(args)
    assert capsys.readouterr().err == "" and {k: record[k] for k in unnamed} == unnamed


def test_a_record_of_two_statistics_files_names_what_each_names(tmp_path):
    """Was: ``fid_features  as the statistics files`` of two bare files, and the one network
    named by one file alone, as if both named it; no convention at all."""
    (mu1, s1), (mu2, s2) = random_stats(16, 0), random_stats(16, 1)
    named = {"fid_features": np.array("digits"), "fid_convention": np.array("grey 16x16")}
    np.savez(tmp_path / "bare_a.npz", mu=mu1, sigma=s1)
    np.savez(tmp_path / "bare_b.npz", mu=mu2, sigma=s2)
    np.savez(tmp_path / "named_a.npz", mu=mu1, sigma=s1, **named)
    np.savez(tmp_path / "named_b.npz", mu=mu2, sigma=s2, **named)
    for a, b, features, convention in (
            ("bare_a", "bare_b", "named by neither statistics file",
             "named by neither statistics file"),
            ("named_a", "bare_b", "digits for A; B's statistics name none",
             "grey 16x16 for A; B's statistics name none"),
            ("bare_a", "named_b", "digits for B; A's statistics name none",
             "grey 16x16 for B; A's statistics name none"),
            ("named_a", "named_b", "digits", "grey 16x16")):
        record = run_fid(tmp_path / f"{a}.npz", tmp_path / f"{b}.npz")
        assert (record["fid_features"], record["fid_convention"]) == (features, convention)


def test_save_stats_keeps_a_file_written_there_while_it_worked(images, tmp_path, monkeypatch,
                                                               capsys):
    # was: checked at the start only, and the final rename replaced the other process's file
    from robustrep.tasks.gan import fid
    np.save(tmp_path / "a.npy", images[0].numpy())
    stats, original = tmp_path / "s.npz", fid.side_features

    def side_features(*args, **kwargs):
        stats.write_bytes(b"another process's")
        return original(*args, **kwargs)
    monkeypatch.setattr(fid, "side_features", side_features)
    argv = ["gan", "fid", str(tmp_path / "a.npy"), "--save-stats", str(stats),
            "--fid-features", "digits"]
    assert main(argv) == 2
    assert (f"cannot write {stats}: File exists; another process wrote it while this one "
            f"worked") in capsys.readouterr().err
    assert stats.read_bytes() == b"another process's"
    assert main([*argv, "--force"]) == 0 and "mu" in np.load(stats)


def test_save_stats_is_written_before_kid_and_kid_shows_its_progress(images, tmp_path,
                                                                    monkeypatch, capsys):
    # Was: the file was written after KID (12-46 s without a word on 2 CPU cores), so a stop
    # during KID lost it
    from robustrep.tasks.gan import evaluate
    np.save(tmp_path / "a.npy", images[0].numpy())
    np.save(tmp_path / "b.npy", images[1].numpy())
    stats = tmp_path / "s.npz"

    def stopped(*args, **kwargs):
        assert stats.is_file()
        raise KeyboardInterrupt
    monkeypatch.setattr(evaluate, "kid", stopped)
    argv = ["gan", "fid", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--save-stats",
            str(stats), "--fid-features", "digits"]
    assert main(argv) == 130 and "mu" in np.load(stats)
    err = capsys.readouterr().err
    stats.unlink()
    from robustrep.tasks.gan import fid
    sides = []

    def b_stopped(*args, **kwargs):  # B's features: a stop there had lost A's statistics
        sides.append(stats.is_file())
        if len(sides) == 2:
            raise KeyboardInterrupt
        return side_features(*args, **kwargs)
    side_features = fid.side_features
    monkeypatch.setattr(fid, "side_features", b_stopped)
    assert main(argv) == 130 and sides == [False, True] and "mu" in np.load(stats)
    monkeypatch.setattr(fid, "side_features", side_features)
    assert err.splitlines()[-1] == (
        f"robustrep gan fid: interrupted (Ctrl-C); --save-stats {stats} was written whole, the "
        f"scores not; the same command again needs --force to write it again")
    monkeypatch.undo()
    stats.unlink()
    bars, shown = [], evaluate.progress
    monkeypatch.setattr(evaluate, "progress", lambda *a, **k: bars.append(shown(*a, **k)) or
                        bars[-1])
    assert main(argv) == 0
    kid_bar = next(bar for bar in bars if bar.desc == "KID subsets")
    assert kid_bar.n == kid_bar.total == 100  # torch-fidelity's 100 subsets, told as they go


def test_save_stats_lost_to_another_process_still_prints_the_scores(images, tmp_path,
                                                                    monkeypatch, capsys):
    """Two processes writing one new --save-stats file: the one whose file is refused (EEXIST)
    had computed the scores and printed none; it prints them as the other does (less the file
    it did not write), then its one line, exit 2."""
    from robustrep.tasks.common import runfiles
    np.save(tmp_path / "a.npy", images[0].numpy())
    np.save(tmp_path / "b.npy", images[1].numpy())
    stats = tmp_path / "s.npz"
    argv = ["gan", "fid", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--save-stats",
            str(stats), "--fid-features", "digits", "--quiet"]
    assert main(argv) == 0
    winner = capsys.readouterr().out
    stats.unlink()

    def taken(src, dst):  # the other process's file made there first
        raise FileExistsError(17, "File exists", str(dst))
    monkeypatch.setattr(runfiles.os, "link", taken)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "".join(line for line in winner.splitlines(keepends=True)
                          if not line.startswith("save_stats"))
    assert "fid  " in out and err == (
        f"robustrep gan fid: error: cannot write {stats}: File exists; another process wrote it "
        f"while this one worked; remove it or choose another path (the other process's file "
        f"is kept)\n")
    assert not list(tmp_path.glob(".s.npz.*"))
