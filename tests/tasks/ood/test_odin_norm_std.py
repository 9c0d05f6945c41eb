"""``--param ODIN.norm_std=[...]``: accepted, with a note that robustrep's classifiers normalise
inside, so the std makes the gradient step 1/std times the reference's."""

from robustrep.tasks.cli import main
from robustrep.tasks.ood.detector_params import norm_std_notes


def test_norm_std_is_noted_with_the_step_it_gives():
    assert norm_std_notes({"ODIN": {"norm_std": [0.5]}}, 1) == [
        "--param ODIN.norm_std=[0.5]: robustrep's classifiers take [0, 1] pixels and normalise "
        "inside, so ODIN.eps (0.0014) is in pixel units already, and norm_std divides each "
        "channel's step by its std again: steps of 0.0028 pixels, 1/std times the reference's "
        "eps; leave norm_std out for the reference's step"]
    assert "ODIN.eps (0.01) is" in norm_std_notes({"ODIN": {"norm_std": [0.5], "eps": 0.01}},
                                                  3)[0]
    # MahalanobisODIN divides only the channels it is given a std for
    note, = norm_std_notes({"MahalanobisODIN": {"norm_std": [0.5]}}, 3)
    assert "steps of 0.004, 0.002 pixels" in note
    assert norm_std_notes({"ODIN": {"eps": 0.01}}, 3) == []


def test_ood_score_says_the_note_once(fake_run, tmp_path, capsys):
    assert main(["ood", "score", str(fake_run), "--ood", "gaussian", "--detectors", "ODIN",
                 "--param", "ODIN.norm_std=[0.5]", "--max-samples", "4", "--no-plots",
                 "--quiet", "--device", "cpu", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("note: --param ODIN.norm_std=[0.5]: robustrep's classifiers take [0, 1] "
                     "pixels and normalise inside") == 1
