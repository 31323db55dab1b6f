"""Files that a run writes or reads: atomic writes, JSON records, metrics rows, weights files."""
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from cli import UserError


def atomic_write(path, write):
    """write(tmp_path) then rename over path, so a kill at any moment leaves old or new, never half."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared weights unreadable to others
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_writable(folder, flag=None):
    """Creates folder if needed and proves a file can be written there; UserError otherwise, naming
    the flag (if given) that chooses another folder."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"{folder}: cannot write here ({e.strerror or e})" + (f"; choose another with {flag}" if flag else ""))


def copy_atomic(source, path):
    atomic_write(path, lambda tmp: shutil.copyfile(source, tmp))


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
    atomic_write(path, write)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: missing")
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})")


def metrics_path(stem):
    """Where the metrics rows of the weights <stem>.npz are kept: <stem>.metrics.jsonl."""
    return stem + ".metrics.jsonl"


def read_jsonl(path):
    """The rows of a JSON-lines file (one object a line); UserError if missing or corrupt."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise UserError(f"{path}: missing")
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})")


def write_jsonl(path, rows):
    """Writes rows (dicts) as JSON lines, atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")
    atomic_write(path, write)


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
    """Returns (config, [weight arrays], {extra name: array}); UserError on a missing or bad file."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no weights; {missing_hint}")
    if not os.path.isfile(path):  # a folder, or a FIFO that would block the read
        raise UserError(f"{path}: not a regular file; {missing_hint}")
    try:
        with np.load(path, allow_pickle=False) as f:
            config = json.loads(str(f["config"]))
            weights = [f[k] for k in sorted(k for k in f.files if k.startswith("w"))]
            extra = {k[len("extra_"):]: f[k] for k in f.files if k.startswith("extra_")}
    except Exception as e:
        raise UserError(f"{path}: corrupt or not a weights file ({type(e).__name__}); {missing_hint}")
    if not all(np.all(np.isfinite(w)) for w in weights if np.issubdtype(w.dtype, np.floating)):
        raise UserError(f"{path}: the weights hold NaN or infinite values; refused")
    return config, weights, extra


def weights_kind(config):
    """What a weights file's config describes: 'm1', 'm2' (M2 on pixels), 'm1m2' (M2 on M1's features),
    'adgm' or 'sdgm'; '' if none of these."""
    if "a_dim" in config:
        return config.get("kind", "")
    if "n_classes" in config:
        return "m2" if config.get("on_pixels", config.get("likelihood") == "bernoulli") else "m1m2"
    return "m1" if {"x_dim", "z_dim", "hidden"} <= set(config) else ""


KIND_NAMES = {"m1": "M1 (train_M1.py)", "m2": "M2 on pixels (--model m2)", "m1m2": "M1+M2 (--model m1m2)",
              "adgm": "ADGM (--model adgm)", "sdgm": "SDGM (--model sdgm)", "": "of no model here"}


def check_kind(path, config, wanted):
    """UserError unless the weights' config (read_weights) is of one of the kinds `wanted`."""
    kind = weights_kind(config)
    if kind not in wanted:
        raise UserError(f"{path}: these weights are {KIND_NAMES[kind]}, not {' or '.join(KIND_NAMES[k] for k in wanted)}")


def assign_weights(model, weights, path):
    if len(weights) != len(model.weights) or any(
            tuple(w.shape) != tuple(v.shape) for w, v in zip(weights, model.weights)):
        raise UserError(f"{path}: weights do not fit the model described in the same file")
    for v, w in zip(model.weights, weights):
        v.assign(w)


def weights_sha256(weights):
    """Identifies a set of weights by their values, not by the bytes of the file holding them."""
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return h.hexdigest()
