"""``--aa``, ``--reprob`` and ``--remode``: timm's augmentation baselines really transform the
training batch."""

import json
import random

import numpy as np
import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.classify import train as train_mod
from robustrep.tasks.classify.config import saved_config
from robustrep.tasks.classify.policies import BatchPolicies, build_aa, posterize
from robustrep.tasks.classify.train import config_for_resume
from robustrep.tasks.common.config import ConfigError

from .conftest import tiny_config


def _erased(remode, seed=0):
    """A bright batch through --reprob 1 with ``remode``: (the output, the erased pixels)."""
    x = torch.full((6, 3, 16, 16), 0.9)
    out = BatchPolicies(None, 1.0, remode, 16, (0.4, 0.5, 0.6), (0.2, 0.2, 0.2))(
        x, torch.Generator().manual_seed(seed))
    erased = (out - x).abs().amax(1) > 1e-6  # [B, H, W]
    assert erased.flatten(1).any(1).all()  # every image lost a region
    assert (~erased).flatten(1).any(1).all()  # and kept the rest
    return out, erased


def test_reprob_one_erases_a_region_to_the_mean_colour():
    out, erased = _erased("const")
    mean = torch.tensor([0.4, 0.5, 0.6]).view(3, 1)
    fill = out.permute(1, 0, 2, 3)[:, erased]
    torch.testing.assert_close(fill, mean.expand(3, int(erased.sum())))
    untouched = BatchPolicies(None, 0.0, None, 16, (0.5,) * 3, (0.2,) * 3).eraser
    assert untouched is None


@pytest.mark.parametrize("remode", ["pixel", "rand"])
def test_remode_pixel_and_rand_fill_with_timms_normal_noise(remode):
    out, erased = _erased(remode)
    assert torch.equal(out, _erased(remode)[0])  # the same generator seed, the same noise
    assert not torch.equal(out, _erased(remode, seed=1)[0])
    for img, mask in zip(out, erased):
        fill = img[:, mask]  # [C, erased pixels]
        per_pixel = (fill - fill[:, :1]).abs().amax() > 1e-3
        assert per_pixel == (remode == "pixel")  # rand: one colour per rectangle
        assert (fill - torch.tensor([[0.4], [0.5], [0.6]])).abs().amax() > 1e-3  # not the mean
    # the noise is N(0, 1) after normalisation (std 0.2), as timm's model would see it
    noise = ((out - torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)) / 0.2).permute(1, 0, 2, 3)
    if remode == "pixel":
        assert 0.7 < float(noise[:, erased].std()) < 1.3


def test_remode_defaults_to_timms_train_py_pixel_and_old_runs_read_const(tmp_path, capsys):
    assert tiny_config(reprob=0.25).remode == "pixel"
    assert tiny_config(reprob=0.25, reg="fgsm").remode == "const"  # the attacks take [0, 1]
    assert tiny_config().remode is None
    with pytest.raises(ConfigError, match="--remode pixel fills erased pixels with normal noise"):
        tiny_config(reprob=0.25, reg="pgd", remode="pixel")
    with pytest.raises(ConfigError, match="--remode applies only with --reprob > 0"):
        tiny_config(remode="const")
    assert main(["classify", "train", "--reprob", "0.25", "--remode", "rand", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["remode"] == "rand"
    # a run folder from before --remode erased to the mean colour
    assert saved_config({"reprob": 0.25})["remode"] == "const"
    assert "remode" not in saved_config({"reprob": 0.0})
    assert saved_config({"reprob": 0.25, "remode": "pixel"})["remode"] == "pixel"
    run = tmp_path / "old"
    train_mod.train(tiny_config(reprob=0.5, remode="const"), run, quiet=True)
    saved = json.loads((run / "config.json").read_text())
    del saved["remode"]
    (run / "config.json").write_text(json.dumps(saved))
    assert config_for_resume(run, {"steps": 3}).remode == "const"
    assert main(["classify", "train", "--resume", str(run), "--steps", "3", "--quiet"]) == 0


# Batches whose draws ask timm's posterize for 0 bits (found with timm's posterize put back):
# Pillow 13 raised "bits must be between or equal to 1 and 8" on them, mid-run and on resume.
@pytest.mark.parametrize("aa,seeds", [("rand-m9-mstd0.5-inc1", (89, 96, 137, 182)),
                                      ("v0", (12, 13, 14, 17, 20))])
def test_posterize_at_0_bits_does_not_stop_the_run(aa, seeds):
    from timm.data import auto_augment
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    policies = BatchPolicies(aa, 0.0, None, 8, (0.5,) * 3, (0.25,) * 3)
    for seed in seeds:
        policies(x, torch.Generator().manual_seed(seed))
    assert auto_augment.NAME_TO_OP["Posterize"] is auto_augment.posterize  # timm's, untouched
    fresh = build_aa(aa, 8, (0.5,) * 3)
    assert all(op.aug_fn is not auto_augment.posterize
               for op in getattr(fresh, "ops", None) or sum(fresh.policy, []))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_posterize_gives_what_pillow_before_13_gave(mode):
    from PIL import Image, ImageOps
    pixels = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    img = Image.fromarray(pixels, mode="RGB").convert(mode)
    for bits in (0, -4):  # PosterizeIncreasing with mmax > 10 asks for fewer than 0
        out = posterize(img, bits)
        assert (out.mode, out.size) == (img.mode, img.size)
        assert not np.asarray(out).any()
    for bits in range(1, 9):
        assert posterize(img, bits).tobytes() == ImageOps.posterize(img, bits).tobytes()


@pytest.mark.parametrize("aa", ["rand-m9-mstd0.5", "augmix", "original", "trivialaugment"])
def test_aa_changes_images_and_follows_the_run_generator(aa):
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    policies = BatchPolicies(aa, 0.0, None, 16, (0.5,) * 3, (0.25,) * 3)
    a = policies(x, torch.Generator().manual_seed(2))
    b = policies(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)  # the same generator state, the same batch (exact resume)
    changed = (a - x).abs().flatten(1).amax(1) > 1 / 255
    assert changed.float().mean() >= 0.5


@pytest.mark.parametrize("aa", ["rand-m9-mstd0.5", "augmix", None])
def test_policies_leave_the_global_random_streams_alone(aa):
    """The policies draw from Python's and NumPy's global RNGs seeded per batch; the caller's
    streams continue afterwards exactly as if no batch had been augmented."""
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    policies = BatchPolicies(aa, 1.0, "pixel", 16, (0.5,) * 3, (0.25,) * 3)
    policies(torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)),
             torch.Generator().manual_seed(3))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_policies_do_not_reseed_the_gpu_streams(monkeypatch):
    """torch.manual_seed would reseed every CUDA device's global generator (dropout on the GPU)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", calls.append)
    BatchPolicies("rand-m9-mstd0.5", 0.0, None, 16, (0.5,) * 3, (0.25,) * 3)(
        torch.rand(2, 3, 16, 16), torch.Generator().manual_seed(3))
    assert calls == []


def test_train_step_applies_the_policies(monkeypatch, tmp_path):
    seen = []
    original = BatchPolicies.__call__

    def spy(self, x, generator):
        out = original(self, x, generator)
        seen.append(((out - x).abs().amax().item(), self.eraser is not None))
        return out

    monkeypatch.setattr(train_mod.BatchPolicies, "__call__", spy)
    train_mod.train(tiny_config(aa="rand-m9-mstd0.5", reprob=1.0, steps=2), tmp_path / "run",
                    quiet=True)
    assert len(seen) == 2 and all(diff > 0 and erasing for diff, erasing in seen)


def test_bad_policy_is_one_line_error():
    with pytest.raises(ConfigError, match="--aa: unknown policy 'nonsense'"):
        tiny_config(aa="nonsense")
    assert main(["classify", "train", "--aa", "nonsense", "--dry-run"]) == 2
