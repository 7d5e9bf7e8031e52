"""Conditioners: the grouped masked matmul is exact, and MADE is autoregressive."""

import pytest
import torch
import torch.nn.functional as F

from hepflows.flows.conditioners import MADE, MaskedLinear, hidden_degrees


@pytest.mark.parametrize("groups", [1, 3, 8])
@pytest.mark.parametrize("kind", ["staircase", "random"])
def test_grouped_masked_linear_equals_dense_masked_product(groups: int, kind: str) -> None:
    out_f, in_f = 37, 23
    if kind == "staircase":
        mask = torch.arange(in_f)[None, :] < torch.randint(0, in_f + 1, (out_f, 1))
    else:
        mask = torch.rand(out_f, in_f) < 0.4
    layer = MaskedLinear(mask, groups=groups).double()
    x = torch.randn(11, in_f, dtype=torch.float64, requires_grad=True)
    dense = layer.dense_weight()
    assert torch.all(dense[~mask] == 0)
    bias = layer.bias[layer.row_order] if layer.row_order is not None else layer.bias
    expected = F.linear(x, dense, bias)
    got = layer(x)
    assert torch.allclose(got, expected, atol=1e-12)
    g_got = torch.autograd.grad(got.square().sum(), (x, layer.weight))
    g_exp = torch.autograd.grad(F.linear(x, dense, bias).square().sum(), (x, layer.weight))
    assert torch.allclose(g_got[0], g_exp[0], atol=1e-10)
    assert torch.allclose(g_got[1], g_exp[1], atol=1e-10)
    with torch.no_grad():  # cached path, then invalidated by a weight update
        assert torch.allclose(layer(x), expected, atol=1e-12)
        layer.weight.add_(1.0)
        assert not torch.allclose(layer(x), expected, atol=1e-6)


@pytest.mark.parametrize("hidden", [(20,), (16, 24), (4,), (3, 5)])
@pytest.mark.parametrize("degrees", ["spread", "prefix", "hybrid"])
def test_made_parameters_of_feature_i_depend_only_on_earlier_features(hidden, degrees) -> None:
    d, p = 6, 5
    # silu: no dead units, so every allowed connection shows in the Jacobian
    made = MADE(d, p, hidden, context=2, activation="silu", groups=3, degrees=degrees).double()
    x = torch.randn(1, d, dtype=torch.float64)
    c = torch.randn(1, 2, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: made(v, c), x).reshape(p, d, d)
    # jac[q, i, j] = d params[q, i] / d x[j]: must vanish for j >= i.
    upper = torch.triu(torch.ones(d, d, dtype=torch.bool))
    assert torch.all(jac[:, upper] == 0)
    assert torch.any(jac[:, ~upper] != 0)  # and the allowed connections exist
    jc = torch.autograd.functional.jacobian(lambda v: made(x, v), c)
    assert torch.all(jc.reshape(p, d, 2).abs().sum(-1) > 0)  # every feature sees the context


@pytest.mark.parametrize("degrees", ["spread", "prefix", "hybrid"])
def test_made_output_with_and_without_gradients_is_the_masked_product(degrees: str) -> None:
    """Training (uncached) and inference (cached, invalidated by a weight update) both give the
    dense masked product."""
    made = MADE(30, 7, (12,), context=2, groups=4, degrees=degrees).double()
    x, c = torch.randn(9, 30, dtype=torch.float64), torch.randn(9, 2, dtype=torch.float64)
    with_grad = made(x, c)
    with torch.no_grad():
        without = made(x, c)
    dense = made.output_layer.dense_weight()
    h = torch.relu(made.hidden_layers[0](x) + made.context_layer(c))
    reference = (h @ dense.T + made.output_layer.bias).view(9, 7, 30)
    assert torch.allclose(with_grad, reference, atol=1e-12)
    assert torch.allclose(without, reference, atol=1e-12)
    with torch.no_grad():
        made.output_layer.weight.add_(0.5)
        moved = made(x, c)
    assert torch.allclose(
        moved,
        (h @ made.output_layer.dense_weight().T + made.output_layer.bias).view(9, 7, 30),
        atol=1e-12,
    )


def test_hidden_degrees_layouts() -> None:
    wide = hidden_degrees(13, 5)  # width >= D: both layouts, each degree 2 or 3 times
    assert torch.equal(wide, hidden_degrees(13, 5, "prefix"))
    assert torch.bincount(wide, minlength=5).tolist() == [3, 3, 3, 2, 2]
    assert hidden_degrees(4, 10, "prefix").tolist() == [0, 1, 2, 3]
    assert hidden_degrees(4, 10).tolist() == [0, 2, 5, 7]  # spread over 0..D-1
    assert hidden_degrees(4, 10, "hybrid").tolist() == [0, 1, 2, 6]  # prefix, then spread
    assert torch.equal(hidden_degrees(13, 5, "hybrid"), wide)
    with pytest.raises(ValueError, match="unknown MADE degrees"):
        hidden_degrees(4, 10, "random")


def test_spread_degrees_let_late_features_see_late_inputs() -> None:
    """A MADE narrower than D: with ``prefix`` the last feature sees only the first ``width``
    inputs; with ``spread`` it sees inputs up to D - 1 - D / width."""
    d, width = 40, 8
    x = torch.randn(1, d, dtype=torch.float64)
    # hybrid: 4 units of degrees 0..3, then 4 spread over 4..39 (the last of degree 31)
    layouts = (("prefix", width - 2), ("spread", d - d // width - 1), ("hybrid", 30))
    for degrees, last_seen in layouts:
        made = MADE(d, 1, (width,), activation="silu", degrees=degrees).double()
        jac = torch.autograd.functional.jacobian(made, x).reshape(d, d)
        seen = torch.nonzero(jac[-1]).flatten()
        assert int(seen.max()) == last_seen, degrees


def test_bfloat16_matmuls_only_without_gradients_and_close_to_float32() -> None:
    from hepflows.flows import IAF
    from hepflows.flows.conditioners import set_matmul_dtype

    flow = IAF(12, 2, blocks=2, hidden=(32,), bins=5, bound=4.0, seed=1).eval()
    z, c = torch.randn(64, 12), torch.randn(64, 2)
    with torch.no_grad():
        exact, exact_ld = flow.to_data(z, c)
    set_matmul_dtype(flow, torch.bfloat16)
    with torch.no_grad():
        fast, fast_ld = flow.to_data(z, c)
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)
    error = (fast - exact).abs()
    assert error.median() < 0.01 and error.max() < 0.2 and (fast_ld - exact_ld).abs().max() < 0.2
    trained, _ = flow.to_data(z, c)  # with gradients the weights' own dtype is used
    assert (trained.detach() - exact).abs().max() < 1e-5  # float32 rounding, not bfloat16's
    set_matmul_dtype(flow, None)
    with torch.no_grad():
        assert torch.equal(flow.to_data(z, c)[0], exact)


def test_matmul_speedup_is_a_ratio_of_times(monkeypatch) -> None:
    """float32 against itself is ~1; a product made 4x slower in the second dtype reads ~0.25."""
    from hepflows import timing
    from hepflows.flows import conditioners

    assert 0.2 < conditioners.matmul_speedup(torch.float32) < 5.0
    fake_clock = iter(range(1000))
    calls = {"n": 0}
    real_mm = torch.mm

    def mm(a, b):  # each product advances the clock by 1 (float32) or 4 (float64) ticks
        calls["n"] += 1
        for _ in range(3 if a.dtype == torch.float64 else 0):
            next(fake_clock)
        return real_mm(a, b)

    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(fake_clock))
    monkeypatch.setattr(conditioners.torch, "mm", mm)
    assert conditioners.matmul_speedup(torch.float64) == pytest.approx(0.25)
    assert calls["n"] == 8  # a warm-up and 3 timed products per dtype


@pytest.mark.parametrize("matmul_dtype", [None, torch.bfloat16])
def test_cached_weights_follow_an_optimizer_that_does_not_bump_versions(matmul_dtype) -> None:
    """PyTorch's fused Adam updates parameters in place without bumping their version counters,
    so the no-gradient weight caches are dropped at every train()/eval() switch: the outputs
    after a step are a freshly built network's (session 24: validation losses had frozen)."""
    torch.manual_seed(0)
    made = MADE(6, 4, hidden=(32, 32), context=2, groups=3)
    x, c = torch.randn(8, 6), torch.randn(8, 2)

    def outputs(model: MADE) -> torch.Tensor:
        model.eval()
        for layer in model.modules():
            if hasattr(layer, "matmul_dtype"):
                layer.matmul_dtype = matmul_dtype
        with torch.no_grad():
            return model(x, c)

    before = outputs(made)
    optimizer = torch.optim.Adam(made.parameters(), lr=0.1, fused=True)
    versions = [p._version for p in made.parameters()]
    made.train()
    made(x, c).square().mean().backward()
    optimizer.step()
    assert [p._version for p in made.parameters()] == versions  # the case being guarded
    after = outputs(made)
    fresh = MADE(6, 4, hidden=(32, 32), context=2, groups=3)
    fresh.load_state_dict(made.state_dict())
    assert not torch.allclose(after, before)
    assert torch.equal(after, outputs(fresh))
