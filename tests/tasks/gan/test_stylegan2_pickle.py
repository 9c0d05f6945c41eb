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
    from robustrep.tasks.gan.sample import _truncated
    from robustrep.tasks.common.errors import UserError
    with pytest.raises(UserError, match=r"^--truncation 0.7 needs a StyleGAN2 generator .* "
                                        r"RUN's Linear has none"):
        _truncated(torch.nn.Linear(2, 2), 0.7, "RUN")
    assert _truncated(torch.nn.Linear(2, 2), 1.0, "RUN") == {}
