"""A malformed ``--regs`` setting is one line naming --regs and the form of a setting."""

import pytest

from robustrep.tasks.cli import main

FORM = ("a setting is a classify --reg value (methods joined by '+'), each of its own classify "
        "options after an '@' as NAME=VALUE (e.g. none@head=uos, mixup+cutmix@mixup_alpha=0.8)")


@pytest.mark.parametrize("setting, item", [("none@foo", "foo"), ("none@=3", "=3"),
                                           ("mixup@head=uos@x", "x"), ("none@x{y}", "x{y}")])
def test_a_bad_setting_option_names_regs_not_train_opt(tmp_path, capsys, setting, item):
    # Was: "--regs 'none@foo': --train-opt must look like NAME=VALUE (e.g. adv_steps=3), got
    # 'foo'", naming an option the user never gave
    out = tmp_path / "bench"
    assert main(["ood", "bench", "--regs", f"none,{setting}", "--out", str(out), "--detectors",
                 "MaxSoftmax", "--quiet"]) == 2
    assert capsys.readouterr().err == (f"robustrep ood bench: error: --regs {setting!r}: {FORM}; "
                                       f"got '@{item}'\n")
    assert not out.exists()


def test_a_bad_train_opt_still_names_train_opt(tmp_path, capsys):
    assert main(["ood", "bench", "--train-opt", "foo", "--out", str(tmp_path / "b"),
                 "--detectors", "MaxSoftmax", "--quiet"]) == 2
    assert capsys.readouterr().err == ("robustrep ood bench: error: --train-opt must look like "
                                       "NAME=VALUE (e.g. adv_steps=3), got 'foo'\n")


@pytest.mark.parametrize("setting", ["@head=uos", " @head=uos"])
def test_a_setting_without_its_methods_names_regs(tmp_path, capsys, setting):
    # Was: accepted by the name check (no name is none), then refused by the first run's dry
    # run as "--reg: must be a non-empty string"
    out = tmp_path / "bench"
    assert main(["ood", "bench", "--regs", f"none,{setting}", "--out", str(out), "--detectors",
                 "MaxSoftmax", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep ood bench: error: --regs {setting.strip()!r}: a setting starts with its "
        f"methods, or none (e.g. none@head=uos, mixup+cutmix@mixup_alpha=0.8)\n")
    assert not out.exists()


@pytest.mark.parametrize("regs, twice", [("mixup,Mixup", "mixup"), ("none,NONE", "none"),
                                         ("Mixup+PGD@adv_steps=3,mixup+pgd@adv_steps=3",
                                          "mixup+pgd@adv_steps=3")])
def test_a_setting_spelt_twice_is_one_setting_given_twice(tmp_path, capsys, regs, twice):
    # Was: trained twice, in folders Mixup-s0 and mixup-s0, and shown as two columns
    out = tmp_path / "bench"
    assert main(["ood", "bench", "--regs", regs, "--out", str(out), "--detectors", "MaxSoftmax",
                 "--quiet"]) == 2
    assert capsys.readouterr().err == (f"robustrep ood bench: error: --regs: setting {twice} is "
                                       f"given twice; give each setting once\n")
    assert not out.exists()
