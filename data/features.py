"""What M2 reads of MNIST, and the authors' fixed minibatches of labelled and unlabelled images."""
import dataclasses

import numpy as np
import tensorflow as tf

from common import UserError
from data.mnist import EVAL_SEED, binarize
from models import m1


@dataclasses.dataclass
class Features:
    """What M2 sees of the images: M1's kept latent units (source 'm1m2') or pixels ('m2').

    Training examples are drawn afresh at each minibatch by `sample` from their stored parameters
    train_loc and train_logvar [n, dim]: z1 ~ N(mean, exp(logvar)) for m1m2, a binarisation of the
    grey values for m2 (logvar then has no columns). Validation and test images are fixed (`eval`):
    the posterior mean, or the grey values; `valid_bound_x` is what the validation bound reads (the
    posterior mean, or the validation images binarised once). kept and m1_sha256 name the M1 units
    and the M1 behind m1m2 features.
    """
    source: str
    train_loc: np.ndarray = None
    train_logvar: np.ndarray = None
    eval: dict = None
    valid_bound_x: np.ndarray = None
    kept: np.ndarray = None
    m1_sha256: str = ""

    @property
    def dim(self):
        return self.train_loc.shape[1] if self.train_loc is not None else self.eval["valid"].shape[1]

    def sample(self, loc, logvar, rng):
        """A fresh training example from its stored parameters (inside the train step)."""
        if self.source == "m2":
            return tf.cast(rng.uniform(tf.shape(loc)) < loc, tf.float32)
        return loc + tf.exp(0.5 * logvar) * rng.normal(tf.shape(loc))


def load_features(source, splits, m1_path=None, prune=None, kept=None, m1_sha256=None):
    """Features of the splits ('train' only if present) for source 'm2' (pixels) or 'm1m2'.

    For m1m2: M1 from m1_path (refused unless its hash is m1_sha256, when given), keeping the units
    `kept` or, when not given, those active on the training images `prune`.
    """
    if source == "m2":
        train = splits["train"][0] if "train" in splits else None
        valid = splits["valid"][0]
        return Features("m2", train, None if train is None else np.zeros((len(train), 0), np.float32),
                        {k: splits[k][0] for k in ("valid", "test")},
                        binarize(valid, np.random.default_rng(EVAL_SEED)))
    encoder = m1.load(m1_path, m1_sha256)
    if kept is None:
        kept = np.flatnonzero(m1.active_units(encoder.encode(prune)[0]).numpy())
        if len(kept) == 0:
            raise UserError(f"{m1_path}: M1 has no active latent units to classify from")
    kept = np.asarray(kept)

    def encode(x):
        parts = [encoder.encode(x[i: i + 5000]) for i in range(0, len(x), 5000)]
        return tuple(np.concatenate([p[j].numpy() for p in parts])[:, kept] for j in (0, 1))
    train = encode(splits["train"][0]) if "train" in splits else (None, None)
    evals = {k: encode(splits[k][0])[0] for k in ("valid", "test")}
    return Features("m1m2", *train, evals, evals["valid"], kept, encoder.weights_sha256)


def minibatches(labelled, unlabelled, n_batches, seed):
    """The authors' fixed partition: both sets shuffled once and cut into n_batches equal parts.

    Returns (labelled [n_batches, n_lab], unlabelled [n_batches, n_unl]) int32 index arrays, one
    row per step, reused every epoch. UserError if a set does not divide evenly.
    """
    for name, idx in (("labelled", labelled), ("unlabelled", unlabelled)):
        if len(idx) % n_batches:
            raise UserError(f"the {len(idx)} {name} images do not divide into {n_batches} equal "
                            "minibatches; choose --batches (or --subset) so that they do")
    rng = np.random.default_rng([seed, 1])
    lab = rng.permutation(labelled).reshape(n_batches, -1)
    unl = rng.permutation(unlabelled).reshape(n_batches, -1)
    return lab.astype(np.int32), unl.astype(np.int32)


def full_batches(labelled, steps):
    """(labelled [steps, n_lab], unlabelled [steps, 0]) int32 index arrays: every labelled image in
    every one of `steps` steps and no unlabelled image, the minibatches of M2's warm-up on the
    labelled part of the objective."""
    labelled = np.asarray(labelled, np.int32)
    return np.broadcast_to(labelled, (steps, len(labelled))), np.zeros((steps, 0), np.int32)
