"""Names the command line reads before importing torch (the modules that use them re-export
them): GAN loss kinds and autocast choices."""

LOSSES = ("ns", "hinge", "ls", "wasserstein")
AMP_CHOICES = ("off", "bf16", "fp16")
