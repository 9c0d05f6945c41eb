"""The driver of the official AutoAttack code (robustrep/metrics/autoattack.py): progress from
inside a batch, the components it runs, and AutoAttack's warnings collected."""

import pytest
import torch
from torch import nn

from .test_robust import tiny_data, tiny_model

pyautoattack = pytest.importorskip("pyautoattack")



# --- progress from inside a batch ---------------------------------------------------------------

def _small_adversary(model: nn.Module, attacks: list[str], eps: float = 8 / 255):
    """AutoAttack's four components with few iterations (the loops of the standard version)."""
    adversary = pyautoattack.AutoAttack(model, norm="Linf", eps=eps, version="custom",
                                        attacks=attacks, seed=0, device="cpu")
    adversary.verbose = False
    adversary.apgd.n_restarts = 1
    adversary.apgd.n_iter, adversary.apgd_targeted.n_iter, adversary.fab.n_iter = 7, 5, 4
    adversary.apgd_targeted.n_target_classes = adversary.fab.n_target_classes = 3
    adversary.square.n_queries = 11
    return adversary


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class _OneSecondPerCall(nn.Module):
    """The tiny model, each call taking one second of a fake clock."""

    def __init__(self, clock: _Clock):
        super().__init__()
        self.net, self.clock = tiny_model(), clock

    def forward(self, x):
        self.clock.now += 1.0
        return self.net(x)


def _reports(adversary, model, x, y, clock=None):
    """Run ``adversary`` with progress; the reports, each with the clock when it came."""
    from robustrep.metrics.autoattack import _report_batches
    seen = []
    clock = clock or (lambda: 0.0)
    _report_batches(adversary, model, torch.device("cpu"),
                    lambda s: seen.append({**s, "at": clock()}), len(y), len(y), clock=clock)
    x_adv, y_adv = adversary.run_standard_evaluation(x, y, batch_size=3)
    return seen, x_adv, y_adv


@pytest.mark.parametrize("attack", ["apgd-ce", "apgd-t", "fab-t", "square"])
def test_autoattack_reports_from_inside_each_batch_every_few_seconds(attack):
    # Was: one report per perturb call, which is one batch: FAB-T's 9 x 100 iterations and
    # Square's 5000 queries showed nothing for 15 minutes on a CPU
    from robustrep.metrics.autoattack import REPORT_EVERY_S
    clock = _Clock()
    model = _OneSecondPerCall(clock).eval()
    x, y = tiny_data(model.net, n=6)
    seen, _, _ = _reports(_small_adversary(model, [attack], eps=1e-6), model, x, y, clock)
    inside = [s for s in seen if s["done"] not in (3, 6)]
    first = [s for s in inside if s["done"] < 3]
    assert len(first) >= 2 and len(inside) - len(first) >= 2  # several in each batch
    assert all(0 < s["done"] < 6 and s["attack"] == attack for s in inside)
    done = [s["done"] for s in seen]
    assert done == sorted(done) and done[-1] == 6  # the bar only moves forwards
    # the model took 1 s a call: no two reports closer than REPORT_EVERY_S, but a batch's end
    assert all(b["at"] - a["at"] >= REPORT_EVERY_S for a, b in zip(seen, seen[1:])
               if b["done"] not in (3, 6))
    assert all(s["total"] == 6 and s["robust"] == 6 for s in inside)  # none fooled


def test_the_calls_a_batch_takes_are_pyautoattacks_loops(monkeypatch):
    # every model call reported: a batch's calls equal the count the share is estimated from
    from robustrep.metrics import autoattack
    monkeypatch.setattr(autoattack, "REPORT_EVERY_S", 0.0)
    model = tiny_model()
    x, y = tiny_data(model, n=6)
    for attack, calls in (("apgd-ce", 1 + 8), ("apgd-t", 1 + 3 * 7), ("fab-t", 1 + 3 * 11),
                          ("square", 1 + 13)):
        adversary = _small_adversary(model, [attack], eps=1e-6)  # nothing fooled: every loop
        seen, _, _ = _reports(adversary, model, x, y)
        assert len(seen) == 2 * (calls + 1), attack  # two batches of 3, each call and its end
        # the share after each call of the first batch: calls so far over the calls it takes
        # (the last one 0.99: a batch is done when perturb returns)
        shares = [min(k / calls, 0.99) * 3 for k in range(1, calls + 1)]
        assert [s["done"] for s in seen[:calls + 1]] == pytest.approx(shares + [3]), attack


@pytest.mark.parametrize("attacks", [["apgd-ce"], ["apgd-t"], ["fab-t"], ["square"],
                                     ["apgd-ce", "apgd-t", "fab-t", "square"]])
def test_progress_leaves_the_attacks_bit_identical(monkeypatch, attacks):
    # the wrappers count calls and read a clock: no random draw, no tensor touched
    from robustrep.metrics import autoattack
    monkeypatch.setattr(autoattack, "REPORT_EVERY_S", 0.0)  # they report at every call
    model = tiny_model(hidden=64)  # APGD-T's and Square's results follow their random draws
    x, y = tiny_data(model, n=9)
    plain_x, plain_y = _small_adversary(model, attacks).run_standard_evaluation(x, y,
                                                                                batch_size=3)
    seen, x_adv, y_adv = _reports(_small_adversary(model, attacks), model, x, y)
    assert torch.equal(x_adv, plain_x) and torch.equal(y_adv, plain_y)
    assert len(seen) > 3 * len(attacks) and bool((plain_y != y).any())  # reports; it bites


# --- what mutation testing found unpinned ---------------------------------------------------------

def test_autoattacks_warnings_are_collected_not_printed(capsys):
    import logging

    from robustrep.metrics.autoattack import _captured_warnings
    logger = logging.getLogger("robustrep-test-autoattack")
    with _captured_warnings(logger) as flags:
        logger.warning("Square found %d more", 2)
        logger.info("not a warning")
    logger.warning("after the run")  # the handler is gone: Python's last resort prints it
    assert flags == ["Square found 2 more"]
    assert "Square" not in capsys.readouterr().err


def test_the_call_count_multiplies_targets_restarts_and_iterations():
    # the standard version runs 1 restart, where / and * agree: count with 2
    from types import SimpleNamespace as NS

    from robustrep.metrics.autoattack import _calls_per_batch, _component_name
    assert _calls_per_batch("apgd", NS(n_restarts=2, n_iter=5)) == 1 + 2 * 6
    assert _calls_per_batch("apgd_targeted", NS(n_target_classes=3, n_restarts=2,
                                                n_iter=5)) == 1 + 3 * 2 * 7
    fab = NS(n_target_classes=3, n_restarts=2, n_iter=4, targeted=True)
    assert _calls_per_batch("fab", fab) == 1 + 3 * 2 * (8 + 3)
    fab.targeted = False  # untargeted FAB: one run per restart, no target to pick
    assert _calls_per_batch("fab", fab) == 1 + 1 * 2 * (8 + 2)
    assert _component_name("fab", fab) == "fab"
    assert _calls_per_batch("square", NS(n_restarts=2, n_queries=10)) == 1 + 2 * 12


def test_four_classes_are_enough_for_apgd_t_and_no_note_is_made():
    from robustrep.metrics.autoattack import aa_attacks
    assert aa_attacks("autoattack", 4) == (["apgd-ce", "apgd-t", "fab-t", "square"], "")
    assert aa_attacks("apgd-t", 4) == (["apgd-t"], "")
    assert aa_attacks("apgd-ce", 3) == (["apgd-ce"], "")
    assert aa_attacks("square", 2) == (["square"], "")
    assert aa_attacks("fab-t", 2) == (["fab-t"], "")
    assert aa_attacks("autoattack", 3) == (["apgd-ce", "fab-t", "square"],
                                           "; APGD-T left out: 3 classes, it needs 4")
    with pytest.raises(ValueError, match=r"^attack 'apgd-t' needs at least 4 classes \(its "
                                         r"targeted DLR loss reads the 4th-largest logit\); the "
                                         r"model has 3$"):
        aa_attacks("apgd-t", 3)
