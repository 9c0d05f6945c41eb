"""``--param`` values are checked against the detector's parameter before any feature is
extracted; result tables escape the column bar."""

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.ood.detectors import parse_params
from robustrep.tasks.ood.outputs import format_table
from robustrep.tasks.ood.results import DetectorResult, ScoreResult


def test_a_param_of_the_wrong_kind_is_refused_before_extraction(tmp_path, capsys):
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--detectors", "KNN",
                 "--param", "KNN.k=abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robustrep ood: error: --param KNN.k=abc: KNN.k takes an int (default")
    assert err.endswith("got 'abc'\n") and err.count("\n") == 1


def test_a_param_of_a_detector_not_scored_is_refused_before_extraction(tmp_path, capsys):
    # Was: --param MaxSoftmax.t=2 beside --detectors KNN acted on nothing, without a word
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--detectors", "KNN,ODIN",
                 "--param", "maxsoftmax.t=2"]) == 2
    err = capsys.readouterr().err
    assert err == ("robustrep ood: error: --param maxsoftmax.t=2: MaxSoftmax is not among the "
                   "detectors scored (KNN, ODIN); add it to --detectors\n")
    assert main(["ood", "bench", "--detectors", "KNN", "--param", "ODIN.eps=0", "--out",
                 str(tmp_path / "b")]) == 2
    assert "ODIN is not among the detectors scored (KNN)" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_an_ood_set_given_twice_is_refused(tmp_path, capsys):
    # Was: scored once, as if given once (bench refused it)
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--ood", "gaussian", "photos",
                 "gaussian"]) == 2
    assert capsys.readouterr().err == ("robustrep ood: error: --ood: OOD set gaussian is given "
                                       "twice; give each OOD set once\n")


@pytest.mark.parametrize("item, value", [("KNN.k=7", 7), ("EnergyBased.t=0.5", 0.5)])
def test_params_of_the_right_kind_pass(item, value):
    ((det, params),) = parse_params([item]).items()
    assert list(params.values()) == [value]


def test_results_table_escapes_a_bar_in_a_name():
    result = ScoreResult({"MSP": DetectorResult("MSP", metrics={"a|b": {}})}, ["a|b"], None, {},
                         0.0)
    row = format_table(result).splitlines()[2]
    assert row.startswith("| MSP | a\\|b | ")


@pytest.mark.parametrize("item, accepted", [
    ("ODIN.temperature=0", "ODIN.temperature takes a float > 0 (default 1000.0), got 0"),
    ("MaxSoftmax.t=0", "MaxSoftmax.t takes a float > 0 (default 1.0), got 0"),
    ("KNN.k=0", "KNN.k takes an int > 0 (default 50), got 0"),
    ("ViM.d=0", "ViM.d takes an int > 0 (default D//2 of the feature size D), got 0"),
])
def test_a_zero_temperature_or_count_is_refused_before_extraction(tmp_path, capsys, item,
                                                                   accepted):
    # Was: only negatives were refused; 0 gave NaN scores or sklearn's error after extraction
    detector = item.split(".")[0]
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--detectors", detector,
                 "--param", item]) == 2
    assert capsys.readouterr().err == f"robustrep ood: error: --param {item}: {accepted}\n"


@pytest.mark.parametrize("item, message", [
    # Was: a bare "AssertionError in pytorch-ood's ASH:  (ID train labels: None)" after
    # extraction, exit 1
    ("ASH.variant=nope", "ASH.variant takes one of ash-s, ash-p, ash-b (default 'ash-s'), got "
                         "'nope'"),
    # Was: refused by pytorch-ood's constructor only once every feature was extracted
    ("ASH.percentile=65", "ASH.percentile takes a fraction in [0, 1] (default 0.65), got 65; "
                          "use 0.65 for 65%"),
    ("VRA.upper_percentile=150", "VRA.upper_percentile takes a fraction in [0, 1] (default "
                                 "0.99), got 150"),
    # Was: accepted as a float > 0; every score the same, the detector failed after extraction
    ("MaxSoftmax.t=1e400", "MaxSoftmax.t takes a finite number, got inf"),
    # Was: accepted, pytorch-ood's default None saying nothing of the kind (and then replaced by
    # the fitted threshold); at or below 0 it clips every post-ReLU activation to one value
    ("ReAct.threshold=-1", "ReAct.threshold takes a float > 0 (default None: the "
                           "ReAct.percentile of the ID train activations), got -1"),
    ("ReAct.threshold=0", "ReAct.threshold takes a float > 0 (default None: the "
                          "ReAct.percentile of the ID train activations), got 0"),
    ("ReAct.threshold=abc", "ReAct.threshold takes a float (default None: the ReAct.percentile "
                            "of the ID train activations), got 'abc'"),
    ("GEN.gamma=0", "GEN.gamma takes a float > 0 (default 0.1), got 0"),
    ("GEN.M=0", "GEN.M takes an int > 0 (default None: every class), got 0"),
    # Was: a bare AssertionError from MCD's constructor, after extraction
    ("MCD.mode=max", "MCD.mode takes one of mean, var (default 'var'), got 'max'"),
])
def test_a_param_out_of_its_range_is_refused_before_extraction(item, message):
    with pytest.raises(ValueError) as err:
        parse_params([item])
    assert str(err.value) == f"--param {item}: {message}"
    parse_params(["ASH.variant=ash-b", "ASH.percentile=0.9", "MaxSoftmax.t=2"])  # in range


def test_vra_percentiles_out_of_order_are_refused_before_extraction():
    # Was: refused by VRA's constructor only after every feature was extracted
    with pytest.raises(ValueError) as err:
        parse_params(["VRA.lower_percentile=0.995"])  # above the default upper 0.99
    assert str(err.value) == ("--param VRA.lower_percentile=0.995, VRA.upper_percentile=0.99: "
                              "VRA.lower_percentile takes a fraction at most "
                              "VRA.upper_percentile (defaults 0.01 and 0.99)")
    with pytest.raises(ValueError, match="lower_percentile=0.5, VRA.upper_percentile=0.4: "):
        parse_params(["VRA.upper_percentile=0.4", "VRA.lower_percentile=0.5"])


def test_params_in_their_range_pass_with_their_values():
    assert parse_params(["ReAct.threshold=1.5", "GEN.M=2", "GEN.gamma=0.5", "MCD.mode=mean",
                         "VRA.lower_percentile=0.2", "VRA.upper_percentile=0.3"]) == {
        "ReAct": {"threshold": 1.5}, "GEN": {"M": 2, "gamma": 0.5}, "MCD": {"mode": "mean"},
        "VRA": {"lower_percentile": 0.2, "upper_percentile": 0.3}}
    assert parse_params(["ReAct.threshold=None"]) == {"ReAct": {"threshold": None}}  # fitted


def test_a_refused_range_is_one_line_from_the_command(tmp_path, capsys):
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--detectors", "ReAct",
                 "--param", "ReAct.threshold=-1"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood: error: --param ReAct.threshold=-1: ReAct.threshold takes a float > 0 "
        "(default None: the ReAct.percentile of the ID train activations), got -1\n")
