"""What the three scripts share: the CLI error path, atomic files, weights files, checkpoints, digit grids."""
import argparse
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time

import numpy as np


class UserError(Exception):
    """A problem the user can fix (bad flag, missing or corrupt file): one line, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the whole usage block; one line says the same and points to --help.
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def run_cli(main):
    """Calls main(); a UserError becomes one line on stderr and exit code 2."""
    try:
        main()
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: the last checkpoint and the best weights are intact\n")
        sys.exit(130)


def quiet_tensorflow():
    """Imports TensorFlow with its C++ start-up notices (no GPU found, ...) kept off stderr.

    They are printed before TensorFlow reads TF_CPP_MIN_LOG_LEVEL, so only a redirect hides them;
    an import error still surfaces as the Python exception after stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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
    try:
        with np.load(path, allow_pickle=False) as f:
            config = json.loads(str(f["config"]))
            weights = [f[k] for k in sorted(k for k in f.files if k.startswith("w"))]
            extra = {k[len("extra_"):]: f[k] for k in f.files if k.startswith("extra_")}
    except Exception as e:
        raise UserError(f"{path}: corrupt or not a weights file ({type(e).__name__}); {missing_hint}")
    return config, weights, extra


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


class RunLog:
    """Prints a line and appends it to the run's log file."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path

    def __call__(self, line):
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def check_finite(values, epoch, keeper):
    if not np.all(np.isfinite(values)):
        raise UserError(f"loss became {values} in epoch {epoch}; stopped without saving it, "
                        f"last good checkpoint kept in {keeper.dir}")


class CheckpointKeeper:
    """A tf.train.CheckpointManager in run_dir/ckpt that refuses to resume a run made with other settings.

    The settings that shape the model are stored beside the checkpoints; a resume with different
    ones would fail deep inside TensorFlow or, worse, silently train something else.
    """

    def __init__(self, run_dir, config, interval_s, **trackables):
        import tensorflow as tf

        self.dir = os.path.join(run_dir, "ckpt")
        self.interval_s = interval_s
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.dir, max_to_keep=2)
        config_path = os.path.join(self.dir, "config.json")
        if self.manager.latest_checkpoint and os.path.exists(config_path):
            saved = read_json(config_path)
            if saved != config:
                diff = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
                raise UserError(f"{self.dir} holds a run with other settings ({', '.join(diff)}); "
                                "pass the same flags to resume, or a new --out to start afresh")
        os.makedirs(self.dir, exist_ok=True)
        write_json(config_path, config)
        self.last_save = time.time()

    def restore(self):
        """Restores the latest checkpoint; returns its path, or None for a fresh run."""
        latest = self.manager.latest_checkpoint
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except Exception as e:
                raise UserError(f"{latest}: cannot resume from this checkpoint ({type(e).__name__}); "
                                "pass a new --out to start afresh")
        return latest

    def save(self, force=False):
        if force or time.time() - self.last_save >= self.interval_s:
            self.manager.save()
            self.last_save = time.time()


class RunState:
    """A training run's folder: counters, checkpoints (with the given trackables) and log.

    `epoch`, `best_valid` and `seconds` (training time) are checkpointed beside the model, optimizer
    and random-number generator, so a resumed run continues exactly where the last checkpoint was.
    """

    def __init__(self, run_dir, config, ckpt_minutes, best_init, **trackables):
        import tensorflow as tf

        # Two runs in one folder would overwrite each other's checkpoints; the lock ends with the process.
        os.makedirs(run_dir, exist_ok=True)
        self._lock = open(os.path.join(run_dir, "lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise UserError(f"{run_dir}: another run is training in this folder")
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.best_valid = tf.Variable(best_init, dtype=tf.float64)
        self.seconds = tf.Variable(0.0, dtype=tf.float64)
        self.keeper = CheckpointKeeper(run_dir, config, ckpt_minutes * 60, epoch=self.epoch,
                                       best_valid=self.best_valid, seconds=self.seconds, **trackables)
        self.log = RunLog(os.path.join(run_dir, "train.log"))
        resumed = self.keeper.restore()
        self.log(f"{'resumed ' + resumed + ' at epoch ' + str(int(self.epoch)) if resumed else 'new run'}: "
                 f"{' '.join(sys.argv)}")


def digit_grid(images, rows, cols, pad=2):
    """Tiles images [rows * cols, 784] in [0, 1] into one uint8 picture with white gaps."""
    images = np.asarray(images).reshape(rows, cols, 28, 28)
    size = 28 + pad
    out = np.ones((rows * size + pad, cols * size + pad), np.float32)
    for r in range(rows):
        for c in range(cols):
            out[pad + r * size: pad + r * size + 28, pad + c * size: pad + c * size + 28] = images[r, c]
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def save_png(path, picture, title=None):
    """Saves a grey picture with matplotlib, with an optional title above it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = picture.shape
    scale = 3 / 100
    fig = plt.figure(figsize=(w * scale, h * scale + (0.5 if title else 0)), dpi=100)
    ax = fig.add_axes([0, 0, 1, h * scale / (h * scale + (0.5 if title else 0))])
    ax.imshow(picture, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10, y=0.995, va="top")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def frames_to_gif(frame_paths, gif_path, duration=0.4):
    import imageio.v2 as imageio

    frames = [imageio.imread(p) for p in frame_paths]
    atomic_write(gif_path, lambda tmp: imageio.mimsave(tmp, frames, format="GIF", duration=duration))
