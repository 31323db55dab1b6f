"""Pictures: digit grids, PNG files, GIFs, the frames of a run, and matplotlib figures saved atomically."""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ssdgm import UserError
from ssdgm.files import atomic_write


def digit_grid(images, rows, cols, pad=2, shape=(28, 28)):
    """Tiles images [rows * cols, h * w] in [0, 1], each of shape (h, w), into one uint8 picture with
    white gaps."""
    h, w = shape
    images = np.asarray(images).reshape(rows, cols, h, w)
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), np.float32)
    for r in range(rows):
        for c in range(cols):
            top, left = pad + r * (h + pad), pad + c * (w + pad)
            out[top: top + h, left: left + w] = images[r, c]
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def styles_picture(grids, n):
    """The paper's Figure 1(a) from grids [K, n * n, pixels]: a panel of n x n styles per class, the
    first half of the classes over the second."""
    panels = [digit_grid(grid, n, n) for grid in grids]
    gap = np.full((panels[0].shape[0], 12), 255, np.uint8)
    half = (len(panels) + 1) // 2
    rows = [np.concatenate(sum([[p, gap] for p in panels[i: i + half]], [])[:-1], axis=1) for i in (0, half)]
    return np.concatenate([rows[0], np.full((12, rows[0].shape[1]), 255, np.uint8), rows[1]], axis=0)


def save_png(path, picture, title=None, zoom=3):
    """Saves a grey picture with matplotlib, each pixel drawn zoom pixels wide, with an optional
    title above it."""
    h, w = picture.shape
    scale = zoom / 100
    fig = Figure(figsize=(w * scale, h * scale + (0.5 if title else 0)), dpi=100)
    ax = fig.add_axes([0, 0, 1, h * scale / (h * scale + (0.5 if title else 0))])
    ax.imshow(picture, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10, y=0.995, va="top")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_gif(path, pictures, titles, seconds_per_frame=0.4):
    """An animated GIF of grey uint8 pictures, each under its title (the last frame held longer)."""
    import imageio.v2 as imageio

    frames = []
    for picture, title in zip(pictures, titles):
        h, w = picture.shape
        fig = Figure(figsize=(w / 100, h / 100 + 0.3), dpi=100)
        fig.add_axes([0, 0, 1, h / (h + 30)]).imshow(picture, cmap="gray", vmin=0, vmax=255,
                                                    interpolation="nearest")
        fig.axes[0].axis("off")
        fig.suptitle(title, fontsize=10, y=0.995, va="top")
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
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


def subplots(rows=1, cols=1, figsize=None, **kwargs):
    """A matplotlib figure (not pyplot's: no window, no global state) and its axes, as plt.subplots."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, **kwargs)


def save_figure(fig, path):
    """Saves a matplotlib figure as PNG (atomically) and prints the path."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    print(path)
