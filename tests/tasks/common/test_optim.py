"""On resume the optimizer state is restored but the resumed config's hyperparameters apply."""

import torch

from robustrep.tasks.common.optim import load_optimizer_state


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


def test_sgd_keeps_new_momentum_weight_decay_and_initial_lr():
    p = torch.nn.Parameter(torch.ones(3))
    old = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
    old.param_groups[0]["initial_lr"] = 0.1  # what a schedule adds
    p.grad = torch.ones_like(p)
    old.step()
    new = torch.optim.SGD([p], lr=0.01, momentum=0.5, weight_decay=0.0)
    new.param_groups[0]["initial_lr"] = 0.01
    load_optimizer_state(new, old.state_dict())
    group = new.param_groups[0]
    assert (group["lr"], group["initial_lr"], group["momentum"], group["weight_decay"]) == (
        0.01, 0.01, 0.5, 0.0)
    assert torch.equal(new.state[p]["momentum_buffer"], old.state[p]["momentum_buffer"])


def test_a_step_counter_kept_in_the_groups_is_state_and_restored():
    # timm's Lookahead counts its steps in each group (lookahead_step): put back at 0 from the
    # fresh optimizer, its sync points moved and a resumed run left the uninterrupted one
    from timm.optim import Lookahead
    p = torch.nn.Parameter(torch.ones(2))
    old = Lookahead(torch.optim.SGD([p], lr=0.1), k=5)
    for _ in range(3):
        p.grad = torch.ones_like(p)
        old.step()
    new = Lookahead(torch.optim.SGD([p], lr=0.01), k=5)
    load_optimizer_state(new, old.state_dict())
    assert new.param_groups[0]["lookahead_step"] == 3
    assert new.param_groups[0]["lr"] == 0.01
