"""gan eval / gan sample on tiny runs, and training on data written in its real on-disk format."""

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.tasks.cli import main
from robustrep.tasks.gan.feature_nets import inception_path
from robustrep.tasks.gan.train import train


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    run = tmp_path_factory.mktemp("eval") / "digits"
    cfg = GanConfig(**{**PRESETS["digits-dcgan"], "image_size": 16, "g_width": 8, "d_width": 8,
                       "z_dim": 16, "batch_size": 8, "steps": 2, "eval_every": 1,
                       "eval_samples": 64, "ckpt_every": 1, "log_every": 1, "out": str(run)})
    train(cfg, show_progress=False)
    return run


def test_training_evaluates_and_draws(digits_run, records):
    evals = [r for r in records(digits_run) if "fid" in r]
    assert [r["step"] for r in evals] == [1, 2]
    for r in evals:
        assert r["fid"] > 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
        assert np.isfinite(r["kid"])
        assert r["fid_features"] == "digits" and "digits CNN" in r["fid_convention"]
        assert r["kid_subset_size"] == 64 and r["kid_subsets"] == 10  # 64 generated samples
    assert (digits_run / "samples" / "step_00000002.png").is_file()
    assert (digits_run / "plots" / "losses.png").is_file()
    assert (digits_run / "plots" / "metrics.png").is_file()


def test_gan_eval_writes_json_and_table(digits_run, capsys):
    out = digits_run / "eval-test.json"
    assert main(["gan", "eval", str(digits_run), "--num-samples", "100", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    metrics = json.loads(out.read_text())
    for key in ("fid", "kid", "kid_std", "precision", "recall"):
        assert key in metrics and key in table
    assert metrics["step"] == 2 and metrics["num_samples"] == 100
    assert metrics["extractor"] == "digits-cnn" and metrics["feature_net_test_accuracy"] > 0.5
    assert metrics["fid_features"] == "digits" and metrics["kid_subset_size"] == 100
    assert "fid_features" in table and "kid_subset_size" in table
    # the same checkpoint scores the same (fixed evaluation seed)
    assert main(["gan", "eval", str(digits_run), "--num-samples", "100", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["fid"] == metrics["fid"]


def test_gan_eval_real_all_names_the_metric(digits_run, capsys):
    out = digits_run / "eval-full.json"
    assert main(["gan", "eval", str(digits_run), "--num", "100", "--real", "all",
                 "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["num_real"] == 1797 and metrics["fid_name"] == "fid100_full"
    assert metrics["fid100_full"] == metrics["fid"] and "fid100_full" in capsys.readouterr().out
    for real in ("0", "1"):  # 1 was a library error naming no option: "mean_cov needs ..."
        with pytest.raises(SystemExit) as stop:
            main(["gan", "eval", str(digits_run), "--real", real, "--num", "2"])
        assert stop.value.code == 2 and (f"argument --real: must be an integer in [2, "
                                         f"2147483647], or all; got '{real}'"
                                         ) in capsys.readouterr().err


def test_gan_fid_scores_a_run_against_a_folder(digits_run, tmp_path, capsys):
    """gan fid RUN FOLDER: the run's G-EMA samples, on the net the run names (digits)."""
    from robustrep.data import digits
    from PIL import Image
    folder = tmp_path / "reals"
    folder.mkdir()
    for i, image in enumerate(digits(16, 1, train=None).images[:200, 0]):
        Image.fromarray((image * 255).round().byte().numpy()).save(folder / f"{i:04d}.png")
    assert main(["gan", "fid", str(digits_run), str(folder), "--num", "100"]) == 0
    table = capsys.readouterr().out
    assert "G-EMA, step 2, 100 samples" in table and "fid_features     digits" in table
    fid = float(next(line.split()[1] for line in table.splitlines() if line.startswith("fid ")))
    assert 0 < fid < 1e3


def test_gan_sample_grid_and_pt(digits_run, tmp_path, capsys):
    grid, pt = tmp_path / "g.png", tmp_path / "s.pt"
    assert main(["gan", "sample", str(digits_run), "--num", "10", "--grid", str(grid),
                 "--pt", str(pt)]) == 0
    assert Image.open(grid).size[0] > 16
    saved = torch.load(pt)
    assert saved["samples"].shape == (10, 1, 16, 16)
    assert saved["samples"].min() >= -1 and saved["samples"].max() <= 1


def test_gan_sample_outdir_writes_each_grid_image_as_its_own_png(digits_run, tmp_path, capsys):
    """--outdir: one PNG per image, the pixels the grid holds (tools such as pytorch-fid read
    the folder); a second call without --force leaves the files as they were."""
    out, grid = tmp_path / "imgs", tmp_path / "g.png"
    assert main(["gan", "sample", str(digits_run), "--num", "3", "--outdir", str(out), "--grid",
                 str(grid), "--nrow", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "000002.png"]
    images = [np.asarray(Image.open(out / f"{i:06d}.png")) for i in range(3)]
    assert images[0].shape == (16, 16) and images[0].dtype == np.uint8
    tiles = np.asarray(Image.open(grid).convert("L"))  # torchvision: 2-pixel padding
    for i, image in enumerate(images):
        assert np.array_equal(tiles[2:18, 2 + 18 * i:18 + 18 * i], image)
    capsys.readouterr()
    (out / "000001.png").write_bytes(b"mine")
    assert main(["gan", "sample", str(digits_run), "--num", "3", "--outdir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds 000000.png and 2 more" in err
    assert (out / "000001.png").read_bytes() == b"mine"
    assert np.array_equal(np.asarray(Image.open(out / "000000.png")), images[0])


def test_gan_sample_seeds_draws_each_seeds_own_image(digits_run, tmp_path):
    """A seed's image is the same however many seeds are asked for (z from the seed alone)."""
    assert main(["gan", "sample", str(digits_run), "--seeds", "3-5", "9", "--outdir",
                 str(tmp_path / "a")]) == 0
    assert main(["gan", "sample", str(digits_run), "--seeds", "9", "--outdir",
                 str(tmp_path / "b")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "seed0003.png", "seed0004.png", "seed0005.png", "seed0009.png"]
    a, b = (np.asarray(Image.open(tmp_path / d / "seed0009.png")) for d in "ab")
    assert np.array_equal(a, b) and a.std() > 0
    assert not np.array_equal(a, np.asarray(Image.open(tmp_path / "a" / "seed0005.png")))


@pytest.mark.parametrize("argv, expect", [
    (["--seeds", "0-2", "--num", "5"], "--seeds draws one image per seed: drop --num"),
    (["--seeds", "2-1"], "--seeds: must be .* or ranges a-b \\(0-7,12\\) of at most "
                         "1,000,000 values; got '2-1'"),
    (["--seeds", "1,2,1"], "--seeds: seed 1 is given twice"),
    (["--seeds", "-1"], "--seeds: must be a list of values, each an integer in "
                        "\\[0, 4294967295\\]"),
    (["--seeds", "0-4294967296"], "got '0-4294967296'"),
    (["--noise-mode", "const"], "noise inputs; .*DCGANGenerator has none"),
    (["--class", "1"], "is an unconditional network; drop it"),
    (["--outdir", "o", "--nrow", "4"], "--nrow 4 sets the grid's rows, and --outdir writes no "
                                       "grid"),
])
def test_gan_sample_refuses_what_it_cannot_honour(digits_run, tmp_path, capsys, monkeypatch,
                                                  argv, expect):
    import re
    monkeypatch.chdir(tmp_path)
    before = sorted((digits_run / "samples").iterdir())
    try:
        code = main(["gan", "sample", str(digits_run), *argv])
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and re.search(expect, err), err
    assert sorted((digits_run / "samples").iterdir()) == before and not (tmp_path / "o").exists()


def test_a_long_seed_list_is_checked_in_one_pass():
    """``--seeds 0-49999`` (generate.py's fid50k set): the repeat check was pairwise, minutes
    before the first image (60,000 seeds: 16 s); a repeat is still named."""
    import time
    from robustrep.tasks.common.config import ConfigError
    from robustrep.tasks.gan.sample import _check_request
    seeds = list(range(60_000))
    start = time.perf_counter()
    assert _check_request(64, None, None, "out", seeds, 0) == seeds
    assert time.perf_counter() - start < 2
    with pytest.raises(ConfigError, match=r"^--seeds: seed 59998 is given twice; give each "):
        _check_request(64, None, None, "out", [*seeds, 59998, 5], 0)


def test_a_damaged_latest_checkpoint_names_the_last_step_file(digits_run, tmp_path, capsys):
    """Was: "... use another checkpoint", naming none; the step files beside latest.pt are
    whole (--resume names the last one too). gan fid has no --checkpoint: copy it over."""
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    latest = run / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:1000])
    last = run / "checkpoints" / "step_00000002.pt"
    for argv, advice in ((["gan", "eval", str(run), "--num", "4"], "give --checkpoint "
                          "step_00000002.pt"),
                         (["gan", "sample", str(run), "--num", "4"], "give --checkpoint "
                          "step_00000002.pt"),
                         (["gan", "fid", str(run), "digits", "--num", "4"],
                          f"copy it over {latest} to use it")):
        assert main([*argv, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"robustrep {' '.join(argv[:2])}: error: checkpoint {latest} is "
                              f"not a readable "), err
        assert err.endswith(f"; {last} is there, the last step written: {advice}\n"), err
        assert err.count("\n") == 1
    assert main(["gan", "sample", str(run), "--num", "4", "--quiet",
                 "--checkpoint", last.name]) == 0


def test_grid_run_mode_stats(tiny_cfg, tmp_path, capsys, undrawn_curves):
    run = tmp_path / "grid"
    train(tiny_cfg("grid-mlp", out=str(run), final_eval=True), show_progress=False)
    assert main(["gan", "eval", str(run), "--num-samples", "500"]) == 0
    metrics = json.loads((run / "eval.json").read_text())
    assert 0 <= metrics["modes_covered"] <= 25 and metrics["num_modes"] == 25
    assert 0 <= metrics["high_quality"] <= 1
    # G itself is scored beside the EMA: eval.json used to be replaced by its record
    assert main(["gan", "eval", str(run), "--num-samples", "500", "--no-ema"]) == 0
    assert json.loads((run / "eval.json").read_text()) == metrics
    assert json.loads((run / "eval-noema.json").read_text())["generator"] == "G"
    assert main(["gan", "sample", str(run), "--num", "100"]) == 0
    assert main(["gan", "sample", str(run), "--num", "50", "--no-ema"]) == 0
    # other images, another default name: the first grid was replaced by the second before
    names = sorted(p.name for p in (run / "samples").glob("sample-step*.png"))
    assert [n.split("-", 2)[2] for n in names] == ["seed0-n100.png", "seed0-n50-noema.png"]


def test_no_ema_on_a_run_that_keeps_no_g_ema_says_so(digits_run, tiny_cfg, tmp_path, capsys):
    # Was: silent; --no-ema sampled G, as the call without it does on such a run
    run = tmp_path / "noema"
    train(tiny_cfg(steps=1, ema_decay=0, out=str(run)), show_progress=False)
    note = (f"note: --no-ema: {run} keeps no EMA copy (trained with ema_decay 0); its raw "
            f"weights, the only ones, are used, as they would be without --no-ema\n")
    sample = ["gan", "sample", "--num", "2", "--outdir", str(tmp_path / "o"), "--force", "--quiet"]
    assert main([*sample, str(run), "--no-ema"]) == 0
    assert capsys.readouterr().err == note
    assert main([*sample, str(run)]) == 0  # not asked for
    assert main([*sample, str(digits_run), "--no-ema"]) == 0  # a run with a G-EMA
    assert "--no-ema" not in capsys.readouterr().err


def _write_cifar10(root, n=8):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)


def test_cifar_format_trains_and_eval_needs_inception(tiny_cfg, tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    _write_cifar10(root)
    run = tmp_path / "run"
    cfg = tiny_cfg("cifar10-dcgan", image_size=32, g_width=4, d_width=4, num_workers=0,
                   data_root=str(root), out=str(run))
    train(cfg, show_progress=False)
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["step"] == 2
    monkeypatch.delenv("ROBUSTREP_INCEPTION", raising=False)
    assert main(["gan", "eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert "--inception-weights" in err and "pt_inception-2015-12-05-6726825d.pth" in err
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    assert main(["gan", "eval", str(run), "--inception-weights", str(bad)]) == 2
    assert "does not fit the FID Inception" in capsys.readouterr().err


TINY_TRAIN = ["--image-size", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
              "--batch-size", "8", "--steps", "1", "--device", "cpu", "--quiet"]
ACTS_ON_NOTHING = ("--inception-weights applies only with the Inception FID features "
                   "(--fid-features inception; these are digits{}); drop it or set that option")


def test_inception_weights_missing_or_acting_on_nothing_are_refused_first(digits_run, tmp_path,
                                                                          capsys):
    """Was: on the digits network (the digits default) a missing --inception-weights FILE was
    accepted by gan train and gan eval without a word, exit 0."""
    missing = tmp_path / "none.pth"
    gone = ("--inception-weights {} does not exist; give the file "
            "pt_inception-2015-12-05-6726825d.pth (or leave the option out: "
            "$ROBUSTREP_INCEPTION, else robustrep's cached copy)")
    run = tmp_path / "run"
    cases = [  # (argv, the error)
        (["gan", "train", "--out", str(run), *TINY_TRAIN, "--inception-weights", str(missing)],
         ACTS_ON_NOTHING.format(", the default for dataset digits")),
        (["gan", "train", "--out", str(run), *TINY_TRAIN, "--inception-weights", str(missing),
          "--fid-features", "inception"], gone.format(missing)),
        (["gan", "train", "--resume", str(digits_run), "--steps", "3", "--inception-weights",
          str(tmp_path)], ACTS_ON_NOTHING.format(", the default for dataset digits").replace(
              "drop it or set that option", "drop it")),  # a resume keeps its --fid-features
        (["gan", "eval", str(digits_run), "--inception-weights", str(missing)],
         ACTS_ON_NOTHING.format(", the default for dataset digits")),
        (["gan", "eval", str(digits_run), "--inception-weights", str(missing), "--fid-features",
          "inception", "--out", str(tmp_path / "e.json")], gone.format(missing)),
        (["gan", "eval", str(digits_run), "--inception-weights", str(tmp_path), "--fid-features",
          "inception", "--out", str(tmp_path / "e.json")],
         gone.format(tmp_path).replace("does not exist", "is a folder")),
    ]
    # a run scored on Inception (its own file was not kept): a resume names the missing one
    inception_run = shutil.copytree(digits_run, tmp_path / "inception-run")
    saved = json.loads((inception_run / "config.json").read_text())
    (inception_run / "config.json").write_text(json.dumps({**saved, "fid_features": "inception"}))
    cases.append((["gan", "train", "--resume", str(inception_run), "--steps", "3",
                   "--inception-weights", str(missing)], gone.format(missing)))
    before = {p: p.stat().st_mtime_ns for p in (*digits_run.rglob("*"),
                                                *inception_run.rglob("*"))}
    for argv, error in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err == f"robustrep {' '.join(argv[:2])}: error: {error}\n", (argv, err)
    assert list(tmp_path.iterdir()) == [inception_run]  # no run folder, no record
    assert {p: p.stat().st_mtime_ns for p in (*digits_run.rglob("*"),
                                              *inception_run.rglob("*"))} == before


def test_image_folder_64(tiny_cfg, tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (70, 80, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    cfg = tiny_cfg("imagefolder-dcgan64", image_size=64, g_width=4, d_width=4, steps=1,
                   num_workers=0, data_root=str(folder), out=str(run), reg="srmix")
    train(cfg, show_progress=False)
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert state["step"] == 1


def test_inception_path_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ROBUSTREP_INCEPTION", str(tmp_path / "w.pth"))
    with pytest.raises(FileNotFoundError, match=r"^\$ROBUSTREP_INCEPTION names .*w\.pth, which "
                                                r"does not exist"):  # was: "not found", no source
        inception_path(None)
    (tmp_path / "w.pth").write_bytes(b"")
    assert inception_path(None) == tmp_path / "w.pth"
    assert inception_path("x.pth").name == "x.pth"
    monkeypatch.delenv("ROBUSTREP_INCEPTION")
    with pytest.raises(FileNotFoundError, match="ROBUSTREP_INCEPTION"):
        inception_path(None)


# --- domain feature networks: --fid-features run:CLASSIFY_RUN ---------------------------------

def _write_class_folders(root, per_class=10, size=16):
    """Two classes of RGB PNGs: bright left half vs bright right half."""
    rng = np.random.default_rng(0)
    for label in range(2):
        (root / f"c{label}").mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            half = slice(0, size // 2) if label == 0 else slice(size // 2, size)
            img[:, half] += 180
            Image.fromarray(img).save(root / f"c{label}" / f"{i}.png")


@pytest.fixture(scope="module")
def folder_and_classifier(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runfeat")
    folder, clf = tmp / "images", tmp / "clf"
    _write_class_folders(folder)
    assert main(["classify", "train", "--preset", "smoke", "--dataset", "imagefolder",
                 "--data-root", str(folder), "--image-size", "16", "--out", str(clf),
                 "--device", "cpu", "--quiet"]) == 0
    return folder, clf


GAN_TINY = ["--image-size", "16", "--g-width", "4", "--d-width", "4", "--z-dim", "8",
            "--batch-size", "4", "--steps", "2", "--eval-every", "1", "--eval-samples", "8",
            "--ckpt-every", "1", "--num-workers", "0", "--device", "cpu", "--quiet"]


def test_imagefolder_gan_reports_fid_on_classify_run_features(folder_and_classifier, tmp_path,
                                                               records, capsys, undrawn_curves):
    from robustrep.tasks.common.classifier_run import load_run
    from robustrep.tasks.gan.data import build_data
    from robustrep.tasks.gan.evaluate import EVAL_SEED, _real_batches
    from robustrep.tasks.gan.models import generate
    from robustrep.tasks.gan.sample import load_generator
    from robustrep.metrics import FeatureStats, frechet_distance
    folder, clf = folder_and_classifier
    run = tmp_path / "gan"
    assert main(["gan", "train", "--preset", "imagefolder-dcgan64", "--data-root", str(folder),
                 "--fid-features", f"run:{clf}", "--out", str(run), *GAN_TINY]) == 0
    assert json.loads((run / "config.json").read_text())["fid_features"] == f"run:{clf}"
    evals = [r for r in records(run) if "fid" in r]
    assert [r["step"] for r in evals] == [1, 2]
    for r in evals:
        assert r["fid"] > 0 and np.isfinite(r["kid"]) and 0 <= r["precision"] <= 1
        assert r["fid_features"] == f"run:{clf}" and "classify run" in r["fid_convention"]
        assert r["kid_subset_size"] == 8  # min(1000, 20 real, 8 generated), chosen explicitly

    # gan eval uses the run's network by default; its FID is the Frechet distance of the
    # classifier's pre-logit features, computed here by hand with the classify program's loader.
    assert main(["gan", "eval", str(run), "--num-samples", "12", "--device", "cpu"]) == 0
    metrics = json.loads((run / "eval.json").read_text())
    assert metrics["fid_features"] == f"run:{clf}" and metrics["kid_subset_size"] == 12
    net = load_run(clf)[0].features
    G, cfg, _, dev = load_generator(run, None, "cpu", True)
    with torch.no_grad():
        fake = net((generate(G, 12, dev, EVAL_SEED) + 1) / 2)
        real = torch.cat([net(x) for x in _real_batches(build_data(cfg), 50_000)])
    want = frechet_distance(*FeatureStats().update(real).mean_cov(),
                            *FeatureStats().update(fake).mean_cov())
    assert metrics["fid"] == pytest.approx(want, rel=1e-6)


def test_fid_features_run_missing_is_one_line_error(folder_and_classifier, tmp_path, capsys):
    folder, clf = folder_and_classifier
    nowhere = tmp_path / "no-such-run"
    assert main(["gan", "train", "--preset", "imagefolder-dcgan64", "--data-root", str(folder),
                 "--fid-features", f"run:{nowhere}", "--out", str(tmp_path / "g"),
                 *GAN_TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(nowhere) in err and "does not exist" in err
    assert main(["gan", "train", "--preset", "imagefolder-dcgan64", "--data-root", str(folder),
                 "--fid-features", "vgg", "--dry-run"]) == 2
    assert "inception, inception-pytorch-fid, digits, run:CLASSIFY_RUN" in capsys.readouterr().err


def test_kl_uniform_without_any_covered_mode_is_null_with_a_note():
    """0 modes covered: the mode histogram is empty and its KL to uniform undefined; the record
    says so (null + kl_uniform_note, valid JSON) and the table prints n/a, not a bare nan."""
    from types import SimpleNamespace

    from robustrep.data.builtin import grid_centers
    from robustrep.tasks.gan.evaluate import Evaluator, format_table

    data = SimpleNamespace(is_points=True, centers=grid_centers(), std=0.05)
    evaluator = Evaluator(None, data, torch.device("cpu"), 50)
    far = evaluator.score_points(torch.full((50, 2), 100.0))
    assert far["modes_covered"] == 0 and far["kl_uniform"] is None
    assert "none of the 50 samples lies within 3 std of a mode" in far["kl_uniform_note"]
    json.dumps(far, allow_nan=False)
    table = format_table(far)
    assert "kl_uniform       n/a" in table and "nan" not in table
    near = evaluator.score_points(data.centers.repeat(2, 1))  # every mode twice: KL 0
    assert near["kl_uniform"] == pytest.approx(0.0, abs=1e-12) and "kl_uniform_note" not in near


def test_the_table_prints_a_zero_from_below_as_zero():
    # Was: "fid  -0.0000" for a set against itself (FID rounds to zero from below)
    from robustrep.tasks.gan.evaluate import format_table
    assert format_table({"fid": -3e-9, "kid": 0.25, "x": None}).splitlines() == [
        "fid  0.0000", "kid  0.2500", "x    n/a"]


def test_an_evaluation_shows_the_images_done_with_an_estimate(tiny_cfg, monkeypatch, capsys):
    """gan eval and the evaluations inside training write progress lines (stderr is no terminal
    here) for the real features and for the generated images, with their totals."""
    import functools

    from robustrep.tasks.common.progress import progress
    from robustrep.tasks.gan import evaluate
    from robustrep.tasks.gan.data import build_data
    from robustrep.tasks.gan.models import build_generator

    monkeypatch.setattr(evaluate, "progress", functools.partial(progress, interval=0))
    cfg = tiny_cfg()
    data = build_data(cfg)
    # 301 reals: a count no other test caches, so the real features are computed here
    scores = evaluate.Evaluator(cfg, data, torch.device("cpu"), 300, max_real=301, kid_subsets=2)(
        build_generator(cfg, data.shape))
    err = capsys.readouterr().err
    assert "features of the real digits images: image 250/301 " in err
    assert "generated images: image 300/300 (100%) " in err and "ETA" in err
    assert scores["num_samples"] == 300
    evaluate.Evaluator(cfg, data, torch.device("cpu"), 300, max_real=302, kid_subsets=2,
                       show_progress=False)(
        build_generator(cfg, data.shape))
    assert capsys.readouterr().err == ""


def test_gan_eval_of_a_file_says_it_takes_a_run_folder(tmp_path, capsys):
    """Was: "cannot use the folder of --out NET.pkl/eval.json: NET.pkl is a file"; then advice
    to draw samples into a .pt first, where gan fid scores the pickle itself."""
    from robustrep.tasks.cli import main
    net = tmp_path / "NET.pkl"
    net.write_bytes(b"")
    assert main(["gan", "eval", str(net)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gan eval scores a run folder" in err
    assert f"score a network pickle's G-EMA with gan fid {net} REF" in err


def test_kept_features_are_a_random_subset_whatever_the_stream_order():
    # the first `keep` were kept: a folder sorted by class gave KID and PR one or two classes
    from robustrep.tasks.gan.evaluate import KeptSubset
    rows = torch.arange(1000.0)[:, None]
    subset = KeptSubset(100)
    for chunk in rows.split(64):
        subset.add(chunk)
    kept = subset.result()
    assert kept.shape == (100, 1) and len(kept.unique()) == 100
    assert bool((kept[1:] > kept[:-1]).all())  # in stream order
    assert 300 < kept.mean() < 700 and kept.max() > 900  # from all of the stream
    small = KeptSubset(100)
    small.add(rows[:40])
    assert torch.equal(small.result(), rows[:40])  # all of a shorter stream


def test_precision_recall_judge_a_random_subset_of_the_larger_side():
    # fake: 40 samples from class 0's cluster; real: 400 sorted by class, 10 classes of 40: the
    # first 40 reals are class 0, so first-in-order subsets gave a recall of about 1
    from robustrep.metrics import FeatureStats
    from robustrep.tasks.gan.evaluate import score_features
    gen = torch.Generator().manual_seed(0)
    centers = 10 * torch.randn(10, 8, generator=gen, dtype=torch.float64)
    real = (centers[:, None] + torch.randn(10, 40, 8, generator=gen, dtype=torch.float64))
    real = real.reshape(400, 8)
    fake = centers[0] + torch.randn(40, 8, generator=gen, dtype=torch.float64)

    def side(f):
        stats = FeatureStats()
        stats.update(f)
        return {"stats": stats, "feats": f}

    out = score_features(side(real), side(fake), kid_subsets=2, pr_samples=40)
    assert out["pr_samples"] == 40 and out["precision"] > 0.9 and out["recall"] < 0.3


def test_precision_recall_take_each_sides_own_count_as_torch_fidelity():
    # was: min(|A|, |B|) of both sides: 200 reals against 80 samples gave precision 0.800
    # where torch-fidelity gives 0.725
    prc = pytest.importorskip("torch_fidelity.metric_prc")
    from robustrep.metrics import FeatureStats
    from robustrep.tasks.gan.evaluate import score_features
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(200, 16, generator=gen), 1.2 * torch.randn(80, 16, generator=gen)

    def side(f):
        stats = FeatureStats()
        stats.update(f)
        return {"stats": stats, "feats": f}
    want = prc.prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=10000,
                                      save_cpu_ram=False, verbose=False)
    reals = side(real)
    for _ in range(2):  # the second from the reals' kept radii
        got = score_features(reals, side(fake), kid_subsets=2)
        assert (got["pr_samples"], got["pr_samples_real"]) == (80, 200)
        assert got["precision"] == pytest.approx(want["precision"], abs=1e-6)
        assert got["recall"] == pytest.approx(want["recall"], abs=1e-6)
        assert 0.2 < got["precision"] < 0.9


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cached_real_side_on_the_cpu_scores_against_generated_features_on_cuda():
    # the real side is read from the cache onto the CPU, the fake side is where G ran: FID
    # refused tensors on two devices (found by reading; no GPU was lent when it was written)
    from robustrep.metrics import FeatureStats
    from robustrep.tasks.gan.evaluate import score_features
    gen = torch.Generator().manual_seed(0)
    real, fake = (torch.randn(64, 8, generator=gen, dtype=torch.float64) for _ in range(2))

    def side(f):
        return {"stats": FeatureStats().update(f), "feats": f}

    on_cpu = score_features(side(real), side(fake), kid_subsets=2, pr_samples=40)
    mixed = score_features(side(real), side(fake.cuda()), kid_subsets=2, pr_samples=40)
    assert mixed["fid"] == pytest.approx(on_cpu["fid"], rel=1e-9)


def test_a_run_without_g_ema_says_its_samples_and_scores_are_gs(tiny_cfg, tmp_path):
    """The SNGAN presets keep no G-EMA (mimicry's protocol): sampling and evaluating "the
    G-EMA" by default use G, and the names and records now say G (they said ema)."""
    from robustrep.tasks.gan.evaluate import evaluate_run
    from robustrep.tasks.gan.sample import sample_run
    from robustrep.tasks.gan.train import train
    run = tmp_path / "run"
    train(tiny_cfg(steps=1, ema_decay=0.0, out=str(run)), show_progress=False)
    record = sample_run(run, num=4, device="cpu")
    assert record["ema"] is False and record["grid"].endswith("-seed0-n4-noema.png")
    scores = evaluate_run(run, num_samples=16, device="cpu")
    assert scores["generator"] == "G"


@pytest.mark.parametrize("command", [["gan", "eval", "RUN", "--num", "20", "--out", "OUT"],
                                     ["gan", "fid", "RUN", "digits", "--num", "20"]])
def test_quiet_turns_the_feature_progress_off(digits_run, tmp_path, monkeypatch, command,
                                              few_digits):
    # Was: "unrecognized arguments: --quiet" although the docs offer it for both
    from robustrep.tasks.gan import evaluate, feature_nets
    shown = []

    def progress(*args, enabled=True, **kwargs):
        shown.append(enabled)
        return real(*args, enabled=enabled, **kwargs)

    real = evaluate.progress
    monkeypatch.setattr(evaluate, "progress", progress)
    monkeypatch.setattr(feature_nets, "progress", progress)
    monkeypatch.setattr(evaluate, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(feature_nets, "cache_dir", lambda: tmp_path)  # for few_digits' network
    argv = [str(digits_run) if a == "RUN" else str(tmp_path / "e.json") if a == "OUT" else a
            for a in command]
    assert main(argv) == 0 and any(shown)
    shown.clear()
    assert main([*argv[:-2], "--out", str(tmp_path / "q.json"), "--quiet"] if "eval" in argv
                else [*argv, "--quiet"]) == 0
    assert shown and not any(shown)


@pytest.fixture
def few_digits(monkeypatch):
    """The digits feature network trains on 64 digits (the cache key is unchanged: tests give
    it a cache of their own), so that training it takes a moment, not half a minute."""
    from types import SimpleNamespace

    from robustrep.data import digits
    from robustrep.tasks.gan import feature_nets

    def few(size, channels, train):
        data = digits(size, channels, train=train)
        return SimpleNamespace(images=data.images[:64], targets=data.targets[:64])
    monkeypatch.setattr(feature_nets, "digits", few)


def test_training_the_digits_feature_network_shows_its_progress(tmp_path, monkeypatch, capsys,
                                                                few_digits):
    """Was: one line, then up to half a minute with nothing moving; now the progress helper
    (here its plain lines: stderr is no terminal) counts the images trained on, with an
    estimate, only with progress shown and only when it is trained (not read from the cache)."""
    import functools

    from robustrep.tasks.common.progress import progress
    from robustrep.tasks.gan import feature_nets

    monkeypatch.setattr(feature_nets, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(feature_nets, "progress", functools.partial(progress, interval=0))
    trained = []
    real = feature_nets.train_digits_feature_net
    monkeypatch.setattr(feature_nets, "train_digits_feature_net",
                        lambda *a, **k: trained.append(1) or real(*a, **k))
    feature_nets.digits_feature_net((1, 16, 16), torch.device("cpu"), show_progress=True)
    lines = capsys.readouterr().err.splitlines()
    head = f"training the digits feature network for FID at 16x16 (once: cached in {tmp_path}): "
    assert lines[0].startswith(head + "image 64/320 (20%) ") and "ETA" in lines[0]
    assert lines[-1].startswith(head + "image 320/320 (100%) ")  # 5 epochs of 64
    assert len(lines) == 5
    feature_nets.digits_feature_net((1, 16, 16), torch.device("cpu"), show_progress=True)
    assert capsys.readouterr().err == "" and len(trained) == 1  # read from the cache
    for path in tmp_path.iterdir():
        path.unlink()
    feature_nets.digits_feature_net((1, 16, 16), torch.device("cpu"))  # --quiet: nothing shown
    assert capsys.readouterr().err == "" and len(trained) == 2


def test_a_cache_it_cannot_write_is_not_said_to_keep_the_network(tmp_path, monkeypatch, capsys,
                                                                  few_digits):
    # was: "(once: cached in DIR)" above the note that it could not be kept
    import functools

    from robustrep.tasks.common import runfiles
    from robustrep.tasks.common.progress import progress
    from robustrep.tasks.gan import feature_nets
    monkeypatch.setattr(feature_nets, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(feature_nets, "progress", functools.partial(progress, interval=0))
    monkeypatch.setattr(runfiles, "can_write", lambda folder: folder != tmp_path)
    feature_nets.digits_feature_net((1, 16, 16), torch.device("cpu"), show_progress=True)
    assert capsys.readouterr().err.splitlines()[0].startswith(
        f"training the digits feature network for FID at 16x16 (each time: {tmp_path} cannot be "
        f"written): image 64/320 ")


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: files and folders in ``folder`` cannot be made (EROFS, as on a
    read-only disk) while they read as before; root, who runs these tests in containers, writes
    through a chmod, so the system calls are refused here instead."""
    import builtins
    import errno
    import io
    import os
    import pathlib
    from pathlib import Path

    folders = []

    def inside(path):
        try:
            where = Path(os.fsdecode(path)).absolute()
        except TypeError:  # a file descriptor
            return False
        return any(where == f or f in where.parents for f in folders)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def mkdir(path, *args, **kwargs):
        if inside(path):
            if os.path.exists(path):  # the kernel says so first
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def io_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and inside(file):
            refuse(file)
        return real_io_open(file, mode, *args, **kwargs)

    real_mkdir, real_os_open, real_io_open = os.mkdir, os.open, io.open
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(builtins, "open", io_open)
    if hasattr(pathlib, "_NormalAccessor"):  # Python 3.10: Path's calls bound at import
        monkeypatch.setattr(pathlib._NormalAccessor, "mkdir", staticmethod(mkdir))
        monkeypatch.setattr(pathlib._NormalAccessor, "open", staticmethod(io_open))
    return lambda folder: folders.append(Path(folder).absolute())


def test_a_read_only_cache_is_read_and_what_it_cannot_keep_is_one_note(
        digits_run, private_cache, few_digits, read_only, tmp_path, capsys):
    """A filled read-only cache serves gan eval; a file the cache lacks is computed, and one
    note per file names the folder and ROBUSTREP_CACHE (it stopped gan eval after the work,
    although the cache only saves time)."""
    argv = ["gan", "eval", str(digits_run), "--num", "20", "--real", "40", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "filled.json")]) == 0
    kept = sorted(p.name for p in private_cache.iterdir())
    assert len(kept) == 2  # the feature network and the real statistics
    capsys.readouterr()
    read_only(private_cache)
    assert main([*argv, "--out", str(tmp_path / "read.json")]) == 0
    assert capsys.readouterr().err == ""
    assert json.loads((tmp_path / "read.json").read_text())["fid"] == json.loads(
        (tmp_path / "filled.json").read_text())["fid"]
    assert main([*argv[:-3], "--real", "41", "--quiet", "--out", str(tmp_path / "41.json")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("note: the feature statistics gan-real-digits-")
    assert err[0].endswith(f" could not be kept in robustrep's cache {private_cache} (Read-only "
                           f"file system); it is computed again next time: set ROBUSTREP_CACHE "
                           f"to a folder you can write to")
    assert (tmp_path / "41.json").is_file()
    assert sorted(p.name for p in private_cache.iterdir()) == kept


def test_a_cache_that_cannot_be_made_computes_and_says_so(
        digits_run, few_digits, read_only, tmp_path, monkeypatch, capsys):
    """ROBUSTREP_CACHE under a read-only folder: nothing can be kept, all is computed."""
    read_only(tmp_path / "ro")
    cache = tmp_path / "ro" / "cache"
    monkeypatch.setenv("ROBUSTREP_CACHE", str(cache))
    assert main(["gan", "eval", str(digits_run), "--num", "20", "--real", "40", "--quiet",
                 "--out", str(tmp_path / "e.json")]) == 0
    err = capsys.readouterr().err.splitlines()
    tail = (f" could not be kept in robustrep's cache {cache} (Read-only file system); it is "
            f"computed again next time: set ROBUSTREP_CACHE to a folder you can write to")
    assert len(err) == 2 and err[0] == "note: the digits feature network" + tail
    assert err[1].startswith("note: the feature statistics gan-real-digits-")
    assert err[1].endswith(tail)
    assert not cache.exists() and (tmp_path / "e.json").is_file()


def test_an_unfinished_run_is_said_to_be_one(digits_run, tmp_path, capsys):
    """Was: gan eval of a run still training (or stopped) printed its step's metrics with no
    word that the run goes on, where classify eval and ood score say so."""
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    run = tmp_path / "unfinished"
    cfg = GanConfig(**{**PRESETS["digits-dcgan"], "image_size": 16, "g_width": 8, "d_width": 8,
                       "z_dim": 16, "batch_size": 8, "steps": 3, "eval_every": 0,
                       "final_eval": False, "out": str(run)})
    train(cfg, show_progress=False, stop_after=1)
    argv = ["--num-samples", "16", "--quiet", "--out", str(tmp_path / "e.json")]
    assert main(["gan", "eval", str(run), *argv]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"note: {run} is unfinished: these are the metrics of its "
                                 f"checkpoint at step 1 of 3")
    argv[-1] = str(tmp_path / "finished.json")  # e.json is the other run's record now
    assert main(["gan", "eval", str(digits_run), *argv]) == 0  # a finished run
    assert "note:" not in capsys.readouterr().out
    # an earlier checkpoint of a finished run is what was asked for
    assert main(["gan", "eval", str(digits_run), *argv, "--checkpoint", "step_00000001.pt"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_a_run_removed_while_gan_eval_scores_it_is_not_made_again(digits_run, tmp_path,
                                                                  monkeypatch):
    # Was: RUN came back holding eval.json alone
    import shutil

    from robustrep.tasks.common.errors import FolderGone
    from robustrep.tasks.gan import evaluate
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)

    class Removing:
        info = {}

        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, G):
            shutil.rmtree(run)
            return {"fid": 1.0, "num_samples": 16}

    monkeypatch.setattr(evaluate, "Evaluator", Removing)
    with pytest.raises(FolderGone, match="was removed or moved while gan eval scored it"):
        evaluate.evaluate_run(run, num_samples=16, device="cpu")
    assert not run.exists()


def test_the_bar_adds_the_evaluations_still_to_come(tmp_path, monkeypatch, capsys):
    # Was: its ETA counted the steps alone (tqdm), 7 s where 33 s were left with an evaluation
    # every 50 steps
    import sys

    from robustrep.tasks.common.progress import LogProgress
    from robustrep.tasks.gan import train as gan_train

    from .conftest import tiny_config
    assert [gan_train.evaluations_left(s, 10, 4, True) for s in (0, 4, 7, 8, 10)] == [
        3, 2, 2, 1, 0]  # at 4 and 8, then the final one
    assert gan_train.evaluations_left(3, 10, 0, False) == 0
    monkeypatch.setattr(gan_train, "progress", lambda total, initial, desc, enabled: LogProgress(
        total, initial, desc, interval=0, file=sys.stderr))
    train(tiny_config(steps=3, eval_every=1, final_eval=True, log_every=1, out=str(tmp_path)),
          show_progress=True)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("gan ")]
    assert "evals=" not in lines[0]  # no evaluation timed yet
    assert any("step 2/3" in ln and "evals=+" in ln for ln in lines), lines
