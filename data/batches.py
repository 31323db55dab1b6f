"""The authors' fixed minibatches of labelled and unlabelled images, and those of M2's warm-up."""
import numpy as np

from cli import UserError


def minibatches(labelled, unlabelled, n_batches, seed, labelled_per_batch=None):
    """The authors' fixed partition: both sets shuffled once and cut into n_batches equal parts.
    With labelled_per_batch (the ADGM authors'), each minibatch holds that many labelled images
    instead, taken in turn from the shuffled labelled set (at N = labelled_per_batch: all of them).

    Returns (labelled [n_batches, n_lab], unlabelled [n_batches, n_unl]) int32 index arrays, one
    row per step, reused every epoch. UserError if a set does not divide evenly.
    """
    to_divide = (("unlabelled", unlabelled),) if labelled_per_batch else (("labelled", labelled), ("unlabelled", unlabelled))
    for name, idx in to_divide:
        if len(idx) % n_batches:
            raise UserError(f"the {len(idx)} {name} images do not divide into {n_batches} equal "
                            "minibatches; choose --batches (or --subset) so that they do")
    rng = np.random.default_rng([seed, 1])
    lab = rng.permutation(labelled)
    unl = rng.permutation(unlabelled).reshape(n_batches, -1)
    if labelled_per_batch:
        lab = lab[np.arange(n_batches * labelled_per_batch).reshape(n_batches, -1) % len(lab)]
    else:
        lab = lab.reshape(n_batches, -1)
    return lab.astype(np.int32), unl.astype(np.int32)


def full_batches(labelled, steps):
    """(labelled [steps, n_lab], unlabelled [steps, 0]) int32 index arrays: every labelled image in
    every one of `steps` steps and no unlabelled image, the minibatches of M2's warm-up on the
    labelled part of the objective."""
    labelled = np.asarray(labelled, np.int32)
    return np.broadcast_to(labelled, (steps, len(labelled))), np.zeros((steps, 0), np.int32)
