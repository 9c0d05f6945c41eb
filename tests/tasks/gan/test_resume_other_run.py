"""A checkpoint of another run in a run folder (copied in, or given to gan sample) is named as
another run's, before its step is compared with --steps: it was "--steps 4 is below the step of
the checkpoint", then "restore config.json" of an intact config.json."""

import shutil

from robustrep.tasks.cli import main
from robustrep.tasks.gan.train import train


def _runs(tiny_cfg, tmp_path):
    """Run a (steps 4, stopped at 2) and run b, another --out and --g-width, at step 6."""
    a, b = tmp_path / "a", tmp_path / "b"
    train(tiny_cfg(out=str(a), steps=4, ckpt_every=2), show_progress=False, stop_after=2)
    train(tiny_cfg(out=str(b), steps=8, ckpt_every=2, g_width=16), show_progress=False,
          stop_after=6)
    return a, b


def test_another_runs_checkpoint_copied_in_is_named_as_such(tiny_cfg, tmp_path, capsys):
    a, b = _runs(tiny_cfg, tmp_path)
    latest, own = a / "checkpoints" / "latest.pt", a / "checkpoints" / "step_00000002.pt"
    shutil.copy(b / "checkpoints" / "latest.pt", latest)
    assert main(["gan", "train", "--resume", str(a), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan train: error: checkpoint {latest} was saved by another run (--out {b}; "
        f"g_width 16 (config.json: 8)), not by {a}: copy {own} over {latest} to resume from it\n")
    shutil.copy(own, latest)  # as advised
    assert main(["gan", "train", "--resume", str(a), "--quiet"]) == 0


def test_a_classify_checkpoint_in_a_gan_run_is_named_as_such(tiny_cfg, tmp_path, capsys):
    from robustrep.tasks.classify.train import train as classify_train

    from ..classify.conftest import tiny_config
    a = tmp_path / "a"
    train(tiny_cfg(out=str(a), steps=4, ckpt_every=2), show_progress=False, stop_after=2)
    classify_train(tiny_config(steps=8, ckpt_every=2), tmp_path / "c", stop_after=6, quiet=True)
    latest = a / "checkpoints" / "latest.pt"
    shutil.copy(tmp_path / "c" / "checkpoints" / "latest.pt", latest)
    assert main(["gan", "train", "--resume", str(a), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan train: error: checkpoint {latest} was saved by a run of `classify "
        f"train`, not by {a}: copy {a / 'checkpoints' / 'step_00000002.pt'} over {latest} to "
        f"resume from it\n")


def test_gan_sample_names_another_runs_checkpoint(tiny_cfg, tmp_path, capsys):
    a, b = _runs(tiny_cfg, tmp_path)
    theirs = b / "checkpoints" / "latest.pt"
    assert main(["gan", "sample", str(a), "--checkpoint", str(theirs), "--num", "4",
                 "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan sample: error: checkpoint {theirs} was saved by another run (--out {b}; "
        f"g_width 16 (config.json: 8)), not by {a}: give one of its own (in {a / 'checkpoints'}) "
        f"with --checkpoint\n")
