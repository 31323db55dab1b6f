"""What the scripts and the library share: the CLI error path, atomic files, weights files, digit grids."""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np


class UserError(Exception):
    """A problem the user can fix (bad flag, missing or corrupt file): one line, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the whole usage block; one line says the same and points to --help.
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def run_cli(main):
    """Calls main(); a UserError or an OSError (a path that cannot be read or written) becomes one
    line on stderr and exit code 2."""
    try:
        main()
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
    except OSError as e:
        sys.stderr.write(f"error: {e.filename or ''}: {e.strerror or e}\n")
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


def check_writable(folder):
    """Creates folder if needed and proves a file can be written there; UserError otherwise."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"{folder}: cannot write here ({e.strerror or e})")


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


def write_gif(path, pictures, titles, seconds_per_frame=0.4):
    """An animated GIF of grey uint8 pictures, each under its title (the last frame held longer)."""
    import imageio.v2 as imageio
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = []
    for picture, title in zip(pictures, titles):
        h, w = picture.shape
        fig = plt.figure(figsize=(w / 100, h / 100 + 0.3), dpi=100)
        fig.add_axes([0, 0, 1, h / (h + 30)]).imshow(picture, cmap="gray", vmin=0, vmax=255,
                                                    interpolation="nearest")
        fig.axes[0].axis("off")
        fig.suptitle(title, fontsize=10, y=0.995, va="top")
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    frames += [frames[-1]] * 3  # the GIF writer merges repeats into one frame shown four times as long
    atomic_write(path, lambda tmp: imageio.mimsave(tmp, frames, format="GIF",
                                                   duration=1000 * seconds_per_frame, loop=0))


def add_frame(path, epoch, picture):
    """Adds (epoch, uint8 picture) to the frames file at path, dropping frames of later epochs (left
    by a run killed before its checkpoint, which the resumed run makes again)."""
    epochs, pictures = read_frames(path) if os.path.exists(path) else (np.zeros(0, np.int64), None)
    keep = epochs < epoch
    epochs = np.append(epochs[keep], epoch)
    pictures = picture[None] if pictures is None else np.concatenate([pictures[keep], picture[None]])

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, epochs=epochs, pictures=pictures)
    atomic_write(path, write)


def read_frames(path):
    """(epochs [n], pictures [n, h, w] uint8) from a frames file written by add_frame."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return f["epochs"], f["pictures"]
    except FileNotFoundError:
        raise UserError(f"{path}: missing")
    except Exception as e:
        raise UserError(f"{path}: corrupt or not a frames file ({type(e).__name__})")
