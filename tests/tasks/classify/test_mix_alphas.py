"""One alpha per mixing method on the command line: timm's DeiT recipe ``--mixup 0.8 --cutmix
1.0`` is ``--reg mixup,cutmix --mixup-alpha 0.8 --cutmix-alpha 1.0``, the library's
``SampleMix(("mixup", "cutmix"), alpha=(0.8, 1.0))``, recorded per method and kept on resume.
Was: one ``--mix-alpha`` for every listed method, and ``reg_options: {cutmix: {alpha: 1.0}}``
refused ("is set by its own option mix_alpha")."""

import json

import pytest
import torch

from robustrep.mixing import SampleMix
from robustrep.tasks.cli import main
from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.classify.task import build_regularizers
from robustrep.tasks.common.config import from_dict
from robustrep.tasks.common.regularizer_record import RECORD_FILE

DEIT = ["--reg", "mixup,cutmix", "--mixup-alpha", "0.8", "--cutmix-alpha", "1.0"]
TINY = ["--preset", "smoke", "--steps", "2", "--ckpt-every", "1", "--image-size", "16",
        "--classes", "0,1", "--quiet"]


def _dry_run(args, capsys) -> ClassifyConfig:
    """The config ``classify train ARGS --dry-run`` prints, as the run would use it."""
    capsys.readouterr()
    assert main(["classify", "train", *args, "--dry-run"]) == 0
    return from_dict(ClassifyConfig, json.loads(capsys.readouterr().out))


def _mixer(cfg: ClassifyConfig) -> SampleMix:
    return build_regularizers(cfg)["input mixing"]


def test_each_methods_alpha_builds_the_librarys_policy(capsys):
    cfg = _dry_run(DEIT, capsys)
    assert cfg.mix_alpha is None
    assert cfg.reg_options == {"mixup": {"alpha": 0.8}, "cutmix": {"alpha": 1.0}}
    mix = _mixer(cfg)
    assert (mix.kinds, mix.alpha) == (("mixup", "cutmix"), (0.8, 1.0))
    assert repr(mix) == repr(SampleMix(("mixup", "cutmix"), alpha=(0.8, 1.0)))
    # the same lam draws (one per sample: 64 a call) as the library's policy, whose per-kind
    # Beta test_mixing.py's test_each_kind_draws_lam_with_its_own_alpha checks (timm's Mixup
    # draws the kind, then lam ~ Beta(that kind's alpha))
    mix = _mixer(_dry_run([*DEIT, "--mixup-per-sample"], capsys))
    ours = SampleMix(("mixup", "cutmix"), alpha=(0.8, 1.0), per_sample=True)
    x = torch.rand(64, 3, 8, 8)
    got, want = (p.mix_inputs(x, generator=torch.Generator().manual_seed(3)) for p in (mix, ours))
    assert torch.equal(got.lam, want.lam) and torch.equal(got.x, want.x)
    # --mix-alpha sets the methods without their own
    cfg = _dry_run(["--reg", "mixup,cutmix", "--mix-alpha", "0.4", "--cutmix-alpha", "2"],
                   capsys)
    assert _mixer(cfg).alpha == (0.4, 2.0)


def test_a_run_records_each_alpha_and_its_resume_keeps_them(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["classify", "train", *TINY, *DEIT, "--run-dir", str(run),
                 "--stop-after", "1"]) == 0
    (entry,) = json.loads((run / RECORD_FILE).read_text())
    alphas = {n: r["options"]["alpha"] for n, r in entry["regularizers"].items()}
    assert alphas == {"mixup": 0.8, "cutmix": 1.0}
    cfg = _dry_run(["--resume", str(run)], capsys)  # the resume's config, as it prints it
    assert _mixer(cfg).alpha == (0.8, 1.0)
    # one saved alpha given again changes nothing (was refused: "cannot change reg_options");
    # another value is a change
    cfg = _dry_run(["--resume", str(run), "--mixup-alpha", "0.8"], capsys)
    assert _mixer(cfg).alpha == (0.8, 1.0)
    assert main(["classify", "train", "--resume", str(run), "--mixup-alpha", "0.7",
                 "--dry-run"]) == 2
    assert "cannot change reg_options when resuming" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["classify", "train", "--resume", str(run), "--quiet"]) == 0
    assert "note:" not in capsys.readouterr().err  # nothing kept or changed
    assert json.loads((run / RECORD_FILE).read_text()) == [entry]  # the same regularizers


@pytest.mark.parametrize("args,words", [
    (["--reg", "mixup", "--cutmix-alpha", "1"],  # was "reg_options (--cutmix-...) set ..."
     "--cutmix-alpha sets an option of cutmix, which --reg does not list (it lists: mixup); "
     "drop it or add cutmix to --reg"),
    (["--reg", "mixup", "--reg-options", '{"cutmix": {"alpha": 1}}'],  # no flag of its own
     "reg_options (--cutmix-...) set options of cutmix, which --reg does not list (it lists: "
     "mixup)"),
    (["--reg", "mixup,cutmix", "--reg-options", '{"cutmix": {"alpha": 0}}'],
     "--reg cutmix: reg_options: cutmix's 'alpha' (--cutmix-alpha) must be a finite number > 0; "
     "got 0"),
    ([*DEIT, "--mix-alpha", "0.5"],  # acts on no method: was a value recorded for nothing
     "--mix-alpha applies only with a method in --reg without its own value (reg is "
     "'mixup,cutmix', whose --mixup-alpha, --cutmix-alpha override it); drop it, or one of "
     "those own values"),
])
def test_an_alpha_that_cannot_act_is_one_line(args, words, capsys):
    assert main(["classify", "train", *args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err, err


def test_gans_alpha_for_a_method_not_listed_names_its_flag(capsys):
    assert main(["gan", "train", "--reg", "mixup", "--cutmix-alpha", "0.5", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("robustrep gan train: error: --cutmix-alpha sets an option of cutmix, which "
                   "--reg does not list (it lists: mixup); drop it or add cutmix to --reg")


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_methods_alpha_is_checked_as_mix_alpha_is(value, capsys):
    for flag in ("--mix-alpha", "--cutmix-alpha"):
        with pytest.raises(SystemExit) as stop:
            main(["classify", "train", "--reg", "mixup,cutmix", flag, value, "--dry-run"])
        assert stop.value.code == 2
        assert (f"error: argument {flag}: must be a finite number > 0; got '{value}'"
                in capsys.readouterr().err)
