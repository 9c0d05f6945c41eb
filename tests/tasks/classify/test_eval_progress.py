"""``classify eval`` on slow attacks: an expected duration up front, progress inside each attack."""

import io

import torch
from torch import nn

from robustrep.tasks.classify import evaluate
from robustrep.tasks.common.progress import LogProgress


def test_attack_progress_is_written_while_an_attack_runs():
    out = io.StringIO()
    bar = LogProgress(5, desc="eval", interval=0.0, file=out)
    evaluate._attack_progress(bar, "autoattack", {"attack": "apgd-t", "done": 40, "total": 90,
                                                  "robust": 31, "n": 500, "eta_s": 75.0})
    assert out.getvalue().strip().endswith("autoattack=apgd-t 40/90 robust=31/500 left=1m15s")


def test_a_slow_evaluation_says_how_long_it_may_take(monkeypatch, capsys):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    data = [(torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,)))]
    monkeypatch.setattr(evaluate, "SLOW_SECONDS", 0.0)
    evaluate.evaluate_model(model, data, attacks=("fgsm",), corruptions=(), progress_bar=True)
    err = capsys.readouterr().err
    assert "classify eval: the attacks (fgsm) on 8 images may take up to" in err
    monkeypatch.setattr(evaluate, "SLOW_SECONDS", 1e9)
    evaluate.evaluate_model(model, data, attacks=("fgsm",), corruptions=(), progress_bar=True)
    assert "may take" not in capsys.readouterr().err


def test_the_estimate_is_steps_times_the_timed_gradient_step(monkeypatch):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(8, 1, 4, 4)
    for jobs, steps in (([("fgsm", "fgsm", 20)], 1), ([("pgd10", "pgd", 10)], 10),
                        ([("autoattack", "autoattack", 20)], 100 + 900 + 900 + 5000 / 3)):
        clock = iter([0.0, 0.08])  # one timed forward+backward of the 8 images: 10 ms each
        monkeypatch.setattr(evaluate.time, "perf_counter", lambda: next(clock))
        seconds = evaluate.expected_attack_seconds(model, x, torch.device("cpu"), jobs)
        assert abs(seconds - 0.01 * steps * 8) < 1e-9
