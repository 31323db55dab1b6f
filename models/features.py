"""What M2 reads of MNIST: M1's latent features (M1+M2) or the pixels (M2 alone)."""
import dataclasses

import numpy as np

from ssdgm.data.mnist import EVAL_SEED, binarize
from ssdgm.models import ModelError, m1
from ssdgm.models.blocks import in_chunks
from ssdgm.tf import tf


@dataclasses.dataclass
class Features:
    """What M2 sees of the images: M1's kept latent units (reads 'features') or pixels ('pixels').

    Training examples are drawn afresh at each minibatch by `sample` from their stored parameters
    train_loc and train_logvar [n, dim]: z1 ~ N(mean, exp(logvar)) for m1m2, a binarisation of the
    grey values for m2 (logvar then has no columns). Validation and test images are fixed (`eval`):
    the posterior mean, or the grey values; `valid_bound_x` is what the validation bound reads (the
    posterior mean, or the validation images binarised once). kept and m1_sha256 name the M1 units
    and the M1 behind m1m2 features.
    """
    reads: str
    train_loc: np.ndarray = None
    train_logvar: np.ndarray = None
    eval: dict = None
    valid_bound_x: np.ndarray = None
    kept: np.ndarray = None
    m1_sha256: str = ""
    binary: bool = True  # pixels binarised afresh (a Bernoulli M2), else read as grey values

    @property
    def dim(self):
        return self.train_loc.shape[1] if self.train_loc is not None else self.eval["valid"].shape[1]

    def sample(self, loc, logvar, rng):
        """A fresh training example from its stored parameters (inside the train step)."""
        if self.reads == "pixels":
            return tf.cast(rng.uniform(tf.shape(loc)) < loc, tf.float32) if self.binary else loc
        return loc + tf.exp(0.5 * logvar) * rng.normal(tf.shape(loc))


def encode_kept(encoder, kept, x):
    """q(z1|x) of grey images x [n, x_dim] under the M1 `encoder`, 5000 at a time: its mean and
    log-variance [n, len(kept)] on the kept units."""
    mean, logvar = in_chunks(lambda s: encoder.encode(encoder.inputs(x[s])), len(x))
    return mean[:, kept], logvar[:, kept]


def load_features(reads, splits, m1_path=None, prune=None, kept=None, m1_sha256=None, binary=True):
    """Features of the splits ('train' only if present) for reads 'pixels' (binarised if binary, as a
    Bernoulli M2 reads them, else grey values) or 'features'.

    For features: M1 from m1_path (refused unless its hash is m1_sha256, when given), keeping the units
    `kept` or, when not given, those active on the training images `prune`.
    """
    if reads == "pixels":
        train = splits["train"][0] if "train" in splits else None
        valid = splits["valid"][0]
        return Features("pixels", train, None if train is None else np.zeros((len(train), 0), np.float32),
                        {k: splits[k][0] for k in ("valid", "test")},
                        binarize(valid, np.random.default_rng(EVAL_SEED)) if binary else valid, binary=binary)
    encoder = m1.load(m1_path, m1_sha256)
    if encoder.image_dim != splits["valid"][0].shape[1]:
        raise ModelError(f"{m1_path}: an M1 of {encoder.image_dim} inputs, for images of {splits['valid'][0].shape[1]}; "
                        "train one on this data (train_M1.py --data) or pass it with --m1-weights")
    if kept is None:
        kept = np.flatnonzero(m1.active_units(encoder.encode(encoder.inputs(prune))[0]).numpy())
        if len(kept) == 0:
            raise ModelError(f"{m1_path}: M1 has no active latent units to classify from")
    kept = np.asarray(kept)
    train = encode_kept(encoder, kept, splits["train"][0]) if "train" in splits else (None, None)
    evals = {k: encode_kept(encoder, kept, splits[k][0])[0] for k in ("valid", "test")}
    return Features("features", *train, evals, evals["valid"], kept, encoder.weights_sha256)
