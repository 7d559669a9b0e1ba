"""Numpy router MLP: gradients, Adam, growth, feature encoder."""

from __future__ import annotations

import numpy as np
import pytest

from models.mlp import MLP, Adam, bce_with_logits
from models.scaling import FeatureEncoder


def _numeric_grad(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + eps
        fp = f()
        arr[i] = old - eps
        fm = f()
        arr[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("hidden", [(7, 5), (6,)])
def test_backward_matches_finite_differences(hidden):
    rng = np.random.default_rng(0)
    net = MLP(4, hidden, 3, seed=1)
    # non-zero biases so that the bias gradients are exercised away from 0
    for b in net.b:
        b[:] = rng.normal(0, 0.3, b.shape)
    X = rng.normal(size=(6, 4))
    M = (rng.random((6, 3)) < 0.4).astype(float)

    def loss() -> float:
        return net.loss_and_grads(X, M)[0]

    _, gW, gb = net.loss_and_grads(X, M)
    for li in range(len(net.W)):
        W = net.W[li] if li else net.W[0][: net.n_in]
        num = _numeric_grad(loss, W)
        np.testing.assert_allclose(gW[li], num, rtol=1e-4, atol=1e-8)
        num_b = _numeric_grad(loss, net.b[li])
        np.testing.assert_allclose(gb[li], num_b, rtol=1e-4, atol=1e-8)


def test_bce_with_logits_matches_naive_formula_and_is_stable():
    z = np.array([[-3.0, 0.0, 2.5], [800.0, -800.0, 0.1]])
    m = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    loss, dz = bce_with_logits(z, m)
    assert np.isfinite(loss) and np.all(np.isfinite(dz))
    small = z[:1]
    s = 1 / (1 + np.exp(-small))
    naive = -(m[:1] * np.log(s) + (1 - m[:1]) * np.log(1 - s)).mean()
    assert bce_with_logits(small, m[:1])[0] == pytest.approx(naive, rel=1e-12)
    np.testing.assert_allclose(bce_with_logits(small, m[:1])[1], (s - m[:1]) / small.size)


def test_adam_first_step_is_lr_times_sign_and_matches_reference():
    p = np.array([1.0, -2.0, 0.5])
    g = np.array([0.3, -4.0, 0.0])
    m, v = np.zeros(3), np.zeros(3)
    opt = Adam(lr=0.1)
    opt.step([p], [g], [m], [v])
    # bias-corrected first step: lr * g / (|g| + eps) ≈ lr * sign(g)
    np.testing.assert_allclose(p, [0.9, -1.9, 0.5], atol=1e-6)
    # second step against a straightforward Adam implementation
    g2 = np.array([0.1, 1.0, -0.2])
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    m_ref = 0.9 * m_ref + 0.1 * g2
    v_ref = 0.999 * v_ref + 0.001 * g2**2
    mh, vh = m_ref / (1 - 0.9**2), v_ref / (1 - 0.999**2)
    p_ref -= 0.1 * mh / (np.sqrt(vh) + 1e-8)
    opt.step([p], [g2], [m], [v])
    np.testing.assert_allclose(p, p_ref, rtol=1e-6)


def test_adam_minimises_a_quadratic():
    p = np.array([3.0, -2.0])
    m, v = np.zeros(2), np.zeros(2)
    opt = Adam(lr=0.05)
    for _ in range(2000):
        opt.step([p], [2 * (p - np.array([0.5, 1.0]))], [m], [v])
    np.testing.assert_allclose(p, [0.5, 1.0], atol=1e-2)


def test_fit_batch_learns_a_multilabel_target():
    rng = np.random.default_rng(3)
    net = MLP(5, (32, 16), 3, seed=0)
    opt = Adam(lr=5e-3)
    X = rng.normal(size=(256, 5))
    M = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] * X[:, 4] > 0], axis=1).astype(float)
    first = net.fit_batch(X, M, opt)
    for _ in range(300):
        last = net.fit_batch(X, M, opt)
    assert last < 0.5 * first


def test_growing_inputs_and_outputs_keeps_existing_function():
    rng = np.random.default_rng(0)
    net = MLP(3, (8, 4), 2, seed=5)
    x = rng.normal(size=3)
    z0 = net.forward_one(x).copy()
    net.add_inputs(20)  # beyond the initial capacity → reallocation
    assert net.n_in == 23 and net.capacity >= 23
    z1 = net.forward_one(np.concatenate([x, np.zeros(20)]))
    np.testing.assert_allclose(z1, z0)
    net.add_outputs(2)
    z2 = net.forward_one(np.concatenate([x, np.zeros(20)]))
    np.testing.assert_allclose(z2[:2], z0)
    assert z2.shape == (4,)
    # batch and single forward agree
    X = rng.normal(size=(5, 23))
    zb, _ = net.forward(X)
    np.testing.assert_allclose(zb[2], net.forward_one(X[2]))
    # a training step after growth touches only active rows and works
    opt = Adam()
    net.fit_batch(X, (rng.random((5, 4)) < 0.5).astype(float), opt)
    assert np.all(net.W[0][23:] == 0)


def test_same_seed_same_weights():
    a, b = MLP(4, (8,), 2, seed=7), MLP(4, (8,), 2, seed=7)
    c = MLP(4, (8,), 2, seed=8)
    assert all(np.array_equal(u, v) for u, v in zip(a.W, b.W, strict=True))
    assert not np.array_equal(a.W[1], c.W[1])


def test_feature_encoder_scales_onehots_and_grows_in_sorted_order():
    enc = FeatureEncoder()
    cols, vals, isnum, n_new = enc.encode({"b": 2.0, "a": 1.0, "c": "red"}, grow=True)
    assert n_new == 3
    # new keys sorted (numeric first) so column layout does not depend on dict order
    assert enc.num_index == {"a": 0, "b": 1} and enc.cat_index == {("c", "red"): 2}
    rng = np.random.default_rng(0)
    for v in rng.normal(10.0, 3.0, size=2000):
        cols, vals, isnum, _ = enc.encode({"a": float(v), "c": "blue"}, grow=True)
        enc.learn(cols, vals, isnum)
    assert enc.mean[0] == pytest.approx(10.0, abs=0.3)
    vec = enc.transform_one({"a": 13.0, "c": "blue", "zzz": 1.0})  # unknown key ignored
    assert vec.shape == (enc.n,)
    assert vec[0] == pytest.approx(1.0, abs=0.1)  # (13 - 10) / 3
    assert vec[enc.cat_index[("c", "blue")]] == 1.0 and vec[enc.cat_index[("c", "red")]] == 0.0
    assert vec[1] == 0.0  # absent feature → 0
    # NaN / None are treated as missing, numpy scalars as numbers
    cols, _, _, _ = enc.encode({"a": float("nan"), "b": None, "d": np.float32(1)}, grow=True)
    assert list(cols) == [enc.num_index["d"]]


def test_feature_encoder_respects_cap():
    enc = FeatureEncoder(max_features=3)
    for i in range(6):
        enc.encode({"f": f"v{i}"}, grow=True)
    assert enc.n == 3 and enc.n_ignored == 3
