"""One option system: the options both trainers share are declared once, regularizer options
come from the registry (class signature and docstring), and every method's remaining options
are generated flags that reach the class."""

import dataclasses
import json

import pytest

from robustrep.registry import regularizer_info
from robustrep.tasks.classify.config import ClassifyConfig
from robustrep.tasks.common.config import option_specs
from robustrep.tasks.common.options import SHARED
from robustrep.tasks.gan.config import GanConfig

SCHEDULES = {"eval_every", "ckpt_every", "log_every"}  # defaults follow each program's run length


def _fields(cls):
    return {f.name: f for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_a_shared_option_is_the_same_in_both_trainers(name):
    g, c = _fields(GanConfig)[name], _fields(ClassifyConfig)[name]
    assert dict(g.metadata) == dict(c.metadata)
    assert option_specs(GanConfig)[name] == option_specs(ClassifyConfig)[name]
    if name not in SCHEDULES:
        assert g.default == c.default


def test_schedules_accept_zero_in_both_trainers():
    # drift of the last round: gan accepted --ckpt-every 0 / --log-every 0, classify refused them
    for cls in (GanConfig, ClassifyConfig):
        cfg = cls(ckpt_every=0, log_every=0, eval_every=0)
        assert (cfg.ckpt_every, cfg.log_every) == (0, 0)


@pytest.mark.parametrize("field, method, opt", [
    ("am_alpha", "adaptivemix", "alpha"), ("am_noise_std", "adaptivemix", "noise_std"),
    ("am_weight", "adaptivemix", "weight"), ("am_mode", "adaptivemix", "mode"),
    ("mix_alpha", "mixup", "alpha"), ("mix_prob", "mixup", "prob")])
def test_regularizer_options_default_to_the_class_and_say_its_docstring(field, method, opt):
    info = regularizer_info(method).options[opt]
    for cls in (GanConfig, ClassifyConfig):
        f = _fields(cls)[field]
        assert f.default is None  # the class default applies (stated once, in the class)
        assert f.metadata["help"].startswith(info.help.rstrip(".")[:30])
        assert f"(core: {info.default}" in f.metadata["help"]
    assert dict(_fields(GanConfig)[field].metadata) == dict(_fields(ClassifyConfig)[field].metadata)


def test_generated_flags_reach_the_class(tmp_path, capsys):
    from robustrep.tasks.cli import main
    from robustrep.tasks.classify.task import build_regularizers
    assert main(["classify", "train", "--reg", "mixup", "--mixup-partner", "flip",
                 "--dry-run"]) == 0
    cfg = ClassifyConfig(**json.loads(capsys.readouterr().out))
    assert cfg.reg_options == {"mixup": {"partner": "flip"}}
    assert build_regularizers(cfg)["input mixing"].partner == "flip"
    assert main(["classify", "train", "--reg", "mixup", "--mixup-partner", "sideways",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "partner" in err and "sideways" in err
    assert not (tmp_path / "run").exists()


def test_options_of_a_method_not_in_reg_are_refused():
    from robustrep.tasks.classify.task import build_regularizers
    from robustrep.tasks.common.config import ConfigError
    cfg = ClassifyConfig(reg="cutmix", reg_options={"mixup": {"partner": "flip"}})
    with pytest.raises(ConfigError, match="mixup, which --reg does not list"):
        build_regularizers(cfg)


LSUN_ACCEPTED = ("accepted: CATEGORY_SPLIT names, comma-separated (CATEGORY: bedroom, bridge, "
                 "church_outdoor, classroom, conference_room, dining_room, kitchen, living_room, "
                 "restaurant, tower; SPLIT: train, val, test; e.g. church_outdoor_train), or one "
                 "SPLIT alone (that split of every category); LSUN's object categories (cat, "
                 "car, ...: one <object>_lmdb each, no split) are read as images exported to a "
                 "folder (python data.py export cat_lmdb --out_dir DIR, github.com/fyu/lsun), an "
                 "imagefolder (--dataset imagefolder --data-root DIR)")


@pytest.mark.parametrize("program", ["gan", "classify"])
@pytest.mark.parametrize("classes, error", [
    ("church_train", f"--lsun-classes: 'church_train' is no LSUN database; {LSUN_ACCEPTED}"),
    ("bedroom_train,train", f"--lsun-classes: 'train' is no LSUN database; {LSUN_ACCEPTED}"),
    ("bedroom_train,tower_val,bedroom_train", "lsun classes name bedroom_train twice; its "
                                              "images would be read twice, under two labels"),
])
def test_lsun_classes_are_checked_with_the_options(program, classes, error, tmp_path, capsys):
    """Was: checked by torchvision's reader once the data was built ("Unknown value 'church'
    for LSUN class", naming no option); now refused with the options, before the data root
    (here missing) is looked at or a run folder made, in --config files too."""
    from robustrep.tasks.cli import main
    flags = ["--dataset", "lsun", "--data-root", str(tmp_path / "nowhere"), "--quiet"]
    assert main([program, "train", *flags, "--lsun-classes", classes,
                 "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"robustrep {program} train: error: {error}\n"
    (tmp_path / "c.json").write_text(json.dumps({"lsun_classes": classes}))
    assert main([program, "train", *flags, "--config", str(tmp_path / "c.json"), "--dry-run"]) == 2
    assert error in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]
    for valid in ("church_outdoor_train,bedroom_val", " test "):
        assert main([program, "train", *flags, "--lsun-classes", valid, "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["lsun_classes"] == valid
