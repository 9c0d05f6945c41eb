"""tasks/common/regularizers.py: config fields and generated ``--NAME-OPTION`` flags from the
registry, options gathered per method, objects built by place, each failure one ConfigError."""

import argparse
import dataclasses
import types

import pytest

from robustrep import registry
from robustrep.registry import register_regularizer, regularizer_info
from robustrep.tasks.common.config import (POSITIVE, REG_OPTION_DEST, ConfigError, option,
                                           overrides_from_args)
from robustrep.tasks.common.regularizers import (Fixed, PerMethod, add_regularizer_args,
                                                 build_places, discriminator_of, options_for,
                                                 reg_option)


def _parser(fields=None, program="classify"):
    p = argparse.ArgumentParser()
    add_regularizer_args(p, program, fields or {})
    return p


def _action(parser, flag):
    return parser._option_string_actions[flag]


def test_fixed_holds_its_value():
    assert Fixed("mse").value == "mse"


def test_reg_option_defaults_to_none_with_the_class_help_and_default():
    field = reg_option("adaptivemix", "alpha", min=0, min_exclusive=True)
    help_ = regularizer_info("adaptivemix").options["alpha"].help
    assert field.default is None
    assert field.metadata["help"] == f"{help_.rstrip('.')} (core: 1.0)"
    assert (field.metadata["min"], field.metadata["min_exclusive"]) == (0, True)
    assert reg_option("mixup", "partner", ("permutation", "flip")).metadata["choices"] == (
        "permutation", "flip")


def test_reg_option_help_rounds_floats_and_falls_back_to_the_option_name(probe):
    from robustrep.tasks.common.regularizers import fmt_value
    assert fmt_value(8 / 255) == "0.031373"
    assert reg_option("asgan", "eps").metadata["help"].endswith("(core: 0.05)")
    # a None default whose help says what it stands for is not repeated as "(core: None)"
    assert reg_option("free", "eps").metadata["help"] == (
        "radius of the perturbation ball (None: 8/255 for Linf, 0.5 for L2)")
    assert reg_option("test-probe", "steps").metadata["help"] == "how many (core: 3)"
    registry._REGISTRY["test-probe"] = registry.RegularizerInfo(
        "test-probe", probe.__module__, probe.__qualname__, "p", {"classify": "feature shrinkage"},
        options={"fuse_passes": registry.OptionInfo(False, "bool", "")})
    assert reg_option("test-probe", "fuse_passes").metadata["help"] == "fuse passes (core: False)"


def test_generated_flags_take_the_class_signature(probe):
    p = _parser()
    weight = _action(p, "--test-probe-weight")
    assert weight.dest == f"{REG_OPTION_DEST}test-probe__weight" == "regopt__test-probe__weight"
    assert (weight.default, weight.metavar) == (None, "FLOAT")
    assert weight.help == "factor on the term (core: 0.123457)"
    assert _action(p, "--test-probe-steps").metavar == "INT"
    assert _action(p, "--test-probe-mode").metavar == "STR"
    on = _action(p, "--test-probe-on")
    assert (on.metavar, on.nargs, on.const) == ("BOOL", "?", True)
    assert on.help == "a switch (core: False)"
    assert _action(p, "--test-probe-fuse-passes").help == "fuse_passes (core: False)"
    args = p.parse_args(["--test-probe-weight", "0.5", "--test-probe-steps", "4",
                         "--test-probe-on", "--test-probe-mode", "b", "--test-probe-cap", "2"])
    got = {k: v for k, v in vars(args).items() if k.startswith("regopt__test-probe__")}
    assert got == {"regopt__test-probe__weight": 0.5, "regopt__test-probe__steps": 4,
                   "regopt__test-probe__on": True, "regopt__test-probe__mode": "b",
                   "regopt__test-probe__cap": 2.0, "regopt__test-probe__fuse_passes": None}
    assert type(got["regopt__test-probe__steps"]) is int
    assert p.parse_args(["--test-probe-on", "false"]).__dict__["regopt__test-probe__on"] is False
    with pytest.raises(SystemExit):
        p.parse_args(["--test-probe-steps", "2.5"])
    group = next(g for g in p._action_groups if weight in g._group_actions)
    assert group.title == (f"--reg test-probe: further options "
                           f"({probe.__module__}.{probe.__qualname__})")
    assert all(a.dest.startswith("regopt__test-probe__") for a in group._group_actions)


def test_no_flag_for_mapped_options_non_scalars_existing_flags_or_discriminators(probe):
    p = _parser({"test-probe": {"weight": "probe_weight", "mode": Fixed("a")}})
    assert "--test-probe-weight" not in p._option_string_actions  # a config field feeds it
    assert "--test-probe-mode" not in p._option_string_actions
    assert "--test-probe-steps" in p._option_string_actions
    assert "--test-probe-span" not in p._option_string_actions  # tuple: no scalar flag
    assert "--test-probe-note" not in p._option_string_actions  # no annotation
    q = argparse.ArgumentParser()
    q.add_argument("--test-probe-steps", default="mine")
    add_regularizer_args(q, "classify", {})
    assert q.parse_args([]).test_probe_steps == "mine"  # an existing flag is kept
    # ... and the method's section says where its option goes instead
    notes = [g.description for g in q._action_groups if g.title.startswith("--reg test-probe")]
    assert notes == ["--test-probe-steps is the program's own option, so test-probe's 'steps' "
                     "has no flag: set it in a --config file as reg_options: "
                     "{test-probe: {steps: VALUE}}; test-probe's 'note' has no flag (no "
                     "annotation, and its default None names no kind): annotate it (e.g. note: "
                     "float | None = None) or set it in a --config file as reg_options: "
                     "{test-probe: {note: VALUE}}"]
    gan = _parser(program="gan")
    assert "--rpgan-impl" not in gan._option_string_actions  # a discriminator: its own options
    assert "--dat-t" in gan._option_string_actions and "--pgd-eps" not in gan._option_string_actions
    assert "--ssgan-d-scale" in gan._option_string_actions  # the methods after rpgan too


def test_a_method_whose_options_are_all_mapped_gets_no_section(probe):
    every = {opt: f"f_{opt}" for opt in regularizer_info("test-probe").options}
    p = _parser({"test-probe": every})
    assert not any("test-probe" in (g.title or "") for g in p._action_groups)


def test_generated_flags_reach_reg_options():
    @dataclasses.dataclass
    class Cfg:
        reg_options: dict | None = None
    p = _parser()
    args = p.parse_args(["--mixup-partner", "flip", "--pgd-steps", "3"])
    assert overrides_from_args(Cfg, args) == {
        "reg_options": {"mixup": {"partner": "flip"}, "pgd": {"steps": 3}}}


def _cfg(**kw):
    return types.SimpleNamespace(**kw)


def test_options_for_gathers_fields_fixed_values_context_and_reg_options(probe):
    fields = {"test-probe": {"weight": "w", "mode": Fixed("b")}}
    cfg = _cfg(w=0.5, reg_options={"test-probe": {"steps": 9}})
    context = {"fuse_passes": True, "unrelated": 1}
    assert options_for(cfg, "test-probe", fields, context) == {
        "weight": 0.5, "mode": "b", "steps": 9, "fuse_passes": True}
    # reg_options is for the options no flag sets: a flag's option there overrode the flag
    # silently and skipped its range check; a program's fixed value too
    with pytest.raises(ConfigError, match=r"'weight' is set by its own option w \(--w\)"):
        options_for(_cfg(w=0.5, reg_options={"test-probe": {"weight": 9.0}}), "test-probe",
                    fields)
    with pytest.raises(ConfigError, match=r"'mode' is fixed to 'b' in this program"):
        options_for(_cfg(w=0.5, reg_options={"test-probe": {"mode": "c"}}), "test-probe", fields)
    assert options_for(_cfg(w=None), "test-probe", fields) == {"weight": None, "mode": "b"}
    # a context value never overrides what the program maps
    assert options_for(_cfg(w=0.5), "test-probe", {"test-probe": {"fuse_passes": Fixed(False)}},
                       {"fuse_passes": True}) == {"fuse_passes": False}
    assert options_for(_cfg(), "test-probe", {}) == {}
    assert options_for(_cfg(reg_options=None), "mixup", {}) == {}


def test_reg_options_values_are_read_as_their_flags_read_them(probe):
    """A config file's or --reg-options' value goes through the flag's conversion: "false" is
    False for a bool (a non-empty string is truthy), "4" an int, text for a float refused."""
    given = {"on": "false", "steps": "4", "cap": None, "mode": "b", "span": [0.5, 1.0]}
    assert options_for(_cfg(reg_options={"test-probe": given}), "test-probe", {}) == {
        "on": False, "steps": 4, "cap": None, "mode": "b", "span": [0.5, 1.0]}
    with pytest.raises(ConfigError, match=r"^reg_options: test-probe's 'weight' must be a "
                                          r"finite number; got 'abc'$"):
        options_for(_cfg(reg_options={"test-probe": {"weight": "abc"}}), "test-probe", {})
    with pytest.raises(ConfigError, match=r"^reg_options: test-probe's 'steps' must be an "):
        options_for(_cfg(reg_options={"test-probe": {"steps": 2.5}}), "test-probe", {})


def test_a_plugin_constructor_failing_any_way_is_one_line():
    @register_regularizer("test-boom", paper="nobody", acts={"classify": "feature shrinkage"})
    class Boom:
        def __init__(self):
            raise RuntimeError("boom in init")

        def feature_terms(self, model, x, generator=None):
            return {}
    try:
        with pytest.raises(ConfigError) as err:
            build_places(_cfg(reg_options=None), "classify", ["test-boom"], {})
        assert str(err.value) == (f"--reg test-boom: {Boom.__module__}.{Boom.__qualname__}() "
                                  "raised RuntimeError: boom in init")
        assert isinstance(err.value.__cause__, RuntimeError)  # --debug prints its traceback
    finally:
        registry._REGISTRY.pop("test-boom")
        registry._LIVE.pop("test-boom")


def test_build_places_builds_by_place_in_order_and_skips_discriminators(probe):
    cfg = _cfg(w=0.5, reg_options={"test-probe": {"steps": 2}})
    places = build_places(cfg, "classify", ["mixup", "cutmix", "test-probe"],
                          {"test-probe": {"weight": "w"}})
    assert list(places) == ["input mixing", "feature shrinkage"]
    assert [n for n, _ in places["input mixing"]] == ["mixup", "cutmix"]
    (name, obj), = places["feature shrinkage"]
    assert name == "test-probe" and isinstance(obj, probe)
    assert (obj.kwargs["weight"], obj.kwargs["steps"], obj.kwargs["mode"]) == (0.5, 2, "a")
    ctx = build_places(cfg, "classify", ["test-probe"], {}, {"fuse_passes": True})
    assert ctx["feature shrinkage"][0][1].kwargs["fuse_passes"] is True  # a derived value
    gan = build_places(_cfg(), "gan", ["rpgan", "dat"], {})
    assert list(gan) == ["D inputs"]  # rpgan is the program's D, built elsewhere
    rp = build_places(_cfg(reg_options={"rpgan": {"num_views": 2, "image_size": 16}}), "gan",
                      ["rpgan"], {}, skip_kind="none")
    assert [n for n, _ in rp["D function"]] == ["rpgan"]


def test_build_places_failures_are_one_config_error_line(probe):
    with pytest.raises(ConfigError, match=r"^--reg: regularizer 'pgd' does not act in gan$"):
        build_places(_cfg(), "gan", ["pgd"], {})
    with pytest.raises(ConfigError, match=r"^--reg test-probe: weight must be >= 0, got -1$"):
        build_places(_cfg(w=-1), "classify", ["test-probe"], {"test-probe": {"weight": "w"}})
    with pytest.raises(ConfigError, match=r"^--reg test-probe: regularizer 'test-probe' takes no "
                                          r"option\(s\) bogus"):
        build_places(_cfg(reg_options={"test-probe": {"bogus": 1}}), "classify",
                     ["test-probe"], {})
    with pytest.raises(ConfigError, match=r"^reg_options \(--cutmix-\.\.\.\) set options of "
                                          r"cutmix, mixup, which --reg does not list "
                                          r"\(it lists: test-probe, pgd\)$"):
        build_places(_cfg(reg_options={"mixup": {}, "cutmix": {}}), "classify",
                     ["test-probe", "pgd"], {})
    with pytest.raises(ConfigError, match=r"\(it lists: none\)$"):
        build_places(_cfg(reg_options={"mixup": {}}), "classify", [], {})


def test_discriminator_of_names_the_registered_discriminator():
    assert discriminator_of(["dat", "rpgan"]) == "rpgan"
    assert discriminator_of(["dat", "asgan"]) is None
    assert discriminator_of([]) is None


@pytest.mark.parametrize("annotation, want", [
    ("float | None", (float, True)), ("None|int", (int, True)), ("bool", (bool, False)),
    ("str", (str, False)), ("float | int", (None, False)),
    ("tuple[float, float] | None", (None, True)), ("", (None, False)),
    ("Optional[float]", (float, True)), ("typing.Optional[int]", (int, True)),
    ("Optional[tuple[int, int]]", (None, True)),
])
def test_a_flag_holds_one_scalar_maybe_none(annotation, want):
    from robustrep.tasks.common.regularizers import scalar_kind
    assert scalar_kind(annotation) == (*want, None)


@pytest.mark.parametrize("annotation, choices", [
    ('Literal["linf", "l2"]', ("linf", "l2")), ("typing.Literal['a']", ("a",)),
    ("Literal[1, 2]", None), ("Literal[oops", None)])
def test_a_literal_annotation_gives_the_flag_its_choices(annotation, choices):
    from robustrep.tasks.common.regularizers import scalar_kind
    assert scalar_kind(annotation)[2] == choices


def test_defaults_in_help_are_rounded_floats_or_as_written():
    from robustrep.tasks.common.regularizers import fmt_value
    assert (fmt_value(8 / 255), fmt_value(2), fmt_value(None),
            fmt_value((0.0, 1.0))) == (
        "0.031373", "2", "None", "(0.0, 1.0)")


@dataclasses.dataclass
class _Shared:
    """A program's config with one field its methods share (PerMethod), checked > 0."""
    w: float | None = option(None, "the shared weight", **POSITIVE)
    reg_options: dict | None = None


def _shared_parser(fields):
    from robustrep.tasks.common.config_flags import add_config_args
    p = argparse.ArgumentParser()
    add_config_args(p, _Shared)
    add_regularizer_args(p, "classify", fields)
    return p


def test_a_per_method_option_gets_a_flag_checked_as_the_shared_field(probe):
    """A PerMethod field's option (mix_alpha's: --cutmix-alpha) has a flag of its own, which
    the shared field's range checks and whose help names what it overrides."""
    p = _shared_parser({"test-probe": {"weight": PerMethod("w"), "steps": "w"}})
    own = _action(p, "--test-probe-weight")
    assert own.type is _action(p, "--w").type
    assert own.help.startswith("test-probe's own weight: overrides --w for test-probe alone")
    assert "--test-probe-steps" not in p._option_string_actions  # a plain field: no flag
    args = p.parse_args(["--w", "0.5", "--test-probe-weight", "2"])
    assert overrides_from_args(_Shared, args) == {"w": 0.5,
                                                  "reg_options": {"test-probe": {"weight": 2.0}}}
    with pytest.raises(SystemExit):  # the class's annotation (float) alone took 0
        p.parse_args(["--test-probe-weight", "0"])


def test_a_per_method_value_wins_for_its_method_checked_by_the_field(probe):
    fields = {"test-probe": {"weight": PerMethod("w")}}
    assert options_for(_Shared(w=0.5), "test-probe", fields) == {"weight": 0.5}
    own = _Shared(w=0.5, reg_options={"test-probe": {"weight": "2"}})
    assert options_for(own, "test-probe", fields) == {"weight": 2.0}  # converted as the flag
    # None is no value of its own: the shared field's stands
    none = _Shared(w=0.5, reg_options={"test-probe": {"weight": None}})
    assert options_for(none, "test-probe", fields) == {"weight": 0.5}
    # was: "is set by its own option w (--w)"; now the field's range, naming the flag
    with pytest.raises(ConfigError, match=r"^reg_options: test-probe's 'weight' "
                                          r"\(--test-probe-weight\) must be a finite number > "
                                          r"0; got 0$"):
        options_for(_Shared(reg_options={"test-probe": {"weight": 0}}), "test-probe", fields)


def test_a_shared_field_every_listed_method_overrides_is_unused():
    from robustrep.tasks.common.regularizers import unused_options as unused
    fields = {n: {"alpha": PerMethod("mix_alpha")} for n in ("mixup", "cutmix", "srmix")}
    both = {"mixup": {"alpha": 0.8}, "cutmix": {"alpha": 1.0}}
    values = {"reg": "mixup,cutmix", "mix_alpha": 0.5, "reg_options": both}
    assert unused(values, {}, ["mixup", "cutmix"], fields) == {
        "a method in --reg without its own value (reg is 'mixup,cutmix', whose --mixup-alpha, "
        "--cutmix-alpha override it)": ["mix_alpha"]}
    # one listed method without its own: the shared value acts on it
    assert unused({**values, "reg_options": {"cutmix": {"alpha": 1.0}}}, {},
                  ["mixup", "cutmix"], fields) == {}
    assert unused({**values, "reg_options": None}, {}, ["mixup", "cutmix"], fields) == {}
    assert unused({**values, "reg": "none"}, {}, [], fields) == {
        "--reg mixup or cutmix or srmix (reg is 'none')": ["mix_alpha"]}
