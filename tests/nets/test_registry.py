"""robustrep.nets: the GAN network registry (every family builds and runs; names refused in one
line; None options keep the network's default)."""

import pytest
import torch

from robustrep.nets import (ROLES, create_discriminator, create_generator, list_networks,
                            network_options, register_network)

# per family: one sample's shape, tiny generator options, tiny discriminator options
TINY = {
    "dcgan": ((1, 16, 16), dict(width=4), dict(width=4)),
    "sngan": ((1, 32, 32), dict(width=4), dict(width=4)),
    "mlp": ((2,), dict(width=8, depth=2), dict(width=8, depth=2)),
    "stylegan2": ((1, 16, 16), dict(w_dim=8, mapping_layers=1, channel_base=64, channel_max=8),
                  dict(channel_base=64, channel_max=8, mbstd_group=2)),
}


@pytest.mark.parametrize("role", ROLES)
def test_every_family_is_listed_here(role):
    assert list_networks(role) == sorted(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_family_builds_and_runs(name):
    shape, g_opts, d_opts = TINY[name]
    torch.manual_seed(0)
    G = create_generator(name, 6, shape, **g_opts)
    D = create_discriminator(name, shape, **d_opts).eval()
    assert G.z_dim == 6
    x = G(torch.randn(4, 6))
    assert x.shape == (4, *shape) and torch.isfinite(x).all()
    logits = D(x)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    assert torch.allclose(D.head(D.features(x)), logits)  # the features/head split is D


@pytest.mark.parametrize("role", ROLES)
def test_unknown_name_is_one_line_listing_the_names(role):
    create = create_generator if role == "generator" else create_discriminator
    args = (8, (3, 32, 32)) if role == "generator" else ((3, 32, 32),)
    with pytest.raises(ValueError) as err:
        create("biggan", *args)
    assert str(err.value) == f"unknown {role} 'biggan'; registered: dcgan, mlp, sngan, stylegan2"


def test_none_options_keep_the_network_default():
    G = create_generator("dcgan", 8, (3, 16, 16), width=None)
    assert G.blocks[-2].in_channels == 64  # DCGANGenerator's default width
    assert create_generator("dcgan", 8, (3, 16, 16), width=4).blocks[-2].in_channels == 4


def test_options_are_the_factory_parameters():
    assert network_options("mlp", "discriminator") == ("width", "depth", "spectral_norm")
    assert "num_fp16_res" in network_options("stylegan2", "generator")


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"power of 2 >= 8, got 24"):
        create_generator("dcgan", 8, (3, 24, 24))
    with pytest.raises(ValueError, match="32x32 SNGAN-ResNet"):
        create_discriminator("sngan", (3, 64, 64))
    with pytest.raises(ValueError, match="needs one sample's shape with 1"):
        create_generator("mlp", 8, (3, 32, 32))


def test_registration_refuses_a_second_factory_and_bad_names():
    with pytest.raises(ValueError, match="generator 'dcgan' is already registered"):
        register_network("dcgan", "generator")(lambda z_dim, shape: None)
    with pytest.raises(ValueError, match="role must be one of generator, discriminator"):
        register_network("toy", "critic")
    with pytest.raises(ValueError, match="lower-case"):
        register_network("Toy", "generator")


@pytest.mark.parametrize("name, local_end", [("dcgan", 5), ("sngan", 3)])
def test_local_end_cuts_the_trunk_above_4x4(name, local_end):
    """InfoMax-GAN's local features end at the last map above 4x4: 8x8 for 32x32 images."""
    d = create_discriminator(name, (1, 32, 32), width=4)
    assert d.local_end == local_end
    local = d.trunk[:d.local_end](torch.randn(2, 1, 32, 32))
    assert local.shape[-1] == 8


def test_discriminator_options_reach_the_network_and_none_keeps_its_default():
    narrow = create_discriminator("dcgan", (1, 16, 16), width=4, spectral_norm=None)
    wide = create_discriminator("dcgan", (1, 16, 16))
    assert narrow.trunk[0].out_channels == 4 and wide.trunk[0].out_channels == 64


def test_list_networks_defaults_to_generators_and_options_leave_out_z_dim_and_shape():
    assert list_networks() == list_networks("generator")
    assert network_options("mlp", "generator") == ("width", "depth")
    assert network_options("dcgan", "discriminator")[0] == "width"


def test_listing_imports_nothing_and_the_first_build_imports_the_modules_once(monkeypatch):
    import importlib

    import robustrep.nets as nets
    calls = []
    monkeypatch.setattr(nets, "_loaded", False)
    monkeypatch.setattr(nets, "_declared", None)  # the names are read from the source again
    monkeypatch.setattr(nets, "_REGISTRY", {role: {} for role in ROLES})
    monkeypatch.setattr(importlib, "import_module", calls.append)
    assert list_networks("discriminator") == list_networks("generator") == sorted(TINY)
    assert calls == []  # read from the decorators, so --help lists them without torch
    with pytest.raises(ValueError):  # import_module is stubbed: nothing registers
        create_generator("dcgan", 8, (3, 16, 16))
    with pytest.raises(ValueError):
        create_generator("dcgan", 8, (3, 16, 16))
    assert calls == list(nets._MODULES)  # once


def test_the_names_read_from_the_source_are_the_live_registry():
    import robustrep.nets as nets
    nets._ensure_loaded()
    for role in ROLES:
        live = {n for n, fn in nets._REGISTRY[role].items() if fn.__module__ in nets._MODULES}
        assert nets.builtin_networks(role) == sorted(live) == sorted(TINY)


@pytest.mark.parametrize("role", ROLES)
def test_the_options_read_from_the_source_are_the_live_ones(role):
    """A family not imported yet (an installed package's) lists its options from its source,
    so --help imports nothing; they equal what the imported factory's signature says."""
    from robustrep.nets import network_option_info
    from robustrep.registry import callable_options
    import robustrep.nets as nets
    nets._ensure_loaded()
    for name in sorted(TINY):
        live = {k: v for k, v in callable_options(nets._REGISTRY[role][name]).items()
                if k not in ("z_dim", "shape")}
        static = {k: v for k, v in nets._declared_families()[(role, name)][1].items()
                  if k not in ("z_dim", "shape")}
        assert static == live, name
        assert network_option_info(name, role) == live


def test_a_plugin_cannot_take_a_built_in_name_before_the_built_ins_load(monkeypatch):
    import robustrep.nets as nets
    monkeypatch.setattr(nets, "_REGISTRY", {role: {} for role in ROLES})

    def mine(z_dim, shape):
        return None
    with pytest.raises(ValueError, match="'sngan' is already registered.*robustrep.nets.sngan"):
        register_network("sngan", "generator")(mine)


def test_a_new_family_registers_builds_and_may_be_registered_again_by_the_same_factory():
    import robustrep.nets as nets

    def toy(z_dim, shape, scale: float = 2.0):
        return ("toy", z_dim, shape, scale)
    try:
        assert register_network("test-toy", "generator")(toy) is toy
        assert register_network("test-toy", "generator")(toy) is toy  # an import run twice
        assert create_generator("test-toy", 3, [2], scale=None) == ("toy", 3, (2,), 2.0)
        assert network_options("test-toy", "generator") == ("scale",)
    finally:
        nets._REGISTRY["generator"].pop("test-toy", None)


def test_a_misspelt_network_option_lists_the_family_s_options():
    with pytest.raises(TypeError, match=r"^generator 'dcgan' takes no option\(s\) widht; "
                                        r"options: width$"):
        create_generator("dcgan", 6, (1, 16, 16), widht=4)
    with pytest.raises(TypeError, match=r"^discriminator 'mlp' takes no option\(s\) dpth; "
                                        r"options: .*depth"):
        create_discriminator("mlp", (2,), dpth=2)
    assert create_generator("dcgan", 6, (1, 16, 16), width=4, widht=None).z_dim == 6


@pytest.mark.parametrize("z_dim", [0, -1, 2.0, True])
def test_a_z_dim_that_is_not_a_positive_int_is_refused(z_dim):
    # z_dim 0 built a G whose output is one constant image
    with pytest.raises(ValueError, match=r"^z_dim must be a positive int, got "):
        create_generator("dcgan", z_dim, (1, 16, 16), width=4)


def test_the_lookups_name_an_unknown_role():
    # Was a bare KeyError 'gen' from list_networks and network_options, and an empty list from
    # builtin_networks (as if no family existed).
    from robustrep.nets import builtin_networks, network_option_info
    for call in (lambda: list_networks("gen"), lambda: builtin_networks("gen"),
                 lambda: network_options("dcgan", "gen"),
                 lambda: network_option_info("dcgan", "gen")):
        with pytest.raises(ValueError, match="^role must be one of generator, discriminator; "
                                             "got 'gen'$"):
            call()


@pytest.mark.parametrize("name", ["dcgan", "stylegan2"])
def test_square_families_refuse_shapes_they_would_not_make(name):
    # Both were built from the last size alone: (1, 16, 32) gave a G of 32x32 samples, (16, 16)
    # a 16-channel StyleGAN2, (0, 16, 16) a G of no channels.
    _, g_opts, d_opts = TINY[name]
    for shape, why in [((1, 16, 32), r"takes square images, shape \(C, S, S\); got \(1, 16, 32\)"),
                       ((16, 16), r"needs one sample's shape with 3 positive size\(s\)"),
                       ((0, 16, 16), r"needs one sample's shape with 3 positive size\(s\)")]:
        with pytest.raises(ValueError, match=why):
            create_generator(name, 6, shape, **g_opts)
        with pytest.raises(ValueError, match=why):
            create_discriminator(name, shape, **d_opts)


def test_dcgan_d_gives_one_logit_per_sample_or_refuses_the_images():
    # A D for 16x16 on 32x32 images gave a 5x5 map of logits per sample, flattened into 50
    # "logits" for a batch of 2 that every loss averaged without a word.
    d = create_discriminator("dcgan", (1, 16, 16), width=4)
    assert d(torch.rand(2, 1, 16, 16)).shape == (2,)
    with pytest.raises(ValueError, match=r"^dcgan_discriminator takes images \[B, C, 16, 16\] "
                                         r"\(the shape it was built for\); its head gave logits "
                                         r"of shape \(2, 1, 5, 5\), not one per sample$"):
        d(torch.rand(2, 1, 32, 32))
