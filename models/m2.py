"""M2: the generative semi-supervised model of Kingma et al. (2014).

Generative model p(y) p(z) p(x|y, z): p(y) uniform over K classes, p(z) = N(0, I), p(x|y, z) a diagonal
Gaussian (x = M1's latent features z1, in M1+M2) or a Bernoulli (x = pixels, "M2 alone").
Inference model q(z|x, y) = N(mu(x, y), diag(exp(logvar(x, y)))) and the classifier q(y|x).

Bounds, for a labelled pair (x, y) and an unlabelled x:

    L(x, y) = E_q(z|x,y)[log p(x|y, z)] + log p(y) - KL(q(z|x, y) || p(z))
    U(x)    = sum_y q(y|x) L(x, y) + H(q(y|x))

and the objective maximised over the training set, with beta = alpha * N_total / N_labelled,

    J = sum_labelled [L(x, y) + beta log q(y|x)] + sum_unlabelled U(x) + log p(theta).

The sum over y in U(x) is exact and done as one batched pass: every tensor of the label sum has a
leading axis of K classes, and the first layer of q(z|x, y) computes x's product once, adding one row
of weights per class (see `JointDense`).

References:
  D. P. Kingma, D. J. Rezende, S. Mohamed, M. Welling. Semi-Supervised Learning with Deep Generative
  Models. NIPS 2014. arXiv:1406.5298.
"""
import math

import numpy as np

from ssdgm.models import ModelError
from ssdgm.models.blocks import (JointMLP, gaussian_kl_standard, gaussian_log_prob, in_chunks, label_weight, load_model,
                                 mlp, pixel_log_likelihood, reparameterize, weight_prior)
from ssdgm.tf import keras, tf


class M2(keras.Model):
    """q(y|x), q(z|x, y) and p(x|y, z), with a 'gaussian' or 'bernoulli' likelihood.

    Tensors may carry leading axes (such as K classes) before [batch, features]; y is one-hot.
    """

    def __init__(self, x_dim, hidden=(500,), z_dim=50, n_classes=10, likelihood="gaussian",
                 init="paper", on_pixels=None, **kwargs):
        """on_pixels: x is grey values (a Gaussian's variance then has a floor, MIN_PIXEL_LOGVAR), not M1's
        features; by default, as the likelihood says (Bernoulli: pixels, Gaussian: M1's features)."""
        super().__init__(**kwargs)
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        self.on_pixels = likelihood == "bernoulli" if on_pixels is None else on_pixels
        self.x_dim, self.hidden, self.z_dim = x_dim, tuple(hidden), z_dim
        self.n_classes, self.likelihood, self.init = n_classes, likelihood, init
        self.classifier = mlp(self.hidden, n_classes, init, "classifier")
        self.encoder = JointMLP(self.hidden, 2 * z_dim, init, name="encoder")
        x_params = 2 * x_dim if likelihood == "gaussian" else x_dim
        self.decoder = JointMLP(self.hidden, x_params, init, name="decoder")
        # One pass through each network creates its variables.
        x0, y0 = tf.zeros([1, x_dim]), tf.one_hot([0], n_classes)
        self.classify(x0)
        self.decode(self.encode(x0, y0)[0], y0)

    def get_config(self):
        config = {"x_dim": self.x_dim, "hidden": list(self.hidden), "z_dim": self.z_dim,
                  "n_classes": self.n_classes, "likelihood": self.likelihood, "init": self.init}
        # Only the Gaussian M2 on pixels says so: files of the others read as before.
        return {**config, "on_pixels": True} if self.on_pixels and self.likelihood == "gaussian" else config

    def classify(self, x):
        """q(y|x): logits [batch, K]."""
        return self.classifier(x)

    def encode(self, x, y):
        """q(z|x, y): mean and log-variance [..., batch, z_dim]."""
        mean, logvar = tf.split(self.encoder([x, y]), 2, axis=-1)
        return mean, logvar

    reparameterize = staticmethod(reparameterize)

    def decode(self, z, y):
        """p(x|y, z): Bernoulli logits, or Gaussian mean and log-variance concatenated."""
        return self.decoder([z, y])

    def log_px(self, x, params):
        """log p(x|y, z) summed over features: [..., batch]. M1's features have no variance floor."""
        if self.on_pixels:
            return pixel_log_likelihood(x, params, self.likelihood)
        mean, logvar = tf.split(params, 2, axis=-1)
        return gaussian_log_prob(x, mean, logvar)

    def call(self, x):
        return self.classify(x)


def labelled_bound(model, x, y, eps):
    """L(x, y) with one reparameterised sample of z.

    Args:
      x: [batch, x_dim]. y: one-hot [batch, K], or [K, 1, K] for every class at once.
      eps: standard normal [..., batch, z_dim], with the leading axes of y.
    Returns:
      L [..., batch], and the terms log p(x|y,z) and KL(q(z|x,y) || p(z)) of the same shape.
    """
    mean, logvar = model.encode(x, y)
    z = model.reparameterize(mean, logvar, eps)
    log_px = model.log_px(x, model.decode(z, y))
    kl_z = gaussian_kl_standard(mean, logvar)
    log_py = -math.log(model.n_classes)
    return log_px + log_py - kl_z, log_px, kl_z


def every_class(n_classes):
    """One-hot labels [K, 1, K]: row k is class k, broadcast over a batch."""
    return tf.eye(n_classes)[:, None, :]


def unlabelled_bound(model, x, eps):
    """U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)), the sum exact, in one batched pass.

    Args:
      x: [batch, x_dim].
      eps: standard normal [K, batch, z_dim], an independent sample for each class.
    Returns:
      U [batch], and the expected terms E_q(y|x) log p(x|y,z) and E_q(y|x) KL, each [batch].
    """
    log_qy = tf.nn.log_softmax(model.classify(x))  # [batch, K]
    qy = tf.exp(log_qy)
    bound, log_px, kl_z = labelled_bound(model, x, every_class(model.n_classes), eps)  # [K, batch]
    qy_t = tf.transpose(qy)  # [K, batch]
    entropy = -tf.reduce_sum(qy * log_qy, axis=-1)
    return (tf.reduce_sum(qy_t * bound, axis=0) + entropy,
            tf.reduce_sum(qy_t * log_px, axis=0), tf.reduce_sum(qy_t * kl_z, axis=0))


def loss_fn(model, x_lab, y_lab, eps_lab, x_unl, eps_unl, alpha, n_labelled, n_total):
    """Minimised per step: -(J^alpha on the minibatch) / batch - log p(theta) / N_total, where

        J^alpha = sum_labelled [L(x, y) + beta log q(y|x)] + sum_unlabelled U(x),
        beta = label_weight(alpha, N_total, N_labelled).

    The authors divide J by N_total and add the weight prior once per epoch; scaled to one
    example of the minibatch, that is this loss.

    Args:
      x_lab [n_lab, x_dim], y_lab int [n_lab], eps_lab [n_lab, z_dim]: the labelled examples.
      x_unl [n_unl, x_dim], eps_unl [K, n_unl, z_dim]: the unlabelled ones.
      alpha: the classification weight; n_labelled, n_total: labelled and all training examples.
    Returns:
      loss, and a dict of per-minibatch means of the terms for logging (the loss among them).
    """
    beta = label_weight(alpha, n_total, n_labelled)
    y_onehot = tf.one_hot(y_lab, model.n_classes)
    bound_lab, _, _ = labelled_bound(model, x_lab, y_onehot, eps_lab)
    log_qy = -tf.nn.sparse_softmax_cross_entropy_with_logits(y_lab, model.classify(x_lab))
    bound_unl, log_px_unl, kl_unl = unlabelled_bound(model, x_unl, eps_unl)
    n = tf.cast(tf.shape(x_lab)[0] + tf.shape(x_unl)[0], tf.float32)
    objective = tf.reduce_sum(bound_lab) + beta * tf.reduce_sum(log_qy) + tf.reduce_sum(bound_unl)
    loss = -objective / n - weight_prior(model) / n_total
    terms = {"loss": loss, "labelled_bound": mean_or_zero(bound_lab), "log_qy": mean_or_zero(log_qy),
             "unlabelled_bound": mean_or_zero(bound_unl), "reconstruction": mean_or_zero(log_px_unl),
             "kl": mean_or_zero(kl_unl)}
    return loss, terms


def make_minibatch_loss(model, inputs, labels, rng, alpha, n_labelled):
    """minibatch_loss(labelled indices, unlabelled indices) -> loss_fn's (loss, terms), on examples
    and noise drawn afresh from rng.

    inputs: a models.features.Features with training examples (drawn afresh at every step);
    labels: int [N_total], the training labels (read only at labelled indices).
    """
    loc, logvar = tf.constant(inputs.train_loc), tf.constant(inputs.train_logvar)
    labels = tf.constant(labels)
    n_total = len(inputs.train_loc)

    def minibatch_loss(lab, unl):
        x_lab = inputs.sample(tf.gather(loc, lab), tf.gather(logvar, lab), rng)
        x_unl = inputs.sample(tf.gather(loc, unl), tf.gather(logvar, unl), rng)
        eps_lab = rng.normal([tf.shape(lab)[0], model.z_dim])
        eps_unl = rng.normal([model.n_classes, tf.shape(unl)[0], model.z_dim])
        return loss_fn(model, x_lab, tf.gather(labels, lab), eps_lab, x_unl, eps_unl, alpha, n_labelled, n_total)
    return minibatch_loss


def make_train_step(model, optimizer, inputs, labels, rng, alpha, n_labelled):
    """step(labelled indices, unlabelled indices) -> mean terms: one Adam step on J^alpha (see
    make_minibatch_loss for the arguments)."""
    minibatch_loss = make_minibatch_loss(model, inputs, labels, rng, alpha, n_labelled)

    def step(lab, unl):
        with tf.GradientTape() as tape:
            loss, terms = minibatch_loss(lab, unl)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return terms
    return step


LOG_FIELDS = {}  # M2 logs what every model logs


def kind_of(config):
    """'m2' (on pixels) or 'm1m2' (on M1's features) for an M2's weights config, else None."""
    if "n_classes" not in config or "a_dim" in config:
        return None
    return "m2" if config.get("on_pixels", config.get("likelihood") == "bernoulli") else "m1m2"


def build(name, config, x_dim, n_classes=10):
    """The untrained M2 of a run's settings: on M1's features (model 'm1m2', a Gaussian p(x|y, z)) or on
    pixels (model 'm2', the settings' likelihood: Bernoulli unless told)."""
    return M2(x_dim, config["hidden"], config["z_dim"], n_classes,
              likelihood="gaussian" if name == "m1m2" else config.get("likelihood", "bernoulli"), on_pixels=name != "m1m2")


def train_step(config, model, optimizer, inputs, labels, rng):
    """make_train_step with a run's settings."""
    return make_train_step(model, optimizer, inputs, labels, rng, config["alpha"], config["labels"])


def generative_error_rate(model, x, y, eval_seed):
    """Fraction of images whose argmax_y L(x, y), the generative model's own classification (fixed
    noise seeded by eval_seed), is not their label. The unlabelled term pulls q(y|x) towards the
    posterior proportional to exp L(x, y), so this says where q(y|x) is being pulled."""
    eps = np.random.default_rng(eval_seed).standard_normal((model.n_classes, len(x), model.z_dim), np.float32)
    bound = in_chunks(lambda s: labelled_bound(model, x[s], every_class(model.n_classes), eps[:, s])[0],
                      len(x), 1000, axis=1)  # [K, n]
    return float(np.mean(np.argmax(bound, axis=0) != y))


def validation_bound(model, x, y, eval_seed):
    """Mean L(x, y) in nats per image on fixed noise (seeded by eval_seed): how well M2 models x."""
    eps = np.random.default_rng(eval_seed).standard_normal((len(x), model.z_dim), np.float32)
    bound = in_chunks(lambda s: labelled_bound(model, x[s], tf.one_hot(y[s], model.n_classes), eps[s])[0], len(x))
    return float(np.mean(bound))


def mean_or_zero(t):
    """Mean that is 0 for an empty tensor (fully labelled runs have no unlabelled examples)."""
    return tf.math.divide_no_nan(tf.reduce_sum(t), tf.cast(tf.size(t), t.dtype))


def load(path, missing_hint, kinds=("m1m2", "m2")):
    """An M2 rebuilt from a weights file written by train_M2.py, and the arrays saved with it
    (m1_sha256, kept_units); ModelError if missing, corrupt, not of `kinds` (M1+M2, M2 on pixels), or
    an M1+M2 without the M1 units it reads."""
    model, extra = load_model(M2, path, missing_hint, kinds)
    if not model.on_pixels and not ({"kept_units", "m1_sha256"} <= set(extra)):
        raise ModelError(f"{path}: M1+M2 weights without the M1 they read (extra_kept_units, extra_m1_sha256); "
                        "retrain them or restore the file")
    return model, extra
