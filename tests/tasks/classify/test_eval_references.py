"""`classify eval`'s numbers against independent references, and what a user's model or files
can get wrong (a logits tuple, CIFAR-C files that are not the evaluated images)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustrep.data.cifar_c import CIFAR_C_CORRUPTIONS
from robustrep.tasks.classify.cifar_c_checks import check_cifar_c
from robustrep.tasks.classify.eval_metrics import corruption_accuracy, evaluate_model
from robustrep.tasks.common.errors import DataError, UserError

from .conftest import Threshold


def _model_and_data(n=12, channels=1, size=16):
    torch.manual_seed(0)  # a linear model: its answers move with the noise and the attacks
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, 3)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, channels, size, size, generator=g)
    with torch.no_grad():  # the model's own answers: clean accuracy 1, the attacks can bite
        y = model(x).argmax(1)
    return model, x, y


def _l2(t):
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def reference_l2_pgd(model, x, y, eps, alpha, steps, gen):
    """L2 PGD written independently (Madry et al. 2018): a uniform start in the ball (Gaussian
    direction, radius eps U^(1/d)), normalised-gradient steps, projection, clamp to [0, 1]."""
    direction = torch.randn(x.shape, generator=gen)
    radius = eps * torch.rand(len(x), generator=gen) ** (1 / x[0].numel())
    x_adv = (x + direction / _l2(direction) * radius.view(-1, 1, 1, 1)).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), x_adv)
        delta = x_adv.detach() + alpha * grad / _l2(grad).clamp_min(1e-12) - x
        x_adv = (x + delta * (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1)).clamp(0, 1)
    return x_adv.detach()


def test_l2_pgd_in_the_report_matches_an_independent_reference():
    """RobustBench's convention: eps in [0, 1] pixels, the normalisation inside the model."""
    model, x, y = _model_and_data()
    eps, steps = 0.3, 5
    report = evaluate_model(model, [(x, y)], attacks=("pgd",), norm="L2", eps=eps,
                            pgd_steps=(steps,), corruptions=(), n_attack=None, seed=4,
                            attack_batch=len(x))
    x_adv = reference_l2_pgd(model, x, y, eps, 2.5 * eps / steps, steps,
                             torch.Generator().manual_seed(4))
    with torch.no_grad():
        robust = float((model(x_adv).argmax(1) == y).float().mean())
    assert 0 < robust < 1  # the check bites
    assert report["adversarial"]["pgd5"] == pytest.approx(robust)
    assert report["robust"]["pgd5"]["convention"].endswith("L2 eps=0.3")
    assert report["attack_batch"] == 12  # recorded: AutoAttack's draws follow the batches


@pytest.mark.parametrize("kind", ["tuple", "dict"])
def test_a_model_returning_a_tuple_or_dict_is_refused_with_the_wrapper(kind):
    # Was: AttributeError "'tuple' object has no attribute 'float'" from inside predict
    model, x, y = _model_and_data(4)

    class HFStyle(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, v):
            logits = self.net(v)
            return (logits, None) if kind == "tuple" else {"logits": logits, "hidden": None}

    pick = "out\\[0\\]" if kind == "tuple" else "out\\['logits'\\]"
    with pytest.raises(TypeError, match=f"must return a logits tensor .* returns {pick} of"):
        evaluate_model(HFStyle(), [(x, y)], attacks=(), corruptions=())


def test_corruption_noise_is_the_same_for_any_batch_size():
    # Was: impulse noise's two draws interleaved per batch, so --batch-size changed the
    # corruption accuracy (digits, severity 5: 0.894 at batch 64, 0.916 at 256)
    model, x, y = _model_and_data(n=100)
    accs = set()
    for batch in (7, 64, 100):
        data = list(zip(x.split(batch), y.split(batch)))
        for forward in (None, 5, 1000):
            accs.add(corruption_accuracy(model, data, torch.device("cpu"), "impulse_noise", 5,
                                         seed=1, batch_size=forward))
    assert len(accs) == 1 and 0 < accs.pop() < 1


def _cifar_c_files(root, labels, size=32, per_severity=None):
    labels = np.asarray(labels, dtype=np.uint8)[:per_severity]
    np.save(root / "labels.npy", np.tile(labels, 5))
    for name in CIFAR_C_CORRUPTIONS:
        np.save(root / f"{name}.npy", np.zeros((5 * len(labels), size, size, 3), np.uint8))


def test_cifar_c_for_a_model_of_other_channels_or_size_is_refused_before_any_work(tmp_path):
    # Was: a 1-channel model failed with a traceback after the clean pass and the attacks; a
    # model evaluated at 16x16 got a negative relative mCE (32x32 files against 16x16 clean)
    _cifar_c_files(tmp_path, [0, 1, 2, 3])
    run = {"dataset": "cifar10", "channels": 3, "image_size": 32}
    check_cifar_c(run, tmp_path)  # fits
    with pytest.raises(UserError, match=r"files hold RGB images and the model takes 1 chan"):
        check_cifar_c({**run, "channels": 1}, tmp_path)
    with pytest.raises(UserError, match=r"files hold 32x32 images and the clean accuracy is "
                                        r"on 16x16"):
        check_cifar_c({**run, "image_size": 16}, tmp_path)
    np.save(tmp_path / "fog.npy", np.zeros((20, 32, 32), np.uint8))  # no channel axis
    with pytest.raises(DataError, match=r"fog.npy holds uint8 \[20, 32, 32\]; expected the "
                                        r"released layout"):
        check_cifar_c(run, tmp_path)


def test_cifar_c_labels_and_files_that_cannot_be_read_faithfully_are_named(tmp_path):
    # Was: float labels (3.4) truncated to 3 and scored; a [5 N, 1] labels array refused as
    # "not in order"; an unreadable file said "a file is not a readable .npy array"
    run = {"dataset": "cifar10", "channels": 3, "image_size": 32}
    for labels, shape in ((np.tile(np.float32([0.4, 1.4]), 5), "float32 [10]"),
                          (np.zeros((10, 1), np.uint8), "uint8 [10, 1]")):
        _cifar_c_files(tmp_path, [0, 1])
        np.save(tmp_path / "labels.npy", labels)
        with pytest.raises(DataError) as info:
            check_cifar_c(run, tmp_path)
        assert str(info.value) == (
            f"--cifar-c {tmp_path}: labels.npy holds {shape}; expected the released layout, "
            f"integer [5 x N] (uint8, the test labels once per severity)")
    _cifar_c_files(tmp_path, [0, 1])
    (tmp_path / "snow.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r": snow.npy is not a readable .npy array \("):
        check_cifar_c(run, tmp_path)


def test_cifar_c_files_of_other_images_than_the_clean_set_are_refused(tmp_path):
    # Was: files with 2 images per severity were scored against a clean accuracy on 4 (the
    # report said "the first 4 images of each"), and files of other labels (CIFAR-10-C under a
    # cifar100 run) gave an mCE of other images
    x = torch.zeros(4, 3, 32, 32)
    x[1::2] = 1.0
    data = [(x, torch.tensor([0, 1, 0, 1]))]
    _cifar_c_files(tmp_path, [0, 1, 0, 1], per_severity=2)
    with pytest.raises(DataError, match=r"files hold 2 images per severity and the clean "
                                        r"accuracy is on 4.*--max-samples 2"):
        evaluate_model(Threshold(), data, attacks=("pgd",), corruptions=(),
                       cifar_c_root=tmp_path)
    _cifar_c_files(tmp_path, [0, 1, 1, 1])
    with pytest.raises(DataError, match=r"labels.npy does not list the evaluated images' "
                                        r"labels in order \(severity 1, image 2: 1 in the "
                                        r"file, 0 in the data\)"):
        evaluate_model(Threshold(), data, attacks=(), corruptions=(),
                       cifar_c_root=tmp_path)
    _cifar_c_files(tmp_path, [0, 1, 0, 1, 7])  # longer than the clean set: its first rows
    report = evaluate_model(Threshold(), data, attacks=(), corruptions=(),
                            cifar_c_root=tmp_path)
    assert report["cifar_c"]["n"] == 4


def test_a_head_wider_than_the_data_is_noted_and_the_normalisation_shown(tmp_path, monkeypatch,
                                                                         capsys,
                                                                         undrawn_diagrams):
    # Was: 100-class weights scored on the 10 digits without a word (an ImageNet head on
    # CIFAR-10 reads ~0 accuracy); fewer outputs than classes are refused (test_eval_any)
    import timm

    from robustrep.tasks.cli import main
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    torch.save(timm.create_model("test_resnet", num_classes=12, in_chans=1).state_dict(),
               "ck.pth")
    base = ["classify", "eval", "--model", "test_resnet", "--checkpoint", "ck.pth",
            "--image-size", "16", "--attacks", "none", "--corruptions", "--max-samples", "8",
            "--quiet"]
    assert main([*base, "--out", "a"]) == 0
    said = capsys.readouterr()
    assert ("note: the model has 12 outputs and digits 10 classes: its answers 10..11 count "
            "as wrong (weights of a head for other data?)\n") in said.err
    # the normalisation no option gave (timm's config of test_resnet) is in the table too
    assert f"\n{'inputs in [0, 1]; mean, std':<34} 0.5; 0.5\nclean top-1" in said.out
    assert main([*base, "--classes", "0,1,2", "--out", "b"]) == 0  # a subset: the point
    assert "outputs and" not in capsys.readouterr().err


def test_out_of_memory_in_the_evaluation_names_the_batch_size(trained_run, tmp_path,
                                                              monkeypatch, capsys):
    # Was: torch's traceback; AutoAttack's batches hold gradients, so they can fail where the
    # clean pass fitted
    from robustrep.tasks.classify import evaluate
    from robustrep.tasks.cli import main

    def fails(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; "
                                     "79.10 GiB total capacity)\nSee documentation")
    monkeypatch.setattr(evaluate, "evaluate_model", fails)
    args = ["classify", "eval", str(trained_run), "--attacks", "none", "--corruptions",
            "--batch-size", "4096", "--out", str(tmp_path / "e"), "--quiet"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "robustrep classify eval: error: out of memory on cpu with 4096 images at a time (CUDA out "
        "of memory. Tried to allocate 20.00 GiB (GPU 0; 79.10 GiB total capacity)); give a "
        "smaller --batch-size (now 4096)\n")

    def bug(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    monkeypatch.setattr(evaluate, "evaluate_model", bug)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):  # a bug keeps it
        main(args)
