"""A command's own one-line errors start as argparse's do for that command: ``robustrep gan
eval: error: ...``, not ``robustrep gan: error: ...`` (which left out the command typed)."""

import pytest

from robustrep.tasks.cli import main


@pytest.mark.parametrize("argv", [
    ["gan", "train", "--resume", "nowhere"],
    ["gan", "eval", "nowhere"],
    ["gan", "sample", "nowhere"],
    ["gan", "fid", "nowhere", "digits"],
    ["classify", "train", "--resume", "nowhere"],
    ["classify", "eval", "nowhere"],
    ["ood", "score", "nowhere"],
    ["ood", "bench", "--seeds", "0", "0"],
    ["data", "pack", "nowhere", "o.zip", "--resolution", "16"],
    ["report", "--seeds", "0", "0"],  # a program without commands: its name alone
], ids=lambda argv: "-".join(w for w in argv[:2] if not w.startswith("-")))
def test_a_commands_own_error_has_the_prefix_argparse_gives_it(argv, tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.chdir(tmp_path)
    words = " ".join(w for w in argv[:2] if not w.startswith("-"))
    with pytest.raises(SystemExit) as stop:  # argparse's own error, its prefix
        main([*argv, "--no-such-option"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith(f"robustrep {words}: error: unrecognized ")
    assert main(argv) == 2  # the command's
    err = capsys.readouterr().err
    assert err.startswith(f"robustrep {words}: error: ") and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())
