"""M1: the latent-feature model of Kingma et al. (2014), a variational auto-encoder.

Generative model p(z) p(x|z) with p(z) = N(0, I) and p(x|z) = Bernoulli(decode(z)) for binary images
(grey values binarised afresh), or a diagonal Gaussian for continuous ones (`likelihood`, as the paper
for SVHN and NORB); inference model q(z|x) = N(mu(x), diag(exp(logvar(x)))). Training maximises, per image, the evidence lower bound

    L(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x),

estimated with one reparameterised sample z = mu + exp(logvar / 2) * eps, eps ~ N(0, I), the KL in
closed form, plus a N(0, sd^2) prior on every weight (an L2 term; the authors' sd is 1, see `weight_prior`).

References:
  D. P. Kingma, D. J. Rezende, S. Mohamed, M. Welling. Semi-Supervised Learning with Deep Generative
  Models. NIPS 2014. arXiv:1406.5298.
  D. P. Kingma, M. Welling. Auto-Encoding Variational Bayes. ICLR 2014. arXiv:1312.6114.
"""
import glob
import os

import numpy as np

from ssdgm.data.images import PCA
from ssdgm.data.mnist import binarize
from ssdgm.models import ModelError, registry
from ssdgm.models.blocks import (gaussian_kl_standard, mlp, pixel_log_likelihood, pixel_mean, reparameterize,
                                 weight_prior)
from ssdgm.models.registry import check_kind
from ssdgm.models.weights import assign_weights, read_weights, weights_sha256
from ssdgm.tf import keras, tf

DEFAULT_WEIGHTS = registry.get("m1").shipped()


class M1(keras.Model):
    """VAE with a diagonal Gaussian q(z|x) and a Bernoulli or Gaussian p(x|z); `decode` returns its
    parameters (logits, or mean and log-variance concatenated)."""

    def __init__(self, x_dim=784, hidden=(500, 500), z_dim=50, init="code", likelihood="bernoulli", pca=None,
                 **kwargs):
        """pca: a data.images.PCA whose whitened components of the grey values are what the model
        reads (x_dim of them) and models with its Gaussian p(x|z); None: the grey values themselves."""
        super().__init__(**kwargs)
        self.pca = pca
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.x_dim, self.hidden, self.z_dim, self.init = x_dim, tuple(hidden), z_dim, init
        self.likelihood = likelihood
        self.encoder = mlp(self.hidden, 2 * z_dim, init, "encoder")
        self.decoder = mlp(self.hidden, x_dim * (2 if likelihood == "gaussian" else 1), init, "decoder")
        self.build((None, x_dim))

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build((None, self.z_dim))
        super().build(input_shape)

    def get_config(self):
        config = {"x_dim": self.x_dim, "hidden": list(self.hidden), "z_dim": self.z_dim, "init": self.init}
        return {**config, "likelihood": self.likelihood} if self.likelihood != "bernoulli" else config

    def encode(self, x):
        """q(z|x): returns mean [batch, z_dim] and log-variance [batch, z_dim]."""
        mean, logvar = tf.split(self.encoder(x), 2, axis=-1)
        return mean, logvar

    reparameterize = staticmethod(reparameterize)

    def decode(self, z):
        """p(x|z): Bernoulli logits [batch, x_dim], or the Gaussian's mean and log-variance [batch, 2 x_dim]."""
        return self.decoder(z)

    @property
    def image_dim(self):
        """Values of one image (before the PCA, if any)."""
        return self.x_dim if self.pca is None else len(self.pca.mean)

    def inputs(self, grey):
        """What the model reads of grey images [n, image_dim] (numpy): them, or their PCA components."""
        return grey if self.pca is None else self.pca.encode(grey)

    def log_likelihood(self, x, params):
        """log p(x|z) summed over the pixels, from decode's params: [batch]."""
        return pixel_log_likelihood(x, params, self.likelihood)

    def pixel_mean(self, params):
        """E[x|z] from decode's params, for pictures: grey values [batch, image_dim] in [0, 1] (through
        the PCA back to pixels, if any)."""
        return pixel_mean(params, self.likelihood, *([] if self.pca is None else [self.pca.decode]))

    def observe(self, grey, rng):
        """What the model is trained on for grey values [batch, x_dim]: a fresh binarisation (Bernoulli),
        or the values themselves (Gaussian). rng: a tf.random.Generator."""
        if self.likelihood == "bernoulli":
            return tf.cast(rng.uniform(tf.shape(grey)) < grey, tf.float32)
        return grey

    def call(self, x):
        return self.pixel_mean(self.decode(self.encode(x)[0]))


def elbo(model, x, eps):
    """One-sample estimate of L(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)), for training and
    evaluation alike.

    Args:
      model: an M1.
      x: images [batch, x_dim], binary for a Bernoulli p(x|z).
      eps: standard normal noise [batch, z_dim] for the reparameterised sample.
    Returns:
      the bound [batch], and its terms log_px_z [batch] (reconstruction) and kl_z [batch].
    """
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar, eps)
    log_px_z = model.log_likelihood(x, model.decode(z))
    kl_z = gaussian_kl_standard(mean, logvar)
    return log_px_z - kl_z, log_px_z, kl_z


def loss_fn(model, x, eps, n_train, prior_sd=1.0):
    """Minimised per step: -(mean bound) - log p(theta) / n_train, with p(theta) = N(0, prior_sd^2 I).

    The authors add the weight prior with weight batch/N_train to a minibatch's summed bound; dividing
    both by the batch size gives this per-image form.
    Returns: the loss and the minibatch's mean terms {"loss", "bound", "reconstruction", "kl"}.
    """
    bound, log_px_z, kl_z = elbo(model, x, eps)
    loss = -tf.reduce_mean(bound) - weight_prior(model, prior_sd) / n_train
    return loss, {"loss": loss, "bound": tf.reduce_mean(bound),
                  "reconstruction": tf.reduce_mean(log_px_z), "kl": tf.reduce_mean(kl_z)}


def make_train_step(model, optimizer, x_train, rng, n_train, prior_sd=1.0):
    """step(indices [batch]) -> mean terms: one Adam step on training images x_train (grey values,
    a tensor), each binarised afresh for a Bernoulli p(x|z), with fresh noise."""
    def step(indices):
        grey = tf.gather(x_train, indices)
        x = model.observe(grey, rng)
        eps = rng.normal([tf.shape(grey)[0], model.z_dim])
        with tf.GradientTape() as tape:
            loss, terms = loss_fn(model, x, eps, n_train, prior_sd)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return terms
    return step


def active_units(means, threshold=0.1):
    """Latent units whose posterior mean varies across images: boolean [z_dim]."""
    return tf.math.reduce_std(means, axis=0) > threshold


class Evaluator:
    """The bound on the validation and test images, each binarised once with one noise draw per
    image (the same for every run and seed, so bounds compare across runs), and the active units.
    """

    def __init__(self, model, splits, eval_seed):
        self.model = model
        self.sets = {}
        for name in ("valid", "test"):
            rng = np.random.default_rng(eval_seed)
            grey = splits[name][0]
            x = model.inputs(grey)
            x_bin = binarize(x, rng) if model.likelihood == "bernoulli" else x
            eps = rng.standard_normal((len(x_bin), model.z_dim), np.float32)
            self.sets[name] = (tf.constant(x_bin), tf.constant(eps), tf.constant(x), grey)

    @tf.function(jit_compile=True)
    def _bound(self, x_bin, eps):
        bound, log_px_z, kl_z = elbo(self.model, x_bin, eps)
        return tf.reduce_mean(bound), tf.reduce_mean(log_px_z), tf.reduce_mean(kl_z)

    def bound(self, name):
        """Mean bound, reconstruction and KL (nats per image) over the split 'valid' or 'test'."""
        x_bin, eps = self.sets[name][:2]
        return [float(t) for t in self._bound(x_bin, eps)]

    def active(self, name="valid"):
        mean, _ = self.model.encode(self.sets[name][2])
        return int(tf.reduce_sum(tf.cast(active_units(mean), tf.int32)))

    def reconstructions(self, n_rows=8, n_pairs=8):
        """[n_rows * 2 n_pairs, x_dim] in [0, 1]: test images, each followed by its decoded posterior mean
        (the first test images again where there are fewer)."""
        grey = self.sets["test"][3]
        grey = np.resize(grey, (n_rows * n_pairs, grey.shape[1]))
        x_rec = self.model(self.model.inputs(grey)).numpy()
        return np.stack([grey, x_rec], axis=1).reshape(-1, grey.shape[1])


def kind_of(config):
    """'m1' for an M1's weights config, else None."""
    return "m1" if {"x_dim", "z_dim", "hidden"} <= set(config) and "n_classes" not in config else None


def load(path=DEFAULT_WEIGHTS, expect_sha256=None):
    """An M1 rebuilt from a weights file written by train_M1.py; ModelError if missing or corrupt.

    With expect_sha256 (recorded with M2 weights), only the M1 of that hash is taken: the file at
    path or, failing that, a weights file beside it, so that M2 weights trained on an earlier M1
    still load when a newer one is the default. The model's `weights_sha256` identifies it for M2
    weights trained on it.
    """
    config, weights, extra = read_weights(path, "run `python train_M1.py -train` to train M1")
    check_kind(path, config, ("m1",))
    sha256 = weights_sha256(weights)
    if expect_sha256 is not None and sha256 != expect_sha256:
        path, config, weights, extra = find_by_sha256(os.path.dirname(os.path.abspath(path)), expect_sha256, path)
        sha256 = expect_sha256
    try:
        model = M1(**config, pca=PCA.from_arrays(extra) if "pca_mean" in extra else None)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{path}: not M1 weights ({e})")
    assign_weights(model, weights, path)
    model.weights_sha256 = sha256
    return model


def find_by_sha256(folder, sha256, asked):
    """(path, config, weights, extra) of the weights file in folder whose weights have this hash."""
    for candidate in sorted(glob.glob(os.path.join(folder, "*.npz"))):
        if os.path.abspath(candidate) == os.path.abspath(asked):
            continue  # already read, and not of this hash
        try:
            config, weights, extra = read_weights(candidate, "")
        except ModelError:
            continue
        if weights_sha256(weights) == sha256:
            return candidate, config, weights, extra
    raise ModelError(f"{asked} is not the M1 these M2 weights were trained on, nor is any file beside it; "
                    "pass that one with --m1-weights, or retrain M2")
