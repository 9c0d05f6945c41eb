"""robustrep.nets.mlp: RP-GAN's ensemble for 2-D points (the MLP G and D: test_registry.py)."""

import torch

from robustrep.nets.mlp import MLPProjectionEnsemble


def _member(ens, k, x):
    """Member k on its own: the MLP of weights[.][k] on the projection <u_k, x>."""
    h = (x @ ens.directions[k]).unsqueeze(-1)
    for i, (w, b) in enumerate(zip(ens.weights, ens.biases)):
        h = h @ w[k] + b[k]
        if i < len(ens.weights) - 1:
            h = torch.nn.functional.leaky_relu(h, 0.2)
    return h.squeeze(-1)


def test_batched_members_equal_each_member_alone():
    ens = MLPProjectionEnsemble(5, width=8, depth=2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 2)
    logits = ens(x)
    assert logits.shape == (7, 5)
    assert torch.allclose(ens.directions.norm(dim=1), torch.ones(5))
    for k in range(5):
        assert torch.allclose(logits[:, k], _member(ens, k, x), atol=1e-6)


def test_a_member_sees_only_its_projection():
    ens = MLPProjectionEnsemble(3, width=4, depth=1, generator=torch.Generator().manual_seed(1))
    x = torch.randn(4, 2)
    u = ens.directions[0]
    along_orthogonal = x + 0.7 * torch.stack([-u[1], u[0]])  # same <u_0, x>
    assert torch.allclose(ens(x)[:, 0], ens(along_orthogonal)[:, 0], atol=1e-6)
    assert not torch.allclose(ens(x)[:, 1], ens(along_orthogonal)[:, 1])


def test_the_generator_fixes_directions_and_weights():
    a, b = (MLPProjectionEnsemble(3, generator=torch.Generator().manual_seed(2)) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
