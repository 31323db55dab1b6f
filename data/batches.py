"""The authors' fixed minibatches of labelled and unlabelled images, those of the ADGM authors' code
in its class-sorted order, and those of M2's warm-up."""
import numpy as np

from ssdgm.data import DataError


def minibatches(labelled, unlabelled, n_batches, seed, labelled_per_batch=None):
    """The authors' fixed partition: both sets shuffled once and cut into n_batches equal parts.
    With labelled_per_batch (the ADGM authors'), each minibatch holds that many labelled images
    instead, taken in turn from the shuffled labelled set (at N = labelled_per_batch: all of them).

    Returns (labelled [n_batches, n_lab], unlabelled [n_batches, n_unl]) int32 index arrays, one
    row per step, reused every epoch. DataError if a set does not divide evenly.
    """
    to_divide = (("unlabelled", unlabelled),) if labelled_per_batch else (("labelled", labelled), ("unlabelled", unlabelled))
    for name, idx in to_divide:
        if len(idx) % n_batches:
            raise DataError(f"the {len(idx)} {name} images do not divide into {n_batches} equal "
                            "minibatches; choose --batches (or --subset) so that they do")
    rng = np.random.default_rng([seed, 1])
    lab = rng.permutation(labelled)
    unl = rng.permutation(unlabelled).reshape(n_batches, -1)
    if labelled_per_batch:
        lab = lab[np.arange(n_batches * labelled_per_batch).reshape(n_batches, -1) % len(lab)]
    else:
        lab = lab.reshape(n_batches, -1)
    return lab.astype(np.int32), unl.astype(np.int32)


def class_sorted_minibatches(labelled, pool_labels, labelled_per_batch):
    """The ADGM authors' minibatches (data_preparation/mnist.py, load_semi_supervised; training/train.py,
    train_model): their unlabelled pool is every image, stacked class by class in the images' own order
    (`_create_semi_supervised`), cut in turn into halves of labelled_per_batch beside the labelled images,
    and the minibatches are taken in that fixed order every epoch. So nearly every unlabelled half holds
    one digit (592 of 600 on MNIST's 60,000 training and validation images).

    Args: labelled: indices of the labelled images; pool_labels: int labels [n] of the unlabelled pool,
    n a multiple of labelled_per_batch.
    Returns (labelled [n_batches, labelled_per_batch], unlabelled [n_batches, labelled_per_batch]) int32,
    the labelled images taken in turn, as `minibatches`.
    """
    n = len(pool_labels)
    if n % labelled_per_batch:
        raise DataError(f"the {n} images of the authors' pool do not divide into halves of {labelled_per_batch}")
    n_batches = n // labelled_per_batch
    unlabelled = np.argsort(pool_labels, kind="stable").reshape(n_batches, -1)
    lab = np.asarray(labelled)[np.arange(n_batches * labelled_per_batch).reshape(n_batches, -1) % len(labelled)]
    return lab.astype(np.int32), unlabelled.astype(np.int32)


def full_batches(labelled, steps):
    """(labelled [steps, n_lab], unlabelled [steps, 0]) int32 index arrays: every labelled image in
    every one of `steps` steps and no unlabelled image, the minibatches of M2's warm-up on the
    labelled part of the objective."""
    labelled = np.asarray(labelled, np.int32)
    return np.broadcast_to(labelled, (steps, len(labelled))), np.zeros((steps, 0), np.int32)
