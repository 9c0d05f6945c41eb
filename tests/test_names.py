"""The names the command line reads without torch (robustrep._names) are the ones the heavy
modules use: a corruption added to robustrep.corruptions must be added to the CLI's list too."""

from robustrep import _names


def test_corruption_names_are_the_corruption_functions():
    from robustrep.corruptions import BENCHMARK, CORRUPTIONS, SEVERITIES
    assert tuple(CORRUPTIONS) == _names.CORRUPTIONS  # the one repeated list, in the same order
    assert (BENCHMARK, SEVERITIES) == (_names.BENCHMARK, _names.SEVERITIES)


def test_attack_names_are_the_robust_accuracy_ones():
    from robustrep.metrics.robust import ATTACKS, NORMS
    assert (ATTACKS, NORMS) == (_names.ATTACKS, _names.NORMS)


def test_eval_defaults_are_the_evaluators():
    from robustrep.tasks.classify import config, evaluate
    assert evaluate.DEFAULT_CORRUPTIONS == config.DEFAULT_CORRUPTIONS
    assert set(config.DEFAULT_CORRUPTIONS) <= set(_names.BENCHMARK)
    assert evaluate.DEFAULT_N_ATTACK == config.EvalOptions().n_attack
