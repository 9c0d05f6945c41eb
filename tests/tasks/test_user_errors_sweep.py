"""Second sweep of user mistakes (issue: reliability round 2): each exits 2 with one line naming
the file or option and what is accepted, before any work, and leaves nothing behind.

Complements test_user_errors.py (options and config files), test_damaged_runs.py and
test_run_safety.py (damaged checkpoints, locks, outputs); every case here failed before its fix.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustrep.tasks.cli import main

from .gan.conftest import tiny_config
from .test_user_errors import run_main


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    from robustrep.tasks.gan.train import train
    path = tmp_path_factory.mktemp("gan") / "run"
    train(tiny_config("grid-mlp", out=str(path)), show_progress=False)
    return path


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.classify.train import train
    path = tmp_path_factory.mktemp("classify") / "run"
    train(ClassifyConfig(model="test_resnet", image_size=16, batch_size=8, steps=2, eval_every=0,
                         ckpt_every=1, log_every=1, classes=[0, 1, 2], seed=0), path, quiet=True)
    return path


def copy_run(run: Path, tmp_path: Path, edit) -> Path:
    """A copy of ``run`` whose config.json is ``edit(saved dict)`` (a damaged run file)."""
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    saved = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(edit(saved)))
    return copy


def one_line(code: int, err: str, command: str, *parts: str) -> str:
    assert code == 2, err
    assert err.startswith(f"robustrep {command}: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


# ---------------------------------------------------------------------------------------------
# weights files given by the user (--pretrained-file, --model NAME --checkpoint FILE)


def _weights(kind: str, folder: Path) -> Path:
    if kind == "safetensors-text":
        path = folder / "w.safetensors"
        path.write_text("not safetensors")
        return path
    path = folder / "w.pth"
    if kind == "text":
        path.write_text("hello, weights\n")
    elif kind == "empty":
        path.write_bytes(b"")
    else:  # a whole pickled module, as torch.save(model) writes
        torch.save(torch.nn.Linear(2, 2), path)
    return path


@pytest.mark.parametrize("kind", ["text", "empty", "module", "safetensors-text"])
def test_an_unreadable_weights_file_is_one_line(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    weights = _weights(kind, tmp_path)
    program_args = {
        "classify": ["classify", "eval", "--model", "test_resnet", "--checkpoint", str(weights),
                     "--dataset", "digits", "--attacks", "none", "--corruptions", "--out", "r",
                     "--quiet"],
        "ood": ["ood", "score", "--model", "test_resnet", "--checkpoint", str(weights),
                "--dataset", "digits", "--ood", "gaussian", "--out", "r", "--quiet"],
    }
    for argv in program_args.values():
        err = one_line(*run_main(argv, capsys), " ".join(argv[:2]), f"weights file {weights} ")
        if kind == "module":
            assert "holds Python objects" in err and "state_dict()" in err
        assert not (tmp_path / "r").exists()
    code, err = run_main(["classify", "train", "--out", "run", "--model", "test_resnet",
                          "--pretrained-file", str(weights), "--steps", "1", "--quiet"], capsys)
    one_line(code, err, "classify train", f"weights file {weights} ")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# gan fid: samples and statistics files, image folders


@pytest.mark.parametrize("name, write, problem", [
    ("s.pt", lambda p: torch.save(torch.zeros(0, 1, 16, 16), p),
     "s.pt: FID needs at least 2 samples, got 0"),
    ("s.npz", lambda p: p.write_bytes(b""), "s.npz is not a readable .npz file"),
    ("s.npz", lambda p: p.write_text("not a zip"),  # was: numpy's advice to allow pickles
     "s.npz is not a readable .npz file (not a zip of .npy arrays, as numpy.savez writes)"),
    ("s.npz", lambda p: np.savez(p, samples=np.array([{"x": 1}], dtype=object)),
     "s.npz holds pickled objects, which are never loaded (code could run); save plain"),
    ("s.npy", lambda p: p.write_bytes(b""), "s.npy is not a readable .npy array"),
    ("s.npy", lambda p: p.write_text("not an array"), "s.npy is not a readable .npy array (no "
                                                       "NumPy header"),
    ("s.npy", lambda p: np.save(p, np.array([{"x": 1}], dtype=object)),
     "s.npy holds pickled objects, which are never loaded"),
], ids=["pt-no-samples", "npz-empty-file", "npz-text", "npz-objects", "npy-empty-file",
        "npy-text", "npy-objects"])
def test_gan_fid_refuses_an_empty_samples_file(name, write, problem, tmp_path, monkeypatch,
                                               capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / name)
    one_line(*run_main(["gan", "fid", name, "digits"], capsys), "gan fid", problem)


def test_gan_fid_advises_no_option_it_lacks(tmp_path, monkeypatch, capsys):
    """gan fid has no --skip-bad-images: the library's 'pass skip_bad=True' is not shown."""
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (20 * i, 50, 90)).save(tmp_path / "data" / f"{i}.png")
    (tmp_path / "data" / "z.png").write_text("<html>not an image</html>")
    err = one_line(*run_main(["gan", "fid", "data", "digits"], capsys), "gan fid",
                   "unreadable image data/z.png")
    assert "skip_bad" not in err and "--skip-bad-images" not in err


# ---------------------------------------------------------------------------------------------
# a run folder whose config.json was edited by hand


def _typo(saved):
    saved["stepz"] = saved.pop("steps")
    return saved


@pytest.mark.parametrize("edit, problem", [
    (_typo, "unknown option(s) stepz in {cfg}; did you mean 'steps'?"),
    (lambda saved: {}, "{cfg} holds no options (an empty JSON object)"),
], ids=["typo", "empty-object"])
def test_classify_resume_checks_the_saved_config(edit, problem, classify_run, tmp_path, capsys):
    """Was: a typo'd key silently dropped (the run resumed), ``{}`` a KeyError traceback."""
    run = copy_run(classify_run, tmp_path, edit)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    code, err = run_main(["classify", "train", "--resume", str(run), "--steps", "3", "--quiet"],
                         capsys)
    one_line(code, err, "classify train", problem.format(cfg=run / "config.json"))
    assert {p: p.read_bytes() for p in before} == before  # nothing rewritten
    assert not (run / "checkpoints" / "step_00000003.pt").exists()


def _bad_steps(saved):
    saved["steps"] = "abc"
    return saved


def test_evaluating_a_run_names_its_damaged_config(gan_run, classify_run, tmp_path, capsys):
    """Was: 'the saved config: steps ...' (gan) and 'steps ...' (classify eval), no file."""
    gan = copy_run(gan_run, tmp_path / "g", _bad_steps)
    for argv in (["gan", "sample", str(gan), "--num", "4"], ["gan", "eval", str(gan)]):
        one_line(*run_main(argv, capsys), " ".join(argv[:2]),
                 f"{gan / 'config.json'}: steps must be an integer in [1, 2147483647]; "
                 f"got 'abc'")
    clf = copy_run(classify_run, tmp_path / "c", _bad_steps)
    one_line(*run_main(["classify", "eval", str(clf), "--attacks", "none", "--corruptions",
                        "--quiet"], capsys), "classify eval",
             f"{clf / 'config.json'}: steps must be an integer in [1, 2147483647]; "
             f"got 'abc'")
    assert not (clf / "eval").exists() and not (gan / "eval.json").exists()


# ---------------------------------------------------------------------------------------------
# outputs: never overwrite a user's file unasked


def test_gan_eval_out_replaces_only_its_own_record(gan_run, tmp_path, capsys):
    """Was: ``--out notes.json`` replaced the user's file with the eval record, exit 0."""
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}\n')
    one_line(*run_main(["gan", "eval", str(gan_run), "--out", str(mine), "--num", "64"], capsys),
             "gan eval", f"--out {mine} exists and is not a readable record of gan eval")
    assert mine.read_text() == '{"my": "notes"}\n'
    record = tmp_path / "e.json"
    for _ in range(2):  # its own record is replaced
        assert main(["gan", "eval", str(gan_run), "--out", str(record), "--num", "64"]) == 0
    assert json.loads(record.read_text())["step"] == 2


def test_bad_feature_weights_leave_no_run_folder(tmp_path, monkeypatch, capsys):
    """Was: exit 2, but RUN/config.json, metrics.jsonl and .lock were left behind (the
    evaluator was built after the run folder was made)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pt_inception.pth").write_bytes(b"\x00not a checkpoint" * 20)
    code, err = run_main(["gan", "train", "--out", "r", "--image-size", "16", "--g-width", "8",
                          "--d-width", "8", "--z-dim", "16", "--batch-size", "8", "--steps", "1",
                          "--eval-every", "0", "--final-eval", "true", "--device", "cpu",
                          "--fid-features", "inception", "--inception-weights",
                          "pt_inception.pth", "--quiet"], capsys)
    one_line(code, err, "gan train", "Inception weights file pt_inception.pth is not a readable")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# numbers that parse but cannot be meant


def test_classify_train_refuses_a_single_class(tmp_path, monkeypatch, capsys):
    """Was: ``--classes 0`` trained a one-class classifier (loss 0 from step 1), exit 0."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(["classify", "train", "--out", "r", "--model", "test_resnet",
                          "--classes", "3", "--steps", "1", "--quiet"], capsys)
    one_line(code, err, "classify train", "--classes needs at least two labels (e.g. 0,1); got [3]")
    assert not (tmp_path / "r").exists()


def test_classify_eval_refuses_an_linf_radius_above_one(classify_run, tmp_path, capsys):
    """Was: ``--eps 8`` (meant as 8/255) attacked with a radius of 8 pixels-in-[0, 1], exit 0."""
    out = tmp_path / "e"
    code, err = run_main(["classify", "eval", str(classify_run), "--eps", "8", "--attacks",
                          "fgsm", "--out", str(out), "--quiet"], capsys)
    one_line(code, err, "classify eval", "--eps 8: an Linf radius is in [0, 1] pixels")
    assert not out.exists()
    assert main(["classify", "eval", str(classify_run), "--eps", "2", "--norm", "L2", "--attacks",
                 "fgsm", "--corruptions", "--max-samples", "16", "--out", str(out),
                 "--quiet"]) == 0  # an L2 radius may be larger


# ---------------------------------------------------------------------------------------------
# image folders


def _folder_with_a_broken_link(root: Path) -> Path:
    from PIL import Image
    (root / "c").mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (16, 16), (30 * i, 60, 90)).save(root / "c" / f"{i}.png")
    link = root / "c" / "z.png"
    link.symlink_to(root / "moved-away.png")
    return link


def test_a_broken_symlink_in_an_image_folder_is_named(tmp_path, monkeypatch, capsys):
    """Was: silently left out (the data set shrank), exit 0, for every command."""
    monkeypatch.chdir(tmp_path)
    link = _folder_with_a_broken_link(tmp_path / "data")
    problem = f"unreadable image {link.relative_to(tmp_path)} under data: a broken symbolic link"
    train = ["gan", "train", "--out", "r", "--dataset", "imagefolder", "--data-root", "data",
             "--image-size", "16", "--batch-size", "4", "--steps", "1", "--g-width", "8",
             "--d-width", "8", "--eval-every", "0", "--final-eval", "false", "--quiet"]
    for argv in [train, ["gan", "fid", "data", "digits"],
                 ["data", "pack", "data", "r.zip", "--resolution", "16"]]:
        err = one_line(*run_main(argv, capsys), " ".join(argv[:2]), problem)
        assert "skip_bad=True" not in err  # the library's keyword, not an option
        assert not (tmp_path / "r").exists() and not (tmp_path / "r.zip").exists()
    # --skip-bad-images leaves it out and says so
    assert main([*train, "--skip-bad-images"]) == 0
    assert "left out 1 unreadable image(s): data/c/z.png" in capsys.readouterr().err


def test_ood_bench_names_out_when_a_file_is_in_the_way(tmp_path, monkeypatch, capsys):
    """Was: 'Not a directory: r/runs' (no option named)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r").write_text("mine")
    one_line(*run_main(["ood", "bench", "--out", "r", "--regs", "none", "--seeds", "0",
                        "--steps", "1", "--quiet"], capsys),
             "ood bench", "cannot use --out r: r is a file, not a folder")
    assert (tmp_path / "r").read_text() == "mine"


@pytest.mark.parametrize("flags, problem", [
    (["--seeds", "0", "0"], "--seeds: seed 0 is given twice; give each seed once"),
    (["--regs", "none,mixup,none"], "--regs: setting none is given twice"),
], ids=["seeds", "regs"])
def test_ood_bench_refuses_a_repeated_seed_or_setting(flags, problem, tmp_path, monkeypatch,
                                                      capsys):
    """Was: trained and scored ``--seeds 0 0`` as two agreeing runs (a zero spread), exit 0;
    report refused the same mistake."""
    monkeypatch.chdir(tmp_path)
    argv = ["ood", "bench", "--out", "r", "--steps", "1", "--quiet", "--regs", "none",
            "--seeds", "0", *flags]
    one_line(*run_main(argv, capsys), "ood bench", problem)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_a_missing_log_backend_leaves_no_run_folder(program, tmp_path, monkeypatch, capsys):
    """Was: exit 2, but RUN/config.json, metrics.jsonl and .lock were left behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails
    tiny = (["--image-size", "16", "--g-width", "8", "--d-width", "8", "--batch-size", "8",
             "--final-eval", "false", "--eval-every", "0"] if program == "gan" else
            ["--model", "test_resnet", "--image-size", "16", "--eval-every", "0"])
    code, err = run_main([program, "train", "--out", "r", *tiny, "--steps", "1", "--log",
                          "wandb", "--quiet"], capsys)
    one_line(code, err, f"{program} train", "--log wandb needs the wandb package")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, problem", [
    (["--batch-size", "5000"], "the training set has 1438 samples, fewer than one global batch "
                               "(5000 x 1 processes); lower --batch-size"),
    (["--batch-size", "1"], "--batch-size 1: model 'test_resnet' has BatchNorm layers, which "
                            "need at least 2 samples per batch in training"),
], ids=["batch-above-data", "batch-1-batchnorm"])
def test_classify_batch_problems_leave_no_run_folder(flags, problem, tmp_path, monkeypatch,
                                                     capsys):
    """Was: exit 2, but only once training began: RUN/config.json, metrics.jsonl and .lock
    were left, and batch 1 was torch's 'Expected more than 1 value per channel'."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(["classify", "train", "--out", "r", "--model", "test_resnet",
                          "--image-size", "16", "--steps", "1", "--eval-every", "0", *flags,
                          "--quiet"], capsys)
    one_line(code, err, "classify train", problem)
    assert not (tmp_path / "r").exists()


def test_classify_train_refuses_an_linf_radius_above_one(tmp_path, monkeypatch, capsys):
    """Was: ``--reg pgd --eps 8`` trained with a radius of 8 (the whole [0, 1] range), exit 0."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(["classify", "train", "--out", "r", "--model", "test_resnet", "--reg",
                          "pgd", "--eps", "8", "--steps", "1", "--quiet"], capsys)
    one_line(code, err, "classify train", "--eps 8: an Linf radius is in [0, 1] pixels")
    assert not (tmp_path / "r").exists()
    assert main(["classify", "train", "--reg", "pgd", "--eps", "2", "--pgd-norm", "l2",
                 "--dry-run"]) == 0  # an L2 radius may be larger


# ---------------------------------------------------------------------------------------------
# messages that named the wrong problem


@pytest.mark.parametrize("argv, command, problem", [
    (["gan", "train", "--config", "sub"], "gan train", "config file sub is a folder (accepted: a "
                                                       ".json or .yaml file)"),
    (["gan", "train", "--dataset", "imagefolder", "--data-root", "notes.txt", "--out", "r"],
     "gan train", "--data-root notes.txt is a file, not a folder; expected a folder with the "
                  "layout"),
    (["ood", "score", "RUN", "--ood", "imagefolder:", "--out", "r", "--quiet"], "ood score",
     "imagefolder needs a path: imagefolder:PATH"),
    (["gan", "train", "--dataset", "zip", "--data-root", "sub", "--out", "r"], "gan train",
     "--data-root sub is a folder, not a .zip (use --dataset imagefolder"),
], ids=["config-is-a-folder", "data-root-is-a-file", "imagefolder-without-path", "zip-a-folder"])
def test_the_line_names_the_real_problem(argv, command, problem, classify_run, tmp_path,
                                        monkeypatch, capsys):
    """Was: 'does not exist' for a folder or file that exists; `imagefolder:` read the working
    folder ('no images found under .')."""
    monkeypatch.chdir(tmp_path)
    argv = [str(classify_run) if a == "RUN" else a for a in argv]
    (tmp_path / "sub").mkdir()
    (tmp_path / "notes.txt").write_text("notes")
    one_line(*run_main(argv, capsys), command, problem)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv", [
    ["gan", "train", "--out", ""],
    ["classify", "train", "--out", ""],
    ["classify", "eval", "RUN", "--out", ""],
    ["ood", "score", "RUN", "--out", ""],
    ["gan", "train", "--data-root", "", "--dataset", "imagefolder"],
    ["gan", "fid", "", "digits"],
], ids=["gan-train", "classify-train", "classify-eval", "ood-score", "data-root", "fid-A"])
def test_an_empty_path_is_refused(argv, classify_run, tmp_path, monkeypatch, capsys):
    """``--out "$RUN"`` with RUN unset: was a run written into the working folder (gan train,
    classify eval, ood score), or into a default folder (classify train), exit 0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("the user's folder")
    argv = [str(classify_run) if a == "RUN" else a for a in argv]
    code, err = run_main(argv, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "must be a non-empty string; got ''" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_a_cache_variable_naming_a_file_is_named(tmp_path, monkeypatch, capsys):
    """Was: 'File exists: PATH' (the variable not named)."""
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ROBUSTREP_CACHE", str(blocker))
    one_line(*run_main(["gan", "fid", "digits", "digits"], capsys), "gan fid",
             f"$ROBUSTREP_CACHE {blocker} is a file, not a folder")
    assert blocker.read_text() == "not a folder"


def test_ood_score_refuses_a_negative_detector_setting(classify_run, tmp_path, capsys):
    """Was: features extracted, then 'warning: KNN failed: ... n_neighbors > 0' and exit 0."""
    out = tmp_path / "o"
    one_line(*run_main(["ood", "score", str(classify_run), "--detectors", "KNN", "--param",
                        "KNN.k=-1", "--ood", "gaussian", "--out", str(out), "--quiet"], capsys),
             "ood score", "--param KNN.k=-1: KNN.k takes an int > 0 (default 50), got -1")
    assert not out.exists()


def test_gan_fid_names_a_run_without_checkpoints(gan_run, tmp_path, capsys):
    """Was: read as an image folder: 'class folder RUN/plots holds no images'."""
    run = Path(shutil.copytree(gan_run, tmp_path / "run"))
    shutil.rmtree(run / "checkpoints")
    one_line(*run_main(["gan", "fid", str(run), "digits"], capsys), "gan fid",
             f"no checkpoint at {run / 'checkpoints'}")


def test_data_pack_refuses_a_resolution_no_memory_holds(tmp_path, monkeypatch, capsys):
    """Was: a MemoryError traceback (100000 x 100000 x 3 bytes per image)."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(["data", "pack", "src", "out.zip", "--resolution", "100000"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "argument --resolution: must be an integer in [1, 16384]; got '100000'" in err


@pytest.mark.parametrize("flags, problem", [
    # read as the --pgd-random-start flag reads it ("yes" is true there and here)
    (["--reg-options", '{"pgd": {"random_start": "maybe"}}'], "reg_options: pgd's 'random_start' "
                                                              "must be true or false; got 'maybe'"),
    (["--pgd-norm", "l3"], "argument --pgd-norm: must be one of linf, l2; got 'l3'"),
    (["--reg-options", '{"pgd": {"norm": "l3"}}'], "reg_options: pgd's 'norm' must be one of "
                                                   "linf, l2; got 'l3'"),
], ids=["steps-text", "norm-l3", "norm-l3-file"])
def test_classify_attack_settings_are_checked_when_built(flags, problem, tmp_path, monkeypatch,
                                                         capsys):
    """Was: a TypeError traceback (steps) or a line without the method (norm), both at the
    first training step, after the run folder was made."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(["classify", "train", "--out", "r", "--model", "test_resnet",
                          "--image-size", "16", "--steps", "1", "--eval-every", "0", "--reg",
                          "pgd", *flags, "--quiet"], capsys)
    one_line(code, err, "classify train", problem)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("reg, options, problem", [
    # the data's range is the program's (was checked only for its form, then used)
    ("asgan", '{"asgan": {"input_range": [1, 0]}}', "--reg asgan: reg_options: asgan's "
                                                    "'input_range' is set by this program"),
    # an option with its own flag: set there, where its range is checked
    ("asgan", '{"asgan": {"norm": "l3"}}', "asgan's 'norm' is set by its own option asgan_norm"),
    ("dat", '{"dat": {"input_range": "x"}}', "--reg dat: reg_options: dat's 'input_range' is "
                                             "set by this program"),
    ("dat", '{"dat": {"clamp_real": "maybe"}}', "reg_options: dat's 'clamp_real' must be true "
                                                 "or false; got 'maybe'"),
], ids=["asgan-range", "asgan-norm", "dat-range", "dat-clamp"])
def test_gan_attack_settings_are_checked_when_built(reg, options, problem, tmp_path,
                                                    monkeypatch, capsys):
    """Was: accepted when built; the first D step raised a TypeError/ValueError traceback, after
    the run folder was made."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(["gan", "train", "--out", "r", "--image-size", "16", "--g-width", "8",
                          "--d-width", "8", "--batch-size", "8", "--steps", "1", "--eval-every",
                          "0", "--final-eval", "false", "--reg", reg, "--reg-options", options,
                          "--quiet"], capsys)
    one_line(code, err, "gan train", problem)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("program, argv, name, companion", [
    ("classify", ["classify", "eval", "RUN", "--attacks", "none", "--corruptions",
                  "--max-samples", "16", "--quiet"], "report.json", "reliability.png"),
    ("ood", ["ood", "score", "RUN", "--ood", "gaussian", "--detectors", "MaxSoftmax",
             "--max-samples", "16", "--no-plots", "--quiet"], "results.json", "results.md"),
], ids=["classify-eval", "ood-score"])
def test_eval_out_replaces_only_its_own_record(program, argv, name, companion, classify_run,
                                               tmp_path, capsys):
    """Was: ``--out FOLDER`` holding the user's own report.json/results.json replaced it."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text('{"my": "numbers"}\n')
    argv = [str(classify_run) if a == "RUN" else a for a in argv] + ["--out", str(out)]
    one_line(*run_main(argv, capsys), " ".join(argv[:2]),
             f"--out {out / name} exists and is not a readable record of {program} ")
    assert (out / name).read_text() == '{"my": "numbers"}\n'
    (out / name).unlink()
    (out / companion).write_text("my own")  # a file of a name it writes, without its record
    one_line(*run_main(argv, capsys), " ".join(argv[:2]),
             f"--out {out} holds {companion}, which no {program} ")
    assert (out / companion).read_text() == "my own"
    (out / companion).unlink()
    for _ in range(2):  # its own record is replaced
        assert main(argv) == 0


def test_gan_checkpoint_by_name_and_a_missing_one_lists_the_choices(gan_run, tmp_path,
                                                                    monkeypatch, capsys):
    """Was: 'no checkpoint at step_00000009.pt' without saying what the run holds, and a bare
    name of a file in RUN/checkpoints was not found."""
    monkeypatch.chdir(tmp_path)
    one_line(*run_main(["gan", "eval", str(gan_run), "--checkpoint", "step_00000009.pt"],
                       capsys), "gan eval",
             f"--checkpoint step_00000009.pt: no such file; {gan_run / 'checkpoints'} holds "
             f"latest.pt, step_00000001.pt, step_00000002.pt")
    assert main(["gan", "sample", str(gan_run), "--checkpoint", "step_00000001.pt", "--num", "4",
                 "--grid", "g.png"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 1
    (gan_run / "checkpoints" / "latest.pt").rename(tmp_path / "away.pt")  # was: not listed
    try:
        one_line(*run_main(["gan", "sample", str(gan_run)], capsys), "gan sample",
                 f"no checkpoint at {gan_run / 'checkpoints' / 'latest.pt'} (expected a file "
                 f"written by robustrep, e.g. RUN/checkpoints/latest.pt); "
                 f"{gan_run / 'checkpoints'} holds step_00000001.pt, step_00000002.pt")
    finally:
        (tmp_path / "away.pt").rename(gan_run / "checkpoints" / "latest.pt")
