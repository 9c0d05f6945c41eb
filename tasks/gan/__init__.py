"""The GAN program: train, evaluate and sample GANs with the shared regularizers.

- :mod:`.config`: :class:`~.config.GanConfig` (every option), with :mod:`.config_checks`
  (the rules between options); :mod:`.presets`: ``PRESETS``.
- :mod:`.models`: DCGAN (32/64), SNGAN-ResNet 32, MLP G/D; every D is a ``FeatureSplit``.
- :mod:`.data`: the preset's dataset in [-1, 1] as a resumable batch stream.
- :mod:`.regs`: ``--reg`` parsing and the core regularizer objects of a run.
- :mod:`.steps`: the D and G steps in named phases (``d_inputs``, ``d_loss_adv``, ``d_loss_mix``,
  ``d_penalties``, ``d_step``, ``g_step``).
- :mod:`.train`: ``robustrep gan train`` (loop, checkpoints, resume, NaN stop, multi-process).
- :mod:`.evaluate`: ``robustrep gan eval`` (FID/KID/precision-recall, 2-D mode statistics).
- :mod:`.sample`: ``robustrep gan sample``; :mod:`.cli`: the command line.
"""
