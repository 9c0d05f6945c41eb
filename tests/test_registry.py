import inspect

import pytest
import torch

import robustrep
from robustrep import registry
from robustrep.adaptivemix import AdaptiveMix
from robustrep.adversarial import ASGAN, DAT, asgan_perturb, dat_perturb
from robustrep.registry import (create_regularizer, list_regularizers, parse_combination,
                                register_regularizer, regularizer_info)

REQUIRED = {"rpgan": dict(num_views=2, image_size=16)}


@pytest.mark.parametrize("name", list_regularizers())
def test_every_registered_regularizer_builds_with_its_class_defaults(name):
    info = regularizer_info(name)
    reg = create_regularizer(name, **REQUIRED.get(name, {}))
    assert isinstance(reg, info.cls)
    assert info.paper and info.acts
    assert set(info.acts) <= {"gan", "classify"}


def test_the_expected_methods_act_where_the_papers_put_them():
    assert list_regularizers("gan") == ["adaptivemix", "asgan", "cutmix", "dat", "infomax",
                                        "mixup", "rpgan", "srmix", "ssgan"]
    assert list_regularizers("classify") == ["adaptivemix", "cutmix", "fgsm", "free", "mixup",
                                             "pgd", "srmix"]
    assert regularizer_info("dat").acts == {"gan": "D inputs"}
    assert regularizer_info("ssgan").acts == {"gan": "D auxiliary task"}
    assert regularizer_info("adaptivemix").cls is AdaptiveMix


def test_none_kwargs_keep_the_class_default_and_unknown_ones_are_refused():
    assert create_regularizer("adaptivemix", alpha=None, noise_std=0.1).alpha == 1.0
    assert create_regularizer("adaptivemix", alpha=0.5).alpha == 0.5
    with pytest.raises(TypeError, match="takes no option"):
        create_regularizer("dat", alpha=1.0)
    with pytest.raises(ValueError, match="unknown regularizer 'nope'"):
        create_regularizer("nope")


def test_defaults_are_read_from_the_functions_they_wrap():
    # DAT/ASGAN state their defaults in the class; they must equal the wrapped functions' own.
    for cls, fn in ((DAT, dat_perturb), (ASGAN, asgan_perturb)):
        fn_defaults = inspect.signature(fn).parameters
        for name, value in regularizer_info(cls.__name__.lower()).kwargs.items():
            if name in ("mode", "free"):  # the GAN program's use of the inputs, not the attack's
                continue
            assert fn_defaults[name].default == value, (cls, name)


def test_thin_classes_forward_to_the_functions():
    d = torch.nn.Linear(4, 1)
    x_r, x_f = torch.rand(6, 4) * 2 - 1, torch.rand(6, 4) * 2 - 1
    got = create_regularizer("dat", t=0.5)(d, x_r, x_f)
    want = dat_perturb(d, x_r, x_f, t=0.5)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert torch.equal(create_regularizer("asgan", eps=0.1)(d, x_r), asgan_perturb(d, x_r, eps=0.1))


@pytest.mark.parametrize("text, program, want", [
    ("none", "gan", ()), ("", "classify", ()), (None, "gan", ()),
    ("adaptivemix,asgan", "gan", ("adaptivemix", "asgan")),
    ("rpgan, dat, srmix", "gan", ("rpgan", "dat", "srmix")),
    ("mixup+cutmix", "classify", ("mixup", "cutmix")),
    ("MIXUP,pgd", "classify", ("mixup", "pgd")),
])
def test_one_grammar_accepts(text, program, want):
    assert parse_combination(text, program) == want


@pytest.mark.parametrize("text, program, match", [
    ("dat,asgan", "gan", r"same place \(D inputs\); take at most one of asgan, dat"),
    ("adaptivemix,rpgan", "gan", r"same place \(D function\)"),
    ("mixup,cutmix", "gan", r"same place \(extra D term\)"),
    ("pgd,fgsm", "classify", r"same place \(adversarial inputs\)"),
    ("adaptivemix,cutmix", "classify", "adaptivemix cannot be combined with cutmix"),
    ("pgd", "gan", "unknown regularizer 'pgd' for gan; valid: none, adaptivemix"),
    ("dat,dat", "gan", "name a method twice"),
])
def test_one_grammar_refuses(text, program, match):
    with pytest.raises(ValueError, match=match):
        parse_combination(text, program)


def test_registering_twice_raises_and_one_file_plus_a_decorator_adds_a_method():
    @register_regularizer("test-shrink", paper="nobody 2026",
                          acts={"classify": "feature shrinkage"})
    class Shrink:
        def __init__(self, weight: float = 2.0):
            self.weight = weight
    try:
        assert create_regularizer("test-shrink").weight == 2.0
        assert "test-shrink" in list_regularizers("classify")
        with pytest.raises(ValueError, match="already registered"):
            register_regularizer("test-shrink", paper="x", acts={})(type("Other", (), {}))
        with pytest.raises(ValueError, match="cannot be combined|same place"):
            parse_combination("adaptivemix,test-shrink", "classify")
    finally:  # both tables, so that running the test again in one process registers anew
        registry._REGISTRY.pop("test-shrink")
        registry._LIVE.pop("test-shrink")


def test_public_api_reaches_the_registry():
    assert robustrep.create_regularizer is create_regularizer
    assert robustrep.AdaptiveMix is AdaptiveMix


def test_metadata_read_from_the_source_equals_the_live_registry():
    # The command line lists methods, places and options without importing them (ast); what it
    # reads must be what the decorators register when the modules are imported.
    import importlib

    from robustrep import registry
    static = {info.name: info for module in registry._MODULES
              for info in registry._read_module(module)}
    for module in registry._MODULES:
        importlib.import_module(module)
    assert sorted(static) == list_regularizers()
    for name, info in static.items():
        live = registry._REGISTRY[name]
        assert live.cls is registry._LIVE[name]
        assert info == live, name
    assert static["free"].options["eps"].default == 8 / 255
    assert static["mixup"].options["smoothing"].help.startswith("SRMix edge ramp")
    assert static["rpgan"].kind == "discriminator"


@pytest.mark.slow  # a fresh interpreter: this process has imported torch already
def test_builtin_metadata_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys; from robustrep.registry import list_regularizers, regularizer_info; "
            "list_regularizers(); regularizer_info('adaptivemix').options; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
