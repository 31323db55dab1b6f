import keras
import numpy as np
import pytest
import tensorflow as tf

from ssdgm import UserError
from ssdgm.data import mnist
from ssdgm.data.batches import full_batches, minibatches
from ssdgm.models import blocks, m2
from ssdgm.models.features import Features, load_features
from ssdgm.models.m2 import M2
from ssdgm.training import loop


def random_weights(model, scale=0.5, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0, scale, v.shape).astype(np.float32))


def test_joint_dense_equals_dense_on_the_concatenation():
    layer = blocks.JointDense(4, "softplus", "code")
    x = tf.random.normal([6, 3])
    y = tf.one_hot([0, 3, 9, 9, 1, 2], 10)
    layer([x, y])
    kernel = tf.concat(layer.kernels, axis=0)
    expected = tf.nn.softplus(tf.concat([x, y], axis=1) @ kernel + layer.bias)
    np.testing.assert_allclose(layer([x, y]), expected, rtol=1e-5, atol=1e-6)
    every = layer([x, m2.every_class(10)])  # [10, 6, 4]: class k for the whole batch
    np.testing.assert_allclose(every[9], layer([x, tf.one_hot([9] * 6, 10)]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_unlabelled_bound_equals_an_explicit_loop_over_labels(likelihood):
    model = M2(x_dim=5, hidden=(7, 6), z_dim=3, likelihood=likelihood)
    random_weights(model)
    x = tf.random.normal([4, 5]) if likelihood == "gaussian" else tf.cast(tf.random.uniform([4, 5]) < 0.5, tf.float32)
    eps = tf.random.normal([10, 4, 3])
    got, _, _ = m2.unlabelled_bound(model, x, eps)
    qy = tf.nn.softmax(model.classify(x)).numpy()
    expected = -np.sum(qy * np.log(qy), axis=1)
    for k in range(10):
        bound_k, _, _ = m2.labelled_bound(model, x, tf.one_hot([k] * 4, 10), eps[k])
        expected += qy[:, k] * bound_k.numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_classifier_entropy_is_the_closed_form_of_softmax_of_the_output_bias():
    model = M2(x_dim=5, hidden=(7,), z_dim=3)
    bias = np.linspace(-2.0, 3.0, 10).astype(np.float32)
    model.classifier.layers[-1].kernel.assign(np.zeros(model.classifier.layers[-1].kernel.shape, np.float32))
    model.classifier.layers[-1].bias.assign(bias)
    q = np.exp(bias) / np.exp(bias).sum()
    x = np.random.default_rng(0).normal(size=(7000, 5)).astype(np.float32)  # more than one 5000-image chunk
    assert blocks.classifier_entropy(model, x) == pytest.approx(-np.sum(q * np.log(q)), rel=1e-5)
    model.classifier.layers[-1].bias.assign(np.zeros(10, np.float32))
    assert blocks.classifier_entropy(model, x) == pytest.approx(np.log(10), rel=1e-5)


def test_generative_error_rate_is_the_argmax_of_the_labelled_bound_over_classes():
    model = M2(x_dim=5, hidden=(7,), z_dim=3, likelihood="bernoulli")
    random_weights(model, scale=1.0)
    rng = np.random.default_rng(1)
    x = (rng.random((1500, 5)) < 0.5).astype(np.float32)  # more than one 1000-image chunk
    y = rng.integers(0, 10, 1500)
    eps = np.random.default_rng(7).standard_normal((10, 1500, 3), np.float32)  # what eval seed 7 draws
    bounds = np.stack([m2.labelled_bound(model, x, tf.one_hot([k] * 1500, 10), eps[k])[0].numpy()
                       for k in range(10)])
    expected = np.mean(np.argmax(bounds, axis=0) != y)
    assert 0.5 < expected < 0.95  # the classes' bounds differ, and not in the labels' favour
    assert m2.generative_error_rate(model, x, y, 7) == pytest.approx(expected)


def test_gaussian_log_likelihood_and_labelled_bound_match_closed_forms():
    x = np.array([[0.3, -1.2]], np.float32)
    mean = np.array([[0.1, 0.4]], np.float32)
    logvar = np.array([[-0.5, 0.7]], np.float32)
    closed = np.sum(-0.5 * np.log(2 * np.pi) - 0.5 * logvar - 0.5 * (x - mean) ** 2 / np.exp(logvar))
    np.testing.assert_allclose(blocks.gaussian_log_prob(x, mean, logvar), [closed], rtol=1e-6)

    model = M2(x_dim=2, hidden=(3,), z_dim=2)
    random_weights(model)
    y = tf.one_hot([4], 10)
    eps = tf.constant([[0.2, -0.9]])
    bound, log_px, kl = m2.labelled_bound(model, x, y, eps)
    z_mean, z_logvar = model.encode(x, y)
    kl_closed = 0.5 * np.sum(z_mean ** 2 + np.exp(z_logvar) - 1 - z_logvar)
    np.testing.assert_allclose(kl, [kl_closed], rtol=1e-5)
    np.testing.assert_allclose(bound, log_px - np.log(10) - kl, rtol=1e-6)


def test_beta_scales_only_the_classification_term():
    model = M2(x_dim=4, hidden=(5,), z_dim=2)
    random_weights(model)
    x_lab, y_lab, eps_lab = tf.random.normal([3, 4]), tf.constant([1, 5, 5]), tf.random.normal([3, 2])
    x_unl, eps_unl = tf.random.normal([6, 4]), tf.random.normal([10, 6, 2])
    loss0, terms0 = m2.loss_fn(model, x_lab, y_lab, eps_lab, x_unl, eps_unl, 0.0, 20, 100)
    loss7, terms7 = m2.loss_fn(model, x_lab, y_lab, eps_lab, x_unl, eps_unl, 7.0, 20, 100)
    log_qy = -tf.nn.sparse_softmax_cross_entropy_with_logits(y_lab, model.classify(x_lab))
    beta = blocks.label_weight(7.0, 100, 20)
    assert beta == 35.0
    np.testing.assert_allclose(float(loss7 - loss0), -beta * float(tf.reduce_sum(log_qy)) / 9, rtol=1e-4)
    for k in ("labelled_bound", "unlabelled_bound"):
        assert float(terms0[k]) == float(terms7[k])


def test_minibatches_for_100_labels_are_1_plus_499_and_fixed():
    y = mnist.load_splits()["train"][1]
    lab, unl = mnist.labelled_split(y, 100, seed=0)
    batches = minibatches(lab, unl, 100, seed=0)
    assert batches[0].shape == (100, 1) and batches[1].shape == (100, 499)
    assert sorted(batches[0].ravel()) == sorted(lab)
    assert sorted(batches[1].ravel()) == sorted(unl)
    again = minibatches(lab, unl, 100, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    with pytest.raises(UserError, match="do not divide into 7 equal minibatches"):
        minibatches(lab, unl, 7, seed=0)


def test_a_few_training_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, d = 400, 6
    y = rng.integers(0, 10, n).astype(np.int32)
    centres = rng.normal(0, 3, (10, d)).astype(np.float32)
    features = Features("features", centres[y] + rng.normal(0, 0.3, (n, d)).astype(np.float32),
                        np.full((n, d), -3.0, np.float32))
    model = M2(d, (32,), 4, init="code")
    optimizer = keras.optimizers.Adam(3e-3)
    optimizer.build(model.trainable_variables)
    step = m2.make_train_step(model, optimizer, features, y, loop.make_rng(0, "threefry"), 1.0, 40)
    steps = loop.compile_steps(step, model.trainable_variables)
    lab, unl = minibatches(np.arange(40), np.arange(40, n), 10, seed=0)
    losses = [float(steps(tf.constant(lab), tf.constant(unl))[0]["loss"]) / 10 for _ in range(8)]
    assert losses[-1] < losses[0] - 1.0


def test_pixel_labelled_bound_equals_numpy_by_hand():
    model = M2(x_dim=6, hidden=(4,), z_dim=3, likelihood="bernoulli")
    random_weights(model, scale=0.7)
    w = {v.path: v.numpy().astype(np.float64) for v in model.weights}
    rng = np.random.default_rng(1)
    x = (rng.random((5, 6)) < 0.5).astype(np.float32)
    labels = np.array([0, 3, 3, 9, 1])
    y = np.eye(10)[labels]
    eps = rng.standard_normal((5, 3)).astype(np.float32)
    softplus = lambda a: np.logaddexp(0.0, a)  # noqa: E731
    h = softplus(x @ w["encoder/h0/kernel_0"] + y @ w["encoder/h0/kernel_1"] + w["encoder/h0/bias"])
    out = h @ w["encoder/out/kernel"] + w["encoder/out/bias"]
    mean, logvar = out[:, :3], out[:, 3:]
    z = mean + np.exp(0.5 * logvar) * eps
    h = softplus(z @ w["decoder/h0/kernel_0"] + y @ w["decoder/h0/kernel_1"] + w["decoder/h0/bias"])
    logits = h @ w["decoder/out/kernel"] + w["decoder/out/bias"]
    log_px = np.sum(x * logits - np.logaddexp(0.0, logits), axis=1)  # log Bernoulli(x | sigmoid(logits))
    kl = 0.5 * np.sum(mean ** 2 + np.exp(logvar) - 1 - logvar, axis=1)
    bound, got_px, got_kl = m2.labelled_bound(model, tf.constant(x), tf.constant(y, tf.float32), tf.constant(eps))
    np.testing.assert_allclose(got_px, log_px, rtol=1e-4)
    np.testing.assert_allclose(got_kl, kl, rtol=1e-4)
    np.testing.assert_allclose(bound, log_px - np.log(10) - kl, rtol=1e-4)


@pytest.mark.parametrize("hidden, passes", [((500,), True), ((500, 500), False)])
def test_at_the_papers_init_only_one_hidden_layer_lets_the_image_reach_the_classifier(hidden, passes):
    """Why M2 alone failed with two layers: with weights N(0, 0.001^2) each softplus layer shrinks the
    image's variation about 40-fold, so after two the logits barely depend on the image (std across
    images ~1e-6) and the first layer's gradients sit at Adam's epsilon; the classifier stayed at chance."""
    keras.utils.set_random_seed(0)
    x, y = mnist.load_splits(subset=500)["train"]
    model = M2(784, hidden, 50, likelihood="bernoulli", init="paper")
    spread = float(tf.reduce_mean(tf.math.reduce_std(model.classify(x), axis=0)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model.classify(x)))
    first_kernel = model.classifier.layers[0].kernel
    per_weight = float(tf.norm(tape.gradient(loss, first_kernel))) / np.sqrt(np.prod(first_kernel.shape))
    assert (spread > 2e-5 and per_weight > 1e-6) == passes, (spread, per_weight)


def test_the_warm_up_teaches_the_decoder_the_digit_that_the_papers_start_ignores():
    """Why M2 alone stalled: from the paper's init the decoder ignores y, so the generative model's own
    classification, argmax_y L(x, y), is at chance even on the labelled images, and U(x) then holds
    q(y|x) uniform. The fast recipe's warm-up on the labelled part of J makes the decoder use y."""
    splits = mnist.load_splits(subset=1100)
    x, y = splits["train"]
    lab, _ = mnist.labelled_split(y, 100, seed=0)
    features = load_features("pixels", splits)
    keras.utils.set_random_seed(0)
    model = M2(784, (500,), 50, likelihood="bernoulli", init="paper")
    x_lab = mnist.binarize(x[lab], np.random.default_rng(1))
    assert m2.generative_error_rate(model, x_lab, y[lab], eval_seed=0) > 0.8
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    steps = loop.compile_steps(m2.make_train_step(model, optimizer, features, y, loop.make_rng(0, "threefry"), 0.1, 100),
                                   model.trainable_variables)
    lab_batches, unl_batches = full_batches(lab, 500)
    for s in range(0, 500, 10):
        steps(tf.constant(lab_batches[s: s + 10]), tf.constant(unl_batches[s: s + 10]))
    assert m2.generative_error_rate(model, x_lab, y[lab], eval_seed=0) < 0.5
