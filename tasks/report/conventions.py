"""What a report's numbers were measured on, said from its runs' own records: the page's
conventions paragraph and the notes under its tables (how many images, which generator, how
often FID was evaluated), so that a changed default in a program shows on the page rather than
contradicting a sentence written beside it."""

from __future__ import annotations

from typing import Any

from robustrep.tasks.report.measured import UNRECORDED
from robustrep.tasks.report.records import clean_images

GRID = "grid modes after the VEEGAN/PacGAN protocol"
ROBUST = ("robust accuracy counts a sample only if it is right both clean and attacked ({radius}, "
          "attack named in the column)")
OOD = ("OOD metrics as `ood score` names them, as fractions (its results.md gives percent), "
       "averaged over {sets}: scores higher = more OOD; fpr95_id_tpr is the share of OOD "
       "samples accepted at the threshold accepting 95% of ID samples (Hendrycks & Gimpel, "
       "OpenOOD v1.0), fpr95_ood_tpr the share of ID samples flagged at the threshold flagging "
       "95% of OOD samples (pytorch-ood, OpenOOD v1.5)")
REST = ("step time is training seconds per step from each run's first log record to its "
        "last (the first log interval, with its warm-up, left out), relative to the baseline of "
        "the same report. Every cell is mean ± sample std over seeds (a cell over fewer than "
        "its setting's runs names their count).")
# what a setting reads when the runs do not record it alike (left out, records._measured_alike)
# or at all: pointed to, not guessed (a radius of 8/255 was stated for runs evaluated at L2 0.5)
UNLIKE = "each run's `settings` in report.json records"

GENERATORS = {"ema": "G-EMA", "G": "G (no EMA)"}


def conventions(records: list[dict[str, Any]]) -> str:
    """The page's conventions paragraph; its GAN part only when the page has digits GAN runs,
    and the classifier's radius, corruptions and OOD sets as its runs recorded them."""
    gan = [r.get("evaluation") or {} for r in records if r["task"] == "gan"]
    settings = [r.get("settings") or {} for r in records if r["task"] == "classify"]
    parts = [_gan_part(gan)] if gan else []
    parts.append(GRID)
    if settings:
        parts += [_robust_part(settings), _corruption_part(settings),
                  OOD.format(sets=_ood_sets(settings))]
    parts.append(REST)
    return "Conventions: " + "; ".join(parts)


def _robust_part(settings: list[dict[str, str]]) -> str:
    radius = _same(settings, "classify eval radius")
    if radius == "none":
        return "robust accuracy: the runs' `classify eval` ran no attack"
    return ROBUST.format(radius=f"{radius} in [0, 1] pixels" if radius not in (None, UNRECORDED)
                         else f"at the radius {UNLIKE}")


def _corruption_part(settings: list[dict[str, str]]) -> str:
    names = _same(settings, "classify eval corruptions")
    if names == "none":
        return "corruption accuracy: none measured (the runs' `classify eval` ran no corruptions)"
    severities = _same(settings, "classify eval severities")
    if names in (None, UNRECORDED) or severities in (None, UNRECORDED):
        return (f"corruption accuracy is the mean over the on-the-fly corruptions and severities "
                f"of `classify eval` {UNLIKE}")
    return (f"corruption accuracy is the mean over `classify eval`'s {len(names.split(', '))} "
            f"on-the-fly corruptions ({names}) at severities {severities}")


def _ood_sets(settings: list[dict[str, str]]) -> str:
    sets = _same(settings, "ood score OOD sets")
    if sets in (None, UNRECORDED, "none"):
        return f"the OOD sets {UNLIKE}"
    return f"the OOD sets {sets}"


def _gan_part(evals: list[dict[str, Any]]) -> str:
    """FID/KID/precision-recall as the runs' final records measured them; a count the runs do
    not all record alike is not stated, but pointed to (report.json's ``evaluation``)."""
    # records before pr_samples_real judged equal counts: pr_samples of the reals too
    evals = [{"pr_samples_real": e.get("pr_samples"), **e} for e in evals]
    known = {k: _same(evals, k) for k in ("num_samples", "num_real", "eval_every", "kid_subsets",
                                           "kid_subset_size", "pr_samples", "pr_samples_real",
                                           "pr_k")}
    text = ("FID/KID/precision-recall on digits-CNN features (comparable only within this "
            "feature network, not with Inception FIDs)")
    if None in known.values():
        return (f"{text}; samples, subsets and evaluation steps are not recorded alike by every "
                f"run: each run's `evaluation` in report.json")
    # runs of versions before training records named it: the samples, unnamed
    generator = GENERATORS.get(_same(evals, "generator"), "generated")
    every = known["eval_every"]  # 0: only the final evaluation
    when = f"every {every} steps and at the last" if every else "at the last step only"
    return (f"{text} of {known['num_samples']:,} {generator} samples against the "
            f"{known['num_real']:,} real digits, evaluated {when} (steps to FID ≤ x: the "
            f"first of those evaluations at or under x); KID over {known['kid_subsets']} random "
            f"subsets of {known['kid_subset_size']:,} a side (training's count; `gan eval` "
            f"takes 100); precision/recall (k = {known['pr_k']}) of {known['pr_samples']:,} "
            f"samples against {_reals(known['pr_samples_real'], known['num_real'])}")


def _reals(n: int, num_real: int) -> str:
    return f"all {n:,} reals" if n == num_real else f"a random {n:,} of the reals"


def _same(evals: list[dict[str, Any]], key: str) -> Any:
    """The value every record holds for ``key``, or None (missing somewhere, or unlike)."""
    values = {e.get(key) for e in evals}
    return values.pop() if len(values) == 1 else None


def table_notes(records: list[dict[str, Any]]) -> dict[str, str]:
    """A line under a table, by task: the classifier table's images (its runs' ``classify eval
    --max-samples``; those evaluated otherwise were left out, records._measured_alike)."""
    classify = [r for r in records if r["task"] == "classify"]
    if not classify:
        return {}
    first = classify[0]
    note = (f"Clean accuracy, ECE and corruption accuracy are over "
            f"{first.get('clean_images') or clean_images({})} of each run "
            f"(`classify eval --max-samples`); robust accuracy: "
            f"{first.get('evaluated', 'unrecorded')}.")
    settings = [r.get("settings") or {} for r in classify]
    if _same(settings, "classify eval corruptions") == "none":  # its cells "–", said why
        note += (" Corruption accuracy –: the runs' `classify eval` ran no corruptions "
                 "(`--corruptions none`).")
    return {"classify": note}
