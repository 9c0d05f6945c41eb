"""``--param`` values are checked against the detector's parameter before any feature is
extracted (:mod:`robustrep.tasks.ood.detector_params`)."""

import pytest

from robustrep.tasks.cli import main
from robustrep.tasks.ood.detector_params import parse_params


def test_params_are_checked():
    assert parse_params(["KNN.k=5", "ASH.variant=ash-b"]) == {"KNN": {"k": 5},
                                                              "ASH": {"variant": "ash-b"}}
    with pytest.raises(ValueError, match="no settable parameter 'kk'.*k, normalize"):
        parse_params(["KNN.kk=5"])
    with pytest.raises(ValueError, match="DETECTOR.NAME=VALUE"):
        parse_params(["k=5"])


def test_a_param_of_the_wrong_kind_is_refused_before_extraction(tmp_path, capsys):
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--detectors", "KNN",
                 "--param", "KNN.k=abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robustrep ood score: error: --param KNN.k=abc: KNN.k takes an int "
                          "(default")
    assert err.endswith("got 'abc'\n") and err.count("\n") == 1


def test_a_param_of_a_detector_not_scored_is_refused_before_extraction(tmp_path, capsys):
    # Was: --param MaxSoftmax.t=2 beside --detectors KNN acted on nothing, without a word
    assert main(["ood", "score", str(tmp_path / "no-run-needed"), "--detectors", "KNN,ODIN",
                 "--param", "maxsoftmax.t=2"]) == 2
    err = capsys.readouterr().err
    assert err == ("robustrep ood score: error: --param maxsoftmax.t=2: MaxSoftmax is not among "
                   "the detectors scored (KNN, ODIN); add it to --detectors\n")
    assert main(["ood", "bench", "--detectors", "KNN", "--param", "ODIN.eps=0", "--out",
                 str(tmp_path / "b")]) == 2
    assert "ODIN is not among the detectors scored (KNN)" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("item, value", [("KNN.k=7", 7), ("EnergyBased.t=0.5", 0.5)])
def test_params_of_the_right_kind_pass(item, value):
    ((det, params),) = parse_params([item]).items()
    assert list(params.values()) == [value]


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
    assert capsys.readouterr().err == f"robustrep ood score: error: --param {item}: {accepted}\n"


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
        "robustrep ood score: error: --param ReAct.threshold=-1: ReAct.threshold takes a float > 0 "
        "(default None: the ReAct.percentile of the ID train activations), got -1\n")


class _Extracted(Exception):
    """Raised in place of the extraction: the call got past every check."""


def _no_extraction(monkeypatch):
    from robustrep.tasks.ood import score

    def extract(*args, **kwargs):
        raise _Extracted

    monkeypatch.setattr(score, "extract", extract)


def test_a_k_above_the_fit_set_is_refused_before_extraction(fake_run, monkeypatch, capsys):
    # Was: pytorch-ood's "k=432 exceeds the number of ID samples (431)" (NNGuide: "Need at
    # least k=...") once every feature was extracted, a failed row (exit 1 when alone)
    from robustrep.data.builtin import digits
    _no_extraction(monkeypatch)
    size = len(digits(16, 1, [0, 1, 2], train=True))  # the fake run's fit set: its classes
    for det in ("KNN", "NNGuide"):
        assert main(["ood", "score", str(fake_run), "--detectors", det, "--param",
                     f"{det}.k={size + 1}", "--device", "cpu", "--quiet"]) == 2
        assert capsys.readouterr().err == (
            f"robustrep ood score: error: --param {det}.k={size + 1}: {det} takes its k nearest "
            f"neighbours among the images it is fitted on, {size} in the train split of digits, "
            f"so {det}.k must be at most {size}; lower it, or fit on more images (--fit-data)\n")
    with pytest.raises(_Extracted):  # k = the fit set's size is accepted
        main(["ood", "score", str(fake_run), "--detectors", "KNN,NNGuide", "--param",
              f"KNN.k={size}", "--param", f"NNGuide.k={size}", "--device", "cpu", "--quiet"])


def test_a_k_above_max_fit_is_refused_before_the_model_is_loaded(tmp_path, capsys):
    # --max-fit caps the fit set: known before the run is read (here there is none)
    run = str(tmp_path / "no-run-needed")
    assert main(["ood", "score", run, "--detectors", "KNN", "--max-fit", "10"]) == 2
    assert capsys.readouterr().err == (
        "robustrep ood score: error: KNN.k (default 50): KNN takes its k nearest neighbours among "
        "the images it is fitted on, at most 10 (--max-fit 10), so KNN.k must be at most 10; give "
        "--param KNN.k=10 or lower, or raise --max-fit\n")
    assert main(["ood", "score", run, "--detectors", "NNGuide", "--max-fit", "10", "--param",
                 "NNGuide.k=11"]) == 2
    assert "--param NNGuide.k=11: NNGuide takes its k nearest neighbours among the images it " \
           "is fitted on, at most 10 (--max-fit 10), so NNGuide.k must be at most 10; lower " \
           "it, or raise --max-fit\n" in capsys.readouterr().err


def test_ood_labelled_fit_images_are_counted_out_before_the_test_sets_are_extracted(
        tiny_classifier, tiny_data, monkeypatch):
    # pytorch-ood fits KNN on the ID-labelled images alone: 40 of these 60, below the default
    # k of 50, failed in the fit after every set was extracted
    from robustrep.data import ImageTensorDataset
    from robustrep.tasks.ood import score
    from robustrep.tasks.ood.detectors import parse_detectors
    from robustrep.tasks.ood.extract import as_ood_model
    fit, id_test, ood = tiny_data
    labels = fit.targets.clone()
    labels[:20] = -1
    from robustrep.tasks.ood.extract import extract
    extracted = []

    def counted(model, data, *args, **kwargs):
        extracted.append(data)
        return extract(model, data, *args, **kwargs)

    monkeypatch.setattr(score, "extract", counted)
    with pytest.raises(ValueError) as err:
        score.score_model(as_ood_model(tiny_classifier), parse_detectors("KNN"), id_test, ood,
                          ImageTensorDataset(fit.images, labels), num_classes=3)
    assert str(err.value) == (
        "KNN.k (default 50): KNN takes its k nearest neighbours among the images it is fitted "
        "on, 40 (the fit images with an ID label; pytorch-ood leaves out those labelled OOD), so "
        "KNN.k must be at most 40; give --param KNN.k=40 or lower")
    assert len(extracted) == 1  # the fit set alone


def test_every_rule_names_a_settable_parameter_whose_default_it_takes():
    # one table (_RULES) holds every number rule: a row naming no parameter, or refusing its
    # own default, would check nothing or refuse every call that gives the default
    from robustrep.tasks.ood import detector_params as dp
    from robustrep.tasks.ood.detectors import registry
    for (det, key), rules in dp._RULES.items():
        spec = registry()[det]
        assert key in spec.params and dp._settable(spec, key), (det, key)
        assert rules and all(isinstance(r, dp._Rule) for r in rules)
        default = dp._default(spec, key)
        if default is not None:
            assert parse_params([f"{det}.{key}={default!r}"]) == {det: {key: default}}
        assert type(dp._kind_of(spec, key)) in (int, float), (det, key)


def _ends(rule):
    """A value just past each end of ``rule`` (at an open end: the end itself)."""
    low = [rule.low] if rule.open_low else [rule.low - 0.5]
    high = [] if rule.high == float("inf") else [rule.high] if rule.open_high else [
        rule.high + 0.5]
    return low + high


def _rows():
    from robustrep.tasks.ood.detector_params import _RULES
    return [(det, key, i) for (det, key), rules in _RULES.items() for i in range(len(rules))]


@pytest.mark.parametrize("det, key, index", _rows())
def test_each_rule_refuses_past_its_ends_as_its_text_says(det, key, index):
    from robustrep.tasks.ood import detector_params as dp
    from robustrep.tasks.ood.detectors import registry
    rule = dp._RULES[(det, key)][index]
    noun = rule.noun or type(dp._kind_of(registry()[det], key)).__name__
    for value in _ends(rule):
        if not all(r.holds(value) for r in dp._RULES[(det, key)][:index]):
            continue  # an earlier rule of the row refuses it (ASH.percentile=1.5: a fraction)
        with pytest.raises(ValueError) as err:
            parse_params([f"{det}.{key}={value!r}"])
        assert f"{det}.{key} takes a{'n' * (noun[0] in 'aeiou')} {noun} {rule.text()} " \
               f"(default " in str(err.value)
        assert str(err.value).endswith(f"got {value!r}{rule.tail(value)}")


def test_a_parameter_gets_its_rule_from_one_row(monkeypatch):
    from robustrep.tasks.ood import detector_params as dp
    assert parse_params(["ODIN.eps=0"]) == {"ODIN": {"eps": 0}}  # no rule yet
    monkeypatch.setitem(dp._RULES, ("ODIN", "eps"), (dp._POSITIVE,))
    with pytest.raises(ValueError) as err:
        parse_params(["ODIN.eps=0"])
    assert str(err.value) == "--param ODIN.eps=0: ODIN.eps takes a float > 0 (default 0.0014), " \
                             "got 0"
    monkeypatch.setitem(dp._RULES, ("GMM", "reg"), (dp._Rule(0, 1, True, False, why="its why"),))
    with pytest.raises(ValueError) as err:
        parse_params(["GMM.reg=2"])
    assert str(err.value) == "--param GMM.reg=2: GMM.reg takes a number in (0, 1] (default " \
                             "1e-06), got 2: its why"
