"""tasks/gan/models.py: the config's options reach the networks of every --arch."""

import dataclasses

import pytest
from torch import nn

from robustrep.nets import list_networks
from robustrep.tasks.gan.config import ARCHS, GanConfig
from robustrep.tasks.gan.models import D_FIELDS, G_FIELDS, build_discriminator, build_generator


def test_archs_are_the_registered_families():
    assert sorted(ARCHS) == list_networks("generator") == list_networks("discriminator")


def test_mapped_fields_are_config_fields():
    fields = {f.name for f in dataclasses.fields(GanConfig)}
    for mapping in (G_FIELDS, D_FIELDS):
        assert {v for v in mapping.values() if isinstance(v, str)} <= fields


def _count(module, kind):
    return sum(isinstance(m, kind) for m in module.modules())


def test_widths_and_depth_reach_the_networks(tiny_cfg):
    cfg = tiny_cfg(g_width=4, d_width=6)
    assert build_generator(cfg, (1, 16, 16)).blocks[-2].in_channels == 4
    assert build_discriminator(cfg, (1, 16, 16)).trunk[0].out_channels == 6
    grid = tiny_cfg("grid-mlp", g_width=5, d_width=7, mlp_depth=4)
    assert _count(build_generator(grid, (2,)), nn.Linear) == 5
    d = build_discriminator(grid, (2,))
    assert _count(d, nn.Linear) == 5 and d.trunk[0].out_features == 7


@pytest.mark.parametrize("options, batchnorm", [
    ({}, True), ({"spectral_norm": True}, False),
    ({"loss": "wasserstein"}, False)])
def test_dcgan_d_drops_batchnorm_with_sn_or_a_critic(options, batchnorm, tiny_cfg):
    d = build_discriminator(tiny_cfg(**options), (1, 16, 16))
    assert (_count(d, nn.BatchNorm2d) > 0) == batchnorm


def test_stylegan2_options_reach_g_and_d(tiny_cfg):
    cfg = tiny_cfg("digits-stylegan2", w_dim=8, mapping_layers=1, channel_base=64,
                   channel_max=8, d_arch="skip", mbstd_group=2)
    G = build_generator(cfg, (1, 16, 16))
    assert G.w_dim == 8 and len(G.mapping.layers) == 1
    D = build_discriminator(cfg, (1, 16, 16))
    assert D.trunk.fromrgb is not None  # the skip D's 4x4 FromRGB
    assert D.epilogue.mbstd.group_size == 2
