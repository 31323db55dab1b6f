"""Any labelled image set in one .npz file: the format, its checks, and the split every script reads.

The format, as data/mnist.npz and keras.datasets have it:

    x_train [n, ...], y_train [n]    images of any shape, and their labels
    x_test  [m, ...], y_test  [m]
    x_valid, y_valid                 optional: else the last VALID_SHARE of the training images validate

Images are uint8 grey levels (read as bytes / 255) or floats in [0, 1]; labels are integers 0..K-1,
every class among the training images. MNIST at its default path is read by data.mnist, whose
checksums it verifies; any other file is read here.
"""
import dataclasses
import os

import numpy as np

from ssdgm.data import mnist
from ssdgm.data.mnist import DataError

# MNIST's 10,000 validation images of its 60,000, the split of the paper, when a file has no x_valid.
VALID_SHARE = 1 / 6
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
FORMAT = "x_train, y_train, x_test, y_test and optionally x_valid, y_valid"


@dataclasses.dataclass
class Dataset:
    """splits: {'train', 'valid', 'test'}, each (x float32 [n, d] in [0, 1], y int32 [n]); shape: one
    image's shape (d its product); n_classes: K."""
    splits: dict
    shape: tuple
    n_classes: int


def is_mnist(path):
    return os.path.abspath(path) == os.path.abspath(mnist.DEFAULT_PATH)


def read_arrays(path):
    """The arrays of an .npz file in the format, checked; DataError (one line) otherwise."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file")
    except Exception as e:
        raise DataError(f"{path}: unreadable as an .npz file ({type(e).__name__})")
    missing = [name for name in ARRAYS if name not in arrays]
    if missing or (("x_valid" in arrays) != ("y_valid" in arrays)):
        raise DataError(f"{path}: array {(missing or ['x_valid or y_valid'])[0]} is missing (the format: {FORMAT})")
    splits = [s for s in ("train", "valid", "test") if f"x_{s}" in arrays]
    for s in splits:
        x, y = arrays[f"x_{s}"], arrays[f"y_{s}"]
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise DataError(f"{path}: x_{s} {x.shape} and y_{s} {y.shape} are not n images and their n labels")
        if x.shape[1:] != arrays["x_train"].shape[1:]:
            raise DataError(f"{path}: x_{s}'s images are {x.shape[1:]}, x_train's {arrays['x_train'].shape[1:]}")
        if x.dtype != np.uint8 and not (np.issubdtype(x.dtype, np.floating) and np.all(np.isfinite(x))
                                        and x.min() >= 0 and x.max() <= 1):
            raise DataError(f"{path}: x_{s} must be uint8 grey levels or floats in [0, 1]")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{s} must hold integer labels, not {y.dtype}")
    n_classes = int(arrays["y_train"].max()) + 1
    present = np.unique(arrays["y_train"])
    if present[0] < 0 or len(present) != n_classes:
        raise DataError(f"{path}: the training labels must be 0..K-1 with every class present, got {present.tolist()}")
    for s in splits:
        y = arrays[f"y_{s}"]
        if y.min() < 0 or y.max() >= n_classes:
            raise DataError(f"{path}: y_{s} holds labels outside 0..{n_classes - 1}")
    return arrays


def grey(x):
    """Images [n, ...] as float32 [n, d] in [0, 1]."""
    x = x.reshape(len(x), -1)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def load(path=mnist.DEFAULT_PATH, subset=0):
    """The Dataset of the file at path: MNIST's split at the default path, else the format's.
    subset > 0 keeps only the first `subset` images of each split (quick checks and tests)."""
    if is_mnist(path):
        return Dataset(mnist.load_splits(path, subset), (28, 28), mnist.N_CLASSES)
    arrays = read_arrays(path)
    x, y = arrays["x_train"], arrays["y_train"].astype(np.int32)
    if "x_valid" in arrays:
        train, valid = (x, y), (arrays["x_valid"], arrays["y_valid"].astype(np.int32))
    else:
        n_valid = int(round(len(x) * VALID_SHARE))
        train, valid = (x[:len(x) - n_valid], y[:len(x) - n_valid]), (x[len(x) - n_valid:], y[len(x) - n_valid:])
    splits = {"train": train, "valid": valid, "test": (arrays["x_test"], arrays["y_test"].astype(np.int32))}
    splits = {k: (grey(x[:subset or None]), y[:subset or None]) for k, (x, y) in splits.items()}
    return Dataset(splits, tuple(arrays["x_train"].shape[1:]), int(arrays["y_train"].max()) + 1)


def sizes(path=mnist.DEFAULT_PATH, subset=0):
    """(training images, classes) of the file at path, for the flags' checks."""
    if is_mnist(path):
        return subset or mnist.N_TRAIN, mnist.N_CLASSES
    data = load(path, subset)
    return len(data.splits["train"][0]), data.n_classes


def prefix(path):
    """What the names of runs and weights on the file at path begin with: '' for MNIST, else the
    file's name and '_' (digits_ for digits.npz), so that no other data's run takes an MNIST name."""
    return "" if is_mnist(path) else os.path.splitext(os.path.basename(path))[0] + "_"


def picture_shape(shape, x_dim):
    """The (height, width) an image of `shape` is drawn in: its own if grey 2-D, else image_shape."""
    return tuple(shape) if len(shape) == 2 else image_shape(x_dim)


def image_shape(x_dim):
    """The shape to draw a flat image of x_dim values in: a square where x_dim is one, else a row."""
    side = int(round(x_dim ** 0.5))
    return (side, side) if side * side == x_dim else (1, x_dim)


@dataclasses.dataclass
class PCA:
    """The M1 authors' PCA for SVHN and NORB (their nips14-ssl preprocessing.py, `PCA`): grey values
    centred per pixel, divided by one standard deviation over all of them, projected on the leading
    eigenvectors of their covariance and divided by the square root of each eigenvalue (whitened).
    mean [d], sd, vectors [d, k], values [k]."""
    mean: np.ndarray
    sd: float
    vectors: np.ndarray
    values: np.ndarray

    def encode(self, x):
        """Grey values [n, d] -> whitened components [n, k], float32."""
        return (((x - self.mean) / self.sd) @ self.vectors / np.sqrt(self.values)).astype(np.float32)

    def decode(self, z):
        """Whitened components [..., k] (numpy or TensorFlow) -> grey values [..., d], not clipped."""
        return (z * np.sqrt(self.values)) @ self.vectors.T * self.sd + self.mean

    def arrays(self):
        """The arrays to save beside M1's weights (`from_arrays` reads them back)."""
        return {"pca_mean": self.mean, "pca_sd": np.float32(self.sd), "pca_vectors": self.vectors,
                "pca_values": self.values}

    @classmethod
    def from_arrays(cls, extra):
        return cls(*(np.asarray(extra[f"pca_{k}"], np.float32) for k in ("mean", "sd", "vectors", "values")))


def fit_pca(x, components, max_images=10_000):
    """The PCA of the first max_images images x [n, d] (the authors fit SVHN's on 10,000), keeping
    `components` components (at least 1: a count; below 1: the leading share of the variance, as their
    0.999 for NORB). Eigenvalues in descending order; those of a constant direction are dropped."""
    x = x[:max_images].astype(np.float64)
    mean = x.mean(axis=0)
    sd = (x - mean).std()
    centred = (x - mean) / sd
    values, vectors = np.linalg.eigh(centred.T @ centred / len(centred))
    values, vectors = values[::-1], vectors[:, ::-1]
    keep = int(components) if components >= 1 else int(np.searchsorted(np.cumsum(values) / values.sum(), components) + 1)
    keep = min(keep, int(np.sum(values > 1e-6 * values[0])))
    return PCA(mean.astype(np.float32), float(sd), vectors[:, :keep].astype(np.float32),
               values[:keep].astype(np.float32))
