"""`ood score --model M --checkpoint F --out D` into the folder of an earlier call merges with it
as `ood score RUN` does with RUN/ood (tasks/ood/score_checks.py `output_folder`, outputs.py
`keep_earlier`), and `--data-root` that nothing reads (a digits run or model) is refused before
the model loads (tasks/ood/checks.py `check_data_root`, tasks/common/dataroot.py)."""

import json
import shutil

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.ood import score

SCORE = ["--ood", "gaussian", "--max-samples", "8", "--no-plots", "--quiet", "--device", "cpu"]


def _model(weights, detectors, *argv):
    return main(["ood", "score", "--model", "test_resnet", "--checkpoint", str(weights),
                 "--classes", "0", "1", "2", "--image-size", "16", "--detectors", detectors,
                 *argv, *SCORE])


def _rows(folder):
    data = json.loads((folder / "results.json").read_text())
    return data, sorted((r["detector"], r["ood"]) for r in data["results"])


@pytest.fixture
def weights(fake_run, tmp_path, monkeypatch):
    """fake_run's checkpoint, and a copy of it as other weights, in the working folder."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(fake_run / "checkpoints" / "latest.pt", tmp_path / "a.pt")
    shutil.copy(fake_run / "checkpoints" / "latest.pt", tmp_path / "b.pt")
    return tmp_path / "a.pt", tmp_path / "b.pt"


def test_a_second_model_score_into_its_out_merges_as_a_runs_does(weights, tmp_path, capsys):
    # Was: `--out D already holds results.json; choose a new folder`, exit 2, while
    # `ood score RUN` run again merged with (or replaced) its own rows in RUN/ood
    first, other = weights
    assert _model(first, "MaxSoftmax", "--out", "D") == 0
    capsys.readouterr()
    assert _model("a.pt", "Entropy", "--out", "D") == 0  # the same file, written otherwise
    err = capsys.readouterr().err
    assert "note: kept 1 rows of the earlier D/results.json" in err and "replaced all" not in err
    data, rows = _rows(tmp_path / "D")
    assert rows == [("Entropy", "gaussian"), ("MaxSoftmax", "gaussian")]
    assert data["detectors"].keys() == {"Entropy", "MaxSoftmax"}
    # other weights: the earlier rows cannot share the table, and the note says why
    assert _model(other, "MaxSoftmax", "--out", "D") == 0
    assert (f"note: replaced all 2 rows of the earlier D/results.json: they were measured under "
            f"other settings (weights 'a.pt' -> '{other}'); give --out a new folder to keep "
            f"both") in capsys.readouterr().err
    data, rows = _rows(tmp_path / "D")
    assert rows == [("MaxSoftmax", "gaussian")] and data["weights"] == str(other)


def test_the_earlier_rows_of_another_image_size_are_replaced_with_a_note(weights, tmp_path,
                                                                          capsys):
    # --image-size is a --model's option: both calls' rows were kept in one table, one
    # "digits" ID set read at 16 and at 24 pixels
    first, _ = weights
    assert _model(first, "MaxSoftmax", "--out", "D") == 0
    capsys.readouterr()
    argv = ["--out", "D", "--image-size", "24"]  # the later --image-size wins
    assert _model(first, "Entropy", *argv) == 0
    assert ("note: replaced all 1 rows of the earlier D/results.json: they were measured under "
            "other settings (image_size 16 -> 24)") in capsys.readouterr().err
    data, rows = _rows(tmp_path / "D")
    assert rows == [("Entropy", "gaussian")] and data["image_size"] == 24


def test_a_checkpoints_ema_and_raw_weights_do_not_share_a_table(weights, tmp_path, capsys):
    # results.json said "ema": false for every --model call, so the rows of a training
    # checkpoint's EMA weights and of its raw ones (--no-ema) were merged as one model's
    first, _ = weights
    state = torch.load(first, weights_only=True)
    torch.save({**state, "ema": state["model"]}, first)
    assert _model(first, "MaxSoftmax", "--out", "D") == 0
    assert json.loads((tmp_path / "D" / "results.json").read_text())["ema"] is True
    capsys.readouterr()
    assert _model(first, "Entropy", "--out", "D", "--no-ema") == 0
    assert ("note: replaced all 1 rows of the earlier D/results.json: they were measured under "
            "other settings (ema True -> False)") in capsys.readouterr().err
    data, rows = _rows(tmp_path / "D")
    assert rows == [("Entropy", "gaussian")] and data["ema"] is False


@pytest.mark.parametrize("text, words", [
    ('{"rows": []}\n', "--out D/results.json exists and is not a readable record of ood score"),
    ('{"detectors": {}, "results": [1]}\n', "D/results.json is damaged"),
])
def test_a_results_json_not_of_ood_score_in_a_model_out_is_refused_before_any_work(
        weights, tmp_path, monkeypatch, capsys, text, words):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(score, "_load_classifier", no_load)
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "results.json").write_text(text)
    assert _model(weights[0], "MaxSoftmax", "--out", "D") == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert (tmp_path / "D" / "results.json").read_text() == text  # the user's file is kept
    assert sorted(p.name for p in (tmp_path / "D").iterdir()) == ["results.json"]


@pytest.mark.parametrize("how", ["run", "model"])
def test_a_data_root_for_the_built_in_digits_is_refused_before_the_model_loads(
        how, fake_run, tmp_path, monkeypatch, capsys):
    # Was: scored without a word, the option read by nothing (as classify eval refuses it)
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(score, "_load_classifier", no_load)
    source = ([str(fake_run)] if how == "run" else
              ["--model", "test_resnet", "--checkpoint",
               str(fake_run / "checkpoints" / "latest.pt")])
    assert main(["ood", "score", *source, "--data-root", str(tmp_path), "--detectors",
                 "MaxSoftmax", "--out", str(tmp_path / "out"), *SCORE]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
    local = "--id, --fit-data or --ood cifar10, cifar100, svhn without :ROOT"
    if how == "run":
        assert (f"--data-root: {fake_run} was trained on the built-in digits data, which is "
                f"read from no folder; drop --data-root (it applies to runs on cifar10, cifar100, "
                f"svhn, imagefolder, lsun, zip, and to {local})") in err
    else:  # the --dataset values --model takes
        assert (f"--data-root applies only with --dataset cifar10 or cifar100 or svhn or "
                f"imagefolder, or to {local} (dataset is 'digits', built in); drop it or set "
                f"that option") in err


def test_a_data_root_read_by_a_local_set_is_kept_for_a_digits_run(fake_run, tmp_path):
    from robustrep.tasks.common.errors import UserError
    from robustrep.tasks.ood.checks import check_data_root
    for sets in ([None, None, ["gaussian", "cifar10"]], ["SVHN", None, []],
                 [None, "cifar100", []]):  # --ood, --id, --fit-data: read under --data-root
        check_data_root(str(tmp_path), fake_run, None, [sets[0], sets[1], *sets[2]])
    with pytest.raises(UserError, match="drop --data-root"):  # its own root: not read
        check_data_root(str(tmp_path), fake_run, None, [None, None, f"cifar10:{tmp_path}"])
    check_data_root(None, fake_run, None, [None, None])  # not given
