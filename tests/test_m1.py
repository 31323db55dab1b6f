import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from ssdgm import UserError
from ssdgm.models import blocks, m1
from ssdgm.models.m1 import M1
from ssdgm.models.weights import save_weights
from ssdgm.training import loop

tfd = tfp.distributions


def softplus(a):
    return np.logaddexp(0.0, a)


def test_shapes_and_initialisation_follow_the_authors_code():
    model = M1(hidden=(500, 500), z_dim=50)
    mean, logvar = model.encode(tf.zeros([7, 784]))
    assert mean.shape == (7, 50) and logvar.shape == (7, 50)
    assert model.decode(tf.zeros([7, 50])).shape == (7, 784)
    kernel = model.encoder.layers[0].kernel.numpy()  # [784, 500], W ~ N(0, 1/784)
    assert abs(kernel.std() - 784 ** -0.5) < 0.002
    assert abs(model.encoder.layers[0].bias.numpy().std() - 1e-3) < 3e-4
    paper = M1(hidden=(600, 600), init="paper")
    assert abs(paper.encoder.layers[0].kernel.numpy().std() - 1e-3) < 1e-4
    assert not paper.encoder.layers[0].bias.numpy().any()


def test_analytic_kl_matches_monte_carlo():
    mean = tf.constant([[0.5, -1.0, 2.0]])
    logvar = tf.constant([[-1.0, 0.3, 0.0]])
    q = tfd.Normal(mean, tf.exp(0.5 * logvar))
    z = q.sample(400_000, seed=1)
    mc = tf.reduce_mean(tf.reduce_sum(q.log_prob(z) - tfd.Normal(0.0, 1.0).log_prob(z), -1))
    exact = blocks.gaussian_kl_standard(mean, logvar)[0]
    assert abs(float(mc) - float(exact)) < 0.02
    closed = 0.5 * np.sum(mean ** 2 + np.exp(logvar) - 1 - logvar)
    np.testing.assert_allclose(float(exact), closed, rtol=1e-6)


def test_bound_of_a_tiny_model_equals_numpy_by_hand():
    model = M1(x_dim=6, hidden=(4,), z_dim=3)
    rng = np.random.default_rng(0)
    for v in model.weights:  # weights large enough for every term to matter
        v.assign(rng.normal(0, 0.7, v.shape).astype(np.float32))
    x = (rng.random((5, 6)) < 0.5).astype(np.float32)
    eps = rng.standard_normal((5, 3)).astype(np.float32)
    w = [v.numpy().astype(np.float64) for v in model.weights]  # enc h, enc out, dec h, dec out
    h = softplus(x @ w[0] + w[1])
    out = h @ w[2] + w[3]
    mean, logvar = out[:, :3], out[:, 3:]
    z = mean + np.exp(0.5 * logvar) * eps
    logits = softplus(z @ w[4] + w[5]) @ w[6] + w[7]
    p = 1 / (1 + np.exp(-logits))
    log_px_z = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = 0.5 * np.sum(mean ** 2 + np.exp(logvar) - 1 - logvar, axis=1)
    got_bound, got_px, got_kl = m1.elbo(model, tf.constant(x), tf.constant(eps))
    np.testing.assert_allclose(got_bound, log_px_z - kl, rtol=1e-4)
    np.testing.assert_allclose(got_px, log_px_z, rtol=1e-4)
    np.testing.assert_allclose(got_kl, kl, rtol=1e-4)
    prior = -0.5 * sum(np.sum(a ** 2) for a in w)
    np.testing.assert_allclose(float(blocks.weight_prior(model)), prior, rtol=1e-5)
    loss, _ = m1.loss_fn(model, tf.constant(x), tf.constant(eps), n_train=1000)
    np.testing.assert_allclose(float(loss), -np.mean(log_px_z - kl) - prior / 1000, rtol=1e-4)
    # A prior N(0, 0.5^2) is four times the L2 term of N(0, 1).
    np.testing.assert_allclose(float(blocks.weight_prior(model, sd=0.5)), 4 * prior, rtol=1e-5)
    loss, _ = m1.loss_fn(model, tf.constant(x), tf.constant(eps), n_train=1000, prior_sd=0.5)
    np.testing.assert_allclose(float(loss), -np.mean(log_px_z - kl) - 4 * prior / 1000, rtol=1e-4)


def test_active_units_counts_varying_posterior_means():
    means = tf.constant([[0.0, 1.0, 5.0], [0.0, -1.0, 5.05], [0.0, 1.0, 4.95]])
    assert m1.active_units(means).numpy().tolist() == [False, True, False]


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    model = M1(hidden=(20, 10), z_dim=4)
    path = str(tmp_path / "m1.npz")
    save_weights(path, model, model.get_config())
    loaded = m1.load(path)
    x = tf.random.uniform([3, 784])
    np.testing.assert_array_equal(model(x), loaded(x))
    assert loaded.get_config() == model.get_config()


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(UserError, match="no weights; run `python train_M1.py -train`"):
        m1.load(str(tmp_path / "none.npz"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="corrupt"):
        m1.load(str(bad))


def test_a_few_training_steps_lower_the_loss():
    tf.random.set_seed(0)
    model = M1(hidden=(64, 64), z_dim=8)
    import keras
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    x = tf.constant(np.random.default_rng(0).random((300, 784), dtype=np.float32) ** 4)
    step = m1.make_train_step(model, optimizer, x, loop.make_rng(0, "philox"), 300)
    steps = loop.compile_steps(step, model.trainable_variables)
    batches = tf.constant(np.arange(300, dtype=np.int32).reshape(10, 30))
    first = float(steps(batches)[0]["loss"]) / 10
    for _ in range(4):
        totals, finite = steps(batches)
    assert float(totals["loss"]) / 10 < first - 50 and bool(finite)
    assert int(optimizer.iterations) == 50


def test_learning_rate_is_constant_then_linear_over_the_last_epochs():
    rates = [loop.learning_rate(1e-3, 10, 4, e) for e in range(1, 11)]
    np.testing.assert_allclose(rates, [1e-3] * 6 + [1e-3, 7.5e-4, 5e-4, 2.5e-4])
    assert {loop.learning_rate(3e-4, 10, 0, e) for e in range(1, 11)} == {3e-4}
    stepped = [loop.learning_rate(1.0, 10, 2, e, step_every=4, step_factor=0.5) for e in range(1, 11)]
    assert stepped == [1.0] * 4 + [0.5] * 4 + [0.25 * 2 / 2, 0.25 / 2]


def test_softplus_equals_tf_softplus_and_its_gradient_is_the_sigmoid():
    a = tf.constant(np.concatenate([np.linspace(-100, 100, 2001), [-1e-3, 1e-3, 30.5, -30.5]]), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(a)
        y = blocks.softplus(a)
    np.testing.assert_allclose(y.numpy(), tf.nn.softplus(a).numpy(), rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(tape.gradient(y, a).numpy(), tf.sigmoid(a).numpy(), rtol=1e-6, atol=1e-7)


def test_moving_average_is_the_closed_form_and_is_put_back_after_use():
    v = [tf.Variable([1.0, 2.0]), tf.Variable([[3.0]])]
    average = loop.MovingAverage(v, 0.9)
    v[0].assign([5.0, 6.0])
    v[1].assign([[7.0]])
    average.update(v, 3)  # three steps at 0.9 each: the old average keeps 0.729
    expected = [0.729 * np.array([1.0, 2.0]) + 0.271 * np.array([5.0, 6.0]), [[0.729 * 3 + 0.271 * 7]]]
    with average.applied(v):
        for var, want in zip(v, expected):
            np.testing.assert_allclose(var.numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(v[0].numpy(), [5.0, 6.0])
    np.testing.assert_array_equal(v[1].numpy(), [[7.0]])
    none = loop.MovingAverage(v, 0.0)
    none.update(v, 3)
    with none.applied(v):
        np.testing.assert_array_equal(v[0].numpy(), [5.0, 6.0])
    assert none.averages == []
