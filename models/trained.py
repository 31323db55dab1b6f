"""A trained M2 with what it reads of an image, for use from Python: class probabilities of MNIST
images, analogies and class-conditional samples; and the class probabilities of a trained ADGM or SDGM.

    from ssdgm.models.trained import load_classifier
    classifier = load_classifier()                 # the shipped M1+M2, 100 labels, seed 0
    probabilities = classifier.probabilities(images)   # images [n, 28, 28] or [n, 784] -> [n, 10]
"""

import numpy as np

from ssdgm.models import m1, m2, registry
from ssdgm.models.blocks import classifier_logits, pixel_mean
from ssdgm.models.features import encode_kept
from ssdgm.models.registry import WEIGHTS, check_kind, kind_of
from ssdgm.models.weights import read_weights
from ssdgm.tf import tf

__all__ = ["WEIGHTS", "TrainedM2", "TrainedClassifier", "grey_images", "load", "load_classifier"]
DEFAULT_CLASSIFIER = registry.get(registry.DEFAULT).shipped(None, "", 100, 0)


class TrainedM2:
    """An M2 and the way between its inputs and pixels: directly for an M2 on pixels, through M1
    for the stacked M1+M2 (m1_model and its kept units given)."""

    def __init__(self, m2_model, m1_model=None, kept=None):
        self.m2, self.m1, self.kept = m2_model, m1_model, kept

    @property
    def x_dim(self):
        """The values of one image it reads."""
        return self.m2.x_dim if self.m1 is None else self.m1.image_dim

    def features(self, x):
        """What M2 reads of grey images x [n, x_dim]: the pixels, or the kept units of M1's posterior mean."""
        if self.m1 is None:
            return x
        return encode_kept(self.m1, self.kept, x)[0]

    def probabilities(self, images):
        """q(y|x) [n, K] of images of its data's shape (see grey_images)."""
        return tf.nn.softmax(classifier_logits(self.m2, self.features(grey_images(images, self.x_dim)))).numpy()

    def pixels(self, z, y):
        """Pixel probabilities [..., batch, 784] for z [..., batch, z_dim] and one-hot y."""
        params = self.m2.decode(z, y)
        if self.m1 is None:
            return pixel_mean(params, self.m2.likelihood)
        z1_kept = tf.split(params, 2, axis=-1)[0]
        # Pruned M1 units carry no information about x: they get their prior mean, 0.
        place = tf.one_hot(self.kept, self.m1.z_dim)  # [kept, z_dim]
        z1 = tf.reshape(tf.tensordot(z1_kept, place, 1), [-1, self.m1.z_dim])  # M1 takes [batch, z_dim]
        shape = tf.concat([tf.shape(z1_kept)[:-1], [self.m1.image_dim]], 0)
        return tf.reshape(self.m1.pixel_mean(self.m1.decode(z1)), shape)

    def analogies(self, x, y):
        """[rows, 11, 784]: each grey image x with label y, then its style (the mean of q(z|x, y))
        decoded with classes 0-9."""
        n_classes = self.m2.n_classes
        y = np.asarray(y)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or np.any((y < 0) | (y >= n_classes)):
            raise ValueError(f"labels must be one integer in 0..{n_classes - 1} per image")
        z, _ = self.m2.encode(self.features(x), tf.one_hot(y, n_classes))  # [rows, z_dim]
        images = self.pixels(tf.broadcast_to(z, [n_classes, *z.shape]), m2.every_class(n_classes))  # [10, rows, 784]
        return np.concatenate([x[:, None, :], np.transpose(images.numpy(), (1, 0, 2))], axis=1)

    def style_grids(self, n):
        """[10, n * n, 784]: for each class, the pixel probabilities over an n x n grid of a 2-D z, at
        the standard normal's inverse CDF of n evenly spaced points of (0, 1) on each axis (the
        paper's Figure 1a); row by row, z_2 from high to low, z_1 from low to high along a row."""
        if self.m2.z_dim != 2:
            raise ValueError(f"a grid of styles needs a 2-D z; this M2's is {self.m2.z_dim}-D")
        axis = tf.math.ndtri((np.arange(n, dtype=np.float32) + 0.5) / n).numpy()  # [n]
        z = np.stack(np.meshgrid(axis, axis[::-1]), axis=-1).reshape(n * n, 2)  # [n * n, 2]
        n_classes = self.m2.n_classes
        return self.pixels(tf.broadcast_to(z, [n_classes, n * n, 2]), m2.every_class(n_classes)).numpy()

    def conditional_samples(self, n_samples, seed):
        """[10, n_samples, 784]: row k decodes class k; column j uses the same z ~ p(z) in every row."""
        n_classes, z_dim = self.m2.n_classes, self.m2.z_dim
        z = np.random.default_rng(seed).standard_normal((n_samples, z_dim)).astype(np.float32)
        return self.pixels(tf.broadcast_to(z, [n_classes, n_samples, z_dim]), m2.every_class(n_classes)).numpy()


class TrainedClassifier:
    """Any other trained model of pixels as a classifier (an ADGM or SDGM: q(y|a, x) averaged over fixed
    draws of a)."""

    def __init__(self, model):
        self.model = model

    def probabilities(self, images):
        """q(y|x) [n, K] of images of its data's shape (see grey_images)."""
        return tf.nn.softmax(classifier_logits(self.model, grey_images(images, self.model.x_dim))).numpy()


def grey_images(images, x_dim=784):
    """Grey values [n, x_dim] in [0, 1] of images [n, ...] of x_dim values each ([n, 28, 28] or [n, 784]
    for MNIST), uint8 bytes (0-255) or grey values in [0, 1]. ValueError for any other shape or range."""
    x = np.asarray(images)
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != x_dim:
        raise ValueError(f"images must be [n, ...] of {x_dim} values each ([n, 28, 28] or [n, 784] for MNIST), "
                         f"got shape {x.shape}")
    x = x.reshape(len(x), x_dim)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if len(x) and not (np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= 1.0):
        raise ValueError("grey values must lie in [0, 1] (or be uint8 bytes)")
    return x


def load(path, m1_path=m1.DEFAULT_WEIGHTS, missing_hint=""):
    """The TrainedM2 of the M2 weights at path: an M2 on pixels as it is, a stacked M1+M2 through
    the M1 at m1_path or beside it (refused unless it is the M1 the M2 was trained on)."""
    model, extra = m2.load(path, missing_hint)
    if model.on_pixels:
        return TrainedM2(model)
    return TrainedM2(model, m1.load(m1_path, str(extra.get("m1_sha256", ""))), np.asarray(extra["kept_units"]))


def load_classifier(path=DEFAULT_CLASSIFIER, m1_path=m1.DEFAULT_WEIGHTS):
    """A shipped (or any trained) classifier: M1+M2 by default, M2 alone given its weights (e.g.
    weights/M2/m2_labels100_seed0.npz), or an ADGM or SDGM (weights/ADGM/). Its
    `probabilities(images)` gives q(y|x) [n, 10]. Raises models.ModelError if the weights (or the M1
    they name by hash) are missing or corrupt."""
    hint = "train it with `python train_M2.py -train` (see README)"
    config = read_weights(path, hint)[0]
    check_kind(path, config, registry.semi_supervised())
    spec = registry.get(kind_of(config))
    if spec.module == m2.__name__:
        return load(path, m1_path, hint)
    return TrainedClassifier(spec.code().load(path, hint, (spec.name,))[0])
