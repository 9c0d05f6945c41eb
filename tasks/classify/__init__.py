"""The classify program: fine-tune timm classifiers with the shared regularizers; measure them.

- :class:`~robustrep.nets.classifier.Classifier` (a timm model with input normalisation inside,
  seen as ``head(features(x))``), :func:`~robustrep.tasks.common.classifier.create_classifier`
  (by name, with pretrained weights) and :func:`~robustrep.tasks.common.classifier_run.load_run`
  (run folder -> classifier, config; used by the OOD program).
- :mod:`.config`: the options dataclass and presets; :mod:`.data`: datasets, checks, batch order;
  :mod:`.policies`: timm's augmentation and erasing policies.
- :mod:`.task`: the training step's loss and its regularizers; :mod:`.optim`: the optimizer and
  schedule, as timm's ``train.py`` builds them; :mod:`.train`: ``robustrep classify train``,
  with ``tasks/common/train_clock.py`` timing its steps (as gan's).
- :mod:`.evaluate`: ``robustrep classify eval``, with :mod:`.eval_metrics` measuring a model on a
  loader, :mod:`.attacks` planning and timing the attacks, :mod:`.cifar_c_checks` checking the
  ``--cifar-c`` files, :mod:`.report_files` writing the report folder and :mod:`.eval_table`
  the table it prints; :mod:`.export`: ``robustrep classify export``, a run's timm model as a
  file ``timm.create_model(checkpoint_path=)`` loads; :mod:`.cli`: the command line.
"""

__all__ = ["Classifier", "create_classifier", "load_run"]


def __getattr__(name: str):
    # loaded on use, so the command line parses its arguments before importing torch and timm
    if name == "Classifier":
        from robustrep.nets.classifier import Classifier
        return Classifier
    if name == "create_classifier":
        from robustrep.tasks.common.classifier import create_classifier
        return create_classifier
    if name == "load_run":
        from robustrep.tasks.common.classifier_run import load_run
        return load_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
