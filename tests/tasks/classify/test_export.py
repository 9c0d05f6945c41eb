"""`robustrep classify export RUN OUT`: a run's weights as a file timm.create_model loads, giving
the run's own logits on normalised images; the refusals are one line each."""

import json

import pytest
import timm
import torch
from safetensors import safe_open

from robustrep.tasks.cli import main
from robustrep.tasks.common.classifier_run import load_run

from .conftest import tiny_config

EVAL = ["--attacks", "none", "--corruptions", "--max-samples", "48", "--quiet"]


@pytest.fixture(scope="module")
def uos_run(tmp_path_factory):
    """A 1-step digits run with the UoS head (classes 0-2)."""
    from robustrep.tasks.classify.train import train
    path = tmp_path_factory.mktemp("runs") / "uos"
    train(tiny_config(steps=1, head="uos"), path, quiet=True)
    return path


def _export(run, out, *flags):
    return main(["classify", "export", str(run), str(out), *flags])


def _images(config):
    torch.manual_seed(1)
    return torch.rand(6, config["channels"], config["image_size"], config["image_size"])


def _timm_logits(path, config, x):
    net = timm.create_model(config["model"], num_classes=config["num_classes"],
                            in_chans=config["channels"], checkpoint_path=str(path)).eval()
    mean, std = (torch.tensor(config[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        return net((x - mean) / std)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_loads_the_export_with_the_runs_logits(trained_run, tmp_path, capsys, suffix):
    logits = {}
    for flags, weights in (((), "ema"), (("--no-ema",), "model")):
        out = tmp_path / f"{weights}{suffix}"
        assert _export(trained_run, out, *flags) == 0
        said = capsys.readouterr()
        model, config = load_run(trained_run, use_ema=weights == "ema")
        assert config["weights"] == weights
        x = _images(config)
        logits[weights] = _timm_logits(out, config, x)
        with torch.no_grad():
            torch.testing.assert_close(logits[weights], model(x), atol=1e-6, rtol=0)
        which = "EMA" if weights == "ema" else "raw"
        assert said.out == (
            f"wrote {out}: test_resnet, the {which} weights of {trained_run} at step 4; load it "
            f"with timm.create_model('test_resnet', num_classes=3, in_chans=1, "
            f"checkpoint_path='{out}') and feed it (x - mean) / std of images x in [0, 1], mean "
            f"[0.5], std [0.5] (timm's pretrained_cfg does not know them)\n")
        note = (f"note: robustrep reads no metadata of {out}: give classify eval and ood score "
                f"--model test_resnet --checkpoint {out} --mean 0.5 --std 0.5\n")
        assert said.err == (note if suffix == ".safetensors" else "")
    assert not torch.allclose(logits["ema"], logits["model"], atol=1e-4)  # the run's EMA differs


def test_a_pth_export_is_timm_train_pys_dict_in_plain_types(trained_run, tmp_path):
    out = tmp_path / "w.pth.tar"
    assert _export(trained_run, out) == 0
    data = torch.load(out, weights_only=True)  # no pickled object in it
    model, config = load_run(trained_run)
    assert data["arch"] == "test_resnet" and data["args"] == {
        "model": "test_resnet", "mean": [0.5], "std": [0.5], "num_classes": 3, "in_chans": 1,
        "img_size": 16, "model_kwargs": {}}
    assert data["robustrep"] == {
        "run": str(trained_run), "step": 4, "weights": "ema",
        "create_model": {"model_name": "test_resnet", "num_classes": 3, "in_chans": 1}}
    own = model.model.state_dict()
    assert data["state_dict"].keys() == own.keys()
    assert all(torch.equal(v, own[k]) for k, v in data["state_dict"].items())


def test_a_safetensors_export_keeps_the_facts_as_metadata(trained_run, tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    assert _export(trained_run, out) == 0
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert (meta["model"], json.loads(meta["mean"]), json.loads(meta["std"])) == (
        "test_resnet", [0.5], [0.5])
    assert (meta["num_classes"], meta["in_chans"], meta["weights"]) == ("3", "1", "ema")


def _clean(report_dir):
    return json.loads((report_dir / "report.json").read_text())["clean"]


def test_classify_eval_of_the_export_scores_as_the_run(trained_run, tmp_path, monkeypatch,
                                                       capsys, undrawn_diagrams):
    monkeypatch.chdir(tmp_path)
    assert _export(trained_run, "w.pth") == 0
    assert _export(trained_run, "w.safetensors") == 0
    assert main(["classify", "eval", str(trained_run), "--out", "run", *EVAL]) == 0
    data = ["--classes", "0", "1", "2", "--image-size", "16", *EVAL]
    # no --model: the file's args.model; no --mean/--std: its args.mean/args.std
    assert main(["classify", "eval", "--checkpoint", "w.pth", "--out", "pth", *data]) == 0
    # the note's flags: robustrep reads no safetensors metadata
    assert main(["classify", "eval", "--model", "test_resnet", "--checkpoint", "w.safetensors",
                 "--mean", "0.5", "--std", "0.5", "--out", "st", *data]) == 0
    run = _clean(tmp_path / "run")
    for name in ("pth", "st"):
        assert _clean(tmp_path / name)["acc"] == run["acc"]
        assert _clean(tmp_path / name)["nll"] == pytest.approx(run["nll"], rel=1e-5)


def _refused(capsys, *argv):
    assert main(["classify", "export", *map(str, argv)]) == 2
    said = capsys.readouterr()
    assert said.out == ""
    return said.err


def test_refusals_are_one_line(trained_run, uos_run, tmp_path, capsys):
    mine = tmp_path / "mine.pth"
    mine.write_text("the user's file")
    prefix = "robustrep classify export: error: "
    assert _refused(capsys, trained_run, mine) == (
        f"{prefix}OUT {mine} exists; remove it or choose another path (export never replaces a "
        f"file)\n")
    assert mine.read_text() == "the user's file"
    for name in ("w.zip", "w.PTH", ".pth", "w"):
        assert _refused(capsys, trained_run, tmp_path / name) == (
            f"{prefix}OUT {tmp_path / name}: give a path ending in .pth.tar, .pth, .pt "
            f"(torch.save, as timm's train.py writes) or .safetensors\n")
    assert _refused(capsys, trained_run, "") == (  # was "OUT .: give a path ..."
        f"{prefix}OUT is empty; give a path ending in .pth or .safetensors, e.g. "
        f"model.safetensors\n")
    assert _refused(capsys, uos_run, tmp_path / "u.pth") == (
        f"{prefix}RUN {uos_run} has a UoS head (--head uos: logits s|W z/||z||| of a frozen W), a "
        f"layer timm has not: no timm model gives its logits; export a run trained with --head "
        f"linear\n")
    assert _refused(capsys, tmp_path, tmp_path / "n.pth") == (
        f"{prefix}{tmp_path} is not a robustrep run folder: no config.json (expected "
        f"RUN/config.json and RUN/checkpoints/latest.pt written by `robustrep classify train`)\n")
    ckpt = trained_run / "checkpoints" / "latest.pt"
    assert _refused(capsys, ckpt, tmp_path / "c.pth") == (
        f"{prefix}RUN {ckpt} is a file, not a run folder (expected a folder holding config.json "
        f"and checkpoints/); for a checkpoint give its run folder: {trained_run}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.pth"]  # nothing written


def test_no_timm_model_gives_a_uos_runs_logits(uos_run):
    # why the UoS run is refused: its head's weight in timm's linear head gives other logits
    model, config = load_run(uos_run)
    state = model.model.state_dict()
    net = timm.create_model("test_resnet", num_classes=3, in_chans=1).eval()
    with pytest.raises(RuntimeError, match="fc.bias"):  # timm's head has a bias; UoS has none
        net.load_state_dict(state)
    net.load_state_dict({**state, "fc.bias": torch.zeros(3)})
    x = _images(config)
    with torch.no_grad():
        mine, plain = model(x), net(model.prepare(x))
        torch.testing.assert_close(mine, plain.abs() / net.forward_head(
            net.forward_features(model.prepare(x)), pre_logits=True).norm(dim=1, keepdim=True))
    assert not torch.allclose(mine, plain, atol=1e-3)


def test_a_wrn_is_built_by_its_module_with_its_final_act(tmp_path):
    # robustrep's wrn* are timm models once robustrep.nets.wrn has registered them
    from robustrep.tasks.classify.export import loading_line, timm_kwargs
    from robustrep.tasks.common.classifier import create_classifier
    config = {"model": "wrn16_2", "num_classes": 3, "channels": 1, "image_size": 16,
              "final_act": False, "mean": [0.5], "std": [0.25], "weights": "model",
              "run_dir": "R", "step": 7}
    arch, kwargs = timm_kwargs(config)
    assert loading_line(tmp_path / "w.pth", config, arch, kwargs) == (
        f"wrote {tmp_path / 'w.pth'}: wrn16_2, the raw weights of R at step 7; load it with "
        f"`import robustrep.nets.wrn` (it registers wrn16_2 with timm), then "
        f"timm.create_model('wrn16_2', num_classes=3, in_chans=1, final_act=False, "
        f"checkpoint_path='{tmp_path / 'w.pth'}') and feed it (x - mean) / std of images x in "
        f"[0, 1], mean [0.5], std [0.25] (timm's pretrained_cfg does not know them)")
    run_model = create_classifier("wrn16_2", 3, in_chans=1, final_act=False).model
    timm.create_model(arch, **kwargs).load_state_dict(run_model.state_dict())  # strict: fits


def test_a_wrn_export_without_its_final_act_evaluates_as_the_run(tmp_path, monkeypatch, capsys,
                                                                  undrawn_diagrams):
    # was: classify eval --checkpoint built wrn16_2 with final_act=True and refused the file
    # (its bn.* missing); the export now keeps it in args.model_kwargs, as timm's train.py
    from robustrep.tasks.classify.train import train
    monkeypatch.chdir(tmp_path)
    train(tiny_config(steps=1, model="wrn16_2", final_act=False), tmp_path / "run", quiet=True)
    assert _export(tmp_path / "run", "w.pth") == 0
    saved = torch.load("w.pth", weights_only=True)
    assert saved["args"]["model_kwargs"] == {"final_act": False}
    assert main(["classify", "eval", "run", "--out", "by_run", *EVAL]) == 0
    capsys.readouterr()
    data = ["--classes", "0", "1", "2", "--image-size", "16", *EVAL]
    assert main(["classify", "eval", "--checkpoint", "w.pth", "--out", "by_file", *data]) == 0
    assert ("note: w.pth's args.model_kwargs (final_act=False) are passed to timm.create_model, "
            "as timm's train.py built the model it trained") in capsys.readouterr().err
    assert _clean(tmp_path / "by_file")["nll"] == pytest.approx(
        _clean(tmp_path / "by_run")["nll"], rel=1e-5)
