"""On resume the optimizer state is restored but the resumed config's hyperparameters apply."""

import math

import torch

from robustrep.tasks.common.optim import load_optimizer_state


def _sgd(lr, momentum, weight_decay, steps):
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    return p, opt, sched


def test_adam_keeps_new_lr_and_betas_and_the_saved_moments():
    p = torch.nn.Parameter(torch.ones(2))
    old = torch.optim.Adam([p], lr=2e-4, betas=(0.5, 0.999))
    p.grad = torch.full_like(p, 0.3)
    old.step()
    new = torch.optim.Adam([p], lr=1e-3, betas=(0.0, 0.9))
    load_optimizer_state(new, old.state_dict())
    group = new.param_groups[0]
    assert group["lr"] == 1e-3 and group["betas"] == (0.0, 0.9)
    assert torch.equal(new.state[p]["exp_avg"], old.state[p]["exp_avg"])
    assert float(new.state[p]["step"]) == 1.0


def test_lambda_schedule_restarts_from_the_new_base_lr_at_the_saved_step():
    p, opt, sched = _sgd(0.1, 0.9, 5e-4, steps=10)
    for _ in range(4):
        p.grad = torch.ones_like(p)
        opt.step()
        sched.step()
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    _, opt2, sched2 = _sgd(0.01, 0.5, 0.0, steps=20)  # the resumed config: lower lr, longer
    load_optimizer_state(opt2, saved_opt, sched2, saved_sched)
    group = opt2.param_groups[0]
    expected = 0.01 * 0.5 * (1 + math.cos(math.pi * 4 / 20))
    assert sched2.last_epoch == 4 and sched2.base_lrs == [0.01]
    assert math.isclose(group["lr"], expected) and sched2.get_last_lr() == [group["lr"]]
    assert group["momentum"] == 0.5 and group["weight_decay"] == 0.0
    sched2.step()  # the schedule goes on from there with the new settings
    assert math.isclose(group["lr"], 0.01 * 0.5 * (1 + math.cos(math.pi * 5 / 20)))
