"""The OOD program: score robustrep-trained classifiers with pytorch-ood's detectors.

``robustrep ood score`` (:mod:`.score`) fits and scores detectors on one run;
``robustrep ood bench`` (:mod:`.bench`) compares regularizers on the built-in digits split.
The pieces: :mod:`.data_specs` (the dataset names), :mod:`.datasets` (ID/OOD sets built from
them), :mod:`.openood` (OpenOOD v1.5's lists), :mod:`.set_checks` (sets that would measure
nothing), :mod:`.extract` (one streaming pass per dataset), :mod:`.detectors` (the registry read
from ``pytorch_ood.detector``) with :mod:`.detector_params` (``--param`` and its checks),
:mod:`.outputs` (a score's files), :mod:`.bench_training` (a bench's classify runs),
:mod:`.bench_plan` (its checks before training), :mod:`.bench_records` (an earlier bench's rows
kept), :mod:`.bench_tables` (the bench's tables and plots) and :mod:`.relay` (a bench run's
training progress, read from its log).
"""
