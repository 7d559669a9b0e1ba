"""stream-x building blocks: network gradients, sparse init, ObGD bound, normalisers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.streamx import (
    MLP,
    AdaptiveObGD,
    ObGD,
    ObservationNormalizer,
    RewardScaler,
    RunningMeanStd,
    sparse_init,
    time_feature,
)


def _numeric_grad(net: MLP, x: np.ndarray, dout: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros(net.size)
    for i in range(net.size):
        old = net.theta[i]
        net.theta[i] = old + h
        up = float(dout @ net.forward(x)[0])
        net.theta[i] = old - h
        down = float(dout @ net.forward(x)[0])
        net.theta[i] = old
        g[i] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("hidden", [(8, 6), (5,), (7, 7, 4)])
def test_backward_matches_finite_differences(hidden):
    rng = np.random.default_rng(1)
    # dense init (sparsity 0) and random biases so every parameter gets a non-trivial gradient
    net = MLP(4, 3, hidden, sparsity=0.0, rng=rng)
    net.theta[:] = rng.normal(size=net.size)
    x = rng.normal(size=4)
    dout = rng.normal(size=3)
    _, cache = net.forward(x)
    analytic = net.backward(cache, dout).copy()
    numeric = _numeric_grad(net, x, dout)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)
    # single-output gradient used by Q(λ) equals backward with a one-hot vector
    row = net.backward_row(cache, 2).copy()
    np.testing.assert_allclose(row, net.backward(cache, np.eye(3)[2]))


def test_forward_matches_reference_formula():
    rng = np.random.default_rng(2)
    net = MLP(3, 2, (6, 5), sparsity=0.5, rng=rng)
    net.theta[:] = rng.normal(size=net.size)
    x = rng.normal(size=3)

    def ln_lrelu(v):
        y = (v - v.mean()) / np.sqrt(v.var() + 1e-5)
        return np.where(y > 0, y, 0.01 * y)

    (W1, b1), (W2, b2), (W3, b3) = net.layers
    expected = W3 @ ln_lrelu(W2 @ ln_lrelu(W1 @ x + b1) + b2) + b3
    np.testing.assert_allclose(net.forward(x)[0], expected, rtol=1e-10)


def test_sparse_init_zeroes_90_percent_of_each_unit_inputs():
    rng = np.random.default_rng(0)
    W = np.empty((50, 40))
    sparse_init(W, 0.9, rng)
    assert ((W == 0).sum(axis=1) == 36).all()  # ceil(0.9 * 40) per unit
    assert np.abs(W).max() <= 1 / np.sqrt(40)
    # the zeroed inputs differ between units
    assert len({tuple(np.flatnonzero(r)) for r in W}) > 40
    net = MLP(10, 2, (32, 32), rng=np.random.default_rng(0))
    for _, b in net.layers:
        assert (b == 0).all()


def test_network_pickle_keeps_views_linked():
    net = MLP(4, 2, (8, 8), rng=np.random.default_rng(0))
    net2 = pickle.loads(pickle.dumps(net))
    x = np.ones(4)
    np.testing.assert_array_equal(net.forward(x)[0], net2.forward(x)[0])
    net2.theta += 0.1  # views must follow the flat vector after unpickling
    assert not np.allclose(net.forward(x)[0], net2.forward(x)[0])
    assert np.shares_memory(net2.layers[0][0], net2.theta)


def test_obgd_step_is_bounded_by_kappa():
    opt = ObGD(lr=1.0, gamma=0.9, lam=0.5, kappa=2.0)
    rng = np.random.default_rng(0)
    for scale in (1e-4, 1.0, 100.0):
        z = np.zeros(20)
        grad = rng.normal(size=20) * scale
        theta = np.zeros(20)
        delta = 3.0
        step = opt.update(theta, z, grad, delta)
        m = 1.0 * 2.0 * max(abs(delta), 1.0) * np.abs(z).sum()
        assert step == pytest.approx(1.0 / max(1.0, m))
        np.testing.assert_allclose(theta, step * delta * z)
        # first-order change of the prediction is at most |δ|·‖∇‖∞/κ (the ObGD bound; with
        # LayerNorm features ‖∇‖∞ is O(1), hence "no overshooting")
        assert abs(grad @ theta) <= abs(delta) / 2.0 * np.abs(grad).max() + 1e-12
    # tiny traces take the full lr step
    z = np.zeros(3)
    assert opt.update(np.zeros(3), z, np.full(3, 1e-3), 0.5) == 1.0


def test_obgd_trace_decays_and_accumulates():
    opt = ObGD(gamma=0.5, lam=0.5)
    z = np.zeros(2)
    opt.accumulate(z, np.array([1.0, 0.0]))
    opt.accumulate(z, np.array([0.0, 1.0]))
    np.testing.assert_allclose(z, [0.25, 1.0])


def test_adaptive_obgd_bound_on_rescaled_trace():
    opt = AdaptiveObGD(lr=1.0, kappa=2.0)
    rng = np.random.default_rng(0)
    theta = np.zeros(10)
    z = np.zeros(10)
    for _ in range(5):
        before = theta.copy()
        step = opt.update(theta, z, rng.normal(size=10), 2.0)
        assert 0 < step <= 1.0
        v_hat = opt.v / (1 - opt.beta2**opt.count)
        zr = z / np.sqrt(v_hat + opt.eps)
        np.testing.assert_allclose(theta - before, step * 2.0 * zr)
        assert step == pytest.approx(1.0 / max(1.0, 2.0 * 2.0 * np.abs(zr).sum()))


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal(loc=5.0, scale=3.0, size=(500, 3)) * [1, 10, 0.1]
    st = RunningMeanStd(3)
    for row in data:
        st.update(row)
    np.testing.assert_allclose(st.mean, data.mean(axis=0))
    np.testing.assert_allclose(st.var, data.var(axis=0, ddof=1))
    norm = ObservationNormalizer(3)
    for row in data:
        out = norm(row)
    np.testing.assert_allclose(out, (data[-1] - data.mean(0)) / np.sqrt(data.var(0, ddof=1) + 1e-8))
    # update=False leaves the statistics untouched
    norm(np.full(3, 1e6), update=False)
    assert norm.stats.count == 500


def test_reward_scaler_uses_discounted_return_std():
    rs = RewardScaler()
    g, gs = 0.0, []
    rng = np.random.default_rng(0)
    for r in rng.normal(size=300):
        g = 0.9 * g + r
        gs.append(g)
        out = rs.scale(r, g)
    assert out == pytest.approx(r / np.sqrt(np.var(gs, ddof=1) + 1e-8))


def test_time_feature_range():
    assert time_feature(0, 500) == -0.5
    assert time_feature(500, 500) == 0.5
