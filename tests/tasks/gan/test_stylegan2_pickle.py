"""stylegan2-ada network pickles read without running their code (robustrep.stylegan2_pickle),
``gan sample PKL`` and ``gan train --init PKL``.

The test writes pickles in stylegan2-ada's record structure: every network object reduces to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with the module source, class name
and the object's ``__dict__`` under the reference's attribute names (``mapping.fc0``,
``synthesis.b8.conv0``, ``b16.skip``, ``b4.out``), with ``dnnlib.util.EasyDict`` init kwargs and
numpy scalars, as ``training_loop.py`` saves them. The fake ``torch_utils``/``dnnlib`` modules
are built in a scratch folder; both the reconstruct hook and the embedded source would write a
marker file if anything ran. (scripts/compare_stylegan2_reference.py does the same with the
reference's own classes and pickle.dump.)
"""

from __future__ import annotations

import collections
import json
import math
import os
import pickle
import re
import sys

import numpy as np
import pytest
import torch

from robustrep.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from robustrep.stylegan2_pickle import StyleGAN2PickleError, load_stylegan2_pickle
from robustrep.tasks.cli import main
from robustrep.tasks.gan.train import train

RES, Z, W, CH = 16, 16, 16, 1
G_KW = dict(z_dim=Z, c_dim=0, w_dim=W, img_resolution=RES, img_channels=CH,
            mapping_kwargs=dict(num_layers=2),
            synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=0,
                                  conv_clamp=None))
D_KW = dict(c_dim=0, img_resolution=RES, img_channels=CH, architecture="resnet",
            channel_base=128, channel_max=16, num_fp16_res=0, conv_clamp=None,
            epilogue_kwargs=dict(mbstd_group_size=4))

PERSISTENCE = '''
import os
MARKER = {marker!r}
def _reconstruct_persistent_obj(meta):
    open(MARKER, "w").write("the reconstruct hook ran")

class Record:
    def __init__(self, class_name, state):
        self.class_name, self.state = class_name, state
    def __reduce__(self):
        src = "import os\\nopen(%r, 'w').write('the embedded source ran')\\n" % MARKER
        meta = dict(type="class", version=6, module_src=src, class_name=self.class_name,
                    state=self.state)
        return (_reconstruct_persistent_obj, (meta,))
'''


@pytest.fixture
def fake_reference(tmp_path):
    """The scratch ``torch_utils.persistence`` and ``dnnlib.util`` modules, importable while
    the pickle is written, removed before it is read."""
    root = tmp_path / "fake_ref"
    marker = tmp_path / "MARKER"
    for pkg, name, src in (("torch_utils", "persistence", PERSISTENCE.format(marker=str(marker))),
                           ("dnnlib", "util", "class EasyDict(dict):\n    pass\n")):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
        (root / pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, str(root))
    try:
        from dnnlib.util import EasyDict
        from torch_utils.persistence import Record
        yield Record, EasyDict, marker
    finally:
        sys.path.remove(str(root))
        for mod in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"):
            sys.modules.pop(mod, None)


# robustrep name -> the reference's, written out independently of the module's mapping
G_NAMES = [(r"^mapping\.layers\.(\d+)\.", lambda m: f"mapping.fc{m[1]}."),
           (r"^synthesis\.blocks\.(\d+)\.", lambda m: f"synthesis.b{2 ** (int(m[1]) + 2)}.")]
D_NAMES = [(r"^trunk\.blocks\.(\d+)\.", lambda m: f"b{RES // 2 ** int(m[1])}."),
           (r"^trunk\.fromrgb\.", lambda m: "b4.fromrgb."), (r"^epilogue\.", lambda m: "b4.")]


def _reference_name(name, table):
    for pattern, repl in table:
        name = re.sub(pattern, repl, name)
    return name


def _record_tree(net, table, class_name, init_kwargs, Record, EasyDict):
    """The reference's object tree: nested records with _parameters/_buffers/_modules."""
    tree = {}
    params = dict(net.named_parameters())
    for name, value in net.state_dict().items():
        if name == "pl_mean":
            continue
        *path, leaf = _reference_name(name, table).split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = torch.nn.Parameter(value.clone()) if name in params else value.clone()

    def build(node, cls):
        state = {"training": True, "_parameters": collections.OrderedDict(),
                 "_buffers": collections.OrderedDict(), "_modules": collections.OrderedDict(),
                 "_forward_hooks": collections.OrderedDict(), "activation": "lrelu",
                 "weight_gain": np.float64(1 / math.sqrt(3)), "np_array": np.arange(3.0)}
        for key, value in node.items():
            if isinstance(value, dict):
                state["_modules"][key] = build(value, "Layer")
            elif isinstance(value, torch.nn.Parameter):
                state["_parameters"][key] = value
            else:
                state["_buffers"][key] = value
        return Record(cls, state)

    rec = build(tree, class_name)
    rec.state["_init_kwargs"] = EasyDict({k: EasyDict(v) if isinstance(v, dict) else v
                                          for k, v in init_kwargs.items()})
    return rec


def _nets(seed):
    torch.manual_seed(seed)
    G = StyleGAN2Generator(Z, RES, CH, w_dim=W, mapping_layers=2, channel_base=128,
                           channel_max=16)
    D = StyleGAN2Discriminator(RES, CH, channel_base=128, channel_max=16, mbstd_group=4)
    with torch.no_grad():  # biases and noise strengths start at 0: make every tensor matter
        for p in [*G.parameters(), *D.parameters()]:
            p.add_(0.3 * torch.randn(p.shape))
    return G.eval(), D.eval()


@pytest.fixture
def network_pickle(tmp_path, fake_reference):
    Record, EasyDict, marker = fake_reference
    G, D = _nets(0)
    G_ema, _ = _nets(1)
    data = {"G": _record_tree(G, G_NAMES, "Generator", G_KW, Record, EasyDict),
            "D": _record_tree(D, D_NAMES, "Discriminator", D_KW, Record, EasyDict),
            "G_ema": _record_tree(G_ema, G_NAMES, "Generator", G_KW, Record, EasyDict),
            "augment_pipe": None, "training_set_kwargs": EasyDict(resolution=RES)}
    path = tmp_path / "network-snapshot-000100.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    return path, {"G": G, "D": D, "G_ema": G_ema}, marker


def test_networks_from_a_reference_structured_pickle_give_the_expected_images(network_pickle):
    path, want, marker = network_pickle
    nets = load_stylegan2_pickle(path)
    z = torch.randn(6, Z, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for key in ("G", "G_ema"):
            expected = want[key](z, noise_mode="const")
            assert expected.std() > 0.1
            torch.testing.assert_close(nets[key](z, noise_mode="const"), expected, rtol=0,
                                       atol=1e-4)
        x = torch.randn(8, CH, RES, RES)
        torch.testing.assert_close(nets["D"](x), want["D"](x), rtol=0, atol=1e-4)
    assert not marker.exists()  # neither the hook nor the embedded source ran


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_global_is_refused_in_one_line_and_never_runs(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"G": _Evil(marker), "D": None, "G_ema": None}, fh)
    with pytest.raises(StyleGAN2PickleError, match=r"refuses the global (posix|nt|os)\.system"):
        load_stylegan2_pickle(path)
    assert not marker.exists()
    assert main(["gan", "sample", str(path), "--grid", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "evil.pkl" in err and "system" in err
    assert not marker.exists()


def test_not_a_network_pickle_is_one_line(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"G": 1}))
    with pytest.raises(StyleGAN2PickleError, match="not a stylegan2-ada network pickle"):
        load_stylegan2_pickle(path)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(StyleGAN2PickleError, match="cannot be read"):
        load_stylegan2_pickle(path)
    # a checkpoint given as --init: was "persistent IDs in protocol 0 must be ASCII strings"
    torch.save({"G": {}}, path)
    with pytest.raises(StyleGAN2PickleError, match=r"^is a zip archive \(a torch.save file, "
                                                   r"such as a robustrep checkpoint\?\)"):
        load_stylegan2_pickle(path)


@pytest.mark.parametrize("stats, held", [
    ({"mu": np.zeros(4), "sigma": np.eye(4)}, "mu and sigma"),
    ({"num_items": 10, "num_features": 4, "raw_mean": np.zeros(4), "raw_cov": np.eye(4)},
     "stylegan2-ada's cached FeatureStats")])
def test_train_init_of_statistics_says_it_holds_statistics(stats, held, tmp_path, capsys):
    """Was: "--init S.pkl: is not a stylegan2-ada network pickle", true but not what it is."""
    path = tmp_path / "stats.pkl"
    path.write_bytes(pickle.dumps(stats))
    code = main(["gan", "train", "--preset", "digits-stylegan2", "--init", str(path), "--steps",
                 "1", "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    assert (code, capsys.readouterr().err) == (2, (
        f"robustrep gan train: error: --init {path}: holds FID statistics ({held}), not the "
        f"networks ('G', 'D', 'G_ema') of a stylegan2-ada network pickle\n"))
    assert not (tmp_path / "run").exists()


def _write_pickle(path, fake_reference, g_kwargs=G_KW, poison=None, mutate=None):
    """A network pickle as the fixture writes it, from other G kwargs, with one G_ema
    tensor set to NaN (a snapshot of a diverged run), or with ``mutate(records)`` applied."""
    Record, EasyDict, _ = fake_reference
    G, D = _nets(0)
    if poison is not None:
        with torch.no_grad():
            dict(G.named_parameters())[poison].fill_(float("nan"))
    records = {key: _record_tree(G, G_NAMES, "Generator", g_kwargs, Record, EasyDict)
               for key in ("G", "G_ema")}
    records["D"] = _record_tree(D, D_NAMES, "Discriminator", D_KW, Record, EasyDict)
    if mutate is not None:
        mutate(records)
    with open(path, "wb") as fh:
        pickle.dump(records, fh)
    return path


@pytest.mark.parametrize("change, expect", [
    (dict(poison="synthesis.blocks.0.const"),
     r"has a G that holds non-finite weights \(synthesis\.b4\.const\)"),
    (dict(g_kwargs={**G_KW, "img_resolution": 15}), "init_kwargs robustrep cannot use "
                                                    r"\(ValueError: img_resolution"),
    (dict(g_kwargs={**G_KW, "z_dim": -3}), r"init_kwargs robustrep cannot use \(RuntimeError"),
    # were tracebacks: a list where a mapping belongs, a channel base of 0
    (dict(g_kwargs={**G_KW, "synthesis_kwargs": [1, 2]}), "has a G whose init_kwargs robustrep "
                                                          r"cannot use \(AttributeError"),
    (dict(g_kwargs={**G_KW, "synthesis_kwargs": {**G_KW["synthesis_kwargs"],
                                                 "channel_base": 0}}),
     r"has a G whose init_kwargs robustrep cannot use \(ValueError: channel_base 0 and "
     r"channel_max 16 give the 16x16 layers no feature maps"),
    (dict(mutate=lambda r: r["G"].state.update(_init_kwargs=[1])),
     r"has a G whose init_kwargs robustrep cannot use \(TypeError: init_kwargs is a list"),
    (dict(mutate=lambda r: r["D"].state["_modules"]["b4"].state.update(_parameters=[1])),
     r"has a D that holds b4\._parameters as a list, not a mapping"),
])
def test_a_pickle_robustrep_cannot_use_faithfully_is_one_line(tmp_path, fake_reference, capsys,
                                                             change, expect):
    """A diverged snapshot gave black samples with exit 0; kwargs our networks refuse gave a
    traceback. Both are one line naming the file; an upper-case .PKL is a pickle too."""
    path = _write_pickle(tmp_path / "NET.PKL", fake_reference, **change)
    with pytest.raises(StyleGAN2PickleError, match=expect):
        load_stylegan2_pickle(path)
    assert main(["gan", "sample", str(path), "--grid", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and re.search(expect, err)
    assert not (tmp_path / "g.png").exists()


def test_gan_sample_takes_a_pickle(network_pickle, tmp_path, monkeypatch):
    path, want, marker = network_pickle
    monkeypatch.chdir(tmp_path)
    pt = tmp_path / "s.pt"
    assert main(["gan", "sample", str(path), "--num", "4", "--pt", str(pt), "--device",
                 "cpu"]) == 0
    assert (tmp_path / "network-snapshot-000100-seed0-n4.png").is_file()
    samples = torch.load(pt, weights_only=True)["samples"]
    assert samples.shape == (4, CH, RES, RES)
    assert not marker.exists()


def test_a_checkpoint_asked_of_a_pickle_is_refused(network_pickle, tmp_path, monkeypatch,
                                                   capsys):
    """Was: `gan sample NET.pkl --checkpoint step_00000400.pt` drew the pickle's G-EMA and
    ignored --checkpoint without a word."""
    path, _, _ = network_pickle
    monkeypatch.chdir(tmp_path)
    assert main(["gan", "sample", str(path), "--num", "4", "--checkpoint", "step_00000400.pt",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (f"--checkpoint step_00000400.pt picks a run folder's checkpoint, and {path} is a "
            f"network pickle") in err
    assert not list(tmp_path.glob("*.png"))


def test_train_init_starts_from_the_pickle(network_pickle, tiny_cfg, tmp_path):
    path, want, _ = network_pickle
    run = tmp_path / "run"
    cfg = tiny_cfg(arch="stylegan2", image_size=RES, z_dim=Z, w_dim=W, mapping_layers=2,
                   channel_base=128, channel_max=16, mbstd_group=4, batch_size=8, steps=1,
                   lr_g=1e-12, lr_d=1e-12, ema_kimg=1000.0, ema_rampup=None, init=str(path),
                   out=str(run))
    train(cfg, show_progress=False)
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    for key, net in (("G", want["G"]), ("D", want["D"])):  # lr 1e-12: the pickle's weights
        for name, value in net.named_parameters():  # (buffers such as w_avg move)
            torch.testing.assert_close(state[key][name], value.detach(), msg=f"{key}.{name}")
    ema_const = state["ema"]["synthesis.blocks.0.const"]
    torch.testing.assert_close(ema_const, want["G_ema"].synthesis.blocks[0].const, atol=1e-3,
                               rtol=0)


def test_train_init_that_does_not_fit_is_one_line(network_pickle, tmp_path, capsys):
    path, _, _ = network_pickle
    code = main(["gan", "train", "--preset", "digits-stylegan2", "--init", str(path), "--steps",
                 "1", "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--init" in err and "does not fit" in err
    assert not (tmp_path / "run").exists()


def test_train_init_names_every_option_that_differs(network_pickle, tmp_path, capsys):
    """Was: "set --z-dim 16 (this run: 8), --w-dim 16 (this run: 32)", then, with those set,
    "(first: mapping.layers.2.weight); set --image-size, ..., --channel-base, --channel-max and
    --d-arch to the pickle's" without the values, which the pickle records; the channels were
    then named with the pickle's values only. One refusal names them all with the run's beside
    them, and the command with its options set trains."""
    path, _, _ = network_pickle
    run = tmp_path / "run"
    base = ["gan", "train", "--preset", "digits-stylegan2", "--image-size", str(RES),
            "--mbstd-group", "4", "--batch-size", "8", "--steps", "1", "--eval-every", "0",
            "--final-eval", "false", "--quiet", "--device", "cpu", "--init", str(path),
            "--out", str(run)]
    other = ["--z-dim", "8", "--w-dim", "32", "--mapping-layers", "3", "--channel-base", "64",
             "--channel-max", "16", "--d-arch", "orig"]
    assert main(base + other) == 2
    err = capsys.readouterr().err
    assert err == (f"robustrep gan train: error: --init {path} does not fit this run's "
                   f"networks; set --z-dim 16 (this run: 8), --w-dim 16 (this run: 32), "
                   f"--mapping-layers 2 (this run: 3), --channel-base 128 and --channel-max 16 "
                   f"(this run: 64 and 16; feature maps at 4 to 16: this run 16, 8, 4; the "
                   f"pickle 16, 16, 8), "
                   f"--d-arch resnet (this run: orig)\n")
    assert not run.exists()
    named = re.findall(r"(--[a-z-]+) (\S+?),? ", err.split("; set ")[1])
    assert len(named) == 6
    assert main(base + other + [flag_value for pair in named for flag_value in pair]) == 0


# the run of test_train_init_names_every_option_that_differs with every shaping option as the
# pickle's
FITTING = ["gan", "train", "--preset", "digits-stylegan2", "--image-size", str(RES), "--z-dim",
           str(Z), "--w-dim", str(W), "--mapping-layers", "2", "--channel-base", "128",
           "--channel-max", "16", "--mbstd-group", "4", "--batch-size", "8", "--steps", "1",
           "--eval-every", "0", "--final-eval", "false", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("synthesis, flags, note", [
    (dict(num_fp16_res=2, conv_clamp=256), [],
     "was trained with --fp16-res 2 and --conv-clamp 256; this run fine-tunes it with its own "
     "--fp16-res 0 and --conv-clamp off, as stylegan2-ada's --resume does (float16 speed and "
     "overflow settings, not weights)"),
    (dict(num_fp16_res=0, conv_clamp=256), ["--conv-clamp", "256"], None),
])
def test_train_init_names_the_float16_settings_it_fine_tunes_with(
        synthesis, flags, note, tmp_path, fake_reference, capsys):
    """Was silent: a pickle trained with float16 blocks and a conv clamp fine-tuned without
    them. As stylegan2-ada's --resume (its networks built from the run's options, the pickle's
    tensors copied in) the run's settings apply, and a note says so where they differ."""
    g_kw = {**G_KW, "synthesis_kwargs": {**G_KW["synthesis_kwargs"], **synthesis}}

    def d_settings(records):
        records["D"].state["_init_kwargs"].update(synthesis)
    path = _write_pickle(tmp_path / "net.pkl", fake_reference, g_kwargs=g_kw, mutate=d_settings)
    assert main(FITTING + flags + ["--init", str(path), "--out", str(tmp_path / "run")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "--init" in line]
    assert notes == ([f"note: --init {path} {note}"] if note else [])


def test_train_init_refuses_another_mapping_lr_multiplier(tmp_path, fake_reference, capsys):
    """Was silent: the mapping layers store their weights divided by the lr multiplier, so a
    pickle's at 0.1 loaded at the run's 0.01 mapped z to other w's; no option sets it."""
    g_kw = {**G_KW, "mapping_kwargs": {"num_layers": 2, "lr_multiplier": 0.1}}
    path = _write_pickle(tmp_path / "net.pkl", fake_reference, g_kwargs=g_kw)
    run = tmp_path / "run"
    assert main(FITTING + ["--z-dim", "8", "--init", str(path), "--out", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan train: error: --init {path} does not fit this run's networks; set "
        f"--z-dim 16 (this run: 8); its mapping network's lr multiplier is 0.1 (this run: "
        f"0.01), which no option of gan train sets: its mapping weights are stored divided by "
        f"it, so at this run's they would compute another network\n")
    assert not run.exists()


def test_gan_sample_truncates_towards_w_avg(network_pickle, tmp_path, monkeypatch, capsys):
    # stylegan2-ada's --trunc: w = w_avg + psi (w - w_avg); psi 0 gives every z the same w
    from robustrep.tasks.gan import pickles
    path, want, _ = network_pickle
    G = want["G_ema"].eval()
    G.mapping.w_avg.copy_(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(5)))
    monkeypatch.setattr(pickles, "pickle_generator", lambda *a, **k: G)
    monkeypatch.chdir(tmp_path)
    z = torch.randn(3, Z, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        w = G.mapping(z)
        torch.testing.assert_close(G.mapping(z, truncation_psi=0.5),
                                   G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg))
    for psi in ("1", "0.5", "0"):
        assert main(["gan", "sample", str(path), "--num", "3", "--truncation", psi, "--pt",
                     f"s{psi}.pt", "--device", "cpu"]) == 0
    capsys.readouterr()
    s = {psi: torch.load(tmp_path / f"s{psi}.pt", weights_only=True) for psi in ("1", "0.5", "0")}
    assert s["0.5"]["truncation"] == 0.5 and (tmp_path / "network-snapshot-000100-seed0-n3-"
                                              "trunc0.5.png").is_file()
    spread = {psi: (v["samples"] - v["samples"].mean(0)).abs().mean() for psi, v in s.items()}
    assert spread["0"] < spread["0.5"] < spread["1"]  # noise alone varies at psi 0


def test_truncation_needs_a_stylegan2_generator(tmp_path, capsys):
    from robustrep.tasks.gan.sample import g_options
    from robustrep.tasks.common.errors import UserError
    with pytest.raises(UserError, match=r"^--truncation 0.7 needs a StyleGAN2 generator .* "
                                        r"RUN's Linear has none"):
        g_options(torch.nn.Linear(2, 2), "RUN", truncation=0.7)
    assert g_options(torch.nn.Linear(2, 2), "RUN", truncation=1.0) == {}


def _generate_py_image(G, seed, label=None, noise_mode="const"):
    """stylegan2-ada's generate.py for one seed, written out here: z from
    np.random.RandomState(seed).randn(1, z_dim), ``x * 127.5 + 128`` clamped, made uint8."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).to(torch.float32)
    with torch.no_grad():
        img = G(z, label, noise_mode=noise_mode)
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def _png(path):
    from PIL import Image
    image = np.asarray(Image.open(path))
    return image[..., None] if image.ndim == 2 else image


def _assert_same_image(got, want):
    # the pickle's networks equal the fixture's to 1e-4: a pixel may sit on a rounding edge
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01 and want.std() > 10


def test_gan_sample_seeds_writes_the_images_generate_py_writes(network_pickle, tmp_path, capsys):
    """--seeds with --outdir: seed0000.png... as stylegan2-ada's generate.py writes them (its
    default noise mode const), pixel for pixel."""
    path, want, marker = network_pickle
    out = tmp_path / "out"
    assert main(["gan", "sample", str(path), "--seeds", "0-2,11", "--outdir", str(out),
                 "--device", "cpu"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["noise_mode"] == "const" and "grid" not in record
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png",
                                                     "seed0002.png", "seed0011.png"]
    for seed in (0, 1, 2, 11):
        _assert_same_image(_png(out / f"seed{seed:04d}.png"),
                           _generate_py_image(want["G_ema"], seed))
    assert not marker.exists()


def test_random_noise_is_drawn_from_each_seed(network_pickle, tmp_path, capsys):
    path, want, _ = network_pickle
    for name in ("a", "b"):
        assert main(["gan", "sample", str(path), "--seeds", "4", "--noise-mode", "random",
                     "--outdir", str(tmp_path / name), "--device", "cpu"]) == 0
    a, b = (_png(tmp_path / name / "seed0004.png") for name in "ab")
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - _generate_py_image(want["G_ema"], 4).astype(int)).max() > 8


def test_a_conditional_network_draws_the_class_asked_for(tmp_path, monkeypatch, capsys):
    """stylegan2-ada's conditional networks (its CIFAR-10 pickle) need --class, as in
    generate.py: the label is one-hot, and another class gives another image."""
    from robustrep.tasks.gan import pickles
    torch.manual_seed(0)
    G = StyleGAN2Generator(Z, RES, CH, c_dim=4, w_dim=W, mapping_layers=2, channel_base=128,
                           channel_max=16)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.3 * torch.randn(p.shape))
    monkeypatch.setattr(pickles, "pickle_generator", lambda *a, **k: G.eval())
    (tmp_path / "cond.pkl").write_bytes(b"read by the patched loader")
    monkeypatch.chdir(tmp_path)
    base = ["gan", "sample", "cond.pkl", "--seeds", "5", "--device", "cpu"]
    for extra, expect in (([], "conditional network (4 classes): give --class N with N in 0..3"),
                          (["--class", "4"], "--class 4: cond.pkl has classes 0..3")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expect in err
    assert main(base + ["--class", "2", "--outdir", "c2"]) == 0
    assert main(base + ["--class", "3", "--outdir", "c3"]) == 0
    two, three = (_png(tmp_path / d / "seed0005.png") for d in ("c2", "c3"))
    _assert_same_image(two, _generate_py_image(G, 5, torch.eye(4)[[2]]))
    assert np.abs(two.astype(int) - three.astype(int)).max() > 8


def test_gan_fid_scores_a_network_pickle(network_pickle, tmp_path, capsys):
    """gan fid NET.pkl: --num samples of G_ema drawn as gan sample draws them with the
    evaluation seed, so against those very samples FID is 0."""
    from robustrep.tasks.gan.evaluate import EVAL_SEED
    path, _, marker = network_pickle
    fids = {}
    for seed in (EVAL_SEED, 1):
        pt = tmp_path / f"s{seed}.pt"
        assert main(["gan", "sample", str(path), "--num", "40", "--seed", str(seed),
                     "--noise-mode", "random", "--pt", str(pt), "--grid",
                     str(tmp_path / f"g{seed}.png"), "--device", "cpu"]) == 0
        capsys.readouterr()
        assert main(["gan", "fid", str(path), str(pt), "--num", "40", "--fid-features",
                     "digits", "--quiet", "--device", "cpu"]) == 0
        table = capsys.readouterr().out
        assert f"network pickle {path} (G_ema, 40 samples)" in table
        fids[seed] = float(re.search(r"^fid\s+(\S+)", table, re.M)[1])
    assert abs(fids[EVAL_SEED]) < 1e-3 and fids[1] > 0.1
    assert not marker.exists()


def test_a_conditional_network_is_scored_over_uniformly_drawn_classes(tmp_path, monkeypatch,
                                                                        capsys):
    from robustrep.tasks.gan import pickles
    from robustrep.tasks.gan.models import class_labels
    G = StyleGAN2Generator(Z, RES, CH, c_dim=4, w_dim=W, mapping_layers=2, channel_base=128,
                           channel_max=16).eval()
    labels = class_labels(G, 4000, None, torch.Generator().manual_seed(0))
    assert labels.shape == (4000, 4) and torch.equal(labels.sum(1), torch.ones(4000))
    assert (labels.mean(0) - 0.25).abs().max() < 0.03
    assert class_labels(torch.nn.Linear(2, 2), 5, None, None) is None
    monkeypatch.setattr(pickles, "pickle_generator", lambda *a, **k: G)
    # a pickle naming a global, as a network pickle does (gan fid names bytes that are no
    # pickle as damaged before the network pickle's reader is asked): read by the patched loader
    (tmp_path / "cond.pkl").write_bytes(pickle.dumps(collections.OrderedDict()))
    torch.save(torch.rand(20, CH, RES, RES), tmp_path / "b.pt")
    assert main(["gan", "fid", str(tmp_path / "cond.pkl"), str(tmp_path / "b.pt"), "--num", "20",
                 "--fid-features", "digits", "--quiet", "--device", "cpu"]) == 0
    assert "(G_ema, 20 samples, classes drawn uniformly from 4)" in capsys.readouterr().out


def test_a_missing_network_pickle_is_named_as_one(tmp_path, capsys):
    # was: "missing.pkl is not a robustrep run folder: no config.json"
    assert main(["gan", "sample", str(tmp_path / "missing.pkl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pkl: no such file (a stylegan2-ada network " in err
