"""tasks/common/regularizer_record.py: what a run's regularizers.json records (every option
resolved, the code's hash), the notes when a resume changes it, and the options a resume keeps
when a core default changed since the run started."""

import json
import types

import pytest

from robustrep import adversarial
from robustrep.tasks.common.config import ConfigError
from robustrep.tasks.classify.config import OPTION_FIELDS as CLASSIFY_FIELDS
from robustrep.tasks.common.regularizer_record import (RECORD_FILE, _record, kept_options,
                                                       regularizer_record)


def _cfg(**kw):
    return types.SimpleNamespace(**kw)


def test_the_record_fills_in_the_class_defaults_and_names_the_code(probe):
    import hashlib
    import sys

    record = regularizer_record(_cfg(w=0.5, reg_options={"test-probe": {"steps": 9}}),
                                ["test-probe"], {"test-probe": {"weight": "w"}})
    source = hashlib.sha256(open(sys.modules[probe.__module__].__file__, "rb").read())
    assert record == {"test-probe": {
        "class": f"{probe.__module__}.{probe.__qualname__}", "source": source.hexdigest(),
        "options": {"weight": 0.5, "steps": 9, "on": False, "mode": "a", "cap": None,
                    "span": [0.0, 1.0], "note": None, "fuse_passes": False}}}


def test_a_resume_under_other_options_or_code_is_noted_and_kept(tmp_path):
    first = {"toy": {"class": "m.Toy", "options": {"weight": 0.1}, "source": "aa"}}
    assert _record(tmp_path, first, 0) is None  # a fresh run: recorded, nothing to say
    assert _record(tmp_path, first, 4) is None  # the same on resume: nothing added
    changed = {"toy": {"class": "m.Toy", "options": {"weight": 0.9}, "source": "bb"}}
    assert _record(tmp_path, changed, 6) == (
        f"note: the regularizers differ from when {tmp_path} was trained (toy: weight 0.1 -> "
        "0.9, its source file changed); the steps from 6 on use the new ones (recorded in "
        "regularizers.json)")
    history = json.loads((tmp_path / "regularizers.json").read_text())
    assert history == [{"step": 0, "regularizers": first}, {"step": 6, "regularizers": changed}]
    for damaged in ("[{", '[{"step": 0}]'):  # not JSON, or not its shape: said, started again
        (tmp_path / "regularizers.json").write_text(damaged)
        assert _record(tmp_path, first, 8).startswith(
            f"warning: {tmp_path / 'regularizers.json'} is unreadable (")
        assert json.loads((tmp_path / "regularizers.json").read_text()) == [
            {"step": 8, "regularizers": first}]


def test_the_record_keeps_a_none_the_class_takes_as_a_value():
    """input_range None (unbounded 2-D data) is what DAT is built with, not the default."""
    from robustrep.tasks.gan.regs import OPTION_FIELDS
    cfg = _cfg(dat_t=None, dat_eps=None, reg_options=None)
    record = regularizer_record(cfg, ["dat"], OPTION_FIELDS, {"input_range": None})
    assert record["dat"]["options"]["input_range"] is None
    assert regularizer_record(cfg, ["dat"], OPTION_FIELDS, {"input_range": (-1.0, 1.0)})[
        "dat"]["options"]["input_range"] == [-1.0, 1.0]


def test_the_record_says_the_radius_the_class_chose_for_its_norm():
    """An eps left to the core is resolved by the norm (PGD: 0.5 for L2); the record said None."""
    cfg = _cfg(eps=None, adv_steps=None, adv_step_size=None, reg_options={"pgd": {"norm": "l2"}})
    options = regularizer_record(cfg, ["pgd"], CLASSIFY_FIELDS)["pgd"]["options"]
    assert (options["eps"], options["norm"], options["step_size"]) == (0.5, "l2", None)


# --- a resume keeps what the run recorded for options left to the core -----------------------

def _l2_fgsm(eps=None):
    return _cfg(eps=eps, adv_step_size=None, reg_options={"fgsm": {"norm": "l2"}})


def _write_record(run, record):
    (run / RECORD_FILE).write_text(json.dumps([{"step": 0, "regularizers": record}]))


def _older_record(cfg, eps=8 / 255):
    """The record an older version wrote: the L2 radius it resolved was 8/255."""
    record = regularizer_record(cfg, ["fgsm"], CLASSIFY_FIELDS)
    record["fgsm"]["options"]["eps"] = eps
    return record


def test_a_changed_core_default_keeps_the_recorded_value_with_a_note(tmp_path):
    cfg = _l2_fgsm()
    _write_record(tmp_path, _older_record(cfg))
    kept, note = kept_options(tmp_path, cfg, ["fgsm"], CLASSIFY_FIELDS)
    assert kept == {"fgsm": {"eps": 8 / 255}} and type(kept["fgsm"]["eps"]) is float
    assert note == (f"note: {tmp_path / RECORD_FILE} records fgsm's eps 0.031373 (this "
                    "version's default: 0.5): core defaults that changed since the run started; "
                    "the resume keeps the recorded values (a new run takes the new ones)")
    # what the resume then builds and records is what the run trained with: no new entry
    assert regularizer_record(cfg, ["fgsm"], CLASSIFY_FIELDS, kept=kept) == _older_record(cfg)


@pytest.mark.parametrize("case", ["given", "same", "other class", "no record", "damaged"])
def test_nothing_is_kept_that_the_config_sets_or_the_record_cannot_say(tmp_path, case):
    cfg = _l2_fgsm(eps=0.25 if case == "given" else None)
    record = _older_record(_l2_fgsm(), eps=0.5 if case == "same" else 8 / 255)
    if case == "other class":
        record["fgsm"]["class"] = "plugin.FGSM"
    if case != "no record":
        _write_record(tmp_path, record)
    if case == "damaged":
        (tmp_path / RECORD_FILE).write_text("[{")
    assert kept_options(tmp_path, cfg, ["fgsm"], CLASSIFY_FIELDS) == ({}, None)


def test_a_recorded_none_keeps_nothing_and_refuses_nothing(tmp_path):
    """A None in the record is the class's own choice (this version records PGD's and FGSM's
    step_size None): the resume goes on and the class chooses again; a refusal there would make
    every such run unresumable once a later version resolves the option when built."""
    cfg = _l2_fgsm()
    _write_record(tmp_path, _older_record(cfg, eps=None))
    assert kept_options(tmp_path, cfg, ["fgsm"], CLASSIFY_FIELDS) == ({}, None)
    # the config's own radius, or an option the record lacks (added since): nothing to keep
    assert kept_options(tmp_path, _l2_fgsm(eps=0.25), ["fgsm"], CLASSIFY_FIELDS) == ({}, None)
    record = _older_record(cfg)
    del record["fgsm"]["options"]["eps"]
    _write_record(tmp_path, record)
    assert kept_options(tmp_path, cfg, ["fgsm"], CLASSIFY_FIELDS) == ({}, None)


def test_a_value_a_flag_cannot_hold_is_not_kept(tmp_path, probe):
    """``span`` (a tuple) is recorded as a list; only scalar options are given back."""
    cfg, fields = _cfg(reg_options=None), {"test-probe": {}}
    record = regularizer_record(cfg, ["test-probe"], fields)
    record["test-probe"]["options"].update(span=[0.0, 2.0], steps=5)
    _write_record(tmp_path, record)
    assert kept_options(tmp_path, cfg, ["test-probe"], fields)[0] == {"test-probe": {"steps": 5}}


def test_an_older_l2_run_resumes_at_its_own_radius_as_if_never_stopped(tmp_path, monkeypatch,
                                                                       capsys):
    """Was: an L2 run begun when 8/255 was the core's L2 radius resumed at 0.5 (a note said
    so), a different run from then on."""
    import torch

    from robustrep.tasks.classify.train import train
    from ..classify.conftest import tiny_config
    l2 = dict(reg="fgsm", reg_options={"fgsm": {"norm": "l2"}}, steps=2, ckpt_every=1)
    train(tiny_config(eps=8 / 255, **l2), tmp_path / "a", quiet=True)
    with monkeypatch.context() as older:  # the version that started run b
        older.setitem(adversarial.TRAINING_EPS, "l2", 8 / 255)
        train(tiny_config(**l2), tmp_path / "b", stop_after=1, quiet=True)
    capsys.readouterr()
    from robustrep.tasks.cli import main  # a dry run of the resume says what it keeps
    assert main(["classify", "train", "--resume", str(tmp_path / "b"), "--dry-run"]) == 0
    assert "records fgsm's eps 0.031373" in capsys.readouterr().err
    train(tiny_config(**l2), tmp_path / "b", resume=True, quiet=True)
    err = capsys.readouterr().err
    assert "records fgsm's eps 0.031373 (this version's default: 0.5)" in err
    b = tmp_path / "b"  # and where it went on from (after a kill nothing else said it)
    assert f"resuming {b} at step 1 of 2 from {b / 'checkpoints' / 'latest.pt'}\n" in err
    a, b = (torch.load(tmp_path / r / "checkpoints" / "latest.pt", weights_only=False)["model"]
            for r in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    (entry,) = json.loads((tmp_path / "b" / RECORD_FILE).read_text())  # nothing changed
    assert entry["regularizers"]["fgsm"]["options"]["eps"] == 8 / 255


def test_a_resume_from_an_older_checkpoint_keeps_that_trajectorys_values(tmp_path):
    """Entries past the resumed step are an abandoned trajectory's: was, the last entry (step
    100, at the new default) was read for a resume from step 50, and nothing was kept."""
    cfg = _l2_fgsm()
    older, newer = _older_record(cfg), regularizer_record(cfg, ["fgsm"], CLASSIFY_FIELDS)
    (tmp_path / RECORD_FILE).write_text(json.dumps([
        {"step": 0, "regularizers": older}, {"step": 100, "regularizers": newer}]))
    assert kept_options(tmp_path, cfg, ["fgsm"], CLASSIFY_FIELDS, step=50)[0] == {
        "fgsm": {"eps": 8 / 255}}
    assert kept_options(tmp_path, cfg, ["fgsm"], CLASSIFY_FIELDS, step=100) == ({}, None)
    kept = {"fgsm": {"eps": 8 / 255}}  # the resume at 50 records what it trains with
    assert _record(tmp_path, regularizer_record(cfg, ["fgsm"], CLASSIFY_FIELDS, kept=kept),
                   50) is None
    assert json.loads((tmp_path / RECORD_FILE).read_text()) == [{"step": 0,
                                                               "regularizers": older}]


@pytest.mark.parametrize("options", [[1, 2], "eps", None])
def test_a_record_of_another_shape_keeps_nothing(tmp_path, options):
    """Was: AttributeError ('list' object has no attribute 'get'), a traceback."""
    record = _older_record(_l2_fgsm())
    record["fgsm"]["options"] = options
    _write_record(tmp_path, record)
    assert kept_options(tmp_path, _l2_fgsm(), ["fgsm"], CLASSIFY_FIELDS) == ({}, None)


@pytest.mark.parametrize("option, value, why", [
    ("norm", "l1", "reg_options: fgsm's 'norm' must be one of"),  # a choice since removed
    ("step_size", -0.1, "step_size must be"),  # a range since narrowed
])
def test_a_recorded_value_this_version_refuses_names_the_record(tmp_path, option, value, why):
    """Was: blamed on reg_options or --reg fgsm, which the user never gave."""
    cfg = _cfg(eps=None, adv_step_size=None, reg_options=None)
    record = regularizer_record(cfg, ["fgsm"], CLASSIFY_FIELDS)
    record["fgsm"]["options"][option] = value
    _write_record(tmp_path, record)
    with pytest.raises(ConfigError) as refused:
        kept_options(tmp_path, cfg, ["fgsm"], CLASSIFY_FIELDS)
    assert str(refused.value).startswith(
        f"{tmp_path / RECORD_FILE} records fgsm's {option} {value}, which this version refuses (")
    assert why in str(refused.value) and str(refused.value).endswith(
        "); finish the run with the version that started it, or start it again")
