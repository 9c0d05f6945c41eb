"""``classify eval`` on slow attacks: an expected duration up front, and progress counted in the
work each attack does, so its estimate holds inside a long AutoAttack."""

import io

import torch
from torch import nn

from robustrep.metrics.robust import attack_steps
from robustrep.tasks.classify import attacks, eval_metrics
from robustrep.tasks.common.progress import LogProgress


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _work(n=100, plans=None):
    clock, out = _Clock(), io.StringIO()
    bar = LogProgress(1, desc="eval attacks", interval=0.0, file=out, clock=clock,
                      unit="sample-steps")
    # AutoAttack's parts weighted 1 per iteration, 1/3 per Square query (the arithmetic of the
    # bar, whatever the measured costs of attack_steps)
    plans = plans or [("autoattack", {"apgd-ce": 100, "apgd-t": 900, "fab-t": 900,
                                      "square": 5000 / 3})]
    return attacks.AttackWork(plans, n, bar), bar, clock, out


def test_autoattack_progress_counts_the_work_left_on_the_samples_still_robust():
    work, bar, clock, out = _work()
    square = 5000 / 3
    assert bar.total == round(100 * (100 + 900 + 900 + square)) and bar.n == 0
    # APGD-CE attacks the 90 clean-correct samples in 9 s and fools 20 of them
    clock.now = 9.0
    work.report({"attack": "apgd-ce", "done": 90, "total": 90, "robust": 70, "n": 100})
    assert bar.n == 9000 and bar.total == round(9000 + 70 * (900 + 900 + square))
    line = out.getvalue().strip().splitlines()[-1]
    # the pace so far (1000 sample-steps/s) over the work left: 242,667 s/1000 = 4m03s
    assert "sample-steps 9000/251667 (4%) 1000 sample-steps/s ETA 4m03s" in line, line
    assert line.endswith("autoattack=apgd-ce 90/90 robust=70/100")
    # no line shows a component's news with the counts from before it
    assert all("sample-steps 9000/" in ln for ln in out.getvalue().splitlines() if "90/90" in ln)
    clock.now = 30.0  # APGD-T, half its batches: 35 of the 70 samples, 9 fooled so far
    work.report({"attack": "apgd-t", "done": 35, "total": 70, "robust": 61, "n": 100})
    assert bar.n == 9000 + 35 * 900
    assert bar.total == round(bar.n + 35 * 900 + 61 * (900 + square))
    work.finish()  # the rest fooled nothing more than it says: its work is what it reported
    assert bar.n == bar.total == 9000 + 35 * 900


def test_a_lone_component_is_named_once():
    # Was: "square=square 3/8": the component repeated the attack's own name
    work, bar, clock, out = _work(n=8, plans=[("square", {"square": 3750.0})])
    work.report({"attack": "square", "done": 3.4, "total": 8, "robust": 8, "n": 8})
    assert out.getvalue().strip().splitlines()[-1].endswith(" square=3/8 robust=8/8")


def test_pgd_and_fgsm_count_their_whole_plan_when_done():
    plans = [("pgd10", attack_steps("pgd", 10, 10)), ("fgsm", attack_steps("fgsm", 10))]
    work, bar, clock, out = _work(n=50, plans=plans)
    assert bar.total == 50 * 12.5 + 50 * 2
    work.finish()
    assert bar.n == 625 and bar.total == 725
    work.finish()
    assert bar.n == bar.total == 725


def test_a_slow_evaluation_says_how_long_it_may_take(monkeypatch, capsys):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    data = [(torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,)))]
    monkeypatch.setattr(eval_metrics, "SLOW_SECONDS", 0.0)
    eval_metrics.evaluate_model(model, data, attacks=("fgsm",), corruptions=(), progress_bar=True)
    err = capsys.readouterr().err
    note = next(line for line in err.splitlines() if "may take up to" in line)
    assert note.startswith("classify eval: the attacks (fgsm) on 8 images may take up to")
    assert note.endswith("; faster: a smaller --n-attack (now 8)")  # no faster attack than fgsm
    monkeypatch.setattr(eval_metrics, "SLOW_SECONDS", 1e9)
    eval_metrics.evaluate_model(model, data, attacks=("fgsm",), corruptions=(), progress_bar=True)
    assert "may take" not in capsys.readouterr().err


def test_the_estimate_is_steps_times_the_timed_gradient_step(monkeypatch):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    x = torch.rand(8, 1, 4, 4)
    for jobs, steps in (([("fgsm", "fgsm", 20)], 2), ([("pgd10", "pgd", 10)], 12.5),
                        ([("autoattack", "autoattack", 20)], 150 + 1350 + 2700 + 3750)):
        # five timed forward+backward passes of the 8 images; the median, 10 ms each, counts
        # (one timing, as before, swung the estimate by 60x on a busy machine)
        ticks = [0.0, 5.0, 0, 0.08, 0, 0.001, 0, 0.08, 0, 0.09]
        clock = iter(ticks)
        monkeypatch.setattr(attacks.time, "perf_counter", lambda: next(clock))
        seconds = attacks.expected_attack_seconds(model, x, torch.device("cpu"), jobs, 10)
        assert abs(seconds - 0.01 * steps * 8) < 1e-9


def test_the_estimate_times_the_step_the_attacks_take():
    # the attacks freeze the weights: a step with weight gradients, timed before, is heavier
    # (1.3x to 1.9x on CPU) than the one the measured costs are counted in
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(
        [p.requires_grad for p in m.parameters()]))
    attacks.expected_attack_seconds(model, torch.rand(8, 1, 4, 4), torch.device("cpu"),
                                     [("fgsm", "fgsm", 20)], 10)
    assert len(seen) == 6 and not any(any(flags) for flags in seen)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_a_batchs_share_moves_the_bar_inside_the_batch():
    # robust_accuracy reports from inside a batch with a fractional `done` (the batch's share
    # estimated from its model calls): the bar moves, forwards only, and shows whole samples
    work, bar, clock, out = _work()
    clock.now = 3.0
    work.report({"attack": "apgd-ce", "done": 22.5, "total": 90, "robust": 90, "n": 100})
    assert bar.n == 2250 and bar.total == round(2250 + 67.5 * 100 + 90 * (900 + 900 + 5000 / 3))
    assert out.getvalue().strip().splitlines()[-1].endswith("apgd-ce 22/90 robust=90/100")
    clock.now = 6.0
    work.report({"attack": "apgd-ce", "done": 44.55, "total": 90, "robust": 90, "n": 100})
    assert bar.n == 4455
    clock.now = 12.0  # the batch's end: 20 fooled
    work.report({"attack": "apgd-ce", "done": 90, "total": 90, "robust": 70, "n": 100})
    assert bar.n == 9000 and bar.total == round(9000 + 70 * (900 + 900 + 5000 / 3))
    line = out.getvalue().strip().splitlines()[-1]
    assert "ETA" in line and line.endswith("apgd-ce 90/90 robust=70/100")


def test_the_slow_attacks_note_names_only_what_is_faster():
    # Was: "--attacks pgd or --max-samples N are faster" to a run of PGD alone
    cpu = torch.device("cpu")
    pgd = attacks.attack_jobs(["pgd"], [10, 20])
    line = attacks.slow_attacks_note(pgd, 500, 600.0, cpu)
    assert line == ("classify eval: the attacks (pgd10, pgd20) on 500 images may take up to "
                    "10m00s on cpu (fewer samples stay robust in practice); faster: fewer or "
                    "shorter --pgd-steps (now 10 20), a smaller --n-attack (now 500)")
    aa = attacks.slow_attacks_note(attacks.attack_jobs(["autoattack"], [10]), 500, 600.0, cpu)
    assert aa.endswith("; faster: --attacks pgd, a smaller --n-attack (now 500)")
    both = attacks.slow_attacks_note(attacks.attack_jobs(["apgd-t", "pgd"], [40]), 9, 1e3, cpu)
    assert both.endswith("faster: --attacks pgd, fewer or shorter --pgd-steps (now 40), a "
                         "smaller --n-attack (now 9)")
    fgsm = attacks.slow_attacks_note(attacks.attack_jobs(["fgsm", "pgd"], [1]), 1, 1e3, cpu)
    assert fgsm.endswith("(fewer samples stay robust in practice)")  # nothing is faster


def test_a_pgd_attack_moves_the_bar_after_each_batch(monkeypatch):
    # Was: PGD told nothing while it ran: the bar sat at its start until each attack ended
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).eval()
    x, y = torch.rand(6, 3, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    out = io.StringIO()
    monkeypatch.setattr(attacks, "progress", lambda total, **kw: LogProgress(
        total, desc=kw["desc"], interval=0.0, file=out, unit=kw["unit"]))
    attacks.adversarial_report(model, [(x, y)], ["pgd"], 8 / 255, "Linf", 3, pgd_steps=(4,),
                               show_progress=True, batch_size=2)
    counts = [line.split()[3] for line in out.getvalue().splitlines()]
    # 4 steps of 1.25 sample-steps (a PGD step's measured cost) a sample
    assert counts[:4] == ["0/30", "10/30", "20/30", "30/30"], out.getvalue()
    assert "pgd4=2/6" in out.getvalue().splitlines()[1]


def test_the_evaluation_says_its_plan_before_the_clean_pass(capsys):
    # Was: 8-13 s of a small evaluation before any line (the clean pass and the attacks)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3)).eval()
    data = [(torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 0]))]
    eval_metrics.evaluate_model(model, data, attacks=["pgd"], pgd_steps=(2,), n_attack=3,
                                corruptions=["contrast"], severities=(1, 2),
                                progress_bar=True)
    assert capsys.readouterr().err.splitlines()[0] == (
        "classify eval: the clean pass, then pgd2 on the first 3 images (all, if fewer), then 1 "
        "corruption x "
        "2 severities")
    eval_metrics.evaluate_model(model, data, attacks=[], corruptions=[], progress_bar=False)
    assert capsys.readouterr().err == ""
