"""create_classifier (robustrep.tasks.common.classifier): timm models by name, with local
pretrained weights checked before timm sees them."""

import pytest
import timm
import torch
from torch import nn

from robustrep.tasks.cli import main
from robustrep.tasks.common.classifier import check_input_size, create_classifier
from robustrep.tasks.common.config import ConfigError


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError) as err:
        create_classifier("resnet10", 3)
    msg = str(err.value)
    assert "unknown timm model 'resnet10'" in msg and "resnet10t" in msg
    assert "timm.list_models" in msg


def test_pretrained_from_local_file_reinitialises_head(tmp_path):
    torch.manual_seed(1)
    source = timm.create_model("test_resnet", num_classes=7)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    clf = create_classifier("test_resnet", 5, in_chans=3, pretrained_file=path)
    got, want = clf.model.state_dict(), source.state_dict()
    head = clf.model.pretrained_cfg["classifier"] + "."
    trunk = [k for k in want if not k.startswith(head)]
    assert trunk and all(torch.equal(got[k], want[k]) for k in trunk)
    assert clf.model.get_classifier().weight.shape == (5, source.num_features)


def test_pretrained_file_adapts_to_one_channel(tmp_path):
    source = timm.create_model("test_resnet", num_classes=7)
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": source.state_dict()}, path)  # a checkpoint dict is accepted too
    clf = create_classifier("test_resnet", 3, in_chans=1, pretrained_file=path)
    conv = clf.model.pretrained_cfg["first_conv"] + ".weight"
    assert torch.allclose(clf.model.state_dict()[conv], source.state_dict()[conv].sum(1, True))


def test_a_training_checkpoint_gives_its_ema_weights_as_timm_does_and_says_so(tmp_path, capsys):
    # timm's load_checkpoint(use_ema=True), its default, takes state_dict_ema over state_dict;
    # the choice was silent
    torch.manual_seed(1)
    raw = timm.create_model("test_resnet", num_classes=5).state_dict()
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in raw.items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": raw, "state_dict_ema": ema, "epoch": 3}, path)
    conv = "conv1.0.weight"
    got = create_classifier("test_resnet", 5, pretrained_file=path).model.state_dict()
    assert torch.equal(got[conv], ema[conv])
    assert (f"note: {path} holds state_dict_ema and state_dict; state_dict_ema, the EMA "
            f"weights, is loaded (as timm's load_checkpoint does by default") in \
        capsys.readouterr().err
    got = create_classifier("test_resnet", 5, pretrained_file=path, use_ema=False).model
    assert torch.equal(got.state_dict()[conv], raw[conv]) and capsys.readouterr().err == ""
    torch.save({"state_dict": raw, "epoch": 3}, path)
    got = create_classifier("test_resnet", 5, pretrained_file=path).model.state_dict()
    assert torch.equal(got[conv], raw[conv]) and capsys.readouterr().err == ""


def test_pretrained_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_classifier("test_resnet", 3, pretrained_file=tmp_path / "nope.pth")


def test_pretrained_file_with_nan_or_a_folder_is_named(tmp_path):
    """NaN weights trained on gave a NaN loss at step 1 naming no file; a folder was said not
    to exist. An upper-case .SAFETENSORS is read as safetensors."""
    from safetensors.torch import save_file

    from robustrep.tasks.common.errors import CheckpointError
    sd = timm.create_model("test_resnet").state_dict()
    key = next(k for k, v in sd.items() if v.is_floating_point())
    sd[key] = torch.full_like(sd[key], float("nan"))
    save_file(sd, tmp_path / "NAN.SAFETENSORS")
    torch.save(sd, tmp_path / "nan.pth")
    for name in ("NAN.SAFETENSORS", "nan.pth"):
        with pytest.raises(CheckpointError, match=f"{tmp_path / name} holds NaN values "
                                                  f"\\({key}\\)"):
            create_classifier("test_resnet", 3, pretrained_file=tmp_path / name)
    with pytest.raises(FileNotFoundError, match="is a folder; give the weights file in it"):
        create_classifier("test_resnet", 3, pretrained_file=tmp_path)
    # an inf in a parameter: was a NaN loss at step 1 (classify train) or a refusal of the
    # logits (classify eval) naming no file
    sd = timm.create_model("test_resnet").state_dict()
    sd["layer1.0.conv1.weight"][0, 0, 0, 0] = float("inf")
    torch.save(sd, tmp_path / "inf.pth")
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'inf.pth'} holds infinite values "
                                              r"\(layer1\.0\.conv1\.weight\)"):
        create_classifier("test_resnet", 3, pretrained_file=tmp_path / "inf.pth")
    # weights cast to integers: were cast back (nearly all zero) and scored as a constant model
    sd = {k: v.long() for k, v in timm.create_model("test_resnet").state_dict().items()}
    torch.save(sd, tmp_path / "int.pth")
    with pytest.raises(CheckpointError,
                       match=f"{tmp_path / 'int.pth'} holds torch.int64 values for the parameter "
                             r"conv1\.0\.weight \(and \d+ more\)"):
        create_classifier("test_resnet", 3, pretrained_file=tmp_path / "int.pth")


def test_a_pickle_of_objects_is_named_unsafe_whatever_its_format(tmp_path):
    """A plain (non-zip) pickle naming a global was called "truncated or corrupt"; it is refused
    as unsafe, and nothing in it runs."""
    import os
    import pickle

    from robustrep.tasks.common.errors import CheckpointError
    marker = tmp_path / "RAN"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"w": Payload()}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"holds Python objects \((posix|nt|os)\.system\)"):
        create_classifier("test_resnet", 3, pretrained_file=tmp_path / "legacy.pth")
    (tmp_path / "plain.pth").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError, match="or a pickle of another kind"):
        create_classifier("test_resnet", 3, pretrained_file=tmp_path / "plain.pth")
    assert not marker.exists()


def test_pretrained_file_of_another_model_is_refused(tmp_path):
    path = tmp_path / "convnext.pth"
    torch.save(timm.create_model("test_convnext").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit timm model 'test_resnet'"):
        create_classifier("test_resnet", 3, pretrained_file=path)
    # Same keys, wrong shapes (a wider stem):
    sd = timm.create_model("test_resnet").state_dict()
    key = next(k for k in sd
               if k.endswith("weight") and sd[k].dim() == 4 and not k.startswith("conv1"))
    sd[key] = torch.zeros(sd[key].shape[0] + 1, *sd[key].shape[1:])
    torch.save(sd, path)
    with pytest.raises(ValueError, match="wrong shapes"):
        create_classifier("test_resnet", 3, pretrained_file=path)


def test_the_input_size_check_runs_a_model_the_meta_device_cannot(monkeypatch):
    class ReadsValues(nn.Module):  # .item() has no meta form; fine on real tensors
        def __init__(self, limit):
            super().__init__()
            self.limit, self.w = limit, nn.Parameter(torch.ones(1))

        def forward(self, x):
            if x.shape[-1] < self.limit:
                raise RuntimeError("input too small")
            return x.mean() * self.w.item()

    check_input_size(ReadsValues(4), 3, 8, "m")
    with pytest.raises(ConfigError, match=r"--image-size 2: model 'm' cannot take 2x2 inputs "
                                          r"\(input too small\)"):
        check_input_size(ReadsValues(4), 3, 2, "m")
    with torch.device("meta"):  # the dry run's model: the meta device's limit is not a refusal
        check_input_size(ReadsValues(4), 3, 8, "m")


def test_an_empty_meta_output_is_checked_for_real_or_refused_in_a_dry_run():
    # torch 2.5's meta convolution gave a kernel larger than its input an empty output where
    # the CPU refuses it: the check passed and the run failed at step 1
    class Shrinks(nn.Module):
        def __init__(self, fails_for_real: bool):
            super().__init__()
            self.fails, self.w = fails_for_real, nn.Parameter(torch.ones(1))
            self.stem = nn.Identity()

        def forward(self, x):
            if not x.is_meta and self.fails:
                raise RuntimeError("Kernel size can't be greater than actual input size")
            return self.stem(x[..., :0]).sum((2, 3)) * self.w

    with pytest.raises(ConfigError, match=r"cannot take 8x8 inputs \(Kernel size can't"):
        check_input_size(Shrinks(True), 3, 8, "m")
    check_input_size(Shrinks(False), 3, 8, "m")  # the real forward decides: it runs
    with torch.device("meta"), pytest.raises(ConfigError, match=r"8x8 inputs \(stem gives an "
                                                                  r"empty output\)"):
        check_input_size(Shrinks(False), 3, 8, "m")


def test_eval_and_ood_refuse_an_image_size_the_model_cannot_take(tmp_path, capsys):
    weights = tmp_path / "w.pt"
    torch.save(timm.create_model("test_convnext", num_classes=10).state_dict(), weights)
    for command in (["classify", "eval", "--attacks", "none"], ["ood", "score"]):
        out = tmp_path / command[0]
        assert main([*command, "--model", "test_convnext", "--checkpoint", str(weights),
                     "--image-size", "8", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("--image-size 8: model 'test_convnext' cannot take 8x8 inputs "
                            "(Calculated padded input size per channel: (1 x 1). Kernel size: "
                            "(2 x 2). Kernel size can't be greater than actual input size); "
                            "give a larger --image-size") and "\n" not in err
        assert not out.exists()


def test_a_folder_given_as_a_weights_file_names_the_command_to_paste(tmp_path):
    folder = tmp_path / "my export"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=r"--model '.*/my export' --pretrained$"):
        create_classifier("test_resnet", 3, pretrained_file=folder)
