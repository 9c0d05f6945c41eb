"""``--data-root`` given where no data is read from a folder: a run, or a model from elsewhere,
of the built-in digits data (sklearn's, in memory).

``classify train`` refuses it through its config (``option_checks.ONLY_WITH``); the programs
that read a trained classifier (``classify eval``, ``ood score``) took it and went on without a
word, or refused it only once the model had loaded (pretrained weights fetched first). They call
:func:`check_data_root` before the model loads, with the one line both say.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robustrep.tasks.common.errors import UserError
from robustrep.tasks.common.options import CLASSIFIER_DATASETS, ROOTED_DATASETS
from robustrep.tasks.common.runfiles import saved_option


def check_data_root(data_root: str | None, run: str | Path | None,
                    model_dataset: str | None = None, *, also: str = "",
                    model_choices: Sequence[str] | None = None) -> None:
    """Refuse ``data_root`` for a classifier of data read from no folder: the run ``run``
    (its config.json's dataset) or, with ``model_dataset``, a model from elsewhere given with
    ``--dataset model_dataset``. ``also``: what else reads ``--data-root`` in the calling
    program (which has made sure that nothing of it is asked for); ``model_choices``: the
    ``--dataset`` values of ``--model`` that the line offers (default: every dataset a run
    may be trained on from a folder). An unknown dataset is left to the run's reader."""
    if data_root is None:
        return
    rooted = ROOTED_DATASETS
    dataset = model_dataset if model_dataset is not None else saved_option(run, "dataset")
    if dataset not in CLASSIFIER_DATASETS or dataset in rooted:
        return
    if model_dataset is not None:
        choices = [d for d in (model_choices or rooted) if d in rooted]
        more = f", or to {also}" if also else ""
        raise UserError(f"--data-root applies only with --dataset {' or '.join(choices)}{more} "
                        f"(dataset is {dataset!r}, built in); drop it or set that option")
    more = f", and to {also}" if also else ""
    raise UserError(f"--data-root: {run} was trained on the built-in {dataset} data, which is "
                    f"read from no folder; drop --data-root (it applies to runs on "
                    f"{', '.join(rooted)}{more})")
