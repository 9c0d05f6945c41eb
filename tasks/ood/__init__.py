"""The OOD program: score robustrep-trained classifiers with pytorch-ood's detectors.

``robustrep ood score`` (:mod:`.score`) fits and scores detectors on one run;
``robustrep ood bench`` (:mod:`.bench`) compares regularizers on the built-in digits split.
The pieces: :mod:`.datasets` (ID/OOD sets by name), :mod:`.extract` (one streaming pass per
dataset), :mod:`.detectors` (the registry read from ``pytorch_ood.detector``) with
:mod:`.detector_params` (``--param`` and its checks), :mod:`.outputs` (a score's files),
:mod:`.bench_tables` (the bench's tables and plots) and :mod:`.relay` (a bench run's training
progress, read from its log).
"""
