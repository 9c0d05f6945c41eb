"""Second sweep of user mistakes (issue: reliability round 2): each exits 2 with one line naming
the file or option and what is accepted, before any work, and leaves nothing behind.

Complements test_user_errors.py (options and config files), test_damaged_runs.py and
test_run_safety.py (damaged checkpoints, locks, outputs); every case here failed before its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustrep.tasks.cli import main


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def one_line(code: int, err: str, program: str, *parts: str) -> str:
    assert code == 2, err
    assert err.startswith(f"robustrep {program}: error: "), err
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
    for program, argv in program_args.items():
        err = one_line(*run_main(argv, capsys), program, f"weights file {weights} ")
        if kind == "module":
            assert "holds Python objects" in err and "state_dict()" in err
        assert not (tmp_path / "r").exists()
    code, err = run_main(["classify", "train", "--out", "run", "--model", "test_resnet",
                          "--pretrained-file", str(weights), "--steps", "1", "--quiet"], capsys)
    one_line(code, err, "classify", f"weights file {weights} ")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# gan fid: samples and statistics files, image folders


@pytest.mark.parametrize("name, write, problem", [
    ("s.pt", lambda p: torch.save(torch.zeros(0, 1, 16, 16), p),
     "s.pt: FID needs at least 2 samples, got 0"),
    ("s.npz", lambda p: p.write_bytes(b""), "s.npz is not a readable .npz file"),
    ("s.npz", lambda p: p.write_text("not a zip"), "s.npz is not a readable .npz file"),
    ("s.npy", lambda p: p.write_bytes(b""), "s.npy is not a readable .npy array"),
], ids=["pt-no-samples", "npz-empty-file", "npz-text", "npy-empty-file"])
def test_gan_fid_refuses_an_empty_samples_file(name, write, problem, tmp_path, monkeypatch,
                                               capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / name)
    one_line(*run_main(["gan", "fid", name, "digits"], capsys), "gan", problem)


def test_gan_fid_advises_no_option_it_lacks(tmp_path, monkeypatch, capsys):
    """gan fid has no --skip-bad-images: the library's 'pass skip_bad=True' is not shown."""
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (20 * i, 50, 90)).save(tmp_path / "data" / f"{i}.png")
    (tmp_path / "data" / "z.png").write_text("<html>not an image</html>")
    err = one_line(*run_main(["gan", "fid", "data", "digits"], capsys), "gan",
                   "unreadable image data/z.png")
    assert "skip_bad" not in err and "--skip-bad-images" not in err
