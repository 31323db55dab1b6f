"""Weights files: one .npz of a model's variables in order, its constructor config and extra arrays."""
import hashlib
import json
import os

import numpy as np

from ssdgm.files import atomic_write
from ssdgm.models import ModelError


def save_weights(path, model, config, extra=None):
    """One .npz holding the model's variables in order, its constructor config and extra arrays."""
    arrays = {f"w{i:03d}": v.numpy() for i, v in enumerate(model.weights)}
    arrays["config"] = np.array(json.dumps(config))
    for name, value in (extra or {}).items():
        arrays[f"extra_{name}"] = np.asarray(value)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    atomic_write(path, write)


def read_weights(path, missing_hint):
    """Returns (config, [weight arrays], {extra name: array}); ModelError on a missing or bad file."""
    if not os.path.exists(path):
        raise ModelError(f"{path}: no weights; {missing_hint}")
    if not os.path.isfile(path):  # a folder, or a FIFO that would block the read
        raise ModelError(f"{path}: not a regular file; {missing_hint}")
    try:
        with np.load(path, allow_pickle=False) as f:
            config = json.loads(str(f["config"]))
            weights = [f[k] for k in sorted(k for k in f.files if k.startswith("w"))]
            extra = {k[len("extra_"):]: f[k] for k in f.files if k.startswith("extra_")}
    except Exception as e:
        raise ModelError(f"{path}: corrupt or not a weights file ({type(e).__name__}); {missing_hint}")
    if not all(np.all(np.isfinite(w)) for w in weights if np.issubdtype(w.dtype, np.floating)):
        raise ModelError(f"{path}: the weights hold NaN or infinite values; refused")
    return config, weights, extra


def assign_weights(model, weights, path):
    if len(weights) != len(model.weights) or any(
            tuple(w.shape) != tuple(v.shape) for w, v in zip(weights, model.weights)):
        raise ModelError(f"{path}: weights do not fit the model described in the same file")
    for v, w in zip(model.weights, weights):
        v.assign(w)


def weights_sha256(weights):
    """Identifies a set of weights by their values, not by the bytes of the file holding them."""
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return h.hexdigest()
