"""The classify program's named presets (``--preset``): the option values a run starts from,
before ``--config FILE`` and flags (``tasks.common.config.resolve_config``). Apart from
``config.py`` so that the recipes read as one list, as the GAN program's (``tasks/gan/presets.py``).

- ``digits`` (the default run), ``digits-ood`` (the OOD program's in-distribution classifier)
  and ``smoke`` (tests) fit a CPU budget;
- ``cifar10``/``cifar100``: the usual 32x32 recipe (crop + flip, SGD, cosine);
- ``digits-fgsm``: fast adversarial training (Wong et al. 2020); ``digits-mix``: Mixup + CutMix
  as timm's recipe switches between them;
- ``cifar10-wrn-uos``: AdaptiveMix's classifier as its reference code trains it
  (WentianZhang-ML/AdaptiveMix ``classification/``), and ``digits-uos`` its head on a CPU.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The default run: built-in digits, a small ResNet, a few CPU minutes.
    "digits": {"dataset": "digits", "steps": 300, "batch_size": 64, "lr": 0.05},
    # The in-distribution classifier of the OOD program: digits 0-4 only.
    "digits-ood": {"dataset": "digits", "classes": [0, 1, 2, 3, 4], "steps": 300},
    # Tiny, for tests and smoke runs.
    "smoke": {"model": "test_resnet", "steps": 4, "batch_size": 16, "eval_every": 0,
              "ckpt_every": 2, "log_every": 1},
    # CIFAR-10 from a local root, the usual 32x32 recipe (crop + flip, SGD, cosine).
    "cifar10": {"dataset": "cifar10", "image_size": 32, "augment": True, "steps": 39000,
                "batch_size": 128, "lr": 0.1, "eval_every": 2000, "ckpt_every": 2000},
    "cifar100": {"dataset": "cifar100", "image_size": 32, "augment": True, "steps": 39000,
                 "batch_size": 128, "lr": 0.1, "eval_every": 2000, "ckpt_every": 2000},
    # Fast adversarial training (Wong et al. 2020): FGSM with random start, eps 8/255.
    "digits-fgsm": {"dataset": "digits", "reg": "fgsm", "steps": 300},
    # Mixup + CutMix as timm's recipe switches between them, with label smoothing.
    "digits-mix": {"dataset": "digits", "reg": "mixup,cutmix", "label_smoothing": 0.1},
    # AdaptiveMix's classifier as its reference code trains it (WentianZhang-ML/AdaptiveMix
    # classification/): WRN-28-10 with the frozen orthogonal UoS head, MSE shrinkage, plain
    # momentum SGD 0.1 (torch.optim.SGD, no Nesterov) with weight decay 5e-4 on every parameter,
    # x0.2 at 60/120/160 of 200 epochs (391 steps each at batch 128), crop + flip; no final
    # BN-ReLU and no dropout (Wide_ResNet_orthognal's defaults).
    "cifar10-wrn-uos": {"dataset": "cifar10", "model": "wrn28_10", "head": "uos",
                        "reg": "adaptivemix", "am_mode": "reference", "image_size": 32,
                        "augment": True, "steps": 78200, "batch_size": 128,
                        "optimizer": "momentum", "lr": 0.1, "momentum": 0.9,
                        "weight_decay": 5e-4, "wd_all": True, "final_act": False,
                        "drop_rate": 0.0,
                        "schedule": "multistep", "milestones": [0.3, 0.6, 0.8], "lr_decay": 0.2,
                        "mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010],
                        "eval_every": 2000, "ckpt_every": 2000},
    # The same head on CPU in under a minute (26 s on 2 cores, docs/classify.md): WRN-16-2 at
    # 16x16 on digits 0-4 (the OOD split).
    "digits-uos": {"dataset": "digits", "classes": [0, 1, 2, 3, 4], "model": "wrn16_2",
                   "head": "uos", "image_size": 16, "steps": 300, "lr": 0.1,
                   "schedule": "multistep"},
}
