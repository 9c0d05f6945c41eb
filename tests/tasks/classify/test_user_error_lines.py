"""Refusals ``classify train`` and ``classify eval`` made only through their blanket conversion
of every ValueError into a user error (which also hid robustrep's bugs as user errors; that
conversion is gone, test_internal_errors.py): each is now a UserError where it is found (a
weights file, a run folder, a model name), one line, exit 2."""

import json
import shutil

import pytest

from robustrep.tasks.cli import main

from .test_internal_errors import TINY

EVAL = ["--attacks", "none", "--corruptions", "none", "--device", "cpu", "--quiet"]


def _vit_weights(tmp_path):
    import timm
    import torch
    path = tmp_path / "vit.pt"
    torch.save(timm.create_model("test_vit", num_classes=3, in_chans=1, img_size=16).state_dict(),
               path)
    return path


def _run_with(run, tmp_path, **config):
    """A copy of ``run`` whose config.json has ``config`` (a damaged or edited run)."""
    copy = tmp_path / f"edited-{'-'.join(config)}"
    shutil.copytree(run, copy)
    path = copy / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return copy


def _cases(tmp_path, run):
    """name -> (the command's words after `classify`, what its one line says)."""
    import torch
    vit = _vit_weights(tmp_path)
    torch.save({"a": 1, "b": "text"}, tmp_path / "notstate.pt")
    import timm  # a test_resnet without its head: the weights fit, the class count is unknown
    body = {k: v for k, v in timm.create_model("test_resnet").state_dict().items()
            if not k.startswith("fc.")}
    torch.save(body, tmp_path / "body.pt")
    gan = tmp_path / "gan"
    (gan / "checkpoints").mkdir(parents=True)
    (gan / "config.json").write_text(json.dumps({"preset": "digits-dcgan", "steps": 2}))
    torch.save({"G": {}}, gan / "checkpoints" / "latest.pt")
    out = ["--out", str(tmp_path / "o")]
    model = ["--model", "test_resnet", "--image-size", "16"]
    return {
        "weights of another model": (
            ["train", *TINY, "--steps", "1", *out, "--pretrained-file", str(vit)],
            f"weights file {vit} does not fit timm model 'test_resnet': "),
        "no state dict": (
            ["train", *TINY, "--steps", "1", *out, "--pretrained-file",
             str(tmp_path / "notstate.pt")],
            f"{tmp_path / 'notstate.pt'} is not a state dict: expected a mapping of parameter "
            f"names to tensors"),
        "a ViT's patches": (
            ["train", *TINY, "--steps", "1", *out, "--model", "test_vit", "--image-size", "15"],
            "--image-size 15: model 'test_vit' cannot take 15x15 inputs (Input height (15) should "
            "be divisible by patch size (16).); give an --image-size the model takes"),
        "another program's run": (
            ["eval", str(gan), *EVAL],
            f"{gan} does not hold a classifier run: config.json lacks model, num_classes, "
            f"channels, mean, std"),
        "a run's unknown model": (
            ["eval", str(_run_with(run, tmp_path, model="resnet_nope")), *EVAL],
            "unknown timm model 'resnet_nope'; close matches: "),
        "a run's normalisation": (
            ["eval", str(_run_with(run, tmp_path, mean=[0.5, 0.5, 0.5])), *EVAL],
            "mean/std need 1 value(s) (one per input channel); got mean=[0.5, 0.5, 0.5]"),
        "eval weights of another model": (
            ["eval", *model, "--checkpoint", str(vit), "--num-classes", "3", *out, *EVAL],
            f"weights file {vit} does not fit timm model 'test_resnet': "),
        "no class count": (  # (a ViT's weights: they do not fit, test_eval_data_lines.py)
            ["eval", *model, "--checkpoint", str(tmp_path / "body.pt"), *out, *EVAL],
            "cannot tell the number of classes of 'test_resnet' from its weights; give "
            "--num-classes N"),
        "pretrained without EMA": (
            ["eval", *model, "--pretrained", "--no-ema", *out, *EVAL],
            "--no-ema takes a training checkpoint's raw weights, and --pretrained weights of "
            "'test_resnet' are one set; drop --no-ema"),
    }


@pytest.mark.parametrize("case", ["weights of another model", "no state dict", "a ViT's patches",
                                  "another program's run", "a run's unknown model",
                                  "a run's normalisation", "eval weights of another model",
                                  "no class count", "pretrained without EMA"])
def test_a_users_mistake_is_one_line(case, trained_run, tmp_path, capsys):
    words, line = _cases(tmp_path, trained_run)[case]
    assert main(["classify", *words]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"robustrep classify {words[0]}: error: {line}"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before a run or report folder was made
