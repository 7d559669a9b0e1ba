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


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("hidden", [(8, 6), (5,), (7, 7, 4), ()])
def test_backward_matches_finite_differences(hidden, skip):
    rng = np.random.default_rng(1)
    # dense init (sparsity 0) and random biases so every parameter gets a non-trivial gradient
    net = MLP(4, 3, hidden, sparsity=0.0, rng=rng, skip=skip)
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


def test_skip_path_is_linear_in_the_inputs_and_starts_at_zero():
    rng = np.random.default_rng(3)
    net = MLP(3, 2, (6, 5), sparsity=0.5, rng=rng, skip=True)
    plain = MLP(3, 2, (6, 5), sparsity=0.5, rng=np.random.default_rng(3))
    assert net.size == plain.size + 2 * 3
    x = rng.normal(size=3)
    np.testing.assert_allclose(net.forward(x)[0], plain.forward(x)[0])  # zero at start
    net.skip_w[...] = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.0]]
    assert np.shares_memory(net.skip_w, net.theta)
    np.testing.assert_allclose(net.forward(x)[0] - plain.forward(x)[0], net.skip_w @ x)
    clone = pickle.loads(pickle.dumps(net))
    clone.theta[-1] += 1.0  # the last block of theta is the skip path, still a view after pickling
    assert clone.skip_w[1, 2] == 1.0
    np.testing.assert_allclose(clone.forward(x)[0][1] - net.forward(x)[0][1], x[2])


def test_network_pickled_before_the_skip_path_loads_without_one():
    net = MLP(3, 2, (4,), rng=np.random.default_rng(0))
    state = net.__getstate__()
    del state["skip"]
    old = MLP.__new__(MLP)
    old.__setstate__(state)
    assert old.skip is False and old.skip_w is None
    np.testing.assert_allclose(old.forward(np.ones(3))[0], net.forward(np.ones(3))[0])


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


def test_obgd_step_matches_hand_computed_examples():
    # z starts at 0, so after one update z = ∇ = (0.5, -1, 2): ‖z‖₁ = 3.5
    grad = np.array([0.5, -1.0, 2.0])
    # |δ| = 3 > 1: M = α·κ·|δ|·‖z‖₁ = 1·2·3·3.5 = 21, step = 1/21, θ = 3/21·z
    theta = np.zeros(3)
    assert ObGD(kappa=2.0).update(theta, np.zeros(3), grad, 3.0) == pytest.approx(1 / 21)
    np.testing.assert_allclose(theta, [1 / 14, -1 / 7, 2 / 7])
    # |δ| = 0.25 < 1: δ̄ = 1, M = 2·1·3.5 = 7, step = 1/7, θ = 0.25/7·z
    theta = np.zeros(3)
    assert ObGD(kappa=2.0).update(theta, np.zeros(3), grad, 0.25) == pytest.approx(1 / 7)
    np.testing.assert_allclose(theta, [0.5 / 28, -1 / 28, 2 / 28])
    # small trace: M = 2·1·0.2 = 0.4 < 1, the full step α = 1 is taken
    theta = np.zeros(2)
    assert ObGD(kappa=2.0).update(theta, np.zeros(2), np.array([0.1, 0.1]), 0.2) == 1.0
    np.testing.assert_allclose(theta, [0.02, 0.02])
    # α = 0.5, κ = 4, δ = -2, z = (1, 1): M = 0.5·4·2·2 = 8, step = 0.5/8
    theta = np.zeros(2)
    assert ObGD(lr=0.5, kappa=4.0).update(theta, np.zeros(2), np.ones(2), -2.0) == pytest.approx(1 / 16)
    np.testing.assert_allclose(theta, [-1 / 8, -1 / 8])


def test_adaptive_obgd_first_step_by_hand():
    # first step: v̂ = (δz)², so the rescaled trace is z/|δz| = sign(z)/|δ| = (0.5, -0.5, 0.5);
    # ‖·‖₁ = 1.5, M = 1·2·2·1.5 = 6, step = 1/6, Δθ = step·δ·(0.5, -0.5, 0.5) = ±1/6
    opt = AdaptiveObGD(lr=1.0, kappa=2.0)
    theta = np.zeros(3)
    step = opt.update(theta, np.zeros(3), np.array([0.5, -1.0, 2.0]), 2.0)
    assert step == pytest.approx(1 / 6)
    np.testing.assert_allclose(theta, [1 / 6, -1 / 6, 1 / 6], rtol=1e-6)


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


def test_reward_scale_floor_leaves_small_returns_unscaled():
    # a ±1 reward at the end of 20-step episodes: the return trace is 0 on 19 steps of 20,
    # std ≈ 0.22. Without the floor the terminal reward is inflated ~4.5×; with it, unchanged.
    plain, floored = RewardScaler(), RewardScaler(floor=1.0)
    for ep in range(50):
        for t in range(20):
            r = (1.0 if ep % 2 else -1.0) if t == 19 else 0.0
            a, b = plain.scale(r, r), floored.scale(r, r)
    assert abs(a) > 4.0
    assert b == r
    # large returns are still divided by their std
    big = RewardScaler(floor=1.0)
    for r in np.random.default_rng(0).normal(scale=50.0, size=500):
        out = big.scale(r, r)
    assert abs(out) < abs(r) / 30


def test_relative_reward_floor_is_the_size_of_the_non_zero_rewards():
    # the floored walk above at any scale: the terminal reward is divided by its own size
    for size in (1e-3, 1.0, 1e3):
        rs = RewardScaler(relative=True)
        assert rs.std == pytest.approx(1.0)  # nothing seen yet
        for ep in range(50):
            for t in range(20):
                r = size * ((1.0 if ep % 2 else -1.0) if t == 19 else 0.0)
                out = rs.scale(r, r)
        assert out == pytest.approx(r / size)
    dense = RewardScaler(relative=True)  # large returns: still their std, as before
    for r in np.random.default_rng(0).normal(scale=50.0, size=500):
        out = dense.scale(r, r)
    assert abs(out) < abs(r) / 30


def test_time_feature_range():
    assert time_feature(0, 500) == -0.5
    assert time_feature(500, 500) == 0.5
