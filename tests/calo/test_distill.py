"""Probability-density distillation: zero loss for an exact inverse, an unbiased KL monitor."""

import math

import pytest
import torch

from hepflows.calo.distill import (
    Distillation,
    StudentTeacherKL,
    _mse,
    check_compatible,
    student_teacher_kl,
)
from hepflows.flows import IAF, MAF


def pair(features: int, seed_t: int = 0, seed_s: int = 1, **kw):
    teacher = MAF(features, 2, blocks=3, hidden=(16,), bound=4.0, seed=seed_t, **kw).double()
    student = IAF(
        features,
        2,
        blocks=3,
        hidden=(16,),
        bound=4.0,
        seed=seed_s,
        permutation=teacher.config["permutation"],
    ).double()
    with torch.no_grad():
        for p in teacher.parameters():
            p.mul_(1.5)
    return teacher, student


def test_squared_distance_value_and_gradients_match_autograd() -> None:
    a = torch.randn(5, 3, 7, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, 7, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(5, dtype=torch.float64)
    got = _mse(a, b)
    expected = (a - b).pow(2).flatten(1).mean(1)
    assert torch.allclose(got, expected, atol=1e-14)
    g_got = torch.autograd.grad((got * weights).sum(), (a, b))
    g_exp = torch.autograd.grad((expected * weights).sum(), (a, b))
    for x, y in zip(g_got, g_exp, strict=True):
        assert torch.allclose(x, y, atol=1e-14)
    assert torch.autograd.gradcheck(_mse, (a, b))
    only_a = torch.autograd.grad(_mse(a, b.detach()).sum(), a)[0]  # no gradient for b asked
    assert torch.allclose(only_a, g_exp[0] / weights[:, None, None], atol=1e-12)


def test_exact_inverse_has_zero_loss_and_zero_kl() -> None:
    # In one dimension a MADE sees only the context, so the IAF with the MAF's weights is its
    # exact inverse: every distillation term and the KL vanish.
    teacher, student = pair(1)
    student.load_state_dict(teacher.state_dict())
    x = torch.randn(64, 1, dtype=torch.float64)
    c = torch.randn(64, 2, dtype=torch.float64)
    torch.manual_seed(0)
    assert Distillation(teacher)(student, x, c).abs().max() < 1e-20
    kl = StudentTeacherKL(teacher)(student, x, c)
    assert kl.abs().max() < 1e-10


def test_kl_monitor_matches_numerical_integration() -> None:
    teacher, student = pair(1, seed_s=5)
    with torch.no_grad():
        for p in student.parameters():
            p.mul_(1.3)
    c = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    grid = torch.linspace(-12, 12, 200_001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        log_s = student.log_prob(grid, c)
        log_t = teacher.log_prob(grid, c)
        dx = float(grid[1] - grid[0])
        p_s = log_s.exp()
        assert float(p_s.sum() * dx) == pytest.approx(1.0, abs=1e-6)
        exact = float((p_s * (log_s - log_t)).sum() * dx)
        terms = student_teacher_kl(
            student, teacher, c.expand(200_000, 2), 200_000, torch.Generator().manual_seed(3)
        )
    error = float(terms.std()) / math.sqrt(len(terms))
    assert exact > 0.01
    assert abs(float(terms.mean()) - exact) < 4 * error


@pytest.mark.parametrize("guided", [False, True])
@pytest.mark.parametrize("features,factor", [(1, 0.25), (3, 0.5)])
def test_distillation_lowers_the_kl(guided: bool, features: int, factor: float) -> None:
    torch.manual_seed(0)
    teacher = MAF(features, 2, blocks=2, hidden=(16,), bound=4.0, seed=0).double()
    student = IAF(
        features,
        2,
        blocks=2,
        hidden=(16,),
        bound=4.0,
        seed=1,
        permutation=teacher.config["permutation"],
    ).double()
    objective = Distillation(teacher, guided=guided)
    monitor = StudentTeacherKL(teacher)
    c_val = torch.randn(2000, 2, dtype=torch.float64)
    with torch.no_grad():
        before = float(monitor(student, c_val, c_val).mean())
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    for _ in range(150):
        c = torch.randn(128, 2, dtype=torch.float64)
        with torch.no_grad():
            x = teacher.sample(1, c)[0]
        loss = objective(student, x, c).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(monitor(student, c_val, c_val).mean())
    assert after < factor * before
    assert not any(p.grad is not None for p in teacher.parameters())  # the teacher is frozen


def test_incompatible_student_is_refused() -> None:
    teacher, _ = pair(5, permutation="random")
    other = IAF(5, 2, blocks=3, hidden=(16,), permutation="reverse", seed=2)
    with pytest.raises(ValueError, match="permutations"):
        check_compatible(teacher, other.double())
    with pytest.raises(ValueError, match="features"):
        check_compatible(teacher, IAF(4, 2, blocks=3))
