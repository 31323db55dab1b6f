"""MNIST for the paper's protocol, loaded offline from the project's own verified copy.

Split (Kingma et al. 2014, after the classic `mnist.pkl.gz`): the first 50,000 training images
train, the last 10,000 validate, the 10,000 test images test. Grey values are bytes / 255.
"""
import hashlib
import os

import numpy as np

from ssdgm.data import DataError

DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist.npz")
N_TRAIN = 50_000
N_CLASSES = 10

# SHA-256 of each array's raw bytes, as published in data/README.md.
SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


class DataError(DataError):
    pass


def _sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def verify(arrays, source):
    """Raises DataError unless every array is present with its published checksum."""
    for name, digest in SHA256.items():
        if name not in arrays:
            raise DataError(f"{source}: array {name} is missing")
        if _sha256(arrays[name]) != digest:
            raise DataError(f"{source}: array {name} fails its SHA-256 check (altered or corrupt)")


def _download_with_keras(path):
    import keras  # only on this rare path: keras pulls in TensorFlow

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as e:
        raise DataError(f"{path}: file missing and the Keras download failed "
                        f"({type(e).__name__}); restore data/mnist.npz from the repository") from e
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load_raw(path=DEFAULT_PATH):
    """The four uint8 arrays of MNIST, checksum-verified.

    A missing file falls back to Keras' own download (verified the same way).
    """
    if not os.path.exists(path):
        arrays = _download_with_keras(path)
        verify(arrays, "Keras' MNIST download")
        return arrays
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except Exception as e:
        raise DataError(f"{path}: unreadable ({type(e).__name__}: {e}); "
                        "restore data/mnist.npz from the repository") from e
    verify(arrays, path)
    return arrays


def load_splits(path=DEFAULT_PATH, subset=0):
    """Returns {'train', 'valid', 'test'}: each a pair (x float32 [n, 784] in [0, 1], y int32 [n]).

    subset > 0 keeps only the first `subset` images of each split (quick checks and tests).
    """
    raw = load_raw(path)
    x_train = raw["x_train"].reshape(-1, 784).astype(np.float32) / 255.0
    x_test = raw["x_test"].reshape(-1, 784).astype(np.float32) / 255.0
    y_train = raw["y_train"].astype(np.int32)
    y_test = raw["y_test"].astype(np.int32)
    splits = {
        "train": (x_train[:N_TRAIN], y_train[:N_TRAIN]),
        "valid": (x_train[N_TRAIN:], y_train[N_TRAIN:]),
        "test": (x_test, y_test),
    }
    if subset:
        splits = {k: (x[:subset], y[:subset]) for k, (x, y) in splits.items()}
    return splits


def check_label_count(n_labelled, n_total=N_TRAIN, n_classes=N_CLASSES):
    if not (isinstance(n_labelled, (int, np.integer)) and 0 < n_labelled <= n_total
            and n_labelled % n_classes == 0):
        raise DataError(f"labels must be a positive multiple of {n_classes} and at most {n_total}, "
                        f"got {n_labelled}")


def labelled_split(y, n_labelled, seed, n_classes=N_CLASSES):
    """A class-balanced labelled subset of n_labelled examples, and the rest.

    Args:
      y: int labels [n], 0..n_classes-1.
      n_labelled: positive multiple of n_classes, at most n.
      seed: the draw depends on this alone.
    Returns:
      (labelled indices [n_labelled], unlabelled indices [n - n_labelled]), each sorted. With
      n_labelled = n every example is labelled, as the classes' own frequencies have it.
    """
    check_label_count(n_labelled, len(y), n_classes)
    if n_labelled == len(y):
        return np.arange(len(y)), np.arange(0)
    per_class = n_labelled // n_classes
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(y == c)
        if len(members) < per_class:
            raise DataError(f"labels={n_labelled} needs {per_class} images of class {c}, "
                            f"only {len(members)} exist")
        chosen.append(rng.choice(members, per_class, replace=False))
    labelled = np.sort(np.concatenate(chosen))
    unlabelled = np.setdiff1d(np.arange(len(y)), labelled)
    return labelled, unlabelled


def one_per_class(y, n, seed, n_classes=N_CLASSES):
    """n indices: the classes in turn, a random example of each (so that rows of a figure span them)."""
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(np.flatnonzero(y == r % n_classes)) for r in range(n)])


# Seeds the one binarisation (and posterior noise) of the evaluation images, shared by every run of
# both scripts, so that bounds are comparable across runs and between M1 and M2.
EVAL_SEED = 1234


def binarize(x, rng):
    """One Bernoulli draw per pixel with the grey value as probability (numpy, for fixed eval sets)."""
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
