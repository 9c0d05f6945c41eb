"""Nothing lost, nothing executed (issue 8): unsafe or broken checkpoints, divergence, the run
lock, resume validation and early checks of data and outputs, through the real CLI."""

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustrep.tasks.cli import main

TINY_GAN = dict(image_size=16, g_width=8, d_width=8, z_dim=16, batch_size=8, steps=2,
                eval_every=0, final_eval=False, ckpt_every=1, log_every=1, seed=0, device="cpu")
GAN_FLAGS = ["--image-size", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
             "--batch-size", "8", "--eval-every", "0", "--final-eval", "false", "--ckpt-every",
             "1", "--log-every", "1", "--device", "cpu", "--quiet"]
TINY_CLASSIFY = dict(model="test_resnet", image_size=16, batch_size=8, steps=2, eval_every=0,
                     ckpt_every=1, log_every=1, classes=[0, 1, 2], seed=0)
CLASSIFY_FLAGS = ["--model", "test_resnet", "--image-size", "16", "--batch-size", "8",
                  "--eval-every", "0", "--ckpt-every", "1", "--log-every", "1",
                  "--classes", "0,1,2", "--quiet"]


class Payload:
    """Pickles as a call that creates ``marker``, like a planted ``__reduce__`` payload."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).touch, ())


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    from robustrep.tasks.gan.train import train
    path = tmp_path_factory.mktemp("gan") / "run"
    train(GanConfig(**{**PRESETS["digits-dcgan"], **TINY_GAN, "out": str(path)}),
          show_progress=False)
    return path


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    from robustrep.tasks.classify.config import ClassifyConfig
    from robustrep.tasks.classify.train import train
    path = tmp_path_factory.mktemp("classify") / "run"
    train(ClassifyConfig(**TINY_CLASSIFY), path, quiet=True)
    return path


def copy_run(run, tmp_path, name="run"):
    return Path(shutil.copytree(run, tmp_path / name))


def damage(path, kind, marker):
    """Replace the checkpoint at ``path`` by a payload, garbage or a truncated copy."""
    if kind == "payload":
        state = torch.load(path, weights_only=True)
        state["extra"] = Payload(marker)
        torch.save(state, path)
    elif kind == "garbage":
        path.write_bytes(os.urandom(3000))
    else:
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 3])


def one_line_error(capsys, command):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"robustrep {command}: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------------------------------
# unsafe and unreadable checkpoints


@pytest.mark.parametrize("kind", ["payload", "garbage", "truncated"])
def test_every_command_refuses_a_bad_checkpoint(kind, gan_run, classify_run, tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    gan = copy_run(gan_run, tmp_path, "gan")
    clf = copy_run(classify_run, tmp_path, "clf")
    for run in (gan, clf):
        damage(run / "checkpoints" / "latest.pt", kind, marker)
    config_before = (gan / "config.json").read_bytes()
    metrics_before = (gan / "metrics.jsonl").read_bytes()
    commands = [
        ("gan sample", ["gan", "sample", str(gan)]),
        ("gan eval", ["gan", "eval", str(gan)]),
        ("gan train", ["gan", "train", "--resume", str(gan), "--steps", "3", "--quiet"]),
        ("classify eval", ["classify", "eval", str(clf), "--quiet"]),
        ("ood score", ["ood", "score", str(clf), "--ood", "gaussian", "--quiet"]),
    ]
    for command, argv in commands:
        assert main(argv) == 2, argv
        err = one_line_error(capsys, command)
        assert "latest.pt" in err, err
        if kind == "payload":
            assert "refuses" in err, err
        assert not marker.exists(), f"{argv} ran the payload"
    # the failed resume changed nothing in the run folder (config.json says steps: 2)
    assert (gan / "config.json").read_bytes() == config_before
    assert (gan / "metrics.jsonl").read_bytes() == metrics_before
    assert not (gan / "eval.json").exists()


@pytest.mark.subprocess  # in-process: test_every_command_refuses_a_bad_checkpoint
def test_console_script_refuses_a_payload_without_traceback(gan_run, tmp_path):
    marker = tmp_path / "payload-ran"
    gan = copy_run(gan_run, tmp_path)
    damage(gan / "checkpoints" / "latest.pt", "payload", marker)
    script = Path(sys.executable).parent / "robustrep"
    proc = subprocess.run([str(script), "gan", "sample", str(gan)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          cwd=marker.parent)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("robustrep gan sample: error: checkpoint ")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_written_checkpoints_load_with_weights_only(gan_run, classify_run):
    for run in (gan_run, classify_run):
        for path in (run / "checkpoints").glob("*.pt"):
            state = torch.load(path, weights_only=True)
            assert isinstance(state["rng"]["python"][1], list)


# ---------------------------------------------------------------------------------------------
# resume validation


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_resume_with_fewer_steps_changes_nothing(program, gan_run, classify_run, tmp_path,
                                                 capsys):
    run = copy_run(gan_run if program == "gan" else classify_run, tmp_path)
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert main([program, "train", "--resume", str(run), "--steps", "1", "--quiet"]) == 2
    err = one_line_error(capsys, f"{program} train")
    assert "--steps 1 is below the step of the checkpoint" in err and "(2)" in err
    after = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


# ---------------------------------------------------------------------------------------------
# divergence


def _nan_on_call(monkeypatch, bad_call):
    from robustrep.tasks.classify.task import ClassifyTask
    original, calls = ClassifyTask._ce, {"n": 0}

    def flaky(self, logits, y):
        calls["n"] += 1
        loss = original(self, logits, y)
        return loss * float("nan") if calls["n"] == bad_call else loss

    monkeypatch.setattr(ClassifyTask, "_ce", flaky)


def test_diverged_classifier_keeps_its_good_checkpoints(tmp_path, monkeypatch, capsys):
    """NaN at step 5, losses logged only every 100 steps, checkpoints every step (keep 3)."""
    _nan_on_call(monkeypatch, 5)
    run = tmp_path / "run"
    argv = ["classify", "train", "--out", str(run), *CLASSIFY_FLAGS, "--steps", "8",
            "--log-every", "100"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "non-finite loss at step 5: loss term 'loss' = nan" in err
    assert f"last good checkpoint is {run / 'checkpoints' / 'step_00000004.pt'} (step 4)" in err
    names = sorted(p.name for p in (run / "checkpoints").glob("*.pt"))
    assert names == ["latest.pt", "step_00000002.pt", "step_00000003.pt", "step_00000004.pt"]
    for name in names:
        state = torch.load(run / "checkpoints" / name, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state["model"].values()
                   if v.is_floating_point())
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4


def test_classify_eval_refuses_a_nonfinite_model(classify_run, tmp_path, capsys):
    run = copy_run(classify_run, tmp_path)
    path = run / "checkpoints" / "latest.pt"
    state = torch.load(path, weights_only=True)
    for weights in ("model", "ema"):
        if state.get(weights) is not None:
            key = next(k for k, v in state[weights].items() if v.is_floating_point())
            state[weights][key].fill_(float("nan"))
    torch.save(state, path)
    assert main(["classify", "eval", str(run), "--quiet"]) == 2
    err = one_line_error(capsys, "classify eval")
    assert f"{path} holds non-finite" in err and "diverged" in err
    assert not (run / "eval").exists()


# ---------------------------------------------------------------------------------------------
# one run per folder


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_a_second_run_into_a_locked_folder_is_refused(program, tmp_path, capsys, lock_holder):
    run = tmp_path / "run"
    holder = lock_holder(run)
    flags = GAN_FLAGS if program == "gan" else CLASSIFY_FLAGS
    argv = [program, "train", "--out", str(run), *flags, "--steps", "1"]
    try:
        assert main(argv) == 2
        err = one_line_error(capsys, f"{program} train")
        assert f"{run} is in use by another run (pid {holder.pid} on " in err
        assert not (run / "config.json").exists() and not (run / "metrics.jsonl").exists()
        assert main([*argv, "--dry-run"]) == 0  # a run before its first checkpoint
        (run / "config.json").write_text(capsys.readouterr().out)
        assert main([program, "train", "--resume", str(run)]) == 2  # was "no checkpoint at"
        assert f"{run} is in use by another run (pid {holder.pid} on " in one_line_error(
            capsys, f"{program} train")
        (run / "config.json").unlink()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    (run / "checkpoints").mkdir()  # as the dead holder made it (a refused run makes none)
    (run / "checkpoints" / ".latest.pt.interrupted.tmp").write_bytes(b"partial save")
    assert main(argv) == 0  # the dead holder's lock is taken over
    assert not list(run.rglob("*.tmp"))
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 1


def test_fresh_out_holding_another_runs_config_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"preset": "ring-mlp", "steps": 9}))
    assert main(["gan", "train", "--out", str(run), *GAN_FLAGS, "--steps", "1"]) == 2
    err = one_line_error(capsys, "gan train")
    # was "continue it with --resume", which then said it has no checkpoint
    assert f"{run} already holds another run, which wrote no checkpoint" in err
    assert "--resume" not in err
    assert json.loads((run / "config.json").read_text())["steps"] == 9


# ---------------------------------------------------------------------------------------------
# fail early: outputs


def test_unwritable_outputs_are_refused_before_the_work(gan_run, classify_run, tmp_path,
                                                        capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cache = Path(os.environ["ROBUSTREP_CACHE"])
    cases = [
        ("gan train", ["gan", "train", "--out", str(blocker / "run"), *GAN_FLAGS]),
        ("gan eval", ["gan", "eval", str(gan_run), "--out", str(blocker / "eval.json")]),
        ("gan sample", ["gan", "sample", str(gan_run), "--grid", str(blocker / "g.png")]),
        ("classify eval", ["classify", "eval", str(classify_run), "--out", str(blocker / "e"),
                           "--quiet"]),
        ("ood score", ["ood", "score", str(classify_run), "--ood", "gaussian", "--out",
                       str(blocker / "o"), "--quiet"]),
    ]
    for command, argv in cases:
        assert main(argv) == 2, argv
        assert f"{blocker} is a file, not a folder" in one_line_error(capsys, command)
    assert not cache.exists() or not any(cache.iterdir())  # gan eval built no feature net


# ---------------------------------------------------------------------------------------------
# fail early: data and weights


def _png(path, size=16, mode="RGB", value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), value if mode == "L" else (value, 50, 200)).save(path)


def _folder_with_bad_png(root, n_good=9, impostor=False):
    for i in range(n_good):
        _png(root / "c" / f"{i}.png", value=20 * i)
    bad = root / "c" / "zz.png"
    if impostor:
        bad.write_text("<html>not an image</html>")
    else:
        noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(bad)
        bad.write_bytes(bad.read_bytes()[:300])
    return bad


@pytest.mark.parametrize("impostor", [False, True])
def test_bad_image_files_are_named_before_training(impostor, classify_run, tmp_path, capsys):
    data = tmp_path / "data"
    bad = _folder_with_bad_png(data, impostor=impostor)
    run = tmp_path / "run"
    assert main(["gan", "train", "--out", str(run), "--dataset", "imagefolder", "--data-root",
                 str(data), *GAN_FLAGS]) == 2
    assert f"unreadable image {bad}" in one_line_error(capsys, "gan train")
    assert not run.exists()
    assert main(["classify", "train", "--out", str(run), "--dataset", "imagefolder",
                 "--data-root", str(data), "--model", "test_resnet", "--image-size", "16",
                 "--batch-size", "4", "--quiet"]) == 2
    assert f"unreadable image {bad}" in one_line_error(capsys, "classify train")
    assert not run.exists()
    assert main(["ood", "score", str(classify_run), "--ood", f"imagefolder:{data}",
                 "--out", str(tmp_path / "ood"), "--quiet"]) == 2
    assert f"unreadable image {bad}" in one_line_error(capsys, "ood score")
    assert not (tmp_path / "ood").exists()


def test_batch_larger_than_the_data_is_refused_before_training(tmp_path, capsys):
    data = tmp_path / "data"
    for i in range(4):
        _png(data / f"{i}.png")
    run = tmp_path / "run"
    assert main(["gan", "train", "--out", str(run), "--dataset", "imagefolder", "--data-root",
                 str(data), *GAN_FLAGS]) == 2
    err = one_line_error(capsys, "gan train")
    assert "the dataset holds 4 samples, fewer than one batch (--batch-size 8)" in err
    assert not run.exists()


def _cifar_root(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (8, 3072), dtype=np.uint8),
                         "labels": list(range(8))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return folder


def test_truncated_cifar_batch_is_one_line_naming_the_file(tmp_path, capsys):
    folder = _cifar_root(tmp_path / "cifar")
    bad = folder / "data_batch_2"
    bad.write_bytes(bad.read_bytes()[:1000])
    assert main(["gan", "train", "--out", str(tmp_path / "run"), "--dataset", "cifar10",
                 "--data-root", str(tmp_path / "cifar"), *GAN_FLAGS]) == 2
    assert f"{bad} is not in the CIFAR python format" in one_line_error(capsys, "gan train")


@pytest.mark.parametrize("weights", ["missing", "garbage"])
def test_feature_network_problems_are_reported_before_step_one(weights, tmp_path, capsys):
    data = tmp_path / "data"
    for i in range(8):
        _png(data / f"{i}.png", value=30 * i)
    run = tmp_path / "run"
    argv = ["gan", "train", "--out", str(run), "--dataset", "imagefolder", "--data-root",
            str(data), *GAN_FLAGS, "--final-eval", "true", "--steps", "1"]
    if weights == "garbage":
        bad = tmp_path / "pt_inception.pth"
        bad.write_bytes(os.urandom(2000))
        argv += ["--inception-weights", str(bad)]
    assert main(argv) == 2
    err = one_line_error(capsys, "gan train")
    if weights == "garbage":
        assert f"Inception weights file {bad} is not a readable PyTorch file" in err
    else:
        assert "ROBUSTREP_INCEPTION" in err
    assert not list((run / "checkpoints").glob("*.pt"))  # no training step ran


def test_sample_num_zero_is_an_error(gan_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's typed option, one line
        main(["gan", "sample", str(gan_run), "--num", "0", "--grid", str(tmp_path / "g.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "argument --num: must be an integer in [1, 2147483647]; got '0'" in err
    assert not (tmp_path / "g.png").exists()


# ---------------------------------------------------------------------------------------------
# people and logs


def test_ood_score_resizes_image_folders_to_the_classifiers_input(classify_run, tmp_path,
                                                                   capsys):
    """The digits run takes (1, 16, 16); a folder of 40x40 RGB images needs no --resize."""
    data = tmp_path / "photos"
    for i in range(6):
        _png(data / f"{i}.png", size=40, value=40 * i)
    out = tmp_path / "ood"
    assert main(["ood", "score", str(classify_run), "--ood", f"imagefolder:{data}",
                 "--detectors", "MaxSoftmax", "--out", str(out), "--no-plots", "--quiet"]) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["sizes"][f"imagefolder:{data}"] == 6


def test_imagefolder_preset_starts_no_workers_on_two_cores():
    from robustrep.tasks.common.workers import resolve_workers
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.presets import PRESETS
    cfg = GanConfig(**PRESETS["imagefolder-dcgan64"])
    assert cfg.num_workers is None
    assert resolve_workers(cfg.num_workers, cpus=2) == 0
    assert resolve_workers(cfg.num_workers, cpus=8) == 4
