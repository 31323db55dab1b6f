"""ADGM and SDGM: the auxiliary deep generative models of Maaløe et al. (2016), on pixels.

An auxiliary latent variable a makes the inference model richer than M2's:

    inference (both)  q(a, y, z|x) = q(a|x) q(y|a, x) q(z|a, y, x)
    ADGM generative   p(x, y, z, a) = p(y) p(z) p(x|y, z) p(a|x, y, z)   (M2's model, plus a given all)
    SDGM generative   p(x, y, z, a) = p(y) p(z) p(a|y, z) p(x|a, y, z)   (a second stochastic layer)

p(y) uniform over K classes, p(z) = N(0, I), p(x|.) Bernoulli, every other distribution a diagonal
Gaussian whose mean and log-variance an MLP reads from the concatenation of what it is conditioned on.

The ADGM authors' first released code (ml-lab/auxiliary-deep-generative-models) is an earlier form of
the ADGM, `first_code`: q(a|x) at its random initial weights, q(z|y, x) without a, and p(a) = N(0, I)
in place of p(a|x, y, z). Its a is then a fixed noisy projection of x that only the classifier reads.
With several draws its unlabelled bound averages q(y|a, x) and the bound over them before the sum over
y (`unlabelled_bound`).

Bounds, for a labelled pair (x, y) and an unlabelled x, with a ~ q(a|x) and z ~ q(z|a, y, x):

    L(x, y) = E_a E_z[log p(x|.) + log p(a|.)] + log p(y) - E_a KL(q(z|a, y, x) || p(z)) + H(q(a|x))
    U(x)    = E_a[sum_y q(y|a, x) (L_a(x, y) - log q(y|a, x))] + H(q(a|x))

where L_a(x, y) is L(x, y) for the one a, without H(q(a|x)); the KL of z and the entropy of a are in
closed form, the rest one sample each. The objective is M2's, with the classifier's term averaged
over a:

    J = sum_labelled [L(x, y) + beta E_a log q(y|a, x)] + sum_unlabelled U(x) + log p(theta).

As in M2, the sum over y is exact and batched (a leading axis of K classes), and a first layer that
reads several inputs computes each input's product once (`JointDense`): x's and a's once per image
and sample, y's once per class.

References:
  L. Maaløe, C. K. Sønderby, S. K. Sønderby, O. Winther. Auxiliary Deep Generative Models. ICML 2016.
  arXiv:1602.05473.
"""
import math

import numpy as np

from ssdgm.data.mnist import EVAL_SEED
from ssdgm.models.blocks import (JointMLP, bernoulli_log_prob, gaussian_kl_standard, gaussian_log_prob, in_chunks,
                                 label_weight, load_model, mlp, reparameterize, weight_prior)
from ssdgm.models.m2 import every_class, mean_or_zero
from ssdgm.tf import keras, tf

EVAL_SAMPLES = 10  # draws of a whose q(y|a, x) are averaged to classify an image


class AuxiliaryDGM(keras.Model):
    """q(a|x), q(y|a, x), q(z|a, y, x), p(x|.) and p(a|.) of an ADGM (kind 'adgm') or SDGM ('sdgm').

    Tensors may carry leading axes (K classes, then S samples of a) before [batch, features]; y is
    one-hot. `classify` is the evaluated classifier: q(y|a, x) averaged over EVAL_SAMPLES fixed draws of a.
    """

    def __init__(self, x_dim, hidden=(500, 500), a_dim=100, z_dim=100, n_classes=10, kind="adgm",
                 activation="relu", init="code", fixed_q_a=False, batchnorm=False, first_code=False, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("adgm", "sdgm"):
            raise ValueError(f"kind must be 'adgm' or 'sdgm', got {kind!r}")
        if first_code and kind != "adgm":
            raise ValueError("first_code is the ADGM authors' first code: kind 'adgm' only")
        self.x_dim, self.hidden, self.a_dim, self.z_dim = x_dim, tuple(hidden), a_dim, z_dim
        self.n_classes, self.kind, self.activation, self.init = n_classes, kind, activation, init
        self.fixed_q_a, self.batchnorm, self.first_code = fixed_q_a or first_code, batchnorm, first_code
        act = keras.activations.get(activation)
        self.q_a = mlp(self.hidden, 2 * a_dim, init, "q_a", act, batchnorm)
        # fixed_q_a keeps q(a|x) at its random initial weights, as the ADGM authors' first code does:
        # a then stays a noisy random projection of x, which a trained q(a|x) can collapse to a constant.
        self.q_a.trainable = not self.fixed_q_a
        self.q_y = JointMLP(self.hidden, n_classes, init, act, batchnorm, name="q_y")
        self.q_z = JointMLP(self.hidden, 2 * z_dim, init, act, batchnorm, name="q_z")
        self.p_x = JointMLP(self.hidden, x_dim, init, act, batchnorm, name="p_x")
        self.p_a = None if first_code else JointMLP(self.hidden, 2 * a_dim, init, act, batchnorm, name="p_a")
        # One pass through each network creates its variables.
        x0, y0 = tf.zeros([1, x_dim]), tf.one_hot([0], n_classes)
        a0, z0 = tf.zeros([1, a_dim]), tf.zeros([1, z_dim])
        self.encode_a(x0)
        self.classify_given(a0, x0)
        self.encode_z(a0, x0, y0)
        self.decode_x(a0, z0, y0)
        self.decode_a(x0, z0, y0)

    def get_config(self):
        return {"x_dim": self.x_dim, "hidden": list(self.hidden), "a_dim": self.a_dim, "z_dim": self.z_dim,
                "n_classes": self.n_classes, "kind": self.kind, "activation": self.activation, "init": self.init,
                "fixed_q_a": self.fixed_q_a, "batchnorm": self.batchnorm, "first_code": self.first_code}

    # training: batch statistics in the batch-normalised layers, whose moving averages it updates; else
    # those averages. Without batchnorm it changes nothing.
    def encode_a(self, x, training=False):
        """q(a|x): mean and log-variance [batch, a_dim]."""
        return tf.split(self.q_a(x, training=training), 2, axis=-1)

    def classify_given(self, a, x, training=False):
        """q(y|a, x): logits [..., batch, K]."""
        return self.q_y([a, x], training=training)

    def encode_z(self, a, x, y, training=False):
        """q(z|a, y, x), or q(z|y, x) under first_code: mean and log-variance [..., batch, z_dim] (without
        the axis of the draws of a under first_code)."""
        return tf.split(self.q_z([x, y] if self.first_code else [a, x, y], training=training), 2, axis=-1)

    def decode_x(self, a, z, y, training=False):
        """p(x|y, z) (ADGM) or p(x|a, y, z) (SDGM): Bernoulli logits [..., batch, x_dim]."""
        return self.p_x([z, y] if self.kind == "adgm" else [a, z, y], training=training)

    def decode_a(self, x, z, y, training=False):
        """p(a|x, y, z) (ADGM), p(a|y, z) (SDGM) or N(0, I) (first_code): mean and log-variance
        [..., batch, a_dim] ([a_dim] under first_code)."""
        if self.first_code:
            return tf.zeros([self.a_dim]), tf.zeros([self.a_dim])
        return tf.split(self.p_a([x, z, y] if self.kind == "adgm" else [z, y], training=training), 2, axis=-1)

    def classify(self, x):
        """log of q(y|a, x) averaged over EVAL_SAMPLES fixed draws of a ~ q(a|x): [batch, K]."""
        mean, logvar = self.encode_a(x)
        eps = tf.random.stateless_normal([EVAL_SAMPLES, tf.shape(x)[0], self.a_dim], [EVAL_SEED, 0])
        log_q = tf.nn.log_softmax(self.classify_given(reparameterize(mean, logvar, eps), x))
        return tf.reduce_logsumexp(log_q, axis=0) - math.log(EVAL_SAMPLES)

    def call(self, x):
        return self.classify(x)


def gaussian_entropy(logvar):
    """H(N(mean, diag(exp(logvar)))) = sum (log(2 pi e) + logvar) / 2 over the last axis: [..., batch]."""
    return 0.5 * tf.reduce_sum(math.log(2 * math.pi * math.e) + logvar, axis=-1)


def sample_a(model, x, eps_a, training=False):
    """a = reparameterised draws of q(a|x) from eps_a [S, batch, a_dim], and H(q(a|x)) [batch]."""
    mean, logvar = model.encode_a(x, training)
    return reparameterize(mean, logvar, eps_a), gaussian_entropy(logvar)


def bound_given_a(model, x, y, a, eps_z, training=False):
    """L_a(x, y) = E_z[log p(x|.) + log p(a|.)] + log p(y) - KL(q(z|a, y, x) || p(z)), one draw of z.

    Args:
      x [batch, x_dim]; y one-hot [batch, K] or every class [K, 1, 1, K]; a [S, batch, a_dim];
      eps_z: standard normal [..., S, batch, z_dim], with y's leading axes.
    Returns:
      L_a [..., S, batch], and its terms log p(x|.), log p(a|.) and KL of z, of the same shape.
    """
    mean, logvar = model.encode_z(a, x, y, training)
    z = reparameterize(mean, logvar, eps_z)
    log_px = bernoulli_log_prob(x, model.decode_x(a, z, y, training))
    a_mean, a_logvar = model.decode_a(x, z, y, training)
    log_pa = gaussian_log_prob(a, a_mean, a_logvar)
    kl_z = gaussian_kl_standard(mean, logvar)
    return log_px + log_pa - math.log(model.n_classes) - kl_z, log_px, log_pa, kl_z


def labelled_bound(model, x, y, eps_a, eps_z, training=False):
    """L(x, y): bound_given_a averaged over the S draws of a, plus H(q(a|x)).

    Args: x [batch, x_dim], y one-hot [batch, K], eps_a [S, batch, a_dim], eps_z [S, batch, z_dim].
    Returns: L [batch], and the draws of a [S, batch, a_dim] (for the classifier's term).
    """
    a, entropy_a = sample_a(model, x, eps_a, training)
    bound, _, _, _ = bound_given_a(model, x, y, a, eps_z, training)
    return tf.reduce_mean(bound, axis=0) + entropy_a, a


def authors_draw_mix(t):
    """The draws of a bound [..., S, batch] as the ADGM authors' first code averages them: entry (s, j)
    of the result holds image (s batch + j) // S, draw (s batch + j) % S.

    Their unlabelled bound `lb_u` has one row per (class, image, draw), draw-minor, as their sampling
    layers emit them, and is reshaped to (classes, draws, 1, images) with no transpose before the mean
    over draws (models/adgmssl.py, build_model, lines 225-227 at 3f16325). So at S draws the mean for
    image j averages one draw each of S images (at 10 draws and 100 images, 10 s + j // 10), its own
    among them in only a few rows; at one draw it is exact. Over their class-sorted minibatches those
    images are of j's class (data.batches.class_sorted_minibatches).
    """
    return tf.reshape(tf.linalg.matrix_transpose(t), tf.shape(t))


def unlabelled_bound(model, x, eps_a, eps_z, training=False, authors_mix=False):
    """U(x) = E_a[sum_y q(y|a, x) (L_a(x, y) - log q(y|a, x))] + H(q(a|x)), the sum exact.

    Under first_code, the form of that code: q(y|a, x) and L_a(x, y) are each averaged over the S draws
    before the sum over y, U(x) = sum_y qbar(y) (Lbar(x, y) - log qbar(y)) + H(q(a|x)); the same as the
    paper's at one draw. With authors_mix (first_code only) the average of the bound and of H(q(a|x))
    for each image is that code's, over other images' draws (`authors_draw_mix`); qbar stays the image's own.

    Args: x [batch, x_dim], eps_a [S, batch, a_dim], eps_z [K, S, batch, z_dim] (a draw per class).
    Returns: U [batch], and the expected log p(x|.), log p(a|.) and KL of z, each [batch].
    """
    if authors_mix and not model.first_code:
        raise ValueError("authors_mix is the ADGM authors' first code's average: first_code models only")
    a, entropy_a = sample_a(model, x, eps_a, training)
    log_qy = tf.nn.log_softmax(model.classify_given(a, x, training))  # [S, batch, K]
    terms = bound_given_a(model, x, every_class(model.n_classes)[:, None], a, eps_z, training)  # each [K, S, batch]
    if authors_mix:
        terms = [authors_draw_mix(t) for t in terms]
        entropy_a = tf.reduce_mean(authors_draw_mix(tf.broadcast_to(entropy_a, tf.shape(log_qy)[:-1])), axis=0)
    if model.first_code:
        draws = tf.cast(tf.shape(log_qy)[0], log_qy.dtype)
        log_qy = tf.reduce_logsumexp(log_qy, axis=0, keepdims=True) - tf.math.log(draws)  # [1, batch, K], finite
        terms = [tf.reduce_mean(t, axis=1, keepdims=True) for t in terms]  # each [K, 1, batch]
    qy = tf.exp(log_qy)
    qy_k = tf.transpose(qy, [2, 0, 1])  # [K, S or 1, batch]
    expected = [tf.reduce_mean(tf.reduce_sum(qy_k * t, axis=0), axis=0) for t in terms]
    entropy_y = tf.reduce_mean(-tf.reduce_sum(qy * log_qy, axis=-1), axis=0)
    return expected[0] + entropy_y + entropy_a, expected[1], expected[2], expected[3]


def loss_fn(model, x_lab, y_lab, eps_lab, x_unl, eps_unl, alpha, n_labelled, n_total, authors_mix=False):
    """Minimised per step: -(J on the minibatch) / batch - log p(theta) / N_total, as M2's loss_fn,
    with beta = label_weight(alpha, N_total, N_labelled) on E_a log q(y|a, x). Batch-normalised layers
    use each pass's own statistics: the labelled images', and the unlabelled images' with every class.

    eps_lab = (eps_a [S, n_lab, a_dim], eps_z [S, n_lab, z_dim]);
    eps_unl = (eps_a [S, n_unl, a_dim], eps_z [K, S, n_unl, z_dim]).
    authors_mix: the unlabelled bound averaged over draws as the ADGM authors' first code (unlabelled_bound).
    Returns loss, and a dict of per-minibatch means of the terms for logging (the loss among them).
    """
    beta = label_weight(alpha, n_total, n_labelled)
    bound_lab, a_lab = labelled_bound(model, x_lab, tf.one_hot(y_lab, model.n_classes), *eps_lab, training=True)
    logits = model.classify_given(a_lab, x_lab, training=True)  # [S, n_lab, K]
    labels = tf.broadcast_to(y_lab, tf.shape(logits)[:-1])
    log_qy = tf.reduce_mean(-tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits), axis=0)
    bound_unl, log_px_unl, log_pa_unl, kl_unl = unlabelled_bound(model, x_unl, *eps_unl, training=True,
                                                                 authors_mix=authors_mix)
    n = tf.cast(tf.shape(x_lab)[0] + tf.shape(x_unl)[0], tf.float32)
    objective = tf.reduce_sum(bound_lab) + beta * tf.reduce_sum(log_qy) + tf.reduce_sum(bound_unl)
    loss = -objective / n - weight_prior(model) / n_total
    terms = {"loss": loss, "labelled_bound": mean_or_zero(bound_lab), "log_qy": mean_or_zero(log_qy),
             "unlabelled_bound": mean_or_zero(bound_unl), "reconstruction": mean_or_zero(log_px_unl),
             "log_pa": mean_or_zero(log_pa_unl), "kl": mean_or_zero(kl_unl)}
    return loss, terms


def make_train_step(model, optimizer, inputs, labels, rng, alpha, n_labelled, samples=1, clip_norm=5.0,
                    authors_mix=False, n_total=None):
    """step(labelled indices, unlabelled indices) -> mean terms: one Adam step on J, with `samples`
    draws of (a, z) per image, the pixels binarised afresh, and the gradient clipped to total norm
    clip_norm then to [-1, 1] each, as the authors (a step of an auxiliary model can be far larger than
    its neighbours early on). n_total, the N_total of beta and of the weight prior, is the number of
    training images unless given; authors_mix as in loss_fn."""
    pixels, labels = tf.constant(inputs.train_loc), tf.constant(labels)
    n_total = n_total or len(inputs.train_loc)
    a_dim, z_dim, k = model.a_dim, model.z_dim, model.n_classes

    def step(lab, unl):
        x_lab = inputs.sample(tf.gather(pixels, lab), None, rng)
        x_unl = inputs.sample(tf.gather(pixels, unl), None, rng)
        n_lab, n_unl = tf.shape(lab)[0], tf.shape(unl)[0]
        eps_lab = rng.normal([samples, n_lab, a_dim]), rng.normal([samples, n_lab, z_dim])
        eps_unl = rng.normal([samples, n_unl, a_dim]), rng.normal([k, samples, n_unl, z_dim])
        with tf.GradientTape() as tape:
            loss, terms = loss_fn(model, x_lab, tf.gather(labels, lab), eps_lab, x_unl, eps_unl, alpha,
                                  n_labelled, n_total, authors_mix)
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, model.trainable_variables), clip_norm)
        optimizer.apply([tf.clip_by_value(g, -1.0, 1.0) for g in grads], model.trainable_variables)
        return terms
    return step


def build(name, config, x_dim, n_classes=10):
    """The untrained ADGM or SDGM (model 'adgm' or 'sdgm') of a run's settings."""
    return AuxiliaryDGM(x_dim, config["hidden"], config["a_dim"], config["z_dim"], n_classes, kind=name,
                        activation=config["activation"], fixed_q_a=config.get("fixed_q_a", False),
                        batchnorm=config.get("batchnorm", False), first_code=config.get("first_code", False))


def train_step(config, model, optimizer, inputs, labels, rng):
    """make_train_step with a run's settings (authors_leak: the authors' average over draws, and beta and
    the prior of the training images alone, config["n_total"], where their pool also holds the validation
    images)."""
    return make_train_step(model, optimizer, inputs, labels, rng, config["alpha"], config["labels"],
                           config["samples"], config["clip_norm"], config.get("authors_leak", False),
                           config.get("n_total"))


def _eval_noise(model, n, eval_seed, classes=None):
    """Fixed standard normal draws for evaluation: eps_a [1, n, a_dim], eps_z [(K,) 1, n, z_dim]."""
    rng = np.random.default_rng(eval_seed)
    eps_a = rng.standard_normal((1, n, model.a_dim), np.float32)
    eps_z = rng.standard_normal(((classes,) if classes else ()) + (1, n, model.z_dim), np.float32)
    return eps_a, eps_z


def validation_bound(model, x, y, eval_seed):
    """Mean L(x, y) in nats per image on fixed noise (seeded by eval_seed): how well the model fits x."""
    eps_a, eps_z = _eval_noise(model, len(x), eval_seed)
    bound = in_chunks(lambda s: labelled_bound(model, x[s], tf.one_hot(y[s], model.n_classes),
                                               eps_a[:, s], eps_z[:, s])[0], len(x))
    return float(np.mean(bound))


def auxiliary_spread(model, x):
    """How much q(a|x) tells the images x apart: per dimension of a, the standard deviation of its mean
    across images over its own standard deviation (root mean variance), averaged over the dimensions.

    Near 0 when a has collapsed to the same noise for every image, so that q(y|a, x) and q(z|a, y, x)
    can only learn to ignore it (the auxiliary model is then M2 with a noisy input); above 1 when most
    of each draw of a is information about its image."""
    mean, logvar = model.encode_a(x)
    between = tf.math.reduce_std(mean, axis=0)
    within = tf.sqrt(tf.reduce_mean(tf.exp(logvar), axis=0))
    return float(tf.reduce_mean(between / within))


def generative_error_rate(model, x, y, eval_seed):
    """Fraction of images whose argmax_y L(x, y) (fixed noise) is not their label: where the unlabelled
    term pulls q(y|a, x)."""
    eps_a, eps_z = _eval_noise(model, len(x), eval_seed, model.n_classes)

    def bounds(s):
        a, _ = sample_a(model, x[s], eps_a[:, s])
        return tf.reduce_mean(bound_given_a(model, x[s], every_class(model.n_classes)[:, None], a, eps_z[:, :, s])[0],
                              axis=1)  # [K, n]
    return float(np.mean(np.argmax(in_chunks(bounds, len(x), 1000, axis=1), axis=0) != y))


def kind_of(config):
    """'adgm' or 'sdgm' for an auxiliary model's weights config, else None."""
    return config.get("kind") if "a_dim" in config else None


LOG_FIELDS = {"valid_a_spread": (auxiliary_spread, "a spread {:4.2f}")}


def load(path, missing_hint, kinds=("adgm", "sdgm")):
    """An ADGM or SDGM rebuilt from a weights file written by train_M2.py, and the arrays saved with it;
    ModelError if missing, corrupt or not of `kinds`."""
    return load_model(AuxiliaryDGM, path, missing_hint, kinds)
