"""The rational-quadratic spline: exact inverses, exact log-dets, agreement with zuko."""

import math

import pytest
import torch

from hepflows.flows import splines
from hepflows.flows.transforms import RQSpline, UnitRQSpline

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def random_raw(n: int, p: int, d: int, dtype: torch.dtype, scale: float = 0.5) -> torch.Tensor:
    """Raw spline parameters. With spread 0.5 the slopes stay above ~0.05, where float32 can meet
    the 1e-5 round-trip contract; wider spreads are covered by the conditioning test below."""
    return scale * torch.randn(n, p, d, dtype=dtype)


def bulk_tail_and_knot_points(transform: RQSpline, raw: torch.Tensor, dtype: torch.dtype):
    """Inputs in the bulk, in the tails, on the bound, on every interior knot, and at +-1e4."""
    n, _, d = raw.shape
    x_inner, _, _ = transform._knots(raw)
    b = transform.bound
    columns = [
        torch.empty(n, d, dtype=dtype).uniform_(-b, b),  # bulk
        torch.full((n, d), b, dtype=dtype),  # upper end knot
        torch.full((n, d), -b, dtype=dtype),  # lower end knot
        torch.full((n, d), 3 * b, dtype=dtype),  # tail
        torch.full((n, d), -1e4, dtype=dtype),
        torch.full((n, d), 1e4, dtype=dtype),
    ] + [x_inner[:, j, :] for j in range(x_inner.shape[1])]  # exactly on interior knots
    x = torch.cat(columns)
    return x, raw.repeat(len(columns), 1, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unbounded_spline_round_trip_everywhere(dtype: torch.dtype) -> None:
    t = RQSpline(bins=8, bound=3.0)
    x, raw = bulk_tail_and_knot_points(t, random_raw(50, t.num_params, 4, dtype), dtype)
    z, ld = t.forward(x, raw)
    x_back, ld_back = t.inverse(z, raw)
    scale = x.abs().clamp_min(1.0)
    assert torch.all((x_back - x).abs() / scale < TOL[dtype])
    assert torch.allclose(ld, -ld_back, atol=100 * TOL[dtype])
    assert torch.isfinite(z).all() and torch.isfinite(ld).all()
    outside = (x.abs() > t.bound).all(-1)
    assert torch.equal(z[outside], x[outside]) and torch.all(ld[outside] == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unit_spline_round_trip_including_ends_and_knots(dtype: torch.dtype) -> None:
    t = UnitRQSpline(bins=16)
    raw = random_raw(40, t.num_params, 3, dtype)
    k = t.bins
    x_inner = splines.inner_knots_from_raw(raw[:, :k], 0.0, 1.0)
    columns = [torch.rand(40, 3, dtype=dtype), torch.zeros(40, 3, dtype=dtype),
               torch.ones(40, 3, dtype=dtype)] + [x_inner[:, j] for j in range(k - 1)]  # fmt: skip
    x = torch.cat(columns)
    raw = raw.repeat(len(columns), 1, 1)
    z, ld = t.forward(x, raw)
    assert z.min() >= 0 and z.max() <= 1
    x_back, ld_back = t.inverse(z, raw)
    assert (x_back - x).abs().max() < TOL[dtype]
    assert torch.allclose(ld, -ld_back, atol=100 * TOL[dtype])


def test_log_det_equals_autograd_derivative() -> None:
    t = RQSpline(bins=8, bound=4.0)
    raw = random_raw(200, t.num_params, 1, torch.float64)
    x = torch.empty(200, 1, dtype=torch.float64).uniform_(-5, 5).requires_grad_(True)
    z, ld = t.forward(x, raw)
    (dz,) = torch.autograd.grad(z.sum(), x)
    assert torch.allclose(ld, dz.squeeze(1).log(), atol=1e-10)
    y = z.detach().requires_grad_(True)
    xb, ldb = t.inverse(y, raw)
    (dx,) = torch.autograd.grad(xb.sum(), y)
    assert torch.allclose(ldb, dx.squeeze(1).log(), atol=1e-10)


def test_zero_parameters_give_the_identity() -> None:
    for t in (RQSpline(bins=5, bound=2.0), UnitRQSpline(bins=7)):
        x = torch.rand(100, 6, dtype=torch.float64)
        z, ld = t.forward(x, torch.zeros(100, t.num_params, 6, dtype=torch.float64))
        assert torch.allclose(z, x, atol=1e-14)
        assert torch.allclose(ld, torch.zeros(100, dtype=torch.float64), atol=1e-13)


def test_gradients_finite_at_knots_ends_and_tails() -> None:
    t = RQSpline(bins=8, bound=3.0)
    raw = random_raw(20, t.num_params, 2, torch.float32).requires_grad_(True)
    x, raw_rep = bulk_tail_and_knot_points(t, raw.detach(), torch.float32)
    raw_rep = raw_rep.clone().requires_grad_(True)
    x = x.clone().requires_grad_(True)
    for inverse in (False, True):
        out, ld = (t.inverse if inverse else t.forward)(x, raw_rep)
        gx, graw = torch.autograd.grad(out.sum() + ld.sum(), (x, raw_rep))
        assert torch.isfinite(gx).all() and torch.isfinite(graw).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_zuko_given_the_same_knots(dtype: torch.dtype) -> None:
    """Independent implementation: zuko's MonotonicRQSTransform, fed the same knots."""
    zuko_transforms = pytest.importorskip("zuko.transforms")
    n, d, k, bound = 300, 5, 8, 5.0
    w, h, dv = (torch.randn(n, d, m, dtype=dtype) for m in (k, k, k - 1))
    ref = zuko_transforms.MonotonicRQSTransform(w, h, dv, bound=bound)
    # zuko stores knots as (n, d, K + 1); ours are bins-major interior knots (n, K - 1, d).
    x_inner = ref.horizontal[..., 1:-1].transpose(1, 2)
    y_inner = ref.vertical[..., 1:-1].transpose(1, 2)
    d_inner = ref.derivatives[..., 1:-1].transpose(1, 2)
    x = torch.empty(n, d, dtype=dtype).uniform_(-1.2 * bound, 1.2 * bound)
    z, ld = splines.spline_with_tails(x, x_inner, y_inner, d_inner, bound)
    z_ref, ld_ref = ref.call_and_ladj(x)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert torch.allclose(z, z_ref, atol=tol)
    assert torch.allclose(ld, ld_ref, atol=tol)
    if dtype == torch.float64:  # the inverse is ill-conditioned where slopes are small: float64
        x_back, _ = splines.spline_with_tails(z_ref, x_inner, y_inner, d_inner, bound, True)
        assert torch.allclose(x_back, ref.inv(z_ref), atol=tol)


def test_round_trip_error_is_bounded_by_conditioning_for_extreme_parameters() -> None:
    """Very uneven bins and near-minimal derivatives: the inverse error stays at the level set by
    the float32 rounding of y divided by the local slope (no catastrophic cancellation)."""
    t = RQSpline(bins=8, bound=3.0)
    raw = random_raw(2000, t.num_params, 2, torch.float32, scale=4.0)
    x = torch.empty(2000, 2).uniform_(-3, 3)
    z, _ = t.forward(x, raw)
    x_back, _ = t.inverse(z, raw)
    per_dim_slope = torch.exp(
        torch.stack(
            [
                t.forward(x.double()[:, i : i + 1], raw.double()[:, :, i : i + 1])[1]
                for i in range(2)
            ],
            dim=1,
        )  # fmt: skip
    )
    allowed = 1e-5 + 4 * torch.finfo(torch.float32).eps * 3.0 / per_dim_slope
    assert torch.all((x_back.double() - x.double()).abs() <= allowed)


def test_inner_knots_respect_minimum_bin_size() -> None:
    raw = 50 * torch.randn(10, 8, 3, dtype=torch.float64)
    inner = splines.inner_knots_from_raw(raw, -1.0, 1.0)
    knots = torch.cat([torch.full((10, 1, 3), -1.0, dtype=torch.float64), inner,
                       torch.full((10, 1, 3), 1.0, dtype=torch.float64)], dim=1)  # fmt: skip
    widths = knots.diff(dim=1)
    assert widths.min() >= 2.0 * splines.MIN_BIN_SIZE * (1 - 1e-9)
    assert torch.allclose(widths.sum(1), torch.full((10, 3), 2.0, dtype=torch.float64))
    one = splines.derivatives_from_raw(torch.zeros((), dtype=torch.float64)).item()
    assert math.isclose(one, 1.0, rel_tol=1e-12)


def test_bin_scale_is_the_same_spline_with_scaled_bin_logits() -> None:
    """bin_scale s on raw (w, h, d) equals the unscaled spline on (s w, s h, d); the map stays an
    exact bijection with exact log-dets, and a small scale keeps large raw values from collapsing
    the bins (the knots stay near the uniform grid)."""
    scaled, plain = RQSpline(bins=6, bound=4.0, bin_scale=0.1), RQSpline(bins=6, bound=4.0)
    raw = random_raw(100, scaled.num_params, 3, torch.float64, scale=5.0)
    x = torch.empty(100, 3, dtype=torch.float64).uniform_(-5, 5)
    k = scaled.bins
    shrunk = raw.clone()
    shrunk[:, : 2 * k] *= 0.1
    z, ld = scaled.forward(x, raw)
    z_plain, ld_plain = plain.forward(x, shrunk)
    assert torch.allclose(z, z_plain, atol=1e-12) and torch.allclose(ld, ld_plain, atol=1e-12)
    x_back, ld_back = scaled.inverse(z, raw)
    assert torch.allclose(x_back, x, atol=1e-9) and torch.allclose(ld_back, -ld, atol=1e-9)
    grid = 2 * 4.0 / k  # the uniform bin width
    assert torch.diff(scaled._knots(raw)[0], dim=1).min() > 0.05 * grid
    assert torch.diff(plain._knots(raw)[0], dim=1).min() < 0.01 * grid  # unscaled: collapsed
    with pytest.raises(ValueError, match="bin scale"):
        RQSpline(bins=6, bin_scale=0.0)
