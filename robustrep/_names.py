"""Names the command line reads before importing torch (the modules that use them re-export
them): GAN loss kinds, autocast choices, attacks and threat models, corruptions and severities.

``CORRUPTIONS`` repeats the keys of :data:`robustrep.corruptions.CORRUPTIONS` (a dict of the
functions, which needs torch); ``tests/test_names.py`` keeps the two identical.
"""

LOSSES = ("ns", "hinge", "ls", "wasserstein")
AMP_CHOICES = ("off", "bf16", "fp16")

ATTACKS = ("autoattack", "apgd-ce", "apgd-t", "fab-t", "square", "pgd", "fgsm")
# The printed names of the attacks: AutoAttack's components as its authors write them.
ATTACK_NAMES = {"autoattack": "AutoAttack", "apgd-ce": "APGD-CE", "apgd-t": "APGD-T",
                "fab-t": "FAB-T", "square": "Square", "pgd": "PGD", "fgsm": "FGSM"}
NORMS = ("Linf", "L2")

SEVERITIES = (1, 2, 3, 4, 5)
# The 15 benchmark corruptions, in the reference's order (and the released files' names).
BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
             "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
             "elastic_transform", "pixelate", "jpeg_compression")
# The on-the-fly corruptions of robustrep.corruptions, in its order.
CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "brightness",
               "contrast", "pixelate", "jpeg_compression", "gaussian_blur", "speckle_noise",
               "saturate")
