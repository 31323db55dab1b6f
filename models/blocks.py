"""Building blocks that the models share: initialisers, the activation, MLPs (plain, and on several
inputs at once), the log-densities and KL of the bounds, the weight prior, and evaluation in chunks."""
import math

import numpy as np
import tensorflow_probability as tfp

from ssdgm.models import ModelError
from ssdgm.models.registry import check_kind
from ssdgm.models.weights import assign_weights, read_weights
from ssdgm.tf import keras, tf

tfd = tfp.distributions


def initializers(init):
    """Weight and bias initialisers.

    'code': the authors' code, W ~ N(0, 1/fan_in), b ~ N(0, 0.001^2).
    'paper': the paper's text, W ~ N(0, 0.001^2), b = 0.
    """
    if init == "code":
        return (keras.initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal"),
                keras.initializers.RandomNormal(stddev=1e-3))
    if init == "paper":
        return keras.initializers.RandomNormal(stddev=1e-3), keras.initializers.Zeros()
    raise ValueError(f"init must be 'code' or 'paper', got {init!r}")


def softplus(a):
    """log(1 + exp(a)), the hidden layers' activation, written as max(a, 0) + log(1 + exp(-|a|)).

    Equal to tf.nn.softplus within float32 rounding (2e-6); max(a, 0) is written (a + |a|) / 2 so that
    the gradient is sigmoid(a) at a = 0 too. Under XLA on a CPU, tf.nn.softplus's log1p is not
    vectorised well, and this form is faster (docs/speed.md)."""
    return 0.5 * (a + tf.abs(a)) + tf.math.log(1.0 + tf.exp(-tf.abs(a)))


def mlp(hidden, out_units, init, name, activation=softplus, batchnorm=False):
    """Hidden layers (softplus, or another activation) then a linear output layer; with batchnorm, each
    hidden layer normalises its pre-activations over the minibatch (`hidden_layer`)."""
    w_init, b_init = initializers(init)
    layers = []
    for i, h in enumerate(hidden):
        dense = keras.layers.Dense(h, kernel_initializer=w_init, bias_initializer=b_init, name=f"{name}_h{i}")
        layers += hidden_layer(dense, activation, batchnorm, f"{name}_h{i}")
    layers.append(keras.layers.Dense(out_units, kernel_initializer=w_init, bias_initializer=b_init,
                                     name=f"{name}_out"))
    return keras.Sequential(layers, name=name)


def hidden_layer(dense, activation, batchnorm, name):
    """The layers of one hidden layer after its linear part: [batch normalisation,] activation.

    Batch normalisation standardises each unit over every leading axis (classes, draws and images of a
    minibatch) in training and by its moving averages in evaluation; the auxiliary models' authors
    found training much faster with it."""
    norm = [BatchNorm(name=f"{name}_bn")] if batchnorm else []
    return [dense] + norm + [keras.layers.Activation(activation, name=f"{name}_act")]


class BatchNorm(keras.layers.Layer):
    """Batch normalisation (Ioffe and Szegedy 2015) of the last axis over all the others, whatever their
    number (Keras's layer fixes the rank at its first call; here a network sees [batch], [S, batch] and
    [K, S, batch] leading axes). Weights: gamma, beta, then the moving mean and variance. A frozen layer
    (trainable False, as q(a|x) under fixed_q_a) normalises by its averages in training too, as Keras's,
    so that the network it belongs to stays the function it was."""

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = momentum, epsilon

    def build(self, shape):
        units = (shape[-1],)
        self.gamma = self.add_weight(shape=units, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=units, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=units, initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=units, initializer="ones", trainable=False,
                                               name="moving_variance")

    def call(self, h, training=False):
        if training and self.trainable:
            mean, variance = tf.nn.moments(h, axes=list(range(len(h.shape) - 1)))
            for average, value in ((self.moving_mean, mean), (self.moving_variance, variance)):
                average.assign(self.momentum * average + (1.0 - self.momentum) * tf.stop_gradient(value))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return tf.nn.batch_normalization(h, mean, variance, self.beta, self.gamma, self.epsilon)


class JointDense(keras.layers.Layer):
    """Dense layer on the concatenation of its inputs [u_1, ..., u_n], computed as
    sum_i u_i W_i + b.

    Equal to a Dense layer on the concatenation with kernel [W_1; ...; W_n]; written apart so that
    inputs of different leading axes broadcast: with x [batch, d] and every class y [K, 1, K], x W_x
    is computed once for the K classes. Its weights are W_1, ..., W_n, b, in that order.
    """

    def __init__(self, units, activation, init, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.w_init, self.b_init = initializers(init)

    def build(self, shapes):
        self.kernels = [self.add_weight(shape=(shape[-1], self.units), initializer=self.w_init, name=f"kernel_{i}")
                        for i, shape in enumerate(shapes)]
        self.bias = self.add_weight(shape=(self.units,), initializer=self.b_init, name="bias")

    def call(self, inputs):
        total = tf.matmul(inputs[0], self.kernels[0])
        for u, w in zip(inputs[1:], self.kernels[1:]):
            total = total + tf.matmul(u, w)  # + broadcasts the leading axes, tf.add_n does not
        return self.activation(total + self.bias)


class JointMLP(keras.layers.Layer):
    """MLP on the concatenation of its inputs: a JointDense hidden layer, further hidden layers, a
    linear output layer (activation: softplus, or 'relu' as the ADGM authors; batchnorm as `mlp`)."""

    def __init__(self, hidden, out_units, init, activation=softplus, batchnorm=False, **kwargs):
        super().__init__(**kwargs)
        w_init, b_init = initializers(init)
        self.hidden_layers = hidden_layer(JointDense(hidden[0], None, init, name="h0"), activation, batchnorm, "h0")
        for i, h in enumerate(hidden[1:]):
            dense = keras.layers.Dense(h, kernel_initializer=w_init, bias_initializer=b_init, name=f"h{i + 1}")
            self.hidden_layers += hidden_layer(dense, activation, batchnorm, f"h{i + 1}")
        self.out = keras.layers.Dense(out_units, kernel_initializer=w_init, bias_initializer=b_init,
                                      name="out")

    @property
    def first(self):
        """The JointDense layer."""
        return self.hidden_layers[0]

    @property
    def rest(self):
        """The Dense hidden layers after it."""
        return [layer for layer in self.hidden_layers[1:] if isinstance(layer, keras.layers.Dense)]

    def call(self, inputs, training=False):
        h = inputs
        for layer in self.hidden_layers:
            h = layer(h, training=training) if isinstance(layer, BatchNorm) else layer(h)
        return self.out(h)


def reparameterize(mean, logvar, eps):
    """z = mean + exp(logvar / 2) * eps: a sample of N(mean, exp(logvar)) from standard normal eps."""
    return mean + tf.exp(0.5 * logvar) * eps


def gaussian_kl_standard(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, 1)) summed over the last axis, in closed form: [..., batch]."""
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(logvar) - 1.0 - logvar, axis=-1)


def bernoulli_log_prob(x, logits):
    """log Bernoulli(x | sigmoid(logits)) summed over the last axis: [..., batch]."""
    return tf.reduce_sum(tfd.Bernoulli(logits=logits, dtype=x.dtype).log_prob(x), axis=-1)


# The smallest log-variance of a Gaussian over grey values, a standard deviation of 0.01 of the [0, 1]
# range: a pixel that is constant in the data (a digit's blank corner) would otherwise gain without bound.
MIN_PIXEL_LOGVAR = 2 * math.log(0.01)


def gaussian_log_prob(x, mean, logvar):
    """log N(x | mean, diag(exp(logvar))) summed over the last axis: [..., batch]."""
    return tf.reduce_sum(tfd.Normal(mean, tf.exp(0.5 * logvar)).log_prob(x), axis=-1)


def pixel_log_likelihood(x, params, likelihood):
    """log p(x|.) of grey values x summed over the pixels, from a decoder's params: Bernoulli logits, or a
    Gaussian's mean and log-variance concatenated (its variance floored at MIN_PIXEL_LOGVAR): [..., batch]."""
    if likelihood == "bernoulli":
        return bernoulli_log_prob(x, params)
    mean, logvar = tf.split(params, 2, axis=-1)
    return gaussian_log_prob(x, mean, tf.maximum(logvar, MIN_PIXEL_LOGVAR))


def pixel_mean(params, likelihood, decode=lambda mean: mean):
    """E[x|.] of a decoder's params as grey values in [0, 1], for pictures: the Bernoulli's probabilities,
    or the Gaussian's mean (mapped by `decode` first, such as back from PCA components) clipped to [0, 1]."""
    if likelihood == "bernoulli":
        return tf.sigmoid(params)
    return tf.clip_by_value(decode(tf.split(params, 2, axis=-1)[0]), 0.0, 1.0)


def weight_prior(model, sd=1.0):
    """log N(theta | 0, sd^2 I) over every weight and bias, without its constant:
    -sum(theta^2) / (2 sd^2). The authors use sd = 1."""
    return -0.5 * tf.add_n([tf.reduce_sum(tf.square(v)) for v in model.trainable_variables]) / sd ** 2


def in_chunks(fn, n, size=5000, axis=0):
    """fn(slice) over the slices [0, size), [size, 2 size), ... of n items, its outputs (an array or a
    tuple of arrays) joined along axis as numpy: evaluation of many images in bounded memory."""
    parts = [fn(slice(i, i + size)) for i in range(0, max(n, 1), size)]  # n = 0: one empty slice
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([np.asarray(p[j]) for p in parts], axis=axis) for j in range(len(parts[0])))
    return np.concatenate([np.asarray(p) for p in parts], axis=axis)


def label_weight(alpha, n_total, n_labelled):
    """beta = alpha * N_total / N_labelled: the weight of log q(y|x) on a labelled example, so that
    the classification term weighs alpha times the bound over the whole set (the paper's
    "alpha = 0.1 N")."""
    return alpha * n_total / n_labelled


def classifier_logits(model, x):
    """q(y|x)'s logits [n, K] for many images, 5000 at a time."""
    return in_chunks(lambda s: model.classify(x[s]), len(x))


def error_rate(model, x, y):
    """Fraction of images whose argmax q(y|x) is not their label."""
    return float(np.mean(np.argmax(classifier_logits(model, x), axis=1) != y))


def classifier_entropy(model, x):
    """Mean entropy of q(y|x) over images x, in nats: log K for a classifier that cannot tell."""
    log_q = tf.nn.log_softmax(classifier_logits(model, x))
    return float(tf.reduce_mean(-tf.reduce_sum(tf.exp(log_q) * log_q, axis=-1)))


def load_model(model_class, path, missing_hint, kinds):
    """A model_class rebuilt from a weights file written by a training script, and the arrays saved
    with it; ModelError if the file is missing, corrupt or not of one of `kinds` (files.weights_kind)."""
    config, weights, extra = read_weights(path, missing_hint)
    check_kind(path, config, kinds)
    try:
        model = model_class(**config)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{path}: not {model_class.__name__} weights ({e})")
    assign_weights(model, weights, path)
    return model, extra
