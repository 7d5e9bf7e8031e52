"""MAF, IAF and CouplingFlow: exact inverses, exact log-dets, normalised densities, shapes."""

import itertools

import pytest
import torch

from hepflows.flows import IAF, MAF, CouplingFlow, build_flow

MODELS = [MAF, IAF, CouplingFlow]
TRANSFORMS = ["spline", "affine", "unit-spline"]


def make(cls, transform: str, context: int, features: int = 3, dtype=torch.float64):
    flow = cls(features, context, blocks=3, hidden=(24, 24), transform=transform, bins=6,
               bound=3.0, permutation="random", seed=3)  # fmt: skip
    with torch.no_grad():  # spread the (default-initialised) parameters to a non-trivial map
        for p in flow.parameters():
            p.mul_(0.6)
    return flow.to(dtype)


def data(transform: str, n: int, d: int, dtype) -> torch.Tensor:
    if transform == "unit-spline":
        return torch.rand(n, d, dtype=dtype)
    return 2.0 * torch.randn(n, d, dtype=dtype)


@pytest.mark.parametrize(
    "cls,transform,context,dtype",
    list(itertools.product(MODELS, TRANSFORMS, [0, 2], [torch.float32, torch.float64])),
)
def test_round_trip(cls, transform, context, dtype) -> None:
    flow = make(cls, transform, context, dtype=dtype)
    x = data(transform, 64, 3, dtype)
    c = torch.randn(64, context, dtype=dtype) if context else None
    with torch.no_grad():
        z, ld = flow.to_latent(x, c)
        x_back, ld_back = flow.to_data(z, c)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert (x_back - x).abs().max() < tol * 10  # 3 blocks: errors of 3 splines compound
    assert (ld + ld_back).abs().max() < 1e-3 if dtype == torch.float32 else 1e-8
    assert torch.isfinite(z).all() and torch.isfinite(ld).all()


@pytest.mark.parametrize(
    "cls,transform,context", list(itertools.product(MODELS, TRANSFORMS, [0, 2]))
)
def test_log_det_matches_brute_force_jacobian(cls, transform, context) -> None:
    flow = make(cls, transform, context, features=4)
    x = data(transform, 5, 4, torch.float64)
    c = torch.randn(5, context, dtype=torch.float64) if context else None
    _, ld = flow.to_latent(x, c)
    for i in range(5):
        ci = None if c is None else c[i : i + 1]
        jac = torch.autograd.functional.jacobian(
            lambda v, ci=ci: flow.to_latent(v, ci)[0], x[i : i + 1]
        )
        jac = jac.reshape(4, 4)
        assert torch.allclose(ld[i], torch.linalg.slogdet(jac).logabsdet, atol=1e-8)
    # and in the sampling direction
    z = torch.randn(5, 4, dtype=torch.float64) if transform != "unit-spline" else x
    _, ld_data = flow.to_data(z, c)
    jac = torch.autograd.functional.jacobian(
        lambda v: flow.to_data(v, None if c is None else c[:1])[0], z[:1]
    ).reshape(4, 4)
    assert torch.allclose(ld_data[0], torch.linalg.slogdet(jac).logabsdet, atol=1e-8)


@pytest.mark.parametrize("cls", MODELS)
def test_bounded_flow_integrates_to_one_on_the_unit_square(cls) -> None:
    flow = make(cls, "unit-spline", context=1, features=2)
    m = 500  # midpoint rule on an m x m grid
    g = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    grid = torch.cartesian_prod(g, g)
    with torch.no_grad():
        for value in (-1.0, 0.7):
            c = torch.full((len(grid), 1), value, dtype=torch.float64)
            integral = flow.log_prob(grid, c).exp().mean().item()
            assert abs(integral - 1.0) < 1e-3
    outside = torch.tensor([[1.2, 0.5], [-0.1, 0.3]], dtype=torch.float64)
    assert torch.isinf(flow.log_prob(outside, torch.zeros(2, 1, dtype=torch.float64))).all()


@pytest.mark.parametrize("cls", MODELS)
def test_unbounded_flow_integrates_to_one(cls) -> None:
    flow = make(cls, "spline", context=0, features=2)
    m, half = 600, 9.0
    g = -half + (torch.arange(m, dtype=torch.float64) + 0.5) * (2 * half / m)
    grid = torch.cartesian_prod(g, g)
    with torch.no_grad():
        integral = flow.log_prob(grid).exp().sum().item() * (2 * half / m) ** 2
    assert abs(integral - 1.0) < 2e-3


@pytest.mark.parametrize("cls", MODELS)
def test_sample_shapes_and_sample_log_prob_consistency(cls) -> None:
    flow = make(cls, "spline", context=2)
    ctx = torch.randn(4, 2, dtype=torch.float64)
    with torch.no_grad():
        x, logq = flow.sample_and_log_prob(7, ctx)
        assert x.shape == (7, 4, 3) and logq.shape == (7, 4)
        assert torch.allclose(flow.log_prob(x, ctx), logq, atol=1e-8)  # broadcast (7,4,3)/(4,2)
        assert flow.sample(5, ctx[0]).shape == (5, 3)
        assert flow(ctx).sample(2).shape == (2, 4, 3)
    unconditional = make(cls, "affine", context=0)
    assert unconditional.sample(6).shape == (6, 3)


def test_sampling_is_reproducible_with_a_generator() -> None:
    flow = make(MAF, "spline", context=0)
    a = flow.sample(10, generator=torch.Generator().manual_seed(5))
    b = flow.sample(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("cls", MODELS)
def test_zero_init_is_the_identity(cls) -> None:
    flow = cls(4, 1, blocks=2, hidden=(16,), transform="unit-spline", zero_init=True,
               permutation="none").double()  # fmt: skip
    x = torch.rand(50, 4, dtype=torch.float64)
    z, ld = flow.to_latent(x, torch.randn(50, 1, dtype=torch.float64))
    assert torch.allclose(z, x, atol=1e-12) and ld.abs().max() < 1e-12


def test_chunking_changes_nothing() -> None:
    flow = make(CouplingFlow, "spline", context=2)
    x, c = torch.randn(1000, 3, dtype=torch.float64), torch.randn(1000, 2, dtype=torch.float64)
    flow.chunk_size = None
    full = flow.log_prob(x, c)
    flow.chunk_size = 128
    assert torch.allclose(full, flow.log_prob(x, c), atol=1e-12)


@pytest.mark.parametrize("cls", MODELS)
def test_config_rebuilds_the_same_architecture(cls) -> None:
    flow = make(cls, "spline", context=2)
    clone = build_flow(flow.config).double()
    clone.load_state_dict(flow.state_dict())
    x, c = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    assert torch.equal(flow.log_prob(x, c), clone.log_prob(x, c))


def test_models_saved_without_degrees_are_rebuilt_with_their_prefix_layout() -> None:
    flow = MAF(12, 1, blocks=2, hidden=(5,), seed=2, degrees="prefix").double()
    legacy = {k: v for k, v in flow.config.items() if k != "degrees"}
    clone = build_flow(legacy).double()
    clone.load_state_dict(flow.state_dict())
    x, c = torch.randn(8, 12, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    assert torch.equal(flow.log_prob(x, c), clone.log_prob(x, c))
    assert MAF(12, 1, hidden=(5,)).config["degrees"] == "spread"  # new models


def test_bad_inputs_raise_clear_errors() -> None:
    flow = make(MAF, "spline", context=2)
    with pytest.raises(ValueError, match="expected"):
        flow.log_prob(torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 2))
    with pytest.raises(ValueError, match="context"):
        flow.log_prob(torch.randn(4, 3))
    with pytest.raises(ValueError, match="context has 3 features"):
        flow.sample(2, torch.randn(3))
    with pytest.raises(ValueError, match="at least 2 features"):
        CouplingFlow(1)
    with pytest.raises(ValueError, match="unknown transform"):
        MAF(3, transform="cubic")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("cls", MODELS)
def test_cuda_matches_cpu(cls) -> None:
    flow = make(cls, "spline", context=2)
    x, c = torch.randn(64, 3, dtype=torch.float64), torch.randn(64, 2, dtype=torch.float64)
    cpu = flow.log_prob(x, c)
    gpu = flow.to("cuda").log_prob(x.cuda(), c.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-8)
    assert flow.sample(4, c[:2].cuda()).device.type == "cuda"


def test_seed_fixes_the_initial_weights_without_touching_global_rng() -> None:
    state = torch.random.get_rng_state()
    a, b = MAF(3, 1, seed=11), MAF(3, 1, seed=11)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = MAF(3, 1, seed=12)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


@pytest.mark.parametrize("cls", [MAF, IAF])
@pytest.mark.parametrize("hidden", [(24,), (5, 13), (40, 17, 30)])
@pytest.mark.parametrize("degrees", ["spread", "prefix", "hybrid"])
def test_stepwise_inversion_matches_full_passes(cls, hidden, degrees) -> None:
    """The one-unit-at-a-time slow direction equals D full network passes (widths < D too)."""
    flow = cls(9, 2, blocks=2, hidden=hidden, permutation="random", seed=5, degrees=degrees)
    flow = flow.double().eval()
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(1.5)
    v = torch.randn(40, 9, dtype=torch.float64)
    c = torch.randn(40, 2, dtype=torch.float64)
    slow = flow.to_data if cls is MAF else flow.to_latent
    with torch.no_grad():
        fast_out, fast_ld = slow(v, c)
    reference_out, reference_ld = slow(v, c)  # grad enabled: D full passes
    assert torch.allclose(fast_out, reference_out, atol=1e-10)
    assert torch.allclose(fast_ld, reference_ld, atol=1e-10)
    for layer in flow.modules():  # the full passes without gradients, as the benchmark times them
        if hasattr(layer, "stepwise"):
            layer.stepwise = False
    with torch.no_grad():
        passes_out, passes_ld = slow(v, c)
    # equal up to summation order (training runs the masked products ungrouped)
    assert torch.allclose(passes_out, reference_out.detach(), atol=1e-12)
    assert torch.allclose(passes_ld, reference_ld.detach(), atol=1e-12)


def test_copied_conditioners_give_the_teacher_s_map_when_it_ignores_its_inputs() -> None:
    """MAF x_i = tau^-1(z_i; MADE(x_<i)), IAF x_i = tau^-1(z_i; MADE(z_<i)): with the MADE's input
    weights zeroed (context and biases only) the two are the same map, so an IAF holding the MAF's
    conditioners must reproduce the MAF's samples and densities exactly; with the input weights
    left in, they differ."""
    teacher = make(MAF, "spline", context=2, features=5)
    student = IAF(5, 2, blocks=3, hidden=(24, 24), transform="spline", bins=6, bound=3.0,
                  permutation="random", seed=3, zero_init=True).double()  # fmt: skip
    z, c = torch.randn(40, 5, dtype=torch.float64), torch.randn(40, 2, dtype=torch.float64)
    student.copy_conditioners(teacher)
    assert not torch.allclose(student.to_data(z, c)[0], teacher.to_data(z, c)[0], atol=1e-3)
    with torch.no_grad():
        for layer in teacher.layers:
            if hasattr(layer, "conditioner"):
                layer.conditioner.hidden_layers[0].weight.zero_()
    student.copy_conditioners(teacher)
    x_t, ld_t = teacher.to_data(z, c)
    x_s, ld_s = student.to_data(z, c)
    assert torch.allclose(x_s, x_t, atol=1e-12) and torch.allclose(ld_s, ld_t, atol=1e-10)
    assert torch.allclose(student.log_prob(x_t, c), teacher.log_prob(x_t, c), atol=1e-10)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"hidden": (16, 24)}, "other shapes"),
        ({"context": 1}, "other shapes"),
        ({"bins": 5}, "spline of layer"),
        ({"bound": 4.0}, "spline of layer"),
        ({"permutation": "reverse"}, r"permutation \d differs"),
        ({"degrees": "prefix"}, "masks of layer"),
        ({"blocks": 2}, "layers over"),
    ],
)
def test_copying_conditioners_refuses_other_structures(change, message) -> None:
    settings = dict(context=2, blocks=3, hidden=(3, 3), transform="spline", bins=6, bound=3.0,
                    permutation="random", seed=3, degrees="spread")  # fmt: skip
    teacher = MAF(5, **settings)
    student = IAF(5, **{**settings, **change})
    with pytest.raises(ValueError, match=message):
        student.copy_conditioners(teacher)
    IAF(5, **settings).copy_conditioners(teacher)  # the same structure is accepted
