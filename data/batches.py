"""The authors' fixed minibatches of labelled and unlabelled images, and those of M2's warm-up."""
import numpy as np

from cli import UserError


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
